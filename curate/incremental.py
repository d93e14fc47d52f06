"""Incremental state: which input files earlier successful runs have already curated.

One JSON file per stream, OUTPUT/state/<name>.json, beside the batches it describes, so the
state moves (and is backed up) with the output and a fresh output folder starts from zero.
A file is identified by its fingerprint, path + size + mtime: a file rewritten in place
(new size or mtime) counts as new again, and the dedup index then drops whatever of it an
earlier batch already released.

The state is written only after a batch succeeded, atomically (temporary file + rename): a
run that fails leaves it as it was, so the next run picks up the same files again under the
same batch number, and nothing is counted twice.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import fasteners
import fsspec

from curate.core.errors import CurateError
from curate.core.parquet_io import write_bytes_atomic

STATE_FORMAT = 1


class IncrementalStateError(CurateError):
    """The state file cannot be used; the message names it and the fix."""


@dataclass(frozen=True)
class Fingerprint:
    path: str
    size: int
    mtime: str  # a string: fsspec backends report floats, datetimes or ISO strings

    @property
    def key(self) -> str:
        return f"{self.path}\t{self.size}\t{self.mtime}"


@dataclass
class Batch:
    batch: int
    files: list[str]
    output: str
    release: str | None
    kept: int
    rejected: int
    finished_at: str


@dataclass
class State:
    name: str
    processed: dict[str, Fingerprint] = field(default_factory=dict)  # fingerprint key -> fingerprint
    batches: list[Batch] = field(default_factory=list)

    def next_batch(self) -> int:
        # From the successful batches only: a failed batch's number is reused by its retry,
        # so its folder, dedup segment and release version are replaced, never duplicated.
        return max((b.batch for b in self.batches), default=0) + 1

    def to_json(self) -> bytes:
        payload = {
            "format": STATE_FORMAT,
            "name": self.name,
            "processed": [asdict(fp) for fp in sorted(self.processed.values(), key=lambda f: f.path)],
            "batches": [asdict(b) for b in self.batches],
        }
        return json.dumps(payload, indent=2).encode() + b"\n"


def state_path(output_root: str | Path, name: str) -> Path:
    return Path(output_root) / "state" / f"{name}.json"


def load_state(path: Path, name: str) -> State:
    """The state at `path`, or an empty one when the stream has never run."""
    if not path.exists():
        return State(name)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != STATE_FORMAT:
            raise ValueError(f"format {data.get('format')!r}, expected {STATE_FORMAT}")
        processed = [Fingerprint(**fp) for fp in data["processed"]]
        batches = [Batch(**b) for b in data["batches"]]
    except (ValueError, TypeError, KeyError, UnicodeDecodeError) as exc:
        raise IncrementalStateError(
            f"incremental state {path} is corrupt ({exc}). Fix: restore it from a backup, or delete it to curate "
            "every input file again "
            "(the dedup index still drops documents released by earlier batches)"
        ) from None
    return State(data.get("name", name), {fp.key: fp for fp in processed}, batches)


def save_state(state: State, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(state.to_json(), path)


def fingerprint(path: str) -> Fingerprint:
    """Size and modification time as the file system reports them (local or fsspec URL)."""
    fs, _, (resolved,) = fsspec.get_fs_token_paths(path)
    info: dict[str, Any] = fs.info(resolved)
    mtime = next(
        (info[k] for k in ("mtime", "LastModified", "last_modified", "updated", "created") if info.get(k) is not None),
        "",
    )
    return Fingerprint(path=path, size=int(info.get("size") or 0), mtime=str(mtime))


def new_fingerprints(all_files: list[str], state: State) -> list[Fingerprint]:
    """The fingerprints of the files of `all_files` (in their order) that no successful run
    recorded. Pass them to `record_batch` after the batch succeeded: a file is fingerprinted
    once per run, and one rewritten while the batch ran stays new for the next run."""
    fingerprints = (fingerprint(f) for f in all_files)
    return [fp for fp in fingerprints if fp.key not in state.processed]


def new_files(all_files: list[str], state: State) -> list[str]:
    """The paths of `new_fingerprints(all_files, state)`."""
    return [fp.path for fp in new_fingerprints(all_files, state)]


def record_batch(state: State, files: Sequence[Fingerprint | str], batch: Batch) -> State:
    """`state` with `files` marked processed and `batch` appended (call after success only).
    Fingerprints from `new_fingerprints` are recorded as they are; a bare path is
    fingerprinted now."""
    recorded = [f if isinstance(f, Fingerprint) else fingerprint(f) for f in files]
    paths = {fp.path for fp in recorded}
    # A rewritten file replaces its older fingerprint, so the state lists each path once. One
    # pass over the recorded files, not one per new file: the state grows with every batch.
    state.processed = {k: v for k, v in state.processed.items() if v.path not in paths}
    state.processed.update((fp.key, fp) for fp in recorded)
    state.batches.append(batch)
    return state


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


@contextmanager
def stream_lock(output_root: str | Path, name: str) -> Iterator[None]:
    """One incremental run per stream at a time: two would pick the same new files and batch
    number. Not waiting: a second run fails at once, naming the lock, instead of queueing
    behind a run of hours (the deployment's concurrency limit is the first line of defence)."""
    path = state_path(output_root, name).with_suffix(".lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = fasteners.InterProcessLock(str(path))
    if not lock.acquire(blocking=False):
        raise IncrementalStateError(
            f"another incremental run of '{name}' holds {path}. Fix: wait for it to finish (a lock left by a dead "
            "process is released with it)"
        )
    try:
        yield
    finally:
        lock.release()

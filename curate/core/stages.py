"""Resumable stages: each stage writes into `_work/<stage>-<key>/` and ends by writing a
`_done.json` marker; a rerun with the same key finds the marker and reuses the outputs.

The key chains the previous stage's key with the config sections this stage reads, so a
changed threshold invalidates `select` and what follows, never `annotate` before it. The
marker is written last (atomically), so a crash mid-stage leaves no marker and the stage
reruns; datatrove's own completion files let annotate skip the input files it finished.

The contract: a `Stage` is a name, the config sections that key its cache, `enabled(cfg)` and
a body; each stage package declares its own, and `flows.stages.STAGES` orders them (the flow,
`curate run` and the standalone commands all take them from there). `write_output` is the one
ending of every command that writes the usual output folder."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from curate import __version__
from curate.core.parquet_io import copy_atomic, write_bytes_atomic

# Type hints only: the stage runner sits below the config that gathers every stage's section.
if TYPE_CHECKING:
    import pyarrow as pa

    from curate.config import CurateConfig
    from curate.core.layout import Layout

MARKER = "_done.json"
# Fault injection for crash tests: SIGKILL this process, as a machine failure would, at the
# named point: a stage name (right after that stage wrote its marker), `shard:N` (shard N half
# written, the shards before it renamed), or the points that dedup and release name with
# `fault_point`. Never set in production.
FAULT_KILL_AFTER_ENV = "CURATE_FAULT_KILL_AFTER"


def fault_point(name: str) -> None:
    """SIGKILL this process here if the crash-test variable names this point."""
    if os.environ.get(FAULT_KILL_AFTER_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass
class StageOutput:
    stage: str
    key: str
    parts: list[str]  # document parts, in order
    ledger: list[str] = field(default_factory=list)  # this stage's ledger parts
    reused: bool = False
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> StageOutput:
        return cls(**data)


def stage_key(previous: str, cfg: CurateConfig, sections: tuple[str, ...], extra: list[str] | None = None) -> str:
    payload = json.dumps(
        {
            "previous": previous,
            "version": __version__,
            "config": {s: _value(cfg, s) for s in sections},
            "extra": extra or [],
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _value(cfg: CurateConfig, dotted: str) -> object:
    """A config section ("filters") or a single key ("language.model_path"), as JSON data."""
    node: object = cfg
    for part in dotted.split("."):
        node = getattr(node, part)
    return node.model_dump(mode="json") if isinstance(node, BaseModel) else node


def run_stage(stage: str, key: str, work: Path, body: Callable[[Path], tuple[list[Path], list[Path]]]) -> StageOutput:
    """Run `body(stage_dir) -> (parts, ledger parts)` unless a finished run with this key exists."""
    stage_dir = work / f"{stage}-{key}"
    marker = stage_dir / MARKER
    if marker.is_file():
        try:
            done = StageOutput.from_dict(json.loads(marker.read_text()))
        except (ValueError, TypeError):
            done = None
        if done is not None and all(Path(p).is_file() for p in done.parts + done.ledger):
            done.reused = True
            done.seconds = 0.0
            return done
    started = time.perf_counter()
    stage_dir.mkdir(parents=True, exist_ok=True)
    parts, ledger = body(stage_dir)
    out = StageOutput(
        stage, key, [str(p) for p in parts], [str(p) for p in ledger], False, round(time.perf_counter() - started, 3)
    )
    write_bytes_atomic(json.dumps(out.to_dict(), indent=2).encode(), marker)
    fault_point(stage)
    return out


# (cfg, inputs, stage folder) -> (document parts, ledger parts). The inputs are the previous
# stage's parts (Paths), or for the first stage the input files as given (str: URLs stay URLs).
StageBody = Callable[["CurateConfig", list[Any], Path], tuple[list[Path], list[Path]]]


def _always(cfg: CurateConfig) -> bool:
    return True


def _no_extra(cfg: CurateConfig, inputs: Sequence[str]) -> list[str]:
    return []


@dataclass(frozen=True)
class Stage:
    """One resumable stage of `curate run`. A new stage is one `Stage(...)` in its package plus
    its place in `flows.stages.STAGES`; the flow, its Prefect task and the progress display
    follow from the list.

    `sections`: the config sections (or dotted keys) that key its cache (curate.stages.stage_key).
    `extra(cfg, inputs)`: what else decides its result (input fingerprints, an index's content).
    `first`: it reads the input files, not a previous stage's parts; its key starts the chain.
    `retry`: transient errors (connection, timeout) are retried (flows.pipeline's one policy).
    `accelerator`: it holds a GPU while it runs (the flow tags its task for a concurrency limit)."""

    name: str
    sections: tuple[str, ...]
    body: StageBody
    enabled: Callable[[CurateConfig], bool] = _always
    extra: Callable[[CurateConfig, Sequence[str]], list[str]] = _no_extra
    first: bool = False
    retry: bool = False
    accelerator: bool = False

    def key(self, cfg: CurateConfig, previous_key: str, inputs: Sequence[str]) -> str:
        return stage_key(previous_key, cfg, self.sections, self.extra(cfg, inputs))

    def run(
        self, cfg: CurateConfig, work: Path, inputs: Sequence[str], previous: StageOutput | None = None
    ) -> StageOutput:
        """Run (or reuse) this stage under `work/<name>-<key>/`. `inputs`: the input files for
        the first stage, else `previous.parts`. A disabled stage passes its input through."""
        if previous is not None and not self.enabled(cfg):
            return StageOutput(self.name, previous.key, list(previous.parts), [], True, 0.0)
        key = self.key(cfg, previous.key if previous is not None else "", inputs)
        given = list(inputs) if self.first else [Path(p) for p in inputs]
        return run_stage(self.name, key, work, lambda stage_dir: self.body(cfg, given, stage_dir))


def gather_ledger(parts: list[Path], ledger_dir: Path) -> None:
    """Make `rejected/` hold exactly these ledger parts (stage-prefixed names), so a rerun
    with other thresholds never leaves an earlier run's rows behind."""
    ledger_dir.mkdir(parents=True, exist_ok=True)
    wanted = {p.name for p in parts}
    if len(wanted) != len(parts):
        raise RuntimeError("two stages wrote ledger parts with the same name")
    for stale in ledger_dir.iterdir():
        if stale.name not in wanted:
            stale.unlink()
    for part in parts:
        if part.parent.resolve() != ledger_dir.resolve():  # written in place (`curate dedup`): nothing to copy
            copy_atomic(part, ledger_dir / part.name)


def write_output(
    cfg: CurateConfig,
    layout: Layout,
    parts: list[Path],
    ledger: list[Path],
    ingested: int,
    inputs: list[str],
    more_counts: Callable[[Layout], dict[str, Any]] | None = None,
    skipped: list[dict[str, str]] | None = None,
    schema: pa.Schema | None = None,
    side_files: dict[str, bytes] | None = None,
) -> Path:
    """The one ending of a command that writes the usual output (`curate run`, `dedup`,
    `generate`), opened before any work by curate.layout.begin_output (folder checked, old
    manifest withdrawn, resolved config written). In this order: shards from `parts`;
    `rejected/` made to hold exactly `ledger`; the counts, which check kept + rejected =
    `ingested`, plus `more_counts(layout)` (read after the ledger is in place); `side_files`
    (name -> bytes, beside the manifest); the manifest last, so it always matches its shards.
    Returns the manifest's path."""
    from curate.core import schema as S
    from curate.core.ledger import account
    from curate.core.shards import write_manifest, write_shards

    schema = S.DOCUMENT_SCHEMA if schema is None else schema
    shards = write_shards(parts, layout.root, cfg.output, schema=schema)
    gather_ledger(ledger, layout.rejected)
    counts = account(ingested, layout, sum(s.rows for s in shards))
    if more_counts is not None:
        counts.update(more_counts(layout))
    for name, data in (side_files or {}).items():
        write_bytes_atomic(data, layout.root / name)
    return write_manifest(
        layout.root, shards, cfg.config_hash(), cfg.name, inputs, counts, schema=schema, skipped_inputs=skipped or []
    )

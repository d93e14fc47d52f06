"""Where things go under an output folder. Users' scripts rely on these names."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from curate.core.errors import InputError


@dataclass(frozen=True)
class Layout:
    root: Path

    @property
    def data(self) -> Path:  # the shards: part-NNNNN.parquet
        return self.root / "data"

    @property
    def rejected(self) -> Path:  # the rejection ledger
        return self.root / "rejected"

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    @property
    def summary(self) -> Path:
        return self.root / "summary.json"

    @property
    def resolved_config(self) -> Path:
        return self.root / "config.resolved.yaml"

    @property
    def work(self) -> Path:  # intermediate stage outputs, reused by reruns
        return self.root / "_work"


def prepare_output(root: Path) -> Layout:
    """Create the output folder and prove it is writable, before any work starts."""
    if root.exists() and not root.is_dir():
        # mkdir's own error here is "File exists", which reads as if the folder were fine.
        raise InputError(
            f"output folder {root} is an existing file, not a folder. Fix: pass --output with a folder path"
        )
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f".write-test-{uuid.uuid4().hex}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise InputError(
            f"output folder {root} is not writable ({exc.strerror or exc}). Fix: pass --output with a folder you can "
            "write to"
        ) from None
    check_contained(root)
    layout = Layout(root)
    for folder in (layout.data, layout.rejected, layout.work):
        folder.mkdir(exist_ok=True)
    for folder in (layout.data, layout.rejected, layout.work):
        # access() also answers False on a read-only mount, where root's rights do not help.
        if not os.access(folder, os.W_OK):
            raise InputError(
                f"output folder {folder} is not writable. Fix: fix its permissions or choose another --output"
            )
    return layout


# What one finished run wrote about its shards, manifest first: the manifest is what says "these
# shards are complete and these are their sha256", the others are read beside it.
RESULT_FILES = ("manifest.json", "summary.json", "diversity.json")


def begin_output(root: Path, resolved_config: bytes) -> Layout:
    """The one way a command starts writing an output folder (`curate run`, `dedup`,
    `generate`): prepare it, then withdraw the previous run's manifest (and summary) before
    anything else in it changes, then write this run's resolved config. With `write_manifest`
    writing the new manifest last, the folder holds at every moment either a manifest that
    matches its shards byte for byte, or none: a rerun that dies half way (kill, disk full)
    leaves no manifest beside a mix of new and old shards."""
    layout = prepare_output(root)
    withdraw_result(layout)
    from curate.core.parquet_io import write_bytes_atomic

    write_bytes_atomic(resolved_config, layout.resolved_config)
    return layout


def withdraw_result(layout: Layout) -> None:
    """Remove the previous run's manifest, then the files that go with it, and make the removal
    durable (fsync of the folder) before the caller touches a shard."""
    from curate.core.errors import output_error

    removed = False
    for name in RESULT_FILES:
        path = layout.root / name
        try:
            path.unlink()
            removed = True
        except FileNotFoundError:
            continue
        except OSError as exc:
            error = output_error(exc, path)
            if error is None:
                raise
            raise error from None
    if removed:
        fd = os.open(layout.root, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def check_contained(root: Path) -> None:
    """Refuse an output folder holding a symbolic link that leads outside it: curate writes,
    replaces and deletes files under the output folder (stale shards, temp files), and through
    such a link it would do so elsewhere (`data -> /etc` would get /etc/part-* deleted)."""
    top = root.resolve()
    for folder, dirs, files in os.walk(root):  # does not follow links into other folders
        for name in dirs + files:
            path = Path(folder) / name
            if path.is_symlink():
                target = path.resolve()
                if target != top and top not in target.parents:
                    raise InputError(
                        f"{path} is a symbolic link to {target}, outside the output folder {root}; curate writes and "
                        "deletes "
                        "files under the output folder and will not follow it. Fix: remove the link, or pass "
                        "--output with another folder"
                    )

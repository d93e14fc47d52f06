"""Where things go under an output folder. Users' scripts rely on these names."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from curate.errors import InputError


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
    def resolved_config(self) -> Path:
        return self.root / "config.resolved.yaml"

    @property
    def work(self) -> Path:  # intermediate stage outputs, reused by reruns
        return self.root / "_work"


def prepare_output(root: Path) -> Layout:
    """Create the output folder and prove it is writable, before any work starts."""
    if root.exists() and not root.is_dir():
        # mkdir's own error here is "File exists", which reads as if the folder were fine.
        raise InputError(f"output folder {root} is an existing file, not a folder. Fix: pass --output with a folder path")
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f".write-test-{uuid.uuid4().hex}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise InputError(f"output folder {root} is not writable ({exc.strerror or exc}). Fix: pass --output with a folder you can write to") from None
    layout = Layout(root)
    for folder in (layout.data, layout.rejected, layout.work):
        folder.mkdir(exist_ok=True)
    if not os.access(layout.data, os.W_OK):
        raise InputError(f"output folder {layout.data} is not writable. Fix: fix its permissions or choose another --output")
    return layout

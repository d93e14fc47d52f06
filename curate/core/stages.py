"""Resumable stages: each stage writes into `_work/<stage>-<key>/` and ends by writing a
`_done.json` marker; a rerun with the same key finds the marker and reuses the outputs.

The key chains the previous stage's key with the config sections this stage reads, so a
changed threshold invalidates `select` and what follows, never `annotate` before it. The
marker is written last (atomically), so a crash mid-stage leaves no marker and the stage
reruns; datatrove's own completion files let annotate skip the input files it finished."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel

from curate import __version__
from curate.core.parquet_io import write_bytes_atomic

if TYPE_CHECKING:  # annotations only: the recipe is assembled above this layer (curate.config)
    from curate.config import CurateConfig

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
        {"previous": previous, "version": __version__, "config": {s: _value(cfg, s) for s in sections}, "extra": extra or []},
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
    out = StageOutput(stage, key, [str(p) for p in parts], [str(p) for p in ledger], False, round(time.perf_counter() - started, 3))
    write_bytes_atomic(json.dumps(out.to_dict(), indent=2).encode(), marker)
    fault_point(stage)
    return out

"""The hygiene stage of `curate run`: select's kept parts -> the steps of
curate.hygiene.build_steps -> kept parts (DOCUMENT_SCHEMA) and one ledger part per input part.

Streams one record batch at a time, so memory is a batch plus whatever the steps hold (the
decontamination index), never the corpus. Parts run in parallel on `executor.workers`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from curate.core import schema as S
from curate.core.ledger import ledger_polars_schema, write_ledger
from curate.core.parquet_io import tmp_path, writing
from curate.core.stages import Stage
from curate.hygiene import HYGIENE_SECTIONS, Drop, HygieneStep, build_steps, hygiene_enabled

if TYPE_CHECKING:  # annotations only: the recipe is assembled above the stages (curate.config)
    from curate.config import CurateConfig

BATCH_ROWS = 2_000
# Below this many documents one process is quicker than starting a pool (~1-2 s a worker;
# decontamination checks ~100-160 web pages/s per core, bench/RESULTS-hygiene.md).
PARALLEL_MIN_ROWS = 2_000


def apply_steps(steps: list[HygieneStep], doc: dict) -> Drop | None:
    for step in steps:
        drop = step.apply(doc)
        if drop is not None:
            return drop
    return None


def hygiene_stage(cfg: CurateConfig, parts: list[Path], stage_dir: Path) -> tuple[list[Path], list[Path]]:
    """One job per part, on `executor.workers` processes (dedup's pool: local or Ray) when
    there is enough work to pay for starting them; each process loads the steps once."""
    from curate.dedup.workers import Workers

    build_steps(cfg)  # a missing or corrupt index fails here, naming it, before any job starts
    rows = sum(pq.ParquetFile(p).metadata.num_rows for p in parts)
    # The steps are cached per process by the config and the files they load (an edited list
    # or a rebuilt index at the same path must not reuse old steps); hashed once here, not per part.
    steps_key = "\n".join([cfg.model_dump_json(), *hygiene_extra(cfg)])
    jobs = [(cfg, part, index, stage_dir, steps_key) for index, part in enumerate(parts)]
    with Workers.from_config(cfg.executor) as workers:
        done = workers.map(clean_part, jobs, parallel=rows >= PARALLEL_MIN_ROWS)
    return [k for k, _ in done], [led for _, led in done]


_STEPS: dict[str, list[HygieneStep]] = {}


def clean_part(cfg: CurateConfig, part: Path, index: int, stage_dir: Path, steps_key: str) -> tuple[Path, Path]:
    """One part through the steps: its kept documents (streamed, a batch at a time) and its
    ledger part (the dropped documents only)."""
    steps = _STEPS.get(steps_key)
    if steps is None:
        steps = _STEPS[steps_key] = build_steps(cfg)
    ledger: list[dict] = []
    kept_path = stage_dir / "kept" / f"{index:05d}.parquet"
    kept_path.parent.mkdir(parents=True, exist_ok=True)
    with writing(kept_path):
        with pq.ParquetWriter(tmp_path(kept_path), S.DOCUMENT_SCHEMA, compression="zstd") as writer:
            for batch in pq.ParquetFile(part).iter_batches(batch_size=BATCH_ROWS):
                kept: list[dict] = []
                for doc in batch.to_pylist():
                    drop = apply_steps(steps, doc)
                    if drop is None:
                        kept.append(doc)
                    else:
                        ledger.append(
                            {
                                S.ID: doc[S.ID],
                                "stage": drop.stage,
                                "reason": drop.reason,
                                "value": drop.value,
                                "matched": drop.matched,
                                S.SOURCE: doc[S.SOURCE],
                                S.OFFSET: doc[S.OFFSET],
                                S.URL: doc[S.URL],
                                "duplicate_of": None,
                            }
                        )
                writer.write_table(pa.Table.from_pylist(kept, schema=S.DOCUMENT_SCHEMA))
        os.replace(tmp_path(kept_path), kept_path)
    ledger_path = write_ledger(
        pl.DataFrame(ledger, schema=ledger_polars_schema()), stage_dir / "ledger" / f"hygiene-{index:05d}.parquet"
    )
    return kept_path, ledger_path


def hygiene_extra(cfg: CurateConfig) -> list[str]:
    """What decides the stage's result besides its input and config: the index's content
    (a rebuilt index at the same path reruns the stage). For curate.core.stages.stage_key."""
    from curate.hygiene.decontam import index_path
    from curate.hygiene.urls import list_fingerprints

    extra = [f"decontam-index:{_index_digest(index_path(cfg.decontam))}"] if cfg.decontam.enabled else []
    return extra + (list_fingerprints(cfg.urls) if cfg.urls.enabled else [])  # an edited domain list reruns the stage


_DIGESTS: dict[tuple[str, int, int], str] = {}


def _index_digest(path: Path) -> str:
    """The index file's sha256, hashed once per process while its size and mtime stay the same:
    a run asks twice (the stage's cache key, then the steps' key), and hashing the shipped
    index costs ~30 ms each time. A rebuilt index changes its mtime, so it is hashed again."""
    from curate.core.parquet_io import sha256_file

    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _DIGESTS:
        _DIGESTS[key] = sha256_file(path)
    return _DIGESTS[key]


def check_hygiene(cfg: CurateConfig) -> None:
    """Before any work: every enabled step's files load (a missing or corrupt index fails
    here, naming the file and the fix)."""
    build_steps(cfg)


# Release hygiene before dedup: a duplicate of a contaminated page must not survive as the
# cluster's keeper. Off when every hygiene section is switched off.
HYGIENE = Stage(
    "hygiene", HYGIENE_SECTIONS, hygiene_stage, enabled=hygiene_enabled, extra=lambda cfg, inputs: hygiene_extra(cfg)
)

"""The hygiene stage of `curate run`: select's kept parts -> the steps of
curate.hygiene.build_steps -> kept parts (DOCUMENT_SCHEMA) and one ledger part per input part.

Streams one record batch at a time, so memory is a batch plus whatever the steps hold (the
decontamination index), never the corpus."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from curate import schema as S
from curate.config import CurateConfig
from curate.hygiene import Drop, HygieneStep, build_steps
from curate.ledger import ledger_polars_schema, write_ledger
from curate.parquet_io import tmp_path, writing

BATCH_ROWS = 2_000


def apply_steps(steps: list[HygieneStep], doc: dict) -> Drop | None:
    for step in steps:
        drop = step.apply(doc)
        if drop is not None:
            return drop
    return None


def hygiene_stage(cfg: CurateConfig, parts: list[Path], stage_dir: Path) -> tuple[list[Path], list[Path]]:
    steps = build_steps(cfg)  # loads the index: a missing or corrupt one fails here, naming it
    kept_paths: list[Path] = []
    ledger_paths: list[Path] = []
    for index, part in enumerate(parts):
        ledger: list[dict] = []  # dropped documents only: small
        kept_path = stage_dir / "kept" / f"{index:05d}.parquet"
        kept_path.parent.mkdir(parents=True, exist_ok=True)
        with writing(kept_path), pq.ParquetWriter(tmp_path(kept_path), S.DOCUMENT_SCHEMA, compression="zstd") as writer:
            for batch in pq.ParquetFile(part).iter_batches(batch_size=BATCH_ROWS):
                kept: list[dict] = []
                for doc in batch.to_pylist():
                    drop = apply_steps(steps, doc)
                    if drop is None:
                        kept.append(doc)
                    else:
                        ledger.append({S.ID: doc[S.ID], "stage": drop.stage, "reason": drop.reason, "value": drop.value, "matched": drop.matched,
                                       S.SOURCE: doc[S.SOURCE], S.OFFSET: doc[S.OFFSET], S.URL: doc[S.URL], "duplicate_of": None})
                writer.write_table(pa.Table.from_pylist(kept, schema=S.DOCUMENT_SCHEMA))
        os.replace(tmp_path(kept_path), kept_path)
        kept_paths.append(kept_path)
        ledger_paths.append(write_ledger(pl.DataFrame(ledger, schema=ledger_polars_schema()), stage_dir / "ledger" / f"hygiene-{index:05d}.parquet"))
    return kept_paths, ledger_paths


def hygiene_extra(cfg: CurateConfig) -> list[str]:
    """What decides the stage's result besides its input and config: the index's content
    (a rebuilt index at the same path reruns the stage). For curate.stages.stage_key."""
    from curate.hygiene.decontam import index_path
    from curate.parquet_io import sha256_file

    return [f"decontam-index:{sha256_file(index_path(cfg.decontam))}"] if cfg.decontam.enabled else []


def check_hygiene(cfg: CurateConfig) -> None:
    """Before any work: every enabled step's files load (a missing or corrupt index fails
    here, naming the file and the fix)."""
    build_steps(cfg)

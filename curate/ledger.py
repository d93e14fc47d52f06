"""The rejection ledger: `OUTPUT/rejected/*.parquet`, one row per document that left the
pipeline, with the stage, the reason, and the value behind it."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from curate import schema as S
from curate.parquet_io import write_table_atomic


def write_ledger(rows: pl.DataFrame, final: Path) -> Path:
    table = rows.select([f.name for f in S.LEDGER_SCHEMA]).to_arrow().cast(S.LEDGER_SCHEMA)
    return write_table_atomic(table, final)


def ledger_files(ledger_dir: Path) -> list[Path]:
    return sorted(p for p in ledger_dir.glob("*.parquet") if not p.name.startswith("."))


def ledger_polars_schema() -> pl.Schema:
    """LEDGER_SCHEMA as polars types, for building ledger rows in polars."""
    return pl.DataFrame(S.LEDGER_SCHEMA.empty_table()).schema


def read_ledger(ledger_dir: Path) -> pl.DataFrame:
    files = ledger_files(ledger_dir)
    if not files:
        return pl.DataFrame(schema=ledger_polars_schema())
    return pl.concat([pl.read_parquet(f) for f in files])


def reason_counts(ledger_dir: Path) -> list[dict]:
    """[{stage, reason, documents}] sorted by pipeline order of first appearance, then count."""
    ledger = read_ledger(ledger_dir)
    if ledger.is_empty():
        return []
    counts = ledger.group_by("stage", "reason").agg(pl.len().alias("documents")).sort(["documents", "stage", "reason"], descending=[True, False, False])
    return counts.to_dicts()

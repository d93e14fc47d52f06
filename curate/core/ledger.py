"""The rejection ledger: `OUTPUT/rejected/*.parquet`, one row per document that left the
pipeline, with the stage, the reason, and the value behind it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from curate.core import schema as S
from curate.core.parquet_io import write_table_atomic

if TYPE_CHECKING:
    from curate.core.layout import Layout


def write_ledger(rows: pl.DataFrame, final: Path) -> Path:
    # Columns a stage never fills (`matched` outside hygiene) are written as nulls.
    missing = [
        pl.lit(None, pl.String).alias(f.name) for f in S.LEDGER_SCHEMA if f.name not in rows.columns and f.nullable
    ]
    table = rows.with_columns(missing).select([f.name for f in S.LEDGER_SCHEMA]).to_arrow().cast(S.LEDGER_SCHEMA)
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
    counts = (
        ledger.group_by("stage", "reason")
        .agg(pl.len().alias("documents"))
        .sort(["documents", "stage", "reason"], descending=[True, False, False])
    )
    return counts.to_dicts()


def account(ingested: int, layout: Layout, kept: int) -> dict[str, Any]:
    """Counts for the manifest and summary, and the ledger invariant: kept + rejected = ingested.
    A mismatch is a bug in curate, never a property of the data, so it fails the run.
    (`curate run`'s write task and `curate generate` both check it here.)"""
    rejected = read_ledger(layout.rejected).height
    if kept + rejected != ingested:
        raise RuntimeError(f"ledger invariant broken: kept {kept} + rejected {rejected} != ingested {ingested}")
    return {"ingested": ingested, "kept": kept, "rejected": rejected, "by_reason": reason_counts(layout.rejected)}

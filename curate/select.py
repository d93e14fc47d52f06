"""The select stage: thresholds from config decide, from the annotated columns alone.

Pure polars over annotated Parquet: changing `language.min_score` reruns this in seconds and
never reruns a model. Each input part gives one kept part and one ledger part, so memory is
bounded by the largest input file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from curate.core import schema as S
from curate.core.ids import colliding_ids, scoped_id
from curate.core.ledger import write_ledger
from curate.core.parquet_io import write_table_atomic
from curate.core.stages import Stage
from filters.registry import filter_stages

if TYPE_CHECKING:  # annotations only: the recipe is assembled above the stages (curate.config)
    from curate.config import CurateConfig

# The ledger's stage names, in the order rules are applied.
STAGE_INGEST = "ingest"
STAGE_EXTRACT = "extract"
STAGE_LANGUAGE = "language"
STAGE_QUALITY = "quality"
# What keys select's cache: its thresholds, and how ids are scoped.
SELECT_SECTIONS = ("language", "filters", "quality", "input.id_scope")


def rejection_exprs(cfg: CurateConfig) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """(stage, reason, value) expressions: null stage means the document is kept. The first
    failing rule wins, in pipeline order: ingest, extract, language, heuristics."""
    rules: list[tuple[pl.Expr, str, pl.Expr, pl.Expr]] = [
        (pl.col(S.ANN_INGEST).is_not_null(), STAGE_INGEST, pl.col(S.ANN_INGEST), pl.col(S.ANN_DETAIL)),
        (pl.col(S.ANN_EXTRACT).is_not_null(), STAGE_EXTRACT, pl.col(S.ANN_EXTRACT), pl.col(S.ANN_DETAIL)),
    ]
    keep = cfg.language.keep
    if keep:
        rules.append(
            (
                pl.col(S.LANG).is_null() | ~pl.col(S.LANG).is_in(keep),
                STAGE_LANGUAGE,
                pl.lit("language_not_kept"),
                pl.col(S.LANG).fill_null("none"),
            )
        )
    rules.append(
        (
            pl.col(S.LANG_SCORE).fill_null(0.0) < cfg.language.min_score,
            STAGE_LANGUAGE,
            pl.lit("low_language_score"),
            pl.col(S.LANG_SCORE).round(4).cast(pl.String),
        )
    )
    for stage in filter_stages():  # the registered heuristic rules, in their order
        if getattr(cfg.filters, stage).enabled:
            column = S.filter_column(stage)
            rules.append((pl.col(column).is_not_null(), stage, pl.col(column), pl.lit(None, pl.String)))
    if cfg.quality.enabled:
        from curate.quality.config import effective_min_score

        if cfg.quality.min_bucket is not None:  # by bucket: the value is the bucket
            rules.append(
                (
                    pl.col(S.QUALITY_BUCKET).fill_null(0) < cfg.quality.min_bucket,
                    STAGE_QUALITY,
                    pl.lit("low_quality"),
                    pl.col(S.QUALITY_BUCKET).cast(pl.String),
                )
            )
        else:
            rules.append(
                (
                    pl.col(S.QUALITY_SCORE).fill_null(0.0) < effective_min_score(cfg.quality),
                    STAGE_QUALITY,
                    pl.lit("low_quality"),
                    pl.col(S.QUALITY_SCORE).round(4).cast(pl.String),
                )
            )

    stage_expr: pl.Expr = pl.lit(None, pl.String)
    reason_expr: pl.Expr = pl.lit(None, pl.String)
    value_expr: pl.Expr = pl.lit(None, pl.String)
    for condition, stage, reason, value in reversed(rules):
        stage_expr = pl.when(condition).then(pl.lit(stage)).otherwise(stage_expr)
        reason_expr = pl.when(condition).then(reason).otherwise(reason_expr)
        value_expr = pl.when(condition).then(value).otherwise(value_expr)
    return stage_expr.alias("_stage"), reason_expr.alias("_reason"), value_expr.alias("_value")


def id_decisions(parts: list[Path], stage: pl.Expr, scope: str) -> tuple[pl.DataFrame, pl.Series | None]:
    """(part index, row) of every row whose id an earlier row of the same source file already
    has, and the ids to scope to their file (curate.core.ids; None: all of them), reading no text.
    Within a file the first occurrence is kept. Only rows that pass every rule (`stage`, the
    rejection stage expression, is null) compete: a record rejected for its own reason (say a
    wrong-typed text) must not cost a valid record with the same id its place."""
    frames = []
    for i, p in enumerate(parts):
        frame = (
            pl.scan_parquet(p)
            .with_row_index("_row")
            .with_columns(pl.lit(i, pl.Int32).alias("_part"), stage.is_null().alias("_passes"))
        )
        frames.append(frame.select(S.ID, S.SOURCE, "_part", "_row", "_passes"))
    if not frames:
        return pl.DataFrame(schema={"_part": pl.Int32, "_row": pl.UInt32}), None
    ids = pl.concat(frames).with_columns(pl.int_range(pl.len()).alias("_order"))
    passing = ids.filter(pl.col("_passes"))
    first = passing.group_by(S.ID, S.SOURCE).agg(pl.col("_order").min().alias("_first"))
    dup = passing.join(first, on=[S.ID, S.SOURCE]).filter(pl.col("_order") != pl.col("_first"))
    colliding = None if scope == "always" else colliding_ids(ids.select(S.ID, S.SOURCE))
    return dup.select("_part", "_row").collect(), colliding


def run_select(
    cfg: CurateConfig, annotated: list[Path], out_dir: Path, ledger_dir: Path
) -> tuple[list[Path], list[Path]]:
    """Split each annotated part into kept documents (DOCUMENT_SCHEMA) and ledger rows."""
    stage, reason, value = rejection_exprs(cfg)
    duplicates, colliding = id_decisions(annotated, stage, cfg.input.id_scope)
    kept_paths: list[Path] = []
    ledger_paths: list[Path] = []
    doc_columns = [f.name for f in S.DOCUMENT_SCHEMA]
    for index, part in enumerate(annotated):
        frame = pl.read_parquet(part).with_row_index("_row").with_columns(stage, reason, value)
        dup_rows = duplicates.filter(pl.col("_part") == index).get_column("_row")
        is_dup = pl.col("_row").is_in(dup_rows.implode())  # only rows passing every rule are in `duplicates`
        frame = frame.with_columns(
            pl.when(is_dup).then(pl.lit(STAGE_INGEST)).otherwise(pl.col("_stage")).alias("_stage"),
            pl.when(is_dup).then(pl.lit("duplicate_id")).otherwise(pl.col("_reason")).alias("_reason"),
            pl.when(is_dup)
            .then(pl.lit("an earlier record of the same file has the same id"))
            .otherwise(pl.col("_value"))
            .alias("_value"),
        )
        if colliding is None or colliding.len():
            # Ids that other files use too are scoped to their file, kept rows and ledger rows alike.
            frame = frame.with_columns(scoped_id(frame.get_column(S.SOURCE).unique().to_list(), colliding))
        kept = frame.filter(pl.col("_stage").is_null()).select(doc_columns)
        dropped = frame.filter(pl.col("_stage").is_not_null()).select(
            S.ID,
            pl.col("_stage").alias("stage"),
            pl.col("_reason").alias("reason"),
            pl.col("_value").alias("value"),
            S.SOURCE,
            S.OFFSET,
            S.URL,
            pl.lit(None, pl.String).alias("duplicate_of"),
        )
        kept_path = out_dir / f"{index:05d}.parquet"
        write_table_atomic(kept.to_arrow().cast(S.DOCUMENT_SCHEMA), kept_path)
        ledger_paths.append(write_ledger(dropped, ledger_dir / f"select-{index:05d}.parquet"))
        kept_paths.append(kept_path)
    return kept_paths, ledger_paths


def _select_body(cfg: CurateConfig, parts: list[Path], stage_dir: Path) -> tuple[list[Path], list[Path]]:
    return run_select(cfg, parts, stage_dir / "kept", stage_dir / "ledger")


SELECT = Stage("select", SELECT_SECTIONS, _select_body)

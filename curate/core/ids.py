"""Document ids across input files.

An id is only unique within the file it came from: parts numbered from 0 (`part-0.jsonl`,
`part-1.jsonl`, each with ids 0, 1, 2, ...) are common. So an id that more than one input
file uses is scoped to its file: `<source tag>/<id>`, the tag being the file's name plus a
hash of its full path (`curate.core.input_files.source_tag`, also the prefix of generated ids), so two
files of one name in different folders get different tags. `input.id_scope`:

- `colliding` (default): only ids used by more than one file are scoped, in every file that
  uses them (not only the later ones, so which file came first in the listing does not decide
  which documents keep their id). Ids unique in the corpus are kept as they are.
- `always`: every id is scoped, so an id never depends on which other files are in the run.

A document is never dropped because another file used its id. Within one file an id that
comes again is the same record written twice (an export retried or appended to): the first
is kept, the later ones are `duplicate_id` rows in the ledger."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import polars as pl

from curate.core import schema as S
from curate.core.input_files import source_tag


def colliding_ids(ids: pl.LazyFrame) -> pl.Series:
    """The ids that more than one source uses (`ids`: columns id and source)."""
    counts = ids.group_by(S.ID).agg(pl.col(S.SOURCE).n_unique().alias("_sources"))
    return counts.filter(pl.col("_sources") > 1).select(S.ID).collect().get_column(S.ID)


def scoped_id(sources: Iterable[str], colliding: pl.Series | None) -> pl.Expr:
    """The id column as released: `<source tag>/<id>` where the id is in `colliding` (every id
    when `colliding` is None: id_scope `always`), else unchanged. `sources`: the source paths
    the frame holds (their tags are computed once each)."""
    tags = {source: source_tag(source) for source in set(sources)}
    prefixed = pl.col(S.SOURCE).replace_strict(tags, return_dtype=pl.String) + pl.lit("/") + pl.col(S.ID)
    if colliding is None:
        return prefixed.alias(S.ID)
    return pl.when(pl.col(S.ID).is_in(colliding.implode())).then(prefixed).otherwise(pl.col(S.ID)).alias(S.ID)


def scope_parts(parts: list[Path], scope: str, out_dir: Path) -> list[Path]:
    """For `curate dedup`, whose parts are one per input file: the parts with their ids scoped
    (written under `out_dir`, streamed a row group at a time), or the parts themselves where no
    id needs it."""
    import pyarrow.parquet as pq

    from curate.core.parquet_io import tmp_path

    colliding = (
        None
        if scope == "always"
        else colliding_ids(pl.concat([pl.scan_parquet(p).select(S.ID, S.SOURCE) for p in parts]))
    )
    if colliding is not None and not colliding.len():
        return parts
    scoped: list[Path] = []
    for part in parts:
        sources = pl.scan_parquet(part).select(pl.col(S.SOURCE).unique()).collect().get_column(S.SOURCE).to_list()
        out = out_dir / part.name
        out.parent.mkdir(parents=True, exist_ok=True)
        source_file = pq.ParquetFile(part)
        schema = source_file.schema_arrow
        with pq.ParquetWriter(tmp_path(out), schema, compression="zstd") as writer:
            for batch in source_file.iter_batches(batch_size=10_000):
                frame = pl.from_arrow(batch).with_columns(scoped_id(sources, colliding))  # type: ignore[union-attr]
                writer.write_table(frame.to_arrow().cast(schema))
        tmp_path(out).replace(out)
        scoped.append(out)
    return scoped

"""Generation's dedup against the corpus, without re-signing the corpus on every run.

The decisions are those of curate.dedup's `deduplicate` over [corpus parts..., generated
part] with the keep rules emptied (a cluster's survivor is its first document in input
order, so a corpus document always wins over a generated one): the same signature tables,
the same `cluster_partitioned`, the same index of earlier releases. What changes is where
the corpus's signature tables come from, per unit of rows (curate.dedup.sigtable):

1. the dedup index (`dedup.index_dir`), when one of its segments holds the unit's documents:
   the dedup stage of the run that made the corpus wrote its kept documents' exact keys and
   band hashes there, in corpus order. A unit is taken from the segment only when its ids
   are exactly the segment's next ids, its texts' exact keys (a sha1 each, no MinHash) are
   the segment's (a source re-dumped in place keeps its ids with new texts), and each has
   shingles (a segment written with `dedup.near: false` has no bands);
2. tables this stage signed on an earlier run (`corpus-signatures/`, keyed like dedup's own
   resumable units by part path, size, mtime and parameters): a rerun after a crash or
   with another check threshold signs nothing again;
3. otherwise the unit is signed (and kept for 2.).

With `dedup.verify_threshold > 0` clustering needs full signatures, which the index does
not hold, so 1. is skipped. Only the generated documents are signed on every run.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curate.core import schema as S
from curate.core.parquet_io import write_table_atomic
from curate.dedup.index import DedupIndex, Segment
from curate.dedup.normalize import exact_key
from curate.dedup.partitioned import cluster_partitioned, read_decisions
from curate.dedup.signatures import MinHashParams, band_column, params_from_config
from curate.dedup.sigtable import UNIT_ROWS, Unit, plan_units, sign_unit, table_schema
from curate.dedup.stage import PARALLEL_MIN_ROWS
from curate.dedup.workers import Workers

if TYPE_CHECKING:  # annotations only: the recipe is assembled above the stages (curate.config)
    from curate.config import CurateConfig

# Counts of the decisions that generation reports (the others are dedup-internal).
REPORTED = ("exact_duplicate", "near_duplicate", "from_index")


@dataclass
class CorpusSignatures:
    """Where the corpus's signature tables came from, in documents (for the stats and tests)."""

    from_index: int = 0
    cached: int = 0
    signed: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"from_index": self.from_index, "cached": self.cached, "signed": self.signed}


def dedup_against_corpus(
    cfg: CurateConfig, table: pa.Table, corpus: list[Path], work: Path, cache_dir: Path
) -> tuple[pa.Table, list[dict[str, Any]], dict[str, Any]]:
    """`table` (generated documents) minus its exact and near duplicates of each other, of
    `corpus` and of the index's earlier releases. Returns (kept rows, one dict per dropped
    document with id, reason, value, duplicate_of, in table order, counts)."""
    dedup = cfg.dedup.model_copy(update={"enabled": True, "keep": [], "update_index": False})
    dcfg = cfg.model_copy(update={"dedup": dedup})
    params = params_from_config(dedup)
    # Opened (and checked) before any work, as the dedup stage does: a corrupt index fails here.
    index = DedupIndex.open(Path(dedup.index_dir), params) if dedup.index_dir else None
    checked = write_table_atomic(table, work / "checked.parquet")
    units, _ = plan_units([*corpus, checked])
    corpus_units = [u for u in units if u.part_index < len(corpus)]
    corpus_docs = sum(u.rows for u in corpus_units)
    num_docs = corpus_docs + table.num_rows
    parallel = num_docs >= PARALLEL_MIN_ROWS
    with_sig = dedup.near and dedup.verify_threshold > 0
    scratch = work / "dedup"
    if scratch.exists():
        shutil.rmtree(scratch)  # a crashed run's tables and partitions: cheap to redo
    scratch.mkdir(parents=True)
    cache_dir.mkdir(parents=True, exist_ok=True)

    source = None if with_sig or index is None else _segment_for(index, cfg.name, corpus_units)
    origin = CorpusSignatures()
    tables: list[Path] = []
    jobs: list[tuple[Any, ...]] = []
    for i, unit in enumerate(units):
        if unit.part_index == len(corpus):  # the generated documents: new on every run
            out = scratch / f"generated-{i:05d}.parquet"
            jobs.append((unit, params, out, with_sig, False, dedup.near))
        elif (
            source is not None
            and (out := source.unit_table(unit, params, dedup.near, scratch / f"index-{i:05d}.parquet")) is not None
        ):
            origin.from_index += unit.rows
        else:
            out = cache_dir / f"unit-{unit.key(params, with_sig, False)}-{'near' if dedup.near else 'exact'}.parquet"
            if out.exists():
                origin.cached += unit.rows
            else:
                origin.signed += unit.rows
                jobs.append((unit, params, out, with_sig, False, dedup.near))
        tables.append(out)
    for stale in cache_dir.glob("unit-*.parquet"):
        if stale not in tables:
            stale.unlink()  # tables of parts that changed or are gone
    with Workers.from_config(cfg.executor) as workers:
        workers.map(sign_unit, jobs, parallel)
        files, counts = cluster_partitioned(
            dcfg, params, tables, num_docs, index, False, workers, scratch / "_cluster", parallel
        )
    decisions = read_decisions(files).filter(pl.col("doc") >= corpus_docs)
    shutil.rmtree(scratch)
    ids = table.column(S.ID).to_pylist()
    dropped = [
        {S.ID: ids[doc - corpus_docs], "reason": reason, "value": value, "duplicate_of": keeper}
        for doc, reason, value, keeper in decisions.iter_rows()
    ]
    drop = np.zeros(table.num_rows, dtype=bool)
    drop[decisions.get_column("doc").to_numpy() - corpus_docs] = True
    result = {k: v for k, v in counts.items() if k in REPORTED}
    result["corpus_signatures"] = origin.as_dict()
    return table.filter(pa.array(~drop)), dropped, result


# ------------------------------------------------------------------- tables from the index


def _segment_for(index: DedupIndex, release: str, units: list[Unit]) -> _SegmentCursor | None:
    """A cursor over the segment that holds the corpus: this release's own first (the dedup
    stage of `curate run` writes it just before generation), then earlier ones (`curate
    generate --input` of a published release). Chosen by its first id being among the
    corpus's first unit's ids; a wrong choice only costs signing (the exact keys are checked),
    never a different result."""
    if not units:
        return None
    first = units[0]
    head = set(pq.ParquetFile(first.part).read_row_groups(list(first.row_groups), columns=[S.ID]).column(0).to_pylist())
    for segment in sorted(index.segments, key=lambda s: s.release_key != release):
        path = index.root / segment.file
        if segment.rows == 0:
            continue
        start = next(pq.ParquetFile(path).iter_batches(batch_size=1, columns=["id"])).column(0)[0].as_py()
        if start in head:
            return _SegmentCursor(path, segment)
    return None


class _SegmentCursor:
    """Reads one segment front to back, a unit's worth at a time (bounded memory), handing
    out rows whose ids come next in the corpus."""

    def __init__(self, path: Path, segment: Segment) -> None:
        self.segment = segment
        self._batches: Iterator[pa.RecordBatch] = pq.ParquetFile(path).iter_batches(batch_size=10_000)
        self._buffer: pa.Table | None = None
        self._done = False

    def _ahead(self, rows: int) -> pa.Table:
        """At least `rows` unread rows (fewer at the end of the segment)."""
        pieces = [self._buffer] if self._buffer is not None and self._buffer.num_rows else []
        have = sum(p.num_rows for p in pieces)
        while have < rows and not self._done:
            batch = next(self._batches, None)
            if batch is None:
                self._done = True
                break
            pieces.append(pa.Table.from_batches([batch]))
            have += batch.num_rows
        self._buffer = pa.concat_tables(pieces) if pieces else None
        return self._buffer if self._buffer is not None else pa.table({})

    def _consume(self, rows: int) -> None:
        if self._buffer is not None:
            self._buffer = self._buffer.slice(rows)

    def unit_table(self, unit: Unit, params: MinHashParams, near: bool, out: Path) -> Path | None:
        """The unit's signature table built from the segment, written to `out`; None when the
        segment does not hold exactly the unit's documents (the unit is then signed). The
        segment rows of the unit's documents are consumed either way, so the cursor stays
        aligned with the corpus past a unit that holds a document the segment lacks (a blank
        one, or a generated one in a release's shards)."""
        ids = (
            pq.ParquetFile(unit.part).read_row_groups(list(unit.row_groups), columns=[S.ID]).column(0).cast(pa.string())
        )
        ahead = self._ahead(len(ids))
        # (Segments are written by polars: large_string ids.)
        if ahead.num_rows >= len(ids) and ahead.column("id").slice(0, len(ids)).cast(pa.string()).equals(ids):
            rows = ahead.slice(0, len(ids))
            self._consume(len(ids))
        else:
            # Skip, in order, the segment rows of the unit's documents that it holds.
            seen = ahead.column("id").to_pylist() if ahead.num_rows else []
            j = 0
            for doc_id in ids.to_pylist():
                if j < len(seen) and seen[j] == doc_id:
                    j += 1
            self._consume(j)
            return None
        if near and not pc.all(rows.column("has_shingles")).as_py():
            return None  # written without near dedup (no bands), or a text without words: sign
        # Ids name documents within one crawl, not texts: a source re-dumped in place keeps its
        # ids with new texts. The exact keys (a sha1 per text, no MinHash) must match the
        # index's, or the index's bands belong to other texts and the unit is signed.
        texts = pq.ParquetFile(unit.part).read_row_groups(list(unit.row_groups), columns=[S.TEXT]).column(0).to_pylist()
        keys = np.array([exact_key(t or "") for t in texts], dtype=np.uint64).reshape(-1, 2)
        if not (
            np.array_equal(keys[:, 0], rows.column("exact_hi").to_numpy())
            and np.array_equal(keys[:, 1], rows.column("exact_lo").to_numpy())
        ):
            return None
        n = len(ids)
        schema = table_schema(params.bands, params.num_perm, False)
        arrays = [
            pa.array(np.arange(unit.doc_offset, unit.doc_offset + n, dtype=np.int64)),
            ids,
            # length and quality rank a cluster's documents only under dedup.keep rules, which
            # generation's dedup empties; the index does not store them.
            pa.array(np.zeros(n, dtype=np.int64)),
            pa.nulls(n, pa.float64()),
            pa.array(np.zeros(n, dtype=bool)),  # the index holds no blank document
            rows.column("exact_hi"),
            rows.column("exact_lo"),
            rows.column("has_shingles"),
            *[rows.column(band_column(b)) for b in range(params.bands)],
        ]
        return write_table_atomic(
            pa.Table.from_arrays(
                [a.combine_chunks() if isinstance(a, pa.ChunkedArray) else a for a in arrays], schema=schema
            ),
            out,
            compression="lz4",
            row_group_rows=UNIT_ROWS,
        )

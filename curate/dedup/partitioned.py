"""Phase 2 of dedup, clustering, as partitioned steps: no process ever holds every document,
every edge or every cluster.

P partitions (P = 1 for small inputs; else at least `executor.workers`, and one per
PARTITION_DOCS documents) and these steps, each a set of independent jobs for `Workers.map`
(local processes or Ray tasks), exchanging Parquet files under one scratch folder:

    bucket   per signature unit   long rows (doc, column, key) of the exact key and every band,
                                  and (doc, id), each written to the partition `key % P`
    index    per index segment    the same long rows for an earlier release (node numbers
                                  above this run's documents), in one pass over the segment
    ids      per partition        records whose id an earlier record already has
    edges    per partition        star edges per (column, key) group, edges to earlier releases
                                  in the index, then a local connected-components pass that
                                  reduces them to a star forest (node -> smallest node)
    hits     per index segment    id and exact key of the segment rows that matched anything
    stars    per partition, repeated
                                  alternating large-star / small-star (Kiveris et al., "Connected
                                  Components in MapReduce and Beyond", SoCC 2014) over the forest
                                  edges shuffled by node, until every component is one star
                                  around its smallest node: O(log^2 n) rounds (1 on the
                                  benchmark corpora, 9 for scrambled 300-node chains)
    decide   per partition        members of the clusters whose label falls in the partition,
                                  their metadata, the keep rules -> drop decisions

Same result as one process: a group sharing a key lies wholly in one partition, so the star
edges are the same edges; local forests keep connectivity; every component ends labelled by
its smallest node, whatever the partitioning; a cluster is decided by one job. The survivor
rules are the ones `keepers` always applied.

Reads: a key file (and an index one) holds one row group per column, so the edges job reads
each row group of its partition once, one column at a time; an index segment is read once,
by its `index` job (and the matched rows' ids once, by `hits`), not once per partition; with
verification, a partition's candidate edges of every band are checked together, in one read
of the signature tables per partition (not one per band). tests/test_dedup_partitioned_io.py
counts these reads. (`decide` still reads the tables' id/length/quality/exact columns once
per partition, ~40 B per document each time.)

Memory per job, with 14 bands and P partitions of N documents: bucket, one unit (50k
documents, ~20 MB of rows); index, one batch of a segment (SEGMENT_BATCH_ROWS); ids, N/P
ids; edges, one column's rows of its partition at a time (N/P x ~26 B: ~26 MB at
PARTITION_DOCS) plus one index row group, plus its edges (and, when verifying, 448 B of
signature per document in a candidate edge); stars and decide, the edges or members of 1/P
of the documents that have a duplicate. Only the partition count and the per-partition
results (a bool, a few counts) come back to the driver. Disk while clustering runs: ~190 B
of shuffled key rows per document and per index document (14 bands + exact key, lz4).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from curate.core.parquet_io import tmp_path
from curate.dedup.clusters import clusters, star_edges
from curate.dedup.signatures import MinHashParams, band_column
from curate.dedup.sigtable import SIG
from curate.dedup.star import ADJ as _ADJ
from curate.dedup.star import part_files as _files
from curate.dedup.star import scan_files, star_rounds, write_adjacency, write_buckets

if TYPE_CHECKING:
    from curate.config import CurateConfig
    from curate.dedup.index import DedupIndex
    from curate.dedup.workers import Workers

EXACT = "exact_duplicate"
NEAR = "near_duplicate"
DUPLICATE_ID = "duplicate_id"
# One partition per million documents: an edges job then holds ~26 MB of one column's rows
# (doc, column, 2 keys) and a stars or decide job the edges of ~1M documents' duplicates, so
# a job stays in the low hundreds of MB however large the corpus (more partitions, not
# bigger ones). The cost: bucket writes units x P small files.
PARTITION_DOCS = 1_000_000
# Segment rows per batch of the index job: 100k rows x 15 columns of long rows is ~40 MB, and
# each batch adds one row group per column to each partition's file (so an edges job streams
# the index in row groups of 100k/P rows and never holds a column of it whole).
SEGMENT_BATCH_ROWS = 100_000
EXACT_COLUMN = -1  # `column` of exact-key rows; bands are 0..bands-1
_EMPTY = np.empty(0, np.int64)
_KEYS_ARROW = pa.schema([("doc", pa.int64()), ("column", pa.int16()), ("k1", pa.uint64()), ("k2", pa.uint64())])
_HITS = {"node": pl.Int64, "id": pl.String, "exact_hi": pl.UInt64, "exact_lo": pl.UInt64, "release": pl.String}


def partition_count(num_docs: int, workers: int, parallel: bool) -> int:
    if not parallel:
        return 1
    return max(workers, -(-num_docs // PARTITION_DOCS))


DECISIONS_SCHEMA = {"doc": pl.Int64, "reason": pl.String, "value": pl.String, "duplicate_of": pl.String}


def no_decisions() -> pl.DataFrame:
    return pl.DataFrame(schema=DECISIONS_SCHEMA)


def cluster_partitioned(
    cfg: CurateConfig,
    params: MinHashParams,
    tables: list[Path],
    num_docs: int,
    index: DedupIndex | None,
    quality: bool,
    workers: Workers,
    scratch: Path,
    parallel: bool,
) -> tuple[list[Path], dict[str, int]]:
    """The drop decisions as Parquet files (doc, reason, value, duplicate_of; one per
    partition, sorted by doc within each), and counts."""
    dedup = cfg.dedup
    if scratch.exists():
        shutil.rmtree(scratch)  # a crashed run's half-written partitions: cheap to redo
    scratch.mkdir(parents=True)
    P = partition_count(num_docs, workers.count, parallel)
    segments = index.query_segments(cfg.name) if index is not None else []
    # Index node = num_docs + the rows of the segments before it + its row in its segment.
    firsts = [num_docs + int(b) for b in np.cumsum([0] + [s.rows for s in segments])[:-1]]
    paths = [index.root / s.file for s in segments] if index is not None else []
    qs = range(P)

    blanks = workers.map(
        bucket_unit, [(t, scratch, u, P, dedup.exact, dedup.near, params.bands) for u, t in enumerate(tables)], parallel
    )
    workers.map(
        bucket_segment,
        [
            (p, scratch, s, P, first, dedup.exact, dedup.near, params.bands)
            for s, (p, first) in enumerate(zip(paths, firsts))
        ],
        parallel,
    )
    counts = {"blank_skipped": int(sum(blanks))}
    workers.map(repeated_ids, [(scratch, q) for q in qs], parallel)
    verify_threshold = dedup.verify_threshold if dedup.near else 0.0
    workers.map(partition_edges, [(scratch, q, P, tables, verify_threshold) for q in qs], parallel)
    workers.map(
        segment_hits,
        [(p, s, seg.name, first, seg.rows, scratch) for s, (p, seg, first) in enumerate(zip(paths, segments, firsts))],
        parallel,
    )

    labels = star_rounds(scratch, P, workers, parallel)
    outs = [scratch / f"decisions-{q:05d}.parquet" for q in qs]
    found = workers.map(
        decide, [(cfg, labels, q, tables, num_docs, quality, scratch, out) for q, out in zip(qs, outs)], parallel
    )
    for key in (EXACT, NEAR, DUPLICATE_ID, "clusters", "from_index"):
        counts[key] = int(sum(f[key] for f in found))
    return outs, counts


# ------------------------------------------------------------------------------- the steps


# Edges compared at once when verifying: 256k x ~1 KB of gathered signatures = ~250 MB peak.
VERIFY_SLICE_EDGES = 1 << 18
# Files a job keeps open besides its P key writers (the input, logs, Ray's sockets).
_FILES_MARGIN = 256


def ensure_open_files(needed: int) -> None:
    """A key writer holds one file per partition open: raise this process's soft limit on
    open files to what that needs (up to the hard limit; the common soft default is 1,024,
    and P passes it at ~1B documents), or fail before writing, naming the fix."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise RuntimeError(
            f"dedup needs {needed} open files per job (one per partition) but this machine allows {hard}. "
            "Fix: raise the hard limit (`ulimit -Hn`, or LimitNOFILE in systemd / nofile in limits.conf) or use fewer "
            "partitions"
        )
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


class KeyWriter:
    """Long key rows (doc, column, k1, k2) shuffled to folder/<partition>-<source>.parquet by
    k1 mod P, one row group per `write` of one column's rows (so a reader of one column
    touches only its row groups). A file appears, complete, on `close`; partitions that get no rows
    get no file."""

    def __init__(self, folder: Path, P: int, source: int) -> None:
        self.folder = folder
        self.P = P
        self.source = source
        self._open: dict[int, tuple[Path, pq.ParquetWriter]] = {}
        ensure_open_files(P + _FILES_MARGIN)
        folder.mkdir(parents=True, exist_ok=True)

    def write(self, column: pl.DataFrame) -> None:
        """Rows of one column: one row group in each partition's file they fall in."""
        if column.is_empty():
            return
        bucketed = column.with_columns((pl.col("k1") % self.P).alias("_q"))
        for (q,), rows in bucketed.partition_by("_q", as_dict=True, maintain_order=True).items():
            self._writer(int(q)).write_table(rows.drop("_q").to_arrow().cast(_KEYS_ARROW))

    def _writer(self, q: int) -> pq.ParquetWriter:
        if q not in self._open:
            final = self.folder / f"{q:05d}-{self.source:05d}.parquet"
            tmp = tmp_path(final)
            # Statistics of `column` only (readers find row groups by them); no dictionary for
            # doc and k1, which are distinct or random: it would be tried and dropped per page.
            writer = pq.ParquetWriter(
                tmp, _KEYS_ARROW, compression="lz4", use_dictionary=["column", "k2"], write_statistics=["column"]
            )
            self._open[q] = (final, writer)
        return self._open[q][1]

    def close(self) -> None:
        for final, writer in self._open.values():
            writer.close()
            tmp_path(final).replace(final)
        self._open.clear()

    def __enter__(self) -> KeyWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if kind is None:
            self.close()
        else:
            for final, writer in self._open.values():
                writer.close()
                tmp_path(final).unlink(missing_ok=True)


def column_groups(files: list[Path]) -> dict[int, list[tuple[Path, int, pq.FileMetaData]]]:
    """Column -> the (file, row group, file footer) triples holding its rows, from the files'
    footers only (each read once: `read_group` reuses it)."""
    found: dict[int, list[tuple[Path, int, pq.FileMetaData]]] = {}
    for path in files:
        meta = pq.read_metadata(path)
        at = meta.schema.names.index("column")
        for g in range(meta.num_row_groups):
            stats = meta.row_group(g).column(at).statistics
            if stats is None or not stats.has_min_max or stats.min != stats.max:
                raise RuntimeError(f"{path} row group {g} holds more than one key column; this is a bug in curate")
            found.setdefault(int(stats.min), []).append((path, g, meta))
    return found


def read_group(path: Path, group: int, meta: pq.FileMetaData) -> pl.DataFrame:
    """(doc, k1, k2) of one row group of a key file: the only way the edges job reads keys."""
    table = pq.ParquetFile(path, metadata=meta).read_row_group(group, columns=["doc", "k1", "k2"])
    return pl.from_arrow(table)  # type: ignore[return-value]


def _key_columns(frame: pl.DataFrame, exact: bool, near: bool, bands: int) -> Iterator[pl.DataFrame]:
    """Long rows (doc, column, k1, k2), one frame per column: the exact key of every row,
    the bands of the rows with shingles."""
    if exact:
        yield frame.select(
            "doc",
            pl.lit(EXACT_COLUMN, pl.Int16).alias("column"),
            pl.col("exact_hi").alias("k1"),
            pl.col("exact_lo").alias("k2"),
        )
    if near:
        shingled = frame.filter(pl.col("has_shingles"))
        for b in range(bands):
            yield shingled.select(
                "doc",
                pl.lit(b, pl.Int16).alias("column"),
                pl.col(band_column(b)).alias("k1"),
                pl.lit(0, pl.UInt64).alias("k2"),
            )


def bucket_unit(table: Path, scratch: Path, unit: int, P: int, exact: bool, near: bool, bands: int) -> int:
    """One signature table -> its key rows and ids, shuffled to partitions. Returns the
    number of blank documents (skipped by both exact and near dedup)."""
    frame = pl.read_parquet(
        table,
        columns=["doc", "id", "blank", "has_shingles", "exact_hi", "exact_lo", *[band_column(b) for b in range(bands)]],
    )
    # polars' hash is stable within a version, and every job runs the same pinned version.
    ids = frame.select("doc", "id", (pl.col("id").hash(seed=0) % P).alias("_h"))
    write_buckets(ids, "_h", P, scratch / "ids", unit)
    with KeyWriter(scratch / "keys", P, unit) as out:
        for column in _key_columns(frame.filter(~pl.col("blank")), exact, near, bands):
            out.write(column)
    return int(frame.get_column("blank").sum())


def bucket_segment(
    segment: Path, scratch: Path, source: int, P: int, first_node: int, exact: bool, near: bool, bands: int
) -> int:
    """One index segment -> its key rows, shuffled to partitions like a unit's, in one pass
    (a segment holds only kept, non-blank documents). Returns the rows read."""
    columns = (["exact_hi", "exact_lo"] if exact else []) + (
        ["has_shingles", *[band_column(b) for b in range(bands)]] if near else []
    )
    node = first_node
    with KeyWriter(scratch / "index", P, source) as out:
        for batch in pq.ParquetFile(segment).iter_batches(batch_size=SEGMENT_BATCH_ROWS, columns=columns):
            frame = pl.from_arrow(batch).with_columns(
                pl.int_range(node, node + batch.num_rows, dtype=pl.Int64).alias("doc")
            )  # type: ignore[union-attr]
            for column in _key_columns(frame, exact, near, bands):  # type: ignore[arg-type]
                out.write(column)
            node += batch.num_rows
    return node - first_node


def repeated_ids(scratch: Path, q: int) -> int:
    """Records whose id an earlier record (smaller doc) has: only the first record of an id
    takes part in dedup, the others are dropped, since `duplicate_of` could not tell which of
    two documents with one id was kept."""
    ids = scan_files(_files(scratch / "ids", q), {"doc": pl.Int64, "id": pl.String, "_h": pl.UInt64}).select(
        "doc", "id"
    )
    repeated = (
        ids.filter(pl.col("id").is_duplicated()).filter(pl.col("doc") != pl.col("doc").min().over("id")).collect()
    )
    out = scratch / "dupids" / f"{q:05d}.parquet"
    out.parent.mkdir(exist_ok=True)
    repeated.write_parquet(out)
    return repeated.height


def partition_edges(scratch: Path, q: int, P: int, tables: list[Path], verify_threshold: float) -> int:
    """Candidate edges of the keys in partition q, reduced to a star forest, shuffled by node
    for the first large-star round; the index nodes that matched go to scratch/hits. Returns
    the forest's edge count."""
    excluded = pl.read_parquet(sorted((scratch / "dupids").glob("*.parquet")), columns=["doc"])
    keys = column_groups(_files(scratch / "keys", q))
    side = column_groups(_files(scratch / "index", q))
    us: list[np.ndarray] = []
    vs: list[np.ndarray] = []
    candidates: list[tuple[np.ndarray, np.ndarray]] = []  # band edges, verified together below
    matched: list[np.ndarray] = []
    for column in sorted(keys):
        # One column at a time: memory is one column's rows of this partition.
        frame = pl.concat([read_group(*at) for at in keys[column]]).join(excluded, on="doc", how="anti")
        u, v = star_edges(frame, ["k1", "k2"])
        if column != EXACT_COLUMN and verify_threshold > 0:
            candidates.append((u, v))
        else:
            us.append(u)
            vs.append(v)
        for at in side.get(column, []):
            # One index row group at a time against this column's keys: the index is never
            # held whole, and never verified (its signatures are not kept).
            hits = read_group(*at).rename({"doc": "node"}).join(frame, on=["k1", "k2"])
            us.append(hits.get_column("doc").to_numpy().astype(np.int64))
            vs.append(hits.get_column("node").to_numpy().astype(np.int64))
            matched.append(vs[-1])
        del frame
    if candidates:
        u, v = verify(
            tables,
            np.concatenate([c[0] for c in candidates]),
            np.concatenate([c[1] for c in candidates]),
            verify_threshold,
        )
        us.append(u)
        vs.append(v)
    if side:
        hits_dir = scratch / "hits"
        hits_dir.mkdir(exist_ok=True)
        pl.DataFrame({"node": np.unique(np.concatenate(matched or [_EMPTY]))}, schema={"node": pl.Int64}).write_parquet(
            hits_dir / f"{q:05d}.parquet"
        )
    nodes, labels = clusters(np.concatenate(us or [_EMPTY]), np.concatenate(vs or [_EMPTY]))
    leaf = nodes != labels
    forest = pl.DataFrame({"u": nodes[leaf], "nb": labels[leaf]}, schema=_ADJ)
    write_adjacency(forest, P, scratch / "adj-000", q)
    return forest.height


def segment_hits(segment: Path, source: int, release: str, first_node: int, rows: int, scratch: Path) -> int:
    """Id and exact key of the rows of one index segment that matched a document of this run
    (scratch/hits, from every partition), to scratch/index-hits: what `decide` needs of the
    index, read from the segment once and only from the row groups that hold a match.
    Returns the rows written."""
    matched = (
        scan_files(sorted((scratch / "hits").glob("*.parquet")), {"node": pl.Int64})
        .filter(pl.col("node").is_between(first_node, first_node + rows - 1))
        .collect()
    )
    wanted = np.unique(matched.get_column("node").to_numpy()) - first_node
    out = scratch / "index-hits" / f"{source:05d}.parquet"
    out.parent.mkdir(exist_ok=True)
    found = pl.DataFrame(schema=_HITS)
    if len(wanted):
        pf = pq.ParquetFile(segment)
        starts = np.cumsum([0] + [pf.metadata.row_group(g).num_rows for g in range(pf.metadata.num_row_groups)])
        group_of = np.searchsorted(starts, wanted, side="right") - 1
        groups = np.unique(group_of)
        table = pf.read_row_groups([int(g) for g in groups], columns=["id", "exact_hi", "exact_lo"])
        # Where each read group starts in `table`, then each wanted row's place in it.
        begins = np.cumsum([0] + [int(starts[g + 1] - starts[g]) for g in groups])[:-1]
        at = begins[np.searchsorted(groups, group_of)] + wanted - starts[group_of]
        picked = pl.from_arrow(table.take(pa.array(at)))
        found = picked.select(  # type: ignore[union-attr]
            pl.Series("node", wanted + first_node, dtype=pl.Int64),
            pl.col("id").cast(pl.String),
            "exact_hi",
            "exact_lo",
            pl.lit(release, pl.String).alias("release"),
        )
    found.write_parquet(out)
    return found.height


def decide(
    cfg: CurateConfig, labels: Path, q: int, tables: list[Path], num_docs: int, quality: bool, scratch: Path, out: Path
) -> dict[str, int]:
    """Decisions for the clusters whose label is in partition q, plus the repeated-id
    records of partition q. Returns its counts."""
    members = scan_files(_files(labels, q), {"node": pl.Int64, "label": pl.Int64}).unique().sort("node").collect()
    nodes = members.get_column("node").to_numpy()
    labelled = members.get_column("label").to_numpy()
    mine = nodes[nodes < num_docs]
    involved = (
        pl.scan_parquet(tables)
        .select("doc", "id", "length", "quality", "exact_hi", "exact_lo")
        .join(pl.LazyFrame({"doc": mine}, schema={"doc": pl.Int64}), on="doc")
        .collect(engine="streaming")
    )
    earlier = nodes[nodes >= num_docs]
    from_index = (
        scan_files(sorted((scratch / "index-hits").glob("*.parquet")), _HITS)
        .join(pl.LazyFrame({"node": earlier}, schema={"node": pl.Int64}), on="node")
        .collect()
        if len(earlier)
        else pl.DataFrame(schema=_HITS)
    )
    decisions = keepers(cfg, involved, nodes, labelled, num_docs, from_index, quality)
    repeated = pl.read_parquet(scratch / "dupids" / f"{q:05d}.parquet")
    dup_rows = repeated.select(
        "doc",
        pl.lit(DUPLICATE_ID).alias("reason"),
        pl.lit("an earlier record has the same id").alias("value"),
        pl.col("id").alias("duplicate_of"),
    )
    decisions = pl.concat([decisions, dup_rows]).sort("doc")
    tmp = tmp_path(out)
    decisions.write_parquet(tmp)
    tmp.replace(out)
    reasons = decisions.get_column("reason")
    return {
        EXACT: int((reasons == EXACT).sum()),
        NEAR: int((reasons == NEAR).sum()),
        DUPLICATE_ID: int((reasons == DUPLICATE_ID).sum()),
        "clusters": int(len(np.unique(labelled))),
        "from_index": int(decisions.get_column("value").str.starts_with("earlier release").sum()),
    }


# ------------------------------------------------------------------ per-cluster decisions


def read_signatures(tables: list[Path], nodes: np.ndarray) -> np.ndarray:
    """The full signatures of `nodes` (sorted, unique document numbers), one row each: the
    only read of the signature tables while clustering."""
    sigs = (
        pl.scan_parquet(tables)
        .select("doc", SIG)
        .filter(pl.col("doc").is_in(pl.Series(nodes).implode()))
        .sort("doc")
        .collect()
    )
    return np.stack(sigs.get_column(SIG).to_numpy())


def verify(tables: list[Path], u: np.ndarray, v: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Keep the candidate edges whose signatures agree on >= threshold of their values.
    Edges are stars (each bucket member against the bucket's smallest document), so a
    member is checked against that one document, not against every other member. An edge
    found in several bands is checked once."""
    if len(u) == 0:
        return u, v
    pairs = np.unique(np.stack([u, v], axis=1), axis=0)
    u, v = pairs[:, 0], pairs[:, 1]
    nodes = np.unique(pairs)
    matrix = read_signatures(tables, nodes)
    iu, iv = np.searchsorted(nodes, u), np.searchsorted(nodes, v)
    # In slices: comparing gathers two rows of num_perm values per edge, and a partition's
    # edges of all bands can run to millions (~1 KB each at 112 values).
    keep = np.empty(len(u), dtype=bool)
    for start in range(0, len(u), VERIFY_SLICE_EDGES):
        end = start + VERIFY_SLICE_EDGES
        keep[start:end] = (matrix[iu[start:end]] == matrix[iv[start:end]]).mean(axis=1) >= threshold
    return u[keep], v[keep]


def keepers(
    cfg: CurateConfig,
    meta: pl.DataFrame,  # doc, id, length, quality, exact key of this run's documents in `nodes`
    nodes: np.ndarray,
    labels: np.ndarray,
    num_docs: int,
    from_index: pl.DataFrame,  # node, id, exact key, release of the index nodes in `nodes`
    quality: bool,
) -> pl.DataFrame:
    """One survivor per cluster; every other document of this run becomes a decision row.
    A document of an earlier release always survives (it is already published); among
    this run's, the `dedup.keep` rules in order, then the smallest document number."""
    if len(nodes) == 0:
        return no_decisions()
    frame = pl.DataFrame({"node": nodes, "label": labels})
    docs = frame.filter(pl.col("node") < num_docs).join(
        meta.select(pl.col("doc").alias("node"), "id", "length", "quality", "exact_hi", "exact_lo"),
        on="node",
        how="left",
    )
    docs = docs.with_columns(pl.lit(False).alias("from_index"), pl.lit(None, pl.String).alias("release"))
    earlier = (
        frame.filter(pl.col("node") >= num_docs)
        .join(from_index, on="node")
        .with_columns(
            pl.lit(0, pl.Int64).alias("length"),
            pl.lit(None, pl.Float64).alias("quality"),
            pl.lit(True).alias("from_index"),
        )
    )
    every = pl.concat([docs, earlier.select(docs.columns)])

    order: list[pl.Expr] = [pl.col("from_index")]
    descending = [True]
    for rule in cfg.dedup.keep:
        if rule == "quality" and quality:
            order.append(pl.col("quality").fill_null(float("-inf")))
            descending.append(True)
        elif rule == "longest":
            order.append(pl.col("length"))
            descending.append(True)
        elif rule == "smallest_id":
            order.append(pl.col("id"))
            descending.append(False)
    order.append(pl.col("node"))
    descending.append(False)
    ranked = every.sort(order, descending=descending)
    best = (
        ranked.group_by("label", maintain_order=True)
        .first()
        .select(
            "label",
            pl.col("node").alias("keeper"),
            pl.col("id").alias("duplicate_of"),
            pl.col("exact_hi").alias("k_hi"),
            pl.col("exact_lo").alias("k_lo"),
            pl.col("release").alias("k_release"),
        )
    )
    sizes = every.group_by("label").agg(pl.len().alias("size"))
    dropped = docs.join(best, on="label").join(sizes, on="label").filter(pl.col("node") != pl.col("keeper"))
    same_text = (pl.col("exact_hi") == pl.col("k_hi")) & (pl.col("exact_lo") == pl.col("k_lo"))
    return dropped.select(
        pl.col("node").alias("doc"),
        pl.when(same_text).then(pl.lit(EXACT)).otherwise(pl.lit(NEAR)).alias("reason"),
        pl.when(pl.col("k_release").is_not_null())
        .then(pl.lit("earlier release ") + pl.col("k_release"))
        .otherwise(pl.lit("cluster of ") + pl.col("size").cast(pl.String))
        .alias("value"),
        "duplicate_of",
    )


def read_decisions(paths: list[Path]) -> pl.DataFrame:
    found = [p for p in paths if p.is_file() and pq.read_metadata(p).num_rows]
    return pl.concat([pl.read_parquet(p) for p in found]).sort("doc") if found else no_decisions()

"""Baseline for bench_dedup_io: partitioned dedup clustering as curate did it up to commit
57908de (frozen copy of curate/dedup/partitioned.py at that commit, kept as code so that
`python -m bench.bench_dedup_io` reproduces its figures without git). It is the direct way
to write the algorithm: each partition's edges job scans its key files once per band
column, scans every index segment once per partition, and verifies candidates band by
band (one signature read per band). Same decisions as the current code; only the reads
differ. Do not "fix" this file: it is the baseline.

The original module docstring follows.

Phase 2 of dedup, clustering, as partitioned steps: no process ever holds every document,
every edge or every cluster.

P partitions (P = 1 for small inputs; else at least `executor.workers`, and one per
PARTITION_DOCS documents) and five steps, each a set of independent jobs for `Workers.map`
(local processes or Ray tasks), exchanging Parquet files under one scratch folder:

    bucket   per signature unit   long rows (doc, column, key) of the exact key and every band,
                                  and (doc, id), each written to the partition `key % P`
    ids      per partition        records whose id an earlier record already has
    edges    per partition        star edges per (column, key) group, edges to earlier releases
                                  in the index, then a local connected-components pass that
                                  reduces them to a star forest (node -> smallest node)
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

Memory per job, with 14 bands and P partitions of N documents: bucket, one unit (50k
documents, ~20 MB of rows); ids, N/P ids; edges, one column's rows of its partition at a
time (N/P x ~26 B: ~26 MB at PARTITION_DOCS) plus its edges; stars and decide, the edges or
members of 1/P of the documents that have a duplicate. Only the partition count and the
per-partition results (a bool, a few counts) come back to the driver.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from curate.core.parquet_io import tmp_path
from curate.dedup.clusters import clusters, star_edges
from curate.dedup.signatures import MinHashParams, band_column
from curate.dedup.sigtable import SIG

if TYPE_CHECKING:
    from curate.config import CurateConfig
    from curate.dedup.index import DedupIndex, Segment
    from curate.dedup.workers import Workers

EXACT = "exact_duplicate"
NEAR = "near_duplicate"
DUPLICATE_ID = "duplicate_id"
# One partition per million documents: an edges job then holds ~26 MB of one column's rows
# (doc, column, 2 keys) and a stars or decide job the edges of ~1M documents' duplicates, so
# a job stays in the low hundreds of MB however large the corpus (more partitions, not
# bigger ones). The cost: bucket writes units x P small files.
PARTITION_DOCS = 1_000_000
EXACT_COLUMN = -1  # `column` of exact-key rows; bands are 0..bands-1
# Large-star/small-star needs O(log^2 n) rounds; 64 is far beyond any real graph, and hitting
# it means a bug, not a big corpus.
MAX_ROUNDS = 64
_EMPTY = np.empty(0, np.int64)
_KEYS = {"doc": pl.Int64, "column": pl.Int16, "k1": pl.UInt64, "k2": pl.UInt64}
_ADJ = {"u": pl.Int64, "nb": pl.Int64}


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
    bases = np.cumsum([0] + [s.rows for s in segments])  # index node = num_docs + base + row
    qs = range(P)

    blanks = workers.map(
        bucket_unit, [(t, scratch, u, P, dedup.exact, dedup.near, params.bands) for u, t in enumerate(tables)], parallel
    )
    counts = {"blank_skipped": int(sum(blanks))}
    workers.map(repeated_ids, [(scratch, q) for q in qs], parallel)
    verify_threshold = dedup.verify_threshold if dedup.near else 0.0
    workers.map(
        partition_edges,
        [(scratch, q, P, params.bands, tables, verify_threshold, index, segments, bases, num_docs) for q in qs],
        parallel,
    )

    labels = star_rounds(scratch, P, workers, parallel)
    outs = [scratch / f"decisions-{q:05d}.parquet" for q in qs]
    found = workers.map(
        decide,
        [(cfg, labels, q, tables, num_docs, segments, bases, index, quality, scratch, out) for q, out in zip(qs, outs)],
        parallel,
    )
    for key in (EXACT, NEAR, DUPLICATE_ID, "clusters", "from_index"):
        counts[key] = int(sum(f[key] for f in found))
    return outs, counts


def star_rounds(scratch: Path, P: int, workers: Workers, parallel: bool) -> Path:
    """Connected components of the undirected edges in scratch/adj-000 (adjacency rows
    shuffled by node): alternate large-star and small-star until every component is a star
    around its smallest node. Returns the folder of (node, label) rows, shuffled by label."""
    current = scratch / "adj-000"
    for round_ in range(MAX_ROUNDS):
        labels = scratch / f"labels-{round_:03d}"
        smaller = scratch / f"ss-{round_:03d}"
        stars = workers.map(large_star, [(current, smaller, labels, q, P) for q in range(P)], parallel)
        if all(stars):
            return labels
        current = scratch / f"adj-{round_ + 1:03d}"
        workers.map(small_star, [(smaller, current, q, P) for q in range(P)], parallel)
    raise RuntimeError(f"dedup clustering did not converge in {MAX_ROUNDS} rounds; this is a bug in curate")


# ------------------------------------------------------------------------------- the steps


def _files(folder: Path, q: int) -> list[Path]:
    return sorted(folder.glob(f"{q:05d}-*.parquet")) if folder.is_dir() else []


def scan_files(files: list[Path], schema: dict[str, Any]) -> pl.LazyFrame:
    return pl.scan_parquet(files) if files else pl.LazyFrame(schema=schema)


def _write_buckets(frame: pl.DataFrame, by: str, P: int, folder: Path, source: int) -> None:
    """Rows of `frame` to folder/<partition>-<source>.parquet, partition = `by` mod P: the
    shuffle. Partitions that get no rows get no file."""
    folder.mkdir(parents=True, exist_ok=True)
    if frame.is_empty():
        return
    bucketed = frame.with_columns((pl.col(by).cast(pl.UInt64) % P).alias("_q"))
    for (q,), rows in bucketed.partition_by("_q", as_dict=True, maintain_order=True).items():
        path = folder / f"{q:05d}-{source:05d}.parquet"
        tmp = tmp_path(path)
        rows.drop("_q").write_parquet(tmp, compression="lz4")
        tmp.replace(path)


def bucket_unit(table: Path, scratch: Path, unit: int, P: int, exact: bool, near: bool, bands: int) -> int:
    """One signature table -> its key rows and ids, shuffled to partitions. Returns the
    number of blank documents (skipped by both exact and near dedup)."""
    frame = pl.read_parquet(
        table,
        columns=["doc", "id", "blank", "has_shingles", "exact_hi", "exact_lo", *[band_column(b) for b in range(bands)]],
    )
    # polars' hash is stable within a version, and every job runs the same pinned version.
    ids = frame.select("doc", "id", (pl.col("id").hash(seed=0) % P).alias("_h"))
    _write_buckets(ids, "_h", P, scratch / "ids", unit)
    parts: list[pl.DataFrame] = []
    if exact:
        parts.append(
            frame.filter(~pl.col("blank")).select(
                "doc",
                pl.lit(EXACT_COLUMN, pl.Int16).alias("column"),
                pl.col("exact_hi").alias("k1"),
                pl.col("exact_lo").alias("k2"),
            )
        )
    if near:
        shingled = frame.filter(~pl.col("blank") & pl.col("has_shingles"))
        for b in range(bands):
            parts.append(
                shingled.select(
                    "doc",
                    pl.lit(b, pl.Int16).alias("column"),
                    pl.col(band_column(b)).alias("k1"),
                    pl.lit(0, pl.UInt64).alias("k2"),
                )
            )
    keys = pl.concat(parts) if parts else pl.DataFrame(schema=_KEYS)
    _write_buckets(keys, "k1", P, scratch / "keys", unit)
    return int(frame.get_column("blank").sum())


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


def partition_edges(
    scratch: Path,
    q: int,
    P: int,
    bands: int,
    tables: list[Path],
    verify_threshold: float,
    index: DedupIndex | None,
    segments: list[Segment],
    bases: np.ndarray,
    num_docs: int,
) -> int:
    """Candidate edges of the keys in partition q, reduced to a star forest, shuffled by node
    for the first large-star round. Returns the forest's edge count."""
    excluded = pl.scan_parquet(sorted((scratch / "dupids").glob("*.parquet"))).select("doc")
    keys = scan_files(_files(scratch / "keys", q), _KEYS).join(excluded, on="doc", how="anti")
    present = keys.select(pl.col("column").unique()).collect().get_column("column").to_list()
    us: list[np.ndarray] = []
    vs: list[np.ndarray] = []
    for column in sorted(present):
        # One column at a time: memory is one column's rows of this partition.
        frame = keys.filter(pl.col("column") == column).select("doc", "k1", "k2").collect()
        u, v = star_edges(frame, ["k1", "k2"])
        if column != EXACT_COLUMN and verify_threshold > 0 and len(u):
            u, v = verify(pl.scan_parquet(tables), u, v, verify_threshold)
        us.append(u)
        vs.append(v)
        for s, segment in enumerate(segments):
            assert index is not None
            if column == EXACT_COLUMN:
                side = index.scan(segment, ["exact_hi", "exact_lo"]).select(
                    "row", pl.col("exact_hi").alias("k1"), pl.col("exact_lo").alias("k2")
                )
            else:
                name = band_column(column)
                side = (
                    index.scan(segment, [name, "has_shingles"])
                    .filter(pl.col("has_shingles"))
                    .select("row", pl.col(name).alias("k1"), pl.lit(0, pl.UInt64).alias("k2"))
                )
            # Streaming join on this partition's keys only: the index is never held whole.
            hits = (
                side.filter(pl.col("k1") % P == q)
                .join(frame.lazy(), on=["k1", "k2"])
                .select("doc", "row")
                .collect(engine="streaming")
            )
            us.append(hits.get_column("doc").to_numpy().astype(np.int64))
            vs.append(hits.get_column("row").to_numpy().astype(np.int64) + num_docs + bases[s])
        del frame
    nodes, labels = clusters(np.concatenate(us or [_EMPTY]), np.concatenate(vs or [_EMPTY]))
    leaf = nodes != labels
    forest = pl.DataFrame({"u": nodes[leaf], "nb": labels[leaf]}, schema=_ADJ)
    _write_adjacency(forest, P, scratch / "adj-000", q)
    return forest.height


def _write_adjacency(edges: pl.DataFrame, P: int, folder: Path, source: int) -> None:
    """Undirected edges (u, nb) as adjacency rows in both directions, keyed by their u."""
    both = pl.concat([edges, edges.select(pl.col("nb").alias("u"), pl.col("u").alias("nb"))])
    _write_buckets(both, "u", P, folder, source)


def large_star(adjacency: Path, smaller: Path, labels: Path, q: int, P: int) -> bool:
    """Large-star on the nodes of partition q: every larger neighbour v of u is linked to the
    smallest node of u's neighbourhood m(u). Also writes (node, m) shuffled by m, the final
    labels if this round finds every component a star (returned: True when every node of
    the partition is a centre with only larger neighbours or a leaf with one smaller one)."""
    adj = scan_files(_files(adjacency, q), _ADJ).unique().collect()
    smaller.mkdir(parents=True, exist_ok=True)
    labels.mkdir(parents=True, exist_ok=True)
    if adj.is_empty():
        return True
    hood = adj.group_by("u").agg(pl.col("nb").min().alias("min_nb"), pl.len().alias("n"))
    hood = hood.with_columns(pl.min_horizontal("u", "min_nb").alias("m"))
    star = bool(
        hood.select(
            ((pl.col("min_nb") > pl.col("u")) | ((pl.col("n") == 1) & (pl.col("min_nb") < pl.col("u")))).all()
        ).item()
    )
    _write_buckets(hood.select(pl.col("u").alias("node"), pl.col("m").alias("label")), "label", P, labels, q)
    out = (
        adj.join(hood.select("u", "m"), on="u")
        .filter(pl.col("nb") > pl.col("u"))
        .select(pl.col("nb").alias("u"), pl.col("m").alias("nb"))
    )
    _write_buckets(out, "u", P, smaller, q)
    return star


def small_star(smaller: Path, adjacency: Path, q: int, P: int) -> int:
    """Small-star on the nodes of partition q: u and its smaller neighbours are all linked to
    the smallest of them. Input rows are (u, smaller neighbour); output is adjacency for the
    next large-star. Returns the edges written."""
    adj = scan_files(_files(smaller, q), _ADJ).unique().collect()
    adjacency.mkdir(parents=True, exist_ok=True)
    if adj.is_empty():
        return 0
    m = adj.group_by("u").agg(pl.col("nb").min().alias("m"))
    members = pl.concat([adj.select("u", pl.col("nb").alias("v")), m.select("u", pl.col("u").alias("v"))])
    edges = (
        members.join(m, on="u")
        .filter(pl.col("v") != pl.col("m"))
        .select(pl.col("v").alias("u"), pl.col("m").alias("nb"))
        .unique()
    )
    _write_adjacency(edges, P, adjacency, q)
    return edges.height


def decide(
    cfg: CurateConfig,
    labels: Path,
    q: int,
    tables: list[Path],
    num_docs: int,
    segments: list[Segment],
    bases: np.ndarray,
    index: DedupIndex | None,
    quality: bool,
    scratch: Path,
    out: Path,
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
    decisions = keepers(cfg, involved, nodes, labelled, num_docs, segments, bases, index, quality)
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


def verify(scan: pl.LazyFrame, u: np.ndarray, v: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Keep the candidate edges whose signatures agree on >= threshold of their values.
    Edges are stars (each bucket member against the bucket's smallest document), so a
    member is checked against that one document, not against every other member."""
    nodes = np.unique(np.concatenate([u, v]))
    sigs = scan.select("doc", SIG).filter(pl.col("doc").is_in(pl.Series(nodes).implode())).sort("doc").collect()
    matrix = np.stack(sigs.get_column(SIG).to_numpy())
    iu, iv = np.searchsorted(nodes, u), np.searchsorted(nodes, v)
    keep = (matrix[iu] == matrix[iv]).mean(axis=1) >= threshold
    return u[keep], v[keep]


def keepers(
    cfg: CurateConfig,
    meta: pl.DataFrame,  # doc, id, length, quality, exact key of this run's documents in `nodes`
    nodes: np.ndarray,
    labels: np.ndarray,
    num_docs: int,
    segments: list[Segment],
    bases: np.ndarray,
    index: DedupIndex | None,
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
    parts = [docs]
    earlier = frame.filter(pl.col("node") >= num_docs)
    if not earlier.is_empty() and index is not None:
        offsets = earlier.get_column("node").to_numpy() - num_docs
        which = np.searchsorted(bases, offsets, side="right") - 1
        for s, segment in enumerate(segments):
            mine = which == s
            if not mine.any():
                continue
            rows = offsets[mine] - bases[s]
            keys = (
                index.scan(segment, ["id", "exact_hi", "exact_lo"])
                .filter(pl.col("row").is_in(pl.Series(rows).implode()))
                .collect()
            )
            part = (
                earlier.filter(pl.Series(mine))
                .with_columns(pl.Series("row", rows, dtype=pl.UInt32))
                .join(keys, on="row")
                .drop("row")
            )
            parts.append(
                part.with_columns(
                    pl.lit(0, pl.Int64).alias("length"),
                    pl.lit(None, pl.Float64).alias("quality"),
                    pl.lit(True).alias("from_index"),
                    pl.lit(segment.name).alias("release"),
                ).select(docs.columns)
            )
    every = pl.concat(parts)

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

"""Connected components for partitioned dedup clustering: the shuffle of rows into partition
files, and the alternating large-star / small-star rounds (Kiveris et al. 2014) that turn
candidate edges into one label per document. Each step is one job per partition for
`Workers.map` (curate.dedup.partitioned drives them)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from curate.core.parquet_io import tmp_path

if TYPE_CHECKING:
    from curate.dedup.workers import Workers

# Large-star/small-star needs O(log^2 n) rounds; 64 is far beyond any real graph, and hitting
# it means a bug, not a big corpus.
MAX_ROUNDS = 64
ADJ = {"u": pl.Int64, "nb": pl.Int64}


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


def part_files(folder: Path, q: int) -> list[Path]:
    return sorted(folder.glob(f"{q:05d}-*.parquet")) if folder.is_dir() else []


def scan_files(files: list[Path], schema: dict[str, Any]) -> pl.LazyFrame:
    return pl.scan_parquet(files) if files else pl.LazyFrame(schema=schema)


def write_buckets(frame: pl.DataFrame, by: str, P: int, folder: Path, source: int) -> None:
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


def write_adjacency(edges: pl.DataFrame, P: int, folder: Path, source: int) -> None:
    """Undirected edges (u, nb) as adjacency rows in both directions, keyed by their u."""
    both = pl.concat([edges, edges.select(pl.col("nb").alias("u"), pl.col("u").alias("nb"))])
    write_buckets(both, "u", P, folder, source)


def large_star(adjacency: Path, smaller: Path, labels: Path, q: int, P: int) -> bool:
    """Large-star on the nodes of partition q: every larger neighbour v of u is linked to the
    smallest node of u's neighbourhood m(u). Also writes (node, m) shuffled by m, the final
    labels if this round finds every component a star (returned: True when every node of
    the partition is a centre with only larger neighbours or a leaf with one smaller one)."""
    adj = scan_files(part_files(adjacency, q), ADJ).unique().collect()
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
    write_buckets(hood.select(pl.col("u").alias("node"), pl.col("m").alias("label")), "label", P, labels, q)
    out = (
        adj.join(hood.select("u", "m"), on="u")
        .filter(pl.col("nb") > pl.col("u"))
        .select(pl.col("nb").alias("u"), pl.col("m").alias("nb"))
    )
    write_buckets(out, "u", P, smaller, q)
    return star


def small_star(smaller: Path, adjacency: Path, q: int, P: int) -> int:
    """Small-star on the nodes of partition q: u and its smaller neighbours are all linked to
    the smallest of them. Input rows are (u, smaller neighbour); output is adjacency for the
    next large-star. Returns the edges written."""
    adj = scan_files(part_files(smaller, q), ADJ).unique().collect()
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
    write_adjacency(edges, P, adjacency, q)
    return edges.height

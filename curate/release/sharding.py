"""Cutting the release order into row groups ("chunks", planned up front from Parquet
metadata, before any text is read), the shuffle into memory-sized groups of chunks, and the
release into shards (`train-00003-of-00008.parquet`), planned once every row's size is known
and the compression ratio has been measured on the first rows, so that several shards can
be compressed at once. All of it depends only on the data, never on the machine, the number
of threads or how the shuffle was grouped."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

TRAIN = "train"
VALIDATION = "validation"
# Hugging Face's convention: `datasets` maps these names to splits by itself.
SHARD_NAME = "{split}-{index:05d}-of-{count:05d}.parquet"


@dataclass(frozen=True)
class PartInfo:
    path: Path
    synthetic: bool  # given as synthetic: every row is; otherwise its own `synthetic` column says
    rows: int
    disk_bytes: int  # the file: the first guess of the compressed size of its rows in a shard
    memory_bytes: int  # uncompressed (Parquet metadata): estimates their size in Arrow


def describe_part(path: Path, synthetic: bool) -> PartInfo:
    meta = pq.ParquetFile(path).metadata
    memory = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    return PartInfo(path, synthetic, meta.num_rows, path.stat().st_size, memory)


@dataclass(frozen=True)
class Chunk:
    """A planned row group: release positions [start, stop) of one split. The writer cuts one
    in two where a shard fills up, so a row group never spans two files."""

    split: str
    start: int
    stop: int

    @property
    def rows(self) -> int:
        return self.stop - self.start


def shard_name(split: str, index: int, count: int) -> str:
    return SHARD_NAME.format(split=split, index=index, count=count)


def row_estimates(parts: list[PartInfo], order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Estimated (disk, memory) bytes of each release position: its part's average per row."""
    rows = np.array([p.rows for p in parts], dtype=np.int64)
    part_of_row = np.repeat(np.arange(len(parts)), rows)[order]
    per_row = lambda values: np.array([v / max(p.rows, 1) for v, p in zip(values, parts)], dtype=np.float64)  # noqa: E731
    disk = per_row([p.disk_bytes for p in parts]) if parts else np.zeros(0)
    memory = per_row([p.memory_bytes for p in parts]) if parts else np.zeros(0)
    return disk[part_of_row], memory[part_of_row]


def plan_chunks(n_rows: int, n_validation: int, memory: np.ndarray, row_group_mb: float) -> list[Chunk]:
    """Validation chunks first, then train chunks; within a split, equal row counts of about
    row_group_mb (uncompressed) each. An empty release has no chunks (the writer then writes
    one empty train shard, so loaders and verify need no special case)."""
    chunks: list[Chunk] = []
    for split, start, stop in ((VALIDATION, 0, n_validation), (TRAIN, n_validation, n_rows)):
        if stop == start:
            continue
        groups = max(1, math.ceil(float(memory[start:stop].sum()) / (row_group_mb * 1e6)))
        size = math.ceil((stop - start) / groups)
        chunks += [Chunk(split, lo, min(lo + size, stop)) for lo in range(start, stop, size)]
    return chunks


def plan_groups(chunks: list[Chunk], memory: np.ndarray, budget_mb: float) -> list[list[Chunk]]:
    """Consecutive chunks whose rows fit in budget_mb of memory together (at least one chunk
    per group): each group is shuffled in memory; more than one group means spilling."""
    groups: list[list[Chunk]] = []
    used = 0.0
    for chunk in chunks:
        size = float(memory[chunk.start : chunk.stop].sum())
        if groups and used + size <= budget_mb * 1e6:
            groups[-1].append(chunk)
            used += size
        else:
            groups.append([chunk])
            used = size
    return groups


@dataclass(frozen=True)
class ShardPlan:
    """A shard: its split, its number within the split, and its row groups (chunks, the
    last one cut where the shard is full)."""

    split: str
    index: int
    row_groups: tuple[Chunk, ...]

    @property
    def start(self) -> int:
        return self.row_groups[0].start

    @property
    def stop(self) -> int:
        return self.row_groups[-1].stop


@dataclass(frozen=True)
class Measured:
    """What a shard's bytes are made of, measured by writing the first rows of the release
    with the release's writer settings: compressed bytes per uncompressed byte of row data,
    and the footer (bytes with no row group, plus bytes per row group)."""

    ratio: float
    footer: int
    footer_per_group: int


# The Parquet file's magic at the start, footer length + magic at the end.
FILE_FRAME_BYTES = 4 + 8


def plan_shards(chunks: list[Chunk], raw: np.ndarray, measured: Measured, target: float) -> list[ShardPlan]:
    """Cut the chunks into shards of about `target` bytes: a shard's estimate is its rows'
    uncompressed bytes (`raw`, per release position) x the measured ratio, plus its footer;
    the chunk that would overflow is cut at the row whose end lands nearest the target.
    Row lengths are heavy-tailed, so a per-row estimate lands much closer than an average
    per row. A row larger than the target still gets a shard; splits never share one."""
    shards: list[ShardPlan] = []
    groups: list[Chunk] = []
    used = 0.0
    split_of_open = ""

    def close() -> None:
        nonlocal groups, used
        if groups:
            index = sum(1 for s in shards if s.split == groups[0].split)
            shards.append(ShardPlan(groups[0].split, index, tuple(groups)))
        groups, used = [], float(FILE_FRAME_BYTES + measured.footer)

    close()
    for chunk in chunks:
        if chunk.split != split_of_open:
            close()
            split_of_open = chunk.split
        lo = chunk.start
        while lo < chunk.stop:
            room = target - used - measured.footer_per_group  # this row group's own metadata
            estimate = np.cumsum(raw[lo : chunk.stop], dtype=np.float64) * measured.ratio
            n = estimate.size
            fits = n if estimate[-1] <= room else int(np.searchsorted(estimate, room, side="right"))
            if fits < n and estimate[fits] - room < room - (estimate[fits - 1] if fits else 0.0):
                fits += 1  # one more row ends nearer the target than one fewer
            if not groups:
                fits = max(fits, 1)
            if fits:
                groups.append(Chunk(chunk.split, lo, lo + fits))
                used += float(estimate[fits - 1]) + measured.footer_per_group
            if fits == n:
                break
            close()
            lo += fits
    close()
    return shards

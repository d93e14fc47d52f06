"""Cutting the release order into row groups ("chunks", planned up front from Parquet
metadata, before any text is read) and the shuffle into memory-sized groups of chunks.
Shard boundaries are not planned here: the writer closes a shard when its written bytes
reach the target (so shards land at the configured size however well the inputs compress),
and names the shards once their number is known (`train-00003-of-00008.parquet`). Both
depend only on the data, never on the machine or on how the shuffle was grouped."""

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

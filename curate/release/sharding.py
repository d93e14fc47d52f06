"""Cutting the release order into shards and row groups, and the shuffle into memory-sized
groups: all from Parquet metadata, before any text is read, so names and boundaries are
known up front (`train-00003-of-00008.parquet`) and do not depend on the machine."""

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
    synthetic: bool
    rows: int
    disk_bytes: int  # the file: estimates the compressed size of its rows in a shard
    memory_bytes: int  # uncompressed (Parquet metadata): estimates their size in Arrow


def describe_part(path: Path, synthetic: bool) -> PartInfo:
    meta = pq.ParquetFile(path).metadata
    memory = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    return PartInfo(path, synthetic, meta.num_rows, path.stat().st_size, memory)


@dataclass(frozen=True)
class ShardSpec:
    split: str
    index: int
    count: int
    start: int  # release positions [start, stop)
    stop: int
    row_group_rows: int

    @property
    def name(self) -> str:
        return SHARD_NAME.format(split=self.split, index=self.index, count=self.count)

    @property
    def rows(self) -> int:
        return self.stop - self.start


def row_estimates(parts: list[PartInfo], order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Estimated (disk, memory) bytes of each release position: its part's average per row."""
    rows = np.array([p.rows for p in parts], dtype=np.int64)
    part_of_row = np.repeat(np.arange(len(parts)), rows)[order]
    per_row = lambda values: np.array([v / max(p.rows, 1) for v, p in zip(values, parts)], dtype=np.float64)  # noqa: E731
    disk = per_row([p.disk_bytes for p in parts]) if parts else np.zeros(0)
    memory = per_row([p.memory_bytes for p in parts]) if parts else np.zeros(0)
    return disk[part_of_row], memory[part_of_row]


def plan_shards(n_rows: int, n_validation: int, disk: np.ndarray, memory: np.ndarray, shard_target_mb: float, row_group_mb: float) -> list[ShardSpec]:
    """Validation shards first, then train shards; the shards of a split are balanced by
    estimated size (each about shard_target_mb or less). An empty release has one empty
    train shard, so loaders and verify need no special case."""
    specs: list[ShardSpec] = []
    for split, start, stop in ((VALIDATION, 0, n_validation), (TRAIN, n_validation, n_rows)):
        if stop == start and (split == VALIDATION or specs):
            continue
        cum = np.cumsum(disk[start:stop])
        total = float(cum[-1]) if cum.size else 0.0
        count = max(1, math.ceil(total / (shard_target_mb * 1e6)))
        cuts = [0] + [int(np.searchsorted(cum, total * k / count, side="right")) for k in range(1, count)] + [stop - start]
        for index in range(count):
            lo, hi = start + cuts[index], start + cuts[index + 1]
            groups = max(1, math.ceil(float(memory[lo:hi].sum()) / (row_group_mb * 1e6)))
            specs.append(ShardSpec(split, index, count, lo, hi, max(1, math.ceil((hi - lo) / groups))))
    return specs


def plan_groups(specs: list[ShardSpec], memory: np.ndarray, budget_mb: float) -> list[list[ShardSpec]]:
    """Consecutive shards whose rows fit in budget_mb of memory together (at least one shard
    per group): each group is shuffled in memory; more than one group means spilling."""
    groups: list[list[ShardSpec]] = []
    used = 0.0
    for spec in specs:
        size = float(memory[spec.start : spec.stop].sum())
        if groups and used + size <= budget_mb * 1e6:
            groups[-1].append(spec)
            used += size
        else:
            groups.append([spec])
            used = size
    return groups

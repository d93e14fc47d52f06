"""Writers: the datatrove step that ends the annotate pipeline, every document of a rank (rejected ones
included) into one Parquet part of the annotated schema, and the mapping from a Document to its row."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from curate.core import schema as S
from curate.core.parquet_io import fsync_file, tmp_path, writing
from curate.core.schema import (
    META_ANNOTATIONS,
    META_DATE,
    META_EXTRACT_FAIL,
    META_LANG,
    META_LANG_SCORE,
    META_OFFSET,
    META_REJECT,
    META_SOURCE,
    META_URL,
)


def document_row(doc: Document, filter_stages: Sequence[str] = ()) -> dict[str, Any]:
    """A Document as a row of `annotated_schema(filter_stages)`."""
    meta = doc.metadata
    annotations = meta.get(META_ANNOTATIONS, {})
    ingest = meta.get(META_REJECT)
    extract = meta.get(META_EXTRACT_FAIL)
    detail = (ingest or extract or (None, None))[1]
    score = meta.get(META_LANG_SCORE)
    row: dict[str, Any] = {
        S.ID: doc.id,
        S.TEXT: doc.text or "",
        S.SOURCE: meta.get(META_SOURCE, ""),
        S.OFFSET: int(meta.get(META_OFFSET, -1)),
        S.URL: meta.get(META_URL),
        S.DATE: meta.get(META_DATE),
        S.LANG: meta.get(META_LANG),
        S.LANG_SCORE: float(score) if score is not None else None,
        S.METADATA: json.dumps(meta["extra"], sort_keys=True, default=str) if meta.get("extra") else None,
        S.QUALITY_SCORE: meta.get(S.QUALITY_SCORE),
        S.QUALITY_EDU: meta.get(S.QUALITY_EDU),
        S.QUALITY_GENERAL: meta.get(S.QUALITY_GENERAL),
        S.QUALITY_BUCKET: meta.get(S.QUALITY_BUCKET),
        S.ANN_INGEST: ingest[0] if ingest else None,
        S.ANN_EXTRACT: extract[0] if extract else None,
        S.ANN_DETAIL: detail,
    }
    for stage in filter_stages:
        row[S.filter_column(stage)] = annotations.get(stage)
    return row


def rows_to_table(rows: Iterable[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pylist(list(rows), schema=schema)


class AnnotatedWriter(PipelineStep):
    """Last step of the annotate pipeline: every document of this rank, rejected ones included,
    into `{folder}/{rank:05d}.parquet` (written whole, then renamed). `filter_stages`: the
    heuristic rules whose verdict columns it writes (filters.registry.filter_stages())."""

    type = "💽 - WRITER"
    name = "annotated parquet"

    def __init__(self, folder: str, filter_stages: Sequence[str], batch_rows: int = 5_000) -> None:
        super().__init__()
        self.folder = folder
        self.filter_stages = tuple(filter_stages)
        self.schema = S.annotated_schema(self.filter_stages)
        self.batch_rows = batch_rows

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        final = Path(self.folder) / f"{rank:05d}.parquet"
        tmp = tmp_path(final)
        with writing(final):
            final.parent.mkdir(parents=True, exist_ok=True)
            writer = pq.ParquetWriter(tmp, self.schema, compression="zstd")
        try:
            # Pulling documents runs every upstream step (reading inputs, loading models), so
            # only the write calls are inside writing(): an unreadable input is not "cannot write".
            for rows in self._row_batches(data):
                with writing(final):
                    writer.write_table(rows_to_table(rows, self.schema))
            with writing(final):
                writer.close()
                fsync_file(tmp)
                os.replace(tmp, final)
        except BaseException:
            # Whatever failed (upstream or a write), the half-written temp file is never a result.
            # The error that got us here is the one to report, not one from cleaning up.
            with suppress(Exception):
                writer.close()
            with suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise
        yield from ()

    def _row_batches(self, data: DocumentsPipeline) -> Iterator[list[dict[str, Any]]]:
        batch: list[dict[str, Any]] = []
        for doc in data:
            batch.append(document_row(doc, self.filter_stages))
            self.stat_update("written")
            if len(batch) >= self.batch_rows:
                yield batch
                batch = []
        if batch:
            yield batch

"""Parquet records, one Document per row."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from datatrove.data import Document

from curate.core.input_retry import open_input
from curate.readers.documents import Limits, from_mapping, rejected


def read_parquet(path: str, tag: str, text_key: str, id_key: str, limits: Limits) -> Iterator[Document]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    with open_input(path, limits.retry) as f:
        try:
            pf = pq.ParquetFile(f)
        except (pa.ArrowInvalid, OSError) as exc:
            yield rejected(tag, path, -1, "corrupt_file", f"not a readable Parquet file: {exc}")
            return
        names = pf.schema_arrow.names
        if text_key not in names:
            yield rejected(
                tag, path, -1, "wrong_schema", f"no '{text_key}' column; columns: {names[:20]}. Fix: set input.text_key"
            )
            return
        text_type = pf.schema_arrow.field(text_key).type
        if not (pa.types.is_string(text_type) or pa.types.is_large_string(text_type)):
            yield rejected(tag, path, -1, "wrong_schema", f"column '{text_key}' is {text_type}, expected string")
            return
        row = 0
        try:
            for batch in pf.iter_batches(batch_size=1024):
                for record in batch.to_pylist():
                    text = record.get(text_key)
                    if isinstance(text, str) and len(text) > limits.max_record_bytes:
                        yield rejected(
                            tag,
                            path,
                            row,
                            "too_large",
                            f"{len(text)} chars > input.max_record_bytes",
                            id_=_str_id(record.get(id_key)),
                        )
                    else:
                        yield from_mapping(record, path, tag, row, text_key, id_key)
                    row += 1
        except (pa.ArrowInvalid, OSError) as exc:
            yield rejected(tag, path, row, "corrupt_file", f"Parquet read failed at row {row}: {exc}")


def _str_id(value: Any) -> str | None:
    return str(value) if isinstance(value, (str, int)) and str(value) else None

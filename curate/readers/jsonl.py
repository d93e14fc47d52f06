"""JSONL records (plain, .gz, .zst; .bz2/.xz through fsspec), one Document per line."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import fsspec
from datatrove.data import Document

from curate.core.input_retry import RetryPolicy, open_input
from curate.readers.compression import Damage, Long, decompressed, plain_chunks, split_lines
from curate.readers.documents import Limits, from_mapping, rejected


@contextmanager
def _jsonl_stream(path: str, limit: int, retry: RetryPolicy) -> Iterator[Iterator[bytes | Long | Damage]]:
    """The lines of a JSONL file, decompressed by file name. gzip and zstd get our own member
    loop (see decompressed); fsspec's would stop at the first damaged member, and its zstd
    reader stops after the first frame or ends silently on a truncated one."""
    name = path.lower()
    codec = "gzip" if name.endswith(".gz") else "zstd" if name.endswith(".zst") else None
    if codec is None:
        # plain, or .bz2/.xz with input.format set
        with open_input(path, retry, fsspec.utils.infer_compression(path)) as f:
            yield split_lines(plain_chunks(f), limit)
        return
    with open_input(path, retry) as raw:
        yield split_lines(decompressed(raw, codec), limit)


def read_jsonl(path: str, tag: str, text_key: str, id_key: str, limits: Limits) -> Iterator[Document]:
    import orjson

    with _jsonl_stream(path, limits.max_record_bytes, limits.retry) as lines:
        line_no = -1
        for raw in lines:
            if isinstance(raw, Damage):
                # The damaged stretch takes one line number: the ledger row's id (tag/line) then
                # never collides with the id of a line read after it.
                line_no += 1
                yield rejected(tag, path, line_no, "corrupt_compression", raw.describe(line_no - 1))
                continue
            line_no += 1
            if isinstance(raw, Long):
                yield rejected(
                    tag,
                    path,
                    line_no,
                    "too_large",
                    f"{raw.size} bytes > input.max_record_bytes={limits.max_record_bytes}",
                )
                continue
            if not raw.strip():
                continue  # blank lines are layout, not records
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield rejected(tag, path, line_no, "invalid_utf8", str(exc))
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                yield rejected(tag, path, line_no, "malformed_json", str(exc))
                continue
            yield from_mapping(record, path, tag, line_no, text_key, id_key)

"""WARC and WET records through warcio, one Document per response, resource or conversion record; a
damaged gzip member costs only that member."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from datatrove.data import Document

from curate.core.input_retry import ReadFailed, open_input
from curate.core.schema import META_OFFSET, META_REJECT, META_URL
from curate.readers.charset import decode
from curate.readers.compression import DECOMPRESS_ERRORS, GZIP_MAGIC, next_member
from curate.readers.documents import Limits, document, rejected

WARC_MAGIC = b"WARC/"


def read_warc(path: str, tag: str, limits: Limits) -> Iterator[Document]:
    """WARC and WET records. A corrupt or truncated gzip member costs only that member: we
    scan forward to the next member header and go on, so records after it are not lost."""
    with open_input(path, limits.retry) as raw:
        compressed = raw.read(3) == GZIP_MAGIC
        raw.seek(0)
        # No special case for other compressions (.zst): warcio cannot read them, so they fail
        # below as corrupt_archive like any unreadable bytes, instead of leaking a _Failure.
        start: int | None = 0
        while start is not None:
            failed_at = None
            for item in _warc_records(raw, start, path, tag, limits):
                if isinstance(item, _Failure):
                    failed_at = item
                    break
                yield item
            if failed_at is None:
                return
            yield rejected(tag, path, failed_at.offset, failed_at.reason, failed_at.detail)
            start = next_member(raw, failed_at.offset + 1, GZIP_MAGIC if compressed else WARC_MAGIC)


@dataclass
class _Failure:
    offset: int
    detail: str
    reason: str = "corrupt_archive"


def _quiet_archive_iterator(raw: BinaryIO) -> Any:
    """warcio's ArchiveIterator, quiet: warcio writes a warning to stderr when a record is not
    followed by the blank lines that end it (its Content-Length is wrong) and counts it in
    `err_count`; we read that count instead, so the record can go to the ledger."""
    from warcio.archiveiterator import ArchiveIterator

    class QuietArchiveIterator(ArchiveIterator):
        INC_RECORD = ""

    return QuietArchiveIterator(raw, check_digests=False)


def _warc_records(raw: BinaryIO, start: int, path: str, tag: str, limits: Limits) -> Iterator[Document | _Failure]:
    raw.seek(start)
    iterator = _quiet_archive_iterator(raw)
    # A record's document is held back until warcio has moved past the record: only then do
    # we know whether the bytes after its Content-Length were the blank lines that end a
    # record. If not, the length is wrong and the body holds the wrong bytes (a neighbour's
    # headers when too long, a cut page when too short), so the record goes to the ledger.
    pending: Document | None = None
    errors_seen = 0

    def settle() -> Iterator[Document]:
        nonlocal pending, errors_seen
        wrong = iterator.err_count > errors_seen
        errors_seen = iterator.err_count
        if pending is not None:
            doc, pending = pending, None
            if wrong and META_REJECT not in doc.metadata:
                meta = doc.metadata
                doc = rejected(
                    tag,
                    path,
                    meta[META_OFFSET],
                    "wrong_length",
                    "the record is not followed by the blank lines that end a WARC record: its Content-Length is wrong",
                    meta.get(META_URL),
                    doc.id,
                )
            yield doc

    try:
        for record in iterator:
            yield from settle()
            # warcio's `iterator.offset` is the absolute offset (it asks the file handle) of the
            # record just parsed, until the iterator moves on; get_record_offset() would also
            # consume the rest of the record before we have read its body.
            offset = iterator.offset
            if record.rec_type not in ("response", "conversion", "resource"):
                continue  # requests, metadata and warcinfo describe documents, they are not ones
            try:
                body = record.content_stream().read(limits.max_record_bytes + 1)
                missing = _missing_bytes(record) if len(body) <= limits.max_record_bytes else 0
            except DECOMPRESS_ERRORS as exc:
                yield _Failure(offset, f"record body unreadable: {type(exc).__name__}: {exc}")
                return
            if missing:
                # The file (or this gzip member) ended inside the record: warcio hands back the
                # bytes it had without complaint, so a cut page would pass as a short one.
                headers = record.rec_headers
                pending = rejected(
                    tag,
                    path,
                    offset,
                    "truncated_record",
                    f"the record ends {missing} bytes before its Content-Length",
                    headers.get_header("WARC-Target-URI"),
                    (headers.get_header("WARC-Record-ID") or "").strip("<>") or None,
                )
                continue
            pending = _warc_document(record, body, path, tag, offset, limits)
        yield from settle()
    except ReadFailed:
        raise  # the file could not be read, its bytes may be fine: stop the run, no ledger row
    except Exception as exc:  # warcio raises plain Exceptions for bad headers
        yield from settle()
        # The record that failed starts where the iterator stands: after the last good one.
        yield _Failure(iterator.offset, f"{type(exc).__name__}: {exc}")
        return
    end = raw.seek(0, 2)
    if iterator.offset < end:
        # warcio stops silently at a gzip member cut short before its first record header.
        yield _Failure(
            iterator.offset,
            f"{end - iterator.offset} bytes at the end of the file are not a complete record",
            "truncated_record",
        )


def _missing_bytes(record: Any) -> int:
    """How many bytes of the record's declared Content-Length the file does not hold."""
    stream = record.raw_stream
    while stream.read(1 << 16):
        pass
    return max(getattr(stream, "limit", 0), 0)


def _warc_document(record: Any, body: bytes, path: str, tag: str, offset: int, limits: Limits) -> Document:
    headers = record.rec_headers
    url = headers.get_header("WARC-Target-URI")
    date = headers.get_header("WARC-Date")
    id_ = headers.get_header("WARC-Record-ID") or f"{tag}/{offset}"
    id_ = id_.strip("<>")
    if record.rec_type == "response" and record.http_headers is not None:
        status = record.http_headers.get_statuscode()
        if status and not status.startswith("2"):
            return rejected(tag, path, offset, "http_status", f"HTTP {status}", url, id_)
    declared = headers.get_header("Content-Length")
    if declared and declared.isdigit() and int(declared) > limits.max_record_bytes:
        return rejected(
            tag,
            path,
            offset,
            "too_large",
            f"{declared} bytes > input.max_record_bytes={limits.max_record_bytes}",
            url,
            id_,
        )
    mime = (headers.get_header("WARC-Identified-Payload-Type") or "").lower()
    http_type = ""
    if record.http_headers is not None:
        http_type = (record.http_headers.get_header("Content-Type") or "").lower()
    elif record.rec_type == "resource":
        # A resource record has no HTTP envelope: its WARC Content-Type is the payload's type.
        http_type = (headers.get_header("Content-Type") or "").lower()
    if len(body) > limits.max_record_bytes:
        return rejected(tag, path, offset, "too_large", f"> input.max_record_bytes={limits.max_record_bytes}", url, id_)
    if record.rec_type == "conversion":  # WET: already text
        kind = "text"
    else:
        kind = _content_kind(mime, http_type, body)
        if kind is None:
            return rejected(tag, path, offset, "unsupported_content_type", mime or http_type or "unknown", url, id_)
    text = decode(body, http_type)
    if text is None:
        return rejected(tag, path, offset, "undecodable", "bytes match no detectable charset", url, id_)
    if not text.strip():
        return rejected(tag, path, offset, "empty_text", "empty payload", url, id_)
    return document(text, id_, path, offset, url, date, {}, content_type=kind)


def _content_kind(mime: str, http_type: str, body: bytes) -> str | None:
    declared = mime or http_type.split(";")[0].strip()
    if declared in ("text/html", "application/xhtml+xml"):
        return "html"
    if declared == "text/plain":
        return "text"
    if declared:
        return None
    head = body[:512].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")) or b"<body" in body[:4096].lower():
        return "html"
    return None

"""Reading raw inputs into Documents: WARC/WET, JSONL (.gz/.zst) and Parquet, from paths,
folders, globs or fsspec URLs.

Built on datatrove's `BaseReader` (its adapter, stats and Document type), with our own
record loops: datatrove's readers log a bad line and move on, or lose the rest of a file on a
corrupt gzip member, and neither tells the ledger. Here every record that cannot become a
document still travels down the pipeline, as an empty document whose `ingest_reject`
metadata says why, so the ledger can account for it and kept + rejected = ingested holds.
"""

from __future__ import annotations

import gzip
import json
import re
import zlib
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO

import fsspec
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.readers.base import BaseReader

from curate.core.input_files import FORMATS, detect_format, find_inputs, resolve_inputs, source_tag  # noqa: F401 (re-exported)
from curate.core.input_retry import DEFAULT_RETRY, ReadFailed, RetryPolicy, open_input
from curate.core.schema import META_CONTENT, META_DATE, META_OFFSET, META_REJECT, META_SOURCE, META_URL

GZIP_MAGIC = b"\x1f\x8b\x08"
WARC_MAGIC = b"WARC/"


@dataclass
class Limits:
    max_record_bytes: int
    retry: RetryPolicy = DEFAULT_RETRY  # transient read errors: see curate.core.input_retry


class RecordReader(BaseReader):
    """Reads every input file of this rank (files[rank::world_size]) and yields one Document
    per record, rejected records included (see module docstring)."""

    name = "curate reader"
    _requires_dependencies = ["warcio", ("cchardet", "faust-cchardet"), "orjson", "zstandard"]

    def __init__(
        self,
        files: list[str],
        fmt: str = "auto",
        text_key: str = "text",
        id_key: str = "id",
        max_record_bytes: int = 5_000_000,
        retry: RetryPolicy = DEFAULT_RETRY,
    ) -> None:
        super().__init__(text_key=text_key, id_key=id_key)
        self.files = files
        self.fmt = fmt
        self.limits = Limits(max_record_bytes=max_record_bytes, retry=retry)

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if data:
            yield from data
        for path in self.files[rank::world_size]:
            self.stat_update("input_files")
            yield from self.read_path(path)

    def read_path(self, path: str) -> Iterator[Document]:
        fmt = detect_format(path, self.fmt)
        tag = source_tag(path)
        produced = 0
        try:
            if fmt == "jsonl":
                records = read_jsonl(path, tag, self.text_key, self.id_key, self.limits)
            elif fmt == "parquet":
                records = read_parquet(path, tag, self.text_key, self.id_key, self.limits)
            else:
                records = read_warc(path, tag, self.limits)
            for doc in records:
                produced += 1
                if META_REJECT in doc.metadata:
                    self.stat_update(f"rejected_{doc.metadata[META_REJECT][0]}")
                else:
                    self.stat_update("documents")
                yield doc
        except (OSError, ValueError, EOFError, zlib.error) as exc:
            # The file could not be opened at all (missing, no permission), or its bytes are
            # not what its name says. A read that broke off is not this: RetryingFile retries
            # it, then raises ReadFailed (not an OSError), which stops the run.
            produced += 1
            yield rejected(tag, path, -1, "unreadable_file", f"{type(exc).__name__}: {exc}")
        if produced == 0:
            yield rejected(tag, path, -1, "empty_file", "the file holds no records")


def rejected(tag: str, source: str, offset: int, reason: str, detail: str, url: str | None = None, id_: str | None = None) -> Document:
    doc_id = id_ or (f"{tag}/{offset}" if offset >= 0 else f"{tag}/file")
    return Document(
        text="",
        id=doc_id,
        metadata={META_SOURCE: source, META_OFFSET: offset, META_URL: url, META_REJECT: (reason, detail[:500])},
    )


def _document(text: str, id_: str, source: str, offset: int, url: str | None, date: str | None, extra: dict[str, Any], content_type: str = "text") -> Document:
    meta: dict[str, Any] = {META_SOURCE: source, META_OFFSET: offset, META_URL: url, META_DATE: date, META_CONTENT: content_type}
    if extra:
        meta["extra"] = extra
    if "\x00" in text:
        # NUL bytes break C-string consumers downstream (tokenizers, some viewers); they carry
        # no meaning in text, so they are removed rather than the whole record dropped.
        text = text.replace("\x00", "")
    return Document(text=text, id=id_, metadata=meta)


# -------------------------------------------------------------------------------- JSONL

_DECOMPRESS_ERRORS: tuple[type[BaseException], ...] = (EOFError, zlib.error, gzip.BadGzipFile, OSError)
try:
    import zstandard

    _DECOMPRESS_ERRORS = (*_DECOMPRESS_ERRORS, zstandard.ZstdError)
except ImportError:  # pragma: no cover - zstandard is a dependency
    pass


# Output of one decompress call: bounds the memory a gzip bomb can take (1 MB of zeros
# inflates to ~1 GB) to this plus one input chunk.
_INFLATE_MAX = 1 << 20
_READ_CHUNK = 1 << 20
# zstd's decompressor takes no output limit, so it is fed this much input per call instead:
# a zstd block can expand ~32,000x (a 3-byte RLE block header per 128 KB), so 1 KB of input
# gives at most ~32 MB of output, where a whole read chunk could give tens of GB.
_ZSTD_FEED = 1 << 10
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
# How much of a candidate member found after damage must decompress without error before
# reading resumes there: the magic bytes also turn up by chance inside compressed data
# (1 in 16M positions), and such a false start fails within a few bytes.
_RESYNC_PROBE = 4096


@dataclass
class _Damage:
    """A gzip member or zstd frame that could not be decompressed."""

    unit: str  # "gzip member" or "zstd frame"
    start: int  # byte offset of the damaged member in the compressed file
    resume: int | None  # byte offset where reading resumed, None: nothing readable followed
    error: str
    at_end: bool  # found by the checksum or size check at the member's end, after its data

    def describe(self, after_line: int) -> str:
        where = f"reading resumed at the next {self.unit}, byte {self.resume}" if self.resume is not None else f"no later {self.unit} found, the rest of the file is skipped"
        if self.at_end:
            lost = "found by the check at its end: lines read from it before are kept and may hold altered bytes"
        else:
            lost = f"its lines from line {after_line + 1} on are lost (how many cannot be known)"
        return f"{self.unit} at byte {self.start}: {self.error}; {lost}; {where}"


@dataclass
class _Long:
    size: int  # bytes of a line over input.max_record_bytes, its newline included


def _decompressor(codec: str) -> Any:
    if codec == "gzip":
        return zlib.decompressobj(16 + zlib.MAX_WBITS)  # one gzip member, header and CRC checked
    import zstandard

    return zstandard.ZstdDecompressor().decompressobj()


def _inflate(dec: Any, data: bytes, codec: str) -> tuple[bytes, bytes]:
    """(output, input not yet consumed). Raises the codec's error on damaged input."""
    if codec == "gzip":
        return dec.decompress(data, _INFLATE_MAX), dec.unconsumed_tail
    view = memoryview(data)  # slices without copying the rest of the chunk on every call
    return dec.decompress(view[:_ZSTD_FEED]), view[_ZSTD_FEED:]


def _codec_errors(codec: str) -> tuple[type[BaseException], ...]:
    if codec == "gzip":
        return (zlib.error,)
    import zstandard

    return (zstandard.ZstdError,)


def _members_from(raw: BinaryIO, start: int, codec: str) -> Generator[bytes, None, _Damage | None]:
    """Decompressed bytes of the members (gzip) or frames (zstd) from byte `start` on, in turn;
    returns None at a clean end of file, else the first damaged one (resume not yet known)."""
    unit = "gzip member" if codec == "gzip" else "zstd frame"
    errors = _codec_errors(codec)
    raw.seek(start)
    base = start  # file offset of pending[0]
    member = start  # file offset where the current member began
    pending = b""
    dec: Any = None
    while True:
        if not pending:
            pending = raw.read(_READ_CHUNK)
            if not pending:
                if dec is not None:
                    return _Damage(unit, member, None, "the file ends inside it (truncated)", False)
                return None
        if dec is None:
            if codec == "gzip":
                # Zero padding after a member (tape and block-device tools add it) is skipped,
                # as gzip itself does.
                stripped = pending.lstrip(b"\x00")
                base += len(pending) - len(stripped)
                pending = stripped
                if not pending:
                    continue
            member = base
            dec = _decompressor(codec)
        while True:
            saved = dec.copy() if codec == "gzip" else None
            try:
                out, tail = _inflate(dec, pending, codec)
            except errors as exc:
                if saved is None or not _at_end(exc):
                    return _Damage(unit, member, None, str(exc), False)
                # The CRC check failed after the member's data: zlib drops the output of that
                # last call, so it is decoded again without the trailer and handed out, and a
                # member failing its CRC keeps all its lines, not those of earlier calls only.
                if out := _before_trailer(saved, pending):
                    yield out
                return _Damage(unit, member, None, str(exc), True)
            if out:
                yield out
            if dec.eof:
                rest = dec.unused_data + tail  # tail: input not yet fed (zstd), b"" for gzip
                base += len(pending) - len(rest)
                pending, dec = rest, None
                break
            base += len(pending) - len(tail)
            pending = tail
            if not pending and (codec != "gzip" or len(out) < _INFLATE_MAX):
                break  # all input consumed and all output handed out: read more


def _before_trailer(saved: Any, data: bytes) -> bytes:
    """What `saved` (a gzip decompressor) gives for the longest prefix of `data` that stops
    short of the failing trailer check: the member's data, as decoded."""
    best, low, high = b"", 0, len(data) - 1  # the whole of `data` fails
    while low <= high:
        middle = (low + high) // 2
        try:
            best, low = saved.copy().decompress(data[:middle], _INFLATE_MAX), middle + 1
        except zlib.error:
            high = middle - 1
    return best


def _at_end(exc: BaseException) -> bool:
    """Whether the error is the checksum or size check after a member's data (its structure
    decoded; its bytes did not match)."""
    message = str(exc)
    return "incorrect data check" in message or "incorrect length check" in message


def _opens(raw: BinaryIO, at: int, codec: str) -> bool:
    """Whether a member starting at `at` decompresses its first bytes, or all of its data (a
    damaged member found whole is its own ledger row), without error."""
    raw.seek(at)
    dec = _decompressor(codec)
    data = raw.read(_RESYNC_PROBE)
    try:
        while data and not dec.eof:
            _, data = _inflate(dec, data, codec)
    except _codec_errors(codec) as exc:
        return _at_end(exc)
    return True


def _decompressed(raw: BinaryIO, codec: str) -> Iterator[bytes | _Damage]:
    """The decompressed bytes of a multi-member gzip or multi-frame zstd file, with a _Damage
    where a member could not be decompressed. Deflate cannot resync inside a member, but each
    member starts afresh: reading goes on at the next member found after the damaged one's
    start (not after the point of failure: a damaged member can be decoded past its own end,
    into the next one), like WARC reading does."""
    magic = GZIP_MAGIC if codec == "gzip" else ZSTD_MAGIC
    start: int | None = 0
    while start is not None:
        damage = yield from _members_from(raw, start, codec)
        if damage is None:
            return
        # Candidates that fail at once are chance matches inside the damaged data, or members
        # damaged at their start: they are part of this one damaged stretch.
        resume = _next_member(raw, damage.start + 1, magic)
        while resume is not None and not _opens(raw, resume, codec):
            resume = _next_member(raw, resume + 1, magic)
        damage.resume = resume
        yield damage
        start = resume


def _plain_chunks(f: BinaryIO) -> Iterator[bytes]:
    while chunk := f.read(_READ_CHUNK):
        yield chunk


def _split_lines(chunks: Iterator[bytes | _Damage], limit: int) -> Iterator[bytes | _Long | _Damage]:
    """Lines (without their newline) of a stream of chunks. A line over `limit` bytes is not
    held in memory, only measured. A line cut by damage is part of what the damage cost."""
    parts: list[bytes] = []
    size = 0  # bytes of the line so far, counted even when not kept
    for chunk in chunks:
        if isinstance(chunk, _Damage):
            parts, size = [], 0
            yield chunk
            continue
        pieces = chunk.split(b"\n")
        for piece in pieces[:-1]:
            total = size + len(piece) + 1
            if total > limit:
                yield _Long(total)
            else:
                yield b"".join(parts) + piece if parts else piece
            parts, size = [], 0
        last = pieces[-1]
        if last:
            size += len(last)
            if size <= limit:
                parts.append(last)
            else:
                parts = []
    if size:
        yield _Long(size) if size > limit else b"".join(parts)


@contextmanager
def _jsonl_stream(path: str, limit: int, retry: RetryPolicy) -> Iterator[Iterator[bytes | _Long | _Damage]]:
    """The lines of a JSONL file, decompressed by file name. gzip and zstd get our own member
    loop (see _decompressed); fsspec's would stop at the first damaged member, and its zstd
    reader stops after the first frame or ends silently on a truncated one."""
    name = path.lower()
    codec = "gzip" if name.endswith(".gz") else "zstd" if name.endswith(".zst") else None
    if codec is None:
        # plain, or .bz2/.xz with input.format set
        with open_input(path, retry, fsspec.utils.infer_compression(path)) as f:
            yield _split_lines(_plain_chunks(f), limit)
        return
    with open_input(path, retry) as raw:
        yield _split_lines(_decompressed(raw, codec), limit)


def read_jsonl(path: str, tag: str, text_key: str, id_key: str, limits: Limits) -> Iterator[Document]:
    import orjson

    with _jsonl_stream(path, limits.max_record_bytes, limits.retry) as lines:
        line_no = -1
        for raw in lines:
            if isinstance(raw, _Damage):
                # The damaged stretch takes one line number: the ledger row's id (tag/line) then
                # never collides with the id of a line read after it.
                line_no += 1
                yield rejected(tag, path, line_no, "corrupt_compression", raw.describe(line_no - 1))
                continue
            line_no += 1
            if isinstance(raw, _Long):
                yield rejected(tag, path, line_no, "too_large", f"{raw.size} bytes > input.max_record_bytes={limits.max_record_bytes}")
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
            yield _from_mapping(record, path, tag, line_no, text_key, id_key)


def _from_mapping(record: Any, path: str, tag: str, offset: int, text_key: str, id_key: str) -> Document:
    if not isinstance(record, dict):
        return rejected(tag, path, offset, "malformed_record", f"expected a JSON object, got {type(record).__name__}")
    raw_id = record.pop(id_key, None)
    id_ = str(raw_id) if isinstance(raw_id, (str, int)) and str(raw_id) else f"{tag}/{offset}"
    url = record.pop("url", None)
    url = url if isinstance(url, str) else None
    if record.get(text_key) is None:
        detail = f"'{text_key}' is null" if text_key in record else f"no '{text_key}' field; keys: {sorted(record)[:10]}"
        return rejected(tag, path, offset, "missing_text", detail, url, id_)
    text = record.pop(text_key)
    if not isinstance(text, str):
        return rejected(tag, path, offset, "wrong_type", f"'{text_key}' is {type(text).__name__}, expected a string", url, id_)
    if not text.strip():
        return rejected(tag, path, offset, "empty_text", "text is empty or whitespace", url, id_)
    date = record.pop("date", None)
    extra = _jsonable(record)
    return _document(text, id_, path, offset, url, date if isinstance(date, str) else None, extra)


def _jsonable(record: dict[str, Any]) -> dict[str, Any]:
    try:
        json.dumps(record, default=str)
        return record
    except (TypeError, ValueError):
        return {k: str(v) for k, v in record.items()}


# ------------------------------------------------------------------------------ Parquet


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
            yield rejected(tag, path, -1, "wrong_schema", f"no '{text_key}' column; columns: {names[:20]}. Fix: set input.text_key")
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
                        yield rejected(tag, path, row, "too_large", f"{len(text)} chars > input.max_record_bytes", id_=_str_id(record.get(id_key)))
                    else:
                        yield _from_mapping(record, path, tag, row, text_key, id_key)
                    row += 1
        except (pa.ArrowInvalid, OSError) as exc:
            yield rejected(tag, path, row, "corrupt_file", f"Parquet read failed at row {row}: {exc}")


def _str_id(value: Any) -> str | None:
    return str(value) if isinstance(value, (str, int)) and str(value) else None


# --------------------------------------------------------------------------------- WARC


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
            start = _next_member(raw, failed_at.offset + 1, GZIP_MAGIC if compressed else WARC_MAGIC)


@dataclass
class _Failure:
    offset: int
    detail: str
    reason: str = "corrupt_archive"


def _next_member(raw: BinaryIO, after: int, magic: bytes) -> int | None:
    """Offset of the next gzip member (or `WARC/` header) at or after `after`, else None."""
    raw.seek(after)
    carry = b""
    position = after
    while True:
        chunk = raw.read(1 << 20)
        if not chunk:
            return None
        window = carry + chunk
        hit = window.find(magic)
        if hit >= 0:
            return position - len(carry) + hit
        carry = window[-(len(magic) - 1):]
        position += len(chunk)


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
                    tag, path, meta[META_OFFSET], "wrong_length",
                    "the record is not followed by the blank lines that end a WARC record: its Content-Length is wrong",
                    meta.get(META_URL), doc.id,
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
            except _DECOMPRESS_ERRORS as exc:
                yield _Failure(offset, f"record body unreadable: {type(exc).__name__}: {exc}")
                return
            if missing:
                # The file (or this gzip member) ended inside the record: warcio hands back the
                # bytes it had without complaint, so a cut page would pass as a short one.
                headers = record.rec_headers
                pending = rejected(
                    tag, path, offset, "truncated_record", f"the record ends {missing} bytes before its Content-Length",
                    headers.get_header("WARC-Target-URI"), (headers.get_header("WARC-Record-ID") or "").strip("<>") or None,
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
        yield _Failure(iterator.offset, f"{end - iterator.offset} bytes at the end of the file are not a complete record", "truncated_record")


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
        return rejected(tag, path, offset, "too_large", f"{declared} bytes > input.max_record_bytes={limits.max_record_bytes}", url, id_)
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
    text = _decode(body, http_type)
    if text is None:
        return rejected(tag, path, offset, "undecodable", "bytes match no detectable charset", url, id_)
    if not text.strip():
        return rejected(tag, path, offset, "empty_text", "empty payload", url, id_)
    return _document(text, id_, path, offset, url, date, {}, content_type=kind)


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


# A page's own <meta charset=...> or <meta http-equiv="Content-Type" content="...; charset=...">,
# looked for where browsers look: in the first bytes.
_META_CHARSET = re.compile(rb"""<meta[^>]{0,200}?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
# Labels that browsers (WHATWG Encoding standard) decode as a superset: pages labelled gb2312
# routinely use GBK characters, and "iso-8859-1" pages use Windows-1252's curly quotes.
_CHARSET_ALIASES = {
    "gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030",
    "iso-8859-1": "cp1252", "iso8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252",
    "us-ascii": "cp1252", "ascii": "cp1252",
}


def _charset(label: str | None) -> str | None:
    if not label:
        return None
    label = label.strip().strip("\"'").lower()
    return _CHARSET_ALIASES.get(label, label) or None


def _decode(body: bytes, http_type: str) -> str | None:
    """HTTP header charset, then the page's <meta> charset, then UTF-8, then detection: without
    the <meta> step, a Latin-1 page with no HTTP charset was guessed as IBM865 (mojibake)."""
    header = http_type.split("charset=")[-1].split(";")[0] if "charset=" in http_type else None
    meta = _META_CHARSET.search(body[:4096])
    for candidate in (_charset(header), _charset(meta.group(1).decode("ascii", "ignore")) if meta else None, "utf-8"):
        if not candidate:
            continue
        try:
            return body.decode(candidate)
        except (UnicodeDecodeError, LookupError):
            continue
    import cchardet

    detected = cchardet.detect(body[:65536]).get("encoding")
    if detected:
        try:
            return body.decode(detected)
        except (UnicodeDecodeError, LookupError):
            pass
    # Last, decode as browsers do: invalid bytes become U+FFFD. A page with a few stray bytes
    # (a truncated multi-byte character, one mis-encoded line) keeps its text; bytes that are
    # mostly invalid (binary served as text/html) stay undecodable.
    for candidate in (_charset(header), "utf-8"):
        try:
            text = body.decode(candidate or "utf-8", errors="replace")
        except LookupError:
            continue
        if text.count("\ufffd") <= len(text) * MAX_REPLACED_SHARE:
            return text
    return None


# 1%: a real page with an encoding slip has a handful of bad bytes in thousands; binary data
# decoded as UTF-8 has replacement characters in ~half of its positions.
MAX_REPLACED_SHARE = 0.01

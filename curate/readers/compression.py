"""gzip and zstd decompression that survives damage: a member (gzip) or frame (zstd) that cannot be
decompressed costs only itself; reading resumes at the next one, and the damage is reported."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

GZIP_MAGIC = b"\x1f\x8b\x08"
DECOMPRESS_ERRORS: tuple[type[BaseException], ...] = (EOFError, zlib.error, gzip.BadGzipFile, OSError)
try:
    import zstandard

    DECOMPRESS_ERRORS = (*DECOMPRESS_ERRORS, zstandard.ZstdError)
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
class Damage:
    """A gzip member or zstd frame that could not be decompressed."""

    unit: str  # "gzip member" or "zstd frame"
    start: int  # byte offset of the damaged member in the compressed file
    resume: int | None  # byte offset where reading resumed, None: nothing readable followed
    error: str
    at_end: bool  # found by the checksum or size check at the member's end, after its data

    def describe(self, after_line: int) -> str:
        where = (
            f"reading resumed at the next {self.unit}, byte {self.resume}"
            if self.resume is not None
            else f"no later {self.unit} found, the rest of the file is skipped"
        )
        if self.at_end:
            lost = "found by the check at its end: lines read from it before are kept and may hold altered bytes"
        else:
            lost = f"its lines from line {after_line + 1} on are lost (how many cannot be known)"
        return f"{self.unit} at byte {self.start}: {self.error}; {lost}; {where}"


@dataclass
class Long:
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


def _members_from(raw: BinaryIO, start: int, codec: str) -> Generator[bytes, None, Damage | None]:
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
                    return Damage(unit, member, None, "the file ends inside it (truncated)", False)
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
                    return Damage(unit, member, None, str(exc), False)
                # The CRC check failed after the member's data: zlib drops the output of that
                # last call, so it is decoded again without the trailer and handed out, and a
                # member failing its CRC keeps all its lines, not those of earlier calls only.
                if out := _before_trailer(saved, pending):
                    yield out
                return Damage(unit, member, None, str(exc), True)
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


def decompressed(raw: BinaryIO, codec: str) -> Iterator[bytes | Damage]:
    """The decompressed bytes of a multi-member gzip or multi-frame zstd file, with a Damage
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
        resume = next_member(raw, damage.start + 1, magic)
        while resume is not None and not _opens(raw, resume, codec):
            resume = next_member(raw, resume + 1, magic)
        damage.resume = resume
        yield damage
        start = resume


def next_member(raw: BinaryIO, after: int, magic: bytes) -> int | None:
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
        carry = window[-(len(magic) - 1) :]
        position += len(chunk)


def plain_chunks(f: BinaryIO) -> Iterator[bytes]:
    while chunk := f.read(_READ_CHUNK):
        yield chunk


def split_lines(chunks: Iterator[bytes | Damage], limit: int) -> Iterator[bytes | Long | Damage]:
    """Lines (without their newline) of a stream of chunks. A line over `limit` bytes is not
    held in memory, only measured. A line cut by damage is part of what the damage cost."""
    parts: list[bytes] = []
    size = 0  # bytes of the line so far, counted even when not kept
    for chunk in chunks:
        if isinstance(chunk, Damage):
            parts, size = [], 0
            yield chunk
            continue
        pieces = chunk.split(b"\n")
        for piece in pieces[:-1]:
            total = size + len(piece) + 1
            if total > limit:
                yield Long(total)
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
        yield Long(size) if size > limit else b"".join(parts)

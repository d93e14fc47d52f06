"""Document-structure signals for the combined quality score: what a bag-of-words classifier
over normalised words cannot see (how long the document is, whether its lines are prose or
menus, how much is repeated, punctuated or symbols), counted with numpy over a whole batch at
once (bench/RESULTS-quality.md).

Gopher/C4/FineWeb compute similar ratios, but datatrove's filters record only a verdict, not
the value, so the numbers are computed here once, in one place, for scoring."""

from __future__ import annotations

import numpy as np

# Lines that end a sentence (C4's rule, with closing quotes and brackets).
TERMINAL = (".", "!", "?", '"', "'", "\u201d", ")", ":")
BULLETS = ("-", "*", "\u2022", "\u00b7", "\u25cf", "\u25aa", ">", "|", "#")
# A boilerplate-phrase share ("cookie", "privacy", "subscribe", ...) was measured and dropped:
# coefficient -0.04 of 13 in the regression, and six substring counts per page cost ~25% of a
# fastText predict. Repeated lines (dup_line_share) and short lines carry what it would.


def _class_table() -> bytes:
    """Byte -> class, for bytes.translate: 0 lower/other letter, 1 upper, 2 digit, 3 symbol,
    4 space or tab, 5 newline (blank bytes are the classes >= 4: one comparison)."""
    table = bytearray(256)
    for code in range(128):
        c = chr(code)
        table[code] = (
            5
            if c in "\n\r"
            else 1
            if c.isupper()
            else 2
            if c.isdigit()
            else 4
            if c.isspace()
            else 0
            if c.isalpha()
            else 3
        )
    return bytes(table)


def _byte_set(chars: tuple[str, ...]) -> np.ndarray:
    table = np.zeros(256, dtype=bool)
    for c in chars:
        table[c.encode("utf-8")[-1]] = True  # the last byte of a non-ASCII mark (e.g. the closing quote)
    return table


_CLASS = _class_table()
_TERMINAL_BYTES = _byte_set(TERMINAL)
_BULLET_BYTES = _byte_set(tuple(b for b in BULLETS if b.isascii()))
# Bytes that start a character on which Python's splitlines/strip and the byte lines disagree
# (a bytes.translate table to 0/1: one C pass, ~5x faster than indexing a numpy table).
_EXOTIC_LEAD = bytes(1 if b in (0x0B, 0x0C, 0x1C, 0x1D, 0x1E, 0xC2, 0xE1, 0xE2, 0xE3) else 0 for b in range(256))
# Names of the signals, in the order `signals` returns them (the combined model's inputs).
NAMES = (
    "log_words",
    "log_mean_words_per_line",
    "punct_line_share",
    "short_line_share",
    "prose_word_share",
    "dup_line_share",
    "bullet_line_share",
    "mean_word_length",
    "symbol_ratio",
    "digit_ratio",
    "upper_ratio",
)


# The line and character signals read the opening 3,000 characters (a page's layout shows in
# its first screen; more costs time the stage does not have, bench/RESULTS-quality.md); the
# word count is extrapolated from them by length, exact for pages shorter than that.
STRUCTURE_CHARS = 3_000


def signals(text: str, max_chars: int = 20_000) -> list[float]:
    """The structure signals of one document (see NAMES); all finite, zeros for empty text."""
    return [float(v) for v in signals_batch([text], max_chars)[0]]


# signals_batch counts at most this many documents in one numpy pass: the arrays of 128 opening
# windows (~0.4 MB of bytes, ~0.5 MB of word offsets) stay in a core's cache; 512 at once took
# 1.7x the CPU time on bench_quality's documents (42 vs 24 ms), 16 at once 1.2x (numpy's fixed
# cost per call).
CHUNK_DOCS = 128
# _may_repeat_a_line packs a chunk's document index into 8 bits and a line's length (bytes of at
# most STRUCTURE_CHARS characters, <= 4 bytes each) into 14.
assert CHUNK_DOCS <= 1 << 8 and 4 * STRUCTURE_CHARS < 1 << 14


def signals_batch(texts: list[str], max_chars: int = 20_000) -> np.ndarray:
    """The structure signals of many documents, one row each (see NAMES); zeros for a text
    without words.

    The opening STRUCTURE_CHARS of every text are joined by newlines into one byte array and
    counted with numpy in one pass per CHUNK_DOCS documents (a class per byte by bytes.translate,
    word starts and ends, the first word after each newline, per-document sums by bincount and
    reduceat): no Python loop over words, and no per-document numpy calls, whose fixed cost
    (~25 calls of a few microseconds) was most of the time on short pages; only the duplicate
    lines are counted per document, by Python's own splitlines and strip. Measured against a
    fastText predict in bench/RESULTS-quality.md."""
    if len(texts) > CHUNK_DOCS:
        return np.vstack(
            [_signals_chunk(texts[i : i + CHUNK_DOCS], max_chars) for i in range(0, len(texts), CHUNK_DOCS)]
        )
    return _signals_chunk(texts, max_chars)


def _signals_chunk(texts: list[str], max_chars: int) -> np.ndarray:
    n = len(texts)
    out = np.zeros((n, len(NAMES)))
    if n == 0:
        return out
    heads = [t[: min(max_chars, STRUCTURE_CHARS)] for t in texts]
    datas = [h.encode("utf-8", "ignore") for h in heads]
    lens = np.fromiter((len(d) for d in datas), dtype=np.int64, count=n)
    joined = b"\n".join(datas)  # the separator ends a line, so no line spans two documents
    if not joined:
        return out
    raw = np.frombuffer(joined, dtype=np.uint8)
    classes = joined.translate(_CLASS)
    cls = np.frombuffer(classes, dtype=np.uint8)
    # Only byte-sized masks over the bytes; everything else is over words (~1/6 the size).
    solid = cls < 4  # not whitespace or newline
    starts_mask = np.empty_like(solid)
    starts_mask[0] = solid[0]
    np.greater(solid[1:], solid[:-1], out=starts_mask[1:])  # a word starts where a non-blank byte follows a blank one
    ends_mask = np.empty_like(solid)
    ends_mask[-1] = solid[-1]
    np.greater(solid[:-1], solid[1:], out=ends_mask[:-1])  # ... and ends where a blank one follows
    ws, we = np.flatnonzero(starts_mask), np.flatnonzero(ends_mask)  # the k-th word is ws[k]..we[k]
    if not ws.size:  # no words in the batch (tested here: bytes.strip() copied the whole batch)
        return out
    starts = np.concatenate(([0], np.cumsum(lens + 1)[:-1]))  # first byte of each document
    # The document of each word: each document's index repeated for its words, whose first is
    # found by placing the (few) document starts among the (many) words (6x faster than
    # searching every word among the documents).
    wdoc = np.repeat(np.arange(n), np.diff(np.append(np.searchsorted(ws, starts), ws.size)))
    n_words = np.bincount(wdoc, minlength=n)
    # A word opens a line when a newline lies between it and the word before (words hold no
    # newline): the first word after each newline, found by placing the newlines among the words.
    new_line = np.zeros(ws.size + 1, dtype=bool)
    new_line[np.searchsorted(ws, np.flatnonzero(cls == 5))] = True
    new_line = new_line[: ws.size]
    new_line[0] = True
    first_word = np.flatnonzero(new_line)
    last_word = np.append(first_word[1:] - 1, ws.size - 1) if first_word.size else first_word
    words_per_line = last_word - first_word + 1
    line_doc = wdoc[first_word]
    n_lines = np.bincount(line_doc, minlength=n)
    short = np.bincount(line_doc[words_per_line < 4], minlength=n)
    prose_lines = words_per_line >= 10
    prose = np.bincount(line_doc[prose_lines], weights=words_per_line[prose_lines], minlength=n)
    punct = np.bincount(line_doc, weights=_TERMINAL_BYTES[raw[we[last_word]]], minlength=n)
    bullets = np.bincount(line_doc, weights=_BULLET_BYTES[raw[ws[first_word]]], minlength=n)
    # Bytes of each class per document: one reduceat per class over the class array, padded with
    # a newline so that every document's segment (its bytes and the newline after them) is
    # non-empty; that newline is taken off again (a Python count per document cost ~3x more).
    # Summed as uint8 into int32: 6x faster than bool into int64, and a head's < 2^31 bytes.
    padded = np.append(cls, np.uint8(5))
    counts = np.zeros((n, 5))
    for c in range(1, 4):  # upper, digit, symbol
        counts[:, c] = np.add.reduceat((padded == c).view(np.uint8), starts, dtype=np.int32)
    counts[:, 4] = np.add.reduceat((padded >= 4).view(np.uint8), starts, dtype=np.int32) - 1  # blanks
    dup = np.zeros(n)
    check = _may_repeat_a_line(joined, raw, starts, ws[first_word], we[last_word], line_doc, words_per_line, n)
    for i in np.flatnonzero(check & (n_words > 0)).tolist():
        distinct = set(map(str.strip, heads[i].splitlines()))
        dup[i] = max(0, int(n_lines[i]) - (len(distinct) - ("" in distinct)))
    counts[:, 0] = lens - counts[:, 1:].sum(axis=1)
    ok = n_words > 0
    w = np.maximum(n_words, 1).astype(float)
    nl = np.maximum(n_lines, 1).astype(float)
    nc = np.maximum(lens, 1).astype(float)
    spaces = counts[:, 4]
    letters = counts[:, 0] + counts[:, 1]
    head_len = np.fromiter((max(1, len(h)) for h in heads), dtype=float, count=n)
    full_len = np.fromiter((min(len(t), max_chars) for t in texts), dtype=float, count=n)
    cols = [
        np.log1p(n_words * full_len / head_len),
        np.log1p(n_words / nl),
        punct / nl,
        short / nl,
        np.minimum(1.0, prose / w),
        dup / nl,
        bullets / nl,
        np.minimum(20.0, (lens - spaces) / w),
        counts[:, 3] / nc,
        counts[:, 2] / nc,
        counts[:, 1] / np.maximum(1, letters),
    ]
    out[ok] = np.stack(cols, axis=1)[ok]
    return out


def _may_repeat_a_line(
    joined: bytes,
    raw: np.ndarray,
    starts: np.ndarray,
    line_start: np.ndarray,
    line_end: np.ndarray,
    line_doc: np.ndarray,
    words_per_line: np.ndarray,
    n: int,
) -> np.ndarray:
    """Which documents need Python's count of repeated lines (splitlines, strip, set: ~8 us a
    document, most of the signals' Python time); the others repeat no line, so their count is 0.

    A document is checked when two of its lines (first to last non-blank byte) agree on length,
    word count and first, middle and last byte, or when it holds a character on which Python's
    lines differ from the byte lines here: \\v, \\f, \\x1c-\\x1e (splitlines breaks there) and the
    non-ASCII whitespace that strip() removes (NBSP, U+2000-U+200A, U+2028, ...). Otherwise
    Python's stripped non-empty lines are exactly these byte lines, all different. ~1 document in
    5 is checked on bench_quality's pages."""
    length = line_end - line_start
    # One int64 key a line: document (< 2^8 of them), length (< 2^14 bytes), word count (< 2^13),
    # first, middle and last byte (3 x 8 bits); equal keys sit side by side once sorted.
    keys = line_doc << 14 | length
    keys = keys << 13 | words_per_line
    for k in range(3):  # first, middle, last byte
        keys = keys << 8 | raw[line_start + (length * k) // 2]
    keys.sort()
    check = np.zeros(n, dtype=bool)
    check[keys[1:][keys[1:] == keys[:-1]] >> 51] = True
    # Lead bytes of the exotic characters (the ASCII ones are their own), then their next two bytes.
    lead = np.flatnonzero(np.frombuffer(joined.translate(_EXOTIC_LEAD), dtype=bool))
    if lead.size:
        tail = np.append(raw, np.zeros(2, dtype=np.uint8))
        b0, b1, b2 = raw[lead], tail[lead + 1], tail[lead + 2]
        exotic = (
            (b0 < 0x80)
            | ((b0 == 0xC2) & ((b1 == 0x85) | (b1 == 0xA0)))
            | ((b0 == 0xE1) & (b1 == 0x9A) & (b2 == 0x80))
            | ((b0 == 0xE2) & (b1 == 0x80) & ((b2 <= 0x8A) | (b2 == 0xA8) | (b2 == 0xA9) | (b2 == 0xAF)))
            | ((b0 == 0xE2) & (b1 == 0x81) & (b2 == 0x9F))
            | ((b0 == 0xE3) & (b1 == 0x80) & (b2 == 0x80))
        )
        check[np.searchsorted(starts, lead[exotic], side="right") - 1] = True
    return check


def word_count(text: str) -> int:
    return len(text.split())


def mean_words_per_line(text: str) -> float:
    lines = [line for line in text.splitlines() if line.strip()]
    return len(text.split()) / len(lines) if lines else 0.0

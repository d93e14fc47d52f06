"""Text normalisation for dedup: one function for exact keys, one for near-duplicate words.

Both are versioned: the persistent index stores `NORMALIZE_VERSION`, and a change here that
alters any output must bump it, so an old index is refused instead of silently matching
nothing (see curate/dedup/index.py).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

import regex

NORMALIZE_VERSION = 1

# Runs of digits, with decimal or thousands separators, become "0": a re-crawl that differs
# only in a date, a price or a view counter is the same document (datatrove's simplify_text
# does the same for FineWeb).
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
# A word is a run of letters and digits; punctuation, symbols and "_" separate words.
_WORD = re.compile(r"[^\W_]+")
_COMBINING = regex.compile(r"\p{Mn}+")
# The same rules on ASCII bytes (~70% of web text): one regex for numbers, then one
# bytes.translate that lower-cases and turns every non-alphanumeric byte into a space.
# 2.4x faster than the str path on the real documents, and word for word identical
# (tests/test_dedup_signatures.py checks it on arbitrary ASCII text).
_NUMBER_BYTES = re.compile(rb"[0-9]+(?:[.,][0-9]+)*")
_ASCII_TABLE = bytes(
    (c + 32 if 65 <= c <= 90 else c) if (48 <= c <= 57 or 65 <= c <= 90 or 97 <= c <= 122) else 32 for c in range(256)
)


def exact_key(text: str) -> tuple[int, int]:
    """128 bits of the sha1 of the case- and whitespace-normalised text, as two unsigned
    64-bit ints. 128 bits: at 10^9 documents the chance of one false exact match is ~10^-21
    (64 bits would give ~3%)."""
    canonical = " ".join(text.lower().split())
    digest = hashlib.sha1(canonical.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big"), int.from_bytes(digest[8:16], "big")


def is_blank(text: str) -> bool:
    return not text or text.isspace()


def near_words(text: str) -> list[str]:
    """The words that near-duplicate shingles are made of: lower case, accents removed (NFKD
    then combining marks dropped, only for non-ASCII text: ~40x cheaper on the ASCII majority),
    numbers as "0", punctuation dropped."""
    text = text.lower()
    if not text.isascii():
        text = _COMBINING.sub("", unicodedata.normalize("NFKD", text))
    text = _NUMBER.sub("0", text)
    return _WORD.findall(text)


def near_tokens(text: str) -> list[str] | list[bytes]:
    """near_words, as bytes for ASCII text (the fast path) and str otherwise. Hashing a
    token hashes its UTF-8 bytes either way, so both paths give the same shingles."""
    if text.isascii():
        return _NUMBER_BYTES.sub(b"0", text.encode("ascii")).translate(_ASCII_TABLE).split()
    return near_words(text)

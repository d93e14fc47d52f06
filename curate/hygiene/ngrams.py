"""Words and n-gram hashes for benchmark decontamination: one function each, shared by the
index builder and the matcher, so both sides always normalise the same way.

Normalisation is datatrove's `simplify_text` with its defaults (the one its n-gram
decontamination uses): lowercase, punctuation to spaces, every number to 0, diacritics
stripped, whitespace collapsed. Numbers normalised means a GSM8K problem with its numbers
changed still matches. Words are then split on whitespace (after punctuation removal this is
what datatrove's NLTK word tokenizer returns, without its cost).

An n-gram's hash is a polynomial over 64-bit xxh3 hashes of its words, computed for all
positions of a document with n numpy operations instead of one string join and one hash call
per position (datatrove's filter): that is where curate's speed over it comes from
(bench/RESULTS-hygiene.md)."""

from __future__ import annotations

import re
import unicodedata

import numpy as np
import xxhash
from datatrove.utils.text import NUMBERS_PATTERN, PUNCTUATION, TextNormConfig

NORM = TextNormConfig()  # datatrove's defaults, listed above
# normalise() below is those defaults' steps, in simplify_text's order; other settings would need other steps.
assert NORM == TextNormConfig(True, True, True, True, True, False, False), "datatrove's simplify_text defaults changed"
# Punctuation to a space and whitespace collapsed in one regex pass: a run of punctuation and
# whitespace is exactly a run of whitespace once the punctuation is a space. On 300 long real
# pages (bench/RESULTS.md, issue 18) simplify_text's per-character steps (`str.translate` with a
# dict on non-ASCII text, a generator over every character for the diacritics) were ~1.4 ms of
# the hygiene stage's ~4 ms per kept page; these steps give the same string ~2.5x faster.
_PUNCT_OR_SPACE = re.compile("(?:[" + "".join(re.escape(c) for c in sorted(set(PUNCTUATION))) + r"]|\s)+")
_IS_MARK: dict[str, bool] = {}  # character -> its category is Mn (a combining mark): looked up once
# Odd 64-bit multiplier (the golden ratio constant): multiplication by it is a bijection
# mod 2^64, so distinct word sequences collide only by chance (~ index size / 2^64 per n-gram).
_MULT = np.uint64(0x9E3779B97F4A7C15)
_EMPTY = np.empty(0, dtype=np.uint64)


def normalise(text: str) -> str:
    """datatrove's `simplify_text(text, NORM)`, the same string (tests/test_decontam.py checks it)."""
    text = NUMBERS_PATTERN.sub("0", text.lower())
    text = _PUNCT_OR_SPACE.sub(" ", text).strip()
    if not text.isascii():  # ASCII has no combining marks and NFD leaves it as it is
        text = unicodedata.normalize("NFD", text)
        marks = {}
        for c in set(text):
            mark = _IS_MARK.get(c)
            if mark is None:
                mark = _IS_MARK[c] = unicodedata.category(c) == "Mn"
            if mark:
                marks[ord(c)] = None
        if marks:
            text = text.translate(marks)
    return text.strip()


def words(text: str) -> list[str]:
    return normalise(text).split()


def word_hashes(ws: list[str]) -> np.ndarray:
    h = xxhash.xxh3_64_intdigest
    return np.fromiter((h(w) for w in ws), dtype=np.uint64, count=len(ws))


def ngram_hashes(wh: np.ndarray, n: int) -> np.ndarray:
    """Hash of the n-gram starting at each position: len(wh) - n + 1 values (none if shorter)."""
    count = len(wh) - n + 1
    if count <= 0:
        return _EMPTY
    h = wh[:count].copy()
    for k in range(1, n):  # uint64 arithmetic wraps mod 2^64, as a hash should
        h *= _MULT
        h += wh[k : k + count]
    return h


def text_ngrams(text: str, n: int) -> tuple[list[str], np.ndarray]:
    ws = words(text)
    return ws, ngram_hashes(word_hashes(ws), n)

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

import numpy as np
import xxhash
from datatrove.utils.text import TextNormConfig, simplify_text

NORM = TextNormConfig()  # datatrove's defaults, listed above
# Odd 64-bit multiplier (the golden ratio constant): multiplication by it is a bijection
# mod 2^64, so distinct word sequences collide only by chance (~ index size / 2^64 per n-gram).
_MULT = np.uint64(0x9E3779B97F4A7C15)
_EMPTY = np.empty(0, dtype=np.uint64)


def normalise(text: str) -> str:
    return simplify_text(text, NORM)


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

"""Gopher repetition's n-gram counts (datatrove's `find_top_duplicate(get_n_grams(words, n))`
and `find_all_duplicate(words, n)`), the same numbers, for the fused rules (filters/fused_rules.py).

Why (issue 18): on 300 long real pages (WCXB, ~11 KB of text each) datatrove's forms, a Python
step per word position for each of n = 2..10, were ~3 ms per page, a fifth of the fused rules.
Most positions start an n-gram that occurs once (for n = 5 ~94 % of them) and neither count
needs those: the top n-gram is one that repeats (or, if none does, the first), and the greedy
scan adds a once-seen n-gram to its set and steps over it by one, so walking the repeated
positions alone gives the same sum. The repeated positions are found in numpy: a key can only
repeat if its (length, polynomial hash of its characters) does; equal strings have equal
hashes, and a hash collision only adds a position, which the exact count of the sliced keys
then drops. Keys are strings, not word tuples, as datatrove's are: "a"+"bc" equals "ab"+"c"."""

from __future__ import annotations

from collections import Counter

import numpy as np

# Above this many characters the hashes' arrays (~28 bytes a character) are not worth their
# memory: every position is sliced and counted instead (the same result, at the old speed).
MAX_HASHED_CHARS = 2_000_000
_BASE = 0x100000001B3  # odd, so invertible mod 2^64 (uint64 arithmetic wraps)
_BASE_INV = pow(_BASE, -1, 1 << 64)
_LENGTH_MULT = np.uint64(0x9E3779B97F4A7C15)


class KeyHashes:
    """Hashes of substrings text[a:b], equal for equal substrings wherever they sit."""

    __slots__ = ("_prefix", "_scale", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._prefix: np.ndarray | None = None  # sum of c_k * B^k over the first i characters
        self._scale: np.ndarray | None = None  # B^-i

    def hashes(self, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        if self._prefix is None or self._scale is None:
            codes = np.frombuffer(self.text.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
            powers = np.ones(len(codes) + 1, dtype=np.uint64)
            np.cumprod(np.full(len(codes), _BASE, dtype=np.uint64), out=powers[1:])
            self._prefix = np.zeros(len(codes) + 1, dtype=np.uint64)
            np.cumsum(codes * powers[:-1], out=self._prefix[1:])
            self._scale = np.ones(len(codes) + 1, dtype=np.uint64)
            np.cumprod(np.full(len(codes), _BASE_INV, dtype=np.uint64), out=self._scale[1:])
        shifted = (self._prefix[ends] - self._prefix[starts]) * self._scale[starts]
        return shifted + (ends - starts).astype(np.uint64) * _LENGTH_MULT

    def maybe_repeated(self, starts: np.ndarray, ends: np.ndarray) -> list[int]:
        """The indices i (ascending) whose text[starts[i]:ends[i]] may occur at another index:
        a superset of those that do."""
        if len(self.text) > MAX_HASHED_CHARS:
            return list(range(len(starts)))
        h = self.hashes(starts, ends)
        order = np.argsort(h, kind="stable")
        ordered = h[order]
        same = ordered[1:] == ordered[:-1]
        maybe = np.zeros(len(h), dtype=bool)
        maybe[order[1:][same]] = True
        maybe[order[:-1][same]] = True
        return np.flatnonzero(maybe).tolist()


class NgramRepeats:
    """One document's words, `bounds[i]` where word i starts in "".join(words) (`bounds[-1]`
    its end); the two counts of Gopher repetition for any n, in any order."""

    def __init__(self, words: list[str]) -> None:
        n_words = len(words)
        self.n_words = n_words
        self.bounds = np.zeros(n_words + 1, dtype=np.int64)
        np.cumsum(np.fromiter(map(len, words), dtype=np.int64, count=n_words), out=self.bounds[1:])
        self._joined = KeyHashes("".join(words))
        self._spaced = KeyHashes(" ".join(words))  # word i spans bounds[i] + i : bounds[i + 1] + i there

    def top_duplicate_chars(self, n: int) -> int:
        """datatrove's `find_top_duplicate(get_n_grams(words, n))`: the most common n-gram (joined
        by spaces; the first seen among equals, as `Counter.most_common` picks) times its count."""
        count = self.n_words - n + 1
        if count <= 0:
            raise ValueError(f"no {n}-gram in {self.n_words} words")  # datatrove's most_common(1)[0] fails too
        index = np.arange(count, dtype=np.int64)
        starts = self.bounds[:count] + index
        ends = self.bounds[n : n + count] + index + (n - 1)
        text, first = self._spaced.text, int(ends[0] - starts[0])
        positions = self._spaced.maybe_repeated(starts, ends)
        if not positions:
            return first
        counts = Counter(text[a:b] for a, b in zip(starts[positions].tolist(), ends[positions].tolist()))
        gram, top = counts.most_common(1)[0]
        # a key that repeats has all its positions here, in document order; if none repeats
        # (hash collisions only), every count is 1 and the first n-gram of the text wins
        return len(gram) * top if top > 1 else first

    def all_duplicate_chars(self, n: int) -> int:
        """datatrove's `find_all_duplicate(words, n)`: keys are the n words joined without a separator."""
        last = self.n_words - n + 1  # positions 0 .. last-1 start an n-gram
        if last <= 1:
            return 0
        starts, ends = self.bounds[:last], self.bounds[n : n + last]
        positions = self._joined.maybe_repeated(starts, ends)
        if not positions:
            return 0
        text = self._joined.text
        keys = [text[a:b] for a, b in zip(starts[positions].tolist(), ends[positions].tolist())]
        counts = Counter(keys)
        unique: set[str] = set()
        repeated_chars, idx = 0, 0
        for pos, n_gram in zip(positions, keys):
            if pos < idx or counts[n_gram] < 2:
                continue  # stepped over by the previous repeat's jump of n, or seen once only
            if n_gram in unique:
                repeated_chars += len(n_gram)
                idx = pos + n
            else:
                unique.add(n_gram)
                idx = pos + 1
        return repeated_chars

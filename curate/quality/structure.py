"""Document-structure signals for the combined quality score: what a bag-of-words classifier
over normalised words cannot see (how long the document is, whether its lines are prose or
menus, how much is repeated, punctuated or symbols). Plain Python over the first `max_chars`
characters, one pass over lines and one over words: a few microseconds per kB, cheap next to
a fastText predict (bench/RESULTS-quality.md).

Gopher/C4/FineWeb compute similar ratios, but datatrove's filters record only a verdict, not
the value, so the numbers are computed here once, in one place, for scoring."""

from __future__ import annotations

import math

import numpy as np

# Lines that end a sentence (C4's rule, with closing quotes and brackets).
TERMINAL = (".", "!", "?", '"', "'", "\u201d", ")", ":")
BULLETS = ("-", "*", "\u2022", "\u00b7", "\u25cf", "\u25aa", ">", "|", "#")
# A boilerplate-phrase share ("cookie", "privacy", "subscribe", ...) was measured and dropped:
# coefficient -0.04 of 13 in the regression, and six substring counts per page cost ~25% of a
# fastText predict. Repeated lines (dup_line_share) and short lines carry what it would.

def _class_table() -> np.ndarray:
    """Byte -> 0 lower/other letter, 1 upper, 2 digit, 3 space or tab, 4 symbol, 5 newline."""
    table = np.zeros(256, dtype=np.uint8)
    for code in range(128):
        c = chr(code)
        table[code] = 5 if c in "\n\r" else 1 if c.isupper() else 2 if c.isdigit() else 3 if c.isspace() else 0 if c.isalpha() else 4
    return table


def _byte_set(chars: tuple[str, ...]) -> np.ndarray:
    table = np.zeros(256, dtype=bool)
    for c in chars:
        table[c.encode("utf-8")[-1]] = True  # the last byte of a non-ASCII mark (e.g. the closing quote)
    return table


_CLASS = _class_table()
_TERMINAL_BYTES = _byte_set(TERMINAL)
_BULLET_BYTES = _byte_set(tuple(b for b in BULLETS if b.isascii()))
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


# The line and character signals read the opening 5,000 characters (a page's layout shows in
# its first screens; 20,000 cost 2-3x more, ~40% of a fastText predict); the word count is
# extrapolated from them by length, exact for pages shorter than that.
STRUCTURE_CHARS = 5_000


def signals(text: str, max_chars: int = 20_000) -> list[float]:
    """The structure signals of one document (see NAMES); all finite, zeros for empty text.

    Everything is counted over the UTF-8 bytes with numpy (one class per byte, then word
    starts, line numbers, first and last byte of each line): no Python loop over lines or
    words, so a 900-line menu page costs what a 50-line article does. Measured: ~40% of one
    fastText predict as a Python loop over lines and words, ~15% like this
    (bench/RESULTS-quality.md)."""
    head = text[: min(max_chars, STRUCTURE_CHARS)]
    data = head.encode("utf-8", "ignore")
    raw = np.frombuffer(data, dtype=np.uint8)
    if raw.size == 0:
        return [0.0] * len(NAMES)
    cls = _CLASS[raw]
    blank = cls >= 3  # whitespace or newline ...
    blank &= cls != 4  # ... not symbols
    newline = cls == 5
    solid = ~blank
    starts = solid.copy()
    starts[1:] &= blank[:-1]  # a word starts where a non-blank byte follows a blank one
    n_words = int(starts.sum())
    if n_words == 0:
        return [0.0] * len(NAMES)
    line_of = np.cumsum(newline)  # line number of every byte
    words_per_line = np.bincount(line_of[starts], minlength=int(line_of[-1]) + 1)
    used = words_per_line[words_per_line > 0]
    n_lines = int(used.size)
    pos = np.flatnonzero(solid)
    lid = line_of[pos]
    change = lid[1:] != lid[:-1]
    last = pos[np.append(change, True)]  # the last non-blank byte of every non-empty line
    first = pos[np.concatenate(([True], change))]
    punct = int(_TERMINAL_BYTES[raw[last]].sum())
    bullets = int(_BULLET_BYTES[raw[first]].sum())
    short = int((used < 4).sum())
    prose = int(used[used >= 10].sum())
    lines = [line.strip() for line in head.splitlines()]
    dup = n_lines - (len(set(lines)) - ("" in lines))
    counts = np.bincount(cls, minlength=6)
    lower, upper, digits, symbols = int(counts[0]), int(counts[1]), int(counts[2]), int(counts[4])
    spaces = int(counts[3] + counts[5])
    letters = lower + upper
    n_chars = int(raw.size)
    total_words = n_words * min(len(text), max_chars) / max(1, len(head))
    return [
        math.log1p(total_words),
        math.log1p(n_words / n_lines),
        punct / n_lines,
        short / n_lines,
        min(1.0, prose / n_words),
        max(0, dup) / n_lines,
        bullets / n_lines,
        min(20.0, (n_chars - spaces) / n_words),
        symbols / n_chars,
        digits / n_chars,
        upper / max(1, letters),
    ]


def word_count(text: str) -> int:
    return len(text.split())


def mean_words_per_line(text: str) -> float:
    lines = [line for line in text.splitlines() if line.strip()]
    return len(text.split()) / len(lines) if lines else 0.0

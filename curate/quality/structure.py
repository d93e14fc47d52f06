"""Document-structure signals for the combined quality score: what a bag-of-words classifier
over normalised words cannot see (how long the document is, whether its lines are prose or
menus, how much is repeated, punctuated or symbols). Plain Python over the first `max_chars`
characters, one pass over lines and one over words: a few microseconds per kB, cheap next to
a fastText predict (bench/RESULTS-quality.md).

Gopher/C4/FineWeb compute similar ratios, but datatrove's filters record only a verdict, not
the value, so the numbers are computed here once, in one place, for scoring."""

from __future__ import annotations

import math
import re

import numpy as np

# Lines that end a sentence (C4's rule, with closing quotes and brackets).
TERMINAL = (".", "!", "?", '"', "'", "\u201d", ")", ":")
BULLETS = ("-", "*", "\u2022", "\u00b7", "\u25cf", "\u25aa", ">", "|", "#")
# Lines with these are page furniture, not content (FineWeb and C4 drop pages full of them).
BOILERPLATE = (
    "cookie", "privacy policy", "terms of", "all rights reserved", "copyright", "\u00a9", "sign in", "log in", "login",
    "subscribe", "newsletter", "follow us", "share this", "read more", "click here", "skip to", "add to cart", "javascript",
)
# One match per line that holds any of them (`^` anchors each match at a line start).
_BOILERPLATE_LINE = re.compile("^[^\\n]*?(?:" + "|".join(re.escape(b) for b in BOILERPLATE) + ")", re.M)
# Gopher's stop words and a few more of English's most frequent: prose is full of them, menus and
# product grids are not.
STOP_WORDS = frozenset(
    "the be to of and a in that have i it for not on with he as you do at this but his by from they we her she or an "
    "will my one all would there their what so up out if about who which when can is are was were been has had its".split()
)

def _class_table() -> np.ndarray:
    """Byte -> 0 lower/other letter, 1 upper, 2 digit, 3 whitespace, 4 symbol."""
    table = np.zeros(256, dtype=np.int64)
    for code in range(128):
        c = chr(code)
        table[code] = 1 if c.isupper() else 2 if c.isdigit() else 3 if c.isspace() else 0 if c.isalpha() else 4
    return table


_CLASS = _class_table()
# Names of the signals, in the order `signals` returns them (the combined model's inputs).
NAMES = (
    "log_words",
    "log_mean_words_per_line",
    "punct_line_share",
    "short_line_share",
    "prose_word_share",
    "dup_line_share",
    "bullet_line_share",
    "boilerplate_line_share",
    "stop_word_share",
    "mean_word_length",
    "symbol_ratio",
    "digit_ratio",
    "upper_ratio",
)


def signals(text: str, max_chars: int = 20_000) -> list[float]:
    """The structure signals of one document (see NAMES); all finite, zeros for empty text."""
    text = text[:max_chars]
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line]
    words = text.split()
    n_words, n_lines = len(words), len(lines)
    if not n_words or not n_lines:
        return [0.0] * len(NAMES)
    # Per-line work in C calls (str methods, set, one regex): a page of 900 menu lines costs
    # what a page of 50 prose lines does in a Python loop.
    per_line = np.fromiter((line.count(" ") + 1 for line in lines), dtype=np.int64, count=n_lines)
    punct = sum(1 for line in lines if line.endswith(TERMINAL))
    short = int((per_line < 4).sum())
    prose = int(per_line[per_line >= 10].sum())
    bullets = sum(1 for line in lines if line.startswith(BULLETS))
    boiler = len(_BOILERPLATE_LINE.findall("\n".join(lines).lower()))
    dup = n_lines - len(set(lines))
    stop = sum(map(STOP_WORDS.__contains__, text.lower().split()))
    # Character classes by one table lookup over the UTF-8 bytes (C speed; a Python loop over
    # characters costs ~10 ms on 20 kB). Bytes >= 128 (inside non-ASCII letters) count as letters.
    counts = np.bincount(_CLASS[np.frombuffer(text.encode("utf-8", "ignore"), dtype=np.uint8)], minlength=5)
    lower, upper, digits, spaces, symbols = (int(c) for c in counts)
    letters = lower + upper
    n_chars = max(1, int(counts.sum()))
    return [
        math.log1p(n_words),
        math.log1p(n_words / n_lines),
        punct / n_lines,
        short / n_lines,
        min(1.0, prose / n_words),
        dup / n_lines,
        bullets / n_lines,
        boiler / n_lines,
        stop / n_words,
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

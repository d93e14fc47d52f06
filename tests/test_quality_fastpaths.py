"""The quality stage's fast paths against plain-Python references of what they compute: the
prose-line regular expression (possessive, read to endpos), the structure signals counted with
numpy over a joined batch, and normalisation (URLs searched behind a one-character gate). The
references spell out the definitions one line or word at a time; the fast code must give the
same values (bench/check_quality_scores.py compares whole score columns before and after a
change)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from curate.quality.combined import prose_lines
from curate.quality.normalize import _drop_tokens_with, normalize
from curate.quality.structure import BULLETS, NAMES, STRUCTURE_CHARS, TERMINAL, signals_batch

# Whitespace that str.split and the regular expressions treat alike but bytes do not, line
# breaks other than "\n", blank lines, tabs, CRLF, an empty text and URLs.
EDGE = [
    "",
    " ",
    "\n\n",
    " \x1c ",
    "a",
    "one two three four five six",
    "one two three four five\nsix",
    "  lead and trail blanks count as nothing at all  \r\n second line has six words here\n",
    "no\u00a0break\u00a0spaces split words for str but not for bytes at all\u2028next line",
    "tabs\tbetween\twords\tcount\tas\tblanks\tand\tso\tdo\vvertical\ftabs",
    "Ünïcödé “quoted” words are letters to the byte classes.\n- one\n- one\n* two\n> three",
    "Visit https://example.org/a?b=c or www.example.com, mail me@example.org; see http://x.y/z.",
    "a b c d e f\n\n\na b c d e f\n   a b c d e f   \nA B C D E F\n12 34 56 78 90 11",
    "word " * 2000 + "\n" + "line with six words in it\n" * 50,
    # Repeated lines that only Python's splitlines/strip see as such, or that differ only inside.
    "same line here\u00a0\nsame line here\nsame line here \r\nsame line here\t\n",
    "one\x0bone\x0cone\x1cone\x1done\x1eone\x85one\u2028one\u2029one",
    "ab\x1fcd\nab\x1fcd\n\x1fab\x1fcd\x1f\nab cd",
    "x\ud800y\nxy\nx\ud800y\n\ud800\n\ud800",
    "a b c d e f g\na b c x e f g\na b c d e f g\n\u3000a b c d e f g",
    "alpha beta\nalpha zeta\nalpha beta\n" * 3 + "\u2003" * 3,
    "abc def\u00a0\nabc def",  # repeated for Python only: strip() removes the NBSP
    "\u3000abc def\nabc def\u2003\nghi",
]


def reference_prose_lines(text: str, min_words: int, max_chars: int) -> str:
    head = text[:max_chars]
    return "\n".join(line for line in head.split("\n") if len(line.split()) >= min_words)


def reference_signals(text: str, max_chars: int = 20_000) -> list[float]:
    """The signals of one text, byte by byte and line by line (ASCII classes; other bytes letters)."""
    head = text[: min(max_chars, STRUCTURE_CHARS)]
    data = head.encode("utf-8", "ignore")
    blank = {b for b in range(128) if chr(b).isspace()}
    lines = [line for line in data.replace(b"\r", b"\n").split(b"\n")]
    words_by_line = [[w for w in _split_bytes(line, blank)] for line in lines]
    words_by_line = [ws for ws in words_by_line if ws]
    n_words = sum(len(ws) for ws in words_by_line)
    if not n_words:
        return [0.0] * len(NAMES)
    n_lines = len(words_by_line)
    terminal = {m.encode()[-1] for m in TERMINAL}
    bullets = {ord(b) for b in BULLETS if b.isascii()}
    upper = sum(65 <= b <= 90 for b in data)
    digit = sum(48 <= b <= 57 for b in data)
    spaces = sum(b in blank for b in data)
    symbol = sum(b < 128 and b not in blank and not chr(b).isalnum() for b in data)
    letters = len(data) - upper - digit - symbol - spaces + upper
    distinct = {line.strip() for line in head.splitlines()}
    dup = max(0, n_lines - (len(distinct) - ("" in distinct)))
    nl = n_lines
    return [
        math.log1p(n_words * min(len(text), max_chars) / max(1, len(head))),
        math.log1p(n_words / nl),
        sum(ws[-1][-1] in terminal for ws in words_by_line) / nl,
        sum(len(ws) < 4 for ws in words_by_line) / nl,
        min(1.0, sum(len(ws) for ws in words_by_line if len(ws) >= 10) / n_words),
        dup / nl,
        sum(ws[0][0] in bullets for ws in words_by_line) / nl,
        min(20.0, (len(data) - spaces) / n_words),
        symbol / max(1, len(data)),
        digit / max(1, len(data)),
        upper / max(1, letters),
    ]


def _split_bytes(line: bytes, blank: set[int]) -> list[bytes]:
    words, word = [], bytearray()
    for b in line:
        if b in blank:
            if word:
                words.append(bytes(word))
            word = bytearray()
        else:
            word.append(b)
    if word:
        words.append(bytes(word))
    return words


def reference_normalize(text: str, max_chars: int = 0) -> str:
    """normalize() before the slash gate: every URL mark searched in every text."""
    from curate.quality import normalize as N

    if max_chars and len(text) > max_chars:
        text = text[:max_chars]
    for mark in (N._URL_SCHEME, *N._URL_MARKS):
        if mark in text:
            text = _drop_tokens_with(text, mark)
    if not text.isascii():
        for a, b in N._FOLD:
            text = text.replace(a, b)
    data = text.encode("utf-8", "ignore").translate(N._TABLE)
    for p, spaced in N._PUNCT_BYTES:
        data = data.replace(p, spaced)
    return data.decode("utf-8")


@pytest.fixture(scope="module")
def texts(articles: list[dict[str, str]]) -> list[str]:
    return EDGE + [a["text"] for a in articles]


@pytest.mark.parametrize("min_words", [0, 1, 6, 8])
def test_prose_lines_are_the_lines_of_enough_words(texts: list[str], min_words: int) -> None:
    for text in texts:
        for max_chars in (20_000, 100):
            assert prose_lines(text, min_words, max_chars) == reference_prose_lines(text, max(min_words, 0), max_chars)


def test_structure_signals_of_a_joined_batch_equal_the_line_by_line_reference(texts: list[str]) -> None:
    for batch in (texts, texts[::-1], EDGE[:4], [""], ["a"]):
        got = signals_batch(batch)
        want = np.array([reference_signals(t) for t in batch])
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_normalize_with_the_slash_gate_equals_searching_every_mark(texts: list[str]) -> None:
    for text in texts:
        assert normalize(text, 20_000) == reference_normalize(text, 20_000)
    assert "example" not in normalize(EDGE[11]) and normalize("a://b c").split() == ["c"]

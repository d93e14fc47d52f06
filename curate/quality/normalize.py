"""Text normalisation shared by training and scoring: one function, so the model never sees a
text prepared differently from the ones it learnt from.

What it removes is what would let the model learn the *source* instead of the *quality*:
case, URLs, e-mail addresses, exact numbers, and markup symbols (wiki `|`, `*`, `=`, man-page
dashes). What it keeps is what carries style: words, and sentence punctuation (`. , ; : ? !`
as tokens of their own: explanatory prose has about one `.` per 15-25 words, navigation and
product lists have almost none).

Speed matters as much as the rules: the stage must keep >= 0.8x of a bare fastText predict
loop, and fastText predicts a 7 KB page in ~0.4 ms on one core. So every step is one pass in
C: `bytes.translate` over the UTF-8 bytes (~10 us for 7 KB, where `str.translate` takes
~600 us on any page with one accented letter), a few `replace`, and `find` loops only where
a URL or an address actually occurs. Whitespace is not collapsed: fastText
splits on runs of spaces itself; only newlines must go (fastText reads one line per example).
"""

from __future__ import annotations

# Sentence punctuation, split off as tokens of its own.
_PUNCT = ".,;:?!"
# Common non-ASCII punctuation of web pages, folded first so that most pages become ASCII and
# take translate's fast path.
_FOLD = (
    ("\u2019", "'"), ("\u2018", "'"), ("\u201c", " "), ("\u201d", " "), ("\u2013", " "), ("\u2014", " "),
    ("\u2026", "."), ("\u00a0", " "), ("\u00bb", " "), ("\u00ab", " "), ("\u00a9", " "), ("\u2022", " "),
    ("\u00b7", " "), ("\u00b6", " "), ("\u2122", " "), ("\u00ae", " "), ("\u2192", " "), ("\ufeff", " "),
)  # fmt: skip


def _byte_table() -> bytes:
    """256 entries: A-Z -> a-z, digits -> 0, ASCII symbols and whitespace -> space; bytes >= 128
    (the inside of UTF-8 sequences) unchanged, so the result is still valid UTF-8."""
    table = bytearray(range(256))
    for code in range(128):
        c = chr(code)
        if "A" <= c <= "Z":
            table[code] = ord(c.lower())
        elif c.isdigit():
            table[code] = ord("0")  # 2019 -> 0000: numbers count, their values do not
        elif not (c.isalpha() or c in _PUNCT or c in "' "):
            table[code] = ord(" ")  # newlines, tabs, markup and other symbols
    return bytes(table)


_TABLE = _byte_table()
_PUNCT_BYTES = [(p.encode(), f" {p} ".encode()) for p in _PUNCT]
# Tokens holding any of these are URLs or e-mail addresses: dropped. The scheme mark is tested
# apart (see normalize), the others in this order after it.
_URL_SCHEME = "://"
_URL_MARKS = ("www.", "@")


def _drop_tokens_with(text: str, mark: str) -> str:
    """Remove every whitespace-delimited token containing `mark` (URLs, e-mail addresses)."""
    out: list[str] = []
    start = 0
    i = text.find(mark)
    while i != -1:
        left = max(text.rfind(" ", start, i), text.rfind("\n", start, i), text.rfind("\t", start, i)) + 1
        right = len(text)
        for ws in (" ", "\n", "\t"):
            j = text.find(ws, i)
            if j != -1 and j < right:
                right = j
        out.append(text[start:left])
        out.append(" ")
        start = right
        i = text.find(mark, start)
    out.append(text[start:])
    return "".join(out)


def normalize(text: str, max_chars: int = 0) -> str:
    """Lowercase, URLs and e-mails dropped, digits -> `0`, sentence punctuation split off,
    other symbols and newlines -> spaces. `max_chars` > 0 keeps only the opening of very long
    texts. Tokens are separated by one or more spaces (fastText's tokenizer treats runs of
    spaces as one)."""
    if max_chars and len(text) > max_chars:
        text = text[:max_chars]
    # "/" first: a one-character search is ~20x faster than a three-character one, and half the
    # pages have no slash at all.
    if "/" in text and _URL_SCHEME in text:
        text = _drop_tokens_with(text, _URL_SCHEME)
    for mark in _URL_MARKS:
        if mark in text:
            text = _drop_tokens_with(text, mark)
    if not text.isascii():
        for a, b in _FOLD:
            if a in text:
                text = text.replace(a, b)
    # bytes.translate is one C pass whatever the script (str.translate is ~100x slower on
    # any non-ASCII text); letters outside ASCII keep their case (rare in English pages).
    data = text.encode("utf-8", "ignore").translate(_TABLE)
    for p, spaced in _PUNCT_BYTES:
        if p in data:
            data = data.replace(p, spaced)
    return data.decode("utf-8")

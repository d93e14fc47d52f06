"""Text normalisation shared by training and scoring: one function, so the model never sees a
text prepared differently from the ones it learnt from.

What it removes is what would let the model learn the *source* instead of the *quality*:
case, URLs, e-mail addresses, exact numbers, and markup symbols (wiki `|`, `*`, `=`, man-page
dashes). What it keeps is what carries style: words, and sentence punctuation (`. , ; : ? !`
as tokens of their own: explanatory prose has about one `.` per 15-25 words, navigation and
product lists have almost none).
"""

from __future__ import annotations

import re

_URL = re.compile(r"(?:https?://|ftp://|www\.)\S+|\S+@\S+\.\w+", re.IGNORECASE)
_DIGITS = re.compile(r"\d+")

# Sentence punctuation becomes a separate token; every other symbol becomes a space.
_KEEP = ".,;:?!"
_DROP = "\"#$%&()*+/<=>@[\\]^_`{|}~\u00a0\u00ab\u00bb\u00a9\u00ae\u2122\u2022\u00b7\u2013\u2014\u2015\u2018\u2019\u201a\u201c\u201d\u201e\u2026\u2192\u25ba\u25b6\u00b6\u00a7\u00b0\u2190\u2191\u2193\u2605\u2606\u2713\u2714\ufeff\t\r\n-"
_TABLE = {ord(c): f" {c} " for c in _KEEP}
_TABLE.update({ord(c): " " for c in _DROP})
_TABLE[ord("'")] = ""  # don't -> dont: one token, as a web page with typographic quotes gives
_TABLE[ord("\u2019")] = ""


def normalize(text: str, max_chars: int = 0) -> str:
    """Lowercase, drop URLs and e-mails, numbers -> `0`, punctuation split off, whitespace
    collapsed to single spaces (fastText reads one example per line, so no newline survives).
    `max_chars` > 0 scores only the opening of very long texts."""
    if max_chars and len(text) > max_chars:
        text = text[:max_chars]
    if "://" in text or "www." in text or "@" in text:
        text = _URL.sub(" ", text)
    text = text.lower().translate(_TABLE)
    text = _DIGITS.sub("0", text)
    return " ".join(text.split())

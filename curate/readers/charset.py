"""Bytes of a web page to text: the declared charset (HTTP header, then <meta>), UTF-8, then detection."""

from __future__ import annotations

import re

# A page's own <meta charset=...> or <meta http-equiv="Content-Type" content="...; charset=...">,
# looked for where browsers look: in the first bytes.
_META_CHARSET = re.compile(rb"""<meta[^>]{0,200}?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)

# Labels that browsers (WHATWG Encoding standard) decode as a superset: pages labelled gb2312
# routinely use GBK characters, and "iso-8859-1" pages use Windows-1252's curly quotes.
_CHARSET_ALIASES = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "us-ascii": "cp1252",
    "ascii": "cp1252",
}


def _charset(label: str | None) -> str | None:
    if not label:
        return None
    label = label.strip().strip("\"'").lower()
    return _CHARSET_ALIASES.get(label, label) or None


def decode(body: bytes, http_type: str) -> str | None:
    """HTTP header charset, then the page's <meta> charset, then UTF-8, then detection: without
    the <meta> step, a Latin-1 page with no HTTP charset was guessed as IBM865 (mojibake)."""
    header = http_type.split("charset=")[-1].split(";")[0] if "charset=" in http_type else None
    meta = _META_CHARSET.search(body[:4096])
    for candidate in (_charset(header), _charset(meta.group(1).decode("ascii", "ignore")) if meta else None, "utf-8"):
        if not candidate:
            continue
        try:
            return body.decode(candidate)
        except (UnicodeDecodeError, LookupError):
            continue
    import cchardet

    detected = cchardet.detect(body[:65536]).get("encoding")
    if detected:
        try:
            return body.decode(detected)
        except (UnicodeDecodeError, LookupError):
            pass
    # Last, decode as browsers do: invalid bytes become U+FFFD. A page with a few stray bytes
    # (a truncated multi-byte character, one mis-encoded line) keeps its text; bytes that are
    # mostly invalid (binary served as text/html) stay undecodable.
    for candidate in (_charset(header), "utf-8"):
        try:
            text = body.decode(candidate or "utf-8", errors="replace")
        except LookupError:
            continue
        if text.count("\ufffd") <= len(text) * MAX_REPLACED_SHARE:
            return text
    return None


# 1%: a real page with an encoding slip has a handful of bad bytes in thousands; binary data
# decoded as UTF-8 has replacement characters in ~half of its positions.
MAX_REPLACED_SHARE = 0.01

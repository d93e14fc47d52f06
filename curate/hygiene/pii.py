"""PII: find e-mail addresses, IP addresses, phone numbers, payment cards, IBANs and secrets,
and replace each with a typed placeholder (`<EMAIL>`, `<IP>`, `<PHONE>`, `<CARD>`, `<IBAN>`,
`<SECRET>`), counting them per document.

Built on datatrove's `PIIFormatter` approach (a regex finds candidates, a validator decides)
and its e-mail regex and public-IP rule, extended to the other kinds. Every numeric kind
has a check that ordinary numbers fail, so that years, prices, ISBNs, dates, coordinates,
page ranges and version strings survive:

- card: 13-19 digits, contiguous or in uniform groups of 4 (Amex 4-6-5), a known issuer
  prefix (ISBN-13's 978/979 is none) and a valid Luhn check digit;
- IBAN: a country code with its registered length and mod-97 = 1 (ISO 13616);
- IPv4 / IPv6: a valid, globally routable address (datatrove's rule: private, loopback and
  documentation ranges are not personal), not inside a longer dotted number (1.2.3.4.5),
  not glued to a word (v1.2.3.4) and not after a version cue ("version 1.2.3.4");
- phone: a `+` international number (8-15 digits), a North-American number with its
  separators ((212) 555-0147, 212-555-0147), a 0-prefixed national number in groups
  (020 7946 0958, 01 23 45 67 89), or any 7-15 digit number right after a cue word
  ("tel", "phone", "fax", "call" ...). Bare digit runs and comma-grouped numbers never are;
- nothing numeric right after "ISBN", "ISSN", "DOI" or "arXiv" is touched.

Secrets: AWS access key ids (AKIA..., ASIA...), AWS secret keys after an `aws ... secret` cue,
GitHub tokens (ghp_, gho_, ghu_, ghs_, ghr_, github_pat_), Slack tokens (xox?-) and
webhooks, Stripe live keys, Google API keys, JWTs, PEM private-key blocks, and values of
`api_key=`, `access_token:` ... assignments that look generated (16+ characters mixing
letters and digits; placeholders like YOUR_API_KEY stay).
"""

from __future__ import annotations

import bisect
import ipaddress
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.utils.batching import batched
from pydantic import Field

from curate.core.schema import META_PII, META_PII_DROP, PII_KINDS  # PII_KINDS: the order counts are reported in
from curate.core.section import Section

PLACEHOLDERS = {kind: f"<{kind.upper()}>" for kind in PII_KINDS}
PIIKind = Literal["email", "phone", "ip", "card", "iban", "secret"]


class PIIConfig(Section):
    """The `pii:` section: what happens to personal data and secrets found in kept text."""

    # On by default: a release that leaks e-mail addresses and API keys is worse than none.
    enabled: bool = True
    # redact: replace each find with its placeholder (<EMAIL>, <PHONE>, ...) in the shards;
    # drop: send the whole document to the ledger (stage pii, reason pii, value the counts);
    # annotate: change nothing, only count (column `pii`). Counts are kept in every mode.
    mode: Literal["redact", "drop", "annotate"] = "redact"
    # The kinds looked for; a recipe that keeps, say, public contact e-mails drops "email".
    kinds: list[PIIKind] = Field(default_factory=lambda: list(PII_KINDS))


# How far back a cue word ("ISBN", "version", "tel") is looked for, in characters.
_CUE_WINDOW = 24
_NUMBER_ID_CUE = re.compile(r"(?i)\b(?:isbn(?:-1[03])?|issn|doi|arxiv|pmid|oclc)\b[\s:#.]*[\d\s-]*$")
_VERSION_CUE = re.compile(
    r"(?i)(?:\b(?:version|versions|ver|v|release|build|firmware|kernel|update|revision|rev|patch|oid|snmp"
    # Dotted numbering of documents: "section 4.1.2.3", "clause 3.2.1.4", "§ 1.2.3.4" (review).
    r"|section|sections|sec|clause|clauses|chapter|ch|article|art|paragraph|para|table|figure|fig|rule|step|item|part"
    r"|appendix|annex|exercise|equation|eq|theorem|lemma|definition|no|nr|score)\b|§)[\s.:#-]*$"
)

Span = tuple[int, int]  # the characters to replace, [start, end)
Check = Callable[[str, re.Match[str]], "Span | None"]


@dataclass(frozen=True)
class Detector:
    kind: str
    regex: re.Pattern[str]
    check: Check | None = None  # None: every match is PII; else the span to replace, or None
    triggers: tuple[str, ...] = ()  # run only when one of these is in the text (empty: always)
    lower: bool = False  # look for the triggers in the lowercased text
    numeric: bool = False  # run only on texts with a digit


def _before(text: str, start: int) -> str:
    return text[max(0, start - _CUE_WINDOW) : start]


def _digits(s: str) -> str:
    return "".join(c for c in s if c.isdigit())


# ----------------------------------------------------------------------------- numbers


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = ord(c) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


# Issuer prefixes (IIN ranges) of the card networks: Visa 4, Mastercard 51-55 and 2221-2720,
# Amex 34/37, Diners 300-305/36/38/39, Discover 6011/644-649/65, JCB 3528-3589, UnionPay 62,
# Maestro 50/56-69. Nothing starting with 1, 7, 8 or 9 (ISBN-13 is 978/979).
_CARD_PREFIX = re.compile(r"^(?:4|5[0-5]|2[2-7]|3[0-9]|6)")


def _card(text: str, m: re.Match[str]) -> Span | None:
    digits = _digits(m.group(0))
    if not 13 <= len(digits) <= 19 or not _CARD_PREFIX.match(digits) or len(set(digits)) < 2:
        return None
    if _NUMBER_ID_CUE.search(_before(text, m.start())) or not luhn_ok(digits):
        return None
    return m.span()


# IBAN lengths per country (ISO 13616 registry, SWIFT release 2024).
_IBAN_LENGTH = dict(
    (item[:2], int(item[2:]))
    for item in (
        "AD24 AE23 AL28 AT20 AZ28 BA20 BE16 BG22 BH22 BI27 BR29 BY28 CH21 CR22 CY28 CZ24 DE22 DJ27 DK18 DO28 EE20 "
        "EG29 ES24 "
        "FI18 FK18 FO18 FR27 GB22 GE22 GI23 GL18 GR27 GT28 HR21 HU28 IE22 IL23 IQ23 IS26 IT27 JO30 KW30 KZ20 LB28 LC32 "
        "LI21 LT20 LU20 LV21 LY25 MC27 MD24 ME22 MK19 MN20 MR27 MT31 MU30 NI28 NL18 NO15 OM23 PK24 PL28 PS29 PT25 QA29 "
        "RO24 RS22 RU33 SA24 SC31 SD18 SE24 SI19 SK24 SM27 SO23 ST25 SV28 TL23 TN24 TR26 UA29 VA22 VG24 XK20"
    ).split()
)


def iban_ok(compact: str) -> bool:
    """Registered length for the country and the ISO 7064 mod-97 check."""
    if _IBAN_LENGTH.get(compact[:2]) != len(compact):
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def _iban(text: str, m: re.Match[str]) -> Span | None:
    # The regex may run into a following word in capitals ("DE89 ... 00 BIC"): cut the match
    # at the country's length, then check.
    want = _IBAN_LENGTH.get(m.group(0)[:2])
    if want is None or not _isolated(text, m.start(), m.start()):
        return None
    count = 0
    for pos in range(m.start(), m.end()):
        if text[pos] != " ":
            count += 1
            if count == want:
                end = pos + 1
                if end < len(text) and text[end].isalnum():
                    return None  # the IBAN would end inside a word
                compact = text[m.start() : end].replace(" ", "")
                return (m.start(), end) if iban_ok(compact) else None
    return None


def _isolated(text: str, start: int, end: int, before: str = "", after: str = "") -> bool:
    """Nothing glued to the span: the character before it is no letter, digit, '_' or one
    of `before`; the one after it no letter, digit, '_', one of `after`, nor '.'/',' then a
    digit (a longer number). Checked here, not as regex lookarounds: a pattern that starts
    with a character class lets `re` skip ahead in C, several times faster on long texts."""
    if start > 0:
        c = text[start - 1]
        if c.isalnum() or c == "_" or c in before:
            return False
    if end < len(text) and end > start:
        c = text[end]
        if c.isalnum() or c == "_" or c in after:
            return False
        if c in ".," and end + 1 < len(text) and text[end + 1].isdigit():
            return False
    return True


def _address(text: str, start: int, end: int) -> Span | None:
    try:
        address = ipaddress.ip_address(text[start:end])
    except ValueError:
        return None
    if not address.is_global or _VERSION_CUE.search(_before(text, start)):
        return None
    return (start, end)


def _ipv4(text: str, m: re.Match[str]) -> Span | None:
    return _address(text, *m.span()) if _isolated(text, *m.span(), before=".") else None


_HEX = frozenset("0123456789abcdefABCDEF")


def _ipv6(text: str, m: re.Match[str]) -> Span | None:
    start, end = m.span()  # the match starts at its first ':'; the first group lies before it
    while start > 0 and text[start - 1] in _HEX and m.start() - start < 4:
        start -= 1
    candidate = text[start:end]
    # At least three colons and a digit: "a::b", "12:30" or "cafe::" are not addresses anyone writes.
    if (
        candidate.count(":") < 3
        or not any(c.isdigit() for c in candidate)
        or not _isolated(text, start, end, before=":.", after=":")
    ):
        return None
    return _address(text, start, end)


def _in_number_run(text: str, start: int, end: int) -> bool:
    """The match is part of a longer run of space-separated number groups ("07 14 21 28 35
    42", a table row): a phone number does not continue past its last group (review)."""
    after = re.match(r" [0-9]", text[end : end + 2])
    before = re.search(r"[0-9] $", text[max(0, start - 2) : start])
    return bool(after or before)


def _phone(low: int, high: int, before: str, after: str) -> Check:
    def check(text: str, m: re.Match[str]) -> Span | None:
        start, end = m.span()
        n = len(_digits(m.group(0)))
        if not low <= n <= high or not _isolated(text, start, end, before, after) or _in_number_run(text, start, end):
            return None
        if _NUMBER_ID_CUE.search(_before(text, start)):
            return None
        return (start, end)

    return check


# A cue word right before a number makes any 7-15 digit number a phone number.
_PHONE_CUE = re.compile(
    r"(?i)(?<![\w./@-])(?:tel|tele?phone|phone|ph|mobile|mob|cell|fax|call|whatsapp|hotline|t[ée]l[ée]fono?|telefon)\b\.?"
    r"(?:\s*(?:no\.?|number|nr\.?|#))?\s*[:.]?\s*$"
)


def _nanp(text: str, m: re.Match[str]) -> Span | None:
    start, end = m.span()
    if start >= 2 and text[start - 2] == "1" and text[start - 1] in " .-":
        start -= 2  # the country code, 1-212-555-0147
    if not _isolated(text, start, end, "+(.,/-", "-") or _NUMBER_ID_CUE.search(_before(text, start)):
        return None
    return (start, end)


def _cued_phone(text: str, m: re.Match[str]) -> Span | None:
    start, end = m.span()
    if not 7 <= len(_digits(m.group(0))) <= 15 or not _isolated(text, start, end):
        return None
    return (start, end) if _PHONE_CUE.search(text, max(0, start - 40), start) else None


def _card_check(text: str, m: re.Match[str]) -> Span | None:
    return _card(text, m) if _isolated(text, *m.span(), before=".,-", after="-") else None


# ----------------------------------------------------------------------------- regexes

# datatrove's PIIFormatter e-mail regex (RFC 5322 local part, domain or [IP literal]).
_EMAIL = (
    r"\b[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@(?:(?:[A-Za-z0-9](?:["
    r"A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?|\[(?:(?:25[0-5]|2[0-4][0-9]|["
    r"01]?[0-9][0-9]?)\.){3}(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?|[A-Za-z0-9-]*[A-Za-z0-9]:)])"
)
# Numeric shapes start with a character class (fast skipping); what may not touch them is
# checked by _isolated: "1.2.3.4.5", "v1.2.3.4" and "x1.2.3.4y" are no addresses.
_IPV4 = r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}"
_IPV6 = r":(?:[0-9A-Fa-f]{0,4}:){1,6}[0-9A-Fa-f]{0,4}"  # from the first ':'; _ipv6 adds the group before
# Cards: contiguous, or groups of four with one repeated separator, or Amex 4-6-5.
_CARD = r"[0-9]{4}(?:[0-9]{9,15}|([ -])[0-9]{4}\1[0-9]{4}\1[0-9]{1,7}|([ -])[0-9]{6}\2[0-9]{5})"
_IBAN = r"[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}"
_PHONE_INTL = r"\+[0-9]{1,3}(?:[ .-]?\([0-9]{1,4}\)|[ .-]?[0-9]{1,5}){2,6}"
_PHONE_NANP = r"(?:\([2-9][0-9]{2}\) ?|[2-9][0-9]{2}[.-])[0-9]{3}[.-][0-9]{4}"  # a "1-" before: _nanp
_PHONE_NATIONAL = r"0[0-9]{1,4}(?:[ -][0-9]{2,4}){2,4}"
_PHONE_NUMBER = r"[+(0-9][0-9 ().-]{5,20}[0-9]"  # any number; a phone only after a cue word
_GENERIC_KEY = (
    r"(?i)\b(?:api[_-]?key|apikey|api[_-]?secret|secret[_-]?key|access[_-]?token|auth[_-]?token|client[_-]?secret"
    r"|private[_-]?key|bearer)[\"']?\s*(?:[:=]|=>)?\s*[\"']?(?P<val>(?=[A-Za-z0-9_+/=.-]*\d)(?=[A-Za-z0-9_+/=.-]*[A-Za-z])[A-Za-z0-9_+/=.-]{16,200})"
)
_GENERIC_TRIGGERS = ("key", "token", "secret", "bearer")
# Access key ids: AKIA long-term, ASIA temporary (the other AWS id prefixes, AIDA users,
# AROA roles, ..., name things, not credentials).
_AWS_PREFIXES = ("AKIA", "ASIA")


def _secret_value(text: str, m: re.Match[str]) -> Span | None:
    return m.span("val")


# In priority order: a span claimed by an earlier detector is never matched by a later one
# (a key's digits are not a phone number; an e-mail's IP literal is part of the e-mail).
# `triggers`: the regex runs only when one of these strings is in the text (lowercased when
# `lower`): a substring test costs ~1/20 of a regex scan.
DETECTORS: tuple[Detector, ...] = (
    Detector(
        "secret",
        re.compile(
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: "
            r"BLOCK)?-----"
        ),
        triggers=("PRIVATE KEY",),
    ),
    Detector("secret", re.compile(r"\b(?:" + "|".join(_AWS_PREFIXES) + r")[A-Z0-9]{16}\b"), triggers=_AWS_PREFIXES),
    Detector(
        "secret",
        re.compile(
            r"(?i)aws.{0,30}?(?:secret|private).{0,20}?(?:[:=]|=>)\s*[\"']?(?P<val>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])"
        ),
        _secret_value,
        ("aws",),
        lower=True,
    ),
    Detector(
        "secret",
        re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b"),
        triggers=("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
    ),
    Detector(
        "secret",
        re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}|https://hooks\.slack\.com/services/[A-Za-z0-9/]{20,}"),
        triggers=("xox", "hooks.slack.com"),
    ),
    Detector(
        "secret",
        re.compile(r"\b[rs]k_live_[0-9A-Za-z]{20,}\b|\bAIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])"),
        triggers=("k_live_", "AIza"),
    ),
    Detector(
        "secret", re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"), triggers=("eyJ",)
    ),
    Detector("secret", re.compile(_GENERIC_KEY), _secret_value, _GENERIC_TRIGGERS, lower=True),
    Detector("email", re.compile(_EMAIL), triggers=("@",)),
    Detector("iban", re.compile(_IBAN), _iban, numeric=True),
    Detector("card", re.compile(_CARD), _card_check, numeric=True),
    Detector("phone", re.compile(_PHONE_NUMBER), _cued_phone, numeric=True),
    Detector("phone", re.compile(_PHONE_INTL), _phone(8, 15, "+", ""), ("+",), numeric=True),
    Detector("ip", re.compile(_IPV6), _ipv6, ("::", ":"), numeric=True),
    Detector("ip", re.compile(_IPV4), _ipv4, (".",), numeric=True),
    Detector("phone", re.compile(_PHONE_NANP), _nanp, numeric=True),
    Detector("phone", re.compile(_PHONE_NATIONAL), _phone(9, 12, "+.,/-", "/-"), numeric=True),
)
_HAS_DIGIT = re.compile(r"[0-9]")


_EMAIL_REACH = (64, 320)  # RFC 5321: local part <= 64 characters, an address <= 320


def _matches(det: Detector, text: str) -> Iterator[re.Match[str]]:
    """The detector's matches. E-mails are searched only around the '@'s (the regex costs
    ~0.2 us a character wherever it runs), in merged windows so that each character is
    scanned at most once however many '@'s a text has."""
    if det.kind != "email":
        yield from det.regex.finditer(text)
        return
    before, after = _EMAIL_REACH
    lo = hi = -1
    at = text.find("@")
    while at != -1:
        if at - before > hi:  # a new window: scan the finished one
            if hi > lo:
                yield from det.regex.finditer(text, lo, hi)
            lo = max(0, at - before)
        hi = min(len(text), at + after)
        at = text.find("@", at + 1)
    if hi > lo:
        yield from det.regex.finditer(text, lo, hi)


def find_pii(text: str, kinds: frozenset[str] | None = None) -> list[tuple[int, int, str]]:
    """Non-overlapping (start, end, kind) spans, sorted by start."""
    claimed: list[tuple[int, int, str]] = []  # sorted by start; disjoint, so by end too
    if not text:
        return claimed
    has_digit = _HAS_DIGIT.search(text) is not None
    lowered: str | None = None
    for det in DETECTORS:
        if (kinds is not None and det.kind not in kinds) or (det.numeric and not has_digit):
            continue
        if det.triggers:
            if det.lower and lowered is None:
                lowered = text.lower()
            haystack = lowered if det.lower else text
            if not any(t in haystack for t in det.triggers):
                continue
        for m in _matches(det, text):
            span = det.check(text, m) if det.check else m.span()
            if span is None or span[1] <= span[0]:
                continue
            # Free when the claimed span before it ends before it starts, and the one after
            # starts after it ends (bisect: a text with 50k e-mails stays linear-ish).
            i = bisect.bisect_left(claimed, (span[0], span[1], ""))
            if (i > 0 and claimed[i - 1][1] > span[0]) or (i < len(claimed) and claimed[i][0] < span[1]):
                continue
            claimed.insert(i, (span[0], span[1], det.kind))
    return claimed


def redact(text: str, kinds: frozenset[str] | None = None) -> tuple[str, dict[str, int]]:
    """(text with every PII span replaced by its placeholder, count per kind)."""
    spans = find_pii(text, kinds)
    counts = dict.fromkeys(PII_KINDS, 0)
    if not spans:
        return text, counts
    out, last = [], 0
    for start, end, kind in spans:
        out += [text[last:start], PLACEHOLDERS[kind]]
        counts[kind] += 1
        last = end
    out.append(text[last:])
    return "".join(out), counts


def count_pii(text: str, kinds: frozenset[str] | None = None) -> dict[str, int]:
    counts = dict.fromkeys(PII_KINDS, 0)
    for _, _, kind in find_pii(text, kinds):
        counts[kind] += 1
    return counts


# ----------------------------------------------------------------------------- the step


def describe_counts(counts: dict[str, int]) -> str:
    return " ".join(f"{kind}={n}" for kind, n in counts.items() if n)


class PIIRedactor(PipelineStep):
    """datatrove step: counts PII per document into `metadata["pii"]` and, in redact mode,
    replaces it in `doc.text`. It never drops a document itself: in drop mode it marks the
    document (`metadata["pii_drop"]`) and curate's selection writes the ledger row."""

    type = "\U0001f575 - FORMAT"
    name = "pii"

    def __init__(
        self, mode: str = "redact", kinds: list[str] | None = None, skip: Callable[[object], bool] | None = None
    ) -> None:
        super().__init__()
        if mode not in ("redact", "drop", "annotate"):
            raise ValueError(f"pii mode {mode!r}: use redact, drop or annotate")
        self.mode = mode
        self.kinds = frozenset(kinds) if kinds is not None else None
        self.skip = skip  # documents to leave alone (rejected upstream: their text is never shipped)

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for batch in batched(data, 256):
            with self.track_time("batch"):
                for doc in batch:
                    if (self.skip is not None and self.skip(doc)) or not doc.text:
                        continue
                    if self.mode == "redact":
                        doc.text, counts = redact(doc.text, self.kinds)
                    else:
                        counts = count_pii(doc.text, self.kinds)
                    doc.metadata[META_PII] = counts
                    found = describe_counts(counts)
                    if found and self.mode == "drop":
                        doc.metadata[META_PII_DROP] = found
                    for kind, n in counts.items():
                        if n:
                            self.stat_update(kind, value=n)
                    self.stat_update("with_pii" if found else "clean")
            yield from batch


class PIIStep:
    """The PII step of the hygiene stage (curate.hygiene.build_steps): counts into the row's
    `pii` column, redacts `text` (redact) or returns a Drop (drop). Runs last, on the kept
    documents only, after every check that reads the text as written."""

    name = "pii"

    def __init__(self, cfg: PIIConfig) -> None:
        self.mode = cfg.mode
        self.kinds = frozenset(cfg.kinds)

    def apply(self, doc: dict) -> object | None:
        from curate.hygiene import Drop

        text = doc.get("text") or ""
        if self.mode == "redact":
            doc["text"], counts = redact(text, self.kinds)
        else:
            counts = count_pii(text, self.kinds)
        # The source record's other fields ship in `metadata` (JSON): an `author_email` there
        # is as much in the shard as one in the text (review). Same mode, counted together.
        if doc.get("metadata"):
            doc["metadata"], extra = self._metadata(doc["metadata"])
            counts = {k: v + extra.get(k, 0) for k, v in counts.items()}
        doc["pii"] = counts
        found = describe_counts(counts)
        return Drop("pii", "pii", found) if found and self.mode == "drop" else None

    def _metadata(self, raw: str) -> tuple[str, dict[str, int]]:
        """Every string value in the metadata JSON, redacted (redact) or counted; the JSON
        is rewritten only when something was replaced, so clean rows keep their bytes."""
        try:
            value = json.loads(raw)
        except (TypeError, ValueError):
            return raw, {}
        totals: dict[str, int] = {}

        def walk(node: Any) -> Any:
            if isinstance(node, str):
                if self.mode == "redact":
                    node, found = redact(node, self.kinds)
                else:
                    found = count_pii(node, self.kinds)
                for k, v in found.items():
                    totals[k] = totals.get(k, 0) + v
                return node
            if isinstance(node, dict):
                return {k: walk(v) for k, v in node.items()}
            if isinstance(node, list):
                return [walk(v) for v in node]
            return node

        cleaned = walk(value)
        if self.mode == "redact" and any(totals.values()):
            return json.dumps(cleaned, ensure_ascii=False), totals
        return raw, totals

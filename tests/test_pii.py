"""PII detection both ways: planted e-mails, phones, IPs, cards, IBANs and keys are replaced
by their placeholders; years, prices, ISBNs, versions, dates, coordinates and other numbers
of ordinary text survive; and on real clean text (the article-extraction benchmark's gold
bodies and the Wikipedia sample, wiki markup included) only real contact details are found."""

from __future__ import annotations

import bz2
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from datatrove.data import Document

from curate.hygiene.pii import PIIRedactor, count_pii, find_pii, iban_ok, luhn_ok, redact

# (planted value, kind). Card and IBAN numbers are the networks' and banks' published test
# numbers (valid checksums); keys are the shapes of real ones, made up.
PLANTED = [
    ("jane.doe@example.org", "email"),
    ("j.smith+news@mail.co.uk", "email"),
    ("(212) 555-0147", "phone"),
    ("212-555-0147", "phone"),
    ("+1 212 555 0147", "phone"),
    ("+44 20 7946 0958", "phone"),
    ("+49 (0)40 890 85-433", "phone"),
    ("020 7946 0958", "phone"),
    ("01 23 45 67 89", "phone"),
    ("8.8.8.8", "ip"),
    ("203.0.113.0", None),  # TEST-NET-3, documentation: not a real address
    ("2a00:1450:4001:82a::200e", "ip"),
    ("4111 1111 1111 1111", "card"),
    ("4111111111111111", "card"),
    ("5500-0000-0000-0004", "card"),
    ("3782 822463 10005", "card"),
    ("DE89 3704 0044 0532 0130 00", "iban"),
    ("GB82WEST12345698765432", "iban"),
    ("AKIAIOSFODNN7EXAMPLE", "secret"),
    ("ghp_1234567890abcdefghijklmnopqrstuvwxyzAB", "secret"),
    ("github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOP", "secret"),
    ("xoxb-123456789012-1234567890123-abcdefghijklmnopqrstuvwx", "secret"),
    ("sk_live_4eC39HqLyjWDarjtT1zdp7dc", "secret"),
    ("AIzaSyA1234567890abcdefghijklmnopqrstuv", "secret"),
]


@pytest.mark.parametrize(("value", "kind"), PLANTED)
def test_planted_value_is_replaced_by_its_placeholder(value: str, kind: str | None) -> None:
    text = f"For questions write to the office, {value}, before 5 May 2024."
    redacted, counts = redact(text)
    if kind is None:
        assert redacted == text and sum(counts.values()) == 0
    else:
        assert redacted == f"For questions write to the office, <{kind.upper()}>, before 5 May 2024."
        assert counts[kind] == 1 and sum(counts.values()) == 1


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        ),
        (
            'AWS_SECRET_ACCESS_KEY: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"',
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        ),
        ('config = {"api_key": "a8f5f167f44f4964e6c998dee827110c"}', "a8f5f167f44f4964e6c998dee827110c"),
        ("export ACCESS_TOKEN=Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5", "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5"),
        (
            "Authorization: Bearer "
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
            "eyJhbGciOiJIUzI1NiJ9",
        ),
    ],
)
def test_secret_values_in_assignments_are_replaced(text: str, secret: str) -> None:
    redacted, counts = redact(text)
    assert secret not in redacted and "<SECRET>" in redacted and counts["secret"] == 1


def test_private_key_block_is_replaced_whole() -> None:
    pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi\nZ1BjP5CE/Wm/Rr500P\n-----END RSA PRIVATE KEY-----"  # noqa: E501
    redacted, counts = redact(f"Our deploy key:\n{pem}\nDo not share it.")
    assert redacted == "Our deploy key:\n<SECRET>\nDo not share it." and counts["secret"] == 1


# Numbers that are not PII, each in the context it appears in on real pages.
SURVIVORS = [
    "The bridge opened in 1998 and was rebuilt in 2021.",
    "It cost $1,299.99 (or €1.299,99; £12,500 for the pro model).",
    "ISBN 978-0-306-40615-7, ISBN 9780306406157, ISBN-10 0-306-40615-2, ISSN 0317-8471.",
    "See 978-0-306-40615-7 for the full derivation.",  # ISBN-13 without its label
    "Upgrade to version 1.2.3.4 or v1.2.3.4; build 10.0.19041.1 is older; 1.2.3.4.5 too.",
    "Chrome 120.0.6099.109 fixed it, and Python 3.11.7 ships with it.",
    "The city lies at 40.7128, -74.0060 (40°42′46″N 74°00′22″W).",
    "It happened on 2024-01-15, 15/01/2024, 01.02.2003 and 15 January 2024 at 12:30:45.",
    "The population is 1,234,567 (census of 2011), up from 987 654 in 2001.",
    "See pages 123-456 and 1123-1130 of volume 12, issue 3.",
    "Private networks use 192.168.0.1, 10.0.0.1 and 127.0.0.1; docs use 2001:db8::1 and ::1.",
    "Use std::vector<int> and a::b in C++; the ratio was 3:2:1; at 12:30:45:00.",
    "Order 4111111111111112 failed (bad check digit); IBAN DE89 3704 0044 0532 0130 01 too.",
    "Set api_key=YOUR_API_KEY_HERE and token: <your-token> in the file.",
    "Call 911 now; dial 112 in Europe; the pH was 7.35-7.45 and the score 3-1.",
    "The 2019-2020 season, the 1914-1918 war and the 40-50-60 rule.",
    "Phone sales rose 12% to 1,500,000 units in 2023.",
    "doi:10.1016/j.cell.2008.10.015, pmid 18984148, arXiv:2411.03923 and PMC2701104.",
    "Timestamps like 1700000000000 and ids like 9780306406157 are not cards.",
    # Found in review: dotted section numbers looked like public IPv4 addresses, and a run of
    # lottery numbers like a French phone number.
    "See section 4.1.2.3 of the contract; clause 3.2.1.4 and § 8.8.8.8 apply.",
    "Lottery numbers 07 14 21 28 35 42 were drawn on Saturday.",
    "Room 0-12-345 on floor 0, seat 04-12.",
]


@pytest.mark.parametrize("text", SURVIVORS)
def test_ordinary_numbers_survive(text: str) -> None:
    assert find_pii(text) == [], f"flagged: {[text[s:e] for s, e, _ in find_pii(text)]}"


def test_checksums() -> None:
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    assert luhn_ok("378282246310005") and luhn_ok("5500000000000004")
    assert iban_ok("DE89370400440532013000") and not iban_ok("DE89370400440532013001")
    assert iban_ok("GB82WEST12345698765432") and not iban_ok("GB82WEST1234569876543")  # one short


def test_planted_pii_in_real_text(articles: list[dict[str, str]]) -> None:
    """A real article with PII planted between its paragraphs: only the planted values change."""
    body = next(a["text"] for a in articles if find_pii(a["text"]) == [] and len(a["text"]) > 3000)
    paragraphs = body.split("\n")
    planted = [v for v, kind in PLANTED if kind]
    mixed = paragraphs[:2] + [f"Contact: {v}." for v in planted] + paragraphs[2:]
    expected = paragraphs[:2] + [f"Contact: <{kind.upper()}>." for _, kind in PLANTED if kind] + paragraphs[2:]
    redacted, counts = redact("\n".join(mixed))
    assert redacted == "\n".join(expected)
    assert sum(counts.values()) == len(planted)


def _wiki_pages(shared: Path) -> list[str]:
    pages = []
    with bz2.open(shared / "reference-text" / "enwiki-sample-pages-articles.xml.bz2", "rb") as f:
        for _, elem in ET.iterparse(f):
            if elem.tag.endswith("}text") and elem.text and not elem.text.startswith("#REDIRECT"):
                pages.append(elem.text)
            elem.clear()
    return pages


# Every find on the 181 gold article bodies and the 106 Wikipedia articles (raw wiki markup:
# citation templates with ISBNs, DOIs, PMIDs, coordinates and dates), read one by one: all
# are real contact details printed on the page, so the false-positive count is 0.
REAL_FINDS = {
    ("email", "thekian1@entermedia.co.kr"),  # a columnist's byline (Korean news)
    ("email", "pillgoo9@gmail.com"),  # idem
    ("email", "info@givewell.org"),
    ("email", "louise_matsakis@wired.com"),
    ("phone", "347-966-3806"),  # the same WIRED writer's Signal number
    ("phone", "+49 (0)40 890 85-433"),  # a publisher's phone number
    ("phone", "02-751-1500"),  # a Seoul box office (two pages)
    ("phone", "201-938-5500"),  # Dow Jones Newswires, cited three times in a Wikipedia reference
}


@pytest.mark.slow
def test_real_clean_text_has_no_false_positives(shared_data: Path, articles: list[dict[str, str]]) -> None:
    texts = [a["text"] for a in articles] + _wiki_pages(shared_data)
    finds = [(kind, text[s:e]) for text in texts for s, e, kind in find_pii(text)]
    assert set(finds) == REAL_FINDS
    assert len(finds) == 11  # the box office twice, Dow Jones three times


def _docs(*texts: str) -> list[Document]:
    return [Document(text=t, id=str(i), metadata={}) for i, t in enumerate(texts)]


def test_step_modes() -> None:
    text = "Mail jane.doe@example.org or call (212) 555-0147 about the 1998 edition."
    clean = "A clean sentence from 1998 that costs $12.50."
    redacted = list(PIIRedactor("redact").run(_docs(text, clean)))
    assert redacted[0].text == "Mail <EMAIL> or call <PHONE> about the 1998 edition."
    assert redacted[0].metadata["pii"] == {"email": 1, "phone": 1, "ip": 0, "card": 0, "iban": 0, "secret": 0}
    assert (
        redacted[1].text == clean
        and sum(redacted[1].metadata["pii"].values()) == 0
        and "pii_drop" not in redacted[1].metadata
    )
    dropped = list(PIIRedactor("drop").run(_docs(text, clean)))
    assert dropped[0].text == text and dropped[0].metadata["pii_drop"] == "email=1 phone=1"
    assert "pii_drop" not in dropped[1].metadata
    annotated = list(PIIRedactor("annotate").run(_docs(text)))
    assert (
        annotated[0].text == text
        and annotated[0].metadata["pii"]["email"] == 1
        and "pii_drop" not in annotated[0].metadata
    )


def test_kinds_limit_what_is_looked_for() -> None:
    text = "Mail jane.doe@example.org or call (212) 555-0147."
    out = list(PIIRedactor("redact", kinds=["phone"]).run(_docs(text)))[0]
    assert (
        out.text == "Mail jane.doe@example.org or call <PHONE>." and count_pii(text, frozenset({"email"}))["email"] == 1
    )


def test_hostile_texts_finish_and_count_every_find() -> None:
    """One text with 20k addresses (a leaked contact dump), and 1 MB of '@'s: every address
    replaced, nothing else touched. (The e-mail regex runs in merged windows around '@'s and
    overlap checks bisect, so both stay linear; a quadratic version took minutes here.)"""
    dump = "\n".join(f"user{i}@example{i}.com, +44 20 7946 {i % 10000:04d}" for i in range(20_000))
    redacted, counts = redact(dump)
    assert counts["email"] == 20_000 and counts["phone"] == 20_000 and "@" not in redacted
    assert redact("a@" * 500_000) == ("a@" * 500_000, dict.fromkeys(counts, 0))


def test_metadata_fields_are_redacted_too() -> None:
    """The source record's other fields ship in `metadata`: an e-mail there is as much in
    the shard as one in the text. Clean metadata keeps its exact bytes."""
    from curate.hygiene.pii import PIIConfig, PIIStep

    doc = {
        "text": "Write to me.",
        "metadata": json.dumps(
            {"author_email": "jane.roe@mailhost.net", "year": 2021, "tags": ["call +44 20 7946 0958"]}
        ),
    }
    assert PIIStep(PIIConfig()).apply(doc) is None
    assert json.loads(doc["metadata"]) == {"author_email": "<EMAIL>", "year": 2021, "tags": ["call <PHONE>"]}
    assert doc["pii"]["email"] == 1 and doc["pii"]["phone"] == 1
    clean = {"text": "Nothing here.", "metadata": '{"year":2021,  "isbn": "978-0-306-40615-7"}'}
    PIIStep(PIIConfig()).apply(clean)
    assert clean["metadata"] == '{"year":2021,  "isbn": "978-0-306-40615-7"}' and not any(clean["pii"].values())
    dropped = {"text": "Nothing here.", "metadata": json.dumps({"contact": "jane.roe@mailhost.net"})}
    drop = PIIStep(PIIConfig(mode="drop")).apply(dropped)
    assert drop is not None and drop.value == "email=1"

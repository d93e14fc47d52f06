"""Evaluation sets for dedup, built from real public text in ../shared/data.

- `real_documents()`: the 181 gold article bodies of the article-extraction benchmark plus
  the paragraphs (>= 40 words) of the Wikipedia sample, markup stripped. Distinct by
  construction (exact copies removed), a few thousand documents.
- `edit(text, rate, rng)`: a controlled near-duplicate: each word is, with probability
  `rate`, deleted, replaced by a word from the same document, or followed by an inserted one
  (one third each), the edits a re-crawl or a re-post makes (a changed date, a removed
  sentence, a rewording).
- `true_jaccard(a, b)`: the exact 5-gram Jaccard on dedup's own normalisation, the ground
  truth a near-duplicate is judged against.
- `synthetic_corpus(n, ...)`: n documents for the scaling runs, made by replicating real
  paragraphs with heavy edits (distinct documents) and light edits (near-duplicates).

Used by bench/bench_dedup.py and tests/test_dedup_quality.py. The data folder is read in
place, never copied (it is public, but it is not ours to ship)."""

from __future__ import annotations

import bz2
import html
import json
import random
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

from curate.dedup.normalize import near_words

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
ARTICLES = DATA / "article-extraction-benchmark" / "ground-truth.json"
WIKI = DATA / "reference-text" / "enwiki-sample-pages-articles.xml.bz2"
MIN_WORDS = 40  # paragraphs shorter than this are headings, captions and list items


def require_data() -> None:
    for path in (ARTICLES, WIKI):
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} is missing: the dedup evaluation needs the shared data folder at ../shared/data (next to the "
                "repository)"
            )


def article_bodies() -> list[tuple[str, str]]:
    gold = json.loads(ARTICLES.read_text(encoding="utf-8"))
    return [
        (f"article/{key[:16]}", value["articleBody"])
        for key, value in sorted(gold.items())
        if value.get("articleBody", "").strip()
    ]


# Wiki markup, removed in this order: comments, refs, templates (innermost first, repeated),
# tables, files, links (keeping their label), bold/italics, headings, html tags.
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_REF = re.compile(r"<ref[^>/]*/>|<ref[^>]*>.*?</ref>", re.S | re.I)
_TEMPLATE = re.compile(r"\{\{[^{}]*\}\}")
_TABLE = re.compile(r"\{\|.*?\|\}", re.S)
_FILE = re.compile(r"\[\[(?:File|Image|Category):[^\[\]]*(?:\[\[[^\]]*\]\][^\[\]]*)*\]\]", re.I)
_LINK = re.compile(r"\[\[(?:[^\]|]*\|)?([^\]]*)\]\]")
_EXTLINK = re.compile(r"\[https?://\S+\s*([^\]]*)\]")
_QUOTES = re.compile(r"'{2,}")
_TAG = re.compile(r"<[^>]+>")


def strip_wiki(markup: str) -> str:
    text = html.unescape(markup)
    text = _COMMENT.sub("", text)
    text = _REF.sub("", text)
    for _ in range(6):  # templates nest; 6 levels cover the sample
        text, count = _TEMPLATE.subn("", text)
        if not count:
            break
    text = _TABLE.sub("", text)
    text = _FILE.sub("", text)
    text = _LINK.sub(r"\1", text)
    text = _EXTLINK.sub(r"\1", text)
    text = _QUOTES.sub("", text)
    return _TAG.sub("", text)


def wiki_paragraphs() -> Iterator[tuple[str, str]]:
    with bz2.open(WIKI, "rb") as f:
        for _, elem in ET.iterparse(f):
            if not elem.tag.endswith("}page"):
                continue
            ns = "{" + elem.tag[1:].split("}")[0] + "}"
            title = elem.findtext(f"{ns}title") or ""
            markup = elem.findtext(f"{ns}revision/{ns}text") or ""
            elem.clear()
            if markup.lstrip().upper().startswith("#REDIRECT"):
                continue
            for number, para in enumerate(strip_wiki(markup).split("\n\n")):
                para = " ".join(
                    line for line in para.splitlines() if not line.startswith(("=", "*", "#", "|", "!", ":", ";"))
                )
                if len(para.split()) >= MIN_WORDS:
                    yield f"wiki/{title}/{number}", para.strip()


@lru_cache(maxsize=1)
def real_documents() -> tuple[tuple[str, str], ...]:
    """(id, text) of distinct real documents, articles first, in a fixed order."""
    require_data()
    seen: set[str] = set()
    docs = []
    for doc_id, text in [*article_bodies(), *wiki_paragraphs()]:
        key = " ".join(text.lower().split())
        if key in seen:
            continue
        seen.add(key)
        docs.append((doc_id, text))
    return tuple(docs)


def edit(text: str, rate: float, rng: random.Random) -> str:
    """A near-duplicate of `text`: each word deleted, replaced or followed by an insertion
    with probability `rate` (split evenly). Keeps line breaks between paragraphs."""
    lines = text.split("\n")
    vocabulary = text.split() or ["word"]
    out_lines = []
    for line in lines:
        out: list[str] = []
        for word in line.split(" "):
            roll = rng.random()
            if roll >= rate:
                out.append(word)
                continue
            kind = rng.randrange(3)
            if kind == 1:
                out.append(rng.choice(vocabulary))
            elif kind == 2:
                out.extend((word, rng.choice(vocabulary)))
        out_lines.append(" ".join(out))
    return "\n".join(out_lines)


def shingle_set(text: str, n: int = 5) -> set[tuple[str, ...]]:
    words = near_words(text)
    if len(words) < n:
        return {tuple(words)} if words else set()
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def true_jaccard(a: str, b: str, n: int = 5) -> float:
    sa, sb = shingle_set(a, n), shingle_set(b, n)
    if not sa and not sb:
        return 1.0
    return len(sa & sb) / len(sa | sb)


def near_duplicate_pairs(
    docs: list[tuple[str, str]], rates: list[float], seed: int = 7
) -> list[tuple[str, str, str, float]]:
    """For each document and edit rate: (original id, copy id, copy text, true Jaccard)."""
    rng = random.Random(seed)
    pairs = []
    for doc_id, text in docs:
        for rate in rates:
            copy = edit(text, rate, rng)
            pairs.append((doc_id, f"{doc_id}~{rate}", copy, true_jaccard(text, copy)))
    return pairs


def synthetic_corpus(n: int, dup_fraction: float = 0.2, seed: int = 11) -> Iterator[tuple[str, str]]:
    """n documents: (1 - dup_fraction) distinct ones (a real paragraph with 30% of its words
    edited: two such siblings share ~0.7^10 = 3% of 5-grams, so they are distinct) and
    dup_fraction near-copies (3% edits, true Jaccard ~0.85-0.95) of a recent distinct one."""
    base = [text for _, text in real_documents()]
    rng = random.Random(seed)
    recent: list[str] = []
    for i in range(n):
        if recent and rng.random() < dup_fraction:
            yield f"syn/{i}", edit(rng.choice(recent), 0.03, rng)
            continue
        text = edit(base[rng.randrange(len(base))], 0.3, rng)
        recent.append(text)
        if len(recent) > 1000:
            recent.pop(0)
        yield f"syn/{i}", text

"""Seeds: what each synthetic document is about. Either an extract of a kept document plus a
topic read from it (its heading or first sentence, else its top keywords), as Cosmopedia
grounds prompts in web extracts; or a topic from a list file (one per line), with no extract.

Seeds are ordered deterministically from generate.seed, so the prompt plan is the same on
every run (what makes a rerun generate only what is missing)."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from curate import schema as S
from curate.errors import ConfigError, InputError

# A heading: markdown "# ..." or a short line without final punctuation. 100 chars: longer
# lines are sentences of running text, not titles.
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]+")
# English stop words for keyword topics: the 60 commonest function words are enough; a
# keyword topic only needs to name the subject, not to be a summary.
_STOP = frozenset(
    "a an and are as at be been but by can could did do does for from had has have he her his how i if in into is it its"
    " just may more most my no not of on one or our out she so some such than that the their them then there these they"
    " this those to up was we were what when which who will with would you your also about after all any each other over".split()
)
MAX_TOPIC_WORDS = 12  # a topic is a title, not a paragraph


@dataclass(frozen=True)
class Seed:
    id: str  # stable: "doc:<document id>" or "topic:<sha of the topic>"
    topic: str
    text: str  # the extract shown to the model; "" for a topic-list seed
    doc_id: str | None  # the seed document, None for a topic-list seed


def topic_of(text: str) -> str:
    """A document's topic: its first heading, else its first sentence (cut to 12 words), else
    its 5 most frequent content words."""
    for line in text.splitlines()[:10]:
        line = line.strip()
        if not line:
            continue
        m = _HEADING.match(line)
        if m:
            return _clip(m.group(1))
        if len(line) <= 100 and not line.endswith((".", "!", "?", ":", ";", ",")) and len(line.split()) >= 2:
            return _clip(line)
        break
    first = _SENTENCE_END.split(text.strip(), maxsplit=1)[0]
    if 3 <= len(first.split()) <= 40:
        return _clip(first.rstrip(".!?"))
    words = [w.lower() for w in _WORD.findall(text) if w.lower() not in _STOP and len(w) > 2]
    return ", ".join(w for w, _ in Counter(words).most_common(5))


def _clip(text: str) -> str:
    words = text.split()
    return " ".join(words[:MAX_TOPIC_WORDS]) + ("..." if len(words) > MAX_TOPIC_WORDS else "")


def extract(text: str, max_chars: int) -> str:
    """The opening of a document, cut at a sentence end (else a word end) before max_chars."""
    text = re.sub(r"\n{3,}", "\n\n", text.strip())
    if len(text) <= max_chars:
        return text
    head = text[:max_chars]
    cut = max(head.rfind(". "), head.rfind(".\n"), head.rfind("? "), head.rfind("! "))
    if cut >= max_chars // 2:
        return head[: cut + 1]
    return head.rsplit(None, 1)[0] + " ..."


def seeds_from_parts(parts: list[Path], max_chars: int, min_words: int) -> list[Seed]:
    """One seed per document with at least `min_words` words, in input order."""
    seeds: list[Seed] = []
    for part in parts:
        pf = pq.ParquetFile(part)
        for batch in pf.iter_batches(batch_size=2_000, columns=[S.ID, S.TEXT]):
            for doc_id, text in zip(batch.column(0).to_pylist(), batch.column(1).to_pylist()):
                if not text or len(text.split()) < min_words:
                    continue
                seeds.append(Seed(id=f"doc:{doc_id}", topic=topic_of(text), text=extract(text, max_chars), doc_id=str(doc_id)))
    return seeds


def seeds_from_topics(path: Path) -> list[Seed]:
    """One seed per non-empty line ('#' starts a comment); an empty file is an error."""
    if not path.is_file():
        raise InputError(f"topics file not found: {path}. Fix: set generate.topics_file to a text file with one topic per line")
    seeds: list[Seed] = []
    seen: set[str] = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        topic = line.split("#", 1)[0].strip()
        if topic and topic.lower() not in seen:
            seen.add(topic.lower())
            seeds.append(Seed(id="topic:" + hashlib.sha1(topic.encode()).hexdigest()[:16], topic=topic, text="", doc_id=None))
    if not seeds:
        raise InputError(f"topics file {path} holds no topics. Fix: write one topic per line, e.g. 'photosynthesis in desert plants'")
    return seeds


def order_seeds(seeds: list[Seed], seed: int) -> list[Seed]:
    """A deterministic shuffle keyed on (generate.seed, seed id): independent of input order
    and of how many seeds there are, so adding documents does not reorder the others."""
    unique = {s.id: s for s in seeds}
    return sorted(unique.values(), key=lambda s: hashlib.sha256(f"{seed}:{s.id}".encode()).digest())


def collect_seeds(parts: list[Path], topics_file: str, max_chars: int, min_words: int, seed: int) -> list[Seed]:
    """Every seed of a run, ordered; fails before any work when there is none."""
    seeds = seeds_from_parts(parts, max_chars, min_words) if parts else []
    if topics_file:
        seeds += seeds_from_topics(Path(topics_file))
    if not seeds:
        where = f"{len(parts)} document part(s) held no document of {min_words}+ words" if parts else "no input documents and no generate.topics_file"
        raise ConfigError(f"no seeds to generate from: {where}. Fix: pass --input with a curated release, or set generate.topics_file to a file of topics")
    return order_seeds(seeds, seed)

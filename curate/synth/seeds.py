"""Seeds: what each synthetic document is about. Either an extract of a kept document plus a
topic read from it (its heading or first sentence, else its top keywords), as Cosmopedia
grounds prompts in web extracts; or a topic from a list file (one per line), with no extract.

Seeds are ordered deterministically from generate.seed, so the prompt plan is the same on
every run (what makes a rerun generate only what is missing). A run of n prompts keeps only
the first n seeds of that order (a bottom-k sample by hash), so memory does not grow with
the corpus."""

from __future__ import annotations

import hashlib
import heapq
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from curate.core import schema as S
from curate.core.errors import ConfigError, InputError

# A heading: markdown "# ..." or a short line without final punctuation. 100 chars: longer
# lines are sentences of running text, not titles.
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]+")
# English stop words for keyword topics: the 60 commonest function words are enough; a
# keyword topic only needs to name the subject, not to be a summary.
_STOP = frozenset(
    "a an and are as at be been but by can could did do does for from had has have he her his how i if in into is it "
    "its"
    " just may more most my no not of on one or our out she so some such than that the their them then there these they"
    " this those to up was we were what when which who will with would you your also about after all any each other "
    "over".split()
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


def seed_key(seed: int, seed_id: str) -> bytes:
    """A seed's rank in the run's order: a hash of (generate.seed, seed id), so the order is
    independent of input order and of how many seeds there are."""
    return hashlib.sha256(f"{seed}:{seed_id}".encode()).digest()


class BottomK:
    """The `k` seeds with the smallest keys seen so far (a max-heap of k entries): a
    deterministic sample whose memory is bounded by k, not by the corpus. Exactly the first
    k of the full order, so a bounded run plans the same prompts as an unbounded one."""

    def __init__(self, k: int, seed: int) -> None:
        self.k = k
        self.seed = seed
        self._heap: list[tuple[int, str]] = []  # (-key, id): heapq is a min-heap
        self._members: dict[str, tuple[bytes, Seed]] = {}

    def wants(self, seed_id: str, key: bytes) -> bool:
        if seed_id in self._members:
            return False
        return len(self._heap) < self.k or -int.from_bytes(key, "big") > self._heap[0][0]

    def add(self, s: Seed, key: bytes) -> None:
        heapq.heappush(self._heap, (-int.from_bytes(key, "big"), s.id))
        self._members[s.id] = (key, s)
        if len(self._heap) > self.k:
            _, dropped = heapq.heappop(self._heap)
            del self._members[dropped]

    def offer(self, s: Seed) -> None:
        key = seed_key(self.seed, s.id)
        if self.wants(s.id, key):
            self.add(s, key)

    def ordered(self) -> list[Seed]:
        return [s for _, s in sorted(self._members.values(), key=lambda item: item[0])]

    def __len__(self) -> int:
        return len(self._members)


def scan_parts(parts: list[Path], max_chars: int, min_words: int, sample: BottomK) -> int:
    """Offer every document of `parts` with at least `min_words` words to `sample`; returns
    the documents scanned. Only the id column is read for every row group; texts are read, in
    batches, only for row groups holding a document that would enter the sample, and only
    those documents are split into words. Once the sample is full, entries get rare (about
    k x ln(N/k) in all), so most text is never read."""
    scanned = 0
    for part in parts:
        pf = pq.ParquetFile(part)
        for rg in range(pf.metadata.num_row_groups):
            ids = [str(i) for i in pf.read_row_group(rg, columns=[S.ID]).column(0).to_pylist()]
            scanned += len(ids)
            wanted: dict[int, bytes] = {}
            for row, doc_id in enumerate(ids):
                key = seed_key(sample.seed, f"doc:{doc_id}")
                if sample.wants(f"doc:{doc_id}", key):
                    wanted[row] = key
            if not wanted:
                continue
            offset = 0
            for batch in pf.iter_batches(batch_size=1_024, row_groups=[rg], columns=[S.TEXT]):
                texts = batch.column(0)
                for row in range(offset, offset + batch.num_rows):
                    key = wanted.get(row)
                    if key is None or not sample.wants(f"doc:{ids[row]}", key):
                        continue
                    text = texts[row - offset].as_py()
                    if not text or len(text.split()) < min_words:
                        continue
                    sample.add(
                        Seed(
                            id=f"doc:{ids[row]}", topic=topic_of(text), text=extract(text, max_chars), doc_id=ids[row]
                        ),
                        key,
                    )
                offset += batch.num_rows
    return scanned


def seeds_from_topics(path: Path) -> list[Seed]:
    """One seed per non-empty line ('#' starts a comment); an empty file is an error."""
    if not path.is_file():
        raise InputError(
            f"topics file not found: {path}. Fix: set generate.topics_file to a text file with one topic per line"
        )
    seeds: list[Seed] = []
    seen: set[str] = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        topic = line.split("#", 1)[0].strip()
        if topic and topic.lower() not in seen:
            seen.add(topic.lower())
            seeds.append(
                Seed(id="topic:" + hashlib.sha1(topic.encode()).hexdigest()[:16], topic=topic, text="", doc_id=None)
            )
    if not seeds:
        raise InputError(
            f"topics file {path} holds no topics. Fix: write one topic per line, e.g. 'photosynthesis in desert plants'"
        )
    return seeds


def collect_seeds(
    parts: list[Path], topics_file: str, max_chars: int, min_words: int, seed: int, limit: int | None = None
) -> list[Seed]:
    """The seeds of a run, ordered; fails before any work when there is none. With `limit`
    (the number of prompts: prompt k uses seed k mod S, so no prompt reaches past the first
    n seeds) only the first `limit` seeds of the order are kept, and memory stays bounded by
    it however large the corpus. The plan is the same as with every seed."""
    sample = BottomK(limit if limit is not None else 2**62, seed)
    scanned = scan_parts(parts, max_chars, min_words, sample) if parts else 0
    if topics_file:
        # A topic list is written by a person, not crawled: read whole (case-insensitive
        # duplicates need every earlier line).
        for s in seeds_from_topics(Path(topics_file)):
            sample.offer(s)
    if not len(sample):
        where = (
            f"{len(parts)} document part(s) ({scanned} documents) held no document of {min_words}+ words"
            if parts
            else "no input documents and no generate.topics_file"
        )
        raise ConfigError(
            f"no seeds to generate from: {where}. Fix: pass --input with a curated release, or set "
            "generate.topics_file to a file of topics"
        )
    return sample.ordered()

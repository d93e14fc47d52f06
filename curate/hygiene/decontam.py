"""Benchmark decontamination: does a document reproduce an evaluation item?

For each document: the hashes of all its n-grams (curate.hygiene.ngrams) are looked up in the
index's sorted array (`np.searchsorted`, no Python loop per n-gram). From the hits come two
measures (ConTAM, arXiv 2411.03923):
- the longest contiguous span of document words covered by hit n-grams, and its benchmark;
- per item, the share of the item's indexed n-grams the document contains (the best item).
The document is contaminated when the span reaches `min_span_words` or a share reaches
`min_item_share` (curate.hygiene.config says why those defaults). Stock phrases shared with a
benchmark give short, isolated hits: they trip neither."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from curate.core.errors import ConfigError
from curate.hygiene import Drop
from curate.hygiene.config import DecontamConfig
from curate.hygiene.index import DEFAULT_INDEX, DecontamIndex, load_index
from curate.hygiene.ngrams import text_ngrams

STAGE = "decontam"
REASON = "contaminated"
MAX_SPAN_CHARS = 300  # of the matched span quoted in the ledger


@dataclass
class Match:
    benchmark: str
    span_words: int  # longest contiguous covered span
    item_share: float  # best item's share of its n-grams present
    item: int  # that item's index within the whole index
    span: str  # the longest span, normalised words
    contaminated: bool

    def describe(self) -> str:
        return f"longest span {self.span_words} words, {self.item_share:.0%} of one {self.benchmark} item: {self.span}"


def index_path(cfg: DecontamConfig) -> Path:
    return Path(cfg.index) if cfg.index else DEFAULT_INDEX


_CACHE: dict[tuple[str, float], DecontamIndex] = {}


def open_index(cfg: DecontamConfig) -> DecontamIndex:
    """The configured index, loaded once per process; fails naming the file and the fix."""
    path = index_path(cfg)
    key = (str(path), path.stat().st_mtime if path.is_file() else -1.0)
    idx = _CACHE.get(key) or load_index(path)
    _CACHE[key] = idx
    if idx.ngram != cfg.ngram:
        raise ConfigError(
            f"decontam.ngram is {cfg.ngram} but the index {path} holds {idx.ngram}-word n-grams. "
            f"Fix: set decontam.ngram: {idx.ngram}, or rebuild the index with `curate decontam build-index --input "
            f"BENCHMARK_FILES --output {path} --ngram {cfg.ngram}`"
        )
    return idx


class Decontaminator:
    def __init__(self, cfg: DecontamConfig, index: DecontamIndex | None = None) -> None:
        self.cfg = cfg
        self.index = index or open_index(cfg)

    def match(self, text: str) -> Match | None:
        """None when no n-gram of the text is in the index (most documents: the fast path)."""
        idx, n = self.index, self.cfg.ngram
        ws, h = text_ngrams(text, n)
        if len(h) == 0 or len(idx.hashes) == 0:
            return None
        pos = np.searchsorted(idx.hashes, h)
        pos[pos == len(idx.hashes)] = 0
        hit = idx.hashes[pos] == h
        if not hit.any():
            return None
        starts = np.flatnonzero(hit)
        items = idx.item[pos[starts]]
        # Longest run of covered words: hits at i and j chain when j <= i + n (their words touch).
        breaks = np.flatnonzero(np.diff(starts) > n)
        run_first = np.concatenate(([0], breaks + 1))
        run_last = np.concatenate((breaks, [len(starts) - 1]))
        lengths = starts[run_last] - starts[run_first] + n
        best_run = int(np.argmax(lengths))
        a, b = int(starts[run_first[best_run]]), int(starts[run_last[best_run]]) + n
        # Items' shares: distinct hit n-grams per item over the item's indexed n-grams.
        uniq_pos = np.unique(pos[starts])
        per_item = np.bincount(idx.item[uniq_pos])
        cand = np.flatnonzero(per_item)
        shares = per_item[cand] / idx.item_ngrams[cand]
        best_item = int(cand[np.argmax(shares)])
        share = float(shares.max())
        span_words = int(lengths[best_run])
        contaminated = span_words >= self.cfg.min_span_words or share >= self.cfg.min_item_share
        # Name the benchmark behind the decision: the span's commonest, else the best item's.
        if span_words >= self.cfg.min_span_words:
            in_run = items[run_first[best_run] : run_last[best_run] + 1]
            top_item = int(np.bincount(in_run).argmax())
        else:
            top_item = best_item
        bench = idx.benchmarks[int(idx.item_bench[top_item])]["name"]
        span = " ".join(ws[a:b])
        if len(span) > MAX_SPAN_CHARS:
            span = span[: MAX_SPAN_CHARS - 3] + "..."
        return Match(bench, span_words, share, best_item, span, contaminated)

    def check(self, text: str) -> Drop | None:
        m = self.match(text)
        if m is None or not m.contaminated:
            return None
        return Drop(STAGE, REASON, m.benchmark, m.describe())


class DecontamStep:
    """The hygiene stage's step (curate.hygiene.HygieneStep)."""

    name = STAGE

    def __init__(self, cfg: DecontamConfig) -> None:
        self.decontaminator = Decontaminator(cfg)

    def apply(self, doc: dict) -> Drop | None:
        return self.decontaminator.check(doc["text"] or "")

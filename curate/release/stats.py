"""Statistics of a release, gathered shard by shard while it is written, into stats.json;
the card, the plots and `curate stats` read that file and never rescan the shards.

Counts (documents, tokens, bytes, per language, per source, per split) are exact.
Distributions come from the first SAMPLE_ROWS positions of the release: the order is a
seeded uniform shuffle, so those rows are a uniform sample, and every row when the release
is smaller (then the histograms are exact too)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
import pyarrow as pa

from curate import schema as S
from curate.release.schema import NUM_TOKENS, SYNTHETIC

# 1M rows x (8 + 4 + 4 + 4 per score column) bytes: ~20 MB, and percentiles to ~0.1%.
SAMPLE_ROWS = 1_000_000
PERCENTILES = (1, 10, 25, 50, 75, 90, 99)
LENGTH_BINS = 40
SCORE_BINS = 20


def _counter() -> dict[str, int]:
    return {"documents": 0, "tokens": 0, "text_bytes": 0}


class StatsAccumulator:
    def __init__(self, score_columns: list[str], count_tokens: bool) -> None:
        self.score_columns = score_columns
        self.count_tokens = count_tokens
        self.splits: dict[str, dict[str, int]] = defaultdict(_counter)
        self.sources: dict[str, dict[str, int]] = defaultdict(_counter)
        self.languages: dict[str, dict[str, int]] = defaultdict(_counter)
        self.sample: dict[str, list[np.ndarray]] = defaultdict(list)
        self.sampled = 0

    def add(self, table: pa.Table, split: str) -> None:
        n = table.num_rows
        if n == 0:
            return
        text_bytes = _byte_lengths(table[S.TEXT])
        tokens = table[NUM_TOKENS].fill_null(0).to_numpy().astype(np.int64)
        synthetic = table[SYNTHETIC].fill_null(False).to_numpy(zero_copy_only=False).astype(bool)
        _add(self.splits[split], text_bytes, tokens)
        for source, mask in (("web", ~synthetic), ("synthetic", synthetic)):
            if mask.any():
                _add(self.sources[source], text_bytes[mask], tokens[mask])
        # Shards are written as string_view, which pyarrow's fill_null and group_by do not
        # take; language codes are a few bytes, so the cast to string costs nothing.
        per_lang = pa.table({"lang": table[S.LANG].cast(pa.string()).fill_null("unknown"), "tokens": tokens, "text_bytes": text_bytes})
        for row in per_lang.group_by("lang").aggregate([("lang", "count"), ("tokens", "sum"), ("text_bytes", "sum")]).to_pylist():
            bucket = self.languages[row["lang"]]
            bucket["documents"] += row["lang_count"]
            bucket["tokens"] += row["tokens_sum"]
            bucket["text_bytes"] += row["text_bytes_sum"]
        take = min(n, SAMPLE_ROWS - self.sampled)
        if take > 0:
            self.sample["text_bytes"].append(text_bytes[:take])
            self.sample["tokens"].append(tokens[:take])
            self.sample["synthetic"].append(synthetic[:take])
            for column in self.score_columns:
                self.sample[column].append(table[column].slice(0, take).to_numpy(zero_copy_only=False).astype(np.float64))
            self.sampled += take

    def result(self) -> dict[str, Any]:
        sample = {key: np.concatenate(parts) for key, parts in self.sample.items()}
        total = sum(s["documents"] for s in self.splits.values())
        lengths: dict[str, Any] = {}
        for key in ("tokens", "text_bytes") if self.count_tokens else ("text_bytes",):
            values = sample.get(key, np.zeros(0))
            lengths[key] = _distribution(values, sample.get("synthetic"), log=True)
        scores = {column: _distribution(sample.get(column, np.zeros(0)), sample.get("synthetic"), log=False) for column in self.score_columns}
        languages = dict(sorted(self.languages.items(), key=lambda kv: (-kv[1]["documents"], kv[0])))
        return {
            "documents": total,
            "sample_rows": self.sampled,
            "splits": dict(self.splits),
            "sources": {k: self.sources.get(k, _counter()) for k in ("web", "synthetic")},
            "languages": languages,
            "lengths": lengths,
            "scores": scores,
        }


def _byte_lengths(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """UTF-8 bytes of each text (null: 0), for string and string_view columns alike (pyarrow's
    binary_length has no string_view kernel; polars reads a view's length from the view)."""
    import polars as pl

    return pl.from_arrow(column).str.len_bytes().fill_null(0).to_numpy().astype(np.int64)


def _add(bucket: dict[str, int], text_bytes: np.ndarray, tokens: np.ndarray) -> None:
    bucket["documents"] += int(text_bytes.size)
    bucket["tokens"] += int(tokens.sum())
    bucket["text_bytes"] += int(text_bytes.sum())


def _distribution(values: np.ndarray, synthetic: np.ndarray | None, log: bool) -> dict[str, Any]:
    """Percentiles and a histogram (web and synthetic counted apart) of the non-null values."""
    keep = ~np.isnan(values) if values.dtype.kind == "f" else np.ones(values.size, bool)
    values = values[keep]
    syn = synthetic[keep] if synthetic is not None and synthetic.size == keep.size else np.zeros(values.size, bool)
    if values.size == 0:
        return {"count": 0, "percentiles": {}, "edges": [], "web": [], "synthetic": [], "mean": None}
    lo, hi = float(values.min()), float(values.max())
    if log:
        edges = np.unique(np.round(np.geomspace(max(lo, 1.0), max(hi, 1.0) + 1, LENGTH_BINS + 1)))
        edges[0] = min(edges[0], lo)  # zero-length documents land in the first bin
    else:
        low, high = (0.0, 1.0) if 0.0 <= lo and hi <= 1.0 else (lo, hi if hi > lo else lo + 1)
        edges = np.linspace(low, high, SCORE_BINS + 1)
    if edges.size < 2:
        edges = np.array([lo, lo + 1.0])
    web_counts, _ = np.histogram(values[~syn], bins=edges)
    syn_counts, _ = np.histogram(values[syn], bins=edges)
    return {
        "count": int(values.size),
        "mean": float(values.mean()),
        "min": lo,
        "max": hi,
        # One call for all: a single partition pass instead of one per percentile.
        "percentiles": {str(p): float(v) for p, v in zip(PERCENTILES, np.percentile(values, PERCENTILES))},
        "edges": [float(e) for e in edges],
        "web": web_counts.tolist(),
        "synthetic": syn_counts.tolist(),
    }

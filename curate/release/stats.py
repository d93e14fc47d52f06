"""Statistics of a release, gathered shard by shard while it is written, into stats.json;
the card, the plots and `curate stats` read that file and never rescan the shards.

Counts (documents, tokens, bytes, per language, per source, per split) are exact.
Distributions come from the first SAMPLE_ROWS positions of the release: the order is a
seeded uniform shuffle, so those rows are a uniform sample, and every row when the release
is smaller (then the histograms are exact too). Shards are written by several threads at
once, so pieces arrive in any order: each piece says where it starts, counts are integer
sums, and the sample is put back in release order, so the result never depends on the
order of arrival."""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any

import numpy as np
import pyarrow as pa

from curate.core import schema as S
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
        self.buckets: dict[str, dict[str, int]] = defaultdict(_counter)
        self.languages: dict[str, dict[str, int]] = defaultdict(_counter)
        self.pieces: list[tuple[int, dict[str, np.ndarray]]] = []  # (start, sampled columns)
        self.first: dict[str, int] = {}  # each split's first position: splits in release order
        # PII found per kind: occurrences and documents (S.PII; null rows were never scanned).
        self.pii: dict[str, dict[str, int]] = {kind: {"found": 0, "documents": 0} for kind in S.PII_KINDS}
        self.pii_scanned = 0
        self.pii_documents = 0
        self._lock = threading.Lock()

    @property
    def sampled(self) -> int:
        return sum(columns["text_bytes"].size for _, columns in self.pieces)

    def add(self, table: pa.Table, split: str, start: int) -> None:
        """The rows of release positions [start, start + table.num_rows) of `split`. Safe to
        call from several threads: the arrays are computed outside the lock."""
        n = table.num_rows
        if n == 0:
            return
        text_bytes = _byte_lengths(table[S.TEXT])
        tokens = table[NUM_TOKENS].fill_null(0).to_numpy().astype(np.int64)
        synthetic = table[SYNTHETIC].fill_null(False).to_numpy(zero_copy_only=False).astype(bool)
        # With repeats: which rows are a document's first copy (counted as distinct documents).
        first = table[S.COPY].to_numpy() == 0 if S.COPY in table.column_names else None
        # Shards are written as string_view, which pyarrow's fill_null and group_by do not
        # take; language codes are a few bytes, so the cast to string costs nothing.
        per_lang = pa.table(
            {"lang": table[S.LANG].cast(pa.string()).fill_null("unknown"), "tokens": tokens, "text_bytes": text_bytes}
        )
        languages = (
            per_lang.group_by("lang")
            .aggregate([("lang", "count"), ("tokens", "sum"), ("text_bytes", "sum")])
            .to_pylist()
        )
        buckets: list[dict[str, Any]] = []
        if S.QUALITY_BUCKET in table.column_names:  # documents and tokens per quality bucket (null: unscored)
            columns = {
                "bucket": table[S.QUALITY_BUCKET].cast(pa.int32()).fill_null(-1),
                "tokens": tokens,
                "text_bytes": text_bytes,
            }
            sums = [("bucket", "count"), ("tokens", "sum"), ("text_bytes", "sum")]
            if first is not None:
                columns |= {"distinct_documents": first.astype(np.int64), "distinct_tokens": tokens * first}
                sums += [("distinct_documents", "sum"), ("distinct_tokens", "sum")]
            buckets = pa.table(columns).group_by("bucket").aggregate(sums).to_pylist()
        take = min(n, SAMPLE_ROWS - start)
        sampled: dict[str, np.ndarray] = {}
        if take > 0:
            sampled = {"text_bytes": text_bytes[:take], "tokens": tokens[:take], "synthetic": synthetic[:take]}
            for column in self.score_columns:
                sampled[column] = table[column].slice(0, take).to_numpy(zero_copy_only=False).astype(np.float64)
        pii = _pii_counts(table)
        with self._lock:
            if pii is not None:
                self.pii_scanned += pii.pop("_scanned")
                self.pii_documents += pii.pop("_documents")
                for kind, (found, docs) in pii.items():
                    self.pii[kind]["found"] += found
                    self.pii[kind]["documents"] += docs
            self.first[split] = min(start, self.first.get(split, start))
            _add(self.splits[split], text_bytes, tokens, first)
            for source, mask in (("web", ~synthetic), ("synthetic", synthetic)):
                if mask.any():
                    _add(
                        self.sources[source], text_bytes[mask], tokens[mask], first[mask] if first is not None else None
                    )
            for row in languages:
                bucket = self.languages[row["lang"]]
                bucket["documents"] += row["lang_count"]
                bucket["tokens"] += row["tokens_sum"]
                bucket["text_bytes"] += row["text_bytes_sum"]
            for row in buckets:
                key = "unscored" if row["bucket"] < 0 else str(row["bucket"])
                bucket = self.buckets[key]
                bucket["documents"] += row["bucket_count"]
                bucket["tokens"] += row["tokens_sum"]
                bucket["text_bytes"] += row["text_bytes_sum"]
                for key in ("distinct_documents", "distinct_tokens"):
                    if f"{key}_sum" in row:
                        bucket[key] = bucket.get(key, 0) + row[f"{key}_sum"]
            if sampled:
                self.pieces.append((start, sampled))

    def result(self) -> dict[str, Any]:
        pieces = [columns for _, columns in sorted(self.pieces, key=lambda p: p[0])]
        sample = {key: np.concatenate([p[key] for p in pieces]) for key in pieces[0]} if pieces else {}
        total = sum(s["documents"] for s in self.splits.values())
        lengths: dict[str, Any] = {}
        for key in ("tokens", "text_bytes") if self.count_tokens else ("text_bytes",):
            values = sample.get(key, np.zeros(0))
            lengths[key] = _distribution(values, sample.get("synthetic"), log=True)
        scores = {
            column: _distribution(sample.get(column, np.zeros(0)), sample.get("synthetic"), log=False)
            for column in self.score_columns
        }
        languages = dict(sorted(self.languages.items(), key=lambda kv: (-kv[1]["documents"], kv[0])))
        distinct = (
            {"distinct_documents": sum(s["distinct_documents"] for s in self.splits.values())}
            if any("distinct_documents" in s for s in self.splits.values())
            else {}
        )
        return {
            "documents": total,  # rows: with repeats, every copy
            **distinct,
            "sample_rows": self.sampled,
            "splits": {split: self.splits[split] for split in sorted(self.splits, key=self.first.__getitem__)},
            "sources": {k: self.sources.get(k, _counter()) for k in ("web", "synthetic")},
            "languages": languages,
            # Best bucket first (19 .. 0), then unscored documents.
            "quality_buckets": dict(sorted(self.buckets.items(), key=lambda kv: -int(kv[0]) if kv[0].isdigit() else 1)),
            "lengths": lengths,
            "scores": scores,
            "pii": {"scanned": self.pii_scanned, "documents": self.pii_documents, "kinds": self.pii},
        }


def _pii_counts(table: pa.Table) -> dict[str, Any] | None:
    """{kind: (occurrences, documents)} plus _scanned and _documents (with any PII), or None
    when the shard has no PII column."""
    if S.PII not in table.column_names:
        return None
    column = table[S.PII].combine_chunks()
    scanned = len(column) - column.null_count
    if scanned == 0:
        return {"_scanned": 0, "_documents": 0}
    out: dict[str, Any] = {}
    any_pii = np.zeros(len(column), bool)
    for kind in S.PII_KINDS:
        values = column.field(kind).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
        out[kind] = (int(values.sum()), int((values > 0).sum()))
        any_pii |= values > 0
    out["_scanned"] = scanned
    out["_documents"] = int(any_pii.sum())
    return out


def _byte_lengths(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """UTF-8 bytes of each text (null: 0), for string and string_view columns alike (pyarrow's
    binary_length has no string_view kernel; polars reads a view's length from the view)."""
    import polars as pl

    return pl.from_arrow(column).str.len_bytes().fill_null(0).to_numpy().astype(np.int64)


def _add(bucket: dict[str, int], text_bytes: np.ndarray, tokens: np.ndarray, first: np.ndarray | None) -> None:
    """Rows (documents, as written: with repeats, every copy), and with repeats the distinct
    documents and their tokens (first copies only)."""
    bucket["documents"] += int(text_bytes.size)
    bucket["tokens"] += int(tokens.sum())
    bucket["text_bytes"] += int(text_bytes.sum())
    if first is not None:
        bucket["distinct_documents"] = bucket.get("distinct_documents", 0) + int(first.sum())
        bucket["distinct_tokens"] = bucket.get("distinct_tokens", 0) + int(tokens[first].sum())


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

"""Per-benchmark contamination counts of a run (manifest `counts.contamination`), summed over
runs by a release and shown as the card's contamination table."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from curate.core.ledger import read_ledger
from curate.hygiene.decontam import REASON, index_path
from curate.hygiene.index import load_index

if TYPE_CHECKING:  # annotations only: the recipe is assembled above the stages (curate.config)
    from curate.config import CurateConfig


def contamination_counts(cfg: CurateConfig, rejected: Path) -> dict[str, Any] | None:
    """{index, ngram, thresholds, benchmarks: [{name, split, licence, items, ngrams, web, generated}]}
    from the run's ledger (`contaminated` rows: `value` is the benchmark); None when off."""
    if not cfg.decontam.enabled:
        return None
    idx = load_index(index_path(cfg.decontam))
    rows = read_ledger(rejected).filter(pl.col("reason") == REASON)
    dropped = {
        (r["stage"], r["value"]): r["n"] for r in rows.group_by("stage", "value").agg(pl.len().alias("n")).to_dicts()
    }
    benchmarks = []
    for b in idx.benchmarks:
        web = sum(n for (stage, name), n in dropped.items() if name == b["name"] and stage != "generate")
        benchmarks.append(
            {
                "name": b["name"],
                "split": b.get("split", ""),
                "licence": b.get("licence", ""),
                "items": b["items"],
                "ngrams": b["ngrams"],
                "web": web,
                "generated": dropped.get(("generate", b["name"]), 0),
            }
        )
    return {
        "index": Path(idx.path).name,
        "ngram": idx.ngram,
        "min_span_words": cfg.decontam.min_span_words,
        "min_item_share": cfg.decontam.min_item_share,
        "unavailable": idx.meta.get("unavailable", {}),
        "benchmarks": benchmarks,
    }


def merge_contamination(counts: list[dict[str, Any] | None]) -> dict[str, Any] | None:
    """Several runs' tables as one: documents added up per benchmark (the first run's index facts)."""
    present = [c for c in counts if c]
    if not present:
        return None
    merged = {**present[0], "benchmarks": [dict(b) for b in present[0]["benchmarks"]]}
    by_name = {b["name"]: b for b in merged["benchmarks"]}
    for c in present[1:]:
        for b in c["benchmarks"]:
            into = by_name.setdefault(b["name"], {**b, "web": 0, "generated": 0})
            if into is not b:
                into["web"] += b["web"]
                into["generated"] += b["generated"]
    merged["benchmarks"] = list(by_name.values())
    return merged

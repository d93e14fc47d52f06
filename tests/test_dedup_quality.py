"""Acceptance on real text (../shared/data): near-duplicates with true 5-gram Jaccard >= 0.9
are removed with recall >= 0.95, distinct real documents are kept with FPR <= 0.5%, and
detection follows the LSH S-curve 1 - (1 - s^8)^14."""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from bench.dedup_data import near_duplicate_pairs, real_documents
from curate.config import CurateConfig, load_config
from curate.dedup.signatures import Signer, params_from_config
from curate.dedup.stage import run_dedup
from tests.test_dedup_stage import write_part


@pytest.fixture(scope="module")
def docs(shared_data: Path) -> list[tuple[str, str]]:
    every = list(real_documents())
    assert len(every) > 3000, (
        "the real evaluation set should hold the 181 articles plus thousands of Wikipedia paragraphs"
    )
    # Every third document: articles and paragraphs of many pages, ~1,350 of them.
    return every[::3]


def test_false_positive_rate_on_distinct_real_documents(tmp_path: Path, docs: list[tuple[str, str]]) -> None:
    part = write_part(tmp_path / "in.parquet", docs)
    out = run_dedup(load_config(None, ["executor.workers=1"]), [part], tmp_path / "work", tmp_path / "ledger")
    kept = pl.read_parquet(out[0]).height
    assert (len(docs) - kept) / len(docs) <= 0.005


def test_recall_at_jaccard_09_and_exact_copies(tmp_path: Path, docs: list[tuple[str, str]]) -> None:
    pairs = near_duplicate_pairs(docs[:600], [0.003, 0.01, 0.02], seed=13)
    high = [(a, b, t) for a, b, t, j in pairs if j >= 0.9]
    assert len(high) > 500
    rng = random.Random(0)
    one_copy: dict[str, tuple[str, str]] = {}
    for a, b, t in high:
        if a not in one_copy or rng.random() < 0.5:
            one_copy[a] = (b, t)
    texts = dict(docs)
    exact = [(f"{a}#exact", texts[a].upper()) for a in list(texts)[600:700]]
    records = list(docs) + [(b, t) for b, t in one_copy.values()] + exact
    random.Random(1).shuffle(records)
    part = write_part(tmp_path / "in.parquet", records)
    out = run_dedup(load_config(None, ["executor.workers=1"]), [part], tmp_path / "work", tmp_path / "ledger")
    kept = set(pl.read_parquet(out[0]).get_column("id").to_list())
    reduced = sum((a in kept) + (b in kept) == 1 for a, (b, _) in one_copy.items())
    assert reduced / len(one_copy) >= 0.95
    # Exact copies: always.
    copied = list(texts)[600:700]
    assert all((a in kept) + (f"{a}#exact" in kept) == 1 for a in copied)


def test_detection_follows_the_s_curve(docs: list[tuple[str, str]]) -> None:
    params = params_from_config(CurateConfig().dedup)
    signer = Signer(params)
    pairs = near_duplicate_pairs(docs[:500], [0.02, 0.05, 0.08, 0.12], seed=17)
    originals = dict(docs)
    a = signer.band_hashes(signer.signatures([originals[x] for x, _, _, _ in pairs]).sig)
    b = signer.band_hashes(signer.signatures([t for _, _, t, _ in pairs]).sig)
    detected = (a == b).any(axis=1)
    jaccard = np.array([j for _, _, _, j in pairs])
    for lo, hi in [(0.4, 0.6), (0.6, 0.75), (0.75, 0.85), (0.85, 1.01)]:
        mask = (jaccard >= lo) & (jaccard < hi)
        if mask.sum() < 50:
            continue
        expected = float(np.mean([params.candidate_probability(s) for s in jaccard[mask]]))
        observed = float(detected[mask].mean())
        # Binomial spread of the bucket's rate, plus 0.03 for the estimator's own bias.
        tolerance = 4 * math.sqrt(max(expected * (1 - expected), 0.01) / mask.sum()) + 0.03
        assert abs(observed - expected) <= tolerance, (lo, hi, observed, expected)

"""Held-out metrics of a quality model: ROC-AUC (threshold-free), and precision, recall, F1
and accuracy at the model's decision threshold (from its card)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from curate.quality.labels import read_labelled


def roc_auc(scores: Sequence[float], labels: Sequence[int]) -> float | None:
    """P(score of a random positive > score of a random negative), ties counting 1/2 (the
    Mann-Whitney U statistic over n_pos * n_neg). None when a class is missing: the area is
    undefined, and reporting 0.5 or 1.0 there would be a made-up number."""
    pairs = sorted(zip(scores, labels), key=lambda p: p[0])
    n_pos = sum(1 for _, y in pairs if y == 1)
    n_neg = len(pairs) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    # Rank-sum with average ranks for ties: O(n log n).
    rank_sum_pos = 0.0
    i = 0
    while i < len(pairs):
        j = i
        while j + 1 < len(pairs) and pairs[j + 1][0] == pairs[i][0]:
            j += 1
        avg_rank = (i + j) / 2 + 1  # ranks are 1-based
        rank_sum_pos += avg_rank * sum(1 for k in range(i, j + 1) if pairs[k][1] == 1)
        i = j + 1
    u = rank_sum_pos - n_pos * (n_pos + 1) / 2
    return u / (n_pos * n_neg)


def binary_metrics(scores: Sequence[float], labels: Sequence[int], threshold: float) -> dict[str, Any]:
    """Counts and rates when `score >= threshold` predicts the positive class."""
    tp = fp = tn = fn = 0
    for s, y in zip(scores, labels):
        pred = s >= threshold
        if pred and y == 1:
            tp += 1
        elif pred:
            fp += 1
        elif y == 1:
            fn += 1
        else:
            tn += 1
    n = tp + fp + tn + fn
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "n": n,
        "positives": tp + fn,
        "threshold": threshold,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "accuracy": (tp + tn) / n if n else 0.0,
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
    }


def best_f1_threshold(scores: Sequence[float], labels: Sequence[int]) -> float:
    """The threshold that maximises F1 among the observed scores, in one sorted sweep; ties go
    to the higher threshold (a stricter filter at equal F1). 0.5 when there is no positive."""
    total_pos = sum(1 for y in labels if y == 1)
    if total_pos == 0:
        return 0.5
    pairs = sorted(zip(scores, labels), key=lambda p: -p[0])
    best_f1, best_t = -1.0, 0.5
    tp = predicted = 0
    i = 0
    while i < len(pairs):
        t = pairs[i][0]
        while i < len(pairs) and pairs[i][0] == t:  # everything >= t is predicted positive
            tp += pairs[i][1] == 1
            predicted += 1
            i += 1
        f1 = 2 * tp / (predicted + total_pos)  # 2PR/(P+R) with P=tp/predicted, R=tp/total_pos
        if f1 > best_f1:
            best_f1, best_t = f1, t
    return best_t


def metrics(scores: Sequence[float], labels: Sequence[int], threshold: float) -> dict[str, Any]:
    out = binary_metrics(scores, labels, threshold)
    out["roc_auc"] = roc_auc(scores, labels)
    return out


def evaluate(
    model: str | Path | None,
    input_jsonl: str | Path,
    text_field: str = "text",
    label_field: str = "label",
    score_threshold: float = 3,
    threshold: float | None = None,
) -> dict[str, Any]:
    """Score every labelled document of `input_jsonl` with `model` (None: the shipped one) and
    return n, roc_auc, precision, recall, f1, accuracy at the card's threshold (or `threshold`).
    Labels are 0/1, or 0-5 scores made binary at `score_threshold`."""
    from curate.quality.model import load_quality_model

    qm = load_quality_model(model)
    texts, labels, info = read_labelled(input_jsonl, text_field, label_field, score_threshold)
    scores = qm.score(texts)
    cut = qm.threshold if threshold is None else threshold
    out = metrics(scores, labels, cut)
    out.update({"model": str(qm.path), "input": str(input_jsonl), "label_kind": info["label_kind"]})
    return out


def top_precision(scores: Sequence[float], labels: Sequence[int], fraction: float = 0.1) -> float | None:
    """Share of positives among the top `fraction` by score (ties broken by input order)."""
    if not scores:
        return None
    k = max(1, int(len(scores) * fraction))
    order = sorted(range(len(scores)), key=lambda i: -scores[i])[:k]
    return sum(labels[i] for i in order) / k


def at_same_share(scores: Sequence[float], labels: Sequence[int], kept: int) -> dict[str, Any]:
    """Precision and recall of the `kept` top-scoring documents (ties by input order): a
    thresholdless baseline cut where it keeps as many documents as the selection score does."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])[:kept]
    tp, pos = sum(labels[i] for i in order), sum(labels)
    return {"kept": kept, "precision": tp / kept if kept else 0.0, "recall": tp / pos if pos else 0.0}


def _summary(scores: Sequence[float], labels: Sequence[int], threshold: float | None) -> dict[str, Any]:
    out: dict[str, Any] = {"roc_auc": roc_auc(scores, labels), "top10_precision": top_precision(scores, labels)}
    if threshold is not None:
        m = binary_metrics(scores, labels, threshold)
        out.update({"threshold": threshold, "precision": m["precision"], "recall": m["recall"], "f1": m["f1"]})
    return out


def evaluate_selection(
    input_jsonl: str | Path,
    quality_cfg: Any = None,
    text_field: str = "text",
    label_field: str = "label",
    score_threshold: float = 3,
) -> dict[str, Any]:
    """Every score the quality stage writes, on labelled JSONL: the default selection score
    (quality.scorer of `quality_cfg`, default combined) at its threshold, the combined and the
    educational scores, the general classifier, and the baselines a user would try first (word
    count, mean words per line: thresholdless, so roc_auc, top-10% precision, and precision and
    recall when cut to keep as many documents as the selection score keeps at its threshold). A
    selection score below a baseline shows at once."""
    from curate.quality.combined import CombinedScorer
    from curate.quality.config import QualityConfig, effective_min_score
    from curate.quality.structure import mean_words_per_line, word_count

    cfg = quality_cfg or QualityConfig()
    texts, labels, info = read_labelled(input_jsonl, text_field, label_field, score_threshold)
    scorer = CombinedScorer(cfg.combined_path, edu_path=cfg.model_path, max_chars=cfg.max_chars)
    s = scorer.score(texts)
    cut = effective_min_score(cfg)
    combined_cut = cut if cfg.scorer == "combined" else scorer.combined.threshold
    from curate.quality.model import load_card

    edu_cut = cut if cfg.scorer == "edu" else float(load_card(scorer.edu_path).get("threshold", 0.5))
    scores = {"combined": _summary(s["combined"], labels, combined_cut), "edu": _summary(s["edu"], labels, edu_cut)}
    if s["general"] is not None:
        scores["general"] = _summary(s["general"], labels, None)
    out: dict[str, Any] = {
        "n": len(labels),
        "positives": sum(labels),
        "input": str(input_jsonl),
        "label_kind": info["label_kind"],
        "scorer": cfg.scorer,
    }
    out["models"] = {"edu": str(scorer.edu_path), "combined": str(cfg.combined_path or scorer.combined_path)}
    out.update(scores[cfg.scorer])  # the default selection score at the top level
    out["scores"] = scores
    kept = sum(1 for v in (s["combined"] if cfg.scorer == "combined" else s["edu"]) if v >= cut)
    out["baselines"] = {}
    for name, values in (
        ("word_count", [float(word_count(t)) for t in texts]),
        ("mean_words_per_line", [mean_words_per_line(t) for t in texts]),
    ):
        out["baselines"][name] = {
            **_summary(values, labels, None),
            "at_selection_share": at_same_share(values, labels, kept),
        }
    return out

"""What the combined quality score's Common Crawl figure is worth against a blind second reading
(issue 15, round 4b): agreement between the first reading of bench/data/cc-dolma-labels.jsonl and
the blind second reading of 120 of its documents (bench/data/cc-dolma-labels-second.jsonl, made
from bench/cc_blind_sample.py), then the ROC-AUC of the scores against each reading:

    PYTHONPATH=. .venv/bin/python -m bench.bench_quality_agreement --dolma-git DOLMA.git \
        --wcxb-git WCXB.git --modern-web-git MODERN.git

(each path also from CURATE_DOLMA_GIT, CURATE_WCXB_GIT, CURATE_MODERN_WEB_GIT). The scores are
the combined build's own (scripts/build_combined_quality.py regression_data: same site rule, same
empty-text and near-duplicate filters, same edu and general models); the combined score is
out-of-fold, with the build's site folds (the card's figure) and with bench_quality_models' three
site-to-fold assignments. Its regression was fitted with the FIRST labels of the other folds' CC
rows, so against the second reading it is out-of-fold for the document but has learnt the first
reader's taste. The shipped quality-combined.json is scored too, for reference only: it was
fitted on these very documents (in-sample). ~2 min on one core with the page cache. Measures; it
changes no model."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
SECOND = REPO / "bench" / "data" / "cc-dolma-labels-second.jsonl"
BOOTSTRAP = 2000  # resamples for the standard deviation of an AUC on ~90 documents


def _read(path: Path) -> dict[tuple[str, str], dict]:
    return {(r["file"], r["id"]): r for r in map(json.loads, path.open(encoding="utf-8"))}


def _bootstrap_sd(y: np.ndarray, s: np.ndarray, seed: int = 0) -> float:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(BOOTSTRAP):
        i = rng.integers(0, len(y), len(y))
        if 0 < y[i].sum() < len(i):
            out.append(roc_auc_score(y[i], s[i]))
    return float(np.std(out))


def agreement(first: dict, second: dict) -> np.ndarray:
    """Print kappa, raw agreement, the confusion matrix and every disagreement; return the first
    and second labels of the second file's documents, in its order."""
    from sklearn.metrics import cohen_kappa_score, confusion_matrix

    keys = list(second)
    a = np.array([int(first[k]["label"]) for k in keys])
    b = np.array([int(second[k]["label"]) for k in keys])
    cm = confusion_matrix(a, b, labels=[0, 1])
    print(f"## Agreement on {len(keys)} documents (first reading c0 vs blind second reading)\n")
    print(
        f"raw agreement {np.mean(a == b):.3f} ({int((a == b).sum())} of {len(keys)}), "
        f"Cohen's kappa {cohen_kappa_score(a, b):.3f}; good: first {a.sum()}, second {b.sum()}\n"
    )
    print("| first \\ second | 0 | 1 |\n|---|---:|---:|")
    print(f"| 0 | {cm[0, 0]} | {cm[0, 1]} |\n| 1 | {cm[1, 0]} | {cm[1, 1]} |\n")
    print("Disagreements:\n\n| document | words | first | second |\n|---|---:|---|---|")
    for k, x, z in zip(keys, a, b):
        if x != z:
            f = first[k]
            print(f"| {f['url'][:70]} | {f['words']} | {x}: {f['why']} | {z}: {second[k]['why']} |")
    print()
    return np.stack([a, b])


def main(argv: list[str] | None = None) -> int:
    import build_combined_quality as build
    from combined_quality_data import CC_LABELS, cc_documents
    from scipy.stats import rankdata
    from sklearn.metrics import roc_auc_score

    from bench.bench_quality_models import FOLDS, SEEDS, _fold
    from curate.quality.combined import CombinedScorer
    from curate.quality.structure import mean_words_per_line, word_count

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for flag, env in (
        ("--dolma-git", "CURATE_DOLMA_GIT"),
        ("--wcxb-git", "CURATE_WCXB_GIT"),
        ("--modern-web-git", "CURATE_MODERN_WEB_GIT"),
    ):
        p.add_argument(flag, type=Path, default=os.environ.get(env), help=f"a clone (or {env})")
    args = p.parse_args(argv)
    missing = [f for f in ("dolma_git", "wcxb_git", "modern_web_git") if getattr(args, f) is None]
    if missing:
        raise SystemExit(
            f"missing {missing}. Fix: pass --dolma-git, --wcxb-git and --modern-web-git (git clones) "
            "or set CURATE_DOLMA_GIT, CURATE_WCXB_GIT and CURATE_MODERN_WEB_GIT"
        )
    first, second = _read(CC_LABELS), _read(SECOND)
    both = agreement(first, second)

    # The build's rows: the CC documents that survive its filters carry origin "cc-dolma".
    with tempfile.TemporaryDirectory(prefix="quality-agreement-") as tmp:
        d = build.regression_data(Path(tmp), args.wcxb_git, args.modern_web_git, args.dolma_git)
    rows, x, y = d["rows"], d["x"], d["y"]
    oof_card = build.out_of_fold(x, y, d["fold"])
    assert FOLDS == build.FOLDS, "bench_quality_models and the build fold alike"
    oof_seeds = [build.out_of_fold(x, y, np.array([_fold(r[0], seed) for r in rows])) for seed in SEEDS]
    row_of = {rows[i][1]: i for i in range(len(rows)) if rows[i][5] == "cc-dolma"}
    texts = {(c["key"].split("/", 1)[0], c["key"].split("/", 1)[1]): c["text"] for c in cc_documents(args.dolma_git)}
    keys = list(second)
    used = [j for j, k in enumerate(keys) if texts[k] in row_of]
    idx = np.array([row_of[texts[keys[j]]] for j in used])
    assert all(int(y[i]) == both[0, j] for i, j in zip(idx, used)), "the build's labels are not the first reading"
    a, b = both[0, used], both[1, used]
    agree = a == b
    print(
        f"## ROC-AUC on the {len(used)} sampled documents the combined build uses "
        f"({len(keys) - len(used)} dropped by its site rule or near-duplicate filter)\n"
    )
    sample_texts = [texts[keys[j]] for j in used]
    edu = np.asarray(d["edu"])[idx]
    words = np.array([word_count(t) for t in sample_texts], float)
    shipped = np.array(CombinedScorer().score(sample_texts)["combined"])
    scores = {
        "word count": words,
        "edu fastText": edu,
        "mean words per line": np.array([mean_words_per_line(t) for t in sample_texts]),
        "general fastText": np.asarray(d["general"])[idx],
        "rank average of edu and word count": None,  # ranked within each subset below
        "combined, out-of-fold (the build's site folds: the card's)": oof_card[idx],
        "combined, out-of-fold (mean of bench_quality_models' 3 fold assignments)": [o[idx] for o in oof_seeds],
        "shipped quality-combined.json (in-sample: fitted on these documents)": shipped,
    }
    subsets = {
        "first reading": (np.ones(len(a), bool), a),
        "second reading (blind)": (np.ones(len(a), bool), b),
        "where the readings agree": (agree, a),
        # The hidden human-rated check has fewer near-empty stubs (bench/RESULTS-quality.md round 4).
        "first, >= 30 words": (words >= 30, a),
        "second, >= 30 words": (words >= 30, b),
    }
    print(
        "| ROC-AUC | "
        + " | ".join(f"{n} ({m.sum()}; {lab[m].sum()} good)" for n, (m, lab) in subsets.items())
        + " |\n|---|"
        + "---:|" * len(subsets)
    )
    for name, s in scores.items():
        cells = []
        for m, lab in subsets.values():
            if s is None:
                v = roc_auc_score(lab[m], rankdata(edu[m]) + rankdata(words[m]))
                sd = _bootstrap_sd(lab[m], rankdata(edu[m]) + rankdata(words[m]))
            elif isinstance(s, list):
                runs = [roc_auc_score(lab[m], o[m]) for o in s]
                v, sd = float(np.mean(runs)), float(np.std(runs))
            else:
                v, sd = roc_auc_score(lab[m], s[m]), _bootstrap_sd(lab[m], s[m])
            cells.append(f"{v:.3f} ±{sd:.3f}")
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(
        "\n± is the bootstrap standard deviation over documents (2,000 resamples), except for the mean "
        "of the 3 fold assignments, where it is their spread."
    )
    cc_all = np.array([i for i in range(len(rows)) if rows[i][5] == "cc-dolma"])
    print(
        f"\nFor reference, all {len(cc_all)} CC rows of the build against the first reading: combined "
        f"out-of-fold {roc_auc_score(y[cc_all], oof_card[cc_all]):.3f} (the card's folds)."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Which model combines the quality scorers best, on real crawl pages, out-of-fold by site:

    PYTHONPATH=. .venv/bin/python -m bench.bench_quality_models --wcxb-git WCXB.git --modern-web-git MODERN.git \
        --dolma-git DOLMA.git

The rows are the combined build's own (scripts/build_combined_quality.py regression_data: 799
WCXB pages no scorer trained on, each in three views, the held-out news pages, and the real
Common Crawl documents of allenai/dolma's test data read for the score); every
candidate is fitted on 4 of 5 site folds and scores the fifth, for 3 different site-to-fold
assignments (mean and spread reported). Candidates: the single inputs a user would try first
(word count, mean words per line, the best structure signal in its better direction, each
fastText scorer), the shipped logistic regression, and scikit-learn's
HistGradientBoostingClassifier with and without monotonic constraints (rising in the two
fastText logits and the prose length, falling in the short-prose hinge), and the rank average of
the edu score and the word count (the reference of the human-rated check in issue 15). ~2 min
on one core with the page cache."""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
SEEDS = (0, 1, 2)
FOLDS = 5


def _fold(site: str, seed: int) -> int:
    return int(hashlib.sha1(f"{seed}:{site}".encode()).hexdigest(), 16) % FOLDS


def _lr(x_fit: np.ndarray, y_fit: np.ndarray, x_out: np.ndarray) -> np.ndarray:
    import build_combined_quality as build

    return build.predict(build.fit_combined(x_fit, y_fit), x_out)


def _hgb(monotonic: list[int] | None):  # returns a fit-predict function
    from sklearn.ensemble import HistGradientBoostingClassifier

    def fit(x_fit: np.ndarray, y_fit: np.ndarray, x_out: np.ndarray) -> np.ndarray:
        clf = HistGradientBoostingClassifier(
            max_iter=200,
            learning_rate=0.05,
            max_leaf_nodes=8,
            min_samples_leaf=20,
            l2_regularization=1.0,
            monotonic_cst=monotonic,
            random_state=0,
        )
        return clf.fit(x_fit, y_fit).predict_proba(x_out)[:, 1]

    return fit


def main(argv: list[str] | None = None) -> int:
    import build_combined_quality as build
    from scipy.stats import rankdata
    from sklearn.metrics import roc_auc_score

    from curate.quality.combined import PROSE_LENGTH, SHORT_PROSE
    from curate.quality.structure import mean_words_per_line, word_count

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--wcxb-git", required=True, type=Path)
    p.add_argument("--modern-web-git", required=True, type=Path)
    p.add_argument("--dolma-git", required=True, type=Path)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="quality-models-") as tmp:
        d = build.regression_data(Path(tmp), args.wcxb_git, args.modern_web_git, args.dolma_git)
    rows, x, y = d["rows"], d["x"], d["y"]
    names = build.input_names(True)
    views = np.array([r[4] for r in rows])
    origin = np.array([r[5] for r in rows])
    crawl = np.isin(origin, ["wcxb-test", "wcxb-dev"])
    words = np.array([word_count(t) for t in d["texts"]], float)
    cc = origin == "cc-dolma"
    subsets = {
        "Common Crawl docs": cc,
        "CC docs of >= 30 words": cc & (words >= 30),
        "crawl, all views": crawl,
        "whole page": crawl & (views == "whole"),
        "trafilatura": crawl & (views == "extracted"),
        "main text": crawl & (views == "main"),
        "WCXB test": origin == "wcxb-test",
        "WCXB dev": origin == "wcxb-dev",
        "news pages": origin == "news",
    }

    def aucs(score: np.ndarray) -> list[float]:
        return [roc_auc_score(y[m], score[m]) for m in subsets.values()]

    table: list[tuple[str, list[float], list[float]]] = []
    singles = {
        "word count": words,
        "mean words per line": np.array([mean_words_per_line(t) for t in d["texts"]]),
    }
    structure = {n: x[:, k] for k, n in enumerate(names[:-2])}
    best = max(structure, key=lambda n: abs(roc_auc_score(y[crawl], structure[n][crawl]) - 0.5))
    sign = 1 if roc_auc_score(y[crawl], structure[best][crawl]) >= 0.5 else -1
    singles[f"best structure signal ({best}{'' if sign > 0 else ', reversed'})"] = sign * structure[best]
    singles["edu fastText"] = np.asarray(d["edu"])
    singles["general fastText"] = np.asarray(d["general"])
    for name, s in singles.items():
        table.append((name, aucs(s), [0.0] * len(subsets)))
    edu = np.asarray(d["edu"])
    table.append(
        (
            "rank average of edu and word count",
            [roc_auc_score(y[m], rankdata(edu[m]) + rankdata(words[m])) for m in subsets.values()],
            [0.0] * len(subsets),
        )
    )
    mono = [1 if n in (PROSE_LENGTH, "edu_logit", "general_logit") else -1 if n == SHORT_PROSE else 0 for n in names]
    for name, fit in (
        ("logistic regression (shipped)", _lr),
        ("gradient-boosted trees, monotonic", _hgb(mono)),
        ("gradient-boosted trees", _hgb(None)),
    ):
        runs = []
        for seed in SEEDS:
            fold = np.array([_fold(r[0], seed) for r in rows])
            oof = np.zeros(len(y))
            for f in range(FOLDS):
                out = fold == f
                oof[out] = fit(x[~out], y[~out], x[out])
            runs.append(aucs(oof))
        table.append((name, list(np.mean(runs, axis=0)), list(np.std(runs, axis=0))))
    n = {k: (int(m.sum()), int(y[m].sum())) for k, m in subsets.items()}
    print(
        "| ROC-AUC, good pretraining text | " + " | ".join(f"{k} ({a:,}; {b:,} good)" for k, (a, b) in n.items()) + " |"
    )
    print("|---|" + "---:|" * len(subsets))
    for name, mean, sd in table:
        print(f"| {name} | " + " | ".join(f"{m:.3f}" + (f" ±{s:.3f}" if s else "") for m, s in zip(mean, sd)) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Build the general-quality classifier and the combined quality score, evaluate them on a
site-disjoint held-out set of real crawl pages, and write them with their card:

    PYTHONPATH=. .venv/bin/python scripts/build_combined_quality.py --wcxb-git DIR --modern-web-git DIR

writes curate/models/quality-general.ftz and curate/models/quality-combined.json (coefficients,
scorers, data, held-out metrics). Same inputs, same bytes (fastText with one thread, Newton's
method, JSON with sorted keys and rounded numbers); `--check` builds into a temporary folder and
compares sha256 with the shipped files.

Data (scripts/combined_quality_data.py): the WCXB pages' HTML in three views, the labels by
reading in bench/data/, and the Wikipedia sample of ../shared/data. Scorer training: the
modern-web labelled pages (WCXB dev; the edu model trained on them, the general model trains on
them). Regression and its out-of-fold estimate: the WCXB test pages and the WCXB dev pages read
for it (bench/data/wcxb-dev-labels.jsonl), of sites (registered domains) no scorer trained on and
with no near-duplicate (curate.quality.neardup) of a scorer's training text; the card records
what was dropped and that none is left after filtering."""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))  # the repository root, for bench.webeval
import combined_quality_data as data  # noqa: E402

from bench.webeval import hash01, shared_data_dir, wiki_articles  # noqa: E402
from curate.quality.combined import (
    BUCKETS,
    EDU_CHARS,
    PROSE_MIN_WORDS,
    Combined,
    feature_rows,
    fit_logistic,
    input_names,
    prose_lines,
)  # noqa: E402
from curate.quality.evaluate import roc_auc  # noqa: E402
from curate.quality.model import (
    load_fasttext_model,  # noqa: E402
    positive_probs,  # noqa: E402
)
from curate.quality.neardup import RULE as NEAR_RULE  # noqa: E402
from curate.quality.neardup import near_duplicates  # noqa: E402
from curate.quality.normalize import normalize  # noqa: E402
from curate.quality.structure import STRUCTURE_CHARS, mean_words_per_line, word_count  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
MODELS = REPO / "curate" / "models"
CACHE = Path.home() / ".cache" / "curate" / "quality-data" / "combined"
VIEWS = ("whole", "extracted", "main")
# Folds by site for the regression's out-of-fold estimate.
FOLDS = 5
MAX_CHARS = 20_000
# "Good pretraining text", derived from the readers' labels: every page read as educational,
# and the articles, documentation pages and forum threads whose reader's reason names none of
# these (selling, promotion, thin or templated text). Decided before any test score was seen.
NOT_GOOD = re.compile(
    r"market|promo|press release|pitch|sales|sell|advert|affiliate|coupon|deal|landing|brochure|"
    r"thin|seo|filler|boilerplate|spam|stub|listing|roundup|catalog|product page|service page|chatter",
    re.I,
)
GOOD_TYPES = ("article", "documentation", "forum")
# Real Common Crawl documents (one view, labelled "good" directly by reading): their own subset.
CC_SUBSETS = {"cc-dolma": ("cc-dolma",)}
# General-quality fastText: small and fast (it runs beside the educational model).
GENERAL = {
    "dim": 16,
    "wordNgrams": 2,
    "epoch": 10,
    "lr": 0.2,
    "minCount": 2,
    "bucket": 100_000,
    "thread": 1,
    "seed": 1,
    "verbose": 0,
}
L2 = 1.0
# The general classifier reads the first 1,000 characters of the normalised text (~180 words;
# FineWeb-Edu's classifier reads 512 tokens): the whole quality stage must keep >= 0.8x of one
# bare fastText predict loop (2,000 characters: ~0.2x of that loop's time on its own; its
# regression coefficient is small either way, bench/RESULTS-quality.md).
GENERAL_CHARS = 1_000


def good_label(page: dict) -> int:
    if page["edu"] == 1:
        return 1
    return int(page["type"] in GOOD_TYPES and not NOT_GOOD.search(page.get("why", "")))


def split(rows: list[dict]) -> tuple[list[dict], list[dict], dict]:
    """Scorer training pages (modern-web: the edu model trained on them, the general model trains on
    them) and the regression's pages (WCXB test and the WCXB dev pages read for it), kept apart by
    site (registered domain) and by MinHash near-duplicates in any view."""
    train = [r for r in rows if r["origin"] == "modern-web"]
    train_sites = {r["site"] for r in train}
    candidates = [r for r in rows if r["origin"] != "modern-web"]
    same_site = [r for r in candidates if r["site"] in train_sites]
    pool = [r for r in candidates if r["site"] not in train_sites]
    views = [(i, r[v]) for i, r in enumerate(pool) for v in VIEWS]
    near_views = near_duplicates([r[v] for r in train for v in VIEWS], [t for _, t in views])
    near = {views[k][0] for k in near_views}
    kept = [r for i, r in enumerate(pool) if i not in near]
    info = {
        "scorer_training_pages": len(train),
        "scorer_training_sites": len(train_sites),
        "candidates": dict(Counter(r["origin"] for r in candidates)),
        "dropped_same_site": dict(Counter(r["origin"] for r in same_site)),
        "dropped_near_duplicate": dict(Counter(pool[i]["origin"] for i in sorted(near))),
        "regression_pages": dict(Counter(r["origin"] for r in kept)),
        "regression_sites": len({r["site"] for r in kept}),
        "site_rule": "registered domain (scripts/build_quality_data.py site: tldextract's bundled public-suffix list)",
        "near_duplicate_rule": f"{NEAR_RULE}; any view of a page against any view of the other",
    }
    return train, kept, info


def general_rows(train: list[dict], others: list[dict], wiki: list[str]) -> list[tuple[int, str]]:
    """DCLM's recipe at small scale: positives are reference text (Wikipedia) and the main text
    of pages read as good; negatives are random crawl pages as a browser shows them (whole view
    of every page of the training sites, read or not, that is not labelled good)."""
    rows = [(1, t) for t in wiki]
    rows += [(1, r["main"]) for r in train if r["good"] and r["main"].strip()]
    rows += [(0, r["whole"]) for r in train if not r["good"] and r["whole"].strip()]
    rows += [(0, r["whole"]) for r in others if r["whole"].strip()]
    return rows


def news_rows(train_sites: set[str]) -> list[tuple]:
    """The article benchmark's English pages that the edu model held out, of sites outside
    `train_sites`: (site, text, good, edu, view, "news") for the body (1), the boilerplate
    around it (0) and the whole page (1: an article with its navigation)."""
    from build_quality_data import site

    from bench.webeval import article_pages, boilerplate_text

    rows = []
    for page in article_pages(shared_data_dir()):
        s = site(page.url)
        if not page.heldout or s in train_sites:
            continue
        whole, _ = data._views(page.html.decode("utf-8", "replace"))
        rows.append((s, page.body, 1, page.label, "main", "news"))
        rows.append((s, boilerplate_text(page.html, page.body), 0, 0, "boilerplate", "news"))
        rows.append((s, whole, 1, page.label, "whole", "news"))
    return [r for r in rows if r[1].strip()]


def train_general(rows: list[tuple[int, str]], out: Path, quantize: bool) -> Path:
    import fasttext

    rows = sorted(rows, key=lambda r: hashlib.sha256(r[1].encode()).hexdigest())  # fixed order
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "train.txt"
        f.write_text("".join(f"__label__{y} {scorer_text(t)[:GENERAL_CHARS]}\n" for y, t in rows), encoding="utf-8")
        model = fasttext.train_supervised(input=str(f), **GENERAL)
        if quantize:
            model.quantize(input=str(f), qnorm=True, retrain=True, cutoff=50_000, dsub=2, thread=1, verbose=0)
        model.save_model(str(out))
    return out


def scores_of(model_path: Path, texts: list[str], chars: int = MAX_CHARS) -> list[float]:
    """What CombinedScorer computes: one normalisation of the opening EDU_CHARS characters of the
    prose lines, the model reading its first `chars`."""
    model = load_fasttext_model(model_path)
    return positive_probs(model, [scorer_text(t)[:chars] for t in texts])


def scorer_text(text: str) -> str:
    """The normalised text both fastText scorers read (CombinedScorer.score)."""
    return normalize(prose_lines(text, PROSE_MIN_WORDS, MAX_CHARS), EDU_CHARS)


def auc(s, y) -> float | None:
    a = roc_auc(list(map(float, s)), list(y))
    return None if a is None else round(a, 4)


def cc_rows(cc: list[dict], train: list[dict], split_info: dict) -> list[tuple]:
    """The Common Crawl documents read for the score (scripts/combined_quality_data.py
    cc_documents), less those of a scorer's training site or near-duplicating a training view:
    (site, text, good, None, "crawl", "cc-dolma"). They have no "educational" reading (None)."""
    train_sites = {r["site"] for r in train}
    docs = [c for c in cc if c["text"].strip()]
    same_site = [c for c in docs if c["site"] in train_sites]
    docs = [c for c in docs if c["site"] not in train_sites]
    near = set(near_duplicates([r[v] for r in train for v in VIEWS], [c["text"] for c in docs]))
    split_info["cc_dolma"] = {
        "documents": len(cc),
        "empty": len(cc) - len(same_site) - len(docs),
        "dropped_same_site": len(same_site),
        "dropped_near_duplicate": len(near),
    }
    return [(c["site"], c["text"], c["label"], None, "crawl", "cc-dolma") for i, c in enumerate(docs) if i not in near]


def regression_data(out_dir: Path, wcxb_git: Path, modern_git: Path, dolma_git: Path) -> dict:
    """Everything the regression is fitted and judged on: the split, the general model (trained
    into out_dir), each regression row's scores and inputs, and its fold (by site)."""
    from build_quality_data import site

    pages = data.wcxb_pages(wcxb_git, CACHE)
    rows = data.labelled(pages, modern_git, CACHE)
    for r in rows:
        r["good"] = good_label(r)
    train, pool, split_info = split(rows)
    cc = cc_rows(data.cc_documents(dolma_git), train, split_info)
    pool_sites = {r["site"] for r in pool} | {c[0] for c in cc}
    labelled_urls = {r["url"] for r in rows}
    # Unlabelled dev pages of sites that are not regression sites: random crawl for the general model.
    crawl = [
        p for p in pages if p["split"] == "dev" and p["url"] not in labelled_urls and site(p["url"]) not in pool_sites
    ]
    wiki = [t for _, t, held in wiki_articles(shared_data_dir()) if not held]

    # The regression learns from pages no scorer trained on: the WCXB pages of `pool` in every view
    # and the news pages of the article benchmark that the edu model held out (bodies 1, the
    # boilerplate around them 0, the whole page 1), of sites no scorer trained on.
    reg_rows = [(r["site"], r[v], r["good"], r["edu"], v, r["origin"]) for r in pool for v in VIEWS if r[v].strip()]
    news = news_rows(train_sites={r["site"] for r in train} | {site(p["url"]) for p in crawl})
    reg_rows += news + cc
    texts = [t for _, t, *_ in reg_rows]
    # The general model's documents, less any near-duplicate of a regression text (syndicated
    # copies across sites); then the check that must find none: every regression text against
    # every text a scorer trained on that this build knows (the edu model's other sources are
    # checked by its own build).
    docs = general_rows(train, crawl, wiki)
    near_docs = set(near_duplicates(texts, [t for _, t in docs]))
    docs = [d for i, d in enumerate(docs) if i not in near_docs]
    after = near_duplicates([t for _, t in docs] + [r[v] for r in train for v in VIEWS], texts)
    if after:
        raise SystemExit(
            f"{len(after)} regression texts are near-duplicates of scorer training texts after filtering. Fix: the "
            "split in scripts/build_combined_quality.py"
        )
    split_info["general_documents_dropped_near_duplicate"] = len(near_docs)
    split_info["near_duplicates_after_filtering"] = len(after)

    edu_path = MODELS / "quality-edu.ftz"
    out_dir.mkdir(parents=True, exist_ok=True)
    general_path = out_dir / "quality-general.ftz"
    train_general(docs, general_path, quantize=True)
    edu = scores_of(edu_path, texts)
    gen = scores_of(general_path, texts, GENERAL_CHARS)
    return {
        "rows": reg_rows,
        "texts": texts,
        "y": np.array([g for _, _, g, *_ in reg_rows], dtype=float),
        "edu": edu,
        "general": gen,
        "x": feature_rows(texts, [prose_lines(t, PROSE_MIN_WORDS, MAX_CHARS) for t in texts], edu, gen, MAX_CHARS),
        "fold": np.array([int(hash01(f"combined-fold:{site_}") * FOLDS) for site_, *_ in reg_rows]),
        "split": split_info,
        "general_docs": docs,
        "train_rows": train,
        "crawl": len(crawl),
        "wiki": len(wiki),
        "news": len(news),
        "cc": len(cc),
        "edu_path": edu_path,
        "general_path": general_path,
    }


def fit_combined(x: np.ndarray, y: np.ndarray) -> dict:
    """The shipped regression: standardised inputs, L2 logistic regression by Newton's method."""
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-9
    coef, intercept = fit_logistic((x - mean) / scale, y, l2=L2)
    return {"mean": _r(mean), "scale": _r(scale), "coef": _r(coef), "intercept": round(intercept, 6)}


def predict(reg: dict, x: np.ndarray) -> np.ndarray:
    names = input_names(True)
    return Combined(
        names, np.asarray(reg["mean"]), np.asarray(reg["scale"]), np.asarray(reg["coef"]), reg["intercept"], 0.5, {}
    ).predict(x)


def out_of_fold(x: np.ndarray, y: np.ndarray, fold: np.ndarray) -> np.ndarray:
    """Each row scored by a regression fitted without its site's fold."""
    oof = np.zeros(len(y))
    for f in range(FOLDS):
        held = fold == f
        oof[held] = predict(fit_combined(x[~held], y[~held]), x[held])
    return oof


def heldout_metrics(d: dict, oof: np.ndarray, threshold: float) -> dict:
    """ROC-AUC of the combined score (out-of-fold), of each scorer and of each structure signal
    alone, per subset and view, for `good` and for the readers' `edu` label."""
    rows, texts, x = d["rows"], d["texts"], d["x"]
    names = input_names(True)
    metrics: dict = {}
    subsets = {"crawl": ("wcxb-test", "wcxb-dev"), "wcxb-test": ("wcxb-test",), "wcxb-dev": ("wcxb-dev",)}
    for label in ("good", "edu"):
        metrics[label] = {}
        # The Common Crawl documents have one view and no "educational" reading.
        for subset, origins in (subsets | CC_SUBSETS if label == "good" else subsets).items():
            for v in ("all",) if subset in CC_SUBSETS else VIEWS + ("all",):
                idx = [i for i, row in enumerate(rows) if row[5] in origins and (v == "all" or row[4] == v)]
                yy = [rows[i][2] if label == "good" else rows[i][3] for i in idx]
                c = oof[idx]
                top = np.argsort(-c, kind="stable")[: max(1, len(c) // 10)]
                signals = {
                    n: auc(x[idx, k], yy) for k, n in enumerate(names[:-2])
                }  # structure signals and prose length
                metrics[label][f"{subset}/{v}"] = {
                    "n": len(idx),
                    "positives": int(sum(yy)),
                    "combined": auc(c, yy),
                    "edu": auc([d["edu"][i] for i in idx], yy),
                    "general": auc([d["general"][i] for i in idx], yy),
                    "word_count": auc([word_count(texts[i]) for i in idx], yy),
                    "rank_average_edu_word_count": auc(_rank_average(d["edu"], texts, idx), yy),
                    "mean_words_per_line": auc([mean_words_per_line(texts[i]) for i in idx], yy),
                    "best_single_signal": max((max(a, 1 - a), n) for n, a in signals.items() if a is not None)[::-1]
                    if yy and 0 < sum(yy) < len(yy)
                    else None,
                    "signals": signals,
                    "combined_top10_precision": round(float(np.mean([yy[i] for i in top])), 4),
                    "combined_at_threshold": _prec_rec(c, yy, threshold),
                }
    news_idx = [i for i, row in enumerate(rows) if row[5] == "news"]
    y = d["y"]
    metrics["news_pages"] = {
        "n": len(news_idx),
        "combined": auc(oof[news_idx], y[news_idx]),
        "word_count": auc([word_count(texts[i]) for i in news_idx], y[news_idx]),
    }
    return metrics


def _rank_average(edu: list[float], texts: list[str], idx: list[int]) -> np.ndarray:
    """The rank average of the edu score and the word count over `idx` (the hidden check's reference)."""
    from scipy.stats import rankdata

    return rankdata([edu[i] for i in idx]) + rankdata([word_count(texts[i]) for i in idx])


def build(out_dir: Path, wcxb_git: Path, modern_git: Path, dolma_git: Path) -> dict:
    d = regression_data(out_dir, wcxb_git, modern_git, dolma_git)
    x, y, fold = d["x"], d["y"], d["fold"]
    names = input_names(True)
    oof = out_of_fold(x, y, fold)
    reg = {"features": names, **fit_combined(x, y)}
    threshold = _best_f1(oof, y)
    metrics = heldout_metrics(d, oof, threshold)
    edu_path, general_path = d["edu_path"], d["general_path"]
    card = {
        "card_version": 2,
        "task": "P(good pretraining text) of a web document: a logistic regression over the scorers below",
        "labels": {
            "who": "Every label is a label by reading: LLM agents reading each page against a written rubric (bench/data/README.md), not humans. "  # noqa: E501
            "`good` is derived from those readings, not read separately: the page was read as educational, or it is "
            "an article, documentation page "
            "or forum thread whose reader's reason names no selling, promotion, thin or templated text "
            "(scripts/build_combined_quality.py NOT_GOOD). The Common Crawl documents of allenai/dolma's test data "
            '(bench/data/cc-dolma-labels.jsonl) were read for `good` itself ("good pretraining text"), one LLM '
            "agent (reader c0), a random 10% read twice.",
            "good_rule": NOT_GOOD.pattern,
            "good_types": list(GOOD_TYPES),
        },
        "scorers": {
            "edu": {
                "model_file": "quality-edu.ftz",
                "sha256": _sha(edu_path),
                "max_chars": EDU_CHARS,
                "prose_min_words": PROSE_MIN_WORDS,
                "what": "P(educational), the shipped classifier (see quality-edu.card.json: its data, sizes and labels), reading the opening max_chars characters of the prose lines (lines of >= prose_min_words words); the general model reads the same text",  # noqa: E501
            },
            "general": {
                "model_file": general_path.name,
                "sha256": _sha(general_path),
                "bytes": general_path.stat().st_size,
                "normalized_chars": GENERAL_CHARS,
                "what": "P(good) fastText, trained the DCLM way: positives reference text (Wikipedia sample, 80% by title hash) and the main text of modern-web pages read as good; negatives whole crawl pages (navigation included) of the modern-web sites and unlabelled WCXB dev pages of other sites",  # noqa: E501
                "hyperparameters": GENERAL,
                "quantized": True,
                "documents": len(d["general_docs"]),
                "positives": sum(1 for lab, _ in d["general_docs"] if lab == 1),
            },
            "structure": {
                "what": f"curate.quality.structure.signals_batch over the opening {STRUCTURE_CHARS:,} characters (the word count extrapolated to 20,000), "  # noqa: E501
                "and log_prose_chars: log(1 + characters of the prose lines the fastText scorers read), "
                "short_prose_hinge: max(0, log(1 + 1,500) - log_prose_chars)",
                "signals": names[:-2],
            },
        },
        "regression": reg,
        "regression_training": {
            "rows": len(y),
            "positives": int(y.sum()),
            "news_rows": d["news"],
            "cc_dolma_rows": d["cc"],
            "l2": L2,
            "folds": FOLDS,
            "method": f"Newton (IRLS) on standardised inputs, fitted on the regression pages (every view), the held-out news pages and the Common Crawl documents read for it; heldout_metrics are out-of-fold ({FOLDS} folds by site)",  # noqa: E501
        },
        "threshold": round(threshold, 6),
        "threshold_rule": "max F1 of the out-of-fold scores",
        "buckets": {"count": BUCKETS, "rule": "floor(score * 20), 0-19, 19 the best"},
        "data": {
            "wcxb": {
                "repository": "https://github.com/Murrough-Foley/web-content-extraction-benchmark",
                "commit": data.WCXB_COMMIT,
                "licence": "CC-BY-4.0",
            },
            "modern_web": {
                "repository": "https://github.com/tiptopjaw/web-content-extraction-benchmark",
                "commit": data.MODERN_WEB_COMMIT,
                "licence": "Apache-2.0",
            },
            "wikipedia": "../shared/data reference-text sample (CC BY-SA), 80% of articles by title hash",
            "cc_dolma": {
                "repository": "https://github.com/allenai/dolma",
                "commit": data.DOLMA_COMMIT,
                "files": {k: list(v) for k, v in data.DOLMA_FILES.items()},
                "licence": "Apache-2.0 (the repository); Common Crawl documents of CC-MAIN-2019-30 and CC-MAIN-2020-16",
            },
            "labels": {
                origin: {"file": f"bench/data/{path.name}", "sha256": _sha(path)}
                for origin, path in data.LABEL_FILES + (("cc-dolma", data.CC_LABELS),)
            },
            "views": "whole page (inscriptis), trafilatura extraction, benchmark main text; each labelled page in every view, one label",  # noqa: E501
            "unlabelled_crawl_pages": d["crawl"],
            "wikipedia_articles": d["wiki"],
            "split": d["split"],
        },
        "heldout_metrics": metrics,
    }
    edu_card = json.loads((MODELS / "quality-edu.card.json").read_text(encoding="utf-8"))
    card["scorers"]["edu"]["training"] = {
        "documents": edu_card["data"]["documents"],
        "positives": edu_card["data"]["positives"],
        "chunks_by_source_and_label": edu_card["data"]["provenance"]["chunks_in_train"],
        "who_labelled": "by source for reference text, documentation, textbooks (1) and forums, catalogues, changelogs, boilerplate (0); "  # noqa: E501
        "the 990 modern-web pages and the article benchmark's news pages by reading (LLM agents and hand labels, "
        "bench/data/README.md)",
        "card": "quality-edu.card.json",
    }
    card["scorers"]["general"]["training"] = {
        "sources": {
            "wikipedia (1)": d["wiki"],
            "modern-web main text read as good (1)": sum(1 for r in d["train_rows"] if r["good"]),
            "modern-web whole pages not good (0)": sum(1 for r in d["train_rows"] if not r["good"]),
            "unlabelled WCXB dev whole pages (0)": d["crawl"],
        },
        "who_labelled": "source rule for Wikipedia and unlabelled crawl pages; modern-web pages by reading (LLM agents), `good` derived as in labels",  # noqa: E501
    }
    path = out_dir / "quality-combined.json"
    path.write_text(json.dumps(card, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return card


def _r(a: np.ndarray) -> list[float]:
    return [round(float(v), 6) for v in a]


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _best_f1(scores: np.ndarray, y: np.ndarray) -> float:
    from curate.quality.evaluate import best_f1_threshold

    return float(best_f1_threshold([float(s) for s in scores], [int(v) for v in y]))


def _prec_rec(scores: np.ndarray, y: list[int], t: float) -> dict:
    from curate.quality.evaluate import binary_metrics

    m = binary_metrics([float(s) for s in scores], y, t)
    return {"precision": round(m["precision"], 4), "recall": round(m["recall"], 4)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--wcxb-git", required=True, type=Path, help="a (bare) clone of Murrough-Foley/web-content-extraction-benchmark"
    )
    p.add_argument(
        "--modern-web-git",
        required=True,
        type=Path,
        help="a (bare) clone of tiptopjaw/web-content-extraction-benchmark",
    )
    p.add_argument(
        "--dolma-git", required=True, type=Path, help="a (bare) clone of allenai/dolma (its Common Crawl test data)"
    )
    p.add_argument("--out", type=Path, default=MODELS)
    p.add_argument(
        "--check", action="store_true", help="build into a temporary folder and compare sha256 with the files in --out"
    )
    args = p.parse_args(argv)
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copy(MODELS / "quality-edu.ftz", tmp)
            build(Path(tmp), args.wcxb_git, args.modern_web_git, args.dolma_git)
            bad = [
                n for n in ("quality-general.ftz", "quality-combined.json") if _sha(Path(tmp) / n) != _sha(args.out / n)
            ]
            print("byte-identical" if not bad else f"differ: {bad}")
            return 1 if bad else 0
    card = build(args.out, args.wcxb_git, args.modern_web_git, args.dolma_git)
    print(
        json.dumps(
            {
                k: {
                    m: card["heldout_metrics"]["good"][k][m]
                    for m in ("n", "combined", "edu", "word_count", "best_single_signal")
                }
                for k in ("crawl/all", "crawl/whole", "wcxb-test/all", "cc-dolma/all")
            },
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

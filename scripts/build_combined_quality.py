"""Build the general-quality classifier and the combined quality score, evaluate them on a
site-disjoint held-out set of real crawl pages, and write them with their card:

    PYTHONPATH=. .venv/bin/python scripts/build_combined_quality.py --wcxb-git DIR --modern-web-git DIR

writes curate/models/quality-general.ftz and curate/models/quality-combined.json (coefficients,
scorers, data, held-out metrics). Same inputs, same bytes (fastText with one thread, Newton's
method, JSON with sorted keys and rounded numbers); `--check` builds into a temporary folder and
compares sha256 with the shipped files.

Data (scripts/combined_quality_data.py): the WCXB pages' HTML in three views, the labels by
reading in bench/data/, and the Wikipedia sample of ../shared/data. Train: the modern-web
labelled pages (WCXB dev). Test: the WCXB test pages of sites that never train and with no
near-duplicate (MinHash Jaccard >= 0.5 on word 5-grams) of a training page."""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))  # the repository root, for bench.webeval
import combined_quality_data as data  # noqa: E402

from curate.quality.combined import BUCKETS, EDU_CHARS, Combined, feature_rows, fit_logistic, input_names  # noqa: E402
from curate.quality.model import positive_probs  # noqa: E402
from curate.quality.evaluate import roc_auc  # noqa: E402
from curate.quality.model import load_fasttext_model  # noqa: E402
from curate.quality.normalize import normalize  # noqa: E402
from curate.quality.structure import STRUCTURE_CHARS, mean_words_per_line, word_count  # noqa: E402
from bench.webeval import hash01, shared_data_dir, wiki_articles  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
MODELS = REPO / "curate" / "models"
CACHE = Path.home() / ".cache" / "curate" / "quality-data" / "combined"
VIEWS = ("whole", "extracted", "main")
FOLDS = 4
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
# General-quality fastText: small and fast (it runs beside the educational model).
GENERAL = {"dim": 16, "wordNgrams": 2, "epoch": 10, "lr": 0.2, "minCount": 2, "bucket": 100_000, "thread": 1, "seed": 1, "verbose": 0}
L2 = 1.0
NAV_ROWS = False
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
    """Train: modern-web pages. Test: WCXB test pages of other sites, without near-duplicates of
    a training page in any view."""
    from datasketch import MinHash, MinHashLSH

    train = [r for r in rows if r["origin"] == "modern-web"]
    train_sites = {r["site"] for r in train}
    candidates = [r for r in rows if r["origin"] == "wcxb-test"]
    same_site = [r for r in candidates if r["site"] in train_sites]
    test = [r for r in candidates if r["site"] not in train_sites]

    def sketch(text: str) -> MinHash:
        words = text.lower().split()
        m = MinHash(num_perm=64, seed=1)
        for i in range(max(1, len(words) - 4)):
            m.update(" ".join(words[i : i + 5]).encode())
        return m

    lsh = MinHashLSH(threshold=0.5, num_perm=64)
    for i, r in enumerate(train):
        for v in VIEWS:
            if r[v].strip():
                lsh.insert(f"{i}:{v}", sketch(r[v]))
    near = [r for r in test if any(r[v].strip() and lsh.query(sketch(r[v])) for v in VIEWS)]
    near_ids = {r["wcxb_id"] for r in near}
    test = [r for r in test if r["wcxb_id"] not in near_ids]
    info = {
        "train_pages": len(train), "train_sites": len(train_sites), "test_candidates": len(candidates),
        "test_dropped_same_site": len(same_site), "test_dropped_near_duplicate": len(near), "test_pages": len(test),
        "near_duplicate_rule": "MinHash (datasketch, 64 permutations, seed 1) of word 5-grams, LSH Jaccard >= 0.5, any view against any training view",
    }
    return train, test, info


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


def nav_rows(test: list[dict]) -> list[tuple]:
    """The navigation of each held-out page as a document of its own, good = 0: the lines of
    the whole view that are not in the page's main text (menus, footers, cookie notices, link
    lists), what the shortest junk pages of a crawl are made of. (site, text, 0, 0, "nav",
    "wcxb-nav")."""
    rows = []
    for r in test:
        main = " ".join(r["main"].split())
        lines = [ln for ln in r["whole"].splitlines() if ln.strip() and " ".join(ln.split()) not in main]
        if lines:
            rows.append((r["site"], "\n".join(lines), 0, 0, "nav", "wcxb-nav"))
    return rows


def train_general(rows: list[tuple[int, str]], out: Path, quantize: bool) -> Path:
    import fasttext

    rows = sorted(rows, key=lambda r: hashlib.sha256(r[1].encode()).hexdigest())  # fixed order
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "train.txt"
        f.write_text("".join(f"__label__{y} {normalize(t, MAX_CHARS)[:GENERAL_CHARS]}\n" for y, t in rows), encoding="utf-8")
        model = fasttext.train_supervised(input=str(f), **GENERAL)
        if quantize:
            model.quantize(input=str(f), qnorm=True, retrain=True, cutoff=50_000, dsub=2, thread=1, verbose=0)
        model.save_model(str(out))
    return out


def scores_of(model_path: Path, texts: list[str], chars: int = MAX_CHARS) -> list[float]:
    """What CombinedScorer computes: one normalisation of the opening EDU_CHARS characters,
    the model reading its first `chars`."""
    model = load_fasttext_model(model_path)
    return positive_probs(model, [normalize(t, EDU_CHARS)[:chars] for t in texts])


def auc(s, y) -> float | None:
    a = roc_auc(list(map(float, s)), list(y))
    return None if a is None else round(a, 4)


def build(out_dir: Path, wcxb_git: Path, modern_git: Path) -> dict:
    pages = data.wcxb_pages(wcxb_git, CACHE)
    rows = data.labelled(pages, modern_git, CACHE)
    for r in rows:
        r["good"] = good_label(r)
    train, test, split_info = split(rows)
    test_sites = {r["site"] for r in test}
    labelled_urls = {r["url"] for r in rows}
    from build_quality_data import site

    # Unlabelled dev pages of sites that are not test sites: random crawl for the general model.
    crawl = [p for p in pages if p["split"] == "dev" and p["url"] not in labelled_urls and site(p["url"]) not in test_sites]
    wiki = [t for _, t, held in wiki_articles(shared_data_dir()) if not held]
    for r in train:
        r["fold"] = int(hash01(f"combined-fold:{r['site']}") * FOLDS)

    edu_path = MODELS / "quality-edu.ftz"
    out_dir.mkdir(parents=True, exist_ok=True)
    general_path = out_dir / "quality-general.ftz"
    general_docs = general_rows(train, crawl, wiki)
    train_general(general_docs, general_path, quantize=True)

    # The regression learns from pages no scorer trained on: the held-out WCXB test pages and the
    # news pages of the article benchmark that the edu model held out (bodies 1, the boilerplate
    # around them 0, the whole page 1), of sites that are not training sites. Two folds by site:
    # each page is scored by a regression that never saw its site (the held-out metrics); the
    # shipped regression is fitted on all of them.
    reg_rows = [(r["site"], r[v], r["good"], r["edu"], v, "wcxb-test") for r in test for v in VIEWS if r[v].strip()]
    news = news_rows(train_sites={r["site"] for r in train} | {site(p["url"]) for p in crawl})
    reg_rows += news
    nav = nav_rows(test) if NAV_ROWS else []
    reg_rows += nav
    texts = [t for _, t, *_ in reg_rows]
    y = np.array([g for _, _, g, *_ in reg_rows], dtype=float)
    edu = scores_of(edu_path, texts)
    gen = scores_of(general_path, texts, GENERAL_CHARS)
    x = feature_rows(texts, edu, gen, MAX_CHARS)
    names = input_names(True)
    fold = np.array([int(hash01(f"combined-fold:{site_}") * 2) for site_, *_ in reg_rows])
    oof = np.zeros(len(y))
    for f in (0, 1):
        fit, held = fold != f, fold == f
        mean, scale = x[fit].mean(axis=0), x[fit].std(axis=0) + 1e-9
        coef, intercept = fit_logistic((x[fit] - mean) / scale, y[fit], l2=L2)
        oof[held] = Combined(names, mean, scale, coef, intercept, 0.5, {}).predict(x[held])
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-9
    coef, intercept = fit_logistic((x - mean) / scale, y, l2=L2)
    reg = {"features": names, "mean": _r(mean), "scale": _r(scale), "coef": _r(coef), "intercept": round(intercept, 6)}
    threshold = _best_f1(oof, y)

    metrics: dict = {}
    for label in ("good", "edu"):
        metrics[label] = {}
        for v in VIEWS + ("all",):
            idx = [i for i, row in enumerate(reg_rows) if row[5] == "wcxb-test" and (v == "all" or row[4] == v)]
            yy = [reg_rows[i][2] if label == "good" else reg_rows[i][3] for i in idx]
            c = oof[idx]
            t = [texts[i] for i in idx]
            top = np.argsort(-c, kind="stable")[: max(1, len(c) // 10)]
            metrics[label][v] = {
                "n": len(idx), "positives": int(sum(yy)),
                "combined": auc(c, yy), "edu": auc([edu[i] for i in idx], yy), "general": auc([gen[i] for i in idx], yy),
                "word_count": auc([word_count(s) for s in t], yy), "mean_words_per_line": auc([mean_words_per_line(s) for s in t], yy),
                "combined_top10_precision": round(float(np.mean([yy[i] for i in top])), 4),
                "combined_at_threshold": _prec_rec(c, yy, threshold),
            }
    news_idx = [i for i, row in enumerate(reg_rows) if row[5] == "news"]
    metrics["news_pages"] = {"n": len(news_idx), "combined": auc(oof[news_idx], y[news_idx]), "word_count": auc([word_count(texts[i]) for i in news_idx], y[news_idx])}
    card = {
        "card_version": 1,
        "task": "P(good pretraining text) of a web document: a logistic regression over the scorers below",
        "labels": {
            "who": "Every label is a label by reading: LLM agents reading each page against a written rubric (bench/data/README.md), not humans. "
            "`good` is derived from those readings, not read separately: the page was read as educational, or it is an article, documentation page "
            "or forum thread whose reader's reason names no selling, promotion, thin or templated text (scripts/build_combined_quality.py NOT_GOOD).",
            "good_rule": NOT_GOOD.pattern, "good_types": list(GOOD_TYPES),
        },
        "scorers": {
            "edu": {"model_file": "quality-edu.ftz", "sha256": _sha(edu_path), "max_chars": EDU_CHARS, "what": "P(educational), the shipped classifier (see quality-edu.card.json), reading the opening max_chars characters"},
            "general": {
                "model_file": general_path.name, "sha256": _sha(general_path), "bytes": general_path.stat().st_size, "normalized_chars": GENERAL_CHARS,
                "what": "P(good) fastText, trained the DCLM way: positives reference text (Wikipedia sample, 80% by title hash) and the main text of training pages read as good; negatives whole crawl pages (navigation included) of the training sites",
                "hyperparameters": GENERAL, "quantized": True,
                "documents": len(general_docs),
            },
            "structure": {"what": f"curate.quality.structure.signals_batch over the opening {STRUCTURE_CHARS:,} characters (the word count extrapolated to 20,000)", "signals": names[:-2]},
        },
        "regression": reg,
        "regression_training": {
            "rows": len(reg_rows), "positives": int(y.sum()), "news_rows": len(news), "nav_rows": len(nav), "l2": L2,
            "method": "Newton (IRLS) on standardised inputs, fitted on the WCXB test pages (every view) and the held-out news pages, sites outside the general model's training; heldout_metrics are out-of-fold (2 folds by site)",
        },
        "threshold": round(threshold, 6),
        "threshold_rule": "max F1 of the out-of-fold scores",
        "buckets": {"count": BUCKETS, "rule": "floor(score * 20), 0-19, 19 the best"},
        "data": {
            "wcxb": {"repository": "https://github.com/Murrough-Foley/web-content-extraction-benchmark", "commit": data.WCXB_COMMIT, "licence": "CC-BY-4.0"},
            "modern_web": {"repository": "https://github.com/tiptopjaw/web-content-extraction-benchmark", "commit": data.MODERN_WEB_COMMIT, "licence": "Apache-2.0"},
            "wikipedia": "../shared/data reference-text sample (CC BY-SA), 80% of articles by title hash",
            "labels": {"modern-web": _sha(data.MODERN_WEB_LABELS), "wcxb-test": _sha(data.WCXB_TEST_LABELS)},
            "views": "whole page (inscriptis), trafilatura extraction, benchmark main text; each labelled page in every view, one label",
            "unlabelled_crawl_pages": len(crawl), "wikipedia_articles": len(wiki),
            "split": split_info,
        },
        "heldout_metrics": metrics,
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
    p.add_argument("--wcxb-git", required=True, type=Path, help="a (bare) clone of Murrough-Foley/web-content-extraction-benchmark")
    p.add_argument("--modern-web-git", required=True, type=Path, help="a (bare) clone of tiptopjaw/web-content-extraction-benchmark")
    p.add_argument("--out", type=Path, default=MODELS)
    p.add_argument("--check", action="store_true", help="build into a temporary folder and compare sha256 with the files in --out")
    args = p.parse_args(argv)
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copy(MODELS / "quality-edu.ftz", tmp)
            build(Path(tmp), args.wcxb_git, args.modern_web_git)
            bad = [n for n in ("quality-general.ftz", "quality-combined.json") if _sha(Path(tmp) / n) != _sha(args.out / n)]
            print("byte-identical" if not bad else f"differ: {bad}")
            return 1 if bad else 0
    card = build(args.out, args.wcxb_git, args.modern_web_git)
    print(json.dumps({k: card["heldout_metrics"]["good"][k] for k in ("all", "whole")}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

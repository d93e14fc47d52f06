"""Real crawl pages for the combined quality score: the HTML of the WCXB benchmark (CC BY 4.0,
https://github.com/Murrough-Foley/web-content-extraction-benchmark, 2,008 pages of 2025-2026)
joined with the labels by reading in bench/data/. Each labelled page gives three texts, the
views a crawl pipeline meets: the whole page as a browser shows it (inscriptis: navigation,
footers and all, like a Common Crawl WET record), trafilatura's extraction (curate's own
extract stage) and the benchmark's ground-truth main text.

Nothing here is committed: pages are read from a git clone (`--wcxb-git`) and cached under
~/.cache/curate/quality-data/combined/ as JSONL."""

from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_quality_data import cached_jsonl, site  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
WCXB_COMMIT = "c039d5ee9f5a3a984a0e167e63aacd04e76e78a9"
MODERN_WEB_COMMIT = "977613a3a90de65c9ed5e1db251eeede7b9d9714"
MODERN_WEB_LABELS = REPO / "bench" / "data" / "modern-web-labels.jsonl"
WCXB_TEST_LABELS = REPO / "bench" / "data" / "wcxb-test-labels.jsonl"
# WCXB dev pages that are not modern-web pages, of sites no modern-web page comes from, read for
# the combined score (issue 15): more real crawl pages that no scorer trained on.
WCXB_DEV_LABELS = REPO / "bench" / "data" / "wcxb-dev-labels.jsonl"
LABEL_FILES = (("modern-web", MODERN_WEB_LABELS), ("wcxb-test", WCXB_TEST_LABELS), ("wcxb-dev", WCXB_DEV_LABELS))
# Real Common Crawl documents as a crawl pipeline sees them (short junk, navigation, listings and
# articles, text already extracted): the test data of allenai/dolma (Apache-2.0), read from a git
# clone at this commit, never copied into the repository; labels by reading in CC_LABELS.
DOLMA_COMMIT = "937ccc06f6fa4cefba496b2f48cc77418b941345"
DOLMA_FILES = {
    "cc2019": ("tests/data/formats/gz/CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz",),
    "cchead": (
        "tests/data/multiple_files/cc_en_head-0091.jsonl.gz",
        "tests/data/multiple_files/cc_en_head-0174.jsonl.gz",
    ),
}
CC_LABELS = REPO / "bench" / "data" / "cc-dolma-labels.jsonl"


def git_show(gdir: Path, commit: str, path: str) -> bytes:
    return subprocess.run(
        ["git", f"--git-dir={gdir}", "show", f"{commit}:{path}"], capture_output=True, check=True
    ).stdout


def git_ls(gdir: Path, commit: str, folder: str) -> list[str]:
    return subprocess.run(
        ["git", f"--git-dir={gdir}", "ls-tree", "-r", "--name-only", commit, folder],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()


def _views(html: str) -> tuple[str, str]:
    """(whole page text, trafilatura text) of one page."""
    import inscriptis
    import trafilatura

    try:
        whole = inscriptis.get_text(html)
    except Exception:  # a page inscriptis cannot parse gives no whole view
        whole = ""
    whole = "\n".join(line.strip() for line in whole.splitlines() if line.strip())
    try:
        extracted = (
            trafilatura.extract(
                html, favor_precision=True, include_comments=False, include_tables=False, deduplicate=False
            )
            or ""
        )
    except Exception:
        extracted = ""
    return whole, extracted


def _page(args: tuple[str, str, str]) -> dict:
    gdir, split, fid = args
    g = Path(gdir)
    gt = json.loads(git_show(g, WCXB_COMMIT, f"{split}/ground-truth/{fid}.json"))
    html = gzip.decompress(git_show(g, WCXB_COMMIT, f"{split}/html/{fid}.html.gz")).decode("utf-8", "replace")
    whole, extracted = _views(html)
    page_type = ((gt.get("_internal") or {}).get("page_type") or {}).get("primary") or gt.get("page_type", "")
    return {
        "wcxb_id": fid,
        "split": split,
        "url": gt.get("url") or "",
        "type": page_type,
        "main": (gt.get("ground_truth") or {}).get("main_content") or "",
        "whole": whole,
        "extracted": extracted,
    }


def wcxb_pages(gdir: Path, cache_dir: Path, workers: int = 2) -> list[dict]:
    """Every WCXB page (dev and test) with its three views, extracted once and cached."""

    def read() -> list[dict]:
        jobs = [
            (str(gdir), split, Path(p).name.split(".")[0])
            for split in ("dev", "test")
            for p in git_ls(gdir, WCXB_COMMIT, f"{split}/ground-truth")
        ]
        with ProcessPoolExecutor(workers) as pool:
            return list(pool.map(_page, jobs, chunksize=8))

    return cached_jsonl(cache_dir / f"wcxb-views-{WCXB_COMMIT[:12]}.jsonl", read)


def modern_web_urls(gdir: Path) -> dict[str, tuple[str, str]]:
    """modern-web id -> (url, sha256[:16] of its main text) from the labelled benchmark's git."""
    out = {}
    for path in git_ls(gdir, MODERN_WEB_COMMIT, "benchmark/ground-truth"):
        doc = json.loads(git_show(gdir, MODERN_WEB_COMMIT, path))
        text = doc["ground_truth"].get("main_content") or ""
        out[doc["file_id"]] = (doc.get("url") or "", hashlib.sha256(text.encode()).hexdigest()[:16])
    return out


def labelled(pages: list[dict], modern_git: Path, cache_dir: Path) -> list[dict]:
    """The WCXB pages that carry a label by reading: the modern-web pages (their WCXB dev twin,
    joined by URL), the WCXB test pages and the WCXB dev pages read for issue 15 (by id, their
    text checked against the sha256 that was read). Adds `key` (split/id), `edu` (the reader's
    label), `why`, `site`, `origin`."""
    urls = cached_jsonl(
        cache_dir / f"modern-web-urls-{MODERN_WEB_COMMIT[:12]}.jsonl",
        lambda: [[k, *v] for k, v in sorted(modern_web_urls(modern_git).items())],
    )
    by_url = {p["url"]: p for p in pages if p["split"] == "dev"}
    by_id = {(p["split"], p["wcxb_id"]): p for p in pages}
    mw = {k: (u, h) for k, u, h in urls}
    rows, seen = [], set()
    for origin, path in LABEL_FILES:
        for line in path.open(encoding="utf-8"):
            lab = json.loads(line)
            if origin == "modern-web":
                url, digest = mw[lab["id"]]
                if digest != lab["sha256"]:
                    raise SystemExit(
                        f"modern-web page {lab['id']}: not the text that was read. Fix: pin MODERN_WEB_COMMIT to "
                        f"{MODERN_WEB_COMMIT}"
                    )
                page = by_url.get(url)
            else:
                page = by_id.get((origin.removeprefix("wcxb-"), lab["id"]))
                if page and hashlib.sha256(page["main"].encode()).hexdigest()[:16] != lab["sha256"]:
                    raise SystemExit(
                        f"WCXB {origin} page {lab['id']}: not the text that was read. Fix: pin WCXB_COMMIT to "
                        f"{WCXB_COMMIT}"
                    )
            if page is None or not page["main"].strip() or page["url"] in seen:
                continue
            seen.add(page["url"])
            rows.append(
                dict(
                    page,
                    key=f"{page['split']}/{page['wcxb_id']}",
                    edu=int(lab["label"]),
                    why=lab.get("why", ""),
                    site=site(page["url"]),
                    origin=origin,
                )
            )
    return rows


def dolma_documents(dolma_git: Path) -> dict[tuple[str, str], dict]:
    """Every document of the DOLMA_FILES at DOLMA_COMMIT, keyed by (file name, id)."""
    docs = {}
    for name, paths in DOLMA_FILES.items():
        for path in paths:
            for line in gzip.decompress(git_show(dolma_git, DOLMA_COMMIT, path)).decode("utf-8").split("\n"):
                if line.strip():  # split at "\n" only: texts hold U+2028 and other line breaks
                    doc = json.loads(line)
                    docs[(name, doc["id"])] = doc
    return docs


def cc_documents(dolma_git: Path) -> list[dict]:
    """The Common Crawl documents of allenai/dolma's test data that carry a label by reading
    (CC_LABELS), each checked against the sha256 of the text that was read. Adds `text`, `label`,
    `why`, `site`, `origin` ("cc-dolma")."""
    docs = dolma_documents(dolma_git)
    rows = []
    for line in CC_LABELS.open(encoding="utf-8"):
        lab = json.loads(line)
        doc = docs.get((lab["file"], lab["id"]))
        if doc is None or hashlib.sha256(doc["text"].encode()).hexdigest()[:16] != lab["sha256"]:
            raise SystemExit(
                f"dolma document {lab['file']}/{lab['id']}: missing or not the text that was read. Fix: pin "
                f"DOLMA_COMMIT to {DOLMA_COMMIT} (a clone of allenai/dolma)"
            )
        rows.append(
            {
                "key": f"{lab['file']}/{lab['id']}",
                "url": lab["url"],
                "text": doc["text"],
                "label": int(lab["label"]),
                "why": lab["why"],
                "site": site(lab["url"]),
                "origin": "cc-dolma",
            }
        )
    return rows

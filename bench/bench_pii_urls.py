"""Cost of the hygiene steps (URL filter + PII) per document, against datatrove's own
`URLFilter` + `PIIFormatter` on the same documents, and against the rest of a run's
per-document work (trafilatura extraction, language ID, the Gopher/C4/FineWeb rules).

Documents: the 181 gold article bodies of the article-extraction benchmark (with their real
URLs) and the 106 Wikipedia articles of the shared sample (raw wiki markup, with their
en.wikipedia.org URLs), in one process, alternating sides each round (median of rounds).
Also each filter's start-up: datatrove loads its 4.56 M blocklisted domains as a Python set
in every worker; curate memory-maps a 36 MB hash table built once.

    PYTHONPATH=$PWD .venv/bin/python -m bench.bench_pii_urls [--rounds 3]
"""

from __future__ import annotations

import argparse
import bz2
import json
import resource  # noqa: F401  (peak RSS of this process, below)
import statistics
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable

from datatrove.data import Document

from bench.common import REPO, article_pages, run_header, shared_data


def documents() -> list[tuple[str, str]]:
    """(url, text) of the real documents."""
    data = shared_data()
    gold = json.loads((data / "article-extraction-benchmark" / "ground-truth.json").read_text(encoding="utf-8"))
    docs = [(v["url"], v["articleBody"]) for _, v in sorted(gold.items())]
    title = ""
    with bz2.open(data / "reference-text" / "enwiki-sample-pages-articles.xml.bz2", "rb") as f:
        for _, elem in ET.iterparse(f):
            if elem.tag.endswith("}title"):
                title = elem.text or ""
            elif elem.tag.endswith("}text") and elem.text and not elem.text.startswith("#REDIRECT"):
                docs.append((f"https://en.wikipedia.org/wiki/{title.replace(' ', '_')}", elem.text))
            elem.clear()
    return docs


def _docs(pairs: list[tuple[str, str]]) -> list[Document]:
    return [Document(text=t, id=str(i), metadata={"url": u}) for i, (u, t) in enumerate(pairs)]


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def startup(which: str) -> dict[str, float]:
    """Load time and peak RSS of one URL filter, in a fresh process (as a worker pays it)."""
    code = {
        "curate": "from curate.hygiene.urls import URLBlocklistFilter, URLFilterConfig\n"
        "f = URLBlocklistFilter(URLFilterConfig()); f.filter(Document(text='x', id='x', metadata={'url': "
        "'https://example.com/'}))",
        "datatrove": "from datatrove.pipeline.filters import URLFilter\nfrom tldextract import TLDExtract\n"
        "f = URLFilter(); f.tldextractor = TLDExtract(suffix_list_urls=(), cache_dir=None)\n"
        "f.filter(Document(text='x', id='x', metadata={'url': 'https://example.com/'}))",
    }[which]
    # Peak RSS from VmHWM: ru_maxrss would carry over the parent's peak through fork + exec.
    script = (
        "import time\nfrom datatrove.data import Document\nstarted = time.perf_counter()\n"
        f"{code}\nhwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]\n"
        "print(time.perf_counter() - started, int(hwm) / 1024)"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, check=True
    ).stdout.split()
    return {"seconds": float(out[-2]), "peak_rss_mb": float(out[-1])}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from datatrove.pipeline.filters import URLFilter
    from datatrove.pipeline.formatters import PIIFormatter
    from tldextract import TLDExtract

    from curate.config import load_config
    from curate.hygiene.pii import PIIRedactor
    from curate.hygiene.urls import URLBlocklistFilter, URLFilterConfig
    from filters.heuristics import heuristic_annotators
    from filters.language import LanguageAnnotator
    from filters.registry import filter_stages

    starts = {"curate": startup("curate"), "datatrove": startup("datatrove")}  # before this process grows
    pairs = documents()
    n = len(pairs)
    chars = sum(len(t) for _, t in pairs)
    ours_url = URLBlocklistFilter(URLFilterConfig())
    ours_pii = PIIRedactor("redact")
    theirs_url = URLFilter()
    theirs_url.tldextractor = TLDExtract(suffix_list_urls=(), cache_dir=None)  # offline, as curate's
    theirs_pii = PIIFormatter()
    cfg = load_config(None)
    run_steps = [LanguageAnnotator(cfg.language.model_path), *heuristic_annotators(cfg.filters, filter_stages())]

    def ours() -> None:
        docs = _docs(pairs)
        for d in docs:
            ours_url.filter(d)
        list(ours_pii.run(docs))

    def theirs() -> None:
        for d in _docs(pairs):
            theirs_url.filter(d)
            d.text = theirs_pii.format(d.text)

    def run_core() -> None:
        data = iter(_docs(pairs))
        for step in run_steps:
            data = step.run(data)
        for _ in data:
            pass

    html = article_pages()

    def extraction() -> None:
        import trafilatura

        for _, page in html:
            trafilatura.extract(page.decode("utf-8", "replace"), favor_precision=True, include_tables=False)

    for fn in (ours, theirs, run_core):  # warm-up: models, automata, memory maps
        fn()
    times: dict[str, list[float]] = {"ours": [], "datatrove": [], "run_core": [], "extraction": []}
    for r in range(args.rounds):
        sides = [("ours", ours), ("datatrove", theirs), ("run_core", run_core), ("extraction", extraction)]
        for name, fn in sides if r % 2 == 0 else sides[::-1]:
            times[name].append(timed(fn))
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()), flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    per_doc_ms = {k: 1000 * med[k] / (len(html) if k == "extraction" else n) for k in med}
    run_ms = per_doc_ms["run_core"] + per_doc_ms["extraction"]
    result = {
        **run_header(),
        "documents": n,
        "characters": chars,
        "rounds": args.rounds,
        "per_doc_ms": {k: round(v, 3) for k, v in per_doc_ms.items()},
        "ours_vs_datatrove": round(med["ours"] / med["datatrove"], 2),
        "hygiene_share_of_run": round(per_doc_ms["ours"] / (run_ms + per_doc_ms["ours"]), 3),
        "startup": starts,
        "bench_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    print(json.dumps(result, indent=2))
    print(
        f"RESULTS hygiene: URL filter + PII {per_doc_ms['ours']:.2f} ms/doc vs datatrove URLFilter + PIIFormatter "
        f"{per_doc_ms['datatrove']:.2f} ms/doc ({result['ours_vs_datatrove']:.2f}x the time, 6 PII kinds vs 2); "
        f"{100 * result['hygiene_share_of_run']:.1f} % of a run's per-document work "
        f"(extraction {per_doc_ms['extraction']:.1f} + language and rules {per_doc_ms['run_core']:.1f} ms/doc); "
        f"URL filter start-up {result['startup']['curate']['seconds']:.2f} s / "
        f"{result['startup']['curate']['peak_rss_mb']:.0f} MB "
        f"vs datatrove {result['startup']['datatrove']['seconds']:.2f} s / "
        f"{result['startup']['datatrove']['peak_rss_mb']:.0f} MB per worker"
    )


if __name__ == "__main__":
    main()

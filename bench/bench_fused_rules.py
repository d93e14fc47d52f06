"""Fused heuristic rules (filters/fused_rules.py) against datatrove's four filters on real
text: agreement per rule and overall, every difference listed, and the speed ratio.

Corpus (all real, from ../shared/data and the demo sample; nothing from held-out sets):
  articles    the 181 article pages, extracted by curate's trafilatura step
  gold        the same 181 pages' gold article text (ground-truth.json)
  cc          the Common Crawl sample WARC, extracted the same way
  demo        curate's demo inputs (its WARC extracted, its JSONL as is)
  wiki        the Wikipedia sample's pages, raw wiki markup (curly brackets, lists, tables)

The baseline is datatrove's filters called one after the other on each document (what
`filters.engine: datatrove` runs; with datatrove's `lru_cache` on the words warm, i.e. the
best case for datatrove: one document through all four filters before the next), and
`FilterAnnotator` batches of 256 (the old curate path, the cache cold). Rounds alternate the
order; the median of per-round ratios is reported.

Usage: python -m bench.bench_fused_rules [--rounds 5] [--json bench/out/fused_rules.json]"""

from __future__ import annotations

import argparse
import bz2
import json
import statistics
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from bench.common import REPO, run_header, shared_data, write_article_warc, write_json

SOURCES = ("articles", "gold", "cc", "demo", "wiki")


def extracted(files: list[str]) -> list[str]:
    """Texts of the documents curate's reader and trafilatura step produce from `files`."""
    from curate.readers.reader import RecordReader
    from filters.annotate import is_rejected_upstream
    from filters.extract import AccountedTrafilatura

    stream = AccountedTrafilatura().run(RecordReader(files).run(None))
    return [doc.text for doc in stream if not is_rejected_upstream(doc)]


def wiki_pages() -> list[str]:
    path = shared_data() / "reference-text" / "enwiki-sample-pages-articles.xml.bz2"
    with bz2.open(path) as fh:
        texts = [el.text or "" for _, el in ET.iterparse(fh) if el.tag.endswith("}text")]
    return [t for t in texts if t.strip()]


def corpus(tmp: Path) -> dict[str, list[str]]:
    """{source: texts}; the slow part (extraction) once."""
    warc = tmp / "articles.warc.gz"
    write_article_warc(warc, 1)
    gold = json.loads((shared_data() / "article-extraction-benchmark" / "ground-truth.json").read_text())
    demo = sorted(str(p) for p in (REPO / "curate" / "data" / "demo").glob("*.gz"))
    return {
        "articles": extracted([str(warc)]),
        "gold": [v["articleBody"] for _, v in sorted(gold.items())],
        "cc": extracted([str(shared_data() / "cc-main-2020-34-sample.warc.gz")]),
        "demo": extracted(demo),
        "wiki": wiki_pages(),
    }


def compare(texts: dict[str, list[str]], cfg=None) -> dict:
    """Per-rule and overall agreement of the fused engine with datatrove's filters."""
    from curate.config import FiltersConfig
    from filters.fused_rules import FusedRules, datatrove_verdicts
    from filters.heuristics import build_filter
    from filters.registry import filter_stages

    cfg = cfg or FiltersConfig()
    filters = {stage: build_filter(stage, cfg) for stage in filter_stages() if getattr(cfg, stage).enabled}
    fused = FusedRules(filters)
    per_rule = {stage: 0 for stage in filters}
    same_reason = {stage: 0 for stage in filters}
    overall = same_text = n = kept = 0
    differences = []
    for source, docs in texts.items():
        for i, text in enumerate(docs):
            want, want_text = datatrove_verdicts(filters, text)
            got, got_text = fused.annotate(text)
            n += 1
            for stage in filters:
                per_rule[stage] += (want[stage] is None) == (got[stage] is None)
                same_reason[stage] += want[stage] == got[stage]
            overall += all(v is None for v in want.values()) == all(v is None for v in got.values())
            kept += all(v is None for v in want.values())
            same_text += want_text == got_text
            if want != got or want_text != got_text:
                differences.append(
                    {"source": source, "doc": i, "datatrove": want, "fused": got, "text_same": want_text == got_text}
                )
    return {
        "documents": n,
        "per_rule_decision_agreement": {s: per_rule[s] / n for s in filters},
        "per_rule_reason_agreement": {s: same_reason[s] / n for s in filters},
        "overall_keep_drop_agreement": overall / n,
        "text_after_rules_identical": same_text / n,
        "kept_by_datatrove": kept,
        "differences": differences,
    }


def speed(texts: list[str], rounds: int) -> dict:
    """Seconds for the rules over `texts`: fused, datatrove one document at a time (cache warm),
    datatrove through FilterAnnotator's batches (curate's previous path)."""
    from datatrove.data import Document

    from curate.config import FiltersConfig
    from filters.annotate import FilterAnnotator
    from filters.fused_rules import FusedRules, datatrove_verdicts
    from filters.heuristics import build_filter
    from filters.registry import filter_stages

    cfg = FiltersConfig()
    filters = {stage: build_filter(stage, cfg) for stage in filter_stages()}
    fused = FusedRules(filters)
    datatrove_verdicts(filters, texts[0]), fused.annotate(texts[0])  # load spaCy outside the timing

    def run_fused() -> None:
        for t in texts:
            fused.annotate(t)

    def run_per_doc() -> None:
        for t in texts:
            datatrove_verdicts(filters, t)

    def run_batched() -> None:
        stream = iter([Document(text=t, id=str(i), metadata={}) for i, t in enumerate(texts)])
        for stage, f in filters.items():
            stream = FilterAnnotator(stage, f).run(stream)
        for _ in stream:
            pass

    sides = {"fused": run_fused, "datatrove_per_doc": run_per_doc, "datatrove_batched": run_batched}
    times: dict[str, list[float]] = {s: [] for s in sides}
    for r in range(rounds):
        order = list(sides) if r % 2 == 0 else list(sides)[::-1]
        for name in order:
            started = time.process_time()
            sides[name]()
            times[name].append(time.process_time() - started)
        print(f"round {r + 1}: " + ", ".join(f"{s} {times[s][-1]:.2f} CPU-s" for s in sides), flush=True)
    mb = sum(len(t.encode()) for t in texts) / 1e6
    out: dict = {
        "documents": len(texts),
        "mb": round(mb, 2),
        "cpu_s_median": {s: statistics.median(v) for s, v in times.items()},
    }
    out["cpu_s_rounds"] = times
    for base in ("datatrove_per_doc", "datatrove_batched"):
        ratios = [b / f for b, f in zip(times[base], times["fused"])]
        out[f"speedup_vs_{base}"] = {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)}
    out["fused_ms_per_doc"] = 1000 * out["cpu_s_median"]["fused"] / len(texts)
    return out


def main() -> None:
    import tempfile

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", type=Path, default=REPO / "bench" / "out" / "fused_rules.json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="fast-rules-bench-") as tmp:
        texts = corpus(Path(tmp))
    print("documents per source: " + ", ".join(f"{s} {len(v)}" for s, v in texts.items()), flush=True)
    fidelity = compare(texts)
    for d in fidelity["differences"]:
        print("DIFFERENT", json.dumps(d))
    print(json.dumps({k: v for k, v in fidelity.items() if k != "differences"}, indent=1), flush=True)
    # what the rules see in a run (extracted web text), then everything (wiki markup included,
    # where spaCy's special cases often span chunks and the whole text is tokenised)
    web = [t for s in ("articles", "cc", "demo") for t in texts[s]]
    timing = {
        "extracted web pages": speed(web, args.rounds),
        "all sources": speed([t for v in texts.values() for t in v], args.rounds),
    }
    print(json.dumps(timing, indent=1))
    header = {**run_header(), "command": " ".join(["python -m bench.bench_fused_rules", *sys.argv[1:]])}
    write_json(args.json, {**header, "fidelity": fidelity, "speed": timing})


if __name__ == "__main__":
    main()

"""Benchmark decontamination: false alarms on clean real text, recall on planted benchmark
items, and speed and memory against datatrove's `NGramsDecontFilter` on the same documents.

    PYTHONPATH=. .venv/bin/python -m bench.bench_decontam

- clean text: the 181 gold article bodies of ../shared/data/article-extraction-benchmark,
  the Wikipedia sample's articles, the demo JSONL documents: every flagged one is a false alarm.
- planted: 20 items of each benchmark (raw texts from the build cache, ~/.cache/curate/benchmarks;
  run scripts/build_decontam_index.py first) pasted into the middle of an article body.
- speed: docs/s of curate's Decontaminator.check vs datatrove's NGramsDecontFilter.filter over
  the same documents (clean + planted), paired rounds alternating which goes first; datatrove's
  index holds the same items' 13-grams, hashed its way (its tokenizer, xxhash64 of the joined
  n-gram). datatrove stops at the first hit and computes no span, which favours it.
- memory: RSS growth when each side loads its index.
Writes bench/RESULTS-hygiene.json; the tables go to bench/RESULTS-hygiene.md by hand."""

from __future__ import annotations

import gzip
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import run_header, shared_data
from curate.hygiene.config import DecontamConfig
from curate.hygiene.decontam import Decontaminator
from curate.hygiene.ngrams import words

REPO = Path(__file__).resolve().parents[1]
PLANTED_PER_BENCH = 20
ROUNDS = 3


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def clean_corpora() -> dict[str, list[str]]:
    from bench.webeval import wiki_articles

    shared = shared_data()
    gold = json.loads((shared / "article-extraction-benchmark" / "ground-truth.json").read_text(encoding="utf-8"))
    articles = [v["articleBody"] for _, v in sorted(gold.items()) if v.get("articleBody", "").strip()]
    wiki = [text for _, text, _ in wiki_articles(shared)]
    demo = []  # the demo file plants malformed lines on purpose: skip them
    for line in (
        gzip.open(REPO / "curate" / "data" / "demo" / "web.jsonl.gz").read().decode("utf-8", "replace").splitlines()
    ):
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("text"), str):
            demo.append(record["text"])
    return {
        "article bodies (article-extraction-benchmark gold)": articles,
        "Wikipedia sample articles": wiki,
        "demo JSONL documents": demo,
    }


def benchmark_items() -> dict[str, list[str]]:
    sys.path.insert(0, str(REPO / "scripts"))
    from build_decontam_index import CACHE, SOURCES, fetch

    return {src.name: src.items(fetch(src, CACHE, None)) for src in SOURCES}


def plant(items: dict[str, list[str]], hosts: list[str], n: int) -> list[tuple[str, str]]:
    rng = random.Random(17)
    out = []
    for name, texts in items.items():
        usable = [t for t in texts if len(words(t)) >= 13]
        for k, item in enumerate(rng.sample(usable, min(n, len(usable)))):
            host = hosts[(len(out) + k) % len(hosts)]
            paras = host.split("\n")
            mid = len(paras) // 2
            out.append((name, "\n".join(paras[:mid] + [item] + paras[mid:])))
    return out


def datatrove_filter(items: dict[str, list[str]], folder: Path):
    from datatrove.pipeline.decont.n_grams import NGramsDecontConfig, NGramsDecontFilter
    from datatrove.utils.hashing import create_hash_func
    from datatrove.utils.text import ngrams, simplify_text
    from datatrove.utils.word_tokenizers import load_word_tokenizer

    config = NGramsDecontConfig(n_grams=13, find_query_ngrams=True, find_overlap_ngrams=False)
    # NGramsDecontIndexer.compute_hashes, line for line: the indexer class itself refuses to
    # be built without lighteval, which it needs only to download tasks from the hub.
    tokenizer, hash_func = load_word_tokenizer("en"), create_hash_func(config.hash_config)

    def compute_hashes(text: str) -> list[int]:
        tokens = tokenizer.word_tokenize(simplify_text(text, config.norm_config))
        return [hash_func(" ".join(g)) for g in ngrams(tokens, config.n_grams)]

    for name, texts in items.items():
        hashes = {h for t in texts for h in compute_hashes(t)}
        np.array(sorted(hashes), dtype="<u8").tofile(folder / f"{name}.index.hashes")
    return NGramsDecontFilter(str(folder), config=config)


def main() -> int:
    results: dict = {**run_header()}
    corpora = clean_corpora()
    before = rss_mb()
    ours = Decontaminator(DecontamConfig())
    results["curate_index_rss_mb"] = round(rss_mb() - before, 1)
    results["curate_index_bytes"] = int(
        sum(a.nbytes for a in (ours.index.hashes, ours.index.item, ours.index.item_ngrams, ours.index.item_bench))
    )
    # 1. false alarms on clean text
    clean = {}
    for label, texts in corpora.items():
        matches = [ours.match(t) for t in texts]
        flagged = [m for m in matches if m and m.contaminated]
        spans = [m.span_words for m in matches if m]
        clean[label] = {
            "documents": len(texts),
            "words": sum(len(t.split()) for t in texts),
            "with_any_hit": sum(m is not None for m in matches),
            "flagged": len(flagged),
            "longest_span": max(spans, default=0),
            "flagged_examples": [(m.benchmark, m.describe()[:200]) for m in flagged[:5]],
        }
        print(label, clean[label], flush=True)
    results["clean"] = clean
    # 2. recall on planted items
    items = benchmark_items()
    hosts = corpora["article bodies (article-extraction-benchmark gold)"]
    planted = plant(items, hosts, PLANTED_PER_BENCH)
    recall: dict[str, dict] = {}
    for name, doc in planted:
        drop = ours.check(doc)
        r = recall.setdefault(name, {"planted": 0, "dropped": 0, "named": 0})
        r["planted"] += 1
        r["dropped"] += drop is not None
        r["named"] += drop is not None and drop.value == name
    results["planted"] = recall
    print("recall", recall, flush=True)
    # 3. speed and memory against datatrove
    docs = [t for texts in corpora.values() for t in texts] + [d for _, d in planted]
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        theirs = datatrove_filter(items, Path(tmp))
        results["datatrove_index_build_s"] = round(time.perf_counter() - t0, 1)
        from datatrove.data import Document

        before = rss_mb()
        theirs.load_index_hashes()
        results["datatrove_index_rss_mb"] = round(rss_mb() - before, 1)
        dt_docs = [Document(text=t, id=str(i)) for i, t in enumerate(docs)]
        rates: dict[str, list[float]] = {"curate": [], "datatrove": []}
        flags: dict[str, int] = {}
        for r in range(ROUNDS):
            sides = [
                ("curate", lambda: sum(ours.check(t) is not None for t in docs)),
                ("datatrove", lambda: sum(theirs.filter(d) is not True for d in dt_docs)),
            ]
            for name, fn in sides if r % 2 == 0 else sides[::-1]:
                t0 = time.perf_counter()
                flags[name] = fn()
                rates[name].append(len(docs) / (time.perf_counter() - t0))
                print(f"round {r + 1} {name}: {rates[name][-1]:.1f} docs/s ({flags[name]} flagged)", flush=True)
    results["speed"] = {
        "documents": len(docs),
        "words": sum(len(t.split()) for t in docs),
        "docs_per_s": rates,
        "flagged": flags,
        "ratio_median_paired": round(statistics.median(c / d for c, d in zip(rates["curate"], rates["datatrove"])), 2),
    }
    print(json.dumps(results["speed"]), flush=True)
    (REPO / "bench" / "RESULTS-hygiene.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

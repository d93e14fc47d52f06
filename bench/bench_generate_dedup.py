"""Generation's dedup against the corpus: the previous path (the whole dedup stage over
corpus + generated documents, signing every corpus document on each run) against the
current one (curate.synth.corpus_dedup: corpus signatures from the dedup index, or from the
tables an earlier run signed), in the same process, on the same inputs.

The corpus: `bench.dedup_data.synthetic_corpus` (real paragraphs from ../shared/data,
edited; 20 % near-copies), deduplicated by the real dedup stage into an index, as `curate
run` does before generation; its kept parts are the corpus. The generated side: 64
documents, a quarter of them copies or near-copies of corpus documents. Rounds alternate
(old, index, cache, old, ...); the median of the per-round ratios old/new is reported,
and every run's decisions are checked to be identical to the old path's.

Usage: python -m bench.bench_generate_dedup [--docs 50000] [--rounds 3] [--workers 1]"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from bench.common import REPO, results_path, run_header, write_json
from bench.dedup_data import synthetic_corpus
from curate.config import CurateConfig, load_config
from curate.core import schema as S

RESULTS = results_path("RESULTS-generate.md")
WORK = REPO / "bench" / "out" / "generate-dedup"
BEGIN = "<!-- bench_generate_dedup: begin -->"
END = "<!-- bench_generate_dedup: end -->"


def old_dedup(
    cfg: CurateConfig, table: pa.Table, corpus: list[Path], work: Path
) -> tuple[pa.Table, list[dict[str, Any]], dict[str, Any]]:
    """The previous implementation of generation's dedup, verbatim: the whole dedup stage over
    corpus + generated (signing every corpus document, copying out every corpus id). The
    reference the current path must match (also used by tests/test_generate_io.py)."""
    from curate.dedup.stage import LEDGER_PATTERN, Workers, deduplicate

    dedup = cfg.dedup.model_copy(update={"enabled": True, "keep": [], "update_index": False})
    dcfg = cfg.model_copy(update={"dedup": dedup})
    work.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, work / "checked.parquet")
    ledger_dir = work / "dedup-ledger"
    with Workers.from_config(cfg.executor) as workers:
        result = deduplicate(
            dcfg, [*corpus, work / "checked.parquet"], work / "dedup", ledger_dir, workers, columns=[S.ID]
        )
    mine = pl.read_parquet(ledger_dir / LEDGER_PATTERN.format(len(corpus)))
    dropped = mine.select(S.ID, "reason", "value", "duplicate_of").to_dicts()
    gone = {d[S.ID] for d in dropped}
    mask = pa.array([i not in gone for i in table.column(S.ID).to_pylist()])
    return (
        table.filter(mask),
        dropped,
        {k: v for k, v in result.counts.items() if k in ("exact_duplicate", "near_duplicate", "from_index")},
    )


def write_parts(folder: Path, docs: int, parts: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    records = list(synthetic_corpus(docs))
    size = -(-len(records) // parts)
    out = []
    for p in range(parts):
        chunk = records[p * size : (p + 1) * size]
        rows = [{S.ID: i, S.TEXT: t, S.SOURCE: f"bench/{p}", S.OFFSET: k} for k, (i, t) in enumerate(chunk)]
        path = folder / f"in-{p:05d}.parquet"
        pq.write_table(pa.Table.from_pylist(rows, schema=S.DOCUMENT_SCHEMA), path, row_group_size=10_000)
        out.append(path)
    return out


def generated(corpus: list[Path], n: int = 64) -> pa.Table:
    texts = pl.read_parquet(corpus[0], columns=[S.TEXT]).get_column(S.TEXT).to_list()
    rng = random.Random(5)
    rows = []
    for k in range(n):
        base = rng.choice(texts)
        if k % 8 == 0:
            text = base  # an exact copy of a corpus document
        elif k % 8 == 1:
            text = base + " Retrieved 2025."  # a near copy
        else:
            words = base.split()
            rng.shuffle(words)  # the corpus's words in another order: distinct shingles
            text = " ".join(words)
        rows.append({S.ID: f"synth-{k:04d}", S.TEXT: text, S.SOURCE: "generate:bench@v1", S.OFFSET: k})
    return pa.Table.from_pylist(rows, schema=S.DOCUMENT_SCHEMA)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    from curate.dedup.stage import run_dedup
    from curate.synth.corpus_dedup import dedup_against_corpus

    shutil.rmtree(WORK, ignore_errors=True)
    inputs = write_parts(WORK / "input", args.docs, 2)
    index = WORK / "index"
    cfg = load_config(
        None, ["name=bench", f"dedup.index_dir={json.dumps(str(index))}", f"executor.workers={args.workers}"]
    )
    started = time.perf_counter()
    corpus = run_dedup(cfg, inputs, WORK / "dedup", WORK / "dedup-ledger")
    stage_s = time.perf_counter() - started
    corpus_docs = sum(pq.ParquetFile(p).metadata.num_rows for p in corpus)
    table = generated(corpus)
    no_index = cfg.model_copy(update={"dedup": cfg.dedup.model_copy(update={"index_dir": ""})})

    def old() -> tuple[float, Any]:
        shutil.rmtree(WORK / "old", ignore_errors=True)
        t = time.perf_counter()
        result = old_dedup(cfg, table, corpus, WORK / "old")
        return time.perf_counter() - t, result

    def new(config: CurateConfig, cache: Path) -> tuple[float, Any]:
        shutil.rmtree(WORK / "new", ignore_errors=True)
        (WORK / "new").mkdir()
        t = time.perf_counter()
        kept, dropped, counts = dedup_against_corpus(config, table, corpus, WORK / "new", cache)
        seconds = time.perf_counter() - t
        origin = counts.pop("corpus_signatures")
        return seconds, ((kept, dropped, counts), origin)

    # The cache side's tables: signed once, untimed (what an earlier run of the stage left).
    _, (_, origin) = new(no_index, WORK / "cache")
    assert origin["signed"] == corpus_docs, origin
    reference = old()[1]
    rounds: list[dict[str, float]] = []
    for _ in range(args.rounds):
        o, result = old()
        assert result[1] == reference[1]
        i, (result_i, origin_i) = new(cfg, WORK / "cache-unused")
        c, (result_c, origin_c) = new(no_index, WORK / "cache")
        assert origin_i["from_index"] == corpus_docs and origin_c["cached"] == corpus_docs, (origin_i, origin_c)
        for r in (result_i, result_c):
            assert (r[0].to_pylist(), r[1], r[2]) == (reference[0].to_pylist(), reference[1], reference[2])
        rounds.append({"old": o, "index": i, "cache": c})
        print(f"old {o:.2f} s, from the index {i:.2f} s, from the cache {c:.2f} s")
    dropped = reference[1]
    result = {
        **run_header(),
        "docs_in": args.docs,
        "corpus_docs": corpus_docs,
        "generated": table.num_rows,
        "workers": args.workers,
        "dedup_stage_s": stage_s,
        "rounds": rounds,
        "ratio_index": statistics.median(r["old"] / r["index"] for r in rounds),
        "ratio_cache": statistics.median(r["old"] / r["cache"] for r in rounds),
        "dropped": {k: sum(1 for d in dropped if d["reason"] == k) for k in ("exact_duplicate", "near_duplicate")},
    }
    write_json(REPO / "bench" / "out" / "generate-dedup.json", result)
    section = render(result)
    text = RESULTS.read_text() if RESULTS.exists() else ""
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + section + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    RESULTS.write_text(text.rstrip("\n") + "\n")
    print(
        f"old/new: {result['ratio_index']:.1f}x from the index, {result['ratio_cache']:.1f}x from the cache; wrote "
        f"{RESULTS}"
    )


def render(r: dict[str, Any]) -> str:
    rows = "\n".join(
        f"| {k + 1} | {x['old']:.2f} | {x['index']:.2f} | {x['cache']:.2f} | {x['old'] / x['index']:.1f} | "
        f"{x['old'] / x['cache']:.1f} |"
        for k, x in enumerate(r["rounds"])
    )
    med = {k: statistics.median(x[k] for x in r["rounds"]) for k in ("old", "index", "cache")}
    return f"""{BEGIN}
## Dedup against the corpus: reused signatures instead of re-signing

`python -m bench.bench_generate_dedup --docs {r["docs_in"]} --rounds {len(r["rounds"])} --workers {r["workers"]}`, {r["date"]},
{r["cpus"]} CPU cores shared with other work. Corpus: {r["docs_in"]:,} documents of `bench.dedup_data.synthetic_corpus`
(real paragraphs, edited), deduplicated by the dedup stage into an index ({r["corpus_docs"]:,} kept: the corpus);
{r["generated"]} generated documents, a quarter of them copies or near-copies of corpus documents
({r["dropped"]["exact_duplicate"]} exact and {r["dropped"]["near_duplicate"]} near duplicates dropped). Same process, rounds alternating;
every run's kept rows, ledger rows and counts are identical to the old path's (the script asserts it).

| round | old: sign corpus + generated, s | new, corpus from the index, s | new, corpus from its own earlier tables, s | old/index | old/cache |
|---|---|---|---|---|---|
{rows}

**old/new: {r["ratio_index"]:.1f}x with the dedup index, {r["ratio_cache"]:.1f}x from the stage's own earlier tables**
(median of per-round ratios; medians {med["old"]:.2f} s -> {med["index"]:.2f} s / {med["cache"]:.2f} s). The first run without
an index still signs the corpus once (as before) and keeps the tables (~150 B per document) for its reruns.
{END}
"""  # noqa: E501


if __name__ == "__main__":
    main()

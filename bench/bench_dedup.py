"""Dedup benchmarks: signature throughput against baselines, detection quality against the
LSH S-curve, and cost at 10k / 100k / 1M documents. Prints ratios measured within one run
and writes bench/RESULTS-dedup.md.

    python -m bench.bench_dedup            # everything, the 1M run included (~10 min)
    python -m bench.bench_dedup --quick    # smaller samples, scales 10k and 100k only

Data: real text from ../shared/data (bench/dedup_data.py), never copied into the repo;
scaling corpora are written under --workdir (default /tmp/curate-bench-dedup).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from bench.common import results_path
from bench.dedup_data import near_duplicate_pairs, real_documents, synthetic_corpus
from curate.config import CurateConfig, load_config
from curate.core import schema as S
from curate.core.shards import conform
from curate.dedup.normalize import near_words
from curate.dedup.signatures import MinHashParams, Signer, params_from_config
from curate.dedup.stage import MAIN_MB_PER_MILLION

RESULTS = results_path("RESULTS-dedup.md")
PAIRED_ROUNDS = 7  # curate vs the strongest baseline, alternating order
BUCKETS = [
    (0.0, 0.3),
    (0.3, 0.5),
    (0.5, 0.6),
    (0.6, 0.7),
    (0.7, 0.75),
    (0.75, 0.8),
    (0.8, 0.85),
    (0.85, 0.9),
    (0.9, 0.95),
    (0.95, 1.0001),
]
# Edit rates that spread true 5-gram Jaccard over 0.1-1 (each edit touches up to 5 shingles).
EDIT_RATES = [0.003, 0.01, 0.02, 0.03, 0.05, 0.08, 0.12, 0.2, 0.35]


def params() -> MinHashParams:
    return params_from_config(CurateConfig().dedup)


def shingle_strings(text: str, n: int) -> list[str]:
    words = near_words(text)
    if len(words) < n:
        return [" ".join(words)] if words else []
    return [" ".join(words[i : i + n]) for i in range(len(words) - n + 1)]


# ------------------------------------------------------------------------------ throughput


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def throughput(texts: list[str], slow_sample: int) -> dict[str, Any]:
    """docs/s on one core for each way of computing the same 112-permutation signatures."""
    import xxhash
    from datasketch import LeanMinHash, MinHash
    from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupSignature

    p = params()
    out: dict[str, Any] = {"documents": len(texts), "words_per_doc": float(np.mean([len(t.split()) for t in texts]))}
    slow = texts[:slow_sample]

    def timed(name: str, docs: list[str], fn: Any) -> None:
        fn(docs[:20])  # warm-up: imports, caches, first-call allocations
        started = time.perf_counter()
        fn(docs)
        out[name] = _rate(len(docs), time.perf_counter() - started)
        print(f"  {name:<40} {out[name]:>10,.0f} docs/s", flush=True)

    def plain_loop(docs: list[str]) -> None:
        for text in docs:
            m = MinHash(num_perm=p.num_perm, seed=p.seed)
            for shingle in shingle_strings(text, p.ngram):
                m.update(shingle.encode("utf-8"))

    def update_batch_xxh(docs: list[str]) -> None:
        for text in docs:
            m = MinHash(num_perm=p.num_perm, seed=p.seed, hashfunc=xxhash.xxh32_intdigest)
            m.update_batch(shingle_strings(text, p.ngram))

    def bulk_lean(docs: list[str]) -> None:
        sets = [shingle_strings(text, p.ngram) for text in docs]
        [LeanMinHash(m) for m in MinHash.bulk(sets, num_perm=p.num_perm, seed=p.seed, hashfunc=xxhash.xxh32_intdigest)]

    signer = Signer(p)

    def update_batch_ours(docs: list[str]) -> None:
        # Our shingle hashes fed to datasketch's update_batch, one document at a time.
        identity = int
        for start in range(0, len(docs), 1000):
            words, lengths = signer.word_hashes(docs[start : start + 1000])
            shingles, counts = signer.shingle_hashes(words, lengths)
            offsets = np.concatenate(([0], np.cumsum(counts)))
            for i in range(len(counts)):
                m = MinHash(num_perm=p.num_perm, seed=p.seed, hashfunc=identity)
                m.update_batch(shingles[offsets[i] : offsets[i + 1]].tolist())

    dt_step = MinhashDedupSignature(
        output_folder=tempfile.mkdtemp(prefix="dt-sig-"),
        config=MinhashConfig(n_grams=p.ngram, num_buckets=p.bands, hashes_per_bucket=p.rows, seed=p.seed),
    )

    def datatrove_core(docs: list[str]) -> None:
        for text in docs:
            shingles = dt_step.get_shingles(text)
            if shingles.size:
                dt_step.get_signature(shingles)

    def ours(docs: list[str]) -> None:
        for start in range(0, len(docs), 1000):
            signer.signatures(docs[start : start + 1000])

    def ours_with_bands(docs: list[str]) -> None:
        from curate.dedup.normalize import exact_key

        for start in range(0, len(docs), 1000):
            chunk = docs[start : start + 1000]
            [exact_key(t) for t in chunk]
            signer.band_hashes(signer.signatures(chunk).sig)

    print(
        f"signature throughput, one core, {len(texts)} real documents ({out['words_per_doc']:.0f} words each on "
        "average)"
    )
    timed("datasketch plain update() loop (a)", slow, plain_loop)
    timed("datasketch update_batch + xxh32", slow, update_batch_xxh)
    timed("datasketch bulk + LeanMinHash + xxh32", slow, bulk_lean)
    timed("datasketch update_batch, our hashes", texts, update_batch_ours)
    timed("datatrove MinhashDedupSignature (b)", texts, datatrove_core)
    timed("curate Signer", texts, ours)
    timed("curate Signer + exact key + bands", texts, ours_with_bands)
    # The headline: curate's Signer against the strongest baseline a user would write with
    # datasketch (MinHash.bulk + LeanMinHash, xxh32), on the same documents, in rounds that
    # alternate which side goes first so load from other jobs falls on both alike; the
    # median of the per-round ratios (the single timings above are one run each).
    same = texts  # every real document (texts[:1500] with --quick)
    rounds: list[float] = []
    for r in range(PAIRED_ROUNDS):
        seconds: dict[str, float] = {}
        for name, fn in (("bulk", bulk_lean), ("ours", ours))[:: 1 if r % 2 == 0 else -1]:
            started = time.perf_counter()
            fn(same)
            seconds[name] = time.perf_counter() - started
        rounds.append(seconds["bulk"] / seconds["ours"])
        print(
            f"  paired round {r + 1}: bulk+Lean {len(same) / seconds['bulk']:,.0f} docs/s, curate "
            f"{len(same) / seconds['ours']:,.0f} docs/s, ratio {rounds[-1]:.2f}x",
            flush=True,
        )
    out["vs_strongest"] = float(np.median(rounds))
    out["vs_strongest_rounds"] = [round(x, 2) for x in rounds]
    out["paired_documents"] = len(same)
    print(
        f"  -> curate vs datasketch bulk + LeanMinHash (strongest baseline), median of {PAIRED_ROUNDS} paired rounds: "
        f"{out['vs_strongest']:.2f}x"
    )
    out["vs_plain"] = out["curate Signer"] / out["datasketch plain update() loop (a)"]
    out["vs_datatrove"] = out["curate Signer"] / out["datatrove MinhashDedupSignature (b)"]
    print(f"  -> curate vs plain loop: {out['vs_plain']:.1f}x, vs datatrove: {out['vs_datatrove']:.1f}x")
    return out


# --------------------------------------------------------------------------------- quality


def quality(docs: list[tuple[str, str]], workdir: Path) -> dict[str, Any]:
    """Pairwise LSH recall per true-Jaccard bucket (vs the S-curve), end-to-end recall at
    J >= 0.9 and false-positive rate on distinct real documents."""
    p = params()
    signer = Signer(p)
    pairs = near_duplicate_pairs(docs, EDIT_RATES)
    originals = dict(docs)
    texts_a = [originals[a] for a, _, _, _ in pairs]
    texts_b = [text for _, _, text, _ in pairs]
    jaccard = np.array([j for _, _, _, j in pairs])
    bands_a = signer.band_hashes(signer.signatures(texts_a).sig)
    bands_b = signer.band_hashes(signer.signatures(texts_b).sig)
    candidate = (bands_a == bands_b).any(axis=1)
    rows = []
    print(f"detection per true 5-gram Jaccard bucket ({len(pairs)} edited copies of {len(docs)} real documents)")
    for lo, hi in BUCKETS:
        mask = (jaccard >= lo) & (jaccard < hi)
        if not mask.any():
            continue
        theory = float(np.mean([p.candidate_probability(s) for s in jaccard[mask]]))
        rows.append(
            {
                "bucket": f"[{lo:.2f}, {min(hi, 1.0):.2f}{']' if hi > 1 else ')'}",
                "pairs": int(mask.sum()),
                "recall": float(candidate[mask].mean()),
                "s_curve": theory,
            }
        )
        print(
            f"  J in {rows[-1]['bucket']:<14} pairs {rows[-1]['pairs']:>6}  detected {rows[-1]['recall']:.4f}  "
            f"S-curve {theory:.4f}",
            flush=True,
        )

    # End to end: originals + one copy each with J >= 0.9, through run_dedup.
    rng = random.Random(5)
    high = [(a, b, t, j) for a, b, t, j in pairs if j >= 0.9]
    chosen: dict[str, tuple[str, str, float]] = {}
    for a, b, t, j in high:
        if a not in chosen or rng.random() < 0.5:
            chosen[a] = (b, t, j)
    records = [(i, t) for i, t in docs] + [(b, t) for b, t, _ in chosen.values()]
    kept, ledger = _run(records, workdir / "quality-e2e")
    copies_removed = sum(
        1 for a, (b, _, _) in chosen.items() if (a in kept) != (b in kept) and (a in kept or b in kept)
    )
    e2e_recall = copies_removed / len(chosen) if chosen else float("nan")
    print(
        f"  end to end, J >= 0.9: {copies_removed}/{len(chosen)} pairs reduced to one document (recall "
        f"{e2e_recall:.4f})"
    )

    # False positives: the distinct real documents alone.
    kept, ledger = _run(list(docs), workdir / "quality-fpr")
    dropped = ledger.filter(pl.col("stage") == "dedup")
    true_j = [_true(originals[r["id"]], originals[r["duplicate_of"]]) for r in dropped.iter_rows(named=True)]
    fpr = dropped.height / len(docs)
    print(
        f"  distinct real documents: {dropped.height}/{len(docs)} dropped (FPR {fpr:.4%}); their true J with the kept "
        f"one: {[round(j, 2) for j in true_j]}"
    )
    return {
        "buckets": rows,
        "e2e_pairs": len(chosen),
        "e2e_recall": e2e_recall,
        "distinct": len(docs),
        "false_positives": dropped.height,
        "fpr": fpr,
        "fp_true_jaccard": true_j,
    }


def _true(a: str, b: str) -> float:
    from bench.dedup_data import true_jaccard

    return true_jaccard(a, b)


def _run(records: list[tuple[str, str]], folder: Path, workers: int = 1) -> tuple[set[str], pl.DataFrame]:
    from curate.dedup.stage import run_dedup

    folder.mkdir(parents=True, exist_ok=True)
    part = folder / "input.parquet"
    write_part(records, part)
    cfg = load_config(None, [f"executor.workers={workers}"])
    out = run_dedup(cfg, [part], folder / "work", folder / "ledger")
    kept = set(pl.read_parquet(out).get_column("id").to_list())
    return kept, pl.read_parquet(folder / "ledger")


def write_part(records: list[tuple[str, str]], path: Path, source: str = "bench") -> None:
    n = len(records)
    table = pa.table(
        {
            S.ID: [r[0] for r in records],
            S.TEXT: [r[1] for r in records],
            S.SOURCE: [source] * n,
            S.OFFSET: list(range(n)),
            S.URL: pa.nulls(n, pa.string()),
            S.DATE: pa.nulls(n, pa.string()),
            S.LANG: ["en"] * n,
            S.LANG_SCORE: pa.array([1.0] * n, pa.float32()),
            S.METADATA: pa.nulls(n, pa.string()),
        },
    )
    pq.write_table(conform(table, S.DOCUMENT_SCHEMA), path, compression="zstd", row_group_size=10_000)


# --------------------------------------------------------------------------------- scaling


PART_ROWS = 100_000


def make_corpus(n: int, folder: Path) -> list[Path]:
    """n synthetic documents in parts of PART_ROWS, cached across runs."""
    folder.mkdir(parents=True, exist_ok=True)
    done = folder / "done.json"
    if done.exists():
        return [Path(p) for p in json.loads(done.read_text())]
    parts: list[Path] = []
    buffer: list[tuple[str, str]] = []
    for record in synthetic_corpus(n):
        buffer.append(record)
        if len(buffer) == PART_ROWS:
            parts.append(folder / f"part-{len(parts):05d}.parquet")
            write_part(buffer, parts[-1])
            buffer = []
    if buffer:
        parts.append(folder / f"part-{len(parts):05d}.parquet")
        write_part(buffer, parts[-1])
    done.write_text(json.dumps([str(p) for p in parts]))
    return parts


class PeakSampler:
    """Peak RSS of this process and of the sum of its children (the pool's workers),
    sampled every 50 ms. ru_maxrss cannot tell: a spawned child's high-water mark starts at
    its parent's size (fork before exec)."""

    def __init__(self) -> None:
        import threading

        import psutil

        self.me = psutil.Process()
        self.main = self.children = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            try:
                self.main = max(self.main, self.me.memory_info().rss)
                kids = 0
                for child in self.me.children(recursive=True):
                    try:
                        kids += child.memory_info().rss
                    except psutil.Error:
                        pass
                self.children = max(self.children, kids)
            except psutil.Error:
                pass
            self._stop.wait(0.05)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def scale_child(n: int, workdir: Path, workers: int) -> dict[str, Any]:
    """Runs in its own process (the corpus was made by another), so what it measures is
    the dedup's alone."""
    import psutil

    from curate.dedup.stage import Workers, deduplicate

    parts = [Path(p) for p in json.loads((workdir / f"corpus-{n}" / "done.json").read_text())]
    cfg = load_config(None, [f"executor.workers={workers}"])
    run_dir = workdir / f"run-{n}"
    if run_dir.exists():
        import shutil

        shutil.rmtree(run_dir)
    before = psutil.Process().memory_info().rss
    started = time.perf_counter()
    with PeakSampler() as peak, Workers(workers) as pool:
        result = deduplicate(cfg, parts, run_dir / "work", run_dir / "ledger", pool)
    wall = time.perf_counter() - started
    meta = [pq.ParquetFile(p).metadata for p in parts]
    return {
        "documents": n,
        "workers": workers,
        "seconds": wall,
        "phases": {k: round(v, 2) for k, v in result.seconds.items()},
        "counts": result.counts,
        "rss_before_mb": before / 2**20,
        "peak_rss_main_mb": peak.main / 2**20,
        "peak_rss_workers_mb": peak.children / 2**20,
        "text_mb": sum(m.row_group(g).column(1).total_uncompressed_size for m in meta for g in range(m.num_row_groups))
        / 1e6,
    }


def fake_tables(n: int, folder: Path, dup_fraction: float = 0.15) -> list[Path]:
    """Signature tables (phase 1's output) for n documents without signing any text:
    random band hashes, with dup_fraction of documents sharing 10 of 14 bands with another.
    Lets the clustering phase be measured beyond what signing fits in the time box."""
    from curate.core.parquet_io import write_table_atomic
    from curate.dedup.sigtable import UNIT_ROWS, table_schema

    p = params()
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    tables = []
    for start in range(0, n, PART_ROWS):
        m = min(PART_ROWS, n - start)
        bands = rng.integers(0, 2**63, (m, p.bands), dtype=np.uint64)
        copies = int(m * dup_fraction)
        bands[rng.integers(0, m, copies), :10] = bands[rng.integers(0, m, copies), :10]
        exact = rng.integers(0, 2**63, (m, 2), dtype=np.uint64)
        docs = np.arange(start, start + m)
        arrays = [
            pa.array(docs),
            pa.array([f"syn/{i}" for i in docs]),
            pa.array(rng.integers(100, 5000, m)),
            pa.nulls(m, pa.float64()),
            pa.array(np.zeros(m, bool)),
            pa.array(exact[:, 0]),
            pa.array(exact[:, 1]),
            pa.array(np.ones(m, bool)),
            *[pa.array(bands[:, b]) for b in range(p.bands)],
        ]
        table = pa.Table.from_arrays(arrays, schema=table_schema(p.bands, p.num_perm, False))
        tables.append(
            write_table_atomic(
                table, folder / f"unit-{start // PART_ROWS:05d}.parquet", compression="lz4", row_group_rows=UNIT_ROWS
            )
        )
    return tables


def cluster_child(n: int, workdir: Path) -> dict[str, Any]:
    import psutil

    from curate.dedup.stage import cluster

    tables = fake_tables(n, workdir / f"tables-{n}")
    before = psutil.Process().memory_info().rss
    started = time.perf_counter()
    with PeakSampler() as peak:
        _, counts = cluster(CurateConfig(), params(), tables, n, None, False)
    return {
        "documents": n,
        "seconds": time.perf_counter() - started,
        "rss_before_mb": before / 2**20,
        "peak_rss_main_mb": peak.main / 2**20,
        "dropped": counts["near_duplicate"],
    }


REPEATS = 2


def cluster_scaling(sizes: list[int], workdir: Path) -> list[dict[str, Any]]:
    rows = []
    print("clustering phase alone, on generated signature tables (15% near-duplicates)")
    for n in sizes:
        runs = []
        for _ in range(REPEATS):  # the fastest of REPEATS: the machine is shared, noise only adds time
            done = subprocess.run(
                [sys.executable, "-m", "bench.bench_dedup", "--cluster-child", str(n), "--workdir", str(workdir)],
                capture_output=True,
                text=True,
                cwd=Path(__file__).resolve().parents[1],
            )
            if done.returncode != 0:
                print(done.stderr[-3000:])
                raise SystemExit(f"cluster run at {n} failed")
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
        row = min(runs, key=lambda r: r["seconds"])
        row["all_seconds"] = [round(r["seconds"], 1) for r in runs]
        row["all_peak_mb"] = [round(r["peak_rss_main_mb"]) for r in runs]
        rows.append(row)
        print(
            f"  {n:>9,} documents: {row['seconds']:6.1f} s (runs {row['all_seconds']}), RSS "
            f"{row['rss_before_mb']:.0f} -> peak {row['peak_rss_main_mb']:.0f} MB (runs {row['all_peak_mb']})",
            flush=True,
        )
    return rows


def scaling(sizes: list[int], workdir: Path, workers: int, limit_s: float) -> list[dict[str, Any]]:
    rows = []
    print(f"scaling, {workers} workers (synthetic documents from real paragraphs, 20% near-duplicates)")
    root = Path(__file__).resolve().parents[1]
    for n in sizes:
        made = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "bench.bench_dedup", "--make-corpus", str(n), "--workdir", str(workdir)],
            check=True,
            cwd=root,
        )
        print(f"  ({n:,} documents generated or found in {time.perf_counter() - made:.0f} s)", flush=True)
        cmd = [
            sys.executable,
            "-m",
            "bench.bench_dedup",
            "--scale-child",
            str(n),
            "--workdir",
            str(workdir),
            "--workers",
            str(workers),
        ]
        # Own process group: on timeout the pool's workers go too, not only the child.
        child = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=root, start_new_session=True
        )
        try:
            stdout, stderr = child.communicate(timeout=limit_s)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.communicate()
            print(f"  {n:>9,} documents: over the {limit_s:.0f} s limit, stopped")
            rows.append({"documents": n, "timed_out": True, "limit_s": limit_s})
            continue
        if child.returncode != 0:
            print(stderr[-3000:])
            raise SystemExit(f"scaling run at {n} failed")
        done = subprocess.CompletedProcess(cmd, child.returncode, stdout, stderr)
        row = json.loads(done.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(
            f"  {n:>9,} documents: {row['seconds']:7.1f} s ({n / row['seconds']:,.0f} docs/s, phases {row['phases']}), "
            f"RSS main {row['rss_before_mb']:.0f} -> peak {row['peak_rss_main_mb']:.0f} MB, workers (sum) "
            f"{row['peak_rss_workers_mb']:.0f} MB; "
            f"dropped {row['counts'].get('exact_duplicate', 0) + row['counts'].get('near_duplicate', 0):,}",
            flush=True,
        )
    return rows


# --------------------------------------------------------------------------------- report


def report(
    args: argparse.Namespace, tp: dict[str, Any], q: dict[str, Any], sc: list[dict[str, Any]], cl: list[dict[str, Any]]
) -> str:
    p = params()
    lines = [
        "## Deduplication (`curate/dedup/`)",
        "",
        f"`{' '.join(['python -m bench.bench_dedup', *sys.argv[1:]])}` on {platform.machine()}, {os.cpu_count()} "
        "cores, "
        f"Python {platform.python_version()}; {time.strftime('%Y-%m-%d')}. Settings: {p.ngram}-word shingles, "
        f"{p.bands} bands x {p.rows} rows ({p.num_perm} permutations, datasketch affine32), seed {p.seed}.",
        "The machine is shared with other jobs: absolute rates move between runs, ratios within a run do not.",
        "",
        f"### Signature throughput (one core, {tp['documents']:,} real documents, {tp['words_per_doc']:.0f} words on "
        "average)",
        "",
        "| method | docs/s | vs datasketch bulk + LeanMinHash |",
        "|---|---:|---:|",
    ]
    base = tp["datasketch bulk + LeanMinHash + xxh32"]
    for name in (
        "datasketch plain update() loop (a)",
        "datasketch update_batch + xxh32",
        "datasketch bulk + LeanMinHash + xxh32",
        "datasketch update_batch, our hashes",
        "datatrove MinhashDedupSignature (b)",
        "curate Signer",
        "curate Signer + exact key + bands",
    ):
        lines.append(f"| {name} | {tp[name]:,.0f} | {tp[name] / base:.2f}x |")
    lines[5:5] = (
        [
            "**curate's Signer vs the strongest baseline a user would write, datasketch `MinHash.bulk` + "
            "`LeanMinHash` (xxh32): "
            f"{tp['vs_strongest']:.2f}x** (median of {PAIRED_ROUNDS} paired rounds on the same "
            f"{tp['paired_documents']:,} documents, "
            f"alternating order; rounds {tp['vs_strongest_rounds']}). The table below times each method once; its "
            "ratios against "
            "the per-shingle `update()` loop are secondary (that loop is the weakest way to use datasketch).",
            "",
        ]
        if "vs_strongest" in tp
        else []
    )
    lines += [
        "",
        f"Secondary (single timings): curate's signer is {tp['vs_plain']:.1f}x datasketch's per-shingle `update()` "
        f"loop, the weakest way to use it, and {tp['vs_datatrove']:.1f}x "
        "datatrove's MinhashDedupSignature (goal >= 1x; datatrove timed on `get_shingles` + `get_signature` only, "
        "without "
        "its file writing and sorting; ~90% of its time is its spaCy English word tokenizer, per cProfile). The slow "
        "baselines ran on the first "
        f"{args.slow_sample} documents. Signatures are bit-identical to datasketch's "
        "`MinHash(hashfunc=identity).update_batch` "
        "on the same shingle hashes (tests/test_dedup_signatures.py).",
        "",
        f"### Detection quality ({len(EDIT_RATES)} edited copies of each of {q['distinct']:,} real documents)",
        "",
        "Copies made by deleting, replacing or inserting words at rates "
        f"{', '.join(str(r) for r in EDIT_RATES)}; true Jaccard computed exactly on 5-gram sets. "
        "'detected' = the pair shares at least one band (what makes it a candidate in the pipeline).",
        "",
        "| true 5-gram Jaccard | pairs | detected | S-curve 1-(1-s^8)^14 |",
        "|---|---:|---:|---:|",
    ]
    for row in q["buckets"]:
        lines.append(f"| {row['bucket']} | {row['pairs']:,} | {row['recall']:.4f} | {row['s_curve']:.4f} |")
    lines += [
        "",
        f"- End to end (`run_dedup` on the originals plus one copy with J >= 0.9 each): {q['e2e_recall']:.4f} of "
        f"{q['e2e_pairs']:,} pairs "
        "reduced to one document (goal >= 0.95).",
        f"- False positives on the {q['distinct']:,} distinct real documents: {q['false_positives']} dropped, FPR "
        f"{q['fpr']:.3%} "
        "(goal <= 0.5%); true Jaccard of each with its kept document: "
        f"{[round(j, 2) for j in q['fp_true_jaccard']] or 'none'}.",
        "",
        "### Cost at scale",
        "",
        "Synthetic documents replicated from the real paragraphs (30% of words edited: distinct; 20% of documents are "
        f"3%-edited copies of a recent one), {args.workers} workers, parts of {PART_ROWS:,} rows.",
        "",
        "| documents | text MB | wall s | docs/s | sign s | cluster s | write s | main RSS before -> peak MB | "
        "workers' peak RSS (sum) MB | dropped |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    done = [r for r in sc if not r.get("timed_out")]
    for r in sc:
        if r.get("timed_out"):
            lines.append(f"| {r['documents']:,} | | over {r['limit_s']:.0f} s | | | | | | | |")
            continue
        ph = r["phases"]
        dropped = r["counts"].get("exact_duplicate", 0) + r["counts"].get("near_duplicate", 0)
        lines.append(
            f"| {r['documents']:,} | {r['text_mb']:.0f} | {r['seconds']:.1f} | {r['documents'] / r['seconds']:,.0f} | "
            f"{ph.get('sign', 0):.1f} | "
            f"{ph.get('cluster', 0):.1f} | {ph.get('write', 0):.1f} | {r['rss_before_mb']:.0f} -> "
            f"{r['peak_rss_main_mb']:.0f} | {r['peak_rss_workers_mb']:.0f} | {dropped:,} |"
        )
    if len(done) >= 2:
        a, b = done[-2], done[-1]
        ratio_n = b["documents"] / a["documents"]
        t_slope = (b["seconds"] - a["seconds"]) / (b["documents"] - a["documents"]) * 1e6
        m_slope = (b["peak_rss_main_mb"] - a["peak_rss_main_mb"]) / (b["documents"] - a["documents"]) * 1e6
        lines += [
            "",
            f"From {a['documents']:,} to {b['documents']:,} documents ({ratio_n:.0f}x): time "
            f"x{b['seconds'] / a['seconds']:.1f}, "
            f"main-process peak RSS x{b['peak_rss_main_mb'] / a['peak_rss_main_mb']:.1f}. Marginal cost: "
            f"{t_slope:.0f} s and {m_slope:.0f} MB of main-process RSS per million documents.",
        ]
    lines += [
        "",
        "Clustering alone (phase 2: band grouping, components, survivors), on generated signature tables with 15% "
        "near-duplicates, to check its cost beyond the signing time box:",
        "",
        f"| documents | seconds (fastest of {REPEATS}) | all runs, s | RSS before -> peak MB | all runs' peaks, MB |",
        "|---:|---:|---|---:|---|",
        *[
            f"| {r['documents']:,} | {r['seconds']:.1f} | {r.get('all_seconds', '')} | {r['rss_before_mb']:.0f} -> "
            f"{r['peak_rss_main_mb']:.0f} | {r.get('all_peak_mb', '')} |"
            for r in cl
        ],
    ]
    if len(cl) >= 2:
        a, b = cl[0], cl[-1]
        per_million = (b["peak_rss_main_mb"] - a["peak_rss_main_mb"]) / (b["documents"] - a["documents"]) * 1e6
        verdict = "within" if per_million <= MAIN_MB_PER_MILLION else "OVER"
        lines += [
            "",
            f"Marginal clustering memory: {per_million:.0f} MB per million documents ({verdict} the "
            f"{MAIN_MB_PER_MILLION} MB "
            f"budget stated in curate/dedup/stage.py); time x{b['seconds'] / a['seconds']:.1f} for "
            f"x{b['documents'] / a['documents']:.0f} documents.",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller samples; scales 10k and 100k only")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "curate-bench-dedup")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--scale-child", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--make-corpus", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--cluster-child", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--cluster-sizes", type=str, default="", help="clustering-only sizes (default 1000000,3000000)")
    parser.add_argument(
        "--sizes", type=str, default="", help="comma-separated corpus sizes (default 10000,100000,1000000)"
    )
    parser.add_argument("--limit-s", type=float, default=900, help="time limit of one scaling run")
    parser.add_argument(
        "--skip", type=str, default="", help="comma-separated sections to skip: throughput,quality,scaling,cluster"
    )
    args = parser.parse_args(argv)
    if args.make_corpus:
        make_corpus(args.make_corpus, args.workdir / f"corpus-{args.make_corpus}")
        return 0
    if args.cluster_child:
        print(json.dumps(cluster_child(args.cluster_child, args.workdir)))
        return 0
    if args.scale_child:
        print(json.dumps(scale_child(args.scale_child, args.workdir, args.workers)))
        return 0
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    args.workdir.mkdir(parents=True, exist_ok=True)
    skip = set(filter(None, args.skip.split(",")))
    docs = list(real_documents())
    texts = [t for _, t in docs]
    args.slow_sample = 200 if args.quick else 500
    cache = args.workdir / f"results{'-quick' if args.quick else ''}.json"
    results = json.loads(cache.read_text()) if cache.exists() else {}
    if "throughput" not in skip:
        results["throughput"] = throughput(texts[:1500] if args.quick else texts, args.slow_sample)
    if "quality" not in skip:
        results["quality"] = quality(docs[:1500] if args.quick else docs, args.workdir)
    sizes = (
        [int(s) for s in args.sizes.split(",")]
        if args.sizes
        else ([10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000])
    )
    if "scaling" not in skip:
        results["scaling"] = scaling(sizes, args.workdir, args.workers, args.limit_s)
    if "cluster" not in skip:
        cluster_sizes = (
            [int(s) for s in args.cluster_sizes.split(",")]
            if args.cluster_sizes
            else ([1_000_000] if args.quick else [1_000_000, 3_000_000])
        )
        results["cluster"] = cluster_scaling(cluster_sizes, args.workdir)
    cache.write_text(json.dumps(results))
    # Sections skipped in this run come from the last run that measured them (same workdir).
    if all(k in results for k in ("throughput", "quality", "scaling", "cluster")):
        RESULTS.write_text(
            report(args, results["throughput"], results["quality"], results["scaling"], results["cluster"])
        )
        print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

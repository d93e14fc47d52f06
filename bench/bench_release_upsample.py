"""Benchmark: a release that repeats the top quality buckets (release.mix.bucket_weights above 1)
vs what a user would write with polars, and vs the same release without repeats; same process,
same inputs.

    python -m bench.bench_release_upsample [--gb 0.05] [--rounds 3]

Inputs: bench.bench_release's DOCUMENT_SCHEMA parts of recombined real text (../shared/data),
with quality_bucket filled from their stand-in quality_score (x 20, so buckets 0-~16).

- baseline (polars): read the parts, draw the copies per bucket (one uniform per row, the same
  k + f rule), shuffle the distinct documents, take 1% as validation (each once), repeat and
  shuffle the rest, gather and write one zstd-3 Parquet file per split with a `copy` column;
- release, repeats: build_release with the weights (count_tokens false, plots off: the
  tokenizer and plots cost the same with or without repeats, bench_release measures them);
- release, no repeats: the same release with every weight capped at 1 (the cost of copies).
Rounds rotate the order; medians of wall and CPU (user + system, all threads) are reported.
Results: bench/out/release-upsample.json and stdout; figures in bench/RESULTS-release.md."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import time
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from bench.bench_release import OUT, ROWS_PER_GROUP, cpu_seconds, sentence_pool, write_parts
from curate.core import schema as S

WEIGHTS = {0: 0.0, 1: 0.0, 6: 1.5, 7: 2.0, 8: 2.5, 9: 2.5} | {b: 3.0 for b in range(10, 20)}
VALIDATION = 0.01
SEED = 0


def bucketed(parts: list[Path], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for part in parts:
        path = folder / part.name
        if not path.is_file():
            table = pq.read_table(part)
            score = table.column(S.QUALITY_SCORE).to_numpy()
            bucket = pa.array(np.minimum(score * 20, 19).astype(np.int8), pa.int8())
            index = table.schema.get_field_index(S.QUALITY_BUCKET)
            pq.write_table(table.set_column(index, table.schema.field(index), bucket), path, compression="zstd")
        out.append(path)
    return out


def baseline(parts: list[Path], out: Path) -> tuple[float, float, int]:
    started, cpu = time.perf_counter(), cpu_seconds()
    frame = pl.read_parquet(parts)
    weight = np.ones(21)
    for b, w in WEIGHTS.items():
        weight[b] = w
    w = weight[frame[S.QUALITY_BUCKET].fill_null(-1).to_numpy().astype(np.int64)]
    copies = (np.floor(w) + (np.random.default_rng([SEED, 1]).random(frame.height) < w - np.floor(w))).astype(int)
    rng = np.random.default_rng(SEED)
    distinct = rng.permutation(np.flatnonzero(copies > 0))
    n_val = round(distinct.size * VALIDATION)
    train = rng.permutation(np.repeat(distinct[n_val:], copies[distinct[n_val:]]))
    rank = np.empty(train.size, np.int64)  # copy numbers in train order
    by_row = np.argsort(train, kind="stable")
    rows = train[by_row]
    first = np.r_[True, rows[1:] != rows[:-1]]
    ranks = np.arange(train.size) - np.maximum.accumulate(np.where(first, np.arange(train.size), 0))
    rank[by_row] = ranks
    for split, idx, copy in (("validation", distinct[:n_val], np.zeros(n_val, np.int64)), ("train", train, rank)):
        part = frame[idx].with_columns(pl.Series("copy", copy, dtype=pl.Int16))
        part.write_parquet(
            out / f"{split}.parquet", compression="zstd", compression_level=3, row_group_size=ROWS_PER_GROUP
        )
    return time.perf_counter() - started, cpu_seconds() - cpu, int(train.size + n_val)


def release(parts: list[Path], root: Path, weights: dict[int, float]) -> tuple[float, float, int]:
    from curate.config import CurateConfig
    from curate.release.build import build_release
    from curate.release.config import MixConfig, ReleaseConfig

    rcfg = ReleaseConfig(
        count_tokens=False,
        plots=False,
        mix=MixConfig(unit="documents", bucket_weights=weights, validation_fraction=VALIDATION, seed=SEED),
    )
    started, cpu = time.perf_counter(), cpu_seconds()
    path = build_release(CurateConfig(name="bench"), parts, [], release=rcfg, output_root=root)
    seconds, used = time.perf_counter() - started, cpu_seconds() - cpu
    return seconds, used, json.loads((path / "manifest.json").read_text())["totals"]["rows"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gb", type=float, default=0.05, help="GB of text in the inputs")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    _, lengths = sentence_pool()
    docs = int(args.gb * 1e9 / lengths.mean())
    parts = bucketed(write_parts(OUT / f"parts-{args.gb:g}gb", docs, parts=4), OUT / f"bucketed-{args.gb:g}gb")
    work = OUT / "upsample-work"
    capped = {b: min(w, 1.0) for b, w in WEIGHTS.items()}
    release(parts[:1], OUT / "upsample-warm", WEIGHTS)  # imports once, before timing
    shutil.rmtree(OUT / "upsample-warm", ignore_errors=True)
    rounds = []
    for i in range(args.rounds):
        shutil.rmtree(work, ignore_errors=True)
        (work / "bare").mkdir(parents=True)
        runs = {
            "baseline": lambda: baseline(parts, work / "bare"),
            "release_repeats": lambda: release(parts, work / "rep", WEIGHTS),
            "release_no_repeats": lambda: release(parts, work / "plain", capped),
        }
        names = list(runs)
        row: dict[str, float] = {}
        for name in names[i % 3 :] + names[: i % 3]:
            row[f"{name}_s"], row[f"{name}_cpu_s"], row[f"{name}_rows"] = runs[name]()
        row["ratio_wall"] = row["baseline_s"] / row["release_repeats_s"]
        row["ratio_cpu"] = row["baseline_cpu_s"] / row["release_repeats_cpu_s"]
        row["repeats_vs_none_cpu"] = row["release_repeats_cpu_s"] / row["release_no_repeats_cpu_s"]
        row["load_avg_1m"] = os.getloadavg()[0]
        rounds.append(row)
        print({k: round(v, 3) for k, v in row.items()}, flush=True)
    result = {
        "documents": docs,
        "weights": WEIGHTS,
        "rounds": rounds,
        "median": {k: round(statistics.median(r[k] for r in rounds), 3) for k in rounds[0]},
    }
    print("median", result["median"], flush=True)
    (OUT.parent / "release-upsample.json").write_text(json.dumps(result, indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

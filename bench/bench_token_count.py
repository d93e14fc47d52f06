"""Benchmark: token counting at 1 and 2 cores, the tokenizer's own Rust threads (rayon, what
`TokenCounter.count` uses: `encode_batch_fast` on batches of 1,024 texts) vs a process pool
over batches (one single-threaded tokenizer per process), same texts, same counts.

    python -m bench.bench_token_count [--mb 8] [--rounds 3]

Each side runs in its own process pinned with `taskset` to the cores given (1 core: cpu 0;
2 cores: cpus 0-1); the time is the counting alone (tokenizer loaded first). Rounds alternate
the order of the sides. Counts must be identical on every side (checked). Prints a table and
writes bench/out/token_count.json; the figures go to bench/RESULTS-release.md."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bench.common import REPO, run_header, write_json

OUT = REPO / "bench" / "out"


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return sum(x.ru_utime + x.ru_stime for x in r)


_WORKER_TOKENIZER = None


def _worker_init(serialized: str) -> None:
    global _WORKER_TOKENIZER
    # One thread per process: the processes are the parallelism (set before the first encode,
    # when the tokenizer's thread pool would start).
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    from tokenizers import Tokenizer

    _WORKER_TOKENIZER = Tokenizer.from_str(serialized)


def _worker_count(chunk: list[str | None]) -> np.ndarray:
    encodings = _WORKER_TOKENIZER.encode_batch_fast([v or "" for v in chunk], add_special_tokens=False)  # type: ignore[attr-defined]
    return np.fromiter((len(e) for e in encodings), np.int32, len(encodings))


def count_in_processes(counter: object, texts: pa.ChunkedArray, processes: int) -> np.ndarray:
    """The alternative measured: TokenCounter.count's batches (same size, same options) spread
    over `processes` spawned single-threaded tokenizers (spawn: the release counts from its
    writer threads, and forking a threaded process can copy a held lock into the child)."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from curate.release.tokens import BATCH_DOCS

    values = texts.to_pylist()
    chunks = [values[start : start + BATCH_DOCS] for start in range(0, len(values), BATCH_DOCS)]
    serialized = counter.tokenizer.to_str()  # type: ignore[attr-defined]
    with ProcessPoolExecutor(
        max_workers=processes, mp_context=get_context("spawn"), initializer=_worker_init, initargs=(serialized,)
    ) as pool:
        return np.concatenate(list(pool.map(_worker_count, chunks)))


def side(kind: str, procs: int, texts_path: Path) -> dict:
    """One side, in this (pinned) process: load, then time the count."""
    from curate.release.tokens import TokenCounter

    texts = pq.read_table(texts_path).column("text")
    counter = TokenCounter.load("default")
    counter.count(["warm up"])
    started, cpu = time.perf_counter(), _cpu()
    counts = count_in_processes(counter, texts, procs) if kind == "pool" else counter.count(texts)
    wall, cpu = time.perf_counter() - started, _cpu() - cpu
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "tokens": int(counts.sum()),
        "digest": hashlib.sha256(counts.tobytes()).hexdigest()[:16],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=float, default=8, help="MB of text to count")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--side", help=argparse.SUPPRESS)  # internal: kind:procs:path
    args = parser.parse_args()
    if args.side:
        kind, procs, path = args.side.split(":", 2)
        print(json.dumps(side(kind, int(procs), Path(path))))
        return

    from bench.bench_release import make_documents

    texts = make_documents(max(1, int(args.mb * 1e6 / 850)), seed=3, prefix="tok").select(["text"])
    mb = sum(len(t.encode()) for t in texts.column("text").to_pylist()) / 1e6
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "token_count_texts.parquet"
    pq.write_table(texts, path)
    sides = {
        "rayon, 1 core": ("rayon", 1, "0"),
        "pool of 1, 1 core": ("pool", 1, "0"),
        "rayon, 2 cores": ("rayon", 1, "0,1"),
        "pool of 2, 2 cores": ("pool", 2, "0,1"),
    }
    runs: dict[str, list[dict]] = {name: [] for name in sides}
    names = list(sides)
    for r in range(args.rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            kind, procs, cores = sides[name]
            cmd = [
                "taskset",
                "-c",
                cores,
                sys.executable,
                "-m",
                "bench.bench_token_count",
                "--side",
                f"{kind}:{procs}:{path}",
            ]
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=dict(os.environ), check=True)
            result = json.loads(proc.stdout.strip().splitlines()[-1])
            runs[name].append(result)
            print(
                f"round {r + 1} {name}: {result['wall_s']:.2f} s wall, {result['cpu_s']:.2f} CPU s, "
                f"{result['tokens']} tokens",
                flush=True,
            )
    digests = {run["digest"] for rs in runs.values() for run in rs}
    assert len(digests) == 1, f"token counts differ between sides: {digests}"
    load = os.getloadavg()
    rows = {}
    for name, rs in runs.items():
        wall, cpu = statistics.median(x["wall_s"] for x in rs), statistics.median(x["cpu_s"] for x in rs)
        rows[name] = {
            "wall_s": round(wall, 2),
            "cpu_s": round(cpu, 2),
            "mb_per_wall_s": round(mb / wall, 2),
            "mb_per_cpu_s": round(mb / cpu, 2),
        }
    base = rows["rayon, 1 core"]["wall_s"]
    print(
        f"\n{mb:.1f} MB, {runs[names[0]][0]['tokens']:,} tokens, identical counts on every side; load average "
        f"{load[0]:.1f}"
    )
    print("| side | wall s | CPU s | MB / wall s | MB / CPU s | wall speed-up vs rayon at 1 core |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, row in rows.items():
        print(
            f"| {name} | {row['wall_s']} | {row['cpu_s']} | {row['mb_per_wall_s']} | {row['mb_per_cpu_s']} | "
            f"{base / row['wall_s']:.2f}x |"
        )
    # run_all's quick mode sends its figures elsewhere, so bench_cost keeps reading the recorded run.
    quick = os.environ.get("CURATE_BENCH_RESULTS_DIR")
    write_json(
        Path(quick) / "token_count.json" if quick else OUT / "token_count.json",
        run_header() | {"mb": round(mb, 2), "load_average": load, "sides": rows, "runs": runs},
    )


if __name__ == "__main__":
    np.seterr(all="ignore")
    pa.set_cpu_count(os.cpu_count() or 1)
    main()

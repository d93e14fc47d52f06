"""Benchmark: token counting at 1 and 2 workers. The release's way (`TokenCounter.count`:
`encode_batch_fast` on batches of 1,024 texts over the tokenizer's Rust thread pool, sized by
`release.token_threads`) vs the baseline a user would write (one `encode_batch_fast` over all
the texts with the tokenizer's default parallelism) vs a process pool (spawned single-threaded
tokenizers over the same batches), same texts, same counts.

    python -m bench.bench_token_count [--mb 8] [--rounds 3]

Each side runs in its own process, pinned with `taskset` to the cores of its worker count
(1: cpu 0; 2: cpus 0-1); the time is the counting alone (tokenizer loaded, pool workers
started and warm: their start is reported apart). CPU is every thread's and every pool
worker's user + system time; the busiest thread's (or pool worker's) CPU time is what the
wall time would be with the cores free, so it shows the scaling on a shared machine. Rounds
alternate the order of the sides. Counts must be identical on every side (checked). Prints a
table with the load average and writes
bench/out/token_count.json; the figures go to bench/RESULTS-release.md."""

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


def _thread_cpu() -> dict[str, float]:
    """CPU seconds of each thread of this process (Linux /proc): how evenly the work spreads."""
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            fields = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:  # a thread that ended meanwhile
            continue
        out[tid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


_WORKER_TOKENIZER = None


def _worker_init(serialized: str) -> None:
    global _WORKER_TOKENIZER
    # One thread per process: the processes are the parallelism (set before the first encode,
    # when the tokenizer's thread pool would start).
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    from tokenizers import Tokenizer

    _WORKER_TOKENIZER = Tokenizer.from_str(serialized)


def _worker_cpu() -> tuple[int, float]:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return os.getpid(), r.ru_utime + r.ru_stime


def _worker_count(chunk: list[str | None]) -> tuple[np.ndarray, int, float]:
    encodings = _WORKER_TOKENIZER.encode_batch_fast([v or "" for v in chunk], add_special_tokens=False)  # type: ignore[attr-defined]
    return np.fromiter((len(e) for e in encodings), np.int32, len(encodings)), *_worker_cpu()


def count_in_processes(counter: object, texts: pa.ChunkedArray, processes: int) -> tuple[np.ndarray, dict]:
    """The alternative measured: TokenCounter.count's batches (same size, same options) spread
    over `processes` spawned single-threaded tokenizers (spawn: the release counts from its
    writer threads, and forking a threaded process can copy a held lock into the child).
    Returns the counts and the pool's start (wall) and counting CPU (the workers' own)."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from curate.release.tokens import BATCH_DOCS

    started = time.perf_counter()
    serialized = counter.tokenizer.to_str()  # type: ignore[attr-defined]
    with ProcessPoolExecutor(
        max_workers=processes, mp_context=get_context("spawn"), initializer=_worker_init, initargs=(serialized,)
    ) as pool:
        # Every worker started and its tokenizer loaded before the clock starts.
        before = dict(f.result() for f in [pool.submit(_worker_cpu) for _ in range(processes)])
        start_s = time.perf_counter() - started
        while len(before) < processes:  # a worker that took two of the warm-up calls
            before |= dict([pool.submit(_worker_cpu).result()])
        started, cpu = time.perf_counter(), _cpu()
        values = texts.to_pylist()
        chunks = [values[start : start + BATCH_DOCS] for start in range(0, len(values), BATCH_DOCS)]
        results = list(pool.map(_worker_count, chunks))
        wall, cpu = time.perf_counter() - started, _cpu() - cpu
    after = {pid: c for _, pid, c in results}  # each worker's last cumulative CPU
    per_worker = [c - before.get(pid, 0.0) for pid, c in after.items()]
    return np.concatenate([r[0] for r in results]), {
        "start_s": start_s,
        "wall_s": wall,
        "cpu_s": cpu + sum(per_worker),
        "busiest_s": max(per_worker),
    }


def count_like_a_user(path: str, texts: pa.ChunkedArray) -> np.ndarray:
    """The baseline: the tokenizer's own batch encode over every text at once, its default
    parallelism (every core the process may use), no batching of ours."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(path)
    values = [v or "" for v in texts.to_pylist()]
    return np.fromiter((len(e) for e in tokenizer.encode_batch_fast(values, add_special_tokens=False)), np.int32)


def side(kind: str, workers: int, texts_path: Path) -> dict:
    """One side, in this (pinned) process: load, then time the count."""
    from curate.release.tokens import TokenCounter, use_threads

    texts = pq.read_table(texts_path).column("text")
    if kind == "curate":
        threads = use_threads(workers)  # what build_release does with release.token_threads
    counter = TokenCounter.load("default")
    extra = {}
    if kind == "pool":
        counts, extra = count_in_processes(counter, texts, workers)
        wall, cpu = extra.pop("wall_s"), extra.pop("cpu_s")
    else:
        threads_before = _thread_cpu()
        started, cpu = time.perf_counter(), _cpu()
        if kind == "user":
            counts = count_like_a_user(counter.info.path, texts)
        else:
            counts = counter.count(texts)
        wall, cpu = time.perf_counter() - started, _cpu() - cpu
        extra = {"busiest_s": max(c - threads_before.get(t, 0.0) for t, c in _thread_cpu().items())}
        if kind == "curate":
            extra |= {"threads": threads}
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "tokens": int(counts.sum()),
        "digest": hashlib.sha256(counts.tobytes()).hexdigest()[:16],
    } | extra


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
        "baseline: encode_batch_fast, default parallelism, 1 core": ("user", 1, "0"),
        "curate: TokenCounter, token_threads 1, 1 core": ("curate", 1, "0"),
        "process pool of 1, 1 core": ("pool", 1, "0"),
        "baseline: encode_batch_fast, default parallelism, 2 cores": ("user", 2, "0,1"),
        "curate: TokenCounter, token_threads 2, 2 cores": ("curate", 2, "0,1"),
        "process pool of 2, 2 cores": ("pool", 2, "0,1"),
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
            "busiest_thread_cpu_s": round(statistics.median(x["busiest_s"] for x in rs), 2),
        } | ({"pool_start_s": round(statistics.median(x["start_s"] for x in rs), 2)} if "start_s" in rs[0] else {})
    print(
        f"\n{mb:.1f} MB, {runs[names[0]][0]['tokens']:,} tokens, identical counts on every side; load average "
        f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1 / 5 / 15 min) at the end"
    )
    print(
        "| side | wall s | CPU s | busiest thread's CPU s | MB / wall s | MB / CPU s | wall ratio vs baseline, same "
        "cores | vs itself at 1 core |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, row in rows.items():
        kind, workers, _ = sides[name]
        base = next(r for n, r in rows.items() if sides[n][0] == "user" and sides[n][1] == workers)
        alone = next(r for n, r in rows.items() if sides[n][0] == kind and sides[n][1] == 1)
        start = f" (+{row['pool_start_s']} s to start)" if "pool_start_s" in row else ""
        print(
            f"| {name} | {row['wall_s']}{start} | {row['cpu_s']} | {row['busiest_thread_cpu_s']} | "
            f"{row['mb_per_wall_s']} | {row['mb_per_cpu_s']} | "
            f"{base['wall_s'] / row['wall_s']:.2f}x | {alone['wall_s'] / row['wall_s']:.2f}x |"
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

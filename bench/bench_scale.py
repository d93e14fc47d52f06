"""Scaling benchmark: the same input through the local executor and through Ray with 1 and 2
workers, in one run, with wall time, CPU time and peak memory of the whole process tree
(driver, Ray's gcs_server and raylet, every Ray worker), and an extrapolation of the cost
per billion documents from the measured CPU-seconds per document.

Two workloads, both from real text (../shared/data: the article-extraction benchmark's
pages and Wikipedia paragraphs, via bench.dedup_data.synthetic_corpus, 20% near-copies):
  pipeline  `curate run`: read JSONL, annotate (language ID, Gopher/C4/FineWeb rules, the
            quality classifier), select, dedup; N_PIPELINE documents in FILES JSONL files
            (one datatrove task per file)
  dedup     `curate dedup`: N_DEDUP documents, large enough that every dedup phase
            (signing, bucketing, partitioned clustering, writing) runs as parallel jobs

Each configuration runs as its own `curate` process (a private Ray is started and stopped
by it), so fixed costs (Prefect's temporary server, Ray's start) are inside the wall time
and reported by the 1-document run of each configuration, measured apart.

Usage: python -m bench.bench_scale [--docs 3000] [--dedup-docs 100000] [--quick]"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from bench.common import REPO, write_json

FILES = 6
# The assumed price of a vCPU-hour: AWS c7i.large (2 vCPU, 4 GiB) on demand in us-east-1,
# $0.08925 per hour (AWS price list), so $0.0446 per vCPU-hour. Spot and committed-use
# prices are 40-70% lower; scale the dollar column accordingly.
USD_PER_VCPU_HOUR = 0.08925 / 2
PRICE_SOURCE = "AWS c7i.large on demand, us-east-1: $0.08925/h for 2 vCPU"
CONFIGS = [("local", 2), ("ray", 1), ("ray", 2)]


@dataclass
class Run:
    seconds: float
    cpu_seconds: float
    peak_rss_mb: float
    returncode: int
    output: str


def measure_tree(cmd: list[str], env: dict[str, str], poll_s: float = 0.1) -> Run:
    """Run `cmd`; sample every process of its tree for RSS (summed, peak kept) and CPU time
    (last value seen per process, summed at the end: a process that exits between two
    samples loses at most `poll_s` of CPU)."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=REPO, text=True, start_new_session=True
    )
    root = psutil.Process(proc.pid)
    cpu: dict[tuple[int, float], float] = {}
    peak = 0
    while proc.poll() is None:
        rss = 0
        try:
            tree = [root, *root.children(recursive=True)]
        except psutil.Error:
            tree = []
        for p in tree:
            try:
                with p.oneshot():
                    rss += p.memory_info().rss
                    times = p.cpu_times()
                    cpu[(p.pid, p.create_time())] = (
                        times.user + times.system + times.children_user + times.children_system
                    )
            except psutil.Error:
                pass
        peak = max(peak, rss)
        time.sleep(poll_s)
    output = proc.stdout.read() if proc.stdout else ""
    return Run(time.perf_counter() - started, sum(cpu.values()), peak / 1e6, proc.returncode, output)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "HF_HUB_OFFLINE": "1",
            "DO_NOT_TRACK": "1",
            "PYTHONPATH": str(REPO),
        }
    )
    return env


def write_inputs(folder: Path, n: int, files: int) -> list[Path]:
    from bench.dedup_data import synthetic_corpus

    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"part-{k:02d}.jsonl" for k in range(files)]
    if all(p.is_file() for p in paths) and (folder / "n.txt").is_file() and (folder / "n.txt").read_text() == str(n):
        return paths
    handles = [p.open("w", encoding="utf-8") for p in paths]
    for i, (doc_id, text) in enumerate(synthetic_corpus(n)):
        handles[i % files].write(json.dumps({"id": doc_id, "text": text}) + "\n")
    for h in handles:
        h.close()
    (folder / "n.txt").write_text(str(n))
    return paths


def run_config(workload: str, inputs: list[Path], out: Path, kind: str, workers: int) -> Run:
    sets = ["--set", f"executor.kind={kind}", "--set", f"executor.workers={workers}"]
    if workload == "pipeline":
        config = out.parent / f"{out.name}.yaml"
        config.write_text("name: scale\nquality: {enabled: true}\nlanguage: {keep: [en]}\n")
        cmd = [
            str(REPO / ".venv/bin/curate"),
            "run",
            str(config),
            *[x for p in inputs for x in ("--input", str(p))],
            "--output",
            str(out),
            "--quiet",
            *sets,
        ]
    else:
        cmd = [str(REPO / ".venv/bin/curate"), "dedup", *[str(p) for p in inputs], "--output", str(out), *sets]
    if out.exists():
        import shutil

        shutil.rmtree(out)
    run = measure_tree(cmd, _env())
    if run.returncode != 0:
        sys.exit(f"{workload} {kind} x{workers} failed:\n{run.output[-3000:]}")
    return run


def kept_ids_and_shards(out: Path) -> tuple[int, list[str]]:
    manifest = json.loads((out / "manifest.json").read_text())
    return manifest["counts"]["kept"], [s["sha256"] for s in manifest["shards"]]


def workload(name: str, inputs: list[Path], one: list[Path], n: int, root: Path) -> list[dict]:
    rows = []
    reference: tuple[int, list[str]] | None = None
    for kind, workers in CONFIGS:
        label = f"{kind} x{workers}"
        fixed = run_config(name, one, root / f"{name}-{kind}-{workers}-one", kind, workers)
        run = run_config(name, inputs, root / f"{name}-{kind}-{workers}", kind, workers)
        result = kept_ids_and_shards(root / f"{name}-{kind}-{workers}")
        reference = reference or result
        variable_cpu = max(run.cpu_seconds - fixed.cpu_seconds, 1e-9)
        row = {
            "workload": name,
            "config": label,
            "documents": n,
            "seconds": round(run.seconds, 2),
            "fixed_seconds": round(fixed.seconds, 2),
            "cpu_seconds": round(run.cpu_seconds, 2),
            "fixed_cpu_seconds": round(fixed.cpu_seconds, 2),
            "peak_rss_mb": round(run.peak_rss_mb),
            "fixed_peak_rss_mb": round(fixed.peak_rss_mb),
            "docs_per_s": round(n / max(run.seconds - fixed.seconds, 1e-9), 1),
            "cpu_ms_per_doc": round(1000 * variable_cpu / n, 3),
            "kept": result[0],
            "same_output_as_first": result == reference,
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def extrapolate(rows: list[dict]) -> list[dict]:
    """CPU-hours and dollars per billion documents from the measured CPU per document (the
    fixed per-run cost is excluded: at a billion documents it is noise)."""
    out = []
    for row in rows:
        cpu_hours = row["cpu_ms_per_doc"] / 1000 * 1e9 / 3600
        out.append(
            {
                "workload": row["workload"],
                "config": row["config"],
                "cpu_hours_per_billion": round(cpu_hours),
                "usd_per_billion": round(cpu_hours * USD_PER_VCPU_HOUR),
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=3_000, help="documents through `curate run`")
    parser.add_argument("--dedup-docs", type=int, default=100_000, help="documents through `curate dedup`")
    parser.add_argument("--quick", action="store_true", help="600 and 6,000 documents, for a smoke run")
    args = parser.parse_args()
    n_pipe, n_dedup = (600, 6_000) if args.quick else (args.docs, args.dedup_docs)
    root = REPO / "bench" / "out" / "scale"
    pipe_inputs = write_inputs(root / f"input-{n_pipe}", n_pipe, FILES)
    dedup_inputs = write_inputs(root / f"input-{n_dedup}", n_dedup, 4)
    one = write_inputs(root / "input-1", 1, 1)
    rows = workload("pipeline", pipe_inputs, one, n_pipe, root) + workload("dedup", dedup_inputs, one, n_dedup, root)
    result = {
        "machine": {"cpus": os.cpu_count(), "load_average_at_end": os.getloadavg()},
        "price": {"usd_per_vcpu_hour": USD_PER_VCPU_HOUR, "source": PRICE_SOURCE},
        "runs": rows,
        "per_billion": extrapolate(rows),
    }
    write_json(REPO / "bench" / "out" / "scale.json", result)
    print(json.dumps(result["per_billion"], indent=2))


if __name__ == "__main__":
    main()

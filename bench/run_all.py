"""Run every benchmark in bench/, one after another (never two at once: each compares two
sides on the same machine, and a second benchmark would load one side more than the other).

    python -m bench.run_all                    # quick: every benchmark at a smoke size (tens of minutes on 2 shared cores)
    python -m bench.run_all --full             # the sizes bench/RESULTS*.md report (hours on 2 cores)
    python -m bench.run_all --only e2e,dedup   # some of them (names below)
    python -m bench.run_all --list             # print the commands, run nothing

Quick mode checks that every benchmark runs and prints its ratios, but its sizes are too
small for figures of record: its RESULTS-*.md go to bench/out/quick/ (through
CURATE_BENCH_RESULTS_DIR), so bench/RESULTS*.md keep the recorded runs. --full rewrites
them. Exits non-zero, naming each benchmark that failed, if any did.
"""  # noqa: E501

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from bench.common import REPO

# name -> (quick arguments, full arguments). The full ones are the commands RESULTS*.md cite.
BENCHMARKS: dict[str, tuple[list[str], list[str]]] = {
    "e2e": (["--quick"], ["--copies", "1", "2", "--rounds", "3", "--sides", "bare,curate,dtrules"]),
    "fused_rules": (["--rounds", "1", "--json", "bench/out/quick/fused_rules.json"], ["--rounds", "3"]),
    "dedup": (
        [
            "--quick",
            "--sizes",
            "2000,10000",
            "--cluster-sizes",
            "20000,50000",
            "--workdir",
            "/tmp/curate-bench-dedup-quick",
        ],
        [],
    ),
    "dedup_io": (
        [
            "--docs",
            "20000",
            "--segments",
            "6000",
            "6000",
            "6000",
            "--rounds",
            "1",
            "--workdir",
            "/tmp/curate-bench-dedup-io-quick",
        ],
        ["--docs", "50000", "--segments", "15000", "15000", "15000", "--rounds", "3"],
    ),
    "quality": (["--repeat", "1", "--json", "bench/out/quick/quality.json"], []),
    "release": (
        ["--gb", "0.02", "--repeat", "1", "--token-mb", "2", "--token-rounds", "1"],
        ["--gb", "1", "--repeat", "5", "--token-mb", "20", "--token-rounds", "3"],
    ),
    "release_upsample": (["--gb", "0.01", "--rounds", "1"], ["--gb", "0.1", "--rounds", "3"]),
    "generate_dedup": (["--docs", "3000", "--rounds", "1"], ["--docs", "50000", "--rounds", "3", "--workers", "1"]),
    "scale": (["--quick"], []),
    "engine": (
        ["--prompts", "2", "--max-tokens", "16", "--rounds", "1"],
        ["--prompts", "16", "--max-tokens", "128", "--rounds", "5"],
    ),
    "generate": (
        ["--prompts", "2", "--max-tokens", "16", "--rounds", "1"],
        ["--prompts", "32", "--max-tokens", "256", "--rounds", "3"],
    ),
    "extract": (["--quick"], ["--rounds", "3"]),
    "token_count": (["--mb", "1", "--rounds", "1"], ["--mb", "8", "--rounds", "3"]),
    "cost": (["--copies", "1", "2", "--recipes", "default ("], ["--copies", "1", "3"]),
}


def command(name: str, full: bool) -> list[str]:
    quick_args, full_args = BENCHMARKS[name]
    return [sys.executable, "-m", f"bench.bench_{name}", *(full_args if full else quick_args)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="the sizes of record; rewrites bench/RESULTS*.md")
    parser.add_argument("--only", default="", help=f"comma-separated, from: {', '.join(BENCHMARKS)}")
    parser.add_argument("--list", action="store_true", help="print the commands and exit")
    args = parser.parse_args()
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    if not args.full:
        quick_dir = REPO / "bench" / "out" / "quick"
        quick_dir.mkdir(parents=True, exist_ok=True)
        env["CURATE_BENCH_RESULTS_DIR"] = str(quick_dir)
    failed: list[str] = []
    for name in names:
        cmd = command(name, args.full)
        shown = " ".join(["python", *cmd[1:]])
        if args.list:
            print(shown)
            continue
        print(f"\n=== {name}: {shown}", flush=True)
        started = time.perf_counter()
        code = subprocess.run(cmd, cwd=REPO, env=env).returncode
        print(
            f"=== {name}: {'ok' if code == 0 else f'FAILED (exit {code})'} in {time.perf_counter() - started:.0f} s",
            flush=True,
        )
        if code != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Shared helpers for benchmarks: real inputs built from ../shared/data, and measuring a
child process tree's wall time and peak memory."""

from __future__ import annotations

import datetime
import gzip
import io
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data"


def results_path(name: str) -> Path:
    """Where a benchmark writes its RESULTS-*.md: bench/ (the record), or the folder in
    CURATE_BENCH_RESULTS_DIR, which `bench.run_all` sets in quick mode so that smoke-sized
    figures never overwrite the recorded ones."""
    return Path(os.environ.get("CURATE_BENCH_RESULTS_DIR") or REPO / "bench") / name


def shared_data() -> Path:
    if not SHARED.is_dir():
        sys.exit(f"benchmark data not found: {SHARED}. Fix: put the project's shared/ folder beside the repository")
    return SHARED


def article_pages() -> list[tuple[str, bytes]]:
    """The 181 real article pages of the article-extraction benchmark: (page id, HTML bytes)."""
    folder = shared_data() / "article-extraction-benchmark" / "html"
    return [(p.name.split(".")[0], gzip.decompress(p.read_bytes())) for p in sorted(folder.glob("*.html.gz"))]


def write_article_warc(path: Path, copies: int, limit: int | None = None) -> int:
    """A WARC.gz of the real article pages, each served `copies` times under distinct URLs (a
    crawl sees the same templates over and over; extraction cost per page is what matters)."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    pages = article_pages()[:limit]
    n = 0
    with open(path, "wb") as out:
        writer = WARCWriter(out, gzip=True)
        for copy in range(copies):
            for page_id, html in pages:
                url = f"https://bench.example/{copy}/{page_id}"
                http = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
                # Common Crawl WARCs carry the payload type; without it datatrove's WarcReader
                # guesses with libmagic and skips most of these pages as not HTML (75 of 181 read).
                payload_type = {"WARC-Identified-Payload-Type": "text/html"}
                record = writer.create_warc_record(
                    url, "response", payload=io.BytesIO(html), http_headers=http, warc_headers_dict=payload_type
                )
                writer.write_record(record)
                n += 1
    return n


@dataclass
class Measured:
    seconds: float
    peak_rss_mb: float
    returncode: int
    output: str
    # user + system CPU seconds of the whole tree (every descendant that was waited for):
    # much steadier than wall time on a machine shared with other jobs.
    cpu_s: float = 0.0


def measure(
    cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None, poll_s: float = 0.05
) -> Measured:
    """Run `cmd`, polling the summed RSS of its whole process tree (workers included)."""
    started = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=cwd, text=True)
    root = psutil.Process(proc.pid)
    peak = 0
    chunks: list[str] = []
    while proc.poll() is None:
        try:
            procs = [root, *root.children(recursive=True)]
            rss = 0
            for p in procs:
                try:
                    rss += p.memory_info().rss
                except psutil.Error:
                    pass
            peak = max(peak, rss)
        except psutil.Error:
            pass
        time.sleep(poll_s)
    out = proc.stdout.read() if proc.stdout else ""
    chunks.append(out)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Measured(time.perf_counter() - started, peak / 1e6, proc.returncode, "".join(chunks), cpu)


def write_json(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")


class TimedVllm:
    """Wraps `llm.generate` so the time curate spends inside vLLM is known (the rest of a
    run's wall time is curate's own overhead, a figure that load from other processes barely
    moves), and keeps the unwrapped method for the bare baseline."""

    def __init__(self, llm: object) -> None:
        self.llm = llm
        self.raw = llm.generate  # type: ignore[attr-defined]
        self.inside = 0.0
        llm.generate = self._timed  # type: ignore[attr-defined]  # the engine calls llm.generate

    def _timed(self, *a: object, **k: object) -> object:
        started = time.perf_counter()
        try:
            return self.raw(*a, **k)
        finally:
            self.inside += time.perf_counter() - started

    def bare(self, prompts: list[str], params: list[object]) -> tuple[float, int, list[str]]:
        """The baseline: vLLM's own generate on prompts already rendered, nothing else timed."""
        started = time.perf_counter()
        outs = self.raw(prompts, params, use_tqdm=False)
        seconds = time.perf_counter() - started
        return seconds, sum(len(o.outputs[0].token_ids) for o in outs), [o.outputs[0].text for o in outs]


@dataclass
class PairedRounds:
    """Output tokens/s of two sides run back to back, alternating which goes first."""

    rates: dict[str, list[float]]
    texts: dict[str, list[str]]  # each side's texts from its last round
    tokens: dict[str, int]

    @property
    def ratio(self) -> float:
        # Each round's two runs share the machine's load of the moment, so the median of the
        # per-round ratios is steadier than the ratio of the medians.
        return statistics.median(o / b for o, b in zip(self.rates["ours"], self.rates["bare"]))

    def verdict(self, what: str) -> str:
        """The headline line: the paired ratio against the 5 % overhead goal."""
        ratio = self.ratio
        verdict = "within" if ratio >= 0.95 else "OUTSIDE"
        return f"{what} output tokens/s, median of paired rounds: {ratio:.3f} (overhead {100 * (1 - ratio):+.1f} %, goal <= 5 %: {verdict})"  # noqa: E501


def run_header() -> dict[str, object]:
    """Date and machine of a benchmark run, first in every results JSON."""
    return {
        "date": datetime.date.today().isoformat(),
        "cpus": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
    }


def paired_rounds(
    bare: Callable[[], tuple[float, int, list[str]]], ours: Callable[[], tuple[float, int, list[str]]], rounds: int
) -> PairedRounds:
    """`rounds` timed runs of each side; each callable returns (seconds, tokens, texts)."""
    result = PairedRounds({"bare": [], "ours": []}, {}, {})
    for r in range(rounds):
        order = (("bare", bare), ("ours", ours)) if r % 2 == 0 else (("ours", ours), ("bare", bare))
        for name, fn in order:
            seconds, n_tokens, texts = fn()
            result.rates[name].append(n_tokens / seconds)
            result.texts[name], result.tokens[name] = texts, n_tokens
            print(
                f"round {r + 1} {name}: {n_tokens} tokens in {seconds:.2f} s = {n_tokens / seconds:.1f} tokens/s",
                flush=True,
            )
    return result

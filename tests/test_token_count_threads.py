"""Token counts do not depend on how many threads count them, and release.token_threads sizes
the tokenizer's thread pool: `TokenCounter.count` (the tokenizer's batch encode, spread over
its Rust thread pool) gives the same count for every text with 1, 2 or 3 threads, every
available core (0), or the pool off, across batch boundaries, and each equals encoding that
text alone; the process gains exactly the threads asked for. Real text: the article bodies
in ../shared/data."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from curate.config import load_config
from curate.core.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent

# The pool is built once per process, at the first batch encode: each setting in its own process.
_COUNT = """
import json, logging, os, sys
logging.basicConfig(level=logging.WARNING)
from curate.release.tokens import TokenCounter, use_threads
texts = json.load(open(sys.argv[1]))
threads = use_threads(int(sys.argv[2]))
counter = TokenCounter.load("default")
before = len(os.listdir("/proc/self/task"))
counts = counter.count(texts).tolist()
started = len(os.listdir("/proc/self/task")) - before
print(json.dumps({"threads": threads, "started": started, "counts": counts}))
"""


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").is_dir() or not shutil.which("taskset"), reason="Linux threads")
def test_counts_identical_across_thread_counts(articles, tmp_path: Path) -> None:
    from curate.release.tokens import BATCH_DOCS, TokenCounter

    # Paragraphs of the real bodies, enough for three batches (a partial last one included),
    # with an empty text and a None among them (both count 0).
    paragraphs = [p for a in articles for p in a["text"].split("\n") if p.strip()]
    texts = (paragraphs * (2 * BATCH_DOCS // len(paragraphs) + 2))[: 2 * BATCH_DOCS + 300]
    texts[5], texts[BATCH_DOCS] = "", None
    path = tmp_path / "texts.json"
    path.write_text(json.dumps(texts))
    counter = TokenCounter.load("default")
    one_at_a_time = [len(counter.tokenizer.encode(t or "", add_special_tokens=False)) for t in texts]
    assert one_at_a_time[5] == one_at_a_time[BATCH_DOCS] == 0 and sum(one_at_a_time) > 100_000
    base = {k: v for k, v in os.environ.items() if k not in ("RAYON_NUM_THREADS", "TOKENIZERS_PARALLELISM")}
    base |= {"PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    # (token_threads, extra environment, CPU affinity) -> (threads used, threads the pool started)
    settings = {
        "1 thread": (1, {}, None, (1, 1)),
        "2 threads": (2, {}, None, (2, 2)),
        "3 threads (more than the cores)": (3, {}, None, (3, 3)),
        "every core, pinned to one": (0, {}, "0", (1, 1)),
        "every core, RAYON_NUM_THREADS=2 set by the user": (0, {"RAYON_NUM_THREADS": "2"}, None, (2, 2)),
        "pool off": (2, {"TOKENIZERS_PARALLELISM": "false"}, None, (1, 0)),
    }
    for name, (threads, extra, cores, expected) in settings.items():
        cmd = [sys.executable, "-c", _COUNT, str(path), str(threads)]
        cmd = ["taskset", "-c", cores, *cmd] if cores else cmd
        proc = subprocess.run(cmd, check=False, capture_output=True, text=True, env=base | extra, cwd=REPO, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        assert result["counts"] == one_at_a_time, name
        assert (result["threads"], result["started"]) == expected, name
        if extra.get("TOKENIZERS_PARALLELISM"):  # never silent: the run says why it counts in one thread
            assert (
                "TOKENIZERS_PARALLELISM=false: tokens are counted in 1 thread, not 2. Fix: unset "
                "TOKENIZERS_PARALLELISM for the release" in proc.stderr
            )


def test_bad_token_threads_fail_before_work() -> None:
    for value in ("-1", "two", "true"):
        with pytest.raises(ConfigError) as info:
            load_config(None, [f"release.token_threads={value}"])
        shown = {"-1": "-1", "two": "'two'", "true": "True"}[value]
        assert str(info.value) == (
            "invalid config (defaults):\n  release.token_threads: token_threads is a number of threads. Fix: set "
            "release.token_threads to 0 (every core this process may use) or to a thread count such as 2 "
            f"(got {shown})."
        )
    assert load_config(None, ["release.token_threads=2"]).release.token_threads == 2


_RELEASE = """
import json, logging, sys
from pathlib import Path
logging.basicConfig(level=logging.INFO)
from curate.config import CurateConfig
from curate.release.build import build_release
from curate.release.config import ReleaseConfig
parts, out, threads = json.loads(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
rcfg = ReleaseConfig(token_threads=threads, shard_target_mb=0.5, row_group_mb=0.1, plots=False)
release = build_release(CurateConfig(name="t"), [Path(p) for p in parts], [], release=rcfg, output_root=out)
manifest = json.loads((release / "manifest.json").read_text())
print(json.dumps({"tokens": manifest["totals"]["tokens"], "shards": [s["sha256"] for s in manifest["shards"]]}))
"""


@pytest.mark.slow
def test_release_bytes_identical_across_token_threads(tmp_path: Path) -> None:
    """A default release (SmolLM2's tokenizer) with 1 and 2 counting threads: the same
    num_tokens, so the same shards byte for byte, and the log says how many threads counted."""
    from bench.bench_release import write_parts

    parts = [str(p) for p in write_parts(tmp_path / "web", docs=1500, parts=2, seed=4, prefix="web")]
    env = {k: v for k, v in os.environ.items() if k not in ("RAYON_NUM_THREADS", "TOKENIZERS_PARALLELISM")}
    env |= {"PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    results = []
    for threads in (1, 2):
        cmd = [sys.executable, "-c", _RELEASE, json.dumps(parts), str(tmp_path / f"out{threads}"), str(threads)]
        proc = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env, cwd=REPO, timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert f"in {threads} thread(s)" in proc.stderr
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    assert results[0]["tokens"] > 100_000 and len(results[0]["shards"]) >= 2
    assert results[1] == results[0]


_FORKED = """
import json, logging, os
logging.basicConfig(level=logging.WARNING)
from curate.release.tokens import TokenCounter, use_threads
texts = ["The quick brown fox jumps over the lazy dog."] * 3000
use_threads(2)
counter = TokenCounter.load("default")
parent = int(counter.count(texts).sum())
pid = os.fork()
if pid == 0:
    threads = use_threads(2)
    before = len(os.listdir("/proc/self/task"))
    child = int(counter.count(texts).sum())
    started = len(os.listdir("/proc/self/task")) - before
    print(json.dumps({"threads": threads, "started": started, "same": child == parent}), flush=True)
    os._exit(0)
os.waitpid(pid, 0)
"""


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "fork") or not Path("/proc/self/task").is_dir(), reason="Linux fork")
def test_forked_after_counting_counts_in_one_thread_and_says_so() -> None:
    """tokenizers turns its pool off in a child forked after using it: the child counts the
    same in 1 thread (no pool thread starts), and use_threads says so with the fix."""
    env = {k: v for k, v in os.environ.items() if k not in ("RAYON_NUM_THREADS", "TOKENIZERS_PARALLELISM")}
    env |= {"PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", _FORKED], check=False, capture_output=True, text=True, env=env, cwd=REPO, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"threads": 1, "started": 0, "same": True}
    assert (
        "this process was forked after counting tokens: the tokenizer counts in 1 thread here, not 2. Fix: build the "
        "release in the process that started it, or in a spawned one" in proc.stderr
    )

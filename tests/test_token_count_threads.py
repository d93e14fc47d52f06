"""Token counts do not depend on how many threads count them: `TokenCounter.count` (the
tokenizer's batch encode, spread over its Rust thread pool) gives the same count for every
text with 1 thread, 2 threads or the pool off, across batch boundaries, and each equals
encoding that text alone. Real text: the article bodies in ../shared/data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

_COUNT = """
import json, sys
from curate.release.tokens import TokenCounter
texts = json.load(open(sys.argv[1]))
print(json.dumps(TokenCounter.load("default").count(texts).tolist()))
"""


@pytest.mark.slow
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
    # Thread-pool settings are read when the pool starts: each setting in its own process.
    settings = {
        "1 thread": {"RAYON_NUM_THREADS": "1"},
        "2 threads": {"RAYON_NUM_THREADS": "2"},
        "pool off": {"TOKENIZERS_PARALLELISM": "false"},
    }
    for name, extra in settings.items():
        env = dict(os.environ, PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1") | extra
        cmd = [sys.executable, "-c", _COUNT, str(path)]
        proc = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert json.loads(proc.stdout.strip().splitlines()[-1]) == one_at_a_time, name

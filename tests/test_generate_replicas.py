"""Data-parallel generation: `engine.replicas: 2` starts two real vLLM servers (embedded
SmolLM2-135M-Instruct, CPU, one core each), spreads seeded requests over both, and gives the
same text for a request whichever replica served it (slow: ~1-2 min, the two servers load side
by side; ~1.5 GB of memory each with a 0.5 GiB KV cache). The routing and failover logic is
tested fast against local HTTP servers in tests/test_engine.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from curate.llm.config import EngineConfig
from curate.llm.engine import open_engine
from curate.llm.engines.base import ChatRequest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

TOPICS = ["the moon", "a river", "bread", "winter", "a library", "volcanoes", "bees", "the sea"]


@pytest.mark.slow
def test_two_replicas_share_the_work_and_outputs_do_not_depend_on_the_replica(tmp_path: Path) -> None:
    requests = [
        ChatRequest.of(f"Write one sentence about {t}.", temperature=0.8, max_tokens=24, seed=100 + i)
        for i, t in enumerate(TOPICS)
    ]
    # concurrency 1: each server runs one request at a time, so no request's batch depends on
    # which others happened to arrive with it.
    cfg = EngineConfig(
        kind="vllm_server",
        replicas=2,
        concurrency=1,
        max_model_len=512,
        kv_cache_gib=0.5,
        max_num_seqs=4,
        server_log_dir=str(tmp_path),
    )
    with open_engine(cfg) as engine:
        urls = engine.urls  # type: ignore[attr-defined]
        assert len(set(urls)) == 2
        gens = engine.generate(requests)
        shared = engine.endpoint_stats()  # type: ignore[attr-defined]
        # Each replica alone, the same requests: every text must match the shared run's.
        alone = []
        for url in urls:
            with open_engine(EngineConfig(kind="openai", urls=[url], concurrency=1)) as one:
                alone.append([g.text for g in one.generate(requests)])
        logs = sorted(tmp_path.glob("curate-vllm-server-*.log"))
    assert all(g.ok and g.completion_tokens > 0 for g in gens), gens
    assert [s["served"] for s in shared.values()] and all(s["served"] >= 1 for s in shared.values()), (
        shared
    )  # both worked
    assert sum(s["served"] for s in shared.values()) == len(requests)
    texts = [g.text for g in gens]
    assert alone[0] == texts and alone[1] == texts
    assert len(set(texts)) > 1  # the seeds differ, so do the texts
    # Each replica was pinned to its own core (this process may use at least 2).
    binds = [
        next((line for line in p.read_text(errors="replace").splitlines() if "VLLM_CPU_OMP_THREADS_BIND=" in line), "")
        for p in logs
    ]
    assert len(logs) == 2 and len({b.split("VLLM_CPU_OMP_THREADS_BIND=")[-1].split(",")[0] for b in binds if b}) == 2, (
        binds
    )

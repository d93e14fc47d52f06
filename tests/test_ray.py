"""`executor.kind: ray`: the demo pipeline and dedup on a real local Ray cluster (2 CPUs,
started here) give exactly the local executor's output; dedup's clustering is partitioned
and gives the single-partition result; a Ray that cannot run fails before any work."""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
import psutil
import pytest

import curate.dedup.partitioned as partitioned
import curate.dedup.sigtable as sigtable
import curate.dedup.stage as stage
import curate.dedup.star as star
from bench.dedup_data import edit, real_documents
from curate.config import load_config
from curate.core import schema as S
from curate.core.errors import DependencyError
from curate.dedup.clusters import connected_components
from curate.dedup.workers import RayWorkers, Workers
from tests.test_dedup_stage import write_part

REPO = Path(__file__).resolve().parents[1]
RAY_PROCESSES = (
    "raylet",
    "gcs_server",
    "ray::",
    "default_worker",
    "plasma_store",
    "log_monitor",
    "monitor.py",
    "dashboard",
)


def _ray_children() -> list[str]:
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            line = " ".join(child.cmdline()) or child.name()
        except psutil.Error:
            continue
        if any(name in line for name in RAY_PROCESSES):
            found.append(line[:120])
    return found


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    import ray

    assert not ray.is_initialized()
    ray.init(
        num_cpus=2,
        object_store_memory=100 * 1024 * 1024,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
    )
    try:
        yield
    finally:
        ray.shutdown()
        deadline = time.monotonic() + 30
        while _ray_children() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert _ray_children() == [], "Ray left processes behind"


# ------------------------------------------------------------------ the demo, local vs ray


def _run_demo(kind: str, out: Path) -> dict:
    from flows.curate_corpus import curate_corpus

    manifest = curate_corpus(str(REPO / "configs" / "demo.yaml"), [f"executor.kind={kind}"], None, str(out))
    return json.loads(Path(manifest).read_text())


def _kept_ids(out: Path) -> list[str]:
    return pl.concat([pl.read_parquet(p) for p in sorted((out / "data").glob("*.parquet"))]).get_column(S.ID).to_list()


@pytest.mark.slow
def test_demo_pipeline_gives_the_same_ids_and_shards_on_ray(
    tmp_path: Path, prefect_harness: None, ray_cluster: None
) -> None:
    local = _run_demo("local", tmp_path / "local")
    on_ray = _run_demo("ray", tmp_path / "ray")
    # Annotate really ran under datatrove's Ray executor (its settings are in executor.json).
    (executor_json,) = (tmp_path / "ray" / "_work").glob("annotate-*/logs/executor.json")
    assert json.loads(executor_json.read_text())["nodes_per_task"] == 1
    assert _kept_ids(tmp_path / "ray") == _kept_ids(tmp_path / "local")
    assert len(_kept_ids(tmp_path / "ray")) > 10
    shards = [(s["path"], s["rows"], s["sha256"]) for s in on_ray["shards"]]
    assert shards == [(s["path"], s["rows"], s["sha256"]) for s in local["shards"]]
    for path, _, sha in shards:
        assert hashlib.sha256((tmp_path / "ray" / path).read_bytes()).hexdigest() == sha
    timings = "stages"  # seconds per stage differ from run to run
    assert {k: v for k, v in on_ray["counts"].items() if k != timings} == {
        k: v for k, v in local["counts"].items() if k != timings
    }


# ------------------------------------------------------------------------ dedup on Ray


def _corpus(tmp: Path, n: int, seed: int) -> list[Path]:
    docs = list(real_documents()[:n])
    rng = random.Random(seed)
    copies = [(f"{i}~", edit(t, 0.02, rng)) for i, t in docs[: n // 3]]  # near-duplicates
    copies += [(f"{i}=", t.upper()) for i, t in docs[n // 3 : n // 2]]  # exact after normalising
    copies += [(i, "a different text under a repeated id " + t[:200]) for i, t in docs[n // 2 : n // 2 + 5]]
    records = docs + copies
    rng.shuffle(records)
    return [write_part(tmp / f"{k}.parquet", records[k::3], row_group=50) for k in range(3)]


def _dedup(cfg_overrides: list[str], parts: list[Path], out: Path, workers: Workers) -> tuple[list[str], pl.DataFrame]:
    cfg = load_config(None, cfg_overrides)
    result = stage.deduplicate(cfg, parts, out / "work", out / "ledger", workers)
    kept = pl.concat([pl.read_parquet(p) for p in result.parts]).get_column(S.ID).to_list()
    ledger = pl.concat([pl.read_parquet(p) for p in sorted((out / "ledger").glob("*.parquet"))]).sort(S.ID)
    return kept, ledger


@pytest.mark.slow
def test_dedup_on_ray_splits_the_work_and_keeps_the_same_documents(
    tmp_path: Path, ray_cluster: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    parts = _corpus(tmp_path / "in", 600, seed=3)
    # Small units and partitions and no inline threshold, so the Ray tasks really split every
    # phase: 8+ signing units and 4 partitions of the clustering.
    monkeypatch.setattr(sigtable, "UNIT_ROWS", 100)
    monkeypatch.setattr(stage, "PARALLEL_MIN_ROWS", 0)
    monkeypatch.setattr(partitioned, "PARTITION_DOCS", 250)
    assert len(sigtable.plan_units(parts)[0]) >= 8
    index = tmp_path / "index"
    earlier = _corpus(tmp_path / "earlier", 60, seed=9)  # an earlier release in the index
    base = ["executor.workers=2", "dedup.verify_threshold=0.5"]

    cfg = load_config(None, ["executor.kind=ray", *base])
    with RayWorkers(cfg.executor) as ray_workers:
        _dedup(
            ["executor.kind=ray", *base, f"dedup.index_dir={index / 'ray'}", "name=r1"],
            earlier,
            tmp_path / "r1",
            ray_workers,
        )
        kept_ray, ledger_ray = _dedup(
            ["executor.kind=ray", *base, f"dedup.index_dir={index / 'ray'}", "name=r2"],
            parts,
            tmp_path / "r2",
            ray_workers,
        )
        assert len(ray_workers.pids) >= 2  # more than one Ray worker process ran jobs
        assert os.getpid() not in ray_workers.pids

    # The reference: one process, one partition.
    monkeypatch.setattr(stage, "PARALLEL_MIN_ROWS", 10**9)
    with Workers(1) as one:
        _dedup([*base, f"dedup.index_dir={index / 'local'}", "name=r1"], earlier, tmp_path / "l1", one)
        kept_local, ledger_local = _dedup(
            [*base, f"dedup.index_dir={index / 'local'}", "name=r2"], parts, tmp_path / "l2", one
        )

    assert kept_ray == kept_local
    assert ledger_ray.equals(ledger_local)
    reasons = set(ledger_ray.get_column("reason").to_list())
    assert {"exact_duplicate", "near_duplicate", "duplicate_id"} <= reasons
    assert ledger_ray.get_column("value").str.starts_with("earlier release r1").any()
    # The scratch of the partitioned clustering is gone once the stage finishes.
    assert not (tmp_path / "r2" / "work" / "_cluster").exists()


# --------------------------------------------------- partitioned clustering, without Ray


def test_star_rounds_find_the_connected_components(tmp_path: Path) -> None:
    """Long chains in scrambled order are the slow case for label propagation; large-star /
    small-star must still label every node with the smallest node of its component."""
    rng = np.random.default_rng(4)
    n = 3_000
    order = rng.permutation(n)
    chains = [order[i : i + 300] for i in range(0, n, 300)]  # 10 chains of 300 nodes
    u = np.concatenate([c[:-1] for c in chains] + [rng.integers(0, n, 200)])
    v = np.concatenate([c[1:] for c in chains] + [rng.integers(0, n, 200)])
    expected = connected_components(n, u, v)
    for P in (1, 3, 8):
        scratch = tmp_path / f"p{P}"
        edges = pl.DataFrame({"u": u, "nb": v}).filter(pl.col("u") != pl.col("nb"))
        star.write_adjacency(edges, P, scratch / "adj-000", 0)
        labels = pl.read_parquet(sorted(star.star_rounds(scratch, P, Workers(1), True).glob("*.parquet"))).sort("node")
        assert labels.get_column("node").to_list() == list(range(n))
        assert labels.get_column("label").to_list() == expected.tolist()


def test_partition_count_grows_with_the_corpus_not_the_memory() -> None:
    assert partitioned.partition_count(10_000, 4, parallel=False) == 1
    assert partitioned.partition_count(10_000, 4, parallel=True) == 4
    assert partitioned.partition_count(5 * partitioned.PARTITION_DOCS + 1, 2, parallel=True) == 6


# ------------------------------------------------------------------ failing before work


def test_ray_kind_without_ray_names_the_key_and_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    from curate.executors.build import check_executor

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(DependencyError) as err:
        check_executor(load_config(None, ["executor.kind=ray"]))
    assert str(err.value) == (
        "executor.kind is ray but the package ray cannot be imported (import of ray halted; None in sys.modules). "
        "Fix: run `make setup` (ray is in requirements.lock), or set executor.kind=local"
    )


def test_unreachable_ray_address_fails_before_any_work(tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "curate",
            "run",
            str(REPO / "configs" / "demo.yaml"),
            "--output",
            str(out),
            "--set",
            "executor.kind=ray",
            "--set",
            "executor.ray_address=127.0.0.1:9",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert done.returncode == 2
    assert (
        "error: executor.ray_address '127.0.0.1:9': no Ray cluster answers there ([Errno 111] Connection refused). "
        "Fix: start one with `ray start --head` and use the address it prints (or auto on that machine), "
        "or set executor.ray_address to null for a private Ray on this machine"
    ) in done.stderr
    assert not out.exists()

"""Killing a run (SIGKILL, as a machine failure would) and rerunning it gives the same output
and release as an uninterrupted run, reusing the stages that had finished."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import polars as pl
import psutil
import pytest

from curate.core.stages import FAULT_KILL_AFTER_ENV

REPO = Path(__file__).resolve().parent.parent
SETTINGS = ["--set", "executor.workers=1", "--set", "release.enabled=true"]


def _run(
    out: Path, tmp: Path, kill_after: str | None = None, extra: list[str] | None = None
) -> subprocess.CompletedProcess:
    home = tmp / f"prefect-home-{kill_after or 'whole'}-{len(list(tmp.glob('prefect-home-*')))}"
    env = dict(os.environ, PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false", HF_HUB_OFFLINE="1")
    env.pop(FAULT_KILL_AFTER_ENV, None)
    if kill_after:
        env[FAULT_KILL_AFTER_ENV] = kill_after
    cmd = [
        sys.executable,
        "-m",
        "curate",
        "run",
        "configs/demo.yaml",
        "--output",
        str(out),
        "--quiet",
        *SETTINGS,
        *(extra or []),
    ]
    log = tmp / f"{home.name}.log"
    # Output to a file, not a pipe: Prefect's temporary server outlives a killed run (it runs
    # in its own session) and would hold a pipe open.
    with open(log, "w") as sink:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            proc.wait(timeout=600)
        finally:
            _kill_orphans(proc.pid, home)
    return subprocess.CompletedProcess(cmd, proc.returncode, log.read_text(), "")


def _kill_orphans(pid: int, home: Path) -> None:
    """The run's process group, and the Prefect server it started (found by its PREFECT_HOME)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    for p in psutil.process_iter(["pid"]):
        try:
            if p.environ().get("PREFECT_HOME") == str(home):
                p.kill()
        except (psutil.Error, OSError):
            pass


def _release_shards(out: Path) -> list[tuple[str, str]]:
    manifest = json.loads(next((out / "releases").glob("*/v1/manifest.json")).read_text())
    return [(s["path"], s["sha256"]) for s in manifest["shards"]]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("whole")
    done = _run(tmp / "out", tmp)
    assert done.returncode == 0, done.stdout[-3000:]
    return tmp / "out"


@pytest.mark.slow
@pytest.mark.parametrize("kill_after", ["annotate", "select", "hygiene", "dedup"])
def test_kill_and_rerun_gives_the_uninterrupted_result(uninterrupted: Path, tmp_path: Path, kill_after: str) -> None:
    out = tmp_path / "out"
    killed = _run(out, tmp_path, kill_after)
    assert killed.returncode == -signal.SIGKILL, killed.stdout[-3000:]
    assert not (out / "manifest.json").exists()  # the run really died before writing its output

    rerun = _run(out, tmp_path)
    assert rerun.returncode == 0, rerun.stdout[-3000:]
    stages = {s["stage"]: s for s in json.loads((out / "summary.json").read_text())["stages"]}
    order = ["annotate", "select", "hygiene", "dedup"]
    finished = order[: order.index(kill_after) + 1]
    for stage in finished:
        assert stages[stage]["reused"], f"{stage} finished before the kill but ran again: {stages}"
    for stage in set(stages) - set(finished) - {"generate"}:
        assert not stages[stage]["reused"], stages

    _assert_same_output(out, uninterrupted)
    assert not list(out.rglob("*.tmp"))  # no half-written file survived


@pytest.mark.slow
def test_kills_inside_dedup_shard_writing_and_release_then_rerun(uninterrupted: Path, tmp_path: Path) -> None:
    """Killed in the middle of work rather than between stages, three times in a row (each
    rerun is itself killed at a later point): after dedup clustered but before it wrote a
    part, with shard 1 half written and shard 0 renamed, and with the release fully staged
    but not renamed into place. The last rerun gives the uninterrupted output and release."""
    out = tmp_path / "out"

    killed = _run(out, tmp_path, "dedup:clustered")
    assert killed.returncode == -signal.SIGKILL, killed.stdout[-3000:]
    assert not list((out / "_work").glob("dedup-*/_done.json"))
    assert not list((out / "data").iterdir())

    killed = _run(out, tmp_path, "shard:1")
    assert killed.returncode == -signal.SIGKILL, killed.stdout[-3000:]
    assert not (out / "manifest.json").exists()
    data = sorted(p.name for p in (out / "data").iterdir())
    assert data == [".part-00001.parquet.tmp", "part-00000.parquet"]  # really mid-write
    whole = json.loads((uninterrupted / "manifest.json").read_text())
    assert whole["shards"][0]["path"] == "data/part-00000.parquet"

    killed = _run(out, tmp_path, "release:staged")
    assert killed.returncode == -signal.SIGKILL, killed.stdout[-3000:]
    (base,) = (out / "releases").iterdir()
    assert [p.name for p in base.iterdir() if p.name.startswith(".v1.tmp-")]  # staged, not published
    assert not (base / "v1").exists()

    rerun = _run(out, tmp_path)
    assert rerun.returncode == 0, rerun.stdout[-3000:]
    _assert_same_output(out, uninterrupted)
    # No half file and no staging folder survived, and only one release version exists.
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp") or ".tmp-" in p.name]
    assert sorted(p.name for p in base.iterdir() if not p.name.startswith(".lock")) == ["v1"]


def _assert_same_output(out: Path, uninterrupted: Path) -> None:
    """Same documents, same bytes, same ledger, same release as the run that was never killed."""
    whole = json.loads((uninterrupted / "manifest.json").read_text())
    again = json.loads((out / "manifest.json").read_text())
    assert [(s["path"], s["sha256"]) for s in again["shards"]] == [(s["path"], s["sha256"]) for s in whole["shards"]]
    assert again["counts"]["by_reason"] == whole["counts"]["by_reason"]
    ids = pl.read_parquet(out / "data" / "*.parquet")["id"]
    assert ids.is_unique().all()
    assert sorted(ids.to_list()) == sorted(pl.read_parquet(uninterrupted / "data" / "*.parquet")["id"].to_list())
    assert _release_shards(out) == _release_shards(uninterrupted)


def _manifest_tells_the_truth(out: Path) -> bool:
    """No manifest, or one whose every shard is on disk with its sha256 and no other shard is."""
    if not (out / "manifest.json").exists():
        return not (out / "summary.json").exists()
    manifest = json.loads((out / "manifest.json").read_text())
    listed = {s["path"]: s["sha256"] for s in manifest["shards"]}
    on_disk = {
        f"data/{p.name}": hashlib.sha256(p.read_bytes()).hexdigest() for p in (out / "data").glob("part-*.parquet")
    }
    return listed == on_disk


@pytest.mark.slow
def test_rerun_with_a_new_threshold_killed_mid_shards_leaves_no_lying_manifest(tmp_path: Path) -> None:
    """The README invites reruns into the same folder with new thresholds. One killed with
    shard 1 half written (shard 0 already replaced by the new run's) must not leave the
    previous run's manifest (and summary) beside the mix of new and old shards."""
    out = tmp_path / "out"
    first = _run(out, tmp_path)
    assert first.returncode == 0, first.stdout[-3000:]
    old = json.loads((out / "manifest.json").read_text())
    assert _manifest_tells_the_truth(out)

    # A threshold just above the lowest quality score in shard 0: drops that document (and any
    # as low elsewhere), so shard 0 changes while later shards remain to be killed in.
    import pyarrow.parquet as pq

    lowest = min(
        pq.read_table(out / "data" / "part-00000.parquet", columns=["quality_score"])
        .column("quality_score")
        .to_pylist()
    )
    stricter = ["--set", f"quality.min_score={lowest + 1e-6:.8f}"]
    killed = _run(out, tmp_path, "shard:1", stricter)
    assert killed.returncode == -signal.SIGKILL, killed.stdout[-3000:]
    shard0 = hashlib.sha256((out / "data" / "part-00000.parquet").read_bytes()).hexdigest()
    assert shard0 != old["shards"][0]["sha256"]  # the mix really happened: shard 0 is the new run's
    assert _manifest_tells_the_truth(out)
    assert not (out / "manifest.json").exists()

    rerun = _run(out, tmp_path, extra=stricter)
    assert rerun.returncode == 0, rerun.stdout[-3000:]
    assert _manifest_tells_the_truth(out)
    assert json.loads((out / "manifest.json").read_text())["counts"]["kept"] < old["counts"]["kept"]

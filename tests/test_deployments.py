"""The deployments of prefect.yaml on a real Prefect server, run by a real process worker:
`curate.deploy.deploy` registers them, and two triggered runs of the incremental deployment
curate first one batch of crawl files, then only the files added since, whose copies of
documents of the first release are dropped as duplicates of that release.

Everything runs as a user would run it: `prefect server start` (SQLite in a temporary
PREFECT_HOME), `prefect worker start`, the REST API to trigger runs. Nothing is mocked."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest

from curate.incremental import Batch, fingerprint, load_state, new_files, record_batch, save_state, state_path

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
POOL = "curate-process"
DEPLOYMENT = "curate-incremental/incremental"
RUN_TIMEOUT_S = 420  # a batch on a busy 2-core machine: ~1-2 min; bounded so a stuck run fails


# ------------------------------------------------------------------- unit: the state


def test_state_records_only_successful_batches(tmp_path: Path) -> None:
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text('{"id": "1", "text": "x"}\n')
    b.write_text('{"id": "2", "text": "y"}\n')
    path = state_path(tmp_path / "out", "s")
    state = load_state(path, "s")
    assert new_files([str(a), str(b)], state) == [str(a), str(b)]
    assert state.next_batch() == 1
    # A failed run saves nothing: the next one sees the same files under the same number.
    assert new_files([str(a), str(b)], load_state(path, "s")) == [str(a), str(b)]
    save_state(record_batch(state, [str(a)], Batch(1, [str(a)], "o", None, 1, 0, "t")), path)
    again = load_state(path, "s")
    assert again.next_batch() == 2
    assert new_files([str(a), str(b)], again) == [str(b)]
    # Rewritten in place (new size): new again, and listed once after it is recorded.
    a.write_text('{"id": "1", "text": "x, longer now"}\n')
    assert new_files([str(a), str(b)], again) == [str(a), str(b)]
    record_batch(again, [str(a)], Batch(2, [str(a)], "o", None, 1, 0, "t"))
    assert [fp.path for fp in again.processed.values()] == [str(a)]
    assert fingerprint(str(a)).key in again.processed


# ------------------------------------------------------------------- the server, the worker


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    """Stop a process this test started, with its children (own session: its group id is its pid)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    except ProcessLookupError:
        pass


def _tail(path: Path, n: int = 4000) -> str:
    return path.read_text(errors="replace")[-n:] if path.exists() else ""


@contextmanager
def prefect_server(home: Path) -> Iterator[dict[str, Any]]:
    """`prefect server start` on a free port, SQLite under `home`; stopped on exit."""
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
        "HF_HUB_OFFLINE": "1",
        "DO_NOT_TRACK": "1",
        "PREFECT_WORKER_QUERY_SECONDS": "2",  # pick up a triggered run within seconds
        "PREFECT_RUNNER_POLL_FREQUENCY": "2",  # the same for `curate serve`
        "PREFECT_LOGGING_LEVEL": "INFO",
    }
    env.pop("PREFECT_API_KEY", None)
    log = home / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"prefect server exited with {proc.returncode}:\n{_tail(log)}")
            try:
                if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"prefect server not healthy after 120 s:\n{_tail(log)}")
            time.sleep(1)
        yield {"api": api, "env": env, "home": home}
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[dict[str, Any]]:
    with prefect_server(tmp_path_factory.mktemp("prefect-home")) as info:
        yield info


@pytest.fixture(scope="module")
def deployed(server) -> list[str]:
    """curate.deploy.deploy as `curate deploy` runs it, in its own process against the server."""
    code = "import json; from curate.deploy import deploy; print(json.dumps(deploy()))"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=server["env"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def worker(server, deployed) -> Iterator[Path]:
    log = server["home"] / "worker.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(BIN / "prefect"), "worker", "start", "--pool", POOL, "--type", "process"],
            cwd=server["home"],
            env=server["env"],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield log
    finally:
        _stop(proc)


def test_deploy_registers_every_deployment(server, deployed) -> None:
    assert sorted(deployed) == sorted(
        ["curate-corpus/corpus", "curate-incremental/incremental", "curate-corpus/synthetic", "curate-release/release"]
    )
    api = server["api"]
    pool = httpx.get(f"{api}/work_pools/{POOL}", timeout=10)
    assert pool.status_code == 200 and pool.json()["type"] == "process"
    found = httpx.post(
        f"{api}/deployments/filter", json={"limit": 50, "offset": 0, "sort": "NAME_ASC"}, timeout=10
    ).json()
    by_name = {d["name"]: d for d in found}
    assert set(by_name) == {"corpus", "incremental", "synthetic", "release"}
    incremental = by_name["incremental"]
    assert incremental["work_pool_name"] == POOL
    assert incremental["entrypoint"] == "flows/incremental.py:curate_incremental"
    assert [s["schedule"]["cron"] for s in incremental["schedules"]] == ["0 3 * * 1"]
    # The pull step moves to this checkout, resolved at deploy time (not a template left over).
    assert incremental["pull_steps"] == [{"prefect.deployments.steps.set_working_directory": {"directory": str(REPO)}}]
    assert by_name["synthetic"]["parameters"]["overrides"] == ["generate.enabled=true"]


# ------------------------------------------------------------------- triggering runs


def trigger(api: str, parameters: dict[str, Any]) -> str:
    flow_name, name = DEPLOYMENT.split("/")
    dep = httpx.get(f"{api}/deployments/name/{flow_name}/{name}", timeout=10)
    dep.raise_for_status()
    run = httpx.post(
        f"{api}/deployments/{dep.json()['id']}/create_flow_run", json={"parameters": parameters}, timeout=10
    )
    run.raise_for_status()
    return run.json()["id"]


def wait_for(api: str, run_id: str, worker_log: Path) -> str:
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        state = httpx.get(f"{api}/flow_runs/{run_id}", timeout=10).json()["state"]
        if state and state["type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            assert state["type"] == "COMPLETED", (
                f"flow run {run_id} ended {state['type']}: {state.get('message')}\n{_tail(worker_log)}"
            )
            return state["type"]
        time.sleep(2)
    pytest.fail(f"flow run {run_id} not finished after {RUN_TIMEOUT_S} s:\n{_tail(worker_log)}")


def jsonl(path: Path, records: list[dict[str, str]]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return str(path)


def release_frame(release: Path) -> pl.DataFrame:
    return pl.read_parquet(sorted(release.rglob("*.parquet")))


@pytest.fixture(scope="module")
def english_articles(articles) -> list[dict[str, str]]:
    """Real articles long enough for every filter, not too long for a quick run."""
    picked = [a for a in articles if 2000 <= len(a["text"]) <= 5000 and a["text"].isascii()]
    assert len(picked) >= 9
    return picked[:9]


def test_incremental_runs_curate_only_new_files(tmp_path_factory, server, worker, english_articles) -> None:
    api = server["api"]
    incoming = tmp_path_factory.mktemp("incoming")
    out = tmp_path_factory.mktemp("incremental")
    params = {
        "config_path": "configs/incremental_demo.yaml",
        "input_prefix": str(incoming),
        "output_root": str(out),
        # 2 shared cores: one worker; the classifier is beside the point here.
        "overrides": ["executor.workers=1", "quality.enabled=false", "release.plots=false"],
    }
    arts = english_articles
    first = [jsonl(incoming / "crawl-001.jsonl", arts[0:3]), jsonl(incoming / "crawl-002.jsonl", arts[3:5])]

    wait_for(api, trigger(api, params), worker)
    state = load_state(state_path(out, "incremental"), "incremental")
    assert [b.batch for b in state.batches] == [1]
    assert state.batches[0].files == sorted(first)
    v1 = out / "releases" / "incremental" / "v1"
    assert state.batches[0].release == str(v1)
    assert (v1 / "manifest.json").is_file()
    released = release_frame(v1)
    assert released.height == state.batches[0].kept >= 2
    kept_texts = dict(zip(released["id"], released["text"]))

    # New crawl files: new articles, an exact copy and an edited copy of released documents.
    exact_of, near_of = sorted(kept_texts)[:2]
    words = kept_texts[near_of].split(" ")
    words[len(words) // 2] = "remarkably"
    edited = " ".join(words) + " This copy was syndicated by another site."
    second = [
        jsonl(incoming / "crawl-003.jsonl", arts[5:7] + [{"id": "copy-exact", "text": kept_texts[exact_of]}]),
        jsonl(incoming / "crawl-004.jsonl", arts[7:9] + [{"id": "copy-near", "text": edited}]),
    ]
    wait_for(api, trigger(api, params), worker)
    state = load_state(state_path(out, "incremental"), "incremental")
    assert [b.batch for b in state.batches] == [1, 2]
    assert state.batches[1].files == sorted(second)  # only the new files
    batch2 = Path(state.batches[1].output)
    manifest = json.loads((batch2 / "manifest.json").read_text())
    assert manifest["inputs"] == sorted(second)
    assert manifest["counts"]["ingested"] == 6
    ledger = pl.read_parquet(sorted((batch2 / "rejected").glob("*.parquet")))
    dups = {r["id"]: r for r in ledger.filter(pl.col("stage") == "dedup").iter_rows(named=True)}
    assert dups["copy-exact"]["reason"] == "exact_duplicate"
    assert dups["copy-exact"]["duplicate_of"] == exact_of
    assert dups["copy-near"]["reason"] == "near_duplicate"
    assert dups["copy-near"]["duplicate_of"] == near_of
    assert "earlier release incremental-b0001" in dups["copy-near"]["value"]
    v2 = out / "releases" / "incremental" / "v2"
    assert state.batches[1].release == str(v2)
    ids2 = set(release_frame(v2)["id"])
    assert ids2 and not ids2 & set(kept_texts) and not ids2 & {"copy-exact", "copy-near"}

    # Nothing new: the run completes without a batch.
    wait_for(api, trigger(api, params), worker)
    assert [b.batch for b in load_state(state_path(out, "incremental"), "incremental").batches] == [1, 2]
    assert sorted(p.name for p in (out / "batches").iterdir()) == ["0001", "0002"]


def test_serve_runs_a_deployment_without_a_work_pool(tmp_path) -> None:
    """`curate serve` (curate.deploy.serve): the same deployment served by one local process,
    on a server of its own (no worker there: only the serving process can run it)."""
    (tmp_path / "home").mkdir()
    with prefect_server(tmp_path / "home") as server:
        _serve_and_run(tmp_path, server)


def _serve_and_run(tmp_path: Path, server: dict[str, Any]) -> None:
    api = server["api"]
    incoming = tmp_path / "incoming"
    incoming.mkdir()  # an existing, empty prefix: a scheduled run before any crawl landed
    log = tmp_path / "serve.log"
    code = "from curate.deploy import serve; serve(['incremental'])"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", code],
            cwd=tmp_path,
            env=server["env"],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            dep = httpx.get(f"{api}/deployments/name/curate-incremental/incremental", timeout=10)
            if dep.status_code == 200 and "Your deployments are being served" in _tail(log, 100_000):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"curate serve did not start (exit {proc.poll()}):\n{_tail(log)}")
            time.sleep(1)
        assert [s["schedule"]["cron"] for s in dep.json()["schedules"]] == ["0 3 * * 1"]
        params = {
            "config_path": "configs/incremental_demo.yaml",
            "input_prefix": str(incoming),
            "output_root": str(tmp_path / "out"),
        }
        wait_for(api, trigger(api, params), log)
        assert "no new input files" in _tail(log, 100_000)
        assert not (tmp_path / "out" / "batches").exists()
    finally:
        _stop(proc)


# ------------------------------------------------------------------- Prefect's own CLI


def _prefect(args: list[str], env: dict[str, str], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "prefect"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_prefect_deploy_all_then_a_process_worker_runs_one(tmp_path: Path) -> None:
    """As Prefect's docs do it: `prefect work-pool create`, then `prefect --no-prompt deploy
    --all` from the repository root registers every deployment of prefect.yaml (with
    prefect 3.8.8 + fastapi 0.152 it failed with HTTP 422 on the workers filter), and
    `prefect worker start --run-once` runs one of them to Completed."""
    (tmp_path / "home").mkdir()
    with prefect_server(tmp_path / "home") as server:
        api, env = server["api"], server["env"]
        created = _prefect(["work-pool", "create", POOL, "--type", "process"], env, tmp_path)
        assert created.returncode == 0, created.stdout[-3000:] + created.stderr[-3000:]
        done = _prefect(["--no-prompt", "deploy", "--all"], env, REPO)
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]

        import yaml

        specs = yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"]
        found = httpx.post(f"{api}/deployments/filter", json={"limit": 50, "offset": 0}, timeout=10).json()
        flows = {
            f["id"]: f["name"]
            for f in httpx.post(f"{api}/flows/filter", json={"limit": 50, "offset": 0}, timeout=10).json()
        }
        by_name = {d["name"]: d for d in found}
        assert sorted(by_name) == sorted(s["name"] for s in specs)
        for spec in specs:
            dep = by_name[spec["name"]]
            assert dep["entrypoint"] == spec["entrypoint"]
            assert dep["work_pool_name"] == POOL
            assert dep["pull_steps"] == [{"prefect.deployments.steps.set_working_directory": {"directory": str(REPO)}}]
        assert flows[by_name["corpus"]["flow_id"]] == "curate-corpus"

        # One run of curate-corpus/corpus (the demo recipe), its output outside the checkout.
        out = tmp_path / "corpus-out"
        params = {"output": str(out), "overrides": ["executor.workers=1"]}
        run = httpx.post(
            f"{api}/deployments/{by_name['corpus']['id']}/create_flow_run", json={"parameters": params}, timeout=10
        )
        run.raise_for_status()
        log = tmp_path / "worker.log"
        with open(log, "wb") as sink:
            proc = subprocess.Popen(
                [str(BIN / "prefect"), "worker", "start", "--pool", POOL, "--type", "process", "--run-once"],
                cwd=tmp_path,
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            wait_for(api, run.json()["id"], log)
        finally:
            _stop(proc)
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["counts"]["kept"] > 0 and manifest["shards"]

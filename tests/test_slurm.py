"""executor.kind=slurm (curate/executors/slurm.py) against a real one-node Slurm cluster.

.ci/run starts the cluster with scripts/slurm_localhost.sh (Debian's slurm-wlm + munge on
localhost). Without it, the tests that need a cluster skip with the reason (and fail under CI=true); the generated
sbatch script, the config checks and the completion-marker wait (driven by real processes
that write markers and exit, standing in for nothing but the scheduler's bookkeeping) still run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import require_or_skip
from datatrove.io import get_datafolder

from curate.config import load_config
from curate.core.errors import ConfigError
from curate.executors.slurm import (
    SlurmJobError,
    TaskState,
    build_slurm_executor,
    scontrol_states,
    slurm_executor,
    wait_for_completion,
)

REPO = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
DEMO_INPUT = REPO / "curate" / "data" / "demo"


def cluster_problem() -> str | None:
    """Why no local Slurm cluster can run jobs, or None when one can."""
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        return "no Slurm cluster: sinfo/sbatch not on PATH (start one with `bash scripts/slurm_localhost.sh` as root, as .ci/run does)"  # noqa: E501
    try:
        # 10 s: with no controller answering, sinfo retries for ~20 s before it says so.
        proc = subprocess.run(["sinfo", "--noheader", "--format=%t"], capture_output=True, text=True, timeout=10)
    except subprocess.TimeoutExpired:
        return "no Slurm cluster answering: `sinfo` got no answer in 10 s (start one with `bash scripts/slurm_localhost.sh` as root, as .ci/run does)"  # noqa: E501
    states = proc.stdout.split()
    if proc.returncode != 0 or not any(s.rstrip("*~#!%$@^-") in {"idle", "mix", "alloc"} for s in states):
        detail = (proc.stderr.strip() or "node states: " + (", ".join(states) or "none")).splitlines()[0]
        return f"no Slurm cluster answering: `sinfo` says {detail} (start one with `bash scripts/slurm_localhost.sh` as root, as .ci/run does)"  # noqa: E501
    return None


_PROBLEM = cluster_problem()


@pytest.fixture
def slurm_cluster() -> None:
    """Skips without a cluster (fails under CI=true, where .ci/run starts one)."""
    if _PROBLEM is not None:
        require_or_skip(_PROBLEM)


needs_cluster = pytest.mark.usefixtures("slurm_cluster")


def slurm_cfg(*overrides: str) -> Any:
    return load_config(None, ["executor.kind=slurm", "executor.slurm.poll_s=0.2", *overrides])


# Pipeline steps for the array tasks. They are pickled by reference (`test_slurm.<name>`), so
# the tests put this folder on the tasks' PYTHONPATH (sbatch exports the environment).
def fail_on_rank_1(data: Any, rank: int, world_size: int) -> Iterator[Any]:
    if rank == 1 and not os.environ.get("CURATE_TEST_FIXED"):
        raise RuntimeError("deliberate failure on rank 1")
    yield from data or []


def sleep_long(data: Any, rank: int, world_size: int) -> Iterator[Any]:
    time.sleep(120)
    yield from data or []


@pytest.fixture
def tasks_import_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])))


# ------------------------------------------------------------------ config and validation


def test_missing_sbatch_names_the_key_and_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no sbatch, scontrol, scancel
    with pytest.raises(ConfigError) as err:
        slurm_executor(slurm_cfg(), [fail_on_rank_1], str(tmp_path / "logs"), 2, "curate-test")
    assert str(err.value) == (
        "executor.kind is 'slurm' but sbatch, scontrol, scancel are not on PATH. "
        "Fix: run curate on a Slurm login node (or install Slurm's client commands), or set executor.kind to local"
    )


def test_unquoted_time_limit_is_refused_with_the_fix() -> None:
    with pytest.raises(ConfigError) as err:
        slurm_cfg("executor.slurm.time=4:00:00")  # YAML reads this as 14400
    assert str(err.value) == (
        "invalid config (defaults):\n  executor.slurm.time: write the time limit as a quoted Slurm time, "
        'e.g. "04:00:00" or "1-00:00:00" (unquoted, YAML reads it as a number) (got 14400).'
    )
    assert slurm_cfg("executor.slurm.time=1-00:00:00").executor.slurm.time == "1-00:00:00"


# ------------------------------------------------------------------ the generated sbatch script


def test_sbatch_script_carries_the_config(tmp_path: Path) -> None:
    cfg = slurm_cfg(
        "executor.workers=3",
        "executor.slurm.partition=cpu",
        "executor.slurm.cpus_per_task=2",
        "executor.slurm.mem_per_cpu_gb=3",
        "executor.slurm.time=02:30:00",
        "executor.slurm.sbatch_args={account: proj42}",
    )
    ex = build_slurm_executor(cfg, [fail_on_rank_1], str(tmp_path / "logs"), 5, "curate-annotate-demo")
    # The two calls datatrove's launch_job makes to write launch_script.slurm.
    script = ex.get_launch_file_contents(ex.get_sbatch_args(5), "launch_pickled_pipeline x")
    directives = [line for line in script.splitlines() if line.startswith("#SBATCH")]
    assert "#SBATCH --partition=cpu" in directives
    assert "#SBATCH --array=0-4%3" in directives  # 5 tasks, at most executor.workers at a time
    assert "#SBATCH --cpus-per-task=2" in directives
    assert "#SBATCH --mem-per-cpu=3G" in directives
    assert "#SBATCH --time=02:30:00" in directives
    assert "#SBATCH --job-name=curate-annotate-demo" in directives
    assert "#SBATCH --account=proj42" in directives
    assert f"#SBATCH --output={tmp_path / 'logs' / 'slurm_logs'}/%A_%a.out" in directives
    assert not any(d.startswith(("#SBATCH --qos", "#SBATCH --mail")) for d in directives)
    # The tasks run the code and pins of the venv that submitted them.
    assert f"source {Path(sys.prefix) / 'bin' / 'activate'}" in script.splitlines()


def test_sbatch_script_leaves_partition_to_the_cluster_by_default(tmp_path: Path) -> None:
    ex = build_slurm_executor(
        slurm_cfg("executor.slurm.env_command=module load python"), [fail_on_rank_1], str(tmp_path), 1, "j"
    )
    script = ex.get_launch_file_contents(ex.get_sbatch_args(1), "true")
    assert not any(line.startswith("#SBATCH --partition") for line in script.splitlines())
    assert "#SBATCH --array=0-0%1" in script.splitlines()
    assert "module load python" in script.splitlines()


# ------------------------------------------------------------------ the completion-marker wait


class ProcessArray:
    """Real processes as array tasks: each writes its rank's completion marker and exits 0, or
    exits with an error code and no marker. States come from their exit codes, the way
    slurmctld reports an array task's."""

    def __init__(self, logs: Path, plan: dict[int, tuple[float, int]]) -> None:
        (logs / "completions").mkdir(parents=True, exist_ok=True)
        self.procs = {}
        for index, (delay, code) in plan.items():
            write = f"open({str(logs / 'completions' / f'{index:05d}')!r}, 'w').close()" if code == 0 else "pass"
            code_s = f"import time, sys; time.sleep({delay}); {write}; sys.exit({code})"
            self.procs[index] = subprocess.Popen([sys.executable, "-c", code_s])

    def states(self, job_id: str) -> dict[int, TaskState]:
        out = {}
        for index, proc in self.procs.items():
            rc = proc.poll()
            out[index] = (
                TaskState("RUNNING") if rc is None else TaskState("COMPLETED" if rc == 0 else "FAILED", f"{rc}:0")
            )
        return out

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.kill()
            proc.wait()


def test_wait_returns_when_every_marker_exists(tmp_path: Path) -> None:
    tasks = ProcessArray(tmp_path, {0: (0.3, 0), 1: (1.0, 0), 2: (0.0, 0)})
    try:
        wait_for_completion(
            get_datafolder(str(tmp_path)), [0, 1, 2], ["7"], poll_s=0.1, timeout_s=60, states=tasks.states
        )
        assert all(p.poll() == 0 for p in tasks.procs.values())  # it waited for the slowest
        assert sorted(os.listdir(tmp_path / "completions")) == ["00000", "00001", "00002"]
    finally:
        tasks.stop()


def test_wait_names_the_failed_rank_and_its_logs(tmp_path: Path) -> None:
    tasks = ProcessArray(tmp_path, {0: (0.0, 0), 1: (0.3, 3), 2: (0.0, 0)})
    try:
        with pytest.raises(SlurmJobError) as err:
            wait_for_completion(
                get_datafolder(str(tmp_path)),
                [0, 1, 2],
                ["7"],
                poll_s=0.1,
                timeout_s=60,
                states=tasks.states,
                slurm_log=lambda job, index: f"/logs/{job}_{index}.out",
            )
    finally:
        tasks.stop()
    assert str(err.value) == (
        "Slurm job 7 failed: ranks 1 finished without a completion marker.\n"
        f"  rank 1 (array task 7_1, FAILED, exit code 3:0): {tmp_path}/logs/task_00001.log and /logs/7_1.out\n"
        "Fix: read the logs above, fix the cause and rerun; completed tasks are skipped"
    )


def test_wait_maps_array_indexes_to_the_ranks_still_to_run(tmp_path: Path) -> None:
    # A rerun: ranks 0 and 2 completed before, the array runs only [1, 3] as indexes 0 and 1.
    (tmp_path / "completions").mkdir()
    for rank in (0, 2):
        (tmp_path / "completions" / f"{rank:05d}").touch()
    tasks = ProcessArray(tmp_path, {0: (0.0, 9), 1: (0.0, 9)})  # index = process; both fail
    try:
        with pytest.raises(SlurmJobError) as err:
            wait_for_completion(
                get_datafolder(str(tmp_path)), [1, 3], ["8"], poll_s=0.1, timeout_s=60, states=tasks.states
            )
    finally:
        tasks.stop()
    assert str(err.value).splitlines()[:3] == [
        "Slurm job 8 failed: ranks 1, 3 finished without a completion marker.",
        f"  rank 1 (array task 8_0, FAILED, exit code 9:0): {tmp_path}/logs/task_00001.log",
        f"  rank 3 (array task 8_1, FAILED, exit code 9:0): {tmp_path}/logs/task_00003.log",
    ]


def test_wait_times_out_naming_the_key(tmp_path: Path) -> None:
    tasks = ProcessArray(tmp_path, {0: (0.0, 0), 1: (60.0, 0)})
    try:
        with pytest.raises(SlurmJobError) as err:
            wait_for_completion(
                get_datafolder(str(tmp_path)), [0, 1], ["9"], poll_s=0.1, timeout_s=1.0, states=tasks.states
            )
        assert tasks.procs[1].poll() is None  # still running: it was the timeout, not a failure
    finally:
        tasks.stop()
    assert str(err.value) == (
        "Slurm job 9 did not finish within executor.slurm.timeout_s=1 s: 1 of 2 tasks have no completion marker "
        "(ranks 1); the job was cancelled. Fix: raise executor.slurm.timeout_s (or check why the job waits: "
        "squeue -j 9) and rerun; completed tasks are skipped"
    )


# ------------------------------------------------------------------ a real Slurm cluster


@needs_cluster
def test_pending_array_states_expand_to_every_index() -> None:
    job = subprocess.run(
        ["sbatch", "--parsable", "--hold", "--array=0-3", "--wrap=true", "--output=/dev/null"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    try:
        states = scontrol_states(job)
        assert states is not None and sorted(states) == [0, 1, 2, 3]
        assert {s.state for s in states.values()} == {"PENDING"}
    finally:
        subprocess.run(["scancel", job], check=True)
    assert scontrol_states("999999999") is None  # a job slurmctld does not know


@needs_cluster
def test_real_array_failure_names_rank_and_logs_then_rerun_runs_only_it(
    tmp_path: Path, tasks_import_tests: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    logs = tmp_path / "logs"
    # max_array_size 2: three tasks go out as two arrays (ranks 0-1, then rank 2).
    ex = slurm_executor(
        slurm_cfg("executor.slurm.max_array_size=2"), [fail_on_rank_1], str(logs), 3, "curate-test-fail"
    )
    with pytest.raises(SlurmJobError) as err:
        ex.run()
    assert len(ex.job_ids) == 2
    job = ex.job_ids[0]
    lines = str(err.value).splitlines()
    assert lines[0] == f"Slurm job {job}, {ex.job_ids[1]} failed: ranks 1 finished without a completion marker."
    assert (
        lines[1]
        == f"  rank 1 (array task {job}_1, FAILED, exit code 1:0): {logs}/logs/task_00001.log and {logs}/slurm_logs/{job}_1.out"  # noqa: E501
    )
    assert "deliberate failure on rank 1" in (logs / "logs" / "task_00001.log").read_text()
    assert "deliberate failure on rank 1" in (logs / "slurm_logs" / f"{job}_1.out").read_text()
    assert sorted(os.listdir(logs / "completions")) == ["00000", "00002"]  # rank 2 ran in the second array
    script = (logs / "launch_script.slurm").read_text().splitlines()
    assert "#SBATCH --array=0-1%2" in script and "#SBATCH --job-name=curate-test-fail" in script

    monkeypatch.setenv("CURATE_TEST_FIXED", "1")
    again = slurm_executor(
        slurm_cfg("executor.slurm.max_array_size=2"), [fail_on_rank_1], str(logs), 3, "curate-test-fail"
    )
    again.run()
    assert (logs / "ranks_to_run.json").read_text() == "[1]"  # only the failed rank was resubmitted
    assert "#SBATCH --array=0-0%2" in (logs / "launch_script.slurm").read_text().splitlines()
    assert sorted(os.listdir(logs / "completions")) == ["00000", "00001", "00002"]
    assert (logs / "stats.json").is_file()


@needs_cluster
def test_refused_submission_names_the_settings(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    ex = slurm_executor(
        slurm_cfg("executor.slurm.partition=no-such-partition"),
        [fail_on_rank_1],
        str(tmp_path),
        1,
        "curate-test-refused",
    )
    with pytest.raises(SlurmJobError) as err:
        ex.run()
    assert str(err.value) == (
        "sbatch refused the job curate-test-refused (exit code 1; its message is above). Fix: check executor.slurm "
        "(partition, time, cpus_per_task, mem_per_cpu_gb, sbatch_args) against what the cluster offers (sinfo)"
    )
    assert "invalid partition specified: no-such-partition" in capfd.readouterr().err
    assert ex.job_ids == []


@needs_cluster
def test_real_array_timeout_cancels_the_job(tmp_path: Path, tasks_import_tests: None) -> None:
    ex = slurm_executor(slurm_cfg("executor.slurm.timeout_s=3"), [sleep_long], str(tmp_path), 1, "curate-test-timeout")
    with pytest.raises(SlurmJobError, match=r"did not finish within executor\.slurm\.timeout_s=3 s"):
        ex.run()
    deadline = time.monotonic() + 30
    while (states := scontrol_states(ex.job_ids[0])) and states[0].state != "CANCELLED" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert states is not None and states[0].state == "CANCELLED"


@needs_cluster
@pytest.mark.slow
def test_demo_on_slurm_matches_the_local_executor(tmp_path: Path, run_curate: Any) -> None:
    config = REPO / "configs" / "demo.yaml"
    local = run_curate(config, [DEMO_INPUT], tmp_path / "local")
    slurm = run_curate(config, [DEMO_INPUT], tmp_path / "slurm", ["executor.kind=slurm", "executor.slurm.poll_s=0.5"])

    stage = next((tmp_path / "slurm" / "_work").glob("annotate-*")) / "logs"
    script = (stage / "launch_script.slurm").read_text().splitlines()
    assert "#SBATCH --array=0-1%2" in script  # two input files, two array tasks
    assert "#SBATCH --job-name=curate-annotate-demo" in script
    assert sorted(os.listdir(stage / "completions")) == ["00000", "00001"]
    assert len(list((stage / "slurm_logs").glob("*_*.out"))) == 2  # the tasks really ran under Slurm

    assert slurm.kept()["id"].to_list() == local.kept()["id"].to_list()
    assert [(s["path"], s["rows"], s["sha256"]) for s in slurm.manifest["shards"]] == [
        (s["path"], s["rows"], s["sha256"]) for s in local.manifest["shards"]
    ]
    # Everything counted per reason is the same; only the stages' timings differ.
    assert without_timings(slurm.manifest["counts"]) == without_timings(local.manifest["counts"])


def without_timings(counts: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in counts.items() if key != "stages"}

"""`executor.kind: slurm`: a pipeline stage as a Slurm job array, through datatrove.

datatrove's `SlurmPipelineExecutor` writes the sbatch script (`logging_dir/launch_script.slurm`),
pickles the executor for the array tasks and submits; it returns as soon as sbatch does. curate
needs the stage's output before the next stage, so `CurateSlurmExecutor.run()` also waits:
until every task's completion marker (`logging_dir/completions/NNNNN`, written by datatrove
when a task succeeds) exists, or until Slurm says the array finished without some of them,
or until `executor.slurm.timeout_s`. The failure message names the job, the failed ranks,
their Slurm states and both log files of each.

Job states come from `scontrol show job`, not `sacct`: sacct needs an accounting database
that many small clusters (and the localhost one in scripts/slurm_localhost.sh) do not run,
while slurmctld keeps finished jobs for MinJobAge (300 s by default), far longer than a poll.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datatrove.executor.slurm import SlurmPipelineExecutor
from datatrove.io import DataFolder
from datatrove.utils.stats import PipelineStats

from curate.core.errors import ConfigError, CurateError

if TYPE_CHECKING:  # annotations only: the recipe is assembled above the stages (curate.config)
    from curate.config import CurateConfig

# Slurm job states after which a task will not run again (squeue/scontrol spelling).
TERMINAL_STATES = frozenset(
    {
        "COMPLETED",
        "FAILED",
        "CANCELLED",
        "TIMEOUT",
        "NODE_FAIL",
        "OUT_OF_MEMORY",
        "PREEMPTED",
        "BOOT_FAIL",
        "DEADLINE",
        "SPECIAL_EXIT",
    }
)


class SlurmJobError(CurateError):
    """The array finished (or timed out) without every task's completion marker."""


@dataclass(frozen=True)
class TaskState:
    """One array task as slurmctld reports it."""

    state: str
    exit_code: str = ""
    stdout: str = ""


# (job id) -> {array index: state}; None when slurmctld no longer knows the job (purged
# after MinJobAge) or cannot be asked.
StateFn = Callable[[str], "dict[int, TaskState] | None"]


def check_slurm_available() -> None:
    """kind=slurm needs Slurm's client commands on this machine: fail before any work if not."""
    missing = [cmd for cmd in ("sbatch", "scontrol", "scancel") if shutil.which(cmd) is None]
    if missing:
        raise ConfigError(
            f"executor.kind is 'slurm' but {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not on PATH. "
            "Fix: run curate on a Slurm login node (or install Slurm's client commands), "
            "or set executor.kind to local"
        )


def slurm_env_command(cfg: CurateConfig) -> str:
    """The shell line each array task runs first: the config's, or activating curate's own venv."""
    if cfg.executor.slurm.env_command:
        return cfg.executor.slurm.env_command
    activate = Path(sys.prefix) / "bin" / "activate"
    if activate.is_file():
        return f"source {activate}"
    # Not a venv (a system or conda Python): put its scripts first so launch_pickled_pipeline
    # and python resolve to this installation.
    return f"export PATH={Path(sys.prefix) / 'bin'}:$PATH"


def slurm_executor(
    cfg: CurateConfig, pipeline: list[Any], logging_dir: str, tasks: int, job_name: str
) -> CurateSlurmExecutor:
    """A datatrove Slurm executor configured from `cfg.executor`, whose run() submits the array
    and returns only when every task completed (or raises SlurmJobError)."""
    check_slurm_available()
    return build_slurm_executor(cfg, pipeline, logging_dir, tasks, job_name)


def build_slurm_executor(
    cfg: CurateConfig, pipeline: list[Any], logging_dir: str, tasks: int, job_name: str
) -> CurateSlurmExecutor:
    """slurm_executor without the check for Slurm's commands: building one submits nothing, so
    its sbatch script can be generated and read on any machine."""
    scfg = cfg.executor.slurm
    return CurateSlurmExecutor(
        pipeline=pipeline,
        tasks=tasks,
        # The array's concurrency limit (sbatch --array=0-N%workers): the same knob as the
        # local executor's process count.
        workers=min(cfg.executor.workers, tasks),
        time=scfg.time,
        partition=scfg.partition,
        qos=scfg.qos,
        cpus_per_task=scfg.cpus_per_task,
        mem_per_cpu_gb=scfg.mem_per_cpu_gb,
        job_name=job_name,
        env_command=slurm_env_command(cfg),
        sbatch_args=dict(scfg.sbatch_args),
        max_array_size=scfg.max_array_size,
        logging_dir=logging_dir,
        skip_completed=True,
        # No mail from curate's jobs unless the config's sbatch_args ask for it.
        mail_type="NONE",
        poll_s=scfg.poll_s,
        timeout_s=scfg.timeout_s,
    )


class CurateSlurmExecutor(SlurmPipelineExecutor):
    """datatrove's Slurm executor whose run() blocks until the array is done (see module doc)."""

    def __init__(self, *args: Any, poll_s: float, timeout_s: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.poll_s = poll_s
        self.timeout_s = timeout_s
        self.job_ids: list[str] = []
        self.job_id_retriever = _JobIdRecorder(self.job_ids)

    def get_sbatch_args(self, max_array: int = 1) -> dict:  # type: ignore[override]
        args = super().get_sbatch_args(max_array)
        # An empty partition would be written as a bare `#SBATCH --partition`, which sbatch
        # rejects: leave the choice to the cluster's default instead.
        if not args.get("partition"):
            args.pop("partition", None)
        return args

    def launch_merge_stats(self) -> None:
        # datatrove submits a second job (afterok) to merge stats; on a failed array it would
        # stay pending forever. The driver merges them after the wait instead.
        return None

    def run(self) -> PipelineStats | None:  # type: ignore[override]
        if "SLURM_ARRAY_TASK_ID" in os.environ:
            # Inside an array task (launch_pickled_pipeline): run this task's rank(s).
            return super().run()
        ranks = self.get_incomplete_ranks()
        self.job_ids.clear()
        try:
            self.launch_job()
        except subprocess.CalledProcessError as exc:
            cancel_jobs(self.job_ids)  # arrays submitted before the refused one
            # sbatch printed its reason on stderr (datatrove does not capture it).
            raise SlurmJobError(
                f"sbatch refused the job {self.job_name} (exit code {exc.returncode}; its message is above). "
                "Fix: check executor.slurm (partition, time, cpus_per_task, mem_per_cpu_gb, sbatch_args) "
                "against what the cluster offers (sinfo)"
            ) from None
        if ranks:
            try:
                wait_for_completion(
                    self.logging_dir,
                    ranks,
                    self.job_ids,
                    slots=[ranks[i : i + self.max_array_size] for i in range(0, len(ranks), self.max_array_size)],
                    poll_s=self.poll_s,
                    timeout_s=self.timeout_s,
                    slurm_log=lambda job, index: os.path.join(self.slurm_logs_folder, f"{job}_{index}.out"),
                )
            except BaseException:
                # A failure, a timeout or curate itself interrupted: leave no array behind.
                cancel_jobs(self.job_ids)
                raise
        return merge_stats(self.logging_dir)


class _JobIdRecorder:
    """datatrove's job_id_retriever hook, recording every array it submits (several when
    tasks > max_array_size). Module-level so the pickled executor stays importable."""

    def __init__(self, sink: list[str]) -> None:
        self.sink = sink

    def __call__(self, sbatch_output: str) -> str:
        job_id = sbatch_output.split()[-1].split(";")[0]
        self.sink.append(job_id)
        return job_id


def scontrol_states(job_id: str) -> dict[int, TaskState] | None:
    """Array index -> state of one submitted array, from `scontrol show job -o`. A pending
    remainder is one record with a range (`ArrayTaskId=2-9%2`): every index in it is pending."""
    proc = subprocess.run(["scontrol", "show", "job", "-o", str(job_id)], capture_output=True, text=True)
    if proc.returncode != 0:
        return None
    states: dict[int, TaskState] = {}
    for line in proc.stdout.splitlines():
        fields = dict(item.split("=", 1) for item in line.split() if "=" in item)
        spec = fields.get("ArrayTaskId", "").split("%")[0]
        state = TaskState(fields.get("JobState", "UNKNOWN"), fields.get("ExitCode", ""), fields.get("StdOut", ""))
        for part in filter(None, spec.split(",")):
            lo, _, hi = part.partition("-")
            step = 1
            if ":" in hi:
                hi, step_s = hi.split(":")
                step = int(step_s)
            for index in range(int(lo), int(hi or lo) + 1, step):
                states[index] = state
    return states


def wait_for_completion(
    logging_dir: DataFolder,
    ranks: Sequence[int],
    job_ids: Sequence[str],
    *,
    slots: Sequence[Sequence[int]] | None = None,
    poll_s: float,
    timeout_s: float,
    states: StateFn = scontrol_states,
    slurm_log: Callable[[str, int], str] | None = None,
) -> None:
    """Block until `completions/NNNNN` exists under `logging_dir` for every rank in `ranks`.

    `job_ids[k]` is the array that runs `slots[k]` (array index i runs `slots[k][i]`; one array
    running `ranks` in order when `slots` is None). Raises SlurmJobError when every array has
    reached a terminal state (or is gone) with markers missing, or after `timeout_s`."""
    slots = [list(ranks)] if slots is None else [list(s) for s in slots]
    if len(slots) != len(job_ids):
        raise ValueError(f"{len(job_ids)} job ids for {len(slots)} groups of ranks")
    wanted = {f"completions/{rank:05d}" for rank in ranks}
    deadline = time.monotonic() + timeout_s
    while True:
        if wanted <= _markers(logging_dir):
            return
        snapshot = {job: states(job) for job in job_ids}
        if all(_finished(s) for s in snapshot.values()):
            # A task writes its marker before it exits; read once more so a marker written
            # between the listing above and the state query is not taken for a failure.
            done = _markers(logging_dir)
            if wanted <= done:
                return
            raise SlurmJobError(_failure_message(logging_dir, job_ids, slots, snapshot, done, slurm_log))
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            done = _markers(logging_dir)
            missing = sorted(r for r in ranks if f"completions/{r:05d}" not in done)
            raise SlurmJobError(
                f"Slurm job {', '.join(job_ids)} did not finish within executor.slurm.timeout_s={timeout_s:g} s: "
                f"{len(missing)} of {len(ranks)} tasks have no completion marker (ranks {_short(missing)}); "
                f"the job was cancelled. Fix: raise executor.slurm.timeout_s (or check why the job waits: "
                f"squeue -j {job_ids[0]}) and rerun; completed tasks are skipped"
            )
        time.sleep(min(poll_s, remaining))


def _markers(logging_dir: DataFolder) -> set[str]:
    if not logging_dir.isdir("completions"):
        return set()
    return set(logging_dir.list_files("completions"))


def _finished(states: dict[int, TaskState] | None) -> bool:
    return states is None or all(s.state in TERMINAL_STATES for s in states.values())


def _failure_message(
    logging_dir: DataFolder,
    job_ids: Sequence[str],
    slots: Sequence[Sequence[int]],
    snapshot: dict[str, dict[int, TaskState] | None],
    done: set[str],
    slurm_log: Callable[[str, int], str] | None,
) -> str:
    lines = []
    failed = []
    for job, slot in zip(job_ids, slots):
        for index, rank in enumerate(slot):
            if f"completions/{rank:05d}" in done:
                continue
            failed.append(rank)
            task = (snapshot.get(job) or {}).get(index)
            state = f"{task.state}, exit code {task.exit_code}" if task else "state unknown"
            logs = [logging_dir.resolve_paths(f"logs/task_{rank:05d}.log")]
            if task and task.stdout:
                logs.append(task.stdout)
            elif slurm_log is not None:
                logs.append(slurm_log(job, index))
            lines.append(f"  rank {rank} (array task {job}_{index}, {state}): {' and '.join(logs)}")
    return (
        f"Slurm job {', '.join(job_ids)} failed: ranks {_short(failed)} finished without a completion marker.\n"
        + "\n".join(lines)
        + "\nFix: read the logs above, fix the cause and rerun; completed tasks are skipped"
    )


def _short(ranks: Sequence[int], limit: int = 20) -> str:
    text = ", ".join(str(r) for r in ranks[:limit])
    return text + (f" and {len(ranks) - limit} more" if len(ranks) > limit else "")


def cancel_jobs(job_ids: Sequence[str]) -> None:
    """Best effort: stop what is left of the arrays (a timeout, or an error in the driver)."""
    if job_ids and shutil.which("scancel"):
        subprocess.run(["scancel", *job_ids], capture_output=True)


def merge_stats(logging_dir: DataFolder) -> PipelineStats:
    """Sum the tasks' stats into `stats.json`, as datatrove's local executor does."""
    import json

    total = PipelineStats()
    if logging_dir.isdir("stats"):
        for name in sorted(logging_dir.list_files("stats")):
            with logging_dir.open(name, "rt") as f:
                total += PipelineStats.from_json(json.load(f))
    with logging_dir.open("stats.json", "wt") as f:
        total.save_to_disk(f)
    return total

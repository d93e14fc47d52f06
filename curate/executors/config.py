"""The `executor` section: where work runs (local, ray, slurm) and with what resources."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from curate.core.section import Section


class ExecutorConfig(Section):
    # local: datatrove's multiprocess executor on this machine. ray: datatrove's Ray executor
    # for annotate and Ray tasks for dedup's phases (see ray_address). slurm: an sbatch array
    # for annotate (see the slurm section). The same config gives the same output on each.
    kind: Literal["local", "ray", "slurm"] = "local"
    # Parallel tasks; each input file is one task, so more workers than files is waste.
    workers: int = Field(default=2, ge=1, le=1024)
    # kind ray: null starts a private Ray on this machine with `workers` CPUs (stopped when
    # curate exits); "auto" joins the cluster that `ray start --head` started here, and
    # "HOST:6379" or "ray://HOST:10001" joins a remote one. Workers read and write the output
    # folder, so on a multi-node cluster it must be on a filesystem every node mounts.
    ray_address: str | None = None
    # kind ray, private Ray only: 256 MiB of object store. curate passes only paths and
    # counts between tasks (data goes through Parquet files), while Ray's default reserves 30%
    # of RAM in /dev/shm, which a small shared machine cannot spare.
    ray_object_store_mb: int = Field(default=256, ge=80, le=1_000_000)
    # kind ray: memory Ray reserves per task so a node never runs more tasks than its RAM
    # holds. 2 GB (datatrove's default): an annotate task (fastText models, one record at a
    # time) stays under 1 GB, a dedup task under ~500 MB (curate/dedup/partitioned.py).
    ray_memory_per_task_gb: float = Field(default=2.0, gt=0, le=1024)
    # Used when kind is slurm; the class follows (the lambda defers the name lookup).
    slurm: SlurmExecutorConfig = Field(default_factory=lambda: SlurmExecutorConfig())


class SlurmExecutorConfig(Section):
    """`executor.kind: slurm`: annotate runs as one sbatch array (one array task per input
    file, at most `executor.workers` at a time); curate waits for every task's completion
    marker, then runs the later stages itself. Needs a filesystem shared by the submitting
    machine and the nodes (inputs, output dir, the venv)."""

    # "": the cluster's default partition (no --partition line). Set it on clusters without one.
    partition: str = ""
    # "": the cluster's default QOS. datatrove would send "normal", which clusters with QOS
    # enforcement may reject.
    qos: str = ""
    # Per array task (one input file). 4 h: a 1 GB Common Crawl WARC (~40k pages) takes about
    # 15 min at the 50 pages/s one process extracts here, so 16x headroom for slow nodes.
    time: str = Field(default="04:00:00", pattern=r"^(\d+-)?\d+(:\d{2}){0,2}$")
    # 1: a datatrove task is one process on one core; more only buys memory on clusters that
    # grant memory per CPU.
    cpus_per_task: int = Field(default=1, ge=1, le=256)
    # 2 GB (datatrove's default): an annotate task (fastText language and quality models, one
    # record at a time) peaked at ~390 MB RSS on the demo sample; 5x headroom for big pages.
    mem_per_cpu_gb: int = Field(default=2, ge=1, le=1024)
    # Extra #SBATCH directives, e.g. {account: myproj, constraint: cpu}; they override the above.
    sbatch_args: dict[str, str] = Field(default_factory=dict)
    # "": activate the virtual environment curate runs from (sys.prefix/bin/activate), so the
    # tasks run the same code and pins. Otherwise a shell line run before each task.
    env_command: str = ""
    # 1001: Slurm's default MaxArraySize; more tasks are submitted as several arrays.
    max_array_size: int = Field(default=1001, ge=1)
    # 5 s between checks of the completion markers and job states: one folder listing and one
    # scontrol call, negligible for slurmctld, and at most 5 s added to a run.
    poll_s: float = Field(default=5.0, ge=0.1, le=60.0)
    # 24 h for the whole array, queue time included; then curate cancels the job and fails,
    # naming this key. Reruns skip the tasks that completed.
    timeout_s: float = Field(default=86_400.0, gt=0)

    @field_validator("time", mode="before")
    @classmethod
    def _time_is_text(cls, value: Any) -> Any:
        # YAML 1.1 reads an unquoted 04:00:00 as the number 14400 (base 60); refuse to guess.
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            raise ValueError(
                'write the time limit as a quoted Slurm time, e.g. "04:00:00" or "1-00:00:00" (unquoted, YAML reads '
                "it as a number)"
            )
        return value

"""Where pipelines run. Pipeline blocks say what; executors say where (datatrove's split).

`local` is datatrove's multiprocess executor with quieter console logging: datatrove prints
every task's stats at INFO to stderr, which buries curate's own progress display. Full logs
still go to each task's log file under the stage's `logs/` folder.

`ray` is datatrove's Ray executor with the same quieter logs (the driver must be connected:
curate.executors.ray_cluster.ensure_ray), `slurm` an sbatch array (curate.executors.slurm). `build_executor`
picks one from `executor.kind`; the pipeline, and so the output, is the same for all."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

import datatrove.executor.base as dt_base
from datatrove.executor import LocalPipelineExecutor
from datatrove.executor.base import PipelineExecutor
from datatrove.pipeline.base import PipelineStep
from datatrove.utils import logging as dt_logging
from loguru import logger

if TYPE_CHECKING:  # annotations only: the recipe is assembled above the stages (curate.config)
    from curate.config import CurateConfig


CONSOLE_LEVEL_ENV = "CURATE_LOG_LEVEL"  # e.g. INFO to see datatrove's per-task stats


def _console_level() -> str:
    return os.environ.get(CONSOLE_LEVEL_ENV, "WARNING").upper()


def _not_user_error(record: dict) -> bool:
    """Console filter: datatrove logs a failed task's exception with its traceback; when it is
    a CurateError (an input that cannot be read, a full disk) the CLI prints its one-line
    message and the fix, and the traceback stays in the task's log file only."""
    from curate.core.errors import CurateError

    exc = record["exception"]
    return not (exc is not None and exc.type is not None and issubclass(exc.type, CurateError))


def _add_task_logger(logging_dir, rank: int, local_rank: int = 0, node_rank: int = -1):
    logger.remove()
    logfile = logging_dir.open(f"logs/task_{rank:05d}.log", "w")
    fmt = "{time:YYYY-MM-DD HH:mm:ss.SSS} | {level: <8} | {name}:{function}:{line} - {message}"
    logger.add(sys.stderr, level=_console_level(), format=fmt, colorize=False, filter=_not_user_error)
    logger.add(logfile, level="DEBUG", format=fmt, colorize=False)
    return logfile


def _close_task_logger(logfile) -> None:
    logger.complete()
    quiet_console()
    logfile.close()


def quiet_console() -> None:
    logger.remove()
    logger.add(sys.stderr, level=_console_level(), colorize=False, filter=_not_user_error)


class QuietLocalExecutor(LocalPipelineExecutor):
    def _run_for_rank(self, rank: int, local_rank: int = 0):  # type: ignore[override]
        # Runs in the worker process: patch there, where datatrove looks the names up.
        dt_base.add_task_logger = _add_task_logger
        dt_base.close_task_logger = _close_task_logger
        return super()._run_for_rank(rank, local_rank)

    def run(self):  # type: ignore[override]
        quiet_console()
        try:
            return super().run()
        finally:
            dt_logging.setup_default_logger() if _console_level() == "DEBUG" else quiet_console()


def _quiet_ray_class() -> type[PipelineExecutor]:
    """Defined on first use so that `import curate.executors.build` never imports Ray."""
    import datatrove.executor.ray as dt_ray
    from datatrove.executor.ray import RayPipelineExecutor

    class _QuietRay(RayPipelineExecutor):
        def _run_for_rank(self, rank: int, local_rank: int = 0, node_rank: int = -1):  # type: ignore[override]
            # Runs in the Ray worker: patch there, where datatrove looks the names up.
            dt_ray.add_task_logger = _add_task_logger
            dt_ray.close_task_logger = _close_task_logger
            return super()._run_for_rank(rank, local_rank, node_rank)

        def run(self):  # type: ignore[override]
            quiet_console()
            try:
                return super().run()
            finally:
                quiet_console()

    return _QuietRay


def check_executor(cfg: CurateConfig) -> None:
    """Before any work: the configured executor can run (kind ray: ray imports and the
    cluster answers; this also starts the private Ray that later stages share; kind slurm:
    Slurm's client commands are on PATH)."""
    if cfg.executor.kind == "ray":
        from curate.executors.ray_cluster import ensure_ray

        ensure_ray(cfg.executor)
    elif cfg.executor.kind == "slurm":
        from curate.executors.slurm import check_slurm_available

        check_slurm_available()


def build_executor(
    cfg: CurateConfig, pipeline: list[PipelineStep], logging_dir: str, tasks: int, job_name: str
) -> PipelineExecutor:
    """The executor `executor.kind` names, running `pipeline` as `tasks` datatrove tasks with at
    most `executor.workers` at a time; reruns skip completed tasks (markers in logging_dir)."""
    kind = cfg.executor.kind
    workers = min(cfg.executor.workers, tasks)
    if kind == "local":
        return QuietLocalExecutor(
            pipeline=pipeline, tasks=tasks, workers=workers, logging_dir=logging_dir, skip_completed=True
        )
    if kind == "ray":
        from curate.executors.ray_cluster import ensure_ray

        ensure_ray(cfg.executor)
        # datatrove warns on every run that a local logging_dir must be shared by all nodes;
        # the README says so once (Running on a cluster).
        logger.disable("datatrove.executor.ray")
        try:
            return _quiet_ray_class()(
                pipeline=pipeline,
                tasks=tasks,
                workers=workers,
                logging_dir=logging_dir,
                skip_completed=True,
                cpus_per_task=1,
                mem_per_cpu_gb=cfg.executor.ray_memory_per_task_gb,
            )
        finally:
            logger.enable("datatrove.executor.ray")
    if kind == "slurm":
        from curate.executors.slurm import slurm_executor

        return slurm_executor(cfg, pipeline, logging_dir, tasks, job_name)
    raise ValueError(f"executor.kind {kind!r} has no executor")  # the config's Literal forbids it

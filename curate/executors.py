"""Where pipelines run. Pipeline blocks say what; executors say where (datatrove's split).

`local` is datatrove's multiprocess executor with quieter console logging: datatrove prints
every task's stats at INFO to stderr, which buries curate's own progress display. Full logs
still go to each task's log file under the stage's `logs/` folder."""

from __future__ import annotations

import os
import sys

import datatrove.executor.base as dt_base
from datatrove.executor import LocalPipelineExecutor
from datatrove.utils import logging as dt_logging
from loguru import logger

CONSOLE_LEVEL_ENV = "CURATE_LOG_LEVEL"  # e.g. INFO to see datatrove's per-task stats


def _console_level() -> str:
    return os.environ.get(CONSOLE_LEVEL_ENV, "WARNING").upper()


def _add_task_logger(logging_dir, rank: int, local_rank: int = 0, node_rank: int = -1):
    logger.remove()
    logfile = logging_dir.open(f"logs/task_{rank:05d}.log", "w")
    fmt = "{time:YYYY-MM-DD HH:mm:ss.SSS} | {level: <8} | {name}:{function}:{line} - {message}"
    logger.add(sys.stderr, level=_console_level(), format=fmt, colorize=False)
    logger.add(logfile, level="DEBUG", format=fmt, colorize=False)
    return logfile


def _close_task_logger(logfile) -> None:
    logger.complete()
    quiet_console()
    logfile.close()


def quiet_console() -> None:
    logger.remove()
    logger.add(sys.stderr, level=_console_level(), colorize=False)


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

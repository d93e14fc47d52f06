"""Where dedup's (and generate's) parallel steps run: a local process pool or Ray tasks.

Both take module-level functions and tuples of picklable arguments (paths, small dataclasses)
and return their results in job order; data moves through files, never through the pool.
`executor.kind: ray` runs every job as a Ray task (one CPU each, at most `executor.workers`
in flight), so the phases spread over the cluster's nodes; any other kind uses the local pool.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from curate.executors.config import ExecutorConfig


class Workers:
    """A process pool started on first use and shared by the phases of a run. Spawned, not
    forked: Prefect runs tasks in threads, and forking a threaded process can deadlock.
    Starting a worker costs ~1-2 s (imports), so small inputs run inline."""

    def __init__(self, count: int) -> None:
        self.count = count
        self._pool: ProcessPoolExecutor | None = None

    @staticmethod
    def from_config(cfg: ExecutorConfig) -> Workers:
        return RayWorkers(cfg) if cfg.kind == "ray" else Workers(cfg.workers)

    def map(self, fn: Callable[..., Any], jobs: Iterable[tuple[Any, ...]], parallel: bool = True) -> list[Any]:
        jobs = list(jobs)
        if self.count <= 1 or len(jobs) <= 1 or not parallel:
            return [fn(*job) for job in jobs]
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=self.count, mp_context=mp.get_context("spawn"))
        return list(self._pool.map(fn, *zip(*jobs)))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _call(fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[int, Any]:
    # The worker's pid comes back with the result: RayWorkers.pids shows how many processes
    # (and so, on a cluster, which nodes' workers) shared a phase.
    return os.getpid(), fn(*args)


class RayWorkers(Workers):
    """Jobs as Ray tasks. Unlike the local pool, a single job also goes to Ray when the map is
    parallel: on a cluster the driver's machine may be the wrong place for the work."""

    def __init__(self, cfg: ExecutorConfig) -> None:
        super().__init__(cfg.workers)
        self.memory = int(cfg.ray_memory_per_task_gb * 1024**3)
        self.cfg = cfg
        self.pids: set[int] = set()
        self._remote: Any = None

    def map(self, fn: Callable[..., Any], jobs: Iterable[tuple[Any, ...]], parallel: bool = True) -> list[Any]:
        jobs = list(jobs)
        if not jobs or not parallel:
            return [fn(*job) for job in jobs]
        from curate.executors.ray_cluster import ensure_ray, ray_module

        ensure_ray(self.cfg)
        ray = ray_module()
        if self._remote is None:
            self._remote = ray.remote(_call).options(num_cpus=1, memory=self.memory, max_retries=1)
        results: list[Any] = [None] * len(jobs)
        pending: dict[Any, int] = {}
        queue = iter(enumerate(jobs))
        # At most `workers` tasks in flight: the config's parallelism, whatever the cluster size.
        for i, job in queue:
            pending[self._remote.remote(fn, job)] = i
            if len(pending) >= self.count:
                break
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                pid, results[pending.pop(ref)] = ray.get(ref)
                self.pids.add(pid)
            for i, job in queue:
                pending[self._remote.remote(fn, job)] = i
                break
        return results

    def close(self) -> None:
        self._remote = None

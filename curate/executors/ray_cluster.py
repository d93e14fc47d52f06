"""Connecting to Ray for `executor.kind: ray`, once per process, and failing before any work.

`executor.ray_address` null starts a private Ray on this machine sized by `executor.workers`
(Ray stops it when the process exits); "auto" or an address joins a running cluster. When
the calling process already connected (a test fixture, a notebook, a Ray job), curate uses
that connection as it is. Only paths and counts travel through Ray: documents, signature
tables and edges go through Parquet files, so every node must see the output folder."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

from curate.core.errors import ConfigError, DependencyError

if TYPE_CHECKING:
    from curate.executors.config import ExecutorConfig

# Seconds to wait for a TCP answer from `HOST:PORT` before calling ray.init, which itself
# retries a dead address for about a minute before failing.
PROBE_TIMEOUT_S = 5.0


def ray_module():  # type: ignore[no-untyped-def]
    try:
        import ray
    except ImportError as exc:
        raise DependencyError(
            f"executor.kind is ray but the package ray cannot be imported ({exc}). Fix: run `make setup` (ray is in "
            "requirements.lock), or set executor.kind=local"
        ) from None
    return ray


def ensure_ray(cfg: ExecutorConfig) -> None:
    """Connect this process to Ray as `cfg` says, unless it is connected already."""
    ray = ray_module()
    if ray.is_initialized():
        return
    address = cfg.ray_address
    if address is None:
        ray.init(
            num_cpus=cfg.workers,
            object_store_memory=cfg.ray_object_store_mb * 1024 * 1024,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
        return
    if address != "auto" and not address.startswith("ray://"):
        _probe(address)
    try:
        ray.init(address=address, log_to_driver=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ConfigError(_unreachable(address, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)) from None


def _probe(address: str) -> None:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(
            f"executor.ray_address {address!r} is not HOST:PORT. Fix: set it to the address `ray start --head` "
            "printed (e.g. 10.0.0.5:6379), to auto, or to null for a private Ray"
        )
    try:
        with socket.create_connection((host, int(port)), timeout=PROBE_TIMEOUT_S):
            pass
    except OSError as exc:
        raise ConfigError(_unreachable(address, str(exc))) from None


def _unreachable(address: str, why: str) -> str:
    return (
        f"executor.ray_address {address!r}: no Ray cluster answers there ({why}). "
        "Fix: start one with `ray start --head` and use the address it prints (or auto on that machine), or set "
        "executor.ray_address to null for a private Ray on this machine"
    )


def shutdown_if_started() -> None:
    """For benchmarks that compare worker counts in one process: a private Ray is sized at
    start, so a different `workers` needs a fresh one."""
    try:
        import ray
    except ImportError:
        return
    if ray.is_initialized():
        ray.shutdown()

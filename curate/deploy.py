"""`curate deploy` and `curate serve`: the deployments of prefect.yaml on a Prefect server.

deploy: registers them as prefect.yaml defines them (the file stays the one definition),
    after creating their process work pool when missing; a worker
    (`prefect worker start --pool curate-process`) then runs them, schedules included.
serve:  one long-lived local process that serves the same deployments with their schedules
    (`prefect.serve`), no work pool or worker needed: the simplest setup on one machine.

Both talk to the server in PREFECT_API_URL (a local `prefect server start`, or any other)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import yaml

from curate.core.errors import ConfigError

PREFECT_FILE = "prefect.yaml"
# The checkout that holds this package; an installed curate (site-packages) has no
# prefect.yaml there, so deployments come from the checkout in the working directory.
_PACKAGE_PARENT = Path(__file__).resolve().parent.parent
REPO = _PACKAGE_PARENT if (_PACKAGE_PARENT / PREFECT_FILE).is_file() else Path.cwd()


def load_deployments(prefect_file: Path, names: list[str] | None = None) -> list[dict[str, Any]]:
    """The deployments of prefect.yaml (YAML anchors resolved), all or those in `names`."""
    if not prefect_file.is_file():
        raise ConfigError(
            f"{prefect_file} not found. Fix: run from a curate checkout (its prefect.yaml and flows/ define the "
            "deployments)"
        )
    data = yaml.safe_load(prefect_file.read_text(encoding="utf-8")) or {}
    deployments = list(data.get("deployments") or [])
    known = [d["name"] for d in deployments]
    unknown = [n for n in names or [] if n not in known]
    if unknown:
        raise ConfigError(f"no deployment named {', '.join(unknown)} in {prefect_file}; it defines {', '.join(known)}")
    return [d for d in deployments if not names or d["name"] in names]


async def _ensure_pools(pools: dict[str, str]) -> list[str]:
    """Create the missing work pools (name -> type); returns the names created."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound

    created = []
    async with get_client() as client:
        for name, kind in pools.items():
            try:
                await client.read_work_pool(name)
            except ObjectNotFound:
                await client.create_work_pool(WorkPoolCreate(name=name, type=kind))
                created.append(name)
    return created


def ensure_work_pools(deployments: list[dict[str, Any]]) -> list[str]:
    pools = {
        d["work_pool"]["name"]: d["work_pool"].get("type", "process")
        for d in deployments
        if d.get("work_pool", {}).get("name")
    }
    return asyncio.run(_ensure_pools(pools)) if pools else []


def deploy(names: list[str] | None = None, repo: Path = REPO, prefect_file: str = PREFECT_FILE) -> list[str]:
    """Register the deployments of `repo`/prefect.yaml (all, or `names`) with the server in
    PREFECT_API_URL, creating their work pools when missing. Returns their full names
    (flow-name/deployment-name).

    What `prefect --no-prompt deploy --all` does with the file (tested beside it), through the
    Python API so that a subset can be named and the pool is created when missing."""
    from prefect.flows import Flow

    path = Path(repo) / prefect_file
    deployments = load_deployments(path, names)
    ensure_work_pools(deployments)
    registered = []
    for spec in deployments:
        # A local source: the pull step is set_working_directory to this checkout, as the
        # build step of prefect.yaml records it for `prefect deploy`.
        flow = Flow.from_source(source=str(Path(repo).resolve()), entrypoint=spec["entrypoint"])
        _to_deployment(flow, spec, with_pool=True).apply()
        registered.append(f"{flow.name}/{spec['name']}")
    return registered


def _to_deployment(flow: Any, spec: dict[str, Any], with_pool: bool) -> Any:
    """A prefect.yaml deployment entry as a RunnerDeployment of `flow`. with_pool: for a
    worker (`deploy`), with the entry's work pool; `serve` runs the flow itself and has none."""
    pool = (spec.get("work_pool") or {}) if with_pool else {}
    return flow.to_deployment(
        name=spec["name"],
        parameters=spec.get("parameters") or {},
        schedules=_schedules(spec),
        concurrency_limit=spec.get("concurrency_limit"),
        description=spec.get("description"),
        tags=spec.get("tags"),
        work_pool_name=pool.get("name"),
        work_queue_name=pool.get("work_queue_name"),
        job_variables=pool.get("job_variables") or None,
    )


def _schedules(spec: dict[str, Any]) -> list[Any]:
    from prefect.schedules import Cron, Interval

    out = []
    for item in spec.get("schedules") or []:
        if not item.get("active", True):
            continue
        if "cron" in item:
            out.append(Cron(item["cron"], timezone=item.get("timezone")))
        elif "interval" in item:
            out.append(Interval(item["interval"], timezone=item.get("timezone")))
        else:
            raise ConfigError(
                f"deployment {spec['name']}: only cron and interval schedules are served; got {sorted(item)}"
            )
    return out


def runner_deployments(
    names: list[str] | None = None, repo: Path = REPO, prefect_file: str = PREFECT_FILE
) -> list[Any]:
    """prefect.yaml's deployments as RunnerDeployments for prefect.serve."""
    from prefect.flows import load_flow_from_entrypoint

    specs = load_deployments(Path(repo) / prefect_file, names)
    return [
        _to_deployment(load_flow_from_entrypoint(str(Path(repo) / spec["entrypoint"])), spec, with_pool=False)
        for spec in specs
    ]


def serve(
    names: list[str] | None = None, repo: Path = REPO, prefect_file: str = PREFECT_FILE, limit: int | None = None
) -> None:
    """Serve the deployments until interrupted. Runs execute in this machine's repo (the
    parameters' relative paths are relative to it)."""
    from prefect import serve as prefect_serve

    os.chdir(repo)  # flow runs are subprocesses of this one and inherit its directory
    prefect_serve(*runner_deployments(names, repo, prefect_file), limit=limit)

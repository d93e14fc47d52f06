"""The `curate-corpus` Prefect flow: flows/pipeline.py's run (plan -> the stages of
flows.stages.STAGES in order -> shards + manifest + ledger -> summary -> release) with each step a
Prefect task, retried on transient errors by the same policy, plus the summary and release
artifacts. Deployments (prefect.yaml, `curate deploy`), `curate run --prefect` and any run with
PREFECT_API_URL set come here; a plain `curate run` runs the pipeline in-process instead."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from curate.config import CurateConfig
from curate.release.card import card_markdown
from flows.pipeline import (
    STEP_RETRIES,
    STEP_RETRY_DELAYS_S,
    Step,
    is_transient,
    plan,
    planned,
    run_pipeline,
    set_progress_hook,
    summarize,
    summary_rows,
)

__all__ = ["curate_corpus", "plan", "planned", "set_progress_hook", "summarize", "summary_rows", "transient_failure"]

# Tasks that hold an accelerator carry this tag: `prefect concurrency-limit create curate-gpu 1`
# makes runs queue for the GPU instead of fighting over its memory.
GPU_TAG = "curate-gpu"


def transient_failure(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect's retry condition from flows.pipeline.is_transient: a network or storage hiccup
    is retried, config errors, bad data and bugs are not."""
    try:
        state.result()
    except Exception as exc:
        return is_transient(exc)
    return False


# The one retry policy (flows.pipeline), as Prefect task options.
RETRY = {
    "retries": STEP_RETRIES,
    "retry_delay_seconds": list(STEP_RETRY_DELAYS_S),
    "retry_condition_fn": transient_failure,
}

_tasks: dict[tuple[Step, Callable[..., Any]], Any] = {}


def prefect_runner(step: Step, fn: Callable[..., Any], *args: Any) -> Any:
    """Runs a step as a Prefect task (made once per step): named after it, retried on transient
    errors when it says so, tagged when it holds the accelerator."""
    key = (step, fn)
    if key not in _tasks:
        options: dict[str, Any] = {"name": step.name, "tags": [GPU_TAG] if step.accelerator else []}
        _tasks[key] = task(**options, **(RETRY if step.retry else {}))(fn)
    return _tasks[key](*args)


@flow(name="curate-corpus", log_prints=True)
def curate_corpus(
    config_path: str,
    overrides: list[str] | None = None,
    inputs: list[str] | None = None,
    output: str | None = None,
) -> str:
    """Curate raw web data into sharded Parquet. Returns the path of `manifest.json`."""

    def summary_artifacts(cfg: CurateConfig, summary: dict[str, Any]) -> None:
        create_table_artifact(
            key=_artifact_key(cfg.name),
            table=summary_rows(summary),
            description=f"curate run of {cfg.name}: documents in, kept, and dropped per reason",
        )
        create_table_artifact(
            key=_artifact_key(cfg.name).replace("summary", "stages"),
            table=summary["stages"],
            description="per stage: reused from an earlier run, and seconds spent",
        )

    done = run_pipeline(
        config_path, overrides, inputs, output, prefect_runner, get_run_logger(), after_write=summary_artifacts
    )
    if done.release is not None:
        create_markdown_artifact(
            key=_artifact_key(done.cfg.name).replace("curate-summary-", "curate-release-"),
            markdown=card_markdown(Path(done.release)),
            description=f"dataset card of the {done.cfg.name} release",
        )
    return done.manifest


def _artifact_key(name: str) -> str:
    # Prefect artifact keys: lowercase letters, digits and dashes only.
    return "curate-summary-" + "".join(c if c.isalnum() else "-" for c in name.lower())

"""The end-to-end flow: raw inputs -> the stages of flows.stages.STAGES in order (annotate,
select, hygiene, dedup, generate) -> shards + manifest + ledger (curate.core.stages.write_output).

Tasks take and return paths (Prefect issue #10952: DataFrames crossing task boundaries are
kept in memory by the result machinery). Each task's heavy lifting lives in `curate.*` so it
also runs without Prefect, and so executors other than Prefect's can call it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from curate.config import CurateConfig, load_config
from curate.core.input_files import find_inputs
from curate.core.input_retry import RetryPolicy
from curate.core.layout import Layout, begin_output
from curate.core.parquet_io import write_bytes_atomic
from curate.core.stages import Stage, StageOutput, write_output
from curate.executors.build import check_executor
from curate.hygiene.report import contamination_counts
from curate.hygiene.stage import check_hygiene
from curate.release.build import build_release_from_run
from curate.release.card import card_markdown
from curate.synth.generate import read_generate_stats
from flows import stages as pipeline
from flows.stages import RELEASE, WRITE

# The CLI sets this to drive its progress display: (stage, event) with event in
# {"start", "done"}. Tasks run in threads of the calling process, so a plain callable works.
ProgressHook = Callable[[str, str], None]
_progress_hook: ProgressHook | None = None


def set_progress_hook(hook: ProgressHook | None) -> None:
    global _progress_hook
    _progress_hook = hook


def _report(stage: str, event: str) -> None:
    if _progress_hook is not None:
        _progress_hook(stage, event)


# Tasks that hold an accelerator carry this tag: `prefect concurrency-limit create curate-gpu 1`
# makes runs queue for the GPU instead of fighting over its memory.
GPU_TAG = "curate-gpu"


def transient_failure(task: Any, task_run: Any, state: Any) -> bool:
    """Retry only what may succeed on a second try: a network or storage hiccup (connection
    reset, timeout). Config errors, bad data and bugs fail at once; retrying them only delays
    the message."""
    try:
        state.result()
    except (ConnectionError, TimeoutError):
        return True
    except Exception:
        return False
    return False


RETRY = {"retries": 2, "retry_delay_seconds": [10, 60], "retry_condition_fn": transient_failure}


def run_one_stage(name: str, config_path: str, work_dir: str, files: list[str], previous: dict | None) -> dict:
    """A stage of STAGES as a task body: the input files for the first stage, else the
    previous stage's output (a StageOutput as a dict). Paths in, paths out."""
    _report(name, "start")
    stage = pipeline.stage_named(name)
    cfg = load_config(config_path)
    before = StageOutput.from_dict(previous) if previous is not None else None
    inputs = files if stage.first else (before.parts if before is not None else [])
    out = stage.run(cfg, Path(work_dir), inputs, before)
    _report(name, "done")
    return out.to_dict()


_tasks: dict[Stage, Any] = {}


def stage_task(stage: Stage) -> Any:
    """The Prefect task of a stage (made once): named after it, retried on transient errors
    when it says so, tagged when it holds the accelerator."""
    if stage not in _tasks:
        options: dict[str, Any] = {"name": stage.name, "tags": [GPU_TAG] if stage.accelerator else []}
        _tasks[stage] = task(**options, **(RETRY if stage.retry else {}))(run_one_stage)
    return _tasks[stage]


@task(name=WRITE)
def write_task(
    config_path: str, stages: list[dict], out_dir: str, inputs: list[str], skipped: list[dict[str, str]] | None = None
) -> str:
    """Shards from the last stage's parts, the ledger gathered from every stage, the manifest."""
    _report(WRITE, "start")
    cfg = load_config(config_path)
    outputs = [StageOutput.from_dict(s) for s in stages]
    ingested = sum(pq.ParquetFile(p).metadata.num_rows for p in outputs[0].parts)
    # Every generation prompt is either a kept document or a ledger row, so it counts as input.
    gen_out = next((o for o in outputs if o.stage == "generate" and o.ledger), None)
    gen_stats = read_generate_stats(Path(gen_out.ledger[0])) if gen_out else None

    def more_counts(layout: Layout) -> dict[str, Any]:
        counts: dict[str, Any] = {}
        if gen_stats:
            counts["generate"] = {k: v for k, v in gen_stats.items() if k != "diversity"}
            counts["diversity"] = gen_stats["diversity"]
        contamination = contamination_counts(cfg, layout.rejected)
        if contamination:
            counts["contamination"] = contamination
        counts["stages"] = [{"stage": o.stage, "reused": o.reused, "seconds": o.seconds} for o in outputs]
        return counts

    parts = [Path(p) for p in outputs[-1].parts]
    ledger = [Path(p) for o in outputs for p in o.ledger]
    total = ingested + (gen_stats["prompts"] if gen_stats else 0)
    manifest = write_output(cfg, Layout(Path(out_dir)), parts, ledger, total, inputs, more_counts, skipped or [])
    _report(WRITE, "done")
    return str(manifest)


@task(name="release", **RETRY)
def release_task(config_path: str, out_dir: str) -> str:
    """A versioned release (shuffled, token-counted shards, manifest, dataset card, plots)
    at OUTPUT/releases/<name>/<version>/ from this run's shards."""
    _report(RELEASE, "start")
    path = build_release_from_run(load_config(config_path), Path(out_dir))
    _report(RELEASE, "done")
    return str(path)


@flow(name="curate-corpus", log_prints=True)
def curate_corpus(
    config_path: str,
    overrides: list[str] | None = None,
    inputs: list[str] | None = None,
    output: str | None = None,
) -> str:
    """Curate raw web data into sharded Parquet. Returns the path of `manifest.json`."""
    logger = get_run_logger()
    started = time.perf_counter()
    # Planned already when the CLI called `planned` with these arguments (it validates before
    # Prefect starts); a deployment's run, or any other direct call, plans here.
    arguments = (config_path, list(overrides or []), inputs, output)
    cfg, files, skipped, layout = _planned.get(_plan_key(*arguments)) or plan(*arguments)
    resolved = str(layout.resolved_config)
    work = str(layout.work)
    logger.info("curating %d input file(s) into %s", len(files), layout.root)
    for left_out in skipped:
        logger.warning("input %s skipped: %s", left_out["path"], left_out["reason"])

    outputs: list[dict] = []
    for stage in pipeline.STAGES:  # in order: each is keyed on the one before it
        outputs.append(stage_task(stage)(stage.name, resolved, work, files, outputs[-1] if outputs else None))
    manifest_path = write_task(resolved, outputs, str(layout.root), files, skipped)

    manifest = json.loads(Path(manifest_path).read_text())
    summary = summarize(manifest, time.perf_counter() - started)
    write_bytes_atomic(json.dumps(summary, indent=2).encode() + b"\n", layout.summary)
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
    if cfg.release.enabled:
        release_dir = release_task(resolved, str(layout.root))
        create_markdown_artifact(
            key=_artifact_key(cfg.name).replace("curate-summary-", "curate-release-"),
            markdown=card_markdown(Path(release_dir)),
            description=f"dataset card of the {cfg.name} release",
        )
        logger.info("release written to %s", release_dir)
    else:  # off: the stage is skipped, and the progress display says so
        _report(RELEASE, "start")
        _report(RELEASE, "done")
    return manifest_path


Plan = tuple[CurateConfig, list[str], list[dict[str, str]], Layout]  # config, inputs, skipped inputs, output
PlanKey = tuple[str, tuple[str, ...], tuple[str, ...], str | None]
_planned: dict[PlanKey, Plan] = {}


def _plan_key(config_path: str, overrides: list[str], inputs: list[str] | None, output: str | None) -> PlanKey:
    return (str(config_path), tuple(overrides), tuple(inputs or ()), output)


@contextmanager
def planned(config_path: str, overrides: list[str], inputs: list[str] | None, output: str | None) -> Iterator[Plan]:
    """`plan` now, for a caller that runs `curate_corpus` with the same arguments inside the
    block, in this process (the CLI): a bad recipe fails before Prefect starts, and the flow
    run takes this plan instead of making it again (a second walk of the output folder, a
    second executor check). Gone after the block, so a later run plans afresh."""
    key = _plan_key(config_path, overrides, inputs, output)
    _planned[key] = plan(config_path, overrides, inputs, output)
    try:
        yield _planned[key]
    finally:
        _planned.pop(key, None)


def plan(config_path: str, overrides: list[str], inputs: list[str] | None, output: str | None) -> Plan:
    """Everything that can fail before work starts: config, inputs, output folder."""
    extra = list(overrides)
    if output:
        extra.append(f"output.dir={json.dumps(output)}")
    cfg = load_config(config_path, extra)
    if inputs:
        cfg.input.paths = list(inputs)
    files, skipped = find_inputs(cfg.input.paths, cfg.input.format, RetryPolicy.from_config(cfg.input))
    check_hygiene(cfg)  # the decontamination index loads (cached for the stage), else it is named with the fix
    check_executor(cfg)  # ray: imports and the cluster answers (a private one starts); slurm: sbatch on PATH
    layout = begin_output(Path(cfg.output.dir), cfg.to_yaml().encode())
    return cfg, files, skipped, layout


def summarize(manifest: dict[str, Any], seconds: float) -> dict[str, Any]:
    counts = manifest["counts"]
    return {
        "name": manifest["name"],
        "ingested": counts["ingested"],
        "kept": counts["kept"],
        "rejected": counts["rejected"],
        "by_reason": counts["by_reason"],
        "stages": counts.get("stages", []),
        "generate": counts.get("generate"),
        "diversity": counts.get("diversity"),
        "skipped_inputs": manifest.get("skipped_inputs", []),
        "shards": manifest["totals"]["shards"],
        "bytes": manifest["totals"]["bytes"],
        "seconds": round(seconds, 2),
    }


def summary_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    rows = [
        {"stage": "input", "reason": "documents in", "documents": summary["ingested"]},
        {"stage": "output", "reason": "kept", "documents": summary["kept"]},
    ]
    rows += [{"stage": r["stage"], "reason": r["reason"], "documents": r["documents"]} for r in summary["by_reason"]]
    return rows


def _artifact_key(name: str) -> str:
    # Prefect artifact keys: lowercase letters, digits and dashes only.
    return "curate-summary-" + "".join(c if c.isalnum() else "-" for c in name.lower())

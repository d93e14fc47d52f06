"""The body of `curate run`, without Prefect: plan -> the stages of flows.stages.STAGES in order
-> write (shards, ledger, manifest) -> summary.json -> release when release.enabled.

Each step goes through a `Runner`: `InProcess` here calls it in this process with the retry
policy below; flows/curate_corpus.py runs the same pipeline with each step a Prefect task (the
`curate-corpus` flow of deployments, `curate run --prefect`, or any run with PREFECT_API_URL
set). This module must not import prefect: that import and the temporary API server a flow
starts are most of a small run's fixed cost (bench/RESULTS.md, "Where the time goes").

Steps take and return paths (Prefect issue #10952: DataFrames crossing task boundaries are kept
in memory by the result machinery). Each step's heavy lifting lives in `curate.*`."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pyarrow.parquet as pq

from curate.config import CurateConfig, load_config
from curate.core.input_files import find_inputs
from curate.core.input_retry import RetryPolicy
from curate.core.layout import Layout, begin_output
from curate.core.parquet_io import write_bytes_atomic
from curate.core.stages import StageOutput, write_output
from curate.executors.build import check_executor
from curate.hygiene.report import contamination_counts
from curate.hygiene.stage import check_hygiene
from curate.release.build import build_release_from_run
from curate.synth.generate import read_generate_stats
from flows import stages as ordered
from flows.stages import RELEASE, WRITE

log = logging.getLogger("curate.run")

# ------------------------------------------------------------------------------ retry policy
# One policy for both runners (Prefect's task options are made from these numbers). Retried: only
# what may succeed on a second try, a network or storage hiccup (connection reset, timeout);
# config errors, bad data and bugs fail at once, since retrying them only delays the message.
# Two retries, 10 s then 60 s apart: a blip passes in seconds, a restarting object store or
# NFS server in about a minute; longer than that is an outage that a person should see.
STEP_RETRIES = 2
STEP_RETRY_DELAYS_S: tuple[float, ...] = (10, 60)
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError)


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, TRANSIENT_ERRORS)


# ------------------------------------------------------------------------------ progress
# The CLI sets this to drive its progress display: (step, event) with event in {"start", "done"}.
# Steps run in this process (Prefect runs tasks in threads of it), so a plain callable works.
ProgressHook = Callable[[str, str], None]
_progress_hook: ProgressHook | None = None


def set_progress_hook(hook: ProgressHook | None) -> None:
    global _progress_hook
    _progress_hook = hook


def report(step: str, event: str) -> None:
    if _progress_hook is not None:
        _progress_hook(step, event)


# ------------------------------------------------------------------------------ runners


@dataclass(frozen=True)
class Step:
    """What a runner needs to know of a step besides its function: its name, whether transient
    errors are retried, and whether it holds an accelerator (Prefect tags its task)."""

    name: str
    retry: bool = False
    accelerator: bool = False


class Runner(Protocol):
    def __call__(self, step: Step, fn: Callable[..., Any], *args: Any) -> Any: ...


@dataclass
class InProcess:
    """Runs each step here and now. A step that may retry gets STEP_RETRIES more tries after a
    transient error, `delays` apart (injectable so tests do not sleep), each logged; the last
    failure is raised as it is. Anything else is raised at once."""

    delays: Sequence[float] = STEP_RETRY_DELAYS_S
    sleep: Callable[[float], None] = time.sleep
    retries: int = STEP_RETRIES

    def __call__(self, step: Step, fn: Callable[..., Any], *args: Any) -> Any:
        attempt = 0
        while True:
            try:
                return fn(*args)
            except Exception as exc:
                if not (step.retry and is_transient(exc)) or attempt >= self.retries:
                    raise
                delay = self.delays[min(attempt, len(self.delays) - 1)]
                attempt += 1
                log.warning(
                    "step %s failed with a transient error (%s: %s); retry %d of %d in %s s",
                    step.name,
                    type(exc).__name__,
                    exc,
                    attempt,
                    self.retries,
                    delay,
                )
                self.sleep(delay)


# ------------------------------------------------------------------------------ the steps


def run_one_stage(name: str, config_path: str, work_dir: str, files: list[str], previous: dict | None) -> dict:
    """A stage of STAGES: the input files for the first stage, else the previous stage's output
    (a StageOutput as a dict). Paths in, paths out."""
    report(name, "start")
    stage = ordered.stage_named(name)
    cfg = load_config(config_path)
    before = StageOutput.from_dict(previous) if previous is not None else None
    inputs = files if stage.first else (before.parts if before is not None else [])
    out = stage.run(cfg, Path(work_dir), inputs, before)
    report(name, "done")
    return out.to_dict()


def write_step(
    config_path: str, stages: list[dict], out_dir: str, inputs: list[str], skipped: list[dict[str, str]] | None = None
) -> str:
    """Shards from the last stage's parts, the ledger gathered from every stage, the manifest."""
    report(WRITE, "start")
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
    report(WRITE, "done")
    return str(manifest)


def release_step(config_path: str, out_dir: str) -> str:
    """A versioned release (shuffled, token-counted shards, manifest, dataset card, plots)
    at OUTPUT/releases/<name>/<version>/ from this run's shards."""
    report(RELEASE, "start")
    path = build_release_from_run(load_config(config_path), Path(out_dir))
    report(RELEASE, "done")
    return str(path)


WRITE_STEP = Step(WRITE)
RELEASE_STEP = Step(RELEASE, retry=True)


@dataclass
class Finished:
    """What a run leaves for its runner's bookkeeping (Prefect's artifacts)."""

    cfg: CurateConfig
    manifest: str
    summary: dict[str, Any]
    release: str | None


def run_pipeline(
    config_path: str,
    overrides: list[str] | None = None,
    inputs: list[str] | None = None,
    output: str | None = None,
    runner: Runner | None = None,
    logger: logging.Logger | logging.LoggerAdapter | None = None,
    after_write: Callable[[CurateConfig, dict[str, Any]], None] | None = None,
) -> Finished:
    """Curate raw web data into sharded Parquet, each step through `runner` (default: in this
    process). `after_write(cfg, summary)` runs once summary.json is written (Prefect's summary
    artifacts). Returns the manifest path, the summary and the release folder."""
    run = runner if runner is not None else InProcess()
    logger = logger if logger is not None else log
    started = time.perf_counter()
    # Planned already when the CLI called `planned` with these arguments (it validates before
    # any work or server starts); a deployment's run, or any other direct call, plans here.
    arguments = (config_path, list(overrides or []), inputs, output)
    cfg, files, skipped, layout = _planned.get(_plan_key(*arguments)) or plan(*arguments)
    resolved = str(layout.resolved_config)
    work = str(layout.work)
    logger.info("curating %d input file(s) into %s", len(files), layout.root)
    for left_out in skipped:
        logger.warning("input %s skipped: %s", left_out["path"], left_out["reason"])

    outputs: list[dict] = []
    for stage in ordered.STAGES:  # in order: each is keyed on the one before it
        step = Step(stage.name, retry=stage.retry, accelerator=stage.accelerator)
        outputs.append(run(step, run_one_stage, stage.name, resolved, work, files, outputs[-1] if outputs else None))
    manifest_path = run(WRITE_STEP, write_step, resolved, outputs, str(layout.root), files, skipped)

    manifest = json.loads(Path(manifest_path).read_text())
    summary = summarize(manifest, time.perf_counter() - started)
    write_bytes_atomic(json.dumps(summary, indent=2).encode() + b"\n", layout.summary)
    if after_write is not None:
        after_write(cfg, summary)
    release_dir: str | None = None
    if cfg.release.enabled:
        release_dir = run(RELEASE_STEP, release_step, resolved, str(layout.root))
        logger.info("release written to %s", release_dir)
    else:  # off: the step is skipped, and the progress display says so
        report(RELEASE, "start")
        report(RELEASE, "done")
    return Finished(cfg, manifest_path, summary, release_dir)


# ------------------------------------------------------------------------------ planning

Plan = tuple[CurateConfig, list[str], list[dict[str, str]], Layout]  # config, inputs, skipped inputs, output
PlanKey = tuple[str, tuple[str, ...], tuple[str, ...], str | None]
_planned: dict[PlanKey, Plan] = {}


def _plan_key(config_path: str, overrides: list[str], inputs: list[str] | None, output: str | None) -> PlanKey:
    return (str(config_path), tuple(overrides), tuple(inputs or ()), output)


@contextmanager
def planned(config_path: str, overrides: list[str], inputs: list[str] | None, output: str | None) -> Iterator[Plan]:
    """`plan` now, for a caller that runs the pipeline with the same arguments inside the block,
    in this process (the CLI): a bad recipe fails before any work (or Prefect) starts, and the
    run takes this plan instead of making it again (a second walk of the output folder, a second
    executor check). Gone after the block, so a later run plans afresh."""
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

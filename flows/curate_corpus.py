"""The end-to-end flow: raw inputs -> annotate -> select -> shards + manifest + ledger.

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

from curate.annotate import ANNOTATE_SECTIONS, annotate_key_extra, run_annotate
from curate.config import CurateConfig, load_config
from curate.dedup.stage import dedup_stage, stage_extra
from curate.executors.build import check_executor
from curate.hygiene import HYGIENE_SECTIONS, hygiene_enabled
from curate.hygiene.report import contamination_counts
from curate.hygiene.stage import check_hygiene, hygiene_extra, hygiene_stage
from curate.release.build import build_release_from_run
from curate.release.card import card_markdown
from curate.synth.generate import generate_stage, read_generate_stats
from curate.core.input_files import find_inputs
from curate.core.input_retry import RetryPolicy
from curate.core.layout import Layout, begin_output
from curate.core.ledger import account
from curate.core.parquet_io import copy_atomic, write_bytes_atomic
from curate.select import run_select
from curate.core.shards import write_manifest, write_shards
from curate.core.stages import StageOutput, run_stage, stage_key

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


STAGES = ("annotate", "select", "hygiene", "dedup", "generate", "write", "release")
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
GENERATE_SECTIONS = ("generate", "engine", "language", "dedup", "decontam")  # engine: the model is in the provenance
SELECT_SECTIONS = ("language", "filters", "quality", "input.id_scope")
DEDUP_SECTIONS = ("dedup", "name")  # name keys this release's segment in the dedup index


@task(name="annotate", **RETRY)
def annotate_task(config_path: str, files: list[str], work_dir: str) -> dict:
    _report("annotate", "start")
    cfg = load_config(config_path)
    key = stage_key("", cfg, ANNOTATE_SECTIONS, annotate_key_extra(cfg, files))
    out = run_stage("annotate", key, Path(work_dir), lambda d: (run_annotate(cfg, files, d), []))
    _report("annotate", "done")
    return out.to_dict()


def _chained_stage(
    stage: str,
    config_path: str,
    previous_out: dict,
    work_dir: str,
    sections: tuple[str, ...],
    body: Callable[[CurateConfig, list[Path], Path], tuple[list[Path], list[Path]]],
    enabled: Callable[[CurateConfig], bool] = lambda cfg: True,
    extra: Callable[[CurateConfig], list[str] | None] = lambda cfg: None,
) -> dict:
    """A stage that reads the previous stage's parts; keyed on the previous key plus its
    own config sections. A disabled stage passes the parts through unchanged."""
    _report(stage, "start")
    cfg = load_config(config_path)
    previous = StageOutput.from_dict(previous_out)
    if not enabled(cfg):
        out = StageOutput(stage, previous.key, previous.parts, [], True, 0.0)
    else:
        key = stage_key(previous.key, cfg, sections, extra(cfg))
        parts = [Path(p) for p in previous.parts]
        out = run_stage(stage, key, Path(work_dir), lambda d: body(cfg, parts, d))
    _report(stage, "done")
    return out.to_dict()


@task(name="select")
def select_task(config_path: str, annotated: dict, work_dir: str) -> dict:
    return _chained_stage("select", config_path, annotated, work_dir, SELECT_SECTIONS, lambda cfg, parts, d: run_select(cfg, parts, d / "kept", d / "ledger"))


@task(name="hygiene")
def hygiene_task(config_path: str, selected: dict, work_dir: str) -> dict:
    """Release hygiene before dedup (curate.hygiene): a duplicate of a contaminated page must
    not survive as the cluster's keeper. Off when every hygiene section is switched off."""
    return _chained_stage("hygiene", config_path, selected, work_dir, HYGIENE_SECTIONS, hygiene_stage, hygiene_enabled, hygiene_extra)


@task(name="dedup")
def dedup_task(config_path: str, selected: dict, work_dir: str) -> dict:
    return _chained_stage("dedup", config_path, selected, work_dir, DEDUP_SECTIONS, dedup_stage, lambda cfg: cfg.dedup.enabled, stage_extra)


@task(name="generate", tags=[GPU_TAG], **RETRY)
def generate_task(config_path: str, deduped: dict, work_dir: str) -> dict:
    """Synthetic documents seeded by the kept ones (off unless generate.enabled); its parts
    are the corpus parts followed by the generated ones."""
    return _chained_stage("generate", config_path, deduped, work_dir, GENERATE_SECTIONS, generate_stage, lambda cfg: cfg.generate.enabled, stage_extra)


@task(name="write")
def write_task(config_path: str, stages: list[dict], out_dir: str, inputs: list[str], skipped: list[dict[str, str]] | None = None) -> str:
    """Shards from the last stage's parts, the ledger gathered from every stage, the manifest."""
    _report("write", "start")
    cfg = load_config(config_path)
    layout = Layout(Path(out_dir))
    outputs = [StageOutput.from_dict(s) for s in stages]
    shards = write_shards([Path(p) for p in outputs[-1].parts], layout.root, cfg.output)
    gather_ledger([Path(p) for o in outputs for p in o.ledger], layout.rejected)
    ingested = sum(pq.ParquetFile(p).metadata.num_rows for p in outputs[0].parts)
    # Every generation prompt is either a kept document or a ledger row, so it counts as input.
    gen_out = next((o for o in outputs if o.stage == "generate" and o.ledger), None)
    gen_stats = read_generate_stats(Path(gen_out.ledger[0])) if gen_out else None
    counts = account(ingested + (gen_stats["prompts"] if gen_stats else 0), layout, sum(s.rows for s in shards))
    if gen_stats:
        counts["generate"] = {k: v for k, v in gen_stats.items() if k != "diversity"}
        counts["diversity"] = gen_stats["diversity"]
    contamination = contamination_counts(cfg, layout.rejected)
    if contamination:
        counts["contamination"] = contamination
    counts["stages"] = [{"stage": o.stage, "reused": o.reused, "seconds": o.seconds} for o in outputs]
    manifest = write_manifest(layout.root, shards, cfg.config_hash(), cfg.name, inputs, counts, skipped_inputs=skipped or [])
    _report("write", "done")
    return str(manifest)


@task(name="release", **RETRY)
def release_task(config_path: str, out_dir: str) -> str:
    """A versioned release (shuffled, token-counted shards, manifest, dataset card, plots)
    at OUTPUT/releases/<name>/<version>/ from this run's shards."""
    _report("release", "start")
    path = build_release_from_run(load_config(config_path), Path(out_dir))
    _report("release", "done")
    return str(path)


def gather_ledger(parts: list[Path], ledger_dir: Path) -> None:
    """Make `rejected/` hold exactly this run's ledger parts (stage-prefixed names), so a
    rerun with other thresholds never leaves an earlier run's rows behind."""
    ledger_dir.mkdir(parents=True, exist_ok=True)
    wanted = {p.name for p in parts}
    if len(wanted) != len(parts):
        raise RuntimeError("two stages wrote ledger parts with the same name")
    for stale in ledger_dir.iterdir():
        if stale.name not in wanted:
            stale.unlink()
    for part in parts:
        copy_atomic(part, ledger_dir / part.name)


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

    annotated = annotate_task(resolved, files, work)
    selected = select_task(resolved, annotated, work)
    cleaned = hygiene_task(resolved, selected, work)
    deduped = dedup_task(resolved, cleaned, work)
    generated = generate_task(resolved, deduped, work)
    manifest_path = write_task(resolved, [annotated, selected, cleaned, deduped, generated], str(layout.root), files, skipped)

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
        _report("release", "start")
        _report("release", "done")
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

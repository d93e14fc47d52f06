"""Incremental curation of a growing input prefix (new crawl data arriving over time), and
a small release-building flow, for the scheduled deployments in prefect.yaml.

Layout under `output_root` (one stream per config name):
    state/<name>.json              which input files successful batches curated (curate.incremental)
    batches/<NNNN>/                each batch's `curate run` output (shards, ledger, manifest)
    dedup-index/                   the dedup index shared by all batches (segment <name>-bNNNN)
    releases/<name>/v<N>/          batch N's release: v1, v2, ... side by side

Each batch is deduplicated against every earlier batch through the index, so release vN holds
only documents that no earlier release holds."""

from __future__ import annotations

import json
from pathlib import Path

import fsspec
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact

from curate.config import load_config
from curate.core.errors import InputError
from curate.core.input_files import resolve_inputs
from curate.incremental import (
    Batch,
    load_state,
    new_fingerprints,
    now,
    record_batch,
    save_state,
    state_path,
    stream_lock,
)
from curate.release.build import build_release_from_run, release_config, with_overrides
from flows.curate_corpus import _artifact_key, curate_corpus


def list_inputs(input_prefix: str, declared_format: str) -> list[str]:
    """Every input file under the prefix; an existing but empty prefix is no files (a
    scheduled run before the first crawl lands), a missing one is an error (a typo)."""
    try:
        return resolve_inputs([input_prefix], declared_format)
    except InputError:
        fs, _, paths = fsspec.get_fs_token_paths(input_prefix)
        if paths and all(fs.isdir(p) for p in paths):
            return []
        raise


def batch_overrides(overrides: list[str], name: str, batch: int, root: Path) -> list[str]:
    """The recipe's overrides plus what makes a batch a batch: its own dedup segment name
    (so later batches match it, and a retry replaces it), the shared index, and no release
    inside the batch folder (the flow builds it at output_root/releases instead)."""
    return [
        *overrides,
        f"name={name}-b{batch:04d}",
        "dedup.enabled=true",
        f"dedup.index_dir={json.dumps(str(root / 'dedup-index'))}",
        "release.enabled=false",
    ]


@task(name="release-batch")
def release_batch_task(run_dir: str, name: str, batch: int, output_root: str) -> str | None:
    """Release v<batch> of `name` at output_root/releases/<name>/ from the batch's shards.
    The version is the batch number, so a retry after a crash between the release and the
    state write finds its release instead of adding a second copy of the same documents."""
    logger = get_run_logger()
    cfg = load_config(Path(run_dir) / "config.resolved.yaml")
    manifest = json.loads((Path(run_dir) / "manifest.json").read_text())
    if manifest["counts"]["kept"] == 0:
        # Nothing new survived (all duplicates of earlier releases): an empty release would
        # only add a version to skip; the batch still counts as done.
        logger.info("batch %d kept no documents: no release", batch)
        return None
    version = f"v{batch}"
    existing = Path(output_root) / "releases" / name / version
    if (existing / "manifest.json").is_file():
        logger.warning("release %s %s already exists (an earlier attempt of this batch): kept as it is", name, version)
        return str(existing)
    rcfg = with_overrides(release_config(cfg), name=name, version=version)
    return str(build_release_from_run(cfg, Path(run_dir), release=rcfg, output_root=Path(output_root)))


@flow(name="curate-incremental", log_prints=True)
def curate_incremental(
    config_path: str, input_prefix: str, output_root: str, overrides: list[str] | None = None, release: bool = True
) -> dict:
    """Curate the input files under `input_prefix` that no earlier successful run curated, as
    the next batch. Returns the batch record ({} when there was nothing new)."""
    logger = get_run_logger()
    overrides = list(overrides or [])
    base = load_config(config_path, overrides)  # a bad recipe fails before any state is touched
    name = base.name
    root = Path(output_root).expanduser().resolve()
    with stream_lock(root, name):
        path = state_path(root, name)
        state = load_state(path, name)
        files = list_inputs(input_prefix, base.input.format)
        new = new_fingerprints(files, state)  # fingerprinted once: these are what the state records
        todo = [fp.path for fp in new]
        if not todo:
            logger.info("no new input files under %s (%d already curated): nothing to do", input_prefix, len(files))
            return {}
        number = state.next_batch()
        out = root / "batches" / f"{number:04d}"
        logger.info(
            "batch %d: %d new of %d input file(s) under %s -> %s", number, len(todo), len(files), input_prefix, out
        )
        manifest_path = curate_corpus(config_path, batch_overrides(overrides, name, number, root), todo, str(out))
        release_dir = release_batch_task(str(out), name, number, str(root)) if release else None
        counts = json.loads(Path(manifest_path).read_text())["counts"]
        record = Batch(number, todo, str(out), release_dir, counts["kept"], counts["rejected"], now())
        save_state(record_batch(state, new, record), path)  # only now: a failure above retries the same files
    create_table_artifact(
        key=_artifact_key(name).replace("curate-summary-", "curate-incremental-"),
        table=[
            {
                "batch": b.batch,
                "files": len(b.files),
                "kept": b.kept,
                "rejected": b.rejected,
                "release": b.release or "",
            }
            for b in state.batches
        ],
        description=f"incremental batches of {name}",
    )
    logger.info("batch %d done: %d kept, %d rejected; release %s", number, record.kept, record.rejected, release_dir)
    return {
        "batch": record.batch,
        "files": record.files,
        "output": record.output,
        "release": record.release,
        "kept": record.kept,
        "rejected": record.rejected,
    }


@flow(name="curate-release", log_prints=True)
def curate_release(config_path: str, run_dir: str, overrides: list[str] | None = None) -> str:
    """A release (next vN, or release.version) at RUN_DIR/releases/<name>/ from a finished
    `curate run` output folder, as `curate release RUN_DIR` builds it."""
    cfg = load_config(config_path, list(overrides or []))
    path = build_release_from_run(cfg, Path(run_dir))
    get_run_logger().info("release written to %s", path)
    return str(path)

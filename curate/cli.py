"""`curate` command line: run | validate | annotate | dedup | generate | decontam | classifier |
release | verify | stats | diff | lookup | deploy | serve."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curate.core.cli_args import add_set
from curate.core.errors import CurateError
from curate.hygiene.cli import decontam_arguments
from curate.quality.cli import classifier_arguments
from curate.release import cli as release_cli


def _env_defaults() -> None:
    # Offline by design: no telemetry, no hub lookups. Users can still override these.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    # `curate run --prefect` starts a temporary Prefect API; Prefect gives it 20 s to come up, which
    # a loaded 2-core machine missed (measured: the run failed and the server outlived it).
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")


def _add_set(p: argparse.ArgumentParser) -> None:
    add_set(p, "language.min_score=0.8")


def _run_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="YAML recipe, e.g. configs/demo.yaml, or the name of a shipped one: demo")
    p.add_argument(
        "--input",
        dest="inputs",
        action="append",
        metavar="PATH",
        help="input file, folder, glob or URL; replaces input.paths (repeatable)",
    )
    p.add_argument("--output", help="output folder; replaces output.dir")
    p.add_argument("--quiet", action="store_true", help="no progress display, only the summary")
    p.add_argument(
        "--prefect",
        action="store_true",
        help="run as the curate-corpus Prefect flow, recorded in Prefect (a temporary local server when "
        "PREFECT_API_URL is unset); the default without PREFECT_API_URL is in-process",
    )
    _add_set(p)


def _validate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config")
    _add_set(p)


def _dedup_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="JSONL (.gz/.zst) or Parquet files, folders or globs of records with id and text",
    )
    p.add_argument("--output", required=True, help="output folder: data/ shards, rejected/ ledger, manifest.json")
    p.add_argument("--config", default=None, help="recipe whose dedup: section applies (defaults if omitted)")
    _add_set(p)


def _generate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        required=True,
        help="recipe with a generate: section, e.g. configs/generate_demo.yaml (or the shipped generate_demo)",
    )
    p.add_argument(
        "--input",
        default=None,
        help="curated output folder (data/*.parquet) whose documents seed the prompts; omit to use "
        "generate.topics_file",
    )
    p.add_argument("--n", type=int, default=None, help="documents to generate; replaces generate.n")
    p.add_argument(
        "--output", required=True, help="output folder: data/ shards, rejected/ ledger, manifest.json, diversity.json"
    )
    _add_set(p)


def _annotate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", metavar="INPUT")
    p.add_argument("--output", required=True)
    p.add_argument("--config", default=None, help="recipe for annotator settings (defaults if omitted)")
    _add_set(p)


def _deploy_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help="deployments to register (default: all): corpus, incremental, synthetic, release",
    )


def _serve_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("names", nargs="*", metavar="NAME", help="deployments to serve (default: all)")
    p.add_argument("--limit", type=int, default=None, help="at most this many flow runs at once")


@dataclass(frozen=True)
class Command:
    """One `curate` command: its arguments (a recipe and `--set` for the commands that take a
    config) and the function that runs it. A new command is one entry in COMMANDS."""

    name: str
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    description = "Curate raw web text into textbook-quality pretraining shards."
    parser = argparse.ArgumentParser(prog="curate", description=description)
    parser.add_argument("--version", action="version", version=f"curate {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.arguments(sub.add_parser(command.name, help=command.help))
    return parser


def _version() -> str:
    from curate import __version__

    return __version__


def main(argv: list[str] | None = None) -> int:
    _env_defaults()
    args = build_parser().parse_args(argv)
    try:
        return next(c for c in COMMANDS if c.name == args.command).run(args)
    except CurateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        # A full disk or read-only path hit by code that does not name its file (a library's
        # own writer), or a file this user may not access: still a message and the fix, not a
        # traceback. Which call failed is unknown here, so an unreadable input is not "cannot write".
        from curate.core.errors import last_resort_error

        error = last_resort_error(exc, getattr(args, "output", None))
        if error is None:
            raise
        print(f"error: {error}", file=sys.stderr)
        return 2


def cmd_deploy(args: argparse.Namespace) -> int:
    from curate.deploy import deploy

    for name in deploy(args.names or None):
        print(f"deployed {name}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from curate.deploy import serve

    serve(args.names or None, limit=args.limit)
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from curate.config import load_config
    from curate.hygiene.stage import check_hygiene

    cfg = load_config(args.config, args.overrides)
    check_hygiene(cfg)  # the files the recipe names (the decontamination index) load
    print(f"ok: {args.config} is valid (config hash {cfg.config_hash()[:12]})")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from flows.pipeline import planned, run_pipeline, set_progress_hook
    from flows.prefect_api import configured_api_url
    from flows.stages import STEPS

    console = Console(stderr=True)
    progress = Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console, disable=args.quiet
    )
    ids = {stage: progress.add_task(f"{stage}: waiting", total=1) for stage in STEPS}

    def hook(stage: str, event: str) -> None:
        if stage in ids:
            progress.update(
                ids[stage],
                description=f"{stage}: {'running' if event == 'start' else 'done'}",
                completed=1 if event == "done" else 0,
            )

    # Without a Prefect API to report to, a flow run would start a temporary local server (most of
    # a small run's fixed cost) only to throw its records away: the same steps run in-process.
    api_url = configured_api_url()
    if api_url is not None:
        mode = f"running the curate-corpus Prefect flow (PREFECT_API_URL={api_url})"
    elif args.prefect:
        mode = "running the curate-corpus Prefect flow on a temporary local Prefect server (--prefect)"
    else:
        mode = "running in-process (no PREFECT_API_URL; --prefect records the run in Prefect)"
    set_progress_hook(hook)
    try:
        # Config, inputs and output are validated before any work (or Prefect) starts, and the
        # run takes that plan instead of making it again.
        with planned(args.config, args.overrides, args.inputs, args.output):
            print(mode, flush=True)  # stdout, with the summary: stderr holds progress and errors only
            with progress:
                if api_url is not None or args.prefect:
                    from flows.curate_corpus import curate_corpus

                    manifest_path = curate_corpus(args.config, args.overrides, args.inputs, args.output)
                else:
                    manifest_path = run_pipeline(args.config, args.overrides, args.inputs, args.output).manifest
    finally:
        set_progress_hook(None)
    summary = json.loads((Path(manifest_path).parent / "summary.json").read_text())
    print_summary(summary, Path(manifest_path).parent)
    return 0


def print_summary(summary: dict[str, Any], out: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"curate run: {summary['name']}")
    table.add_column("stage")
    table.add_column("reason")
    table.add_column("documents", justify="right")
    table.add_row("input", "documents in", str(summary["ingested"]))
    table.add_row("output", "kept", str(summary["kept"]), style="bold green")
    for row in summary["by_reason"]:
        table.add_row(row["stage"], row["reason"], str(row["documents"]))
    console = Console()
    console.print(table)
    skipped = summary.get("skipped_inputs") or []
    if skipped:
        # Files inside input folders that were not read: said here, not only in the manifest.
        console.print(f"{len(skipped)} file(s) in the input folders not read:")
        for left_out in skipped:
            console.print(f"  {left_out['path']}: {left_out['reason']}", markup=False, highlight=False)
    console.print(
        f"{summary['shards']} shard(s), {summary['bytes']:,} bytes in {out / 'data'}; ledger in {out / 'rejected'}; "
        f"{summary['seconds']} s"
    )


def cmd_annotate(args: argparse.Namespace) -> int:
    from curate.config import load_config
    from curate.core.input_files import resolve_inputs
    from curate.core.input_retry import RetryPolicy
    from curate.core.layout import prepare_output
    from flows.stages import stage_named

    cfg = load_config(args.config, args.overrides)
    files = resolve_inputs(args.inputs, cfg.input.format, RetryPolicy.from_config(cfg.input))
    layout = prepare_output(Path(args.output))
    # The annotate stage of `curate run`, same key and folder: a later run reuses this work.
    parts = [Path(p) for p in stage_named("annotate").run(cfg, layout.work, files).parts]
    target = layout.root / "annotated"
    target.mkdir(exist_ok=True)
    for stale in target.glob("part-*.parquet"):  # from an earlier run over more files
        stale.unlink()
    for index, part in enumerate(parts):
        shutil.copyfile(part, target / f"part-{index:05d}.parquet")
    import pyarrow.parquet as pq

    rows = sum(pq.ParquetFile(p).metadata.num_rows for p in parts)
    print(f"annotated {rows} documents from {len(files)} file(s) into {target}")
    return 0


def cmd_dedup(args: argparse.Namespace) -> int:
    from curate.config import load_config
    from curate.dedup.stage import dedup_command

    cfg = load_config(args.config, args.overrides)
    manifest = dedup_command(args.inputs, Path(args.output), cfg)
    written = json.loads(manifest.read_text())
    counts = written["counts"]
    for left_out in written.get("skipped_inputs", []):
        print(f"input {left_out['path']} not read: {left_out['reason']}")
    dropped = {r["reason"]: r["documents"] for r in counts["by_reason"]}
    exact, near = dropped.get("exact_duplicate", 0), dropped.get("near_duplicate", 0)
    print(
        f"dedup: {counts['ingested']} documents in, {counts['kept']} kept; exact duplicates {exact}, near duplicates "
        f"{near}, "
        f"other rejects {counts['rejected'] - exact - near}; shards in {Path(args.output) / 'data'}, ledger in "
        f"{Path(args.output) / 'rejected'}"
    )
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from curate.config import load_config
    from curate.synth.generate import generate_command

    cfg = load_config(args.config, args.overrides)
    manifest = generate_command(cfg, Path(args.input) if args.input else None, args.n, Path(args.output))
    counts = json.loads(manifest.read_text())["counts"]
    o3, topics = counts["diversity"]["openings"]["3"], counts["diversity"]["topics"]
    dropped = ", ".join(f"{r['reason']} {r['documents']}" for r in counts["by_reason"]) or "none"
    print(
        f"generate: {counts['ingested']} prompts, {counts['kept']} kept; dropped: {dropped}; "
        f"distinct 3-word openings {o3['distinct_ratio']:.0%} (commonest '{o3['top']}' {o3['top_share']:.0%}); "
        f"topics covered {topics['covered']}/{topics['planned']}; shards in {Path(args.output) / 'data'}"
    )
    return 0


# The commands below load their recipe here, in the CLI layer, and pass it down: curate.config sits
# above the stage packages that define these commands (the import contract in pyproject.toml).
def cmd_classifier(args: argparse.Namespace) -> int:
    from curate.config import load_config
    from curate.quality.cli import classifier_overrides, run_classifier

    return run_classifier(args, load_config(args.config, classifier_overrides(args)))


def cmd_decontam(args: argparse.Namespace) -> int:
    from curate.hygiene.cli import run_decontam

    if args.decontam_command != "build-index":  # info and check read only an index
        return run_decontam(args)
    from curate.config import load_config

    return run_decontam(args, load_config(args.config, args.overrides))


def cmd_release(args: argparse.Namespace) -> int:
    from curate.config import load_config

    # The inputs first: without --config the recipe is the run's own config.resolved.yaml.
    found = R.release_inputs(args.inputs, args.synthetic, args.config)
    return R.run_release(args, load_config(found.recipe, args.overrides), found)


# Every command of `curate`, in the order `curate --help` lists them.
R = release_cli  # short: the release commands' arguments and runs
COMMANDS: tuple[Command, ...] = (
    Command("run", "run the end-to-end flow (annotate, select, write shards)", _run_arguments, cmd_run),
    Command("validate", "check a config without running anything", _validate_arguments, cmd_validate),
    Command(
        "dedup", "remove exact and near-duplicate documents from JSONL or Parquet files", _dedup_arguments, cmd_dedup
    ),
    Command(
        "generate",
        "synthetic textbook documents grounded in curated documents (vLLM)",
        _generate_arguments,
        cmd_generate,
    ),
    Command(
        "annotate",
        "write annotated Parquet, dropping nothing (for tuning thresholds)",
        _annotate_arguments,
        cmd_annotate,
    ),
    Command(
        "deploy",
        "register the Prefect deployments of prefect.yaml with the server in PREFECT_API_URL "
        "(creates the curate-process work pool if missing)",
        _deploy_arguments,
        cmd_deploy,
    ),
    Command(
        "serve",
        "serve the deployments of prefect.yaml, schedules included, from this process (no work pool or worker)",
        _serve_arguments,
        cmd_serve,
    ),
    Command(
        "decontam",
        "benchmark decontamination: build or inspect an n-gram index of evaluation sets",
        decontam_arguments,
        cmd_decontam,
    ),
    Command(
        "classifier",
        "train, evaluate, or label data for the textbook-quality classifier",
        classifier_arguments,
        cmd_classifier,
    ),
    Command(
        "release",
        "build a versioned dataset release from the outputs of `curate run`",
        R.release_arguments,
        cmd_release,
    ),
    Command(
        "verify",
        "re-check a release against its manifest (checksums, schema, totals, unique ids)",
        R.release_folder_arguments,
        R.run_verify,
    ),
    Command("stats", "print a release's card tables", R.release_folder_arguments, R.run_stats),
    Command(
        "lookup",
        "which document a token of a tokenized shard (megatron/nanotron) belongs to",
        R.lookup_arguments,
        R.run_lookup,
    ),
    Command(
        "diff", "what changed between two releases (documents added, removed, tokens)", R.diff_arguments, R.run_diff
    ),
)

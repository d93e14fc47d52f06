"""Command line of releases: `curate release | verify | stats | diff | lookup`: the arguments
and the run of each, entries of curate.cli's command table."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curate.core.cli_args import add_set


def release_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="output folder of `curate run`, or Parquet files / folders / globs of documents",
    )
    p.add_argument(
        "--synthetic",
        action="append",
        default=[],
        metavar="PATH",
        help="synthetic documents: Parquet files, folders or globs (repeatable)",
    )
    p.add_argument(
        "--config", default=None, help="recipe for the release: section (default: the run's config.resolved.yaml)"
    )
    p.add_argument(
        "--output", default=None, help="folder to write releases/NAME/VERSION under (default: the first run folder)"
    )
    p.add_argument("--name", default=None, help="release name (default: release.name, else the run's name)")
    p.add_argument(
        "--version",
        dest="release_version",
        metavar="VERSION",
        default=None,
        help="release version (default: release.version, else the next vN)",
    )
    add_set(p, "release.mix.seed=7")


def release_folder_arguments(p: argparse.ArgumentParser) -> None:
    """`verify` and `stats`: one release folder."""
    p.add_argument("release", help="release folder: OUTPUT/releases/NAME/VERSION")


def lookup_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("release", help="release folder: OUTPUT/releases/NAME/VERSION")
    p.add_argument(
        "--file",
        required=True,
        help="tokenized file as listed in manifest.json, e.g. megatron/train-00000-of-00004.bin",
    )
    p.add_argument("--token", required=True, type=int, help="0-based token position in that file")


def diff_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("a", help="the older release folder")
    p.add_argument("b", help="the newer release folder")


def _contained(*folders: str) -> None:
    from curate.core.layout import check_contained

    # Through a link leading outside a release folder, verify would vouch for files that are
    # not the release's; `release` writes and deletes under its output folder as `run` does.
    for folder in folders:
        check_contained(Path(folder))


def run_release(args: argparse.Namespace, cfg: Any, found: ReleaseInputs) -> int:
    """`curate release` with the recipe curate.cli loaded from `found.recipe` (the recipe sits
    above this package, so the command table loads it and passes it down)."""
    path = release_command(cfg, found, args.output, args.name, args.release_version)
    from rich.console import Console

    from curate.release.card import load_release
    from curate.release.tables import human, num

    manifest, _ = load_release(path)
    totals = manifest["totals"]
    tokens = f", {human(totals['tokens'])} tokens" if totals["tokens"] is not None else ""
    trainer = (
        "".join(
            f", {fmt} ({human(t['tokens'])} tokens with end-of-document)"
            for fmt, t in manifest.get("tokenized", {}).get("totals", {}).items()
        )
        if manifest.get("tokenized")
        else ""
    )
    Console().print(
        f"release {manifest['name']} {manifest['version']}: {num(totals['rows'])} documents{tokens} in "
        f"{totals['shards']} shard(s){trainer} -> {path}"
    )
    return 0


def run_verify(args: argparse.Namespace) -> int:
    _contained(args.release)
    return verify_command(Path(args.release))


def run_stats(args: argparse.Namespace) -> int:
    _contained(args.release)
    return stats_command(Path(args.release))


def run_lookup(args: argparse.Namespace) -> int:
    _contained(args.release)
    return lookup_command(Path(args.release), args.file, args.token)


def run_diff(args: argparse.Namespace) -> int:
    _contained(args.a, args.b)
    return diff_command(Path(args.a), Path(args.b))


@dataclass(frozen=True)
class ReleaseInputs:
    """What `curate release` reads, resolved before its recipe loads: the web and synthetic parts,
    and the recipe to load (`--config`, else the run's config.resolved.yaml, else None)."""

    web: Any
    synthetic: Any
    recipe: str | None
    recipe_given: bool


def release_inputs(inputs: list[str], synthetic: list[str] | None = None, config: str | None = None) -> ReleaseInputs:
    from curate.release.inputs import resolve_parts

    web = resolve_parts(inputs)
    syn = resolve_parts(synthetic) if synthetic else None
    recipe = config
    if config is None and web.run_dirs and (web.run_dirs[0] / "config.resolved.yaml").is_file():
        recipe = str(web.run_dirs[0] / "config.resolved.yaml")  # the run's own settings
    return ReleaseInputs(web, syn, recipe, config is not None)


def release_command(
    cfg: Any, found: ReleaseInputs, output: str | None = None, name: str | None = None, version: str | None = None
) -> Path:
    """`curate release`: a new release from earlier stages' outputs, with the loaded recipe
    `cfg`. Returns its folder."""
    from curate.core.errors import InputError
    from curate.core.layout import check_contained
    from curate.release.build import build_release, release_config, with_overrides

    web, syn = found.web, found.synthetic
    if not found.recipe_given and web.run_dirs:
        from curate.release.inputs import read_manifest

        cfg.name = read_manifest(web.run_dirs[0]).get("name") or cfg.name
    root = Path(output) if output else (web.run_dirs[0] if web.run_dirs else None)
    if root is None:
        raise InputError(
            "no output folder: the inputs are not a `curate run` output folder. Fix: pass --output FOLDER (the "
            "release goes to FOLDER/releases/NAME/VERSION)"
        )
    check_contained(root)
    rcfg = with_overrides(release_config(cfg), name=name, version=version)
    return build_release(
        cfg, web.parts, syn.parts if syn else [], release=rcfg, run_dirs=web.run_dirs, output_root=root
    )


def verify_command(release_dir: Path) -> int:
    from rich.console import Console

    from curate.release.tables import num
    from curate.release.verify import VerifyError, verify_release

    try:
        found = verify_release(release_dir)
    except VerifyError as exc:
        print(f"FAILED {release_dir}: {exc}", file=sys.stderr)
        return 1
    tokens = f", {num(found.tokens)} tokens" if found.tokens is not None else ""
    trainer = "".join(f"; {fmt}: {num(n)} tokens" for fmt, n in (found.tokenized or {}).items())
    Console().print(
        f"ok {release_dir}: {found.shards} shard(s), {num(found.rows)} documents{tokens}, {num(found.bytes)} "
        f"bytes{trainer}; checksums, schema, totals and ids verified"
    )
    return 0


def lookup_command(release_dir: Path, file: str, token: int) -> int:
    import json

    from curate.release.tokenized_read import lookup

    print(json.dumps(lookup(release_dir, file, token), indent=2))
    return 0


def stats_command(release_dir: Path) -> int:
    from rich.console import Console
    from rich.table import Table as RichTable

    from curate.release.card import load_release
    from curate.release.tables import card_tables, numeric_columns

    manifest, stats = load_release(release_dir)
    console = Console()
    for table in card_tables(manifest, stats):
        rich = RichTable(title=table.title, title_justify="left", caption=table.note or None, caption_justify="left")
        for column, right in zip(table.columns, numeric_columns(table)):
            rich.add_column(column, justify="right" if right else "left")
        for row in table.rows:
            rich.add_row(*row)
        console.print(rich)
    return 0


def diff_command(a: Path, b: Path) -> int:
    import json

    from rich.console import Console
    from rich.table import Table as RichTable

    from curate.release.diff import diff_releases
    from curate.release.tables import num

    result = diff_releases(a, b)
    table = RichTable(
        title=f"{result['a']['name']} {result['a']['version']} -> {result['b']['name']} {result['b']['version']}",
        title_justify="left",
    )
    table.add_column("")
    table.add_column("documents", justify="right")
    table.add_column("tokens", justify="right")
    table.add_row("A", num(result["a"]["documents"]), num(result["a"]["tokens"]))
    table.add_row("B", num(result["b"]["documents"]), num(result["b"]["tokens"]))
    table.add_row("added (in B only)", num(result["added"]["documents"]), num(result["added"]["tokens"]), style="green")
    table.add_row(
        "removed (in A only)", num(result["removed"]["documents"]), num(result["removed"]["tokens"]), style="red"
    )
    table.add_row("in both", num(result["kept"]["documents"]), "")
    table.add_row("token delta (B - A)", "", f"{result['token_delta']:+,}", style="bold")
    console = Console()
    console.print(table)
    for key, change in result["changed"].items():
        console.print(
            f"[bold]{key}[/bold] changed: A {json.dumps(change['a'], sort_keys=True)}  B "
            f"{json.dumps(change['b'], sort_keys=True)}",
            soft_wrap=True,
        )
    return 0

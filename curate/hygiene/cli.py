"""`curate decontam build-index | info | check`: make, inspect and try a decontamination index.
The arguments and the run of the `decontam` entry of curate.cli's command table."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from curate.core.cli_args import add_aliases, add_recipe
from curate.core.errors import InputError


def decontam_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="decontam_command", required=True)
    b = sub.add_parser("build-index", help="index local benchmark files (JSONL/JSON lines, Parquet or CSV; .gz ok)")
    b.add_argument(
        "--input",
        dest="inputs",
        action="append",
        required=True,
        metavar="[NAME=]FILE",
        help="one benchmark's file; NAME defaults to the file name without extensions (repeatable; a name given twice "
        "merges its files)",
    )
    b.add_argument("--output", required=True, help="the index file to write (.npz); point decontam.index at it")
    add_recipe(
        b,
        "its decontam_index: section (fields, stop_items, split, licence; ngram, else decontam.ngram)",
        "decontam_index.stop_items=5",
        "curate/hygiene/config.py",
    )
    # The flags before the recipe convention, kept working as hidden aliases of its keys.
    add_aliases(b, "decontam_index", "--ngram --stop-items", "--split --licence", lists="--fields")
    i = sub.add_parser("info", help="benchmarks, items and n-grams of an index (default: the shipped one)")
    i.add_argument("index", nargs="?", default="")
    c = sub.add_parser("check", help="decontaminate text files or stdin and print each verdict")
    c.add_argument("files", nargs="*", help="text files (default: stdin)")
    c.add_argument("--index", default="", help="index file (default: the shipped one)")


def run_decontam(args: argparse.Namespace, cfg: Any = None) -> int:
    """`curate decontam ...`; `cfg`: for build-index, the recipe curate.cli loaded (the recipe sits
    above this package, so the command table loads it and passes it down)."""
    from curate.hygiene.config import DecontamConfig
    from curate.hygiene.index import (
        DEFAULT_INDEX,
        Benchmark,
        build_index,
        index_summary,
        load_index,
        read_records,
        record_text,
        save_index,
    )

    if args.decontam_command == "build-index":
        s = cfg.decontam_index
        benches: dict[str, Benchmark] = {}
        for item in args.inputs:
            name, _, path = item.rpartition("=") if "=" in item else ("", "", item)
            path_ = Path(path)
            if not path_.is_file():
                raise InputError(
                    f"--input {path}: no such file. Fix: pass a local benchmark file (JSONL, Parquet or CSV)"
                )
            name = name or path_.name.split(".")[0]
            texts = [t for t in (record_text(r, s.fields) for r in read_records(path_)) if t.strip()]
            b = benches.setdefault(name, Benchmark(name, [], s.split, "", s.licence))
            b.texts += texts
            b.source = ", ".join(filter(None, [b.source, str(path_)]))
        ngram = cfg.decontam.ngram if s.ngram is None else s.ngram
        arrays, meta = build_index(benches.values(), ngram, s.stop_items)
        out = save_index(arrays, meta, Path(args.output))
        print(index_summary(load_index(out)), end="")
        return 0
    if args.decontam_command == "info":
        print(index_summary(load_index(args.index or DEFAULT_INDEX)), end="")
        return 0
    from curate.hygiene.decontam import Decontaminator

    cfg = DecontamConfig(index=args.index)
    d = Decontaminator(cfg.model_copy(update={"ngram": load_index(args.index or DEFAULT_INDEX).ngram}))
    sources = [(f, Path(f).read_text(encoding="utf-8", errors="replace")) for f in args.files] or [
        ("-", sys.stdin.read())
    ]
    for name, text in sources:
        m = d.match(text)
        verdict = (
            "no match"
            if m is None
            else ("CONTAMINATED " if m.contaminated else "kept (below thresholds) ") + f"{m.benchmark}: {m.describe()}"
        )
        print(f"{name}: {verdict}")
    return 0

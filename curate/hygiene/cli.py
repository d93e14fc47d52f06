"""`curate decontam build-index | info | check`: make, inspect and try a decontamination index.
The arguments and the run of the `decontam` entry of curate.cli's command table."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

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
    b.add_argument(
        "--fields",
        default="",
        help="comma-separated record fields whose text forms an item (default: `text` if present, else every string "
        "field)",
    )
    b.add_argument("--ngram", type=int, default=13, help="words per n-gram (default 13; decontam.ngram must match)")
    b.add_argument(
        "--stop-items",
        type=int,
        default=3,
        help="leave out n-grams found in this many distinct items or more (templates; default 3)",
    )
    b.add_argument("--split", default="", help="split label recorded for every benchmark (e.g. test)")
    b.add_argument("--licence", default="", help="licence recorded for every benchmark")
    i = sub.add_parser("info", help="benchmarks, items and n-grams of an index (default: the shipped one)")
    i.add_argument("index", nargs="?", default="")
    c = sub.add_parser("check", help="decontaminate text files or stdin and print each verdict")
    c.add_argument("files", nargs="*", help="text files (default: stdin)")
    c.add_argument("--index", default="", help="index file (default: the shipped one)")


def cmd_decontam(args: argparse.Namespace) -> int:
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
        fields = [f.strip() for f in args.fields.split(",") if f.strip()]
        benches: dict[str, Benchmark] = {}
        for item in args.inputs:
            name, _, path = item.rpartition("=") if "=" in item else ("", "", item)
            path_ = Path(path)
            if not path_.is_file():
                raise InputError(
                    f"--input {path}: no such file. Fix: pass a local benchmark file (JSONL, Parquet or CSV)"
                )
            name = name or path_.name.split(".")[0]
            texts = [t for t in (record_text(r, fields) for r in read_records(path_)) if t.strip()]
            b = benches.setdefault(name, Benchmark(name, [], args.split, "", args.licence))
            b.texts += texts
            b.source = ", ".join(filter(None, [b.source, str(path_)]))
        arrays, meta = build_index(benches.values(), args.ngram, args.stop_items)
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

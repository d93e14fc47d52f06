"""`curate classifier train | eval | annotate`: hooked into curate.cli by
`add_classifier_commands(subparsers)` and dispatched to `cmd_classifier(args)`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def add_classifier_commands(subparsers: Any) -> argparse.ArgumentParser:
    """Add `classifier` with its three subcommands to the top-level subparsers."""
    p = subparsers.add_parser("classifier", help="train, evaluate, or label data for the textbook-quality classifier")
    sub = p.add_subparsers(dest="classifier_command", required=True)

    t = sub.add_parser("train", help="train a fastText quality model on labelled JSONL; writes the model and its card")
    t.add_argument("--input", required=True, metavar="LABELLED.jsonl", help="one JSON object a line with a text and a label (0/1, or a score 0-5)")
    t.add_argument("--output", required=True, metavar="MODEL", help="model path: .ftz is quantised (small), .bin is full")
    t.add_argument("--text-field", default="text")
    t.add_argument("--label-field", default="label")
    t.add_argument("--score-threshold", type=float, default=3, help="scores >= this are positive (FineWeb-Edu: 3)")
    t.add_argument("--label-kind", choices=["auto", "binary", "score"], default="auto")
    t.add_argument("--group-field", default="group", help="chunks sharing this field stay on one side of the split (absent: each line is its own group)")
    t.add_argument("--heldout", type=float, default=0.1, help="fraction held out for metrics and the threshold")
    t.add_argument("--seed", type=int, default=1)
    t.add_argument("--epoch", type=int, default=None)
    t.add_argument("--lr", type=float, default=None)
    t.add_argument("--dim", type=int, default=None)
    t.add_argument("--word-ngrams", type=int, default=None)
    t.add_argument("--minn", type=int, default=None, help="shortest character n-gram inside words (0: none)")
    t.add_argument("--maxn", type=int, default=None, help="longest character n-gram inside words (0: none)")
    t.add_argument("--provenance", default=None, metavar="FILE.json", help="where the data came from; copied into the model card")

    e = sub.add_parser("eval", help="metrics on labelled JSONL: the selection score, the combined and edu scores, and the word-count and words-per-line baselines")
    e.add_argument("--model", default=None, help="evaluate this one .bin/.ftz model alone (n, roc_auc, precision, recall, f1, accuracy); without it: every score of the quality stage")
    e.add_argument("--config", default=None, metavar="CONFIG", help="a recipe whose quality: section (scorer, combined_path, min_score) to evaluate (default: curate's defaults)")
    e.add_argument("--input", required=True, metavar="LABELLED.jsonl")
    e.add_argument("--text-field", default="text")
    e.add_argument("--label-field", default="label")
    e.add_argument("--score-threshold", type=float, default=3)
    e.add_argument("--threshold", type=float, default=None, help="decision threshold (default: the model card's)")

    a = sub.add_parser("annotate", help="label a sample of documents 0-5 with an LLM (educational value)")
    a.add_argument("inputs", nargs="+", metavar="INPUT", help="JSONL(.gz) or Parquet files of documents")
    a.add_argument("--output", required=True, metavar="FILE.jsonl")
    a.add_argument("-n", "--n", type=int, default=100, help="documents to sample")
    a.add_argument("--seed", type=int, default=1)
    a.add_argument("--text-field", default="text")
    a.add_argument("--id-field", default="id")
    a.add_argument("--max-chars", type=int, default=4000, help="characters of each document shown to the model")
    a.add_argument("--max-tokens", type=int, default=256, help="length of the model's answer")
    a.add_argument("--config", default=None, metavar="CONFIG", help="a recipe whose top-level engine: section to use (the flags below override it)")
    a.add_argument("--engine-kind", choices=["vllm", "vllm_server", "openai"], default=None, help="default: vllm in this process")
    a.add_argument("--engine-model", default=None, help="default: the embedded SmolLM2-135M-Instruct")
    a.add_argument("--engine-url", action="append", default=None, help="for --engine-kind openai (repeatable)")
    return p


def cmd_classifier(args: argparse.Namespace) -> int:
    if args.classifier_command == "train":
        return _train(args)
    if args.classifier_command == "eval":
        return _eval(args)
    return _annotate(args)


def _train(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from curate.core.errors import InputError
    from curate.quality.train import TrainParams, train_classifier

    params = replace(TrainParams(), seed=args.seed)
    for name in ("epoch", "lr", "dim", "word_ngrams", "minn", "maxn"):
        value = getattr(args, name)
        if value is not None:
            params = replace(params, **{name: value})
    provenance = None
    if args.provenance:
        path = Path(args.provenance)
        if not path.is_file():
            raise InputError(f"--provenance {path}: file not found. Fix: pass the provenance.json written with the data")
        provenance = json.loads(path.read_text(encoding="utf-8"))
    card = train_classifier(
        args.input,
        args.output,
        text_field=args.text_field,
        label_field=args.label_field,
        score_threshold=args.score_threshold,
        label_kind=args.label_kind,
        group_field=args.group_field or None,
        heldout=args.heldout,
        params=params,
        provenance=provenance,
    )
    m = card["heldout_metrics"]
    print(
        f"wrote {args.output} ({card['model_bytes']:,} bytes) and its card; held-out n={m['n']} "
        f"roc_auc={_fmt(m['roc_auc'])} f1={m['f1']:.3f} at threshold {card['threshold']:.3f}"
    )
    return 0


def _eval(args: argparse.Namespace) -> int:
    from curate.quality.evaluate import evaluate, evaluate_selection

    if args.model:
        result = evaluate(args.model, args.input, args.text_field, args.label_field, args.score_threshold, args.threshold)
    else:
        quality = None
        if args.config:
            from curate.config import load_config

            quality = load_config(args.config).quality
        if args.threshold is not None:
            from curate.quality.config import QualityConfig

            quality = (quality or QualityConfig()).model_copy(update={"min_score": args.threshold, "min_bucket": None})
        result = evaluate_selection(args.input, quality, args.text_field, args.label_field, args.score_threshold)
    print(json.dumps(result, indent=2))
    return 0


def _annotate(args: argparse.Namespace) -> int:
    from curate.quality.annotate_llm import annotate_documents, engine_config

    engine_cfg = engine_config(args.config, kind=args.engine_kind, model=args.engine_model, urls=args.engine_url)
    stats = annotate_documents(
        args.inputs,
        args.output,
        engine_cfg,
        args.n,
        seed=args.seed,
        max_chars=args.max_chars,
        max_tokens=args.max_tokens,
        text_field=args.text_field,
        id_field=args.id_field,
    )
    print(json.dumps(stats, indent=2))
    print(f"wrote {args.output}: {stats['scored']} scored, {stats['unparseable']} unparseable after one retry, {stats['engine_errors']} engine errors")
    return 0


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"

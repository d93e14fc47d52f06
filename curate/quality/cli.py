"""`curate classifier train | eval | annotate`: the arguments and the run of the `classifier`
entry of curate.cli's command table.

Settings follow the convention of every command: a recipe (`--config`, whose `quality:` and
`engine:` sections eval and annotate use) and `--set KEY=VALUE`, the classifier's own keys under
`classifier.train`, `classifier.eval` and `classifier.annotate` (curate.quality.config). The older
flags (`--epoch 5`, `-n 500`, `--engine-kind openai`, ...) still work, as hidden aliases of those keys."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from curate.core.cli_args import SetAlias, add_aliases, add_recipe


def _aliases(p: argparse.ArgumentParser, section: str, numbers: str, texts: str = "") -> None:
    add_aliases(p, f"classifier.{section}", numbers, texts)


def _recipe(p: argparse.ArgumentParser, section: str, uses: str) -> None:
    add_recipe(p, uses, f"classifier.{section}.seed=2", "curate/quality/config.py")


def classifier_arguments(p: argparse.ArgumentParser) -> None:
    """The `classifier` command's subcommands and their arguments."""
    sub = p.add_subparsers(dest="classifier_command", required=True)

    t = sub.add_parser("train", help="train a fastText quality model on labelled JSONL; writes the model and its card")
    t.add_argument(
        "--input",
        required=True,
        metavar="LABELLED.jsonl",
        help="one JSON object a line with a text and a label (0/1, or a score 0-5)",
    )
    t.add_argument(
        "--output", required=True, metavar="MODEL", help="model path: .ftz is quantised (small), .bin is full"
    )
    _recipe(t, "train", "its classifier.train section (fields, split, fastText hyper-parameters)")
    _aliases(
        t,
        "train",
        "--score-threshold --heldout --seed --epoch --lr --dim --word-ngrams --minn --maxn",
        "--text-field --label-field --label-kind --group-field --provenance",
    )

    e = sub.add_parser(
        "eval",
        help="metrics on labelled JSONL: the selection score, the combined and edu scores, and the word-count and "
        "words-per-line baselines",
    )
    e.add_argument(
        "--model",
        default=None,
        help="evaluate this one .bin/.ftz model alone (n, roc_auc, precision, recall, f1, accuracy); without it: "
        "every score of the quality stage",
    )
    e.add_argument("--input", required=True, metavar="LABELLED.jsonl")
    _recipe(e, "eval", "its quality: section (scorer, combined_path, min_score), and classifier.eval")
    _aliases(e, "eval", "--score-threshold --threshold", "--text-field --label-field")

    a = sub.add_parser("annotate", help="label a sample of documents 0-5 with an LLM (educational value)")
    a.add_argument("inputs", nargs="+", metavar="INPUT", help="JSONL(.gz) or Parquet files of documents")
    a.add_argument("--output", required=True, metavar="FILE.jsonl")
    _recipe(
        a,
        "annotate",
        "its top-level engine: section (default: the embedded SmolLM2-135M-Instruct), classifier.annotate",
    )
    _aliases(a, "annotate", "-n|--n --seed --max-chars --max-tokens", "--text-field --id-field")
    # The engine flags alias keys of the top-level engine: section.
    for flag, key in (("--engine-kind", "engine.kind"), ("--engine-model", "engine.model")):
        a.add_argument(flag, dest=f"_alias_{key}", action=SetAlias, key=key, text=True, help=argparse.SUPPRESS)
    a.add_argument("--engine-url", dest="engine_urls", action="append", default=None, help=argparse.SUPPRESS)


def classifier_overrides(args: argparse.Namespace) -> list[str]:
    """The `--set`s of a `classifier` command line, the repeatable `--engine-url` as one list."""
    overrides = list(args.overrides)
    if getattr(args, "engine_urls", None):  # --engine-url, repeatable: one list
        overrides.append(f"engine.urls={json.dumps(args.engine_urls)}")
    return overrides


def run_classifier(args: argparse.Namespace, cfg: Any) -> int:
    """`curate classifier ...` with the recipe curate.cli loaded (the recipe sits above this
    package, so the command table loads it and passes it down)."""
    if args.classifier_command == "train":
        return _train(args, cfg)
    if args.classifier_command == "eval":
        return _eval(args, cfg)
    return _annotate(args, cfg)


def _train(args: argparse.Namespace, cfg: Any) -> int:
    from dataclasses import replace

    from curate.core.errors import InputError
    from curate.quality.train import TrainParams, train_classifier

    s = cfg.classifier.train
    params = replace(TrainParams(), seed=s.seed)
    for name in ("epoch", "lr", "dim", "word_ngrams", "minn", "maxn"):
        value = getattr(s, name)
        if value is not None:
            params = replace(params, **{name: value})
    provenance = None
    if s.provenance:
        path = Path(s.provenance)
        if not path.is_file():
            raise InputError(
                f"classifier.train.provenance {path}: file not found. Fix: set it to the provenance.json written with "
                "the data"
            )
        provenance = json.loads(path.read_text(encoding="utf-8"))
    card = train_classifier(
        args.input,
        args.output,
        text_field=s.text_field,
        label_field=s.label_field,
        score_threshold=s.score_threshold,
        label_kind=s.label_kind,
        group_field=s.group_field or None,
        heldout=s.heldout,
        params=params,
        provenance=provenance,
    )
    m = card["heldout_metrics"]
    print(
        f"wrote {args.output} ({card['model_bytes']:,} bytes) and its card; held-out n={m['n']} "
        f"roc_auc={_fmt(m['roc_auc'])} f1={m['f1']:.3f} at threshold {card['threshold']:.3f}"
    )
    return 0


def _eval(args: argparse.Namespace, cfg: Any) -> int:
    from curate.quality.evaluate import evaluate, evaluate_selection

    s = cfg.classifier.eval
    if args.model:
        result = evaluate(args.model, args.input, s.text_field, s.label_field, s.score_threshold, s.threshold)
    else:
        quality = cfg.quality
        if s.threshold is not None:
            quality = quality.model_copy(update={"min_score": s.threshold, "min_bucket": None})
        result = evaluate_selection(args.input, quality, s.text_field, s.label_field, s.score_threshold)
    print(json.dumps(result, indent=2))
    return 0


def _annotate(args: argparse.Namespace, cfg: Any) -> int:
    from curate.quality.annotate_llm import annotate_documents

    s = cfg.classifier.annotate
    stats = annotate_documents(
        args.inputs,
        args.output,
        cfg.engine,
        s.n,
        seed=s.seed,
        max_chars=s.max_chars,
        max_tokens=s.max_tokens,
        text_field=s.text_field,
        id_field=s.id_field,
    )
    print(json.dumps(stats, indent=2))
    print(
        f"wrote {args.output}: {stats['scored']} scored, {stats['unparseable']} unparseable after one retry, "
        f"{stats['engine_errors']} engine errors"
    )
    return 0


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"

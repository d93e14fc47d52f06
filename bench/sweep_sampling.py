"""How sampling settings decide what survives the generate stage's checks, on one loaded model:
the share of outputs kept, their mean words, and why the rest were dropped, per setting.

Tuned on real article bodies (../shared/data/article-extraction-benchmark, as in
bench_generate), not on the demo release that the defaults are then measured on
(bench/RESULTS-generate.md), so the demo figure is not fitted to its own seeds.

Usage: python -m bench.sweep_sampling [--prompts 12] [--variants JSON] [--templates a,b]
Each variant is a generate.sampling mapping over the defaults (curate.synth.generate_config)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import time
from collections import Counter
from typing import Any

from bench.common import REPO

WORK = REPO / "bench" / "out" / "sweep"
VARIANTS = [
    {
        "temperature": 0.6,
        "top_p": 0.95,
        "min_p": 0.0,
        "repetition_penalty": 1.0,
        "frequency_penalty": 0.0,
        "max_tokens": 400,
    },  # before
    {},  # the defaults as shipped (with each template's own)
    {"repetition_penalty": 1.2, "frequency_penalty": 0.0},
    {"temperature": 0.5, "min_p": 0.1, "repetition_penalty": 1.05, "frequency_penalty": 0.5},
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=12)
    parser.add_argument("--variants", default="", help="JSON list of generate.sampling mappings")
    parser.add_argument(
        "--templates", default="", help="comma-separated template ids (default: all generate templates)"
    )
    parser.add_argument("--min-words", type=int, default=100, help="generate.min_words")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from bench.bench_generate import write_corpus
    from curate.config import CurateConfig
    from curate.llm.engine import open_engine
    from curate.llm.engines.base import ChatRequest
    from curate.synth import generate as G
    from curate.synth.postprocess import OutputChecker

    shutil.rmtree(WORK, ignore_errors=True)
    write_corpus(WORK / "corpus")
    variants = json.loads(args.variants) if args.variants else VARIANTS
    templates = [t for t in args.templates.split(",") if t]
    base = {
        "name": "sweep",
        "generate": {
            "n": args.prompts,
            "templates": templates,
            "truncated": "trim",
            "score_quality": False,
            "min_words": args.min_words,
        },
        "engine": {"kind": "vllm"},
    }
    cfg = CurateConfig.model_validate(base)
    results: list[dict[str, Any]] = []
    with open_engine(cfg.engine) as engine:
        for variant in variants:
            vcfg = CurateConfig.model_validate({**base, "generate": {**base["generate"], "sampling": variant}})
            prompts = G.make_plan(vcfg, G.corpus_parts(WORK / "corpus"), args.prompts)[0]
            checker = OutputChecker(vcfg.generate, vcfg.language)
            started = time.perf_counter()
            gens = engine.generate(
                [
                    ChatRequest.of(p.user, system=p.system, seed=p.random_seed, **G.request_sampling(p.sampling))
                    for p in prompts
                ]
            )
            seconds = time.perf_counter() - started
            reasons: Counter[str] = Counter()
            words: list[int] = []
            faith: list[dict[str, Any]] = []
            per_template: dict[str, list[int]] = {}
            for p, g in zip(prompts, gens, strict=True):
                v = checker.check(g.text, g.finish_reason, g.error, p.id, p.seed.text if p.template.rephrase else None)
                reasons[v.reason or "kept"] += 1
                if p.template.rephrase and g.text.strip():  # measured on every answer, kept or not
                    from curate.synth.faithfulness import measure

                    faith.append(measure(p.seed.text, g.text).as_dict())
                per_template.setdefault(p.template.id, [0, 0])[1] += 1
                if v.reason is None:
                    words.append(len(v.text.split()))
                    per_template[p.template.id][0] += 1
            tokens = sum(g.completion_tokens for g in gens)
            row = {
                "variant": variant,
                "kept": reasons["kept"],
                "prompts": len(prompts),
                "mean_words": round(statistics.mean(words), 1) if words else 0,
                "reasons": dict(reasons),
                "per_template": per_template,
                "finished": sum(g.finish_reason == "stop" for g in gens),
                "tokens": tokens,
                "tokens_per_s": round(tokens / seconds, 1),
            }
            if faith:
                row["faithfulness_median"] = {
                    "word_recall": statistics.median(f["word_recall"] for f in faith),
                    "number_recall": statistics.median(
                        [f["number_recall"] for f in faith if f["number_recall"] is not None] or [0]
                    ),
                    "novel_numbers": statistics.median(len(f["novel_numbers"]) for f in faith),
                    "length_ratio": statistics.median(f["length_ratio"] for f in faith),
                }
            results.append(row)
            print(json.dumps(row), flush=True)
    (REPO / "bench" / "out").mkdir(exist_ok=True)
    (REPO / "bench" / "out" / "sweep.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":  # vLLM spawns its engine process, which re-imports this module
    main()

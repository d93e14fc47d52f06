"""Labelling documents with an LLM: a seeded sample of documents, the educational-value
prompt, one parse per answer, one retry for answers without a score, and a count of all of it.

An answer that still has no readable score after the retry is written with `score: null`
and counted as unparseable: it is never given a made-up score, and `curate classifier
train` skips it (saying how many it skipped)."""

from __future__ import annotations

import gzip
import json
import random
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from curate.core.errors import InputError
from curate.quality.prompts import RETRY_SUFFIX, SYSTEM, build_prompt, justification, parse_score


@dataclass
class AnnotationStats:
    documents: int = 0  # sampled and sent
    scored: int = 0  # with a score in the output
    scored_on_retry: int = 0
    unparseable_first: int = 0  # answers without a score on the first try
    unparseable: int = 0  # still without one after the retry: score null in the output
    engine_errors: int = 0  # requests that failed in the engine (both tries)
    truncated: int = 0  # answers cut by max_tokens (finish_reason "length")
    histogram: dict[int, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["histogram"] = {str(k): v for k, v in sorted(self.histogram.items())}
        return out


def _open_text(path: Path):
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8")


def iter_documents(paths: list[str], text_field: str = "text", id_field: str = "id") -> Iterator[dict[str, Any]]:
    """{id, text} from JSONL(.gz) lines or Parquet rows (curate's output shards included)."""
    for raw in paths:
        path = Path(raw)
        if not path.is_file():
            raise InputError(f"input not found: {path}. Fix: pass JSONL or Parquet files of documents")
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            pf = pq.ParquetFile(path)
            if text_field not in pf.schema_arrow.names:
                raise InputError(
                    f"{path} has no column '{text_field}' (has {pf.schema_arrow.names}). Fix: pass --text-field"
                )
            cols = [c for c in (id_field, text_field) if c in pf.schema_arrow.names]
            row = 0
            for batch in pf.iter_batches(columns=cols, batch_size=4096):
                for rec in batch.to_pylist():
                    yield {"id": str(rec.get(id_field) or f"{path.name}:{row}"), "text": rec[text_field] or ""}
                    row += 1
            continue
        with _open_text(path) as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InputError(
                        f"{path}:{lineno}: not valid JSON ({exc.msg}). Fix: one JSON object per line"
                    ) from None
                if not isinstance(rec, dict) or not isinstance(rec.get(text_field), str):
                    raise InputError(f"{path}:{lineno}: no string field '{text_field}'. Fix: pass --text-field")
                yield {"id": str(rec.get(id_field) or f"{path.name}:{lineno}"), "text": rec[text_field]}


def sample_documents(paths: list[str], n: int, seed: int, min_words: int = 20, **fields: str) -> list[dict[str, Any]]:
    """A uniform sample of n documents (reservoir sampling: one pass, n in memory), in input
    order. Documents under `min_words` words are not worth a prompt and are skipped."""
    rng = random.Random(seed)
    reservoir: list[tuple[int, dict[str, Any]]] = []
    seen = 0
    for doc in iter_documents(paths, **fields):
        if len(doc["text"].split()) < min_words:
            continue
        if len(reservoir) < n:
            reservoir.append((seen, doc))
        else:
            j = rng.randint(0, seen)
            if j < n:
                reservoir[j] = (seen, doc)
        seen += 1
    return [doc for _, doc in sorted(reservoir, key=lambda p: p[0])]


def engine_config(base: Any = None, **overrides: Any) -> Any:
    """The engine of LLM annotation: `base`, the top-level `engine:` section of a loaded recipe
    (the same section generation uses, so both run on one model), then the command line's
    `overrides` (kind, model, urls; None = not given). Without a base, the engine defaults."""
    from curate.llm.config import EngineConfig

    data = base.model_dump() if base is not None else {}
    return EngineConfig.model_validate({**data, **{k: v for k, v in overrides.items() if v is not None}})


def annotate_documents(
    inputs: list[str],
    output_jsonl: str | Path,
    engine_cfg: Any = None,
    n: int = 100,
    *,
    seed: int = 1,
    max_chars: int = 4_000,
    max_tokens: int = 256,
    temperature: float = 0.0,
    text_field: str = "text",
    id_field: str = "id",
    engine: Any = None,
) -> dict[str, Any]:
    """Sample `n` documents from `inputs`, ask the LLM for an educational score 0-5, write one
    JSON line per document (id, text, score or null, justification, answer, attempts) to
    `output_jsonl`, and return the counts. `engine` (an open curate.llm Engine) is used as
    given; otherwise one is opened from `engine_cfg` (default: the embedded model on CPU).

    4,000 characters (~1k tokens) per document: the embedded model's context is 2,048 tokens,
    and the rubric (~450 tokens) plus a 256-token answer must fit beside the extract."""
    docs = sample_documents(inputs, n, seed, text_field=text_field, id_field=id_field)
    if not docs:
        raise InputError(
            f"no document with text in {inputs}. Fix: pass JSONL or Parquet files with a '{text_field}' field"
        )
    if engine is not None:
        rows, stats = _annotate(engine, docs, seed, max_chars, max_tokens, temperature)
        model = getattr(engine, "model", "?")
    else:
        from curate.llm.config import EngineConfig
        from curate.llm.engine import open_engine

        with open_engine(engine_cfg or EngineConfig()) as opened:
            rows, stats = _annotate(opened, docs, seed, max_chars, max_tokens, temperature)
            model = opened.model
    out = Path(output_jsonl)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(dict(row, model=str(model)), ensure_ascii=False) + "\n")
    tmp.replace(out)
    return stats.as_dict()


def ask_with_retry(
    engine: Any,
    prompts: list[str],
    system: str,
    parse: Callable[[str], Any],
    retry_suffix: str,
    *,
    temperature: float,
    max_tokens: int,
    seed: int,
) -> tuple[list[Any], list[int], int]:
    """One answer per prompt, asked again once (with `retry_suffix` restating the format) when
    the engine failed or `parse` found nothing in the answer. Returns the final Generations,
    the attempts each took, and how many first answers were unparseable (engine errors not
    counted). What is still unparseable stays so: the caller counts it, never scores it.
    Shared by LLM annotation and the generate stage's judge (curate.synth.judge)."""
    from curate.llm.engines.base import ChatRequest

    first = engine.generate(
        [
            ChatRequest.of(p, system=system, temperature=temperature, max_tokens=max_tokens, seed=seed + i)
            for i, p in enumerate(prompts)
        ]
    )
    answers: list[Any] = list(first)
    attempts = [1] * len(prompts)
    retry = [i for i, g in enumerate(first) if not g.ok or parse(g.text) is None]
    unparseable_first = sum(1 for i in retry if first[i].ok)
    if retry:
        # The retry samples (temperature >= 0.7, a new seed): greedy decoding would repeat
        # the same unreadable answer, and the added line restates the required format.
        again = engine.generate(
            [
                ChatRequest.of(
                    prompts[i] + retry_suffix,
                    system=system,
                    temperature=max(temperature, 0.7),
                    max_tokens=max_tokens,
                    seed=seed + 100_003 + i,
                )
                for i in retry
            ]
        )
        for i, g in zip(retry, again):
            answers[i] = g
            attempts[i] = 2
    return answers, attempts, unparseable_first


def _annotate(
    engine: Any, docs: list[dict[str, Any]], seed: int, max_chars: int, max_tokens: int, temperature: float
) -> tuple[list[dict[str, Any]], AnnotationStats]:
    stats = AnnotationStats(documents=len(docs))
    prompts = [build_prompt(d["text"], max_chars) for d in docs]
    answers, attempts, stats.unparseable_first = ask_with_retry(
        engine, prompts, SYSTEM, parse_score, RETRY_SUFFIX, temperature=temperature, max_tokens=max_tokens, seed=seed
    )
    rows: list[dict[str, Any]] = []
    histogram: Counter[int] = Counter()
    for doc, gen, tries in zip(docs, answers, attempts):
        score = parse_score(gen.text) if gen.ok else None
        if gen.finish_reason == "length":
            stats.truncated += 1
        if score is not None:
            stats.scored += 1
            stats.scored_on_retry += tries == 2
            histogram[score] += 1
        elif not gen.ok:
            stats.engine_errors += 1
        else:
            stats.unparseable += 1
        rows.append(
            {
                "id": doc["id"],
                "text": doc["text"],
                "score": score,
                "justification": justification(gen.text) if gen.ok else None,
                "answer": gen.text,
                "attempts": tries,
                "finish_reason": gen.finish_reason,
                "error": gen.error,
            }
        )
    stats.histogram = dict(histogram)
    return rows, stats

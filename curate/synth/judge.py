"""LLM-as-judge for generated documents (generate.judge): every document that passed the
checks and dedup is scored 1-5 on a rubric (educational value, correctness, coherence) by the
generating engine or another one, with the retry-once pattern of LLM annotation
(curate.quality.annotate_llm.ask_with_retry). A document whose answer is still unreadable
after the retry is never given a score: it goes to the ledger (`judge_unparseable`), as do
those under generate.judge.min_score (`judge_low_score`) and failed requests (`judge_error`).

Answers are cached (work/judge/answers.parquet, keyed by judge model, settings and document
text), so a rerun with another threshold asks nothing again."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from curate.core.parquet_io import write_table_atomic

JUDGE_LOW_SCORE = "judge_low_score"
JUDGE_UNPARSEABLE = "judge_unparseable"
JUDGE_ERROR = "judge_error"

SYSTEM = "You are a strict teacher who grades teaching texts."
CRITERIA = ("educational value", "correctness", "coherence")
RUBRIC = """Grade the text below as teaching material. Give each criterion a whole number from 1 (poor) to 5 (excellent):
- Educational value: does it teach something useful, clearly, to its reader?
- Correctness: are its facts, numbers and reasoning right?
- Coherence: does it stay on one topic, in a sensible order, without repeating itself?

<text>
{text}
</text>

Answer with exactly these four lines and nothing else:
Educational value: N
Correctness: N
Coherence: N
Overall score: N"""  # noqa: E501
RETRY_SUFFIX = (
    '\n\nYour answer MUST end with a line of the exact form "Overall score: N", where N is a whole number from 1 to 5.'
)

_LINE = {
    name: re.compile(rf"{name}\s*[:=]\s*\**\s*([1-5])(?:\s*(?:/|out\s+of)\s*5)?\b", re.IGNORECASE)
    for name in (*CRITERIA, "overall score")
}
ANSWERS_SCHEMA = pa.schema(
    [("key", pa.string()), ("answer", pa.string()), ("attempts", pa.int64()), ("finish_reason", pa.string())]
)


@dataclass(frozen=True)
class Judgement:
    score: int  # overall, 1-5
    criteria: dict[str, int]  # those the answer gave
    derived: bool = False  # no "Overall score" line: the mean of the three criteria, rounded


def parse_judgement(answer: str) -> Judgement | None:
    """The last "Overall score: N" of the answer; without one, the rounded mean of the three
    criteria when all three are there (the model's own scores, summed as the rubric says);
    else None (unparseable)."""
    criteria = {}
    for name in CRITERIA:
        found = _LINE[name].findall(answer or "")
        if found:
            criteria[name] = int(found[-1])
    overall = _LINE["overall score"].findall(answer or "")
    if overall:
        return Judgement(int(overall[-1]), criteria)
    if len(criteria) == len(CRITERIA):
        return Judgement(int(sum(criteria.values()) / len(CRITERIA) + 0.5), criteria, derived=True)
    return None


def build_prompt(text: str, max_chars: int) -> str:
    if len(text) > max_chars:
        cut = text[:max_chars]
        text = cut[: cut.rfind(" ")] if " " in cut else cut
    return RUBRIC.format(text=text.strip())


@dataclass
class JudgeStats:
    documents: int = 0
    scored: int = 0
    scored_on_retry: int = 0
    derived_from_criteria: int = 0
    unparseable_first: int = 0
    unparseable: int = 0  # after the retry: ledger, never scored
    engine_errors: int = 0
    below_threshold: int = 0
    cached: int = 0  # answers reused from an earlier run
    histogram: dict[str, int] = field(default_factory=dict)
    # Spearman between the judge's overall score and the quality classifier's P(educational),
    # on every document the judge scored (kept or not).
    agreement_with_quality: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _key(model: str, cfg: Any, prompt: str) -> str:
    settings = json.dumps([model, cfg.temperature, cfg.max_tokens, prompt], sort_keys=True)
    return hashlib.sha256(settings.encode()).hexdigest()[:24]


def judge_documents(
    engine: Any,
    model: str,
    ids: list[str],
    texts: list[str],
    cfg: Any,
    cache: Path,
    seed: int = 0,
    quality: list[float | None] | None = None,
) -> tuple[dict[str, dict[str, Any]], list[tuple[str, str, str]], JudgeStats]:
    """Judges `texts` (`quality`: their quality_score, for the agreement measure). Returns the judge metadata of each scored document by id
    ({score, criteria, attempts, model}), the drops as (id, reason, value), and counts.
    `model` names the judge in the cache key and the metadata."""  # noqa: E501
    from curate.quality.annotate_llm import ask_with_retry

    stats = JudgeStats(documents=len(ids))
    prompts = [build_prompt(t, cfg.max_chars) for t in texts]
    keys = [_key(model, cfg, p) for p in prompts]
    cached = {r["key"]: r for r in pq.read_table(cache).to_pylist()} if cache.is_file() else {}
    todo = [i for i, k in enumerate(keys) if k not in cached]
    stats.cached = len(ids) - len(todo)
    answers: dict[int, tuple[str, int, str, str | None]] = {
        i: (cached[k]["answer"], cached[k]["attempts"], cached[k]["finish_reason"], None)
        for i, k in enumerate(keys)
        if k in cached
    }
    if todo:
        gens, attempts, stats.unparseable_first = ask_with_retry(
            engine,
            [prompts[i] for i in todo],
            SYSTEM,
            parse_judgement,
            RETRY_SUFFIX,
            temperature=cfg.temperature,
            max_tokens=cfg.max_tokens,
            seed=seed,
        )
        for i, g, a in zip(todo, gens, attempts, strict=True):
            answers[i] = (g.text, a, g.finish_reason, g.error)
        # Only answers that came back: a failed request is asked again by the next run.
        rows = [
            {"key": keys[i], "answer": ans[0], "attempts": ans[1], "finish_reason": ans[2]}
            for i, ans in sorted(answers.items())
            if ans[2] != "error"
        ]
        write_table_atomic(pa.Table.from_pylist(rows, schema=ANSWERS_SCHEMA), cache)
    judged: dict[str, dict[str, Any]] = {}
    drops: list[tuple[str, str, str]] = []
    histogram: dict[str, int] = {}
    pairs: list[tuple[float, float | None]] = []
    for i, doc_id in enumerate(ids):
        text, attempts_i, finish, error = answers[i]
        if finish == "error":
            stats.engine_errors += 1
            drops.append((doc_id, JUDGE_ERROR, (error or "")[:300]))
            continue
        j = parse_judgement(text)
        if j is None:
            stats.unparseable += 1
            drops.append((doc_id, JUDGE_UNPARSEABLE, text[:300]))
            continue
        stats.scored += 1
        stats.scored_on_retry += attempts_i == 2
        stats.derived_from_criteria += j.derived
        pairs.append((j.score, quality[i] if quality else None))
        histogram[str(j.score)] = histogram.get(str(j.score), 0) + 1
        if j.score < cfg.min_score:
            stats.below_threshold += 1
            drops.append((doc_id, JUDGE_LOW_SCORE, f"{j.score} (min {cfg.min_score})"))
            continue
        judged[doc_id] = {"score": j.score, "criteria": j.criteria, "attempts": attempts_i, "model": model}
    stats.histogram = dict(sorted(histogram.items()))
    stats.agreement_with_quality = agreement([p[0] for p in pairs], [p[1] for p in pairs])
    return judged, drops, stats


def agreement(judge_scores: list[float], quality_scores: list[float | None]) -> dict[str, Any]:
    """Spearman's rank correlation between the judge's scores and the quality classifier's
    (both on the same documents); None where it is undefined (under 3 pairs, or a constant side)."""
    from scipy.stats import spearmanr

    pairs = [(j, q) for j, q in zip(judge_scores, quality_scores) if j is not None and q is not None]
    if len(pairs) < 3 or len({p[0] for p in pairs}) < 2 or len({p[1] for p in pairs}) < 2:
        return {"pairs": len(pairs), "spearman": None, "p_value": None}
    rho, p = spearmanr([p[0] for p in pairs], [p[1] for p in pairs])
    return {"pairs": len(pairs), "spearman": round(float(rho), 3), "p_value": round(float(p), 4)}

"""Without a model: sampling defaults resolved per template, the faithfulness measures of
rephrasing and their ledger rows, the judge's parsing, retry and threshold, and both through
`curate generate` over cached raw batches with a scripted engine."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from curate.core import schema as S
from curate.core.errors import ConfigError
from curate.llm.engines.base import ChatRequest, Generation
from curate.synth import generate as G
from curate.synth.faithfulness import measure, numbers, violation
from curate.synth.generate_config import SAMPLING_DEFAULTS, FaithfulnessConfig, JudgeConfig, SamplingConfig
from curate.synth.judge import JUDGE_LOW_SCORE, JUDGE_UNPARSEABLE, judge_documents, parse_judgement
from curate.synth.prompts import load_template, load_templates, template_sampling
from tests.test_generate import HEART, TIDES, _write_raw, corpus, make_cfg

# ------------------------------------------------------------------------ sampling defaults


def test_sampling_resolves_defaults_then_template_then_recipe() -> None:
    [qa] = load_templates("", ["rephrase_qa"])
    [story] = load_templates("", ["story_children"])
    assert template_sampling(story, None) == {
        **SAMPLING_DEFAULTS,
        **{k: (list(v) if isinstance(v, tuple) else v) for k, v in story.sampling},
    }
    resolved = template_sampling(qa, None)
    assert resolved["repetition_penalty"] == 1.0 and resolved["temperature"] == 0.2  # the template's own
    assert resolved["min_p"] == SAMPLING_DEFAULTS["min_p"]  # not set by the template: the default
    mine = template_sampling(qa, SamplingConfig(temperature=0.9, stop=["\n\n\n"]))
    assert (
        mine["temperature"] == 0.9 and mine["stop"] == ["\n\n\n"] and mine["repetition_penalty"] == 1.0
    )  # the recipe wins where it says something
    assert template_sampling(qa, {"max_tokens": 100})["max_tokens"] == 100  # a plain mapping works too


def test_template_sampling_key_is_validated_naming_the_keys(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("id: t\nversion: 1\nformat: f\nuser: 'about {topic}'\nsampling: {temprature: 0.5}\n")
    with pytest.raises(
        ConfigError,
        match=r"prompt template 't' \(.*\): sampling\.temprature: Extra inputs are not permitted\. Fix: use the keys "
        r"and ranges of generate\.sampling \(temperature, top_p, min_p,",
    ):
        load_template(path)
    path.write_text("id: t\nversion: 1\nformat: f\nkind: rephrase\nuser: 'about {topic}'\n")
    with pytest.raises(
        ConfigError, match=r"a rephrase template must show the document\. Fix: put \{seed_text\} in its user message"
    ):
        load_template(path)


def test_rephrase_templates_only_when_named_and_need_documents(tmp_path: Path) -> None:
    assert not any(t.rephrase for t in load_templates(""))  # templates: [] = the generate ones
    topics = tmp_path / "topics.txt"
    topics.write_text("tides\n")
    cfg = make_cfg(tmp_path, topics_file=str(topics), templates=["rephrase_qa"])
    with pytest.raises(
        ConfigError,
        match=r"generate\.templates: rephrase_qa rewrite documents, and topics have none\. Fix: pass --input",
    ):
        G.make_plan(cfg, [], 2)


# ---------------------------------------------------------------------------- faithfulness

SOURCE = (
    "The Eiffel Tower in Paris was completed in 1889 for the World's Fair. It is 330 metres tall and was "
    "designed by the engineering company of Gustave Eiffel. About 7,000,000 people visit it each year."
)


def test_faithfulness_measures_words_numbers_and_length() -> None:
    good = (
        "The Eiffel Tower is a landmark in Paris, completed in 1889 for the World's Fair. Designed by "
        "Gustave Eiffel's engineering company, the tower is 330 metres tall, and about 7,000,000 people visit it "
        "every year."
    )
    f = measure(SOURCE, good)
    assert f.word_recall >= 0.8 and f.number_recall == 1.0 and f.novel_numbers == () and 0.8 < f.length_ratio < 1.5
    assert violation(f, FaithfulnessConfig()) is None
    bad = "Question 1: When was the Eiffel Tower built?\nAnswer: It was built in 1887 and is 324 metres tall.\n2. Who visits it?"  # noqa: E501
    f = measure(SOURCE, bad)
    assert f.novel_numbers == ("324", "1887")  # "Question 1" and the "2." list marker count nothing
    assert f.number_recall == 0.0
    assert violation(f, FaithfulnessConfig(min_word_recall=0.0)) == "novel_numbers=2 (324, 1887; max 0)"
    assert violation(f, FaithfulnessConfig(min_word_recall=0.5)) == "word_recall=0.333 (min 0.5)"
    assert numbers("It cost $1,250.50 in 2.50 hours, 3 times") == {"1250.5", "2.5", "3"}
    assert measure(SOURCE, "Paris. " * 3).length_ratio < 0.3


# ----------------------------------------------------------------------------------- judge


def test_judge_parsing() -> None:
    j = parse_judgement("Educational value: 4\nCorrectness: 3\nCoherence: **5**\nOverall score: 4")
    assert (j.score, j.criteria, j.derived) == (4, {"educational value": 4, "correctness": 3, "coherence": 5}, False)
    j = parse_judgement("Educational value: 4/5\nCorrectness: 2 out of 5\nCoherence: 4")  # no overall line
    assert (j.score, j.derived) == (3, True)  # mean 3.33 -> 3
    assert parse_judgement("This text is great, I give it a 5.") is None
    assert parse_judgement("Overall score: 7") is None  # off the scale
    assert parse_judgement("Educational value: 4\nCoherence: 4") is None  # two of three criteria: no score made up


class ScriptedEngine:
    """Answers each prompt from a list of answers per document (matched by a word of its text),
    one per attempt; records the requests."""

    model = "scripted"

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.requests: list[ChatRequest] = []

    def generate(self, requests: list[ChatRequest]) -> list[Generation]:
        out = []
        for r in requests:
            self.requests.append(r)
            key = next(k for k in self.answers if k in r.messages[-1]["content"])
            out.append(Generation(self.answers[key].pop(0), "stop", 10, 10))
        return out


def test_judge_retries_once_counts_unparseable_and_applies_threshold(tmp_path: Path) -> None:
    engine = ScriptedEngine(
        {
            "heart": ["Overall score: 4"],
            "tides": [
                "I like it.",
                "Educational value: 2\nCorrectness: 2\nCoherence: 3\nOverall score: 2",
            ],  # scored on retry, below 3
            "plants": ["Nice text.", "Still no score."],  # unparseable twice: never scored
        }
    )
    cache = tmp_path / "judge" / "answers.parquet"
    texts = ["about the heart", "about tides", "about plants"]
    judged, drops, stats = judge_documents(
        engine, "m", ["a", "b", "c"], texts, JudgeConfig(enabled=True), cache, quality=[0.9, 0.2, 0.5]
    )
    assert judged == {"a": {"score": 4, "criteria": {}, "attempts": 1, "model": "m"}}
    assert drops == [("b", JUDGE_LOW_SCORE, "2 (min 3)"), ("c", JUDGE_UNPARSEABLE, "Still no score.")]
    assert (stats.scored, stats.scored_on_retry, stats.unparseable_first, stats.unparseable, stats.below_threshold) == (
        2,
        1,
        2,
        1,
        1,
    )
    assert len(engine.requests) == 5 and engine.requests[3].messages[-1]["content"].endswith(
        "a whole number from 1 to 5."
    )
    assert stats.agreement_with_quality == {
        "pairs": 2,
        "spearman": None,
        "p_value": None,
    }  # 2 pairs: undefined, not made up
    # A rerun (another threshold) asks nothing: the answers are cached.
    again = ScriptedEngine({})
    judged, drops, stats = judge_documents(
        again, "m", ["a", "b", "c"], texts, JudgeConfig(enabled=True, min_score=2), cache
    )
    assert again.requests == [] and stats.cached == 3 and set(judged) == {"a", "b"}


# ------------------------------------------------- through `curate generate`, cached batches

REPHRASED = (
    "Tides are the regular rise and fall of the sea level that coastal towns see about twice a day. The Moon's gravity "
    "pulls hardest on the side of the Earth that faces it and draws the water there into a bulge; a second bulge forms "
    "on the far side, where the pull is weakest. As the Earth turns beneath the two bulges, each beach passes through "
    "high water and low water roughly every twelve hours and twenty-five minutes. When the Sun and the Moon line up at "
    "new and full moon, their pulls add together and give spring tides with the largest range; at the quarter moons "
    "they partly cancel and give the smaller neap tides."
)


def test_rephrase_and_judge_through_the_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    release = corpus(
        tmp_path, {"web-tides": "# What causes the tides\n\n" + TIDES, "web-heart": "# The heart\n\n" + HEART}
    )
    cfg = make_cfg(
        tmp_path,
        templates=["rephrase_encyclopedia"],
        engine={"model": str(tmp_path / "no-model")},
        judge={"enabled": True},
        dedup=False,
    )
    out = tmp_path / "out"
    prompts = G.make_plan(cfg, G.corpus_parts(release), 2)[0]
    by_seed = {p.seed.doc_id: p for p in prompts}
    invented = HEART.replace("seventy times", "72 times").replace("five litres", "5.5 litres")
    texts = [(REPHRASED if p.seed.doc_id == "web-tides" else invented, "stop") for p in prompts]
    ids = _write_raw(cfg, release, out, texts)
    engine = ScriptedEngine({"tides": ["Educational value: 4\nCorrectness: 4\nCoherence: 4\nOverall score: 4"]})
    manifest = json.loads(G.generate_command(cfg, release, 2, out, engine=engine).read_text())  # type: ignore[arg-type]
    [row] = pq.read_table(out / "data").to_pylist()
    meta = json.loads(row[S.METADATA])
    assert (
        row[S.ID] == f"synth-{by_seed['web-tides'].id}"
        and row["gen_seed_doc"] == "web-tides"
        and meta["kind"] == "rephrase"
    )
    assert meta["faithfulness"]["novel_numbers"] == [] and meta["faithfulness"]["word_recall"] >= 0.8
    assert meta["judge"] == {
        "score": 4,
        "criteria": {"educational value": 4, "correctness": 4, "coherence": 4},
        "attempts": 1,
        "model": str(tmp_path / "no-model"),
    }
    [drop] = pq.read_table(out / "rejected").to_pylist()
    assert (drop["id"], drop["reason"], drop["value"]) == (
        f"synth-{by_seed['web-heart'].id}",
        "unfaithful",
        "novel_numbers=2 (72, 5.5; max 0)",
    )
    counts = manifest["counts"]["generate"]
    assert counts["judge"]["scored"] == 1 and counts["tokens"]["dropped_share"] == 0.5
    assert counts["tokens"]["per_template"] == {
        "rephrase_encyclopedia": {"prompts": 2, "kept": 1, "completion_tokens": 200, "dropped_tokens": 100}
    }
    assert set(ids) == {p.id for p in prompts}

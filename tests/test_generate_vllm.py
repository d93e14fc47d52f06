"""`curate generate` end to end with real vLLM and the embedded SmolLM2-135M-Instruct, offline
on the CPU: a few prompts seeded by curated documents, short answers (200 tokens), then a
rerun that must generate nothing (slow: ~40 s, mostly the model load)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from curate.core import schema as S
from curate.synth import generate as G
from curate.synth.generate_config import SAMPLING_DEFAULTS
from tests.test_generate import ENGLISH, HEART, TIDES, corpus, make_cfg

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")


@pytest.mark.slow
def test_generate_writes_english_textbook_documents_with_provenance_and_resumes(tmp_path: Path) -> None:
    release = corpus(
        tmp_path,
        {
            "web-heart": "# How the heart pumps blood\n\n" + HEART,
            "web-tides": "# What causes the tides\n\n" + TIDES,
            "web-plants": "# Photosynthesis\n\n" + ENGLISH,
        },
    )
    cfg = make_cfg(
        tmp_path,
        n=6,
        batch_size=4,  # two batch files: resume works per batch
        templates=["textbook_academic", "lecture_notes"],
        audiences=["high school students"],
        sampling={"max_tokens": 200},
        truncated="trim",  # 200 tokens cut most sections; keep their complete sentences
        min_words=30,
        engine={"max_num_seqs": 8},
    )
    out = tmp_path / "out"
    manifest = json.loads(G.generate_command(cfg, release, None, out).read_text())
    counts = manifest["counts"]
    assert counts["ingested"] == 6 and counts["kept"] + counts["rejected"] == 6
    assert counts["kept"] >= 1, counts["by_reason"]
    gen = counts["generate"]["generation"]
    assert gen["batches"] == 2 and gen["requests"] == 6 and gen["completion_tokens"] > 0
    rows = pq.read_table(out / "data").to_pylist()
    for r in rows:
        assert r[S.LANG] == "en" and r[S.LANG_SCORE] >= 0.65
        assert (
            len(r[S.TEXT].split()) >= 30 and "<|im_end|>" not in r[S.TEXT] and not r[S.TEXT].lower().startswith("sure")
        )
        assert r[S.TEXT].rstrip()[-1] in ".!?\"')]*"  # trimmed back to a complete sentence
        assert r["synthetic"] is True and r["gen_model"] == G.EMBEDDED_MODEL
        assert r["gen_template"] in {"textbook_academic", "lecture_notes"} and r["gen_template_version"] == "1"
        assert r["gen_seed_doc"] in {"web-heart", "web-tides", "web-plants"}
        assert json.loads(r["gen_sampling"]) == {
            **SAMPLING_DEFAULTS,
            "max_tokens": 200,
        }  # neither template sets its own
        assert isinstance(r["gen_random_seed"], int) and r["quality_score"] is not None
        meta = json.loads(r[S.METADATA])
        assert meta["audience"] == (
            "college students" if r["gen_template"] == "lecture_notes" else "high school students"
        )
    ledger = pq.read_table(out / "rejected").to_pylist()
    assert all(x["stage"] == "generate" and x["reason"] for x in ledger)
    diversity = json.loads((out / "diversity.json").read_text())
    assert diversity["documents"] == counts["kept"] and diversity["topics"]["planned"] == 3

    # A rerun (as after a crash once every batch was written) generates nothing and writes
    # the same documents.
    first = {r[S.ID]: r[S.TEXT] for r in rows}
    again = json.loads(G.generate_command(cfg, release, None, out).read_text())["counts"]["generate"]["generation"]
    assert again["requests"] == 0 and again["batches_reused"] == 2
    assert {r[S.ID]: r[S.TEXT] for r in pq.read_table(out / "data").to_pylist()} == first


@pytest.mark.slow
def test_rephrase_writes_source_ids_and_faithfulness_with_real_vllm(tmp_path: Path) -> None:
    """Rephrase templates on the embedded model: every prompt is kept or in the ledger; a kept
    rewrite names its source and carries its measures; an unfaithful one says which limit it broke."""
    sources = {
        "web-heart": "# How the heart pumps blood\n\n" + HEART,
        "web-tides": "# What causes the tides\n\n" + TIDES,
        "web-plants": "# Photosynthesis\n\n" + ENGLISH,
    }
    release = corpus(tmp_path, sources)
    cfg = make_cfg(
        tmp_path,
        n=6,
        templates=["rephrase_encyclopedia", "rephrase_textbook"],
        truncated="trim",
        engine={"max_num_seqs": 8},
    )
    out = tmp_path / "out"
    counts = json.loads(G.generate_command(cfg, release, None, out).read_text())["counts"]
    assert counts["ingested"] == 6 and counts["kept"] + counts["rejected"] == 6
    measured = 0
    for r in pq.read_table(out / "data").to_pylist():
        faith = json.loads(r[S.METADATA])["faithfulness"]
        assert (
            r["gen_seed_doc"] in sources
            and faith["word_recall"] >= cfg.generate.faithfulness.min_word_recall
            and faith["novel_numbers"] == []
        )
        measured += 1
    for x in pq.read_table(out / "rejected").to_pylist():
        if x["reason"] == "unfaithful":
            assert x["value"].split("=")[0] in {"word_recall", "number_recall", "novel_numbers", "length_ratio"}
            measured += 1
    assert measured >= 1, counts["by_reason"]
    assert counts["generate"]["tokens"]["completion_tokens"] > 0

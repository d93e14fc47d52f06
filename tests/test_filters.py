"""Each rule's drop reason, read back from the ledger after a real run: language, Gopher
repetition, Gopher quality, C4, FineWeb. The first failing rule (in pipeline order) names the
reason; good English paragraphs pass everything."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from datatrove.data import Document

from curate.config import FiltersConfig, load_config
from curate.core.errors import ConfigError
from curate.core.schema import META_ANNOTATIONS, META_LANG, META_LANG_SCORE, META_REJECT, filter_column
from curate.select import run_select
from filters.annotate import FilterAnnotator
from filters.heuristics import build_filter, heuristic_annotators
from filters.language import LanguageAnnotator
from filters.registry import filter_stages

GOOD_IDS = ("good", "water", "rocks", "cells")

# id -> (stage, reason) expected in the ledger.
EXPECTED = {
    "french": ("language", "language_not_kept"),
    "repeated": ("gopher_repetition", "dup_line_frac"),
    "short": ("gopher_quality", "gopher_short_doc"),
    "lorem": ("c4", "lorem_ipsum"),
    "curly": ("c4", "curly_bracket"),
    "few-sentences": ("c4", "too_few_sentences"),
    "no-punct": ("fineweb", "line_punct_ratio"),
    "short-lines": ("fineweb", "short_line_ratio"),
}


@pytest.fixture(scope="module")
def filter_docs(texts) -> dict[str, str]:
    return {
        "good": texts.GOOD,
        "water": texts.WATER,
        "rocks": texts.ROCKS,
        "cells": texts.CELLS,
        "french": texts.FRENCH,
        "repeated": texts.REPEATED,
        "short": texts.SHORT,
        "lorem": texts.LOREM,
        "curly": texts.CURLY,
        "few-sentences": texts.FEW_SENTENCES,
        "no-punct": texts.NO_PUNCT,
        "short-lines": texts.SHORT_LINES,
    }


@pytest.fixture(scope="module")
def filter_run(tmp_path_factory, make_inputs, config_file, run_curate, filter_docs):
    root = tmp_path_factory.mktemp("filters")
    source = make_inputs(root / "in").jsonl("docs.jsonl", [{"id": k, "text": v} for k, v in filter_docs.items()])
    config = config_file(root / "recipe.yaml", name="filters")
    return run_curate(config, [source], root / "out")


@pytest.mark.parametrize("doc_id", sorted(EXPECTED))
def test_drop_reason_in_ledger(filter_run, doc_id: str) -> None:
    ledger = filter_run.ledger()
    rows = ledger.filter(pl.col("id") == doc_id).to_dicts()
    assert len(rows) == 1, f"{doc_id}: {rows}"
    assert (rows[0]["stage"], rows[0]["reason"]) == EXPECTED[doc_id]
    assert rows[0]["source"].endswith("docs.jsonl")


def test_good_paragraphs_pass_everything(filter_run, filter_docs) -> None:
    kept = filter_run.kept()
    assert sorted(kept["id"].to_list()) == sorted(GOOD_IDS)
    assert set(kept["lang"].to_list()) == {"en"}
    assert kept["lang_score"].min() >= 0.65
    annotated = filter_run.annotations().filter(pl.col("id").is_in(list(GOOD_IDS)))
    for stage in filter_stages():
        assert annotated[filter_column(stage)].null_count() == len(GOOD_IDS), stage
    # Kept text is the input text (C4 only drops lines it judges boilerplate; these have none).
    assert dict(zip(kept["id"], kept["text"])) == {k: filter_docs[k] for k in GOOD_IDS}


def test_language_value_names_the_language(filter_run) -> None:
    row = filter_run.ledger().filter(pl.col("id") == "french").row(0, named=True)
    assert row["value"] == "fr"
    annotated = filter_run.annotations().filter(pl.col("id") == "french").row(0, named=True)
    assert annotated["lang"] == "fr" and annotated["lang_score"] > 0.9


def test_annotations_record_every_failing_rule(filter_run) -> None:
    """Annotate scores every rule for every document; selection picks the first failure."""
    row = filter_run.annotations().filter(pl.col("id") == "repeated").row(0, named=True)
    assert row[filter_column("gopher_repetition")] == "dup_line_frac"
    assert row[filter_column("gopher_quality")] == "gopher_enough_stop_words"  # also failed, not the reason
    assert row[filter_column("fineweb")] == "char_dup_ratio"


def test_ledger_reason_counts_in_manifest(filter_run) -> None:
    by_reason = {(r["stage"], r["reason"]): r["documents"] for r in filter_run.manifest["counts"]["by_reason"]}
    expected: dict[tuple[str, str], int] = {}
    for stage_reason in EXPECTED.values():
        expected[stage_reason] = expected.get(stage_reason, 0) + 1
    assert by_reason == expected


# -------------------------------------------- selection thresholds, on the same annotations


def reselect(filter_run, tmp_path: Path, overrides: list[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    cfg = load_config(None, overrides)
    kept, ledger = run_select(cfg, filter_run.annotated_parts(), tmp_path / "kept", tmp_path / "ledger")
    return pl.concat([pl.read_parquet(p) for p in kept]), pl.concat([pl.read_parquet(p) for p in ledger])


def test_min_score_threshold(filter_run, tmp_path: Path) -> None:
    scores = dict(filter_run.annotations().select("id", "lang_score").iter_rows())
    threshold = sorted(scores[k] for k in GOOD_IDS)[1] + 1e-4  # between the 2nd and 3rd good score
    kept, ledger = reselect(filter_run, tmp_path, [f"language.min_score={threshold}"])
    low = {k for k in GOOD_IDS if scores[k] < threshold}
    assert len(low) == 2
    assert sorted(kept["id"]) == sorted(set(GOOD_IDS) - low)
    rows = {r["id"]: r for r in ledger.filter(pl.col("reason") == "low_language_score").to_dicts()}
    assert set(rows) >= low
    assert all(rows[k]["stage"] == "language" and rows[k]["value"] == str(round(scores[k], 4)) for k in low)


def test_keep_all_languages_moves_french_to_its_next_failure(filter_run, tmp_path: Path) -> None:
    _, ledger = reselect(filter_run, tmp_path, ["language.keep=[]"])
    row = ledger.filter(pl.col("id") == "french").row(0, named=True)
    assert (row["stage"], row["reason"]) == ("gopher_quality", "gopher_enough_stop_words")


def test_keep_french_only(filter_run, tmp_path: Path) -> None:
    kept, ledger = reselect(filter_run, tmp_path, ["language.keep=[fr]"])
    assert kept.is_empty()  # the French text fails Gopher's English stop words after all
    english = ledger.filter(pl.col("id").is_in(list(GOOD_IDS)))
    assert set(english["reason"]) == {"language_not_kept"} and set(english["value"]) == {"en"}


def test_disabled_rule_is_not_applied(filter_run, tmp_path: Path) -> None:
    kept, ledger = reselect(filter_run, tmp_path, ["filters.c4.enabled=false"])
    assert {"lorem", "curly"} <= set(kept["id"])
    # few-sentences failed C4 first; with C4 off, its next failure (FineWeb) is the reason.
    row = ledger.filter(pl.col("id") == "few-sentences").row(0, named=True)
    assert (row["stage"], row["reason"]) == ("fineweb", "line_punct_ratio")


# ------------------------------------------------------------------- the annotators alone


def test_filter_annotator_keeps_every_document(texts) -> None:
    docs = [
        Document(text=texts.GOOD, id="good", metadata={}),
        Document(text=texts.SHORT, id="short", metadata={}),
        Document(text="", id="unreadable", metadata={META_REJECT: ("malformed_json", "x")}),
    ]
    out = list(FilterAnnotator("gopher_quality", build_filter("gopher_quality", FiltersConfig())).run(iter(docs)))
    assert [d.id for d in out] == ["good", "short", "unreadable"]
    assert out[0].metadata[META_ANNOTATIONS] == {"gopher_quality": None}
    assert out[1].metadata[META_ANNOTATIONS] == {"gopher_quality": "gopher_short_doc"}
    assert META_ANNOTATIONS not in out[2].metadata  # rejected upstream: not scored


def test_filter_thresholds_come_from_config(texts) -> None:
    """Lowering Gopher's minimum word count lets the short text through."""
    cfg = load_config(None, ["filters.gopher_quality.min_doc_words=10", "filters.engine=datatrove"]).filters
    (annotator,) = [a for a in heuristic_annotators(cfg, filter_stages()) if a.stage == "gopher_quality"]
    (doc,) = annotator.run(iter([Document(text=texts.SHORT, id="short", metadata={})]))
    assert doc.metadata[META_ANNOTATIONS]["gopher_quality"] is None


def test_disabled_filters_build_no_annotator() -> None:
    cfg = load_config(
        None, ["filters.c4.enabled=false", "filters.fineweb.enabled=false", "filters.engine=datatrove"]
    ).filters
    assert [a.stage for a in heuristic_annotators(cfg, filter_stages())] == ["gopher_repetition", "gopher_quality"]


def test_language_annotator_labels(texts) -> None:
    docs = [
        Document(text=texts.FRENCH, id="fr", metadata={}),
        Document(text=texts.GOOD, id="en", metadata={}),
        Document(text="   ", id="blank", metadata={}),
    ]
    out = {d.id: d.metadata for d in LanguageAnnotator().run(iter(docs))}
    assert out["fr"][META_LANG] == "fr" and out["en"][META_LANG] == "en"
    assert 0.9 < out["en"][META_LANG_SCORE] <= 1.0
    assert META_LANG not in out["blank"]


def test_language_scores_are_probabilities(articles) -> None:
    """fastText returns slightly more than 1 for some sure predictions (seen on the Korean and
    Japanese articles); the annotated score stays within [0, 1]."""
    docs = [Document(text=a["text"], id=a["id"], metadata={}) for a in articles]
    scores = [d.metadata[META_LANG_SCORE] for d in LanguageAnnotator().run(iter(docs)) if META_LANG_SCORE in d.metadata]
    assert len(scores) == len(articles)
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert max(scores) == 1.0


def test_language_model_path_errors(tmp_path: Path) -> None:
    missing = tmp_path / "lid.ftz"
    with pytest.raises(ConfigError) as err:
        LanguageAnnotator(str(missing))
    assert (
        str(err.value)
        == f"fastText language-ID model not found: {missing}. Fix: set the path to an existing .bin/.ftz file"
    )
    junk = tmp_path / "junk.ftz"
    junk.write_bytes(b"not a model")
    with pytest.raises(ConfigError) as err:
        LanguageAnnotator(str(junk))
    assert str(err.value).startswith(f"{junk} is not a fastText language-ID model (")
    assert str(err.value).endswith("). Fix: point to a .bin/.ftz written by fastText")

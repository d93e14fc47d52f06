"""The heuristic-rule registry (filters.registry): a new rule is one config class plus one
registration, and it shows up in the recipe's `filters:` section, in the annotations, in
selection and in the ledger; the built-in rules pass their section through unchanged."""

from __future__ import annotations

import pickle
from pathlib import Path

import polars as pl
import pytest
from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter
from pydantic import Field

from curate.config import CurateConfig, FiltersConfig, load_config
from curate.core import schema as S
from curate.core.section import Section
from curate.select import run_select
from curate.writers import AnnotatedWriter
from filters.heuristics import build_filter, heuristic_annotators
from filters.language import LanguageAnnotator
from filters.registry import RULES, filter_stages, filters_config_model, register_rule


class ToyConfig(Section):
    enabled: bool = True
    word: str = Field(default="vapour", min_length=1)


class ToyFilter(BaseFilter):
    """Drops a document that mentions `word`."""

    name = "toy"

    def __init__(self, word: str) -> None:
        super().__init__()
        self.word = word

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        return (False, "toy_word") if self.word in doc.text else True


@pytest.fixture
def toy_rule():
    register_rule("toy", ToyConfig, ToyFilter)
    try:
        yield
    finally:
        RULES.pop("toy")


def test_builtin_rules_in_fineweb_order_and_sections_passed_through() -> None:
    assert filter_stages() == ("gopher_repetition", "gopher_quality", "c4", "fineweb")
    # the recipe's section follows the registry (after `engine`, how the rules run)
    assert list(FiltersConfig.model_fields) == ["engine", *filter_stages()]
    cfg = load_config(None, ["filters.c4.enabled=false"])
    assert pickle.loads(pickle.dumps(cfg)) == cfg  # configs travel to worker processes
    cfg = load_config(None, ["filters.gopher_quality.min_doc_words=7", "filters.c4.filter_policy=false"]).filters
    gopher, c4 = build_filter("gopher_quality", cfg), build_filter("c4", cfg)
    assert (gopher.min_doc_words, gopher.min_stop_words) == (7, 2)
    assert (c4.filter_policy, c4.min_num_sentences) == (False, 5)
    with pytest.raises(ValueError, match="unknown filter stage nope"):
        build_filter("nope", cfg)


def test_a_rule_without_an_enabled_switch_is_refused() -> None:
    class NoSwitch(Section):
        word: str = "x"

    with pytest.raises(TypeError, match="NoSwitch needs an `enabled: bool` field"):
        register_rule("no_switch", NoSwitch, ToyFilter)
    with pytest.raises(ValueError, match="a heuristic rule named 'c4' is registered already"):
        register_rule("c4", ToyConfig, ToyFilter)


def _stages(annotators: list) -> list[str]:
    """The rules a list of annotator steps covers, in order (FusedRules covers several)."""
    return [stage for a in annotators for stage in (list(a.filters) if hasattr(a, "filters") else [a.stage])]


def test_a_new_rule_is_one_class_and_one_registration(toy_rule, texts, tmp_path: Path) -> None:
    assert filter_stages()[-1] == "toy"
    cfg = CurateConfig()
    cfg.filters = filters_config_model(__name__, base=FiltersConfig)()  # the section as a recipe would now hold it
    assert cfg.filters.toy.word == "vapour"

    annotators = heuristic_annotators(cfg.filters, filter_stages())
    # filters.engine: fused (the default) runs the four built-in rules as one step, the new one after it
    assert _stages(annotators) == ["gopher_repetition", "gopher_quality", "c4", "fineweb", "toy"]
    assert [type(a).__name__ for a in annotators] == ["FusedRules", "FilterAnnotator"]
    docs = [
        Document(text=texts.GOOD, id="good", metadata={"source": "t.jsonl", "offset": 0}),
        Document(text=texts.WATER, id="water", metadata={"source": "t.jsonl", "offset": 1}),
    ]
    stream = iter(docs)
    for step in [LanguageAnnotator(), *annotators, AnnotatedWriter(str(tmp_path / "parts"), filter_stages())]:
        stream = step.run(stream)
    list(stream)
    part = tmp_path / "parts" / "00000.parquet"
    annotated = pl.read_parquet(part)
    assert annotated.columns == S.annotated_schema(filter_stages()).names
    assert dict(annotated.select(S.ID, S.filter_column("toy")).iter_rows()) == {"good": None, "water": "toy_word"}

    kept, ledger = run_select(cfg, [part], tmp_path / "kept", tmp_path / "ledger")
    assert pl.read_parquet(kept[0])[S.ID].to_list() == ["good"]
    assert pl.read_parquet(ledger[0]).select("id", "stage", "reason").rows() == [("water", "toy", "toy_word")]

    cfg.filters.toy.enabled = False  # switched off: neither annotated nor selected on
    assert "toy" not in _stages(heuristic_annotators(cfg.filters, filter_stages()))
    kept, _ = run_select(cfg, [part], tmp_path / "kept-off", tmp_path / "ledger-off")
    assert pl.read_parquet(kept[0])[S.ID].to_list() == ["good", "water"]

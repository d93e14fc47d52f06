"""The heuristic rules' settings, each registered with its datatrove filter (filters.registry).

Fields are the filter's own keyword arguments (plus `enabled`), passed through by name, so a
field here is a knob of the filter with our default and the reason for it. Registration order
is FineWeb's order of application; `filters.<name>` keys, YAML and stage keys follow the names."""

from __future__ import annotations

from typing import Literal

from datatrove.pipeline.filters import (
    C4QualityFilter,
    FineWebQualityFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
)
from pydantic import Field

from curate.core.section import Section
from filters.registry import filters_config_model, register_rule


class GopherRepetitionConfig(Section):
    """Gopher repetition rules: duplicated lines, paragraphs and n-grams."""

    enabled: bool = True
    dup_line_frac: float = Field(default=0.3, ge=0, le=1)
    dup_para_frac: float = Field(default=0.3, ge=0, le=1)
    dup_line_char_frac: float = Field(default=0.2, ge=0, le=1)
    dup_para_char_frac: float = Field(default=0.2, ge=0, le=1)


register_rule("gopher_repetition", GopherRepetitionConfig, GopherRepetitionFilter)


class GopherQualityConfig(Section):
    """Gopher (Rae et al. 2021, appendix A) document rules, as datatrove implements them."""

    enabled: bool = True
    min_doc_words: int = Field(default=50, ge=0)
    max_doc_words: int = Field(default=100_000, ge=1)
    min_avg_word_length: float = Field(default=3, ge=0)
    max_avg_word_length: float = Field(default=10, ge=0)
    max_symbol_word_ratio: float = Field(default=0.1, ge=0, le=1)
    max_bullet_lines_ratio: float = Field(default=0.9, ge=0, le=1)
    max_ellipsis_lines_ratio: float = Field(default=0.3, ge=0, le=1)
    max_non_alpha_words_ratio: float = Field(default=0.8, ge=0, le=1)
    min_stop_words: int = Field(default=2, ge=0)


register_rule("gopher_quality", GopherQualityConfig, GopherQualityFilter)


class C4Config(Section):
    """C4 rules. Defaults follow FineWeb: no per-line terminal-punctuation cut (it removed too
    much good text in FineWeb's ablations), everything else as in C4."""

    enabled: bool = True
    filter_no_terminal_punct: bool = False
    min_num_sentences: int = Field(default=5, ge=-1)
    min_words_per_line: int = Field(default=3, ge=-1)
    max_word_length: int = Field(default=1000, ge=-1)
    filter_lorem_ipsum: bool = True
    filter_javascript: bool = True
    filter_curly_bracket: bool = True
    filter_policy: bool = True


register_rule("c4", C4Config, C4QualityFilter)


class FineWebConfig(Section):
    """FineWeb's own three rules (Penedo et al. 2024), values from their ablations."""

    enabled: bool = True
    line_punct_thr: float = Field(default=0.12, ge=0, le=1)
    short_line_thr: float = Field(default=0.67, ge=0, le=1)
    short_line_length: int = Field(default=30, ge=1)
    char_duplicates_ratio: float = Field(default=0.01, ge=0, le=1)
    new_line_ratio: float = Field(default=0.3, ge=0, le=1)


register_rule("fineweb", FineWebConfig, FineWebQualityFilter)


class FiltersEngine(Section):
    """The `filters:` keys that are not a rule: how the registered rules run."""

    # fused: the four rule sets in one step, one word tokenisation per document
    # (filters/fused_rules.py; the same decisions as datatrove's filters on every real page
    # measured, bench/bench_fused_rules.py). datatrove: each rule through datatrove's own filter.
    engine: Literal["fused", "datatrove"] = "fused"


# Applied in registration order (FineWeb's); a document's drop reason is the first rule it fails.
FiltersConfig = filters_config_model(__name__, base=FiltersEngine)

"""Gopher, C4 and FineWeb rules: datatrove's own filters, built from our config."""

from __future__ import annotations

from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.filters import (
    C4QualityFilter,
    FineWebQualityFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
)
from datatrove.pipeline.filters.base_filter import BaseFilter

from curate.config import FiltersConfig
from filters.annotate import FilterAnnotator


def build_filter(stage: str, cfg: FiltersConfig) -> BaseFilter:
    if stage == "gopher_repetition":
        c = cfg.gopher_repetition
        return GopherRepetitionFilter(
            dup_line_frac=c.dup_line_frac,
            dup_para_frac=c.dup_para_frac,
            dup_line_char_frac=c.dup_line_char_frac,
            dup_para_char_frac=c.dup_para_char_frac,
        )
    if stage == "gopher_quality":
        q = cfg.gopher_quality
        return GopherQualityFilter(
            min_doc_words=q.min_doc_words,
            max_doc_words=q.max_doc_words,
            min_avg_word_length=q.min_avg_word_length,
            max_avg_word_length=q.max_avg_word_length,
            max_symbol_word_ratio=q.max_symbol_word_ratio,
            max_bullet_lines_ratio=q.max_bullet_lines_ratio,
            max_ellipsis_lines_ratio=q.max_ellipsis_lines_ratio,
            max_non_alpha_words_ratio=q.max_non_alpha_words_ratio,
            min_stop_words=q.min_stop_words,
        )
    if stage == "c4":
        c4 = cfg.c4
        return C4QualityFilter(
            filter_no_terminal_punct=c4.filter_no_terminal_punct,
            min_num_sentences=c4.min_num_sentences,
            min_words_per_line=c4.min_words_per_line,
            max_word_length=c4.max_word_length,
            filter_lorem_ipsum=c4.filter_lorem_ipsum,
            filter_javascript=c4.filter_javascript,
            filter_curly_bracket=c4.filter_curly_bracket,
            filter_policy=c4.filter_policy,
        )
    if stage == "fineweb":
        f = cfg.fineweb
        return FineWebQualityFilter(
            line_punct_thr=f.line_punct_thr,
            short_line_thr=f.short_line_thr,
            short_line_length=f.short_line_length,
            char_duplicates_ratio=f.char_duplicates_ratio,
            new_line_ratio=f.new_line_ratio,
        )
    raise ValueError(f"unknown filter stage {stage}")


def heuristic_annotators(cfg: FiltersConfig, stages: tuple[str, ...]) -> list[PipelineStep]:
    enabled = [stage for stage in stages if getattr(cfg, stage).enabled]
    if cfg.engine == "fused" and enabled:
        from filters.fused_rules import FusedRules

        return [FusedRules({stage: build_filter(stage, cfg) for stage in enabled})]
    return [FilterAnnotator(stage, build_filter(stage, cfg)) for stage in enabled]

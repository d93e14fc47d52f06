"""Gopher, C4 and FineWeb rules: datatrove's own filters, built from their registered config
sections (filters.registry, filters.config)."""

from __future__ import annotations

from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.filters.base_filter import BaseFilter

from filters.annotate import FilterAnnotator
from filters.config import FiltersConfig
from filters.registry import RULES


def build_filter(stage: str, cfg: FiltersConfig) -> BaseFilter:
    if stage not in RULES:
        raise ValueError(f"unknown filter stage {stage}")
    return RULES[stage].build(getattr(cfg, stage))


def heuristic_annotators(cfg: FiltersConfig, stages: tuple[str, ...]) -> list[PipelineStep]:
    enabled = [stage for stage in stages if getattr(cfg, stage).enabled]
    if cfg.engine == "fused" and enabled:
        from filters.fused_rules import FusedRules

        return [FusedRules({stage: build_filter(stage, cfg) for stage in enabled})]
    return [FilterAnnotator(stage, build_filter(stage, cfg)) for stage in enabled]

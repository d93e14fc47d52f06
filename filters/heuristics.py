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
    built = {stage: build_filter(stage, cfg) for stage in stages if getattr(cfg, stage).enabled}
    steps: list[PipelineStep] = []
    if cfg.engine == "fused":
        from filters.fused_rules import FusedRules, has_fused_form

        # The leading rules FusedRules reproduces run as one step (one tokenisation); a rule
        # registered later, with no fused form, then runs as its own filter, on the text as
        # the rules before it left it (C4 rewrites lines), in registration order.
        fused: dict[str, BaseFilter] = {}
        for stage, f in built.items():
            if not has_fused_form(stage, f):
                break
            fused[stage] = f
        if fused:
            steps.append(FusedRules(fused))
        built = {stage: f for stage, f in built.items() if stage not in fused}
    return steps + [FilterAnnotator(stage, f) for stage, f in built.items()]

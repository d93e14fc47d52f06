"""Release hygiene: checks every document passes before dedup, so that a duplicate of a
dropped page is never kept as its survivor.

The hygiene stage of `curate run` (curate.hygiene.stage) runs a list of steps over each kept
document of `select`, in order. A step is any object with a `name` (its ledger stage) and
`apply(doc) -> Drop | None`: `doc` is the document row as a dict (DOCUMENT_SCHEMA columns); a
step may rewrite `doc["text"]` or `doc["metadata"]` (JSON text) in place (PII redaction), or
return a Drop (the document leaves with that ledger row). `build_steps` is the one place that
says which steps run and in which order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from curate.config import CurateConfig


@dataclass
class Drop:
    """A ledger row's verdict: stage, reason, value (what was found: a benchmark, a list),
    matched (the evidence: the matched span, the list entry)."""

    stage: str
    reason: str
    value: str | None = None
    matched: str | None = None


class HygieneStep(Protocol):
    name: str

    def apply(self, doc: dict) -> Drop | None: ...


# Config sections the hygiene stage reads: its cache key. Add a section here with its step.
HYGIENE_SECTIONS: tuple[str, ...] = ("urls", "decontam", "pii")


def build_steps(cfg: CurateConfig) -> list[HygieneStep]:
    """The enabled steps, in the order they run. Cheap drops first; decontamination before
    any step that rewrites text (redaction would break a benchmark span)."""
    steps: list[HygieneStep] = []
    # URL / domain filter (issue 17 item 3) goes first: it drops on the URL alone.
    if cfg.urls.enabled:
        from curate.hygiene.urls import URLStep

        steps.append(URLStep(cfg.urls))
    if cfg.decontam.enabled:
        from curate.hygiene.decontam import DecontamStep

        steps.append(DecontamStep(cfg.decontam))
    # PII redaction (issue 17 item 2) goes last: it rewrites doc["text"] of kept documents.
    if cfg.pii.enabled:
        from curate.hygiene.pii import PIIStep

        steps.append(PIIStep(cfg.pii))
    return steps


def hygiene_enabled(cfg: CurateConfig) -> bool:
    return cfg.urls.enabled or cfg.decontam.enabled or cfg.pii.enabled

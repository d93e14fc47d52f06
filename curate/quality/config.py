"""The `quality:` section of a recipe: which classifier scores documents, and the cut."""

from __future__ import annotations

from pydantic import Field

from curate.config_base import Section


class QualityConfig(Section):
    # Score every document with the textbook-quality classifier. Off: no `quality_score`
    # column is written and selection ignores quality.
    enabled: bool = True
    # A fastText .bin/.ftz written by `curate classifier train`. Empty: the model that ships
    # in curate/models/ (trained on openly licensed text; see its model card).
    model_path: str = ""
    # Documents whose P(educational) is below this go to the ledger as quality/low_quality.
    # 0.5 is the shipped model's max-F1 threshold rounded (its card has the exact value);
    # FineWeb-Edu's score-3 cut keeps ~8% of web text, this one keeps more because the demo
    # is small and the model is a first version.
    min_score: float = Field(default=0.5, ge=0, le=1)
    # Only the first 20k characters (~3.5k words) are scored: fastText averages word
    # vectors, so the opening of a page decides as well as the whole, and a 5 MB record
    # no longer costs 250x a normal page.
    max_chars: int = Field(default=20_000, ge=100)

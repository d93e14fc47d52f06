"""The `quality:` section of a recipe: which classifier scores documents, and the cut."""

from __future__ import annotations

from pydantic import Field

from curate.config_base import Section


class QualityConfig(Section):
    # Score every document with the textbook-quality classifier (column `quality_score`).
    # Off: the column stays null and selection ignores quality. Off by default: the classifier
    # encodes one idea of "educational"; recipes that want it (configs/demo.yaml does) turn it
    # on and choose min_score deliberately.
    enabled: bool = False
    # A fastText .bin/.ftz written by `curate classifier train`. Empty: the model that ships
    # in curate/models/quality-edu.ftz (trained on openly licensed text; see its card).
    model_path: str = ""
    # Documents whose P(educational) is below this go to the ledger as quality/low_quality.
    # null: the threshold in the model's card (the max-F1 point on its held-out split; 0.809
    # for the shipped model: on the held-out web-like set without its documentation chunks it
    # keeps 90% of the educational documents at 69% precision; with them, 84% at 90%). Lower it to trade
    # precision for recall: on the demo sample 0.35 keeps all 16 explanatory texts, 0.809
    # keeps 15 (compound interest scores 0.74).
    min_score: float | None = Field(default=None, ge=0, le=1)
    # Only the first 20k characters (~3.5k words) are scored, so a 5 MB record costs what
    # a long article does (FineWeb-Edu's classifier reads even less: its first 512 tokens).
    max_chars: int = Field(default=20_000, ge=100)


def effective_min_score(cfg: QualityConfig) -> float:
    """`min_score`, or the model card's threshold when it is null (0.5 without a card)."""
    if cfg.min_score is not None:
        return cfg.min_score
    from curate.quality.model import DEFAULT_MODEL, DEFAULT_THRESHOLD, load_card

    return float(load_card(cfg.model_path or DEFAULT_MODEL).get("threshold", DEFAULT_THRESHOLD))


def model_fingerprint(cfg: QualityConfig) -> str:
    """sha256 of the model file: part of annotate's cache key, so that a rebuilt model at the
    same path re-scores instead of reusing stale scores ("" when quality is off)."""
    if not cfg.enabled:
        return ""
    from pathlib import Path

    from curate.parquet_io import sha256_file
    from curate.quality.model import DEFAULT_MODEL

    path = Path(cfg.model_path or DEFAULT_MODEL)
    if not path.is_file():
        return f"missing:{path}"  # the annotator then stops the run with the fix
    return sha256_file(path)

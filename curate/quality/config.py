"""The `quality:` section of a recipe: which classifier scores documents, and the cut."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from curate.core.section import Section


class QualityConfig(Section):
    # Score every document with the textbook-quality classifier (column `quality_score`).
    # Off: the column stays null and selection ignores quality. Off by default: the classifier
    # encodes one idea of "educational"; recipes that want it (configs/demo.yaml does) turn it
    # on and choose min_score deliberately.
    enabled: bool = False
    # A fastText .bin/.ftz written by `curate classifier train`. Empty: the model that ships
    # in curate/models/quality-edu.ftz (trained on openly licensed text; see its card).
    model_path: str = ""
    # Documents whose quality_score is below this go to the ledger as quality/low_quality.
    # null: the threshold in the card of the scorer in use: scorer=combined, the max-F1 point of
    # the out-of-fold held-out scores in quality-combined.json (0.385: recall 0.87 at precision
    # 0.65 on held-out crawl pages; raise it, or use min_bucket, for a stricter cut); scorer=edu, the max-F1 point on
    # the edu model's held-out split (quality-edu.card.json).
    min_score: float | None = Field(default=None, ge=0, le=1)
    # Which score `quality_score` holds and min_score cuts: "combined", P(good pretraining text)
    # from a logistic regression over the educational classifier, the general-quality classifier
    # and structure signals (ROC-AUC 0.85 on held-out real crawl pages, site-disjoint, where the
    # educational classifier alone gives 0.83 and word count 0.64: heldout_metrics in
    # curate/models/quality-combined.json); or "edu", P(educational) alone over max_chars (the
    # score before the combined model; no faster: the combined score reads shorter openings,
    # bench/RESULTS-quality.md). quality_edu and quality_bucket are
    # written either way, quality_general only by "combined".
    scorer: Literal["combined", "edu"] = "combined"
    # The combined model's JSON (coefficients, scorers). Empty: curate/models/quality-combined.json.
    combined_path: str = ""
    # Select by bucket instead of score: documents with quality_bucket below this (0-19) go to
    # the ledger as quality/low_quality. null: cut by min_score. Set one of the two, not both.
    min_bucket: int | None = Field(default=None, ge=0, le=19)
    # Only the first 20k characters (~3.5k words) are scored, so a 5 MB record costs what
    # a long article does (FineWeb-Edu's classifier reads even less: its first 512 tokens).
    max_chars: int = Field(default=20_000, ge=100)

    @model_validator(mode="after")
    def _one_cut(self) -> "QualityConfig":
        if self.min_score is not None and self.min_bucket is not None:
            raise ValueError(
                "quality.min_score and quality.min_bucket are both set. Fix: keep one of them and set the other to null"
            )
        return self


def effective_min_score(cfg: QualityConfig) -> float:
    """`min_score`, or the threshold in the card of the scorer in use when it is null (0.5
    without a card)."""
    if cfg.min_score is not None:
        return cfg.min_score
    if cfg.scorer == "combined":
        from curate.quality.combined import DEFAULT_COMBINED, Combined

        return Combined.load(cfg.combined_path or DEFAULT_COMBINED).threshold
    from curate.quality.model import DEFAULT_MODEL, DEFAULT_THRESHOLD, load_card

    return float(load_card(cfg.model_path or DEFAULT_MODEL).get("threshold", DEFAULT_THRESHOLD))


def model_fingerprint(cfg: QualityConfig) -> str:
    """sha256 of the model file: part of annotate's cache key, so that a rebuilt model at the
    same path re-scores instead of reusing stale scores ("" when quality is off)."""
    if not cfg.enabled:
        return ""
    from pathlib import Path

    from curate.core.parquet_io import sha256_file
    from curate.quality.model import DEFAULT_MODEL

    paths = [Path(cfg.model_path or DEFAULT_MODEL)]
    if cfg.scorer == "combined":
        import json

        from curate.quality.combined import DEFAULT_COMBINED

        combined = Path(cfg.combined_path or DEFAULT_COMBINED)
        paths.append(combined)
        if combined.is_file():
            general = json.loads(combined.read_text(encoding="utf-8")).get("scorers", {}).get("general")
            if general:
                paths.append(combined.parent / general["model_file"])
    missing = [p for p in paths if not p.is_file()]
    if missing:
        return f"missing:{missing[0]}"  # the annotator then stops the run with the fix
    fingerprints = [sha256_file(p) for p in paths]
    return fingerprints[0] if len(fingerprints) == 1 else "+".join(fingerprints)


# ------------------------------------------------------------ `curate classifier` settings
# The settings of the classifier commands, under `classifier:` in a recipe or as
# `--set classifier.train.epoch=5`. They change no run's output, so they are left out of the
# config hash and of config.resolved.yaml (curate.config.NOT_IN_RUN).


class ClassifierTrainConfig(Section):
    text_field: str = "text"
    label_field: str = "label"  # 0/1, or a score 0-5
    score_threshold: float = 3  # scores >= this are positive (FineWeb-Edu: 3)
    label_kind: Literal["auto", "binary", "score"] = "auto"
    # Chunks sharing this field stay on one side of the split ("" or absent: each line is its own group).
    group_field: str = "group"
    heldout: float = 0.1  # the share held out for metrics and the threshold
    seed: int = 1
    # fastText hyper-parameters; null: curate.quality.train.TrainParams's default (and its reason).
    epoch: int | None = None
    lr: float | None = None
    dim: int | None = None
    word_ngrams: int | None = None
    minn: int | None = None  # shortest character n-gram inside words (0: none)
    maxn: int | None = None  # longest character n-gram inside words (0: none)
    provenance: str | None = None  # a JSON file saying where the data came from; copied into the card


class ClassifierEvalConfig(Section):
    text_field: str = "text"
    label_field: str = "label"
    score_threshold: float = 3
    # Decision threshold; null: the model card's (with --model), else quality.min_score's.
    threshold: float | None = None


class ClassifierAnnotateConfig(Section):
    n: int = Field(default=100, ge=1)  # documents to sample
    seed: int = 1
    text_field: str = "text"
    id_field: str = "id"
    max_chars: int = Field(default=4_000, ge=1)  # characters of each document shown to the model
    max_tokens: int = Field(default=256, ge=1)  # length of the model's answer


class ClassifierConfig(Section):
    train: ClassifierTrainConfig = Field(default_factory=ClassifierTrainConfig)
    eval: ClassifierEvalConfig = Field(default_factory=ClassifierEvalConfig)
    annotate: ClassifierAnnotateConfig = Field(default_factory=ClassifierAnnotateConfig)

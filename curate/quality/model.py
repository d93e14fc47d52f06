"""Loading a quality model and its card, and scoring texts with it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from curate.core.errors import ConfigError
from curate.quality.normalize import normalize

# The positive class: "educational" (label 1). fastText prefixes labels with __label__.
POSITIVE = "__label__1"
NEGATIVE = "__label__0"
DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "models" / "quality-edu.ftz"
# Without a card the decision threshold is the natural one of a two-class softmax.
DEFAULT_THRESHOLD = 0.5


def card_path(model_path: str | Path) -> Path:
    """quality-edu.ftz -> quality-edu.card.json (beside the model, so they travel together)."""
    p = Path(model_path)
    return p.with_name(p.stem + ".card.json")


def load_card(model_path: str | Path) -> dict[str, Any]:
    """The model card, or {} when the model has none (a model trained elsewhere)."""
    p = card_path(model_path)
    if not p.is_file():
        return {}
    try:
        card = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"model card {p} is not valid JSON ({exc}). Fix: rebuild it with `curate classifier train` or delete it"
        ) from None
    return card if isinstance(card, dict) else {}


def load_fasttext_model(path: str | Path):
    """fastText's loader, failing with a message that names the file and the fix (the same
    contract as filters.language.load_fasttext)."""
    from filters.language import load_fasttext

    return load_fasttext(path, "quality model")


class QualityModel:
    """A fastText classifier with labels __label__0/__label__1 and its card's threshold."""

    def __init__(self, path: str | Path, max_chars: int = 20_000) -> None:
        self.path = Path(path)
        self.model = load_fasttext_model(self.path)
        labels = set(self.model.get_labels())
        if POSITIVE not in labels:
            raise ConfigError(
                f"{self.path} is a fastText model without the label {POSITIVE} (it has {sorted(labels)[:5]}); "
                "it is not a quality model. Fix: train one with `curate classifier train`"
            )
        self.card = load_card(self.path)
        self.threshold = float(self.card.get("threshold", DEFAULT_THRESHOLD))
        self.max_chars = max_chars
        self._k = len(labels)

    def score_normalized(self, texts: list[str]) -> list[float]:
        """P(educational) for texts already passed through `normalize`. One batched call:
        fastText's multi-line predict stays in C++ (~1.5x faster than one call per text)."""
        if not texts:
            return []
        return positive_probs(self.model, texts, POSITIVE, self._k)

    def score(self, texts: list[str]) -> list[float]:
        return self.score_normalized([normalize(t, self.max_chars) for t in texts])


def load_quality_model(path: str | Path | None = None, max_chars: int = 20_000) -> QualityModel:
    """The model at `path`, or the one that ships with curate when path is empty."""
    return QualityModel(path or DEFAULT_MODEL, max_chars=max_chars)


def positive_probs(model: Any, texts: list[str], positive: str = POSITIVE, k: int | None = None) -> list[float]:
    """P(positive label) of each normalised text in one batched fastText call (k: all labels)."""
    if not texts:
        return []
    labels, probs = model.predict(texts, k=k or len(model.get_labels()))
    out: list[float] = []
    for lab, pr in zip(labels, probs):
        p = 0.0
        for name, value in zip(lab, pr):
            if name == positive:
                p = float(value)
                break
        # fastText's softmax adds 1e-5 before normalising; clamp so scores stay in [0, 1].
        out.append(min(1.0, max(0.0, p)))
    return out

"""The combined quality score: a logistic regression over the scorers (the educational
fastText classifier, the general-quality fastText classifier, the structure signals of
curate.quality.structure), stored as coefficients in a small JSON beside the models
(curate/models/quality-combined.json) and applied in numpy: no scikit-learn at run time
(it is not in the lock; a dot product needs none).

The output is P(good pretraining text) under the training labels, calibrated by the
regression itself (log loss), in [0, 1]; `bucket` cuts it into 20 equal-width buckets
0-19 (as Nemotron-CC's score buckets), 19 the best."""

from __future__ import annotations

import functools
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from curate.core.errors import ConfigError
from curate.core.parquet_io import sha256_file
from curate.quality.model import load_fasttext_model, positive_probs
from curate.quality.normalize import normalize
from curate.quality.structure import NAMES as STRUCTURE_NAMES
from curate.quality.structure import signals_batch

MODELS = Path(__file__).resolve().parent.parent / "models"
DEFAULT_COMBINED = MODELS / "quality-combined.json"
BUCKETS = 20
# A probability of exactly 0 or 1 has no logit; fastText's own floor is ~1e-5.
EPS = 1e-5
# Under the combined score the educational model reads the opening 5,000 characters of a
# document (FineWeb-Edu's classifier reads 512 tokens, ~2,500 characters). Measured on the 504
# WCXB test pages (bench/RESULTS-quality.md), ROC-AUC for "educational", 20,000 -> 5,000
# characters: 0.900 -> 0.900 on trafilatura's extraction (what the stage sees after curate's
# extract), 0.922 -> 0.919 on the main text, but 0.886 -> 0.839 on whole pages with navigation
# (8,000: 0.871), where menus fill the opening. It is what keeps the stage with every scorer
# >= 0.8x of a bare predict loop (8,000 characters: ~0.65x). The card records it
# (scorers.edu.max_chars); `quality.scorer: edu` still reads quality.max_chars.
EDU_CHARS = 5_000
# Both fastText scorers read the prose lines of a document, the lines of at least this many
# words in its opening quality.max_chars characters, before the EDU_CHARS cut: on a whole page
# (a WET record, navigation and all) the menus no longer fill the models' opening. Measured on
# 799 WCXB pages no scorer trained on (bench/RESULTS-quality.md), ROC-AUC of the edu model for
# "educational" on whole pages 0.807 -> 0.894 (4 words: 0.862, 8: 0.897), unchanged on extracted
# text (0.900 -> 0.899); the combined score 0.833 -> 0.845 on all views. ~0.07 ms a document,
# ~7 % of one predict. The card records it (scorers.edu.prose_min_words; 0 or absent: no filter).
PROSE_MIN_WORDS = 6


def logit(p: float) -> float:
    p = min(1 - EPS, max(EPS, p))
    return math.log(p / (1 - p))


def prose_lines(text: str, min_words: int, max_chars: int) -> str:
    """The lines (split at newlines) of `text`'s opening `max_chars` characters that hold at least
    `min_words` words (runs of non-blanks, as str.split counts them), joined by newlines; the text
    itself, cut, when min_words is 0. Regular expressions: half the time of a Python loop that
    splits every line (bench/RESULTS-quality.md)."""
    if min_words <= 0:
        return text[:max_chars]
    first, rest = _prose_re(min_words)
    lines = rest.findall(text, 0, max_chars)  # endpos: no copy of the opening
    head = first.match(text, 0, max_chars)
    if head:
        lines.insert(0, head.group())
    return "\n".join(lines)


@functools.lru_cache(maxsize=8)
def _prose_re(min_words: int) -> tuple[re.Pattern[str], re.Pattern[str]]:
    # A line: optional blanks, then min_words runs of non-blanks separated by blanks (newline excluded).
    # Possessive quantifiers (*+, ++): a run of blanks or non-blanks is never given back, since the
    # two sets are disjoint no match changes, and a line of fewer words fails without backtracking
    # into its words (~25 % faster on bench_quality's documents). The first line is matched at 0;
    # every other line after its newline, a literal the search jumps to (~7 % faster than `^` with
    # re.MULTILINE, which is tried at every position of a short line).
    line = rf"[^\S\n]*+(?:\S++[^\S\n]++){{{min_words - 1}}}\S[^\n]*+"
    return re.compile(line), re.compile(rf"\n({line})")


def bucket(score: float, buckets: int = BUCKETS) -> int:
    """0..buckets-1, equal-width over [0, 1]; a score of 1.0 is in the top bucket."""
    return min(buckets - 1, max(0, int(score * buckets)))


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0, iters: int = 50) -> tuple[np.ndarray, float]:
    """L2-regularised logistic regression by Newton's method (IRLS) on standardised inputs;
    deterministic (no random init, no SGD). The intercept is not penalised."""
    n, d = x.shape
    xa = np.hstack([x, np.ones((n, 1))])
    w = np.zeros(d + 1)
    penalty = np.full(d + 1, l2)
    penalty[-1] = 0.0
    for _ in range(iters):
        p = 1 / (1 + np.exp(-(xa @ w)))
        grad = xa.T @ (p - y) + penalty * w
        hess = (xa * (p * (1 - p))[:, None]).T @ xa + np.diag(penalty) + 1e-9 * np.eye(d + 1)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.max(np.abs(step)) < 1e-10:
            break
    return w[:-1], float(w[-1])


@dataclass
class Combined:
    """The regression: input names, standardisation, coefficients."""

    features: list[str]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    threshold: float
    card: dict[str, Any]

    @classmethod
    def load(cls, path: str | Path) -> "Combined":
        p = Path(path)
        if not p.is_file():
            raise ConfigError(
                f"combined quality model {p} not found. Fix: set quality.combined_path to a file written by "
                "scripts/build_combined_quality.py, or leave it empty for the shipped one"
            )
        try:
            card = json.loads(p.read_text(encoding="utf-8"))
            reg = card["regression"]
            return cls(
                list(reg["features"]),
                np.asarray(reg["mean"], float),
                np.asarray(reg["scale"], float),
                np.asarray(reg["coef"], float),
                float(reg["intercept"]),
                float(card.get("threshold", 0.5)),
                card,
            )
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ConfigError(
                f"combined quality model {p} is not a combined-model JSON ({type(exc).__name__}: {exc}). Fix: rebuild "
                "it with scripts/build_combined_quality.py"
            ) from None

    def predict(self, x: np.ndarray) -> np.ndarray:
        z = ((x - self.mean) / self.scale) @ self.coef + self.intercept
        return 1 / (1 + np.exp(-z))


def feature_rows(
    texts: list[str], prose: list[str], edu: list[float], general: list[float] | None, max_chars: int
) -> np.ndarray:
    """One row per text: the structure signals, the log of the characters of its prose lines
    (`prose`: prose_lines of each text), the short-prose hinge of that, then logit(edu) and
    logit(general) (the order of `input_names`)."""
    prose_chars = np.log1p(np.fromiter((len(p) for p in prose), dtype=float, count=len(prose)))
    cols = [
        signals_batch(texts, max_chars),
        prose_chars[:, None],
        short_prose(prose_chars)[:, None],
        _logits(edu)[:, None],
    ]
    if general is not None:
        cols.append(_logits(general)[:, None])
    return np.hstack(cols)


def _logits(p: list[float]) -> np.ndarray:
    q = np.clip(np.asarray(p, dtype=float), EPS, 1 - EPS)
    return np.log(q / (1 - q))


# The length of a page's prose (characters of its lines of >= PROSE_MIN_WORDS words, over the
# window the scorers filter): a length that navigation does not inflate. Out-of-fold ROC-AUC
# +0.003 on all views, +0.010 on whole pages (bench/RESULTS-quality.md). Characters, not words:
# counting words cost ~25 % of a predict, and in log scale the two differ by the mean word length.
PROSE_LENGTH = "log_prose_chars"


# A hinge on short prose: how far log(1 + prose characters) falls below log(1 + SHORT_PROSE_CHARS),
# 0 above it. A linear score cannot bend at "too short to be a document" by itself (log_prose_chars
# is one straight line over 20-character stubs and long articles alike). On 260 real Common Crawl
# documents read for it (many short junk pages), out-of-fold ROC-AUC 0.901 -> 0.928; no change
# beyond noise on the WCXB pages and news pages (bench/RESULTS-quality.md, round 4). Computed from
# a column already there: no cost.
SHORT_PROSE = "short_prose_hinge"
SHORT_PROSE_CHARS = 1_500


def short_prose(log_prose_chars: np.ndarray) -> np.ndarray:
    """max(0, log(1 + SHORT_PROSE_CHARS) - log_prose_chars), element-wise."""
    return np.maximum(0.0, math.log1p(SHORT_PROSE_CHARS) - log_prose_chars)


def input_names(with_general: bool) -> list[str]:
    return (
        list(STRUCTURE_NAMES) + [PROSE_LENGTH, SHORT_PROSE, "edu_logit"] + (["general_logit"] if with_general else [])
    )


class CombinedScorer:
    """Every scorer of a document in one call: P(educational), P(good) from the general
    classifier, the combined score and its bucket. Both fastText models read one normalisation
    of the document's prose lines (the card's prose_min_words); the structure signals read the
    text as it is."""

    def __init__(self, combined_path: str | Path = "", edu_path: str | Path = "", max_chars: int = 20_000) -> None:
        self.combined_path = Path(combined_path or DEFAULT_COMBINED)
        self.combined = Combined.load(self.combined_path)
        base = Path(combined_path or DEFAULT_COMBINED).parent
        scorers = self.combined.card.get("scorers", {})
        self.edu_path = Path(edu_path) if edu_path else base / scorers["edu"]["model_file"]
        fitted_on = scorers["edu"].get("sha256")
        if edu_path and fitted_on and Path(edu_path).is_file() and sha256_file(Path(edu_path)) != fitted_on:
            # The regression's weights are for the logits of the model it was fitted on; another
            # model's scores would make its threshold and buckets meaningless (review).
            raise ConfigError(
                f"quality.model_path is {edu_path}, but the combined model {self.combined_path} was fitted on "
                f"{scorers['edu']['model_file']} (sha256 {fitted_on[:12]}...). Fix: set quality.scorer: edu to select "
                "by "
                "your model alone, or leave quality.model_path empty to use the combined score"
            )
        self.edu = load_fasttext_model(self.edu_path)
        general = scorers.get("general")
        self.general = load_fasttext_model(base / general["model_file"]) if general else None
        self.general_chars = int(general.get("normalized_chars", max_chars)) if general else 0
        self.max_chars = max_chars
        # Both models read one normalisation of the opening edu_chars characters.
        self.edu_chars = min(max_chars, int(scorers["edu"].get("max_chars", max_chars)))
        self.prose_min_words = int(scorers["edu"].get("prose_min_words", 0))
        if self.combined.features != input_names(self.general is not None):
            raise ConfigError(
                f"{combined_path or DEFAULT_COMBINED}: its inputs {self.combined.features} are not the ones this "
                "curate computes. Fix: rebuild it with scripts/build_combined_quality.py"
            )

    def score(self, texts: list[str]) -> dict[str, list]:
        """{"edu": [...], "general": [...] or None, "combined": [...], "bucket": [...]}."""
        if not texts:
            return {"edu": [], "general": [] if self.general else None, "combined": [], "bucket": []}
        prose = [prose_lines(t, self.prose_min_words, self.max_chars) for t in texts]
        norm = [normalize(t, self.edu_chars) for t in prose]
        edu = positive_probs(self.edu, norm)
        general = positive_probs(self.general, [t[: self.general_chars] for t in norm]) if self.general else None
        combined = self.combined.predict(feature_rows(texts, prose, edu, general, self.max_chars))
        scores = combined.tolist()  # Python floats, as float() of each
        return {"edu": edu, "general": general, "combined": scores, "bucket": [bucket(s) for s in scores]}

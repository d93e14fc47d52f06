"""Textbook-quality classification: a fastText model that scores how educational a document
is, trained on LLM or human labels (FineWeb-Edu's recipe, Penedo et al. 2024).

- prompts, annotate_llm: label sampled documents 0-5 with an LLM through curate.synth;
- train: fastText supervised on those labels, with a model card;
- evaluate: held-out metrics (ROC-AUC, precision/recall/F1 at the card's threshold), and the
  selection score against the word-count and words-per-line baselines;
- structure: document-structure signals (length, line shapes, character ratios);
- combined: the combined score, a logistic regression over the scorers, and its buckets;
- apply: the datatrove annotator that writes every scorer's column for the select stage.
"""

from curate.quality.model import DEFAULT_MODEL, QualityModel, card_path, load_card, load_quality_model

__all__ = ["DEFAULT_MODEL", "QualityModel", "card_path", "load_card", "load_quality_model"]

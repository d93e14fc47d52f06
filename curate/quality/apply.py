"""The quality annotator: writes every scorer's column into each scoreable document's
metadata (quality_edu, quality_general, quality_score, quality_bucket). It drops nothing;
the select stage applies `quality.min_score` or `quality.min_bucket`."""

from __future__ import annotations

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.utils.batching import batched

from curate.core import schema as S
from curate.quality.combined import CombinedScorer, bucket
from curate.quality.model import DEFAULT_MODEL, QualityModel
from curate.quality.normalize import normalize
from filters.annotate import is_rejected_upstream


class QualityAnnotator(PipelineStep):
    """Scores documents in batches of 512 with one fastText call per model each (the batch
    stays in C++). scorer="combined": the combined model (curate.quality.combined) sets
    quality_score; scorer="edu": P(educational) is quality_score and the general scorer does
    not run. Documents rejected upstream or without text get no score (null in the columns)."""

    type = "📝 - ANNOTATE"
    name = "annotate:quality"

    def __init__(
        self,
        model_path: str = "",
        max_chars: int = 20_000,
        batch_size: int = 512,
        scorer: str = "combined",
        combined_path: str = "",
    ) -> None:
        super().__init__()
        self.user_model_path = model_path  # only a model the user named is checked against the combined model's card
        self.model_path = model_path or str(DEFAULT_MODEL)
        self.max_chars = max_chars
        self.batch_size = batch_size
        self.scorer = scorer
        self.combined_path = combined_path
        self._load()  # fail at build time, naming the file, not in a worker
        self._model: QualityModel | CombinedScorer | None = None

    def _load(self) -> QualityModel | CombinedScorer:
        if self.scorer == "combined":
            return CombinedScorer(self.combined_path, edu_path=self.user_model_path, max_chars=self.max_chars)
        return QualityModel(self.model_path, max_chars=self.max_chars)

    @property
    def model(self) -> QualityModel | CombinedScorer:
        if self._model is None:
            self._model = self._load()
        return self._model

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for batch in batched(data, self.batch_size):
            with self.track_time("batch"):
                todo = [doc for doc in batch if not is_rejected_upstream(doc) and doc.text and not doc.text.isspace()]
                model = self.model
                if isinstance(model, CombinedScorer):
                    out = model.score([doc.text for doc in todo])
                    for i, doc in enumerate(todo):
                        doc.metadata[S.QUALITY_EDU] = out["edu"][i]
                        doc.metadata[S.QUALITY_GENERAL] = out["general"][i] if out["general"] is not None else None
                        doc.metadata[S.QUALITY_SCORE] = out["combined"][i]
                        doc.metadata[S.QUALITY_BUCKET] = out["bucket"][i]
                else:
                    scores = model.score_normalized([normalize(doc.text, self.max_chars) for doc in todo])
                    for doc, score in zip(todo, scores):
                        doc.metadata[S.QUALITY_EDU] = score
                        doc.metadata[S.QUALITY_SCORE] = score
                        doc.metadata[S.QUALITY_BUCKET] = bucket(score)
                self.stat_update("scored", value=len(todo))
            yield from batch

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_model"] = None  # fastText models do not pickle; each worker loads its own
        return state

"""The quality annotator: writes `quality_score` = P(educational) into every scoreable
document's metadata. It drops nothing; the select stage applies `quality.min_score`."""

from __future__ import annotations

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.utils.batching import batched

from curate.quality.model import DEFAULT_MODEL, QualityModel
from curate.quality.normalize import normalize
from filters.annotate import is_rejected_upstream

META_QUALITY = "quality_score"


class QualityAnnotator(PipelineStep):
    """Scores documents in batches of 512 with one fastText call each (the batch stays in
    C++). Documents rejected upstream or without text get no score (null in the column)."""

    type = "📝 - ANNOTATE"
    name = "annotate:quality"

    def __init__(self, model_path: str = "", max_chars: int = 20_000, batch_size: int = 512) -> None:
        super().__init__()
        self.model_path = model_path or str(DEFAULT_MODEL)
        self.max_chars = max_chars
        self.batch_size = batch_size
        QualityModel(self.model_path)  # fail at build time, naming the file, not in a worker
        self._model: QualityModel | None = None

    @property
    def model(self) -> QualityModel:
        if self._model is None:
            self._model = QualityModel(self.model_path, max_chars=self.max_chars)
        return self._model

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for batch in batched(data, self.batch_size):
            with self.track_time("batch"):
                todo = [doc for doc in batch if not is_rejected_upstream(doc) and doc.text and not doc.text.isspace()]
                scores = self.model.score_normalized([normalize(doc.text, self.max_chars) for doc in todo])
                for doc, score in zip(todo, scores):
                    doc.metadata[META_QUALITY] = score
                self.stat_update("scored", value=len(todo))
            yield from batch

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_model"] = None  # fastText models do not pickle; each worker loads its own
        return state

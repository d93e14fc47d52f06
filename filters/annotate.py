"""Run a datatrove filter as an annotator: keep every document, record the filter's verdict."""

from __future__ import annotations

from typing import Any

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.filters.base_filter import BaseFilter, get_filter_result
from datatrove.utils.batching import batched

from curate.core.schema import META_ANNOTATIONS, META_EXTRACT_FAIL, META_REJECT


def is_rejected_upstream(doc: Document) -> bool:
    """Documents already rejected at ingest or extraction carry no text worth scoring."""
    return META_REJECT in doc.metadata or META_EXTRACT_FAIL in doc.metadata


class FilterAnnotator(PipelineStep):
    """Wraps a datatrove `BaseFilter`; its `(False, reason)` becomes `annotations[stage] = reason`.

    The wrapped filter's own thresholds decide pass/fail, so a heuristic threshold change
    re-annotates (cheap: no model); the selection step reads only the recorded verdicts."""

    type = "📝 - ANNOTATE"

    def __init__(self, stage: str, wrapped: BaseFilter) -> None:
        super().__init__()
        self.stage = stage
        self.wrapped = wrapped
        self.name = f"annotate:{stage}"

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for batch in batched(data, 256):
            todo = [doc for doc in batch if not is_rejected_upstream(doc)]
            with self.track_time("batch"):
                results = self.wrapped.filter_batch(todo) if todo else []
            for doc, result in zip(todo, results):
                keep, reason = get_filter_result(result)
                verdict: Any = None if keep else (reason or f"{self.stage}_failed")
                doc.metadata.setdefault(META_ANNOTATIONS, {})[self.stage] = verdict
                self.stat_update("passed" if keep else f"failed_{verdict}")
            yield from batch

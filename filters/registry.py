"""The registry of heuristic rules: a rule is a name, a config section and a datatrove filter.

A new rule is one config class plus one `register_rule` call (filters/config.py); from the
registry follow the `filters.<name>` section of the recipe (FiltersConfig), the annotator
(filters.heuristics), the annotation column `ann_<name>` (curate.core.schema.annotated_schema) and
the selection rule with its ledger stage `<name>` (curate.select). Registration order is the
order rules apply in: a document's drop reason is the first rule it fails."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from datatrove.pipeline.filters.base_filter import BaseFilter
from pydantic import Field, create_model

from curate.core.section import Section


@dataclass(frozen=True)
class Rule:
    name: str  # the section under `filters:`, the annotation column `ann_<name>`, the ledger stage
    config: type[Section]  # its settings: an `enabled` switch plus the filter's keyword arguments
    filter: Callable[..., BaseFilter]  # a datatrove filter class (or a function returning one)

    def build(self, section: Section) -> BaseFilter:
        """The filter with the section's settings passed through by name, not copied one by one."""
        return self.filter(**section.model_dump(exclude={"enabled"}))


RULES: dict[str, Rule] = {}


def register_rule(name: str, config: type[Section], filter: Callable[..., BaseFilter]) -> Rule:
    if name in RULES:
        raise ValueError(f"a heuristic rule named {name!r} is registered already")
    if "enabled" not in config.model_fields:
        raise TypeError(
            f"{config.__name__} needs an `enabled: bool` field: "
            f"every rule can be switched off with filters.{name}.enabled"
        )
    RULES[name] = Rule(name, config, filter)
    return RULES[name]


def filter_stages() -> tuple[str, ...]:
    """The registered rules' names, in the order they apply."""
    import filters.config  # noqa: F401 (the built-in rules register when it is imported)

    return tuple(RULES)


def filters_config_model(module: str, base: type[Section] = Section) -> type[Section]:
    """The `filters:` section: one field per registered rule, in registration order, each
    defaulting to its config class's defaults. `module`: where the class is assigned to the name
    `FiltersConfig` (pickle finds it there: configs travel to worker processes). `base`: a model
    to extend (a FiltersConfig built before a later registration)."""
    fields: dict[str, Any] = {
        rule.name: (rule.config, Field(default_factory=rule.config))
        for rule in RULES.values()
        if rule.name not in base.model_fields
    }
    return create_model("FiltersConfig", __base__=base, __module__=module, **fields)

"""The recipe + `--set` convention of every `curate` command, and its older flags kept working
as hidden aliases of config keys. Here, below the stage packages, because each stage package
declares its own commands' arguments (curate.quality.cli, curate.hygiene.cli)."""

from __future__ import annotations

import argparse
import json
from typing import Any


def add_set(p: argparse.ArgumentParser, example: str, keys: str = "") -> None:
    """The repeatable `--set KEY=VALUE` of every command with settings (`example`: one key;
    `keys`: where they are declared, when that is not the recipe's usual sections)."""
    where = f"; keys: {keys}" if keys else ""
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"override a config key, e.g. --set {example} (repeatable{where})",
    )


def add_recipe(p: argparse.ArgumentParser, uses: str, example: str, keys: str) -> None:
    """`--config CONFIG` (a recipe; `uses`: what the command reads of it) and `--set`."""
    p.add_argument("--config", default=None, metavar="CONFIG", help=f"recipe: {uses} (default: curate's defaults)")
    add_set(p, example, keys)


class SetAlias(argparse.Action):
    """An older flag kept working: `--epoch 5` is `--set classifier.train.epoch=5`, in the order
    given among the `--set`s (the last one wins). Text values are quoted so YAML keeps them text;
    a listed value ("a,b") becomes a list of its comma-separated parts."""

    def __init__(self, *args: Any, key: str, text: bool = False, listed: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.key, self.text, self.listed = key, text, listed

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, value: Any, option: str | None = None
    ) -> None:
        if self.listed:
            value = json.dumps([part.strip() for part in str(value).split(",") if part.strip()])
        elif self.text:
            value = json.dumps(value)
        overrides = list(getattr(namespace, "overrides", None) or [])
        overrides.append(f"{self.key}={value}")
        namespace.overrides = overrides


def add_aliases(p: argparse.ArgumentParser, prefix: str, numbers: str, texts: str = "", lists: str = "") -> None:
    """Hidden flags for keys under `prefix`: `--word-ngrams` for `prefix.word_ngrams`; "-n|--n"
    gives a flag two names. `texts`: the keys whose values are text; `lists`: comma-separated lists."""
    kinds = [(n, False, False) for n in numbers.split()]
    kinds += [(n, True, False) for n in texts.split()] + [(n, False, True) for n in lists.split()]
    for names, text, listed in kinds:
        flags = names.split("|")
        key = flags[-1].lstrip("-").replace("-", "_")
        p.add_argument(
            *flags,
            dest=f"_alias_{prefix}.{key}",
            action=SetAlias,
            key=f"{prefix}.{key}",
            text=text,
            listed=listed,
            help=argparse.SUPPRESS,
        )

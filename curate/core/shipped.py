"""What ships inside the curate package, so an installed wheel works outside a checkout.

curate/configs/ holds the recipes (demo.yaml, generate_demo.yaml, incremental_demo.yaml) and
the prompt templates (prompts/*.yaml). In the repository it is a link to configs/ (one copy,
edited there); a wheel carries the files themselves (pyproject.toml, package-data).

A recipe can be named instead of given as a path: `curate run demo` runs the shipped
curate/configs/demo.yaml. Relative input paths in a shipped recipe (`curate/data/demo`) are
relative to the folder that holds the curate package (the repository root in a checkout,
site-packages in an install), where the embedded data is, not to the working directory."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

PACKAGE_DIR = Path(__file__).resolve().parent.parent  # curate/ (this file is in curate/core/)
# The folder that holds the `curate` package: the checkout's root, or site-packages.
INSTALL_ROOT = PACKAGE_DIR.parent
CONFIGS_DIR = PACKAGE_DIR / "configs"
PROMPTS_DIR = CONFIGS_DIR / "prompts"
# A recipe name, never a path: letters, digits, '_', '-' (optionally ending .yaml).
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*(\.ya?ml)?$")


def shipped_recipes() -> list[str]:
    return sorted(p.stem for p in CONFIGS_DIR.glob("*.yaml"))


def shipped_recipe(name: str) -> Path | None:
    """curate/configs/NAME.yaml when `name` is the bare name of a shipped recipe, else None."""
    if not _NAME.match(name):
        return None
    path = CONFIGS_DIR / (name if name.endswith((".yaml", ".yml")) else f"{name}.yaml")
    return path if path.is_file() else None


def _is_local_relative(path: str) -> bool:
    return "://" not in path and not Path(path).is_absolute()


def rebase_inputs(data: dict[str, Any]) -> dict[str, Any]:
    """A shipped recipe's relative input paths, made absolute under INSTALL_ROOT."""
    section = data.get("input")
    if isinstance(section, dict) and isinstance(section.get("paths"), list):
        section["paths"] = [
            str(INSTALL_ROOT / p) if isinstance(p, str) and _is_local_relative(p) else p for p in section["paths"]
        ]
    return data

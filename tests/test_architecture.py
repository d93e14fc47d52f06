"""The layout holds (README, "Layout"): imports go only downward, as the import-linter contracts in
pyproject.toml say; every module of curate sits in a layer of that contract; ruff's lint rules
(pycodestyle, pyflakes, import order) pass and its formatter changes nothing; no runtime module grows past 600 lines.

Each check runs the real tool over the real tree and fails with the tool's own output."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from conftest import require_or_skip

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
RUNTIME = ("curate", "flows", "filters")
# What ruff checks and formats (its rules and the 120-character line: [tool.ruff] in pyproject.toml).
LINTED = ("curate", "flows", "filters", "tests", "bench", "scripts")
MAX_MODULE_LINES = 600


def _tool(name: str) -> Path:
    path = BIN / name
    if not path.exists():
        require_or_skip(f"{name} is not installed in {BIN} (it is in the dev extras: run `make setup`)")
    return path


def _run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    # PYTHONPATH: the packages of this checkout, whatever the environment's editable install points at.
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_imports_keep_the_layer_contract() -> None:
    done = _run([str(_tool("lint-imports")), "--no-cache", "--no-logo"])
    assert done.returncode == 0, f"lint-imports found imports against the contract:\n{done.stdout}\n{done.stderr}"
    assert "0 broken" in done.stdout, done.stdout


def _layers() -> list[str]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    contract = next(c for c in config["contracts"] if c["type"] == "layers")
    return [name.strip() for layer in contract["layers"] for name in layer.replace(":", "|").split("|")]


def test_every_module_of_curate_is_in_a_layer() -> None:
    # A module that no layer names is checked by nothing: a new one must take its place in the contract.
    named = set(_layers())
    children = {p.stem for p in (REPO / "curate").glob("*.py") if p.stem != "__init__"}
    children |= {p.name for p in (REPO / "curate").iterdir() if (p / "__init__.py").exists()}
    missing = sorted(f"curate.{c}" for c in children if f"curate.{c}" not in named)
    assert not missing, f"modules outside the layers contract in pyproject.toml: {missing}. Fix: add each to its layer"
    assert {"flows", "filters"} <= named


def test_the_package_root_holds_only_the_version() -> None:
    init = (REPO / "curate" / "__init__.py").read_text()
    code = [line for line in init.splitlines() if line.strip() and not line.lstrip().startswith(("#", '"""'))]
    assert all(line.startswith("__version__") or line.startswith("from __future__") for line in code), init


def test_ruff_finds_no_errors() -> None:
    done = _run([str(_tool("ruff")), "check", "--no-cache", "--output-format", "concise", *LINTED])
    assert done.returncode == 0, f"ruff check (fix: .venv/bin/ruff check --fix .):\n{done.stdout}\n{done.stderr}"


def test_code_is_ruff_formatted() -> None:
    done = _run([str(_tool("ruff")), "format", "--no-cache", "--check", *LINTED])
    assert done.returncode == 0, f"ruff format --check (fix: .venv/bin/ruff format .):\n{done.stdout}\n{done.stderr}"


@pytest.mark.parametrize("package", RUNTIME)
def test_no_runtime_module_over_600_lines(package: str) -> None:
    long = {
        str(p.relative_to(REPO)): n
        for p in sorted((REPO / package).rglob("*.py"))
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"modules over {MAX_MODULE_LINES} lines (split them by concern): {long}"

"""Whether a Prefect API is configured for this process, found without importing prefect (that
import is most of what `curate run` saves by running in-process).

Prefect takes PREFECT_API_URL from the environment first, then from the working folder's
prefect.toml (`[api] url`) or pyproject.toml (`[tool.prefect.api] url`), then from the active
profile of its profiles file: $PREFECT_PROFILES_PATH, default $PREFECT_HOME/profiles.toml
(PREFECT_HOME defaults to ~/.prefect); the active profile is $PREFECT_PROFILE, else the file's
`active` key, and a profile's keys add to those of Prefect's own profile of that name (its
`local` profile names http://127.0.0.1:4200/api). Not read here: a .env file in the working folder."""

from __future__ import annotations

import importlib.util
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

API_URL = "PREFECT_API_URL"


def profiles_path(env: Mapping[str, str]) -> Path:
    if env.get("PREFECT_PROFILES_PATH"):
        return Path(env["PREFECT_PROFILES_PATH"]).expanduser()
    home = Path(env["PREFECT_HOME"]).expanduser() if env.get("PREFECT_HOME") else Path.home() / ".prefect"
    return home / "profiles.toml"


def default_profiles_path() -> Path | None:
    """Prefect's own profiles.toml, found without importing prefect (find_spec of a top-level
    package locates it without running it)."""
    spec = importlib.util.find_spec("prefect")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "settings" / "profiles.toml"


def _toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}


def _dig(data: Any, *keys: str) -> Any:
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def configured_api_url(env: Mapping[str, str] | None = None, cwd: Path | None = None) -> str | None:
    """The Prefect API URL this process would report to, or None: then a flow run would start a
    temporary local server. An unreadable or malformed profiles file counts as no URL there
    (Prefect itself would fail on it, with its own message, in --prefect mode)."""
    env = os.environ if env is None else env
    if env.get(API_URL):
        return env[API_URL]
    here = Path.cwd() if cwd is None else cwd
    url = _dig(_toml(here / "prefect.toml"), "api", "url") or _dig(
        _toml(here / "pyproject.toml"), "tool", "prefect", "api", "url"
    )
    if not url:
        defaults = _toml(default) if (default := default_profiles_path()) is not None else {}
        profiles = _toml(profiles_path(env))
        active = env.get("PREFECT_PROFILE") or profiles.get("active") or defaults.get("active")
        if isinstance(active, str):
            url = _dig(profiles, "profiles", active, API_URL) or _dig(defaults, "profiles", active, API_URL)
    return str(url) if url else None

"""The API key of kind: openai, from an environment variable or a Prefect Secret block; never echoed."""

from __future__ import annotations

import os

from curate.llm.config import EngineConfig
from curate.llm.engines.base import EngineError


def api_key(cfg: EngineConfig) -> str | None:
    if cfg.api_key_secret:
        if cfg.api_key_env:
            raise EngineError("engine.api_key_env and engine.api_key_secret are both set. Fix: keep one of them")
        return _secret_block(cfg.api_key_secret)
    name = cfg.api_key_env
    if not name:
        return None
    if not (name.replace("_", "").isalnum() and not name[0].isdigit()):
        # Never echo the value: it may be the key itself, pasted in by mistake.
        raise EngineError(
            "engine.api_key_env must be the NAME of an environment variable (e.g. OPENAI_API_KEY), not the key itself"
        )
    key = os.environ.get(name)
    if not key:
        raise EngineError(
            f"engine.api_key_env names {name}, which is not set. Fix: export {name}=<your key>, or set "
            "engine.api_key_env: ''"
        )
    return key


def _secret_block(name: str) -> str:
    """The value of the Prefect Secret block `name`, from the Prefect API in use."""
    from prefect.blocks.system import Secret

    try:
        return str(Secret.load(name).get())
    except ValueError as exc:  # Prefect: "Unable to find block document named ..."
        raise EngineError(
            f"engine.api_key_secret names the Prefect Secret block '{name}', which cannot be loaded ({exc}). Fix: "
            "create it (prefect block create secret) or correct the name"
        ) from None

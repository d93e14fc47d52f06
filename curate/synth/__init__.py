"""Generation with a language model: the engine (vLLM in process, a vLLM server curate starts,
or an OpenAI-compatible endpoint) and the embedded default model, SmolLM2-135M-Instruct.

Importing this package imports nothing else: every config load passes through it (for
curate.synth.config), and the engine module alone cost ~33 ms there. The names below load on
first use; vLLM and torch load later still, when an engine opens."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from curate.synth.config import EngineConfig
    from curate.synth.engine import ChatRequest, Engine, EngineError, Generation, open_engine
    from curate.synth.model import default_model_dir, resolve_model

# name -> the submodule that defines it
_LAZY = {
    "EngineConfig": "curate.synth.config",
    "ChatRequest": "curate.synth.engine",
    "Engine": "curate.synth.engine",
    "EngineError": "curate.synth.engine",
    "Generation": "curate.synth.engine",
    "open_engine": "curate.synth.engine",
    "default_model_dir": "curate.synth.model",
    "resolve_model": "curate.synth.model",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value

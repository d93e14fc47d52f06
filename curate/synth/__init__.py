"""Generation with a language model: the engine (vLLM in process, a vLLM server curate starts,
or an OpenAI-compatible endpoint) and the embedded default model, SmolLM2-135M-Instruct.

Importing this package imports neither vLLM nor torch; they load when an engine opens."""

from curate.synth.config import EngineConfig
from curate.synth.engine import ChatRequest, Engine, EngineError, Generation, open_engine
from curate.synth.model import default_model_dir, resolve_model

__all__ = ["ChatRequest", "Engine", "EngineConfig", "EngineError", "Generation", "default_model_dir", "open_engine", "resolve_model"]

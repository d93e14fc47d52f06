"""One generation interface over three ways to run a model (see curate.llm.config):

    with open_engine(cfg.engine) as engine:
        gens = engine.generate([ChatRequest.of("Explain photosynthesis.", max_tokens=300, seed=1)])

A request that fails comes back as a Generation with finish_reason "error" and its message,
and is counted in `engine.stats.failed`; the batch never raises for one bad request. A setup
problem (no server, a wrong model path, a rejected API key) raises EngineError at open, before
any work, naming the fix.

vLLM on the CPU starts its engine in a *spawned* process, which re-imports the caller's main
module: a script that opens a `vllm` engine needs the `if __name__ == "__main__":` guard
(pytest, the curate CLI and Prefect workers already have one).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from curate.llm.config import EngineConfig
from curate.llm.engines.api_key import api_key
from curate.llm.engines.base import Engine
from curate.llm.engines.openai_api import OpenAIEngine
from curate.llm.engines.vllm_local import VLLMEngine
from curate.llm.engines.vllm_server import VLLMServer
from curate.llm.model import DEFAULT_NAMES

log = logging.getLogger(__name__)


@contextmanager
def open_engine(cfg: EngineConfig) -> Iterator[Engine]:
    """The engine that `cfg.kind` names, closed (model freed, server stopped) on exit."""
    servers: list[VLLMServer] = []
    engine: Engine | None = None
    try:
        if cfg.kind == "vllm":
            engine = VLLMEngine(cfg)
        elif cfg.kind == "vllm_server":
            servers = [VLLMServer(cfg, replica) for replica in range(cfg.replicas)]
            for server in servers:  # all load at once: N replicas start in the time of one
                server.launch()
            urls = [server.wait_ready() for server in servers]
            engine = OpenAIEngine(cfg, urls, trust_env=False)  # the server answers to its own folder path
        else:
            wanted = None if cfg.model.strip() in DEFAULT_NAMES else cfg.model
            engine = OpenAIEngine(cfg, cfg.urls, model=wanted, api_key=api_key(cfg))
        yield engine
    finally:
        if engine is not None:
            if engine.stats.requests:
                log.info("engine %s (%s): %s", cfg.kind, engine.model, engine.stats.summary())
            engine.close()
        for server in servers:
            server.stop()

"""The engine contract: a ChatRequest in, a Generation out (an error is a Generation, never a raise),
EngineStats counted per engine, EngineError for setup problems that name the fix."""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from curate.core.errors import CurateError

FinishReason = Literal["stop", "length", "error"]
ROLES = frozenset({"system", "user", "assistant"})

# Transient: the server is overloaded, restarting or briefly unreachable; the same request
# may succeed later. Any other 4xx means the request itself is wrong, and retrying cannot help.
RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class EngineError(CurateError):
    """The engine cannot start or reach its model; the message names the fix."""


@dataclass(frozen=True)
class ChatRequest:
    # [{"role": "system"|"user"|"assistant", "content": str}, ...]
    messages: tuple[dict[str, str], ...]
    # Defaults are the OpenAI API's own (temperature 1, top_p 1), so a request means the same
    # thing on every kind of engine; callers set what their stage's config says.
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 256
    # Neutral unless set (vLLM's and the OpenAI API's own defaults): penalties and min_p are
    # what keep a small model out of loops (curate.synth.generate_config.SAMPLING_DEFAULTS).
    min_p: float = 0.0
    repetition_penalty: float = 1.0  # vLLM/HF-style: prompt and output tokens
    frequency_penalty: float = 0.0  # OpenAI-style: output tokens, per repeat
    presence_penalty: float = 0.0
    stop: tuple[str, ...] = ()
    # With a seed, vLLM samples from a generator of its own for this request: the same request
    # gives the same text again, whatever else is in the batch.
    seed: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "messages", tuple(dict(m) for m in self.messages))
        object.__setattr__(self, "stop", tuple(self.stop))
        if not self.messages:
            raise ValueError("ChatRequest needs at least one message")
        for m in self.messages:
            if m.get("role") not in ROLES or not isinstance(m.get("content"), str):
                raise ValueError(f"each message needs a role in {sorted(ROLES)} and a string content, got {m!r}")
        if self.temperature < 0 or not 0 < self.top_p <= 1 or self.max_tokens < 1:
            raise ValueError(
                f"bad sampling: temperature={self.temperature} (>= 0), top_p={self.top_p} (0 < p <= 1), "
                f"max_tokens={self.max_tokens} (>= 1)"
            )

    @classmethod
    def of(cls, user: str, system: str | None = None, **sampling: Any) -> ChatRequest:
        messages = ([{"role": "system", "content": system}] if system is not None else []) + [
            {"role": "user", "content": user}
        ]
        return cls(messages=tuple(messages), **sampling)


@dataclass(frozen=True)
class Generation:
    text: str
    finish_reason: FinishReason
    prompt_tokens: int
    completion_tokens: int
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.finish_reason != "error"


@dataclass
class EngineStats:
    requests: int = 0
    failed: int = 0  # requests that came back as finish_reason "error"
    retries: int = 0  # extra HTTP attempts after transient errors
    prompt_tokens: int = 0
    completion_tokens: int = 0
    generate_s: float = 0.0  # wall time inside generate()
    peak_in_flight: int = 0  # most HTTP requests open at once (kinds openai and vllm_server)

    def add(self, gen: Generation) -> Generation:
        self.requests += 1
        self.failed += not gen.ok
        self.prompt_tokens += gen.prompt_tokens
        self.completion_tokens += gen.completion_tokens
        return gen

    def summary(self) -> str:
        rate = self.completion_tokens / self.generate_s if self.generate_s else 0.0
        return (
            f"{self.requests} requests, {self.failed} failed, {self.retries} retries, "
            f"{self.prompt_tokens} prompt + {self.completion_tokens} completion tokens in {self.generate_s:.1f} s "
            f"({rate:.0f} tokens/s)"
        )


def failure(message: str) -> Generation:
    return Generation(text="", finish_reason="error", prompt_tokens=0, completion_tokens=0, error=message)


class Engine(ABC):
    """Everything a stage needs from a language model. Use through `open_engine`."""

    model: str  # the model as this engine names it (a folder, or the endpoint's model id)

    def __init__(self) -> None:
        self.stats = EngineStats()
        self._stats_lock = threading.Lock()  # generate() may be called from several threads (Prefect tasks)

    def generate(self, requests: Sequence[ChatRequest]) -> list[Generation]:
        """One Generation per request, in the same order. Safe to call from several threads."""
        if not requests:
            return []
        started = time.monotonic()
        try:
            gens = self._generate(list(requests))
        finally:
            with self._stats_lock:
                self.stats.generate_s += time.monotonic() - started
        with self._stats_lock:
            return [self.stats.add(g) for g in gens]

    @abstractmethod
    def _generate(self, requests: list[ChatRequest]) -> list[Generation]: ...

    def close(self) -> None:
        """Release the model or connections; idempotent."""

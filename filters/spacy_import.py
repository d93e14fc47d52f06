"""spaCy without torch. The rules use spaCy's tokenizer alone, but `import spacy` imports thinc,
and thinc imports torch whenever it is installed (thinc.compat, for its optional torch layers).
torch is installed for vllm (generation); the tokenizer never touches it, and importing it is
most of spaCy's import cost: `import spacy; spacy.blank("en")` took 2.5-2.7 CPU-s with torch,
0.8-1.0 without, on the 2-core bench machine (2026-12-05), in every process that tokenises."""

from __future__ import annotations

import sys
import threading
from types import ModuleType

_lock = threading.Lock()


def import_spacy() -> ModuleType:
    """`import spacy`, with torch hidden from thinc while spaCy loads, unless torch or thinc is
    imported already (then there is nothing to save, and thinc keeps the view of torch it has).
    torch stays importable afterwards by anyone; only thinc's torch support is off in this
    process, which no tokenizer uses. Hidden means `sys.modules["torch"] = None` (an import of it
    raises ImportError, which thinc expects) for the duration of spaCy's import, under a lock."""
    if "spacy" in sys.modules:
        return sys.modules["spacy"]
    with _lock:
        hide = "torch" not in sys.modules and "thinc" not in sys.modules
        if hide:
            sys.modules["torch"] = None  # type: ignore[assignment]
        try:
            import spacy
        finally:
            if hide and "torch" in sys.modules and sys.modules["torch"] is None:
                del sys.modules["torch"]
    return spacy

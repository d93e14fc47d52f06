"""Is a rephrased document faithful to its source? Three measured values, cheap and
model-free, on the extract the model was shown (Prompt.seed.text):

- word_recall: the share of the source's distinct content words (not stop words, 3+ letters,
  a plural `s` folded) that the rephrasing still uses. A rewrite keeps the subject's vocabulary
  (names, terms); a text about something else does not.
- number_recall: the share of the source's numbers kept (None when the source has none).
- novel_numbers: numbers in the rephrasing that are not in the source: invented dates,
  amounts, counts. Enumerations ("1.", "Question 2:", "Step 3") are not facts and are skipped.
- length_ratio: rephrasing words / source words (a summary of one line, or a ramble).

WRAP (Maini et al. 2024) and Nemotron-CC checked their rephrasings by downstream accuracy
only; these measures are what a pipeline can check per document. The limits live in
generate.faithfulness (curate.synth.generate_config), with the values measured for the
embedded 135M model."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from curate.synth.seeds import _STOP

_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*[A-Za-z]")
# 1,234.5 / 1.5 / 2024 / 45%: the digits (thousands separators dropped) are the number.
_NUMBER = re.compile(r"(?<![\w.])\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?")
# A number that only counts items: at a line start before "." or ")", or after a word that
# numbers parts of the text.
_ENUMERATION = re.compile(
    r"(?im)^\s*(?:[#*>-]+\s*)?\d+[.)]|\b(?:question|answer|q|a|step|section|part|chapter|exercise|example|lesson|unit|tip)\s*#?\d+\b"
)


@dataclass(frozen=True)
class Faithfulness:
    word_recall: float
    number_recall: float | None
    novel_numbers: tuple[str, ...]
    length_ratio: float
    source_words: int
    output_words: int

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["novel_numbers"] = list(self.novel_numbers)
        return out


def content_words(text: str) -> set[str]:
    words = (w.lower().strip("'") for w in _WORD.findall(text))
    return {
        w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w
        for w in words
        if len(w) > 2 and w not in _STOP
    }


def numbers(text: str) -> set[str]:
    """The numbers of `text` that state facts (enumerations removed), normalised: 1,000 -> 1000, 2.50 -> 2.5."""
    text = _ENUMERATION.sub(" ", text)
    out = set()
    for raw in _NUMBER.findall(text):
        value = raw.replace(",", "")
        if "." in value:
            value = value.rstrip("0").rstrip(".")
        out.add(value.lstrip("0") or "0")
    return out


def measure(source: str, output: str) -> Faithfulness:
    src_words, out_words = content_words(source), content_words(output)
    src_nums, out_nums = numbers(source), numbers(output)
    n_src, n_out = len(source.split()), len(output.split())
    return Faithfulness(
        word_recall=round(len(src_words & out_words) / len(src_words), 3) if src_words else 1.0,
        number_recall=round(len(src_nums & out_nums) / len(src_nums), 3) if src_nums else None,
        novel_numbers=tuple(sorted(out_nums - src_nums, key=lambda x: (len(x), x))),
        length_ratio=round(n_out / n_src, 3) if n_src else 0.0,
        source_words=n_src,
        output_words=n_out,
    )


def violation(f: Faithfulness, limits: Any) -> str | None:
    """The first limit of `limits` (a FaithfulnessConfig) that `f` breaks, as the ledger's value
    ("<measure>=<measured> (limit <x>)"), or None when it is faithful."""
    if f.word_recall < limits.min_word_recall:
        return f"word_recall={f.word_recall:.3f} (min {limits.min_word_recall})"
    if f.number_recall is not None and f.number_recall < limits.min_number_recall:
        return f"number_recall={f.number_recall:.3f} (min {limits.min_number_recall})"
    if len(f.novel_numbers) > limits.max_novel_numbers:
        return (
            f"novel_numbers={len(f.novel_numbers)} ({', '.join(f.novel_numbers[:5])}; max {limits.max_novel_numbers})"
        )
    if not limits.min_length_ratio <= f.length_ratio <= limits.max_length_ratio:
        return f"length_ratio={f.length_ratio:.3f} (allowed {limits.min_length_ratio}-{limits.max_length_ratio})"
    return None

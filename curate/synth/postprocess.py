"""Quality control of generated text, before it joins a corpus.

In order, a generation is dropped (reason in the ledger) when: the request failed
(`generation_error`); it was cut off by max_tokens (`truncated`, unless trimmed); nothing is
left after stripping chat artifacts (`empty`); it is too short or long (`too_short`,
`too_long`); it is not in a kept language (`wrong_language`, lid.176 as in filters.language);
it repeats itself (`repetitive`, datatrove's Gopher repetition rules); a rephrasing breaks a
faithfulness limit (`unfaithful`, curate.synth.faithfulness: the value names the measure); the
quality classifier scores it below generate.min_quality (`low_quality`). Right after the length
checks, a generation that reproduces an evaluation item is dropped (`contaminated`, the
benchmark in `value`, the span in `matched`: curate.hygiene.decontam with the run's decontam:
section; synthetic text regurgitates benchmarks more than the web does).
Dedup runs after, on the survivors (curate.synth.generate)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from datatrove.data import Document
from datatrove.pipeline.filters.gopher_repetition_filter import GopherRepetitionFilter

from curate.hygiene.config import DecontamConfig
from curate.synth.generate_config import GenerateConfig
from filters.language import LanguageConfig

GENERATION_ERROR = "generation_error"
TRUNCATED = "truncated"
EMPTY = "empty"
TOO_SHORT = "too_short"
TOO_LONG = "too_long"
WRONG_LANGUAGE = "wrong_language"
REPETITIVE = "repetitive"
LOW_QUALITY = "low_quality"
CONTAMINATED = "contaminated"
UNFAITHFUL = "unfaithful"

# Special tokens that leak into text when a template or server skips them (ChatML for
# SmolLM2/Qwen, Llama 2/3, Mistral, GPT-style end of text).
_SPECIAL = re.compile(
    r"<\|(?:im_start|im_end|endoftext|eot_id|start_header_id|end_header_id|begin_of_text|end_of_text)\|>(?:assistant|user|system)?|</?s>|\[/?INST\]"
)
# Openers a chat model puts before the content: "Sure! Here is ...:", "Certainly.", ...
_PREAMBLE = re.compile(
    r"^\s*(?:"
    r"(?:sure|certainly|of course|absolutely|okay|ok|great|alright)(?:[!.,]+[ \t]*(?:(?:here|below|I'd|I would|I "
    r"will|I'll|I can|let's|let me)\b[^\n]{0,200})?)?"
    r"|(?:here(?:'s| is| are)|below is|the following is)\b[^\n]{0,200}:"
    r")[ \t]*(?:\n|$)",
    re.IGNORECASE,
)
# ... and closers after it: "I hope this helps!", "Let me know if ...".
_CLOSER = re.compile(
    r"\n\s*(?:I hope (?:this|that|these|you)|Let me know if|Feel free to|If you have any (?:other |more |further "
    r")?questions)[^\n]*\s*$",
    re.IGNORECASE,
)
_FENCE = re.compile(r"^\s*```[A-Za-z0-9_-]*[ \t]*\n(.*?)\n```\s*$", re.DOTALL)
_SENTENCE_END = re.compile(r"[.!?][\"')\]]?(?=\s|$)")


def clean(text: str) -> str:
    """The text without chat artifacts: special tokens, a preamble line, a closing pleasantry,
    and a markdown fence that wraps the whole answer."""
    text = _SPECIAL.sub("", text).strip()
    m = _FENCE.match(text)
    if m:
        text = m.group(1).strip()
    for _ in range(2):  # "Sure!\nHere is the section:\n..." has two
        stripped = _PREAMBLE.sub("", text, count=1).lstrip()
        if stripped == text:
            break
        text = stripped
    text = _CLOSER.sub("", text).rstrip()
    return text


def trim_to_sentence(text: str) -> str:
    """A cut-off text back to the end of its last complete sentence ('' if none)."""
    ends = list(_SENTENCE_END.finditer(text))
    return text[: ends[-1].end()].rstrip() if ends else ""


@dataclass
class Verdict:
    text: str  # cleaned
    reason: str | None = None  # None: kept
    value: str | None = None
    lang: str | None = None
    lang_score: float | None = None
    quality: float | None = None
    stripped: bool = False  # clean() changed something (counted in the report)
    matched: str | None = None  # the evidence behind the reason (a benchmark span)
    extra: dict = field(default_factory=dict)


class OutputChecker:
    """Applies the rules above to one generation at a time; models load once."""

    def __init__(self, cfg: GenerateConfig, language: LanguageConfig, decontam: DecontamConfig | None = None) -> None:
        from filters.language import LanguageAnnotator

        self.cfg = cfg
        self.language = language
        self.lid = LanguageAnnotator(language.model_path)  # fails now, naming the file, if missing
        self.repetition = GopherRepetitionFilter(
            dup_line_frac=cfg.max_dup_line_frac,
            dup_para_frac=cfg.max_dup_para_frac,
            # The other datatrove limits are kept as they are (0.2 x / 0.15 x of those below).
            top_n_grams=(
                (2, cfg.max_top_2gram_frac),
                (3, cfg.max_top_2gram_frac * 0.9),
                (4, cfg.max_top_2gram_frac * 0.8),
            ),
            dup_n_grams=tuple((n, cfg.max_dup_5gram_frac * (1 - 0.0667 * (n - 5))) for n in range(5, 11)),  # type: ignore[arg-type]
        )
        self.decontam = None
        if decontam is not None and decontam.enabled:
            from curate.hygiene.decontam import Decontaminator

            self.decontam = Decontaminator(decontam)  # fails now, naming the index, if missing
        self.quality = None
        if cfg.score_quality:
            from curate.quality.model import load_quality_model

            self.quality = load_quality_model(cfg.quality_model or None)

    def check(self, raw: str, finish_reason: str, error: str | None, doc_id: str, source: str | None = None) -> Verdict:
        """`source`: the document a rephrase template rewrote (faithfulness is checked against
        it, and its measures are in verdict.extra["faithfulness"]); None for generation."""
        if finish_reason == "error":
            return Verdict("", GENERATION_ERROR, (error or "")[:500])
        text = clean(raw)
        verdict = Verdict(text, stripped=text != raw.strip())
        if finish_reason == "length":
            if self.cfg.truncated == "drop":
                verdict.reason, verdict.value = TRUNCATED, "finish_reason=length"
                return verdict
            verdict.text = text = trim_to_sentence(text)
        if not text.strip():
            verdict.reason = EMPTY
            return verdict
        words = len(text.split())
        if words < self.cfg.min_words:
            verdict.reason, verdict.value = TOO_SHORT, str(words)
            return verdict
        if words > self.cfg.max_words:
            verdict.reason, verdict.value = TOO_LONG, str(words)
            return verdict
        # Before the language check: a section that copies a code prompt may read as "not
        # English", and the ledger should say what matters most, that it copies a benchmark.
        drop = self.decontam.check(text) if self.decontam is not None else None
        if drop is not None:
            verdict.reason, verdict.value, verdict.matched = CONTAMINATED, drop.value, drop.matched
            return verdict
        doc = Document(text=text, id=doc_id)
        self.lid.annotate(doc)
        verdict.lang, verdict.lang_score = doc.metadata["language"], float(doc.metadata["language_score"])
        keep = self.language.keep
        if (keep and verdict.lang not in keep) or verdict.lang_score < self.language.min_score:
            verdict.reason, verdict.value = WRONG_LANGUAGE, f"{verdict.lang}:{verdict.lang_score:.2f}"
            return verdict
        ok = self.repetition.filter(doc)
        if ok is not True:
            verdict.reason, verdict.value = REPETITIVE, ok[1] if isinstance(ok, tuple) else "repetition"
            return verdict
        if source is not None:
            from curate.synth.faithfulness import measure, violation

            faith = measure(source, text)
            verdict.extra["faithfulness"] = faith.as_dict()
            broken = violation(faith, self.cfg.faithfulness)
            if broken is not None:
                verdict.reason, verdict.value = UNFAITHFUL, broken
                return verdict
        if self.quality is not None:
            verdict.quality = self.quality.score([text])[0]
            if self.cfg.min_quality is not None and verdict.quality < self.cfg.min_quality:
                verdict.reason, verdict.value = LOW_QUALITY, f"{verdict.quality:.3f}"
        return verdict

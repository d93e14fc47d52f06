"""`generate:` — synthetic textbooks grounded in curated documents (Cosmopedia's recipe,
Ben Allal et al. 2024): which seeds, which prompt templates and audiences, how to sample, and
the quality control applied to the model's output before it joins the corpus."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from curate.core.section import Section
from curate.llm.config import EngineConfig

# The engine used to be configured here as well as at the top level; two sections for one
# model let generation and LLM annotation silently run different engines.
MOVED_ENGINE = (
    "no longer read here: one top-level engine: section serves generation and LLM annotation. "
    "Fix: move these keys to the top-level engine: section and delete generate.engine"
)


# Sampling defaults for small models, in one place. A template may set its own (its
# `sampling:` key, e.g. a shorter max_tokens for a story); a value set in the recipe's
# generate.sampling wins over both. Measured with the embedded SmolLM2-135M-Instruct
# (bench/RESULTS-generate.md, "Sampling defaults"): with Cosmopedia's 0.6 / 0.95 and no penalty
# most outputs looped ("The answer to this question is: N." fifty times) and 0 of 6 were kept.
SAMPLING_DEFAULTS: dict[str, Any] = {
    # 0.7 with min_p 0.05 (Nguyen et al. 2024, "min-p sampling"): min_p drops the long tail
    # that makes a small model drift off topic, so the temperature can stay high enough to
    # leave a loop; top_p 1 leaves the tail cut to min_p alone.
    "temperature": 0.7,
    "top_p": 1.0,
    "min_p": 0.05,
    # HF-style repetition penalty (on prompt and output tokens, x1/1.1 on their logits) plus an
    # OpenAI-style frequency penalty (output tokens only, grows with each repeat): the pair
    # that broke the loops. Rephrasing templates set repetition_penalty 1.0, since it would
    # penalise copying the source's own words (and facts).
    "repetition_penalty": 1.1,
    "frequency_penalty": 0.3,
    "presence_penalty": 0.0,
    # 512 tokens ~ 380 words: what a 135M model writes before it starts repeating itself; a
    # template states its own when its format is shorter or longer.
    "max_tokens": 512,
    # Stop strings (the text stops before them); templates add their own (e.g. a 4th exercise).
    "stop": [],
}


class SamplingConfig(Section):
    """Every key null (the default) = the template's value, else SAMPLING_DEFAULTS."""

    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    min_p: float | None = Field(default=None, ge=0, le=1)
    repetition_penalty: float | None = Field(default=None, gt=0, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    # With a ~300-token prompt, up to ~1,700 stays inside engine.max_model_len (2,048).
    max_tokens: int | None = Field(default=None, ge=16, le=32_768)
    stop: list[str] | None = None

    def resolve(self, template: dict[str, Any] | None = None) -> dict[str, Any]:
        """The sampling one prompt uses: SAMPLING_DEFAULTS, then the template's own, then the
        values set here (not null)."""
        mine = {k: v for k, v in self.model_dump(mode="json").items() if v is not None}
        return {**SAMPLING_DEFAULTS, **(template or {}), **mine}


class FaithfulnessConfig(Section):
    """Limits for rephrase templates (kind: rephrase), on curate.synth.faithfulness's measures
    against the extract the model was shown. Set for the embedded SmolLM2-135M from its
    measured values on the demo release (bench/RESULTS-generate.md, "Rephrasing"): a larger
    model keeps more, so raise them with it."""

    # Share of the extract's distinct content words the rewrite uses. Measured on the embedded
    # model's rewrites of the demo release: those about something else or about the task
    # ("The text is reorganized into ...") kept 0.03-0.17, the rewrites that kept the subject
    # 0.26-0.56; 0.2 lies between.
    min_word_recall: float = Field(default=0.2, ge=0, le=1)
    # Share of the source's numbers kept (ignored when the source has none). 0 = not checked:
    # a rewrite into Q&A may fairly leave out minor figures; invented ones are what mislead.
    min_number_recall: float = Field(default=0.0, ge=0, le=1)
    # Numbers absent from the source (dates, amounts): 0, as WRAP's prompts demand.
    max_novel_numbers: int = Field(default=0, ge=0)
    # Output words / source words: under 0.3 the facts cannot all be there; over 3 it is
    # padding (what the model adds is not in the source).
    min_length_ratio: float = Field(default=0.3, ge=0)
    max_length_ratio: float = Field(default=3.0, gt=0)


class JudgeConfig(Section):
    """LLM-as-judge (curate.synth.judge): after the checks and dedup, every kept generated
    document is scored 1-5 on a rubric (educational value, correctness, coherence); the
    overall score is parsed from the answer, one unreadable answer is retried, and documents
    under min_score, or still unreadable, go to the ledger.

    Off by default, and not for the embedded SmolLM2-135M: on the demo it gave a readable score
    for 1 of 12 documents after the retry (bench/RESULTS-generate.md, "Judge"), so enabling it
    with that model drops nearly everything. Point `engine` at a larger instruction model."""

    enabled: bool = False
    # null: the engine that generated (engine: section, opened once for both); otherwise
    # another engine (e.g. kind: openai with a larger model's URL).
    engine: EngineConfig | None = None
    # 3 of 5: the rubric's "acceptable teaching text, minor flaws". 1 keeps every readable score.
    min_score: int = Field(default=3, ge=1, le=5)
    # Greedy: a judge should give the same score twice.
    temperature: float = Field(default=0.0, ge=0, le=2)
    # 200 tokens: three criterion lines, a short reason, the overall line.
    max_tokens: int = Field(default=200, ge=16, le=4096)
    # 3,000 characters (~750 tokens) of the document: with the rubric (~250 tokens) and the
    # answer, inside the embedded model's 2,048-token context.
    max_chars: int = Field(default=3000, ge=200, le=100_000)


class GenerateConfig(Section):
    # Off by default in `curate run`: generation costs model time (~240 tokens/s on 2 CPU
    # cores for the embedded model, i.e. ~4 s per 1k-token document).
    enabled: bool = False
    # Only to name the fix for recipes written before the engine moved (MOVED_ENGINE); never
    # dumped, so it changes neither config hashes nor config.resolved.yaml.
    engine: None = Field(default=None, exclude=True)
    sampling: SamplingConfig = Field(default_factory=SamplingConfig)
    # Documents (prompts) to generate; `curate generate --n` overrides it.
    n: int = Field(default=100, ge=1, le=100_000_000)
    # Decides which seeds and template/audience pairs each prompt gets, and each request's
    # sampling seed: the same seed and config give the same prompts and (with vLLM) texts.
    seed: int = 0
    # Folder of prompt templates (*.yaml); "" = the shipped ones (configs/prompts, package data).
    templates_dir: str = ""
    # Template ids to use ("formats": textbook_academic, story_children, ...); empty = all.
    templates: list[str] = Field(default_factory=list)
    # Audiences combined with templates that do not fix their own (Cosmopedia's list, shortened).
    audiences: list[str] = Field(
        default_factory=lambda: [
            "young children",
            "high school students",
            "college students",
            "general readers",
            "professionals and researchers",
        ]
    )
    # A text file with one topic per line: seeds for a corpus-free run, added to document seeds.
    topics_file: str = ""
    # Characters of a seed document shown to the model: ~1,200 chars ~ 300 tokens, enough
    # context to ground the text without crowding out the answer in 2,048 tokens.
    seed_chars: int = Field(default=1200, ge=100, le=20_000)
    # Seed documents shorter than this are skipped: a 20-word page gives no grounding.
    min_seed_words: int = Field(default=50, ge=1)
    # Prompts per batch file. 32: a crash loses at most 32 generations (~2 min on 2 CPU
    # cores); on a GPU raise it (256+) so vLLM's continuous batching fills the device.
    batch_size: int = Field(default=32, ge=1, le=100_000)

    # --- quality control of the output
    # 100 words: shorter outputs are refusals or a title and one sentence; 5,000: far beyond
    # max_tokens, so only a misconfigured endpoint reaches it.
    min_words: int = Field(default=100, ge=1)
    max_words: int = Field(default=5_000, ge=1)
    # finish_reason "length" (the model was cut off): drop it, or trim it back to its last
    # complete sentence and keep it when it still has min_words.
    truncated: Literal["drop", "trim"] = "drop"
    # Gopher repetition limits (datatrove's GopherRepetitionFilter). Web-text defaults: a small
    # model's failure mode is looping, which these catch (the same paragraph 3x -> dup_para_frac).
    max_dup_line_frac: float = Field(default=0.3, ge=0, le=1)
    max_dup_para_frac: float = Field(default=0.3, ge=0, le=1)
    max_top_2gram_frac: float = Field(default=0.2, ge=0, le=1)
    max_dup_5gram_frac: float = Field(default=0.15, ge=0, le=1)
    # Score with the textbook-quality classifier (column quality_score); "" = the shipped model.
    score_quality: bool = True
    quality_model: str = ""
    # Drop outputs below this P(educational); null = score only.
    min_quality: float | None = Field(default=None, ge=0, le=1)
    # Exact + MinHash dedup (dedup: section's parameters) against each other and the corpus.
    dedup: bool = True
    # Rephrase templates only: limits on what the rewrite keeps of its source.
    faithfulness: FaithfulnessConfig = Field(default_factory=FaithfulnessConfig)
    # Optional LLM-as-judge pass over the kept documents.
    judge: JudgeConfig = Field(default_factory=JudgeConfig)

    @field_validator("engine", mode="before")
    @classmethod
    def _engine_moved(cls, value: Any) -> None:
        if value is not None:
            raise ValueError(MOVED_ENGINE)
        return None

    @field_validator("audiences")
    @classmethod
    def _some_audience(cls, value: list[str]) -> list[str]:
        cleaned = [a.strip() for a in value if a.strip()]
        if not cleaned:
            raise ValueError("needs at least one audience, e.g. [college students]")
        return cleaned

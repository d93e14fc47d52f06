"""`generate:` — synthetic textbooks grounded in curated documents (Cosmopedia's recipe,
Ben Allal et al. 2024): which seeds, which prompt templates and audiences, how to sample, and
the quality control applied to the model's output before it joins the corpus."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from curate.config_base import Section

# The engine used to be configured here as well as at the top level; two sections for one
# model let generation and LLM annotation silently run different engines.
MOVED_ENGINE = (
    "no longer read here: one top-level engine: section serves generation and LLM annotation. "
    "Fix: move these keys to the top-level engine: section and delete generate.engine"
)


class SamplingConfig(Section):
    # 0.6 / 0.95: Cosmopedia's sampling for its 25B tokens; lower temperatures made the
    # embedded 135M model repeat whole sentences, higher ones drift off topic.
    temperature: float = Field(default=0.6, ge=0, le=2)
    top_p: float = Field(default=0.95, gt=0, le=1)
    # 1,024 tokens ~ 750 words: a textbook section. With a ~300-token prompt it stays inside
    # engine.max_model_len (2,048).
    max_tokens: int = Field(default=1024, ge=16, le=32_768)


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
    audiences: list[str] = Field(default_factory=lambda: ["young children", "high school students", "college students", "general readers", "professionals and researchers"])
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

    def sampling_json(self) -> str:
        import json

        return json.dumps(self.sampling.model_dump(mode="json"), sort_keys=True)

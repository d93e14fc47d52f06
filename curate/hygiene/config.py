"""`decontam:` — benchmark decontamination of web and generated documents. Defaults and why."""

from __future__ import annotations

from pydantic import Field

from curate.core.section import Section


class DecontamConfig(Section):
    # On by default: a release that makes a team train on test sets is worse than none.
    enabled: bool = True
    # "" = the index that ships with curate (curate/data/decontam/default-index.npz: GSM8K,
    # HumanEval, MBPP, MMLU, ARC, HellaSwag, TruthfulQA, PIQA, WinoGrande, BoolQ, OpenBookQA;
    # sources and licences beside it). Build your own with `curate decontam build-index`.
    index: str = ""
    # 13 words: the n-gram of GPT-3's and NeMo Curator's task decontamination; shorter n-grams
    # start matching stock phrases, longer ones miss items with a changed word. Must equal the
    # n the index was built with (checked at start).
    ngram: int = Field(default=13, ge=5, le=50)
    # A document is contaminated when EITHER holds (ConTAM, arXiv 2411.03923: the longest
    # contaminated span is the better signal than counts of scattered n-gram hits):
    # - its longest run of contiguous words covered by indexed n-grams reaches this many words.
    #   30 words is more than two chained 13-grams, longer than any stock phrase we measured on
    #   clean text (bench/RESULTS-hygiene.md), and shorter than a GSM8K problem (~46 words) or a
    #   HumanEval prompt (~70);
    min_span_words: int = Field(default=30, ge=1)
    # - or it holds this share of one benchmark item's indexed n-grams (an item shorter than
    #   min_span_words, e.g. a 20-word ARC question with its choices, pasted whole).
    #   0.5: half an item; a single stray 13-gram reaches it only on items of <= 14 words.
    min_item_share: float = Field(default=0.5, gt=0, le=1)


class DecontamIndexConfig(Section):
    """`decontam_index:` settings of `curate decontam build-index` (benchmark files -> index).
    No run reads them: left out of a run's config hash (curate.config.NOT_IN_RUN)."""

    # Record fields whose text forms one item; []: `text` if the record has it, else every
    # string field (a question and its choices together).
    fields: list[str] = Field(default_factory=list)
    # Words per n-gram; null: decontam.ngram, the n a run checks with (the two must be equal).
    ngram: int | None = Field(default=None, ge=1)
    # N-grams found in this many distinct items or more are left out: templates ("which of the
    # following"), not evidence that one item leaked.
    stop_items: int = Field(default=3, ge=1)
    split: str = ""  # split label recorded for every benchmark (e.g. test)
    licence: str = ""  # licence recorded for every benchmark

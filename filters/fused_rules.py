"""The Gopher repetition, Gopher quality, C4 and FineWeb rules in one step, one word
tokenisation per document (issue 18).

datatrove's four filters each tokenise the text again: `split_into_words` (spaCy) in Gopher
repetition, Gopher quality and FineWeb, and spaCy's sentencizer on every kept line in C4.
datatrove's own `lru_cache(5)` on `split_into_parts` shares the words when one document walks
through the filters one after the other, but `FilterAnnotator` runs each filter over a batch
of 256 documents, so the cache misses and every document is tokenised three times. Here:

- words come from spaCy's *tokenizer* alone (the same `spacy.blank("en")` object datatrove
  loads, without its sentencizer pass: tokens are identical), once per text;
- C4 counts sentences only when it must: every kept line is at least one sentence in
  datatrove's `split_into_sentences` (an empty span list still yields one part), so a page
  with `min_num_sentences` kept lines passes without running the sentencizer; below that,
  the kept lines are split exactly as datatrove does;
- FineWeb needs only the number of words of the text C4 left, for `newlines / words`. Each
  whitespace-separated chunk of the text is at least one spaCy token (spaCy splits on the same
  `isspace` characters as `str.split`, and only all-whitespace tokens are dropped), so when
  the ratio already passes with `len(text.split())` words it passes with spaCy's; otherwise
  the text is tokenised exactly.

Every rule reads its thresholds from the datatrove filter `filters.heuristics.build_filter`
builds from the config, and reuses datatrove's helpers (`find_duplicates`, `get_n_grams`,
...), so the decision and the reason are datatrove's; `tests/test_fused_rules.py` and
`bench/bench_fused_rules.py` check that on real pages. C4's rewrite of the text (citations
removed, lines dropped) is applied as datatrove's `C4QualityFilter` does, so FineWeb, the
quality scorers and the shards see the same text."""

from __future__ import annotations

import contextlib
import re
from collections import Counter
from itertools import pairwise
from typing import Any

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.filters import (
    C4QualityFilter,
    FineWebQualityFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
)
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.pipeline.filters.c4_filters import (
    CITATION_REGEX,
    ELLIPSIS,
    END_PUNCTUATION,
    POLICY_SUBSTRINGS,
)
from datatrove.pipeline.filters.gopher_repetition_filter import find_duplicates
from datatrove.utils.batching import batched
from datatrove.utils.text import PUNCTUATION_SET, split_into_sentences
from datatrove.utils.word_tokenizers import SpaCyTokenizer, load_word_tokenizer

from curate.core.schema import META_ANNOTATIONS
from filters.annotate import is_rejected_upstream
from filters.ngram_repeats import NgramRepeats
from filters.spacy_import import import_spacy

Verdict = str | None  # None: the document passes the rule; else datatrove's reason
_PUNCTUATION_CHARS = "".join(PUNCTUATION_SET)


class WordTokenizer:
    """datatrove's `split_into_words` for English (spaCy's blank tokenizer, stripped tokens,
    empty ones dropped), with the tokens of each whitespace-separated chunk cached.

    spaCy tokenises each chunk between whitespace on its own (its own cache is keyed the same
    way) except for one pass: a PhraseMatcher over the whole document for the special cases
    that contain affixes (tokenizer.pyx, `_apply_special_cases`). A match there that spans two
    chunks has no rule (no rule string holds a space besides whitespace itself) and leaves its
    tokens as they are, but it can shadow an overlapping match inside one of the chunks (seen
    on wiki markup: `''` quotes). So the chunk cache is used only when no two neighbouring
    chunks could be joined by such a match (one ends with a pattern token x, the next starts
    with the token y that follows x in some pattern) while one of them holds a special-case
    string; otherwise spaCy tokenises the whole text, exactly as datatrove does. Chunks are
    kept in a bounded dict, so memory stays flat over a crawl; spaCy's memory zone frees what
    each miss allocates."""

    MAX_CACHED_CHUNKS = 200_000  # ~40 MB of short strings; cleared whole when full

    def __init__(self, language: str) -> None:
        self.language = language
        # Before datatrove's `import spacy` (its tokenizer, or C4's sentencizer): without torch. A
        # missing spaCy still fails where datatrove first uses it, as before.
        with contextlib.suppress(ImportError):
            import_spacy()
        self._dt = load_word_tokenizer(language)
        self._chunks: dict[str, tuple[list[str], bool]] = {}  # chunk: (tokens, holds a matcher string)
        self._pairs: dict[str, list[tuple[str, str]]] | None = None  # None: chunk cache not usable
        self._pairs_loaded = False
        self._keys: re.Pattern[str] = re.compile("(?!)")  # any special-case string
        self._nlp: Any = None  # the spaCy pipeline whose tokenizer runs (_spacy)

    def _spacy(self) -> Any:
        dt = self._dt
        if not isinstance(dt, SpaCyTokenizer) or dt.language == "ja":
            return None  # other tokenizers: datatrove's own call, uncached
        if self._nlp is None:
            if dt.config is None:
                # Our own copy of what datatrove loads (`spacy.blank(language)`, the same tokenizer
                # rules), whose vocabulary computes no lexical attributes (shape, like_num, ...) for
                # each new word: only token texts are read here. On 300 long WCXB pages that was
                # ~1.6 ms a page of the tokenisation (issue 18); ~0.06 s once per worker. Not
                # datatrove's object: its sentencizer (C4) reads `is_punct`, a lexical attribute.
                self._nlp = import_spacy().blank(dt.language)  # imported without torch (filters.spacy_import)
                self._nlp.vocab.lex_attr_getters = {}
            else:
                self._nlp = dt.tokenizer  # a configured tokenizer (zh's jieba, ...): datatrove's own
        nlp = self._nlp
        if not self._pairs_loaded:
            self._pairs, self._pairs_loaded = special_case_pairs(nlp.tokenizer), True
            tk = nlp.tokenizer
            # the rules spaCy hands to its PhraseMatcher (Tokenizer.add_special_case)
            keys = [
                k
                for k in tk.rules
                if not tk.faster_heuristics or tk.find_prefix(k) or tk.find_infix(k) or tk.find_suffix(k) or " " in k
            ]
            self._keys = re.compile("|".join(re.escape(k) for k in sorted(keys, key=len, reverse=True)))
        return nlp

    def whole(self, text: str) -> list[str]:
        """The words as datatrove computes them (`SpaCyTokenizer.word_tokenize`), without the
        sentencizer pass, which does not change tokens."""
        nlp = self._spacy()
        if nlp is None:
            return self._dt.word_tokenize(text)
        with nlp.memory_zone():
            try:
                doc = nlp.tokenizer(text)
            except Exception:
                if "IS_ALPHA" not in text:  # the same retry as datatrove's _do_tokenize
                    raise
                doc = nlp.tokenizer(text.replace("IS_ALPHA", ""))
            return [s for s in (t.text.strip() for t in doc) if s]

    def words(self, text: str) -> list[str]:
        nlp = self._spacy()
        if nlp is None or self._pairs is None or "IS_ALPHA" in text:
            return self.whole(text)
        cache, keys = self._chunks, self._keys
        if len(cache) >= self.MAX_CACHED_CHUNKS:
            cache.clear()
        chunks = text.split()
        missing = list(dict.fromkeys(c for c in chunks if c not in cache))
        if missing:
            # One spaCy call for all new chunks, one per line: no pattern holds a whitespace
            # token, so nothing matches across the newlines and each chunk is split on its own.
            with nlp.memory_zone():
                toks_all = [t.text for t in nlp.tokenizer("\n".join(missing))]
            got: list[list[str]] = [[]]
            for t in toks_all:
                if t.isspace():
                    got.append([])
                else:
                    got[-1].append(t)
            if len(got) != len(missing):  # not one newline token per gap: never seen; be exact
                return self.whole(text)
            for chunk, toks in zip(missing, got):
                # whether the chunk holds a string spaCy's PhraseMatcher looks for
                cache[chunk] = (toks, keys.search(chunk) is not None)
        out: list[str] = []
        prev, prev_toks, prev_key = "", [""], False
        for chunk in chunks:
            toks, has_key = cache[chunk]
            # A match spanning two chunks only matters if it can shadow a match inside one of
            # them, so only chunks holding a matcher string are checked. A chunk holding none
            # had no match inside it, so its cached tokens are the ones the matcher saw;
            # otherwise any token it ends (starts) with is assumed.
            if (has_key or prev_key) and self._may_span(prev, prev_toks[-1], prev_key, chunk, toks[0], has_key):
                return self.whole(text)
            out.extend(toks)
            prev, prev_toks, prev_key = chunk, toks, has_key
        return out

    def _may_span(self, a: str, a_last: str, a_key: bool, b: str, b_first: str, b_key: bool) -> bool:
        for x, y in self._pairs.get(a[-1:], ()):  # type: ignore[union-attr]
            if (a.endswith(x) if a_key else a_last == x) and (b.startswith(y) if b_key else b_first == y):
                return True
        return False


def special_case_pairs(tokenizer: Any) -> dict[str, list[tuple[str, str]]] | None:
    """Every two neighbouring tokens (x, y) of spaCy's multi-token special-case patterns (the
    rules' strings split by the affix rules alone: what its PhraseMatcher looks for), keyed by
    x's last character. A match spanning two chunks must have one chunk end with such an x and
    the next start with its y. None when a pattern holds a whitespace token (then no chunk is
    safe alone)."""
    from spacy.tokenizer import Tokenizer

    affixes_only = Tokenizer(
        tokenizer.vocab,
        rules={},
        prefix_search=tokenizer.prefix_search,
        suffix_search=tokenizer.suffix_search,
        infix_finditer=tokenizer.infix_finditer,
        token_match=tokenizer.token_match,
        url_match=tokenizer.url_match,
    )
    pairs: dict[str, list[tuple[str, str]]] = {}
    for key in tokenizer.rules:
        toks = [t.text for t in affixes_only(key)]
        if len(toks) > 1 and any(c.isspace() for t in toks for c in t):
            return None
        for x, y in pairwise(toks):
            if (x, y) not in pairs.setdefault(x[-1], []):
                pairs[x[-1]].append((x, y))
    return pairs


class _Words:
    """A document's words, tokenised on first use."""

    __slots__ = ("_tok", "_words", "text")

    def __init__(self, text: str, tok: WordTokenizer) -> None:
        self.text, self._tok, self._words = text, tok, None

    def get(self) -> list[str]:
        if self._words is None:
            self._words = self._tok.words(self.text)
        return self._words


def gopher_repetition(f: GopherRepetitionFilter, text: str, words: _Words) -> Verdict:
    """`GopherRepetitionFilter.filter`, words given."""
    if not text:
        return "empty"
    paragraphs = f.paragraph_exp.split(text.strip())
    paragraphs_duplicates, char_duplicates = find_duplicates(paragraphs)
    if f.dup_para_frac and paragraphs_duplicates / len(paragraphs) > f.dup_para_frac:
        return "dup_para_frac"
    if f.dup_para_char_frac and char_duplicates / len(text) > f.dup_para_char_frac:
        return "dup_para_char_frac"
    lines = f._line_splitter.split(text)
    line_duplicates, char_duplicates = find_duplicates(lines)
    if f.dup_line_frac and line_duplicates / len(lines) > f.dup_line_frac:
        return "dup_line_frac"
    if f.dup_line_char_frac and char_duplicates / len(text) > f.dup_line_char_frac:
        return "dup_line_char_frac"
    ws = words.get()
    repeats = NgramRepeats(ws)  # filters/ngram_repeats.py: datatrove's counts, faster on long texts
    for n, n_frac in f.top_n_grams:
        if len(ws) - n + 1 > 0 and repeats.top_duplicate_chars(n) / len(text) > n_frac:
            return f"top_{n}_gram"
    for n, n_frac in f.dup_n_grams:
        if repeats.all_duplicate_chars(n) / len(text) > n_frac:
            return f"duplicated_{n}_n_grams"
    return None


def gopher_quality(f: GopherQualityFilter, text: str, words: _Words) -> Verdict:
    """`GopherQualityFilter.filter`, words given. Each distinct word is looked at once (counts
    from a Counter); the mean word length is the exact integer sum divided once, as numpy's
    mean of integers is. A word is a symbol iff every character is in PUNCTUATION_SET, i.e.
    iff stripping those characters leaves nothing."""
    ws = words.get()
    n_words = len(ws)
    counts = Counter(ws)
    n_non_symbol = chars = n_alpha = 0
    for w, k in counts.items():
        if w.strip(_PUNCTUATION_CHARS):
            n_non_symbol += k
            chars += len(w) * k
        if w.isalpha() or any(c.isalpha() for c in w):
            n_alpha += k
    if f.min_doc_words and n_non_symbol < f.min_doc_words:
        return "gopher_short_doc"
    if f.max_doc_words and n_non_symbol > f.max_doc_words:
        return "gopher_long_doc"
    avg = chars / n_non_symbol if n_non_symbol else float("nan")  # np.mean([]) is nan
    if f.min_avg_word_length and avg < f.min_avg_word_length:
        return "gopher_below_avg_threshold"
    if f.max_avg_word_length and avg > f.max_avg_word_length:
        return "gopher_above_avg_threshold"
    if f.max_symbol_word_ratio and text.count("#") / n_words > f.max_symbol_word_ratio:
        return "gopher_too_many_hashes"
    if f.max_symbol_word_ratio and (text.count("...") + text.count("…")) / n_words > f.max_symbol_word_ratio:
        return "gopher_too_many_ellipsis"
    lines = text.splitlines()
    if f.max_bullet_lines_ratio:
        bullets = sum(s.lstrip().startswith("•") or s.lstrip().startswith("-") for s in lines)
        if bullets / len(lines) > f.max_bullet_lines_ratio:
            return "gopher_too_many_bullets"
    if f.max_ellipsis_lines_ratio:
        ellipsis = sum(s.rstrip().endswith("...") or s.rstrip().endswith("…") for s in lines)
        if ellipsis / len(lines) > f.max_ellipsis_lines_ratio:
            return "gopher_too_many_end_ellipsis"
    if f.max_non_alpha_words_ratio and n_alpha / n_words < f.max_non_alpha_words_ratio:
        return "gopher_below_alpha_threshold"
    if f.min_stop_words and len(f.stop_words.intersection(counts)) < f.min_stop_words:
        return "gopher_enough_stop_words"
    return None


def c4(f: C4QualityFilter, text: str) -> tuple[Verdict, str]:
    """`C4QualityFilter.filter` (line mode): the verdict and the text it leaves (rewritten only
    when the document passes, as datatrove does)."""
    kept_lines = []
    for line in text.splitlines():
        line = line.strip()
        words = line.split()
        if f.max_word_length != -1 and any(len(word) > f.max_word_length for word in words):
            continue
        if f.remove_citations:
            line = CITATION_REGEX.sub("", line)
        if f.filter_no_terminal_punct and (not line.endswith(END_PUNCTUATION) or line.endswith(ELLIPSIS)):
            continue
        if len(words) < f.min_words_per_line:
            continue
        line_l = line.lower()
        if f.filter_lorem_ipsum and "lorem ipsum" in line_l:
            return "lorem_ipsum", text
        if f.filter_javascript and "javascript" in line_l:
            continue
        if f.filter_curly_bracket and "{" in line:
            return "curly_bracket", text
        if f.filter_policy and any(p in line_l for p in POLICY_SUBSTRINGS):
            continue
        kept_lines.append(line)
    if f.min_num_sentences != -1 and len(kept_lines) < f.min_num_sentences:
        # each kept line counts at least one sentence, so only short pages are split exactly
        num_sentences = sum(len(split_into_sentences(line, f.language)) for line in kept_lines)
        if num_sentences < f.min_num_sentences:
            return "too_few_sentences", text
    return None, "\n".join(kept_lines).strip()


def fineweb(f: FineWebQualityFilter, text: str, words: _Words) -> Verdict:
    """`FineWebQualityFilter.filter`; the word count only when the whitespace count (a lower
    bound of spaCy's) cannot already pass the list ratio."""
    lines = [line for line in text.split("\n") if line.strip() != ""]
    if len(lines) == 0:
        return "empty"
    ratio = sum(1 for line in lines if line.endswith(f.stop_chars)) / len(lines)
    if ratio < f.line_punct_thr and not (ratio == 0 and f.line_punct_exclude_zero):
        return "line_punct_ratio"
    ratio = sum(1 for line in lines if len(line) <= f.short_line_length) / len(lines)
    if ratio > f.short_line_threshold:
        return "short_line_ratio"
    if find_duplicates(lines)[1] / len(text.replace("\n", "")) > f.char_duplicates_ratio:
        return "char_dup_ratio"
    new_line = text.count("\n")
    chunks = len(text.split())
    if chunks and "IS_ALPHA" not in text and new_line / chunks <= f.new_line_ratio:
        return None
    if new_line / len(words.get()) > f.new_line_ratio:
        return "list_ratio"
    return None


# The rules FusedRules reproduces: stage name -> the datatrove filter it computes the verdict of.
FUSED_FORMS: dict[str, type[BaseFilter]] = {
    "gopher_repetition": GopherRepetitionFilter,
    "gopher_quality": GopherQualityFilter,
    "c4": C4QualityFilter,
    "fineweb": FineWebQualityFilter,
}


def has_fused_form(stage: str, f: BaseFilter) -> bool:
    """Whether FusedRules computes this stage's verdict (a rule registered later runs on its own)."""
    if type(f) is not FUSED_FORMS.get(stage):
        return False
    return not isinstance(f, C4QualityFilter) or f.split_paragraph


class FusedRules(PipelineStep):
    """Annotates `annotations[stage]` for each enabled rule set, as `FilterAnnotator` around the
    datatrove filter would, with one tokenisation per document. `filters` maps stage name to
    the datatrove filter holding that stage's thresholds, in the order the rules run."""

    type = "📝 - ANNOTATE"
    name = "annotate:rules (fused)"

    def __init__(self, filters: dict[str, BaseFilter]) -> None:
        super().__init__()
        for stage, f in filters.items():
            if not has_fused_form(stage, f):
                raise ValueError(
                    f"FusedRules has no fused form of {stage} ({type(f).__name__}). Fix: set filters.engine: datatrove"
                )
        c = filters.get("c4")
        if isinstance(c, C4QualityFilter) and not c.split_paragraph:
            raise ValueError("FusedRules reproduces C4 in line mode only. Fix: set filters.engine: datatrove")
        languages = {f.language for f in filters.values()}
        if len(languages) > 1:
            raise ValueError(f"FusedRules needs one language for every rule, got {sorted(languages)}")
        self.filters = filters
        self.language = languages.pop() if languages else "en"
        self._tok: WordTokenizer | None = None

    def annotate(self, text: str) -> tuple[dict[str, Verdict], str]:
        """(verdict per enabled stage, the text after C4's rewrite) for one document's text."""
        if self._tok is None:
            self._tok = WordTokenizer(self.language)
        words = _Words(text, self._tok)
        verdicts: dict[str, Verdict] = {}
        for stage, f in self.filters.items():
            if stage == "gopher_repetition":
                verdicts[stage] = gopher_repetition(f, text, words)  # type: ignore[arg-type]
            elif stage == "gopher_quality":
                verdicts[stage] = gopher_quality(f, text, words)  # type: ignore[arg-type]
            elif stage == "c4":
                verdicts[stage], new_text = c4(f, text)  # type: ignore[arg-type]
                if new_text != text:
                    text, words = new_text, _Words(new_text, self._tok)
            else:
                verdicts[stage] = fineweb(f, text, words)  # type: ignore[arg-type]
        return verdicts, text

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for batch in batched(data, 256):
            with self.track_time("batch"):
                for doc in batch:
                    if is_rejected_upstream(doc):
                        continue
                    verdicts, doc.text = self.annotate(doc.text)
                    annotations: dict[str, Any] = doc.metadata.setdefault(META_ANNOTATIONS, {})
                    for stage, verdict in verdicts.items():
                        annotations[stage] = verdict
                        self.stat_update(f"{stage}_passed" if verdict is None else f"{stage}_failed_{verdict}")
            yield from batch

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_tok"] = None  # spaCy and the chunk cache stay in their process; each worker builds its own
        return state


def datatrove_verdicts(filters: dict[str, BaseFilter], text: str) -> tuple[dict[str, Verdict], str]:
    """The reference: datatrove's filters one after the other on one document's text, as
    `FilterAnnotator` runs them (C4 rewrites the text for the filters after it). For the
    fidelity test and bench."""
    doc = Document(text=text, id="x")
    verdicts: dict[str, Verdict] = {}
    for stage, f in filters.items():
        keep, reason = _result(f.filter(doc))
        verdicts[stage] = None if keep else (reason or f"{stage}_failed")
    return verdicts, doc.text


def _result(res: Any) -> tuple[bool, str | None]:
    return (res[0], res[1]) if isinstance(res, tuple) else (res, None)

"""How varied the synthetic documents are. Cosmopedia's first children's stories mostly began
"Once upon a time"; the same template and model tend to reuse one opening and one structure,
which a model trained on them learns as a tic. Reported, not enforced:

- openings: distinct first-k-word sequences / documents (k = 1..5), and the share of the
  commonest one (1.0 = every document starts the same way);
- distinct_4grams: distinct word 4-grams / all 4-grams over all documents (repetition across
  documents, where Gopher's rules see one document at a time);
- topic coverage: distinct seed topics with a kept document / seed topics planned / available
  (available: among the seeds the run selected, at most one per prompt; see curate.synth.seeds);
- per template and audience: documents kept.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

_WORD = re.compile(r"\w+(?:'\w+)?")
OPENING_WORDS = (1, 2, 3, 4, 5)
TOP_OPENINGS = 5


def _words(text: str, limit: int | None = None) -> list[str]:
    words = _WORD.findall(text.lower()) if limit is None else _WORD.findall(text[: limit * 20].lower())[:limit]
    return words


def diversity_report(
    texts: list[str],
    topics: list[str],
    seed_topics_planned: list[str],
    seed_topics_available: int,
    templates: list[str],
    audiences: list[str],
) -> dict[str, Any]:
    """`texts[i]` was generated for `topics[i]` with `templates[i]` and `audiences[i]` (kept
    documents only); `seed_topics_planned`: the topic of every prompt of the run."""
    n = len(texts)
    report: dict[str, Any] = {"documents": n}
    openings: dict[str, Any] = {}
    for k in OPENING_WORDS:
        starts = Counter(" ".join(_words(t, k)) for t in texts if len(_words(t, k)) == k)
        total = sum(starts.values())
        common, count = starts.most_common(1)[0] if starts else ("", 0)
        openings[str(k)] = {
            "distinct": len(starts),
            "distinct_ratio": round(len(starts) / total, 4) if total else 0.0,
            "top": common,
            "top_share": round(count / total, 4) if total else 0.0,
        }
    report["openings"] = openings
    three = Counter(" ".join(_words(t, 3)) for t in texts)
    report["top_openings"] = (
        [{"words": w, "documents": c, "share": round(c / n, 4)} for w, c in three.most_common(TOP_OPENINGS)]
        if n
        else []
    )
    # Only the number of distinct 4-grams is reported, so a set of their hashes (~70 B each)
    # is kept, not the 4-grams (~330 B each with their words): the report's memory stays a
    # fraction of the texts'. A 64-bit collision (~1e-9 at 10^5 documents) would miscount one.
    distinct: set[int] = set()
    total_grams = 0
    for t in texts:
        w = _words(t)
        distinct.update(map(hash, zip(w, w[1:], w[2:], w[3:])))
        total_grams += max(len(w) - 3, 0)
    report["distinct_4grams"] = round(len(distinct) / total_grams, 4) if total_grams else 0.0
    covered = {t.lower() for t in topics}
    planned = {t.lower() for t in seed_topics_planned}
    report["topics"] = {
        "available": seed_topics_available,
        "planned": len(planned),
        "covered": len(covered),
        "coverage_of_planned": round(len(covered & planned) / len(planned), 4) if planned else 0.0,
        "coverage_of_available": round(len(covered) / seed_topics_available, 4) if seed_topics_available else 0.0,
    }
    report["by_template"] = dict(sorted(Counter(templates).items()))
    report["by_audience"] = dict(sorted(Counter(audiences).items()))
    return report

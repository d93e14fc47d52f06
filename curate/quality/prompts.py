"""The educational-value prompt, and reading its answer.

The rubric follows FineWeb-Edu's annotation prompt (Penedo et al. 2024, "The FineWeb
Datasets", appendix): an additive 0-5 scale where each point needs the previous ones, a short
justification, and a final line that a regex can read. Additive scoring made Llama-3-70B's
labels consistent enough to train a classifier on (their F1 0.82 at score 3)."""

from __future__ import annotations

import re

SYSTEM = "You are a careful teacher who rates how useful web pages are for teaching school students."

RUBRIC = """Below is an extract from a web page. Evaluate whether the page has a high educational value and could be useful in an educational setting for teaching from primary school to middle school levels, using the additive 5-point scoring system described below. Points are accumulated based on the satisfaction of each criterion:

- Add 1 point if the extract provides some basic information relevant to educational topics, even if it includes some irrelevant or non-academic content like advertisements and promotional material.
- Add another point if the extract addresses certain elements pertinent to education but does not align closely with educational standards. It might mix educational content with non-educational material, offer a superficial overview of potentially useful topics, or present information in a disorganized manner.
- Award a third point if the extract is appropriate for educational use and introduces key concepts relevant to school curricula. It is coherent, though it may not be comprehensive or could include some extraneous information. It may resemble an introductory section of a textbook or a basic tutorial that is suitable for learning.
- Grant a fourth point if the extract is highly relevant and beneficial for educational purposes for a level not higher than middle school, with a clear and consistent writing style. It could be similar to a chapter from a textbook or a tutorial, offering substantial educational content with minimal irrelevant information. The content is coherent, focused, and valuable for structured learning.
- Bestow a fifth point if the extract is outstanding in its educational value, perfectly suited for teaching at primary school or middle school. It follows detailed reasoning, the writing style is easy to follow, and it offers profound and thorough insights into the subject matter, devoid of any non-educational content.

The extract:
<extract>
{text}
</extract>

After examining the extract:
- Briefly justify your total score, in up to 100 words.
- Conclude with the score on its own final line, in the format: "Educational score: <total points>"."""  # noqa: E501

# Added on the one retry after an answer without a readable score.
RETRY_SUFFIX = '\n\nYour answer MUST end with a line of the exact form "Educational score: N", where N is a whole number from 0 to 5.'  # noqa: E501

# The last "Educational score: N" wins (a model may quote the format before answering);
# markdown bold and "N/5" or "N out of 5" are tolerated, anything else is unparseable.
_SCORE = re.compile(r"educational\s+score\s*[:=]\s*\**\s*([0-5])(?:\s*(?:/|out\s+of)\s*5)?\b", re.IGNORECASE)
MAX_SCORE = 5


def build_prompt(text: str, max_chars: int) -> str:
    """The user message for one document, its text cut to `max_chars` at a word boundary."""
    if len(text) > max_chars:
        cut = text[:max_chars]
        text = cut[: cut.rfind(" ")] if " " in cut else cut
    return RUBRIC.format(text=text.strip())


def parse_score(answer: str) -> int | None:
    """The score of the answer's last `Educational score: N` line, or None if there is none."""
    matches = _SCORE.findall(answer or "")
    return int(matches[-1]) if matches else None


def justification(answer: str) -> str:
    """The answer without its score line: the model's stated reason, kept for auditing."""
    lines = [line for line in (answer or "").strip().splitlines() if not _SCORE.search(line)]
    return "\n".join(lines).strip()

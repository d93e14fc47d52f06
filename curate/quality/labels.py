"""Reading labelled JSONL: one object per line with a text and a label that is either 0/1 or
an educational score 0-5 (binarised at a threshold, 3 by default as in FineWeb-Edu)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from curate.core.errors import InputError

LabelKind = Literal["auto", "binary", "score"]
MAX_SCORE = 5


def _number(value: Any, where: str, label_field: str) -> float:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            pass
    raise InputError(f"{where}: {label_field}={value!r} is not a number. Fix: write 0/1 or a score 0-{MAX_SCORE}")


def read_labelled(
    path: str | Path,
    text_field: str = "text",
    label_field: str = "label",
    score_threshold: float = 3,
    label_kind: LabelKind = "auto",
    group_field: str | None = None,
) -> tuple[list[str], list[int], dict[str, Any]]:
    """(texts, 0/1 labels, info). `auto`: labels that are all 0 or 1 are binary, anything else
    is a 0-5 score and counts as positive when >= score_threshold. Lines whose label is null
    (unparseable LLM answers) are skipped and counted. With `group_field`,
    info["groups"] holds that field per line (None where absent)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(
            f"labelled file not found: {p}. Fix: pass a JSONL file with '{text_field}' and '{label_field}' on each line"
        )
    texts: list[str] = []
    raw: list[float] = []
    groups: list[Any] = []
    skipped = 0
    with open(p, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{p}:{lineno}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{where}: not valid JSON ({exc.msg}). Fix: one JSON object per line") from None
            if not isinstance(obj, dict) or text_field not in obj or label_field not in obj:
                keys = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
                raise InputError(
                    f"{where}: needs the fields '{text_field}' and '{label_field}' (has {keys}). Fix: pass "
                    "--text-field/--label-field"
                )
            if obj[label_field] is None:
                skipped += 1  # an LLM answer without a readable score: unlabelled, not 0
                continue
            value = _number(obj[label_field], where, label_field)
            if not 0 <= value <= MAX_SCORE:
                raise InputError(
                    f"{where}: {label_field}={value} is outside 0-{MAX_SCORE}. Fix: labels are 0/1 or scores "
                    f"0-{MAX_SCORE}"
                )
            texts.append(str(obj[text_field] or ""))
            raw.append(value)
            if group_field:
                groups.append(obj.get(group_field))
    if not texts:
        raise InputError(f"{p} has no labelled lines. Fix: write one JSON object per line")
    kind = label_kind
    if kind == "auto":
        kind = "binary" if all(v in (0.0, 1.0) for v in raw) else "score"
    if kind == "binary":
        bad = next((v for v in raw if v not in (0.0, 1.0)), None)
        if bad is not None:
            raise InputError(
                f"{p}: label {bad} is not 0 or 1 but the labels were declared binary. Fix: use --label-kind score"
            )
        labels = [int(v) for v in raw]
    else:
        labels = [int(v >= score_threshold) for v in raw]
    info: dict[str, Any] = {
        "label_kind": kind,
        "score_threshold": score_threshold if kind == "score" else None,
        "n": len(texts),
        "positives": sum(labels),
        "skipped_unlabelled": skipped,
    }
    if group_field:
        info["groups"] = groups
    return texts, labels, info

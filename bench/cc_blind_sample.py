"""Print a seeded random sample of the Common Crawl documents of bench/data/cc-dolma-labels.jsonl
for a blind second reading (issue 15, round 4b): id, file, URL, word count and the opening of the
text, WITHOUT the first reading. The `label`/`why`/`second_*` fields are dropped as each row is
read, so a reader using this script never sees them.

    PYTHONPATH=$PWD .venv/bin/python bench/cc_blind_sample.py --dolma-git /path/to/dolma/.git
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from combined_quality_data import CC_LABELS, DOLMA_COMMIT, dolma_documents  # noqa: E402

# Seed and size of the blind sample: fixed so the second file can be rebuilt and checked.
SEED = 2026120515
SIZE = 120
OPENING = 800  # characters shown: more than the first reader's ~480, still one screen


def blind_rows() -> list[dict]:
    """ids, files, URLs, sha256 and word counts only: the first reading is never kept."""
    keep = ("id", "file", "url", "sha256", "words")
    return [{k: json.loads(line)[k] for k in keep} for line in CC_LABELS.open(encoding="utf-8")]


def dolma_texts(dolma_git: Path) -> dict[tuple[str, str], str]:
    return {key: doc["text"] for key, doc in dolma_documents(dolma_git).items()}


def blind_sample(dolma_git: Path) -> list[dict]:
    """The SIZE documents of the second reading: a seeded random sample of the non-empty texts,
    in file order (not stratified by anything)."""
    texts = dolma_texts(dolma_git)
    rows = []
    for row in blind_rows():
        text = texts[(row["file"], row["id"])]
        if hashlib.sha256(text.encode()).hexdigest()[:16] != row["sha256"]:
            raise SystemExit(
                f"dolma document {row['file']}/{row['id']}: not the text that was read. "
                f"Fix: use a clone of allenai/dolma holding commit {DOLMA_COMMIT}"
            )
        if text.strip():
            rows.append({**row, "text": text})
    picked = sorted(random.Random(SEED).sample(range(len(rows)), SIZE))
    return [rows[i] for i in picked]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dolma-git", type=Path, default=os.environ.get("CURATE_DOLMA_GIT"))
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--stop", type=int, default=SIZE)
    args = ap.parse_args()
    if args.dolma_git is None:
        raise SystemExit("no dolma clone. Fix: pass --dolma-git PATH or set CURATE_DOLMA_GIT")
    for n, row in enumerate(blind_sample(args.dolma_git)[args.start : args.stop], start=args.start):
        opening = " / ".join(line.strip() for line in row["text"][:OPENING].splitlines() if line.strip())
        print(f"#{n} {row['file']}/{row['id']} words={row['words']} {row['url']}\n{opening}\n")


if __name__ == "__main__":
    main()

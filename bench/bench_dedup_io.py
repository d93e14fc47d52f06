"""Dedup clustering I/O: the previous partitioned clustering (bench/baseline_partitioned.py, a
frozen copy of the algorithm curate used up to commit 57908de) against curate's current
curate/dedup/partitioned.py, in one process, on the same synthetic signature tables and index. Reports wall-time ratios and the
bytes each read and wrote (the process's rchar / wchar from /proc/self/io: every byte a
read or write call moved, page cache or not), and checks that both decide the same.

    python -m bench.bench_dedup_io                     # 200k documents, P = 8 and P = 2, 3 segments
    python -m bench.bench_dedup_io --docs 50000 --rounds 1

Signature tables are synthetic (random signatures, exact copies, near copies with a share of
their signature values changed, blank and shingle-less documents, repeated ids) with band
hashes computed by curate's own Signer: clustering reads only these tables, never text, so
the I/O measured is the I/O of real runs of this size. Writes bench/RESULTS-dedup-io.md.
"""  # noqa: E501

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import numpy as np
import polars as pl
import pyarrow as pa

import bench.baseline_partitioned as old_code
import curate.dedup.partitioned as new
from bench.common import results_path
from curate.config import CurateConfig, load_config
from curate.core.parquet_io import write_table_atomic
from curate.dedup.index import DedupIndex
from curate.dedup.signatures import MinHashParams, Signer, params_from_config
from curate.dedup.sigtable import UNIT_ROWS, table_schema
from curate.dedup.workers import Workers

REPO = Path(__file__).resolve().parent.parent
RESULTS = results_path("RESULTS-dedup-io.md")


# ------------------------------------------------------------------------ synthetic data


def _mutate(rng: np.random.Generator, sig: np.ndarray) -> np.ndarray:
    """A near copy: each signature value replaced with probability 2-40 % (estimated Jaccard
    ~0.6-0.98, so some copies share no band, and verification drops some that do)."""
    rate = rng.uniform(0.02, 0.4)
    changed = rng.random(sig.shape) < rate
    return np.where(changed, rng.integers(0, 2**32, sig.shape, dtype=np.uint32), sig)


def synthetic_run(
    folder: Path, n: int, params: MinHashParams, segment_rows: list[int], seed: int = 0, unit_rows: int = UNIT_ROWS
) -> tuple[list[Path], Path]:
    """Signature tables of n documents (units of `unit_rows`) under folder/tables, and a
    dedup index under folder/index with one segment (release r<s>) per entry of
    `segment_rows`, a third of whose rows are exact or near copies of this run's documents.
    Returns (tables, index folder)."""
    rng = np.random.default_rng(seed)
    signer = Signer(params)
    sig = rng.integers(0, 2**32, (n, params.num_perm), dtype=np.uint32)
    exact = rng.integers(0, 2**63, (n, 2), dtype=np.int64).astype(np.uint64)
    ids = np.array([f"doc-{i:07d}" for i in range(n)], dtype=object)
    kind = rng.random(n)
    src = (rng.random(n) * np.arange(n)).astype(np.int64)  # an earlier document
    # In document order, so a copy of a copy copies the copy: chains and larger clusters.
    for i in np.flatnonzero((kind < 0.17) & (np.arange(n) > 0)):
        if kind[i] < 0.05:
            sig[i], exact[i] = sig[src[i]], exact[src[i]]
        elif kind[i] < 0.15:
            sig[i] = _mutate(rng, sig[src[i]])
        else:
            ids[i] = ids[src[i]]  # a repeated id with a text of its own
    blank = (kind >= 0.17) & (kind < 0.18)
    has = ~blank & ~((kind >= 0.18) & (kind < 0.19))  # 1 % too short to shingle
    exact[blank] = 0
    bands = signer.band_hashes(sig)
    bands[~has] = 0
    length = rng.integers(100, 20_000, n)
    quality = rng.random(n)

    schema = table_schema(params.bands, params.num_perm, with_sig=True)
    tables: list[Path] = []
    for start in range(0, n, unit_rows):
        part = slice(start, min(start + unit_rows, n))
        m = part.stop - part.start
        arrays = [
            pa.array(np.arange(part.start, part.stop, dtype=np.int64)),
            pa.array(ids[part].tolist(), pa.string()),
            pa.array(length[part]),
            pa.array(quality[part]),
            pa.array(blank[part]),
            pa.array(exact[part, 0]),
            pa.array(exact[part, 1]),
            pa.array(has[part]),
            *[pa.array(bands[part, b]) for b in range(params.bands)],
            pa.FixedSizeListArray.from_arrays(pa.array(sig[part].reshape(-1)), params.num_perm),
        ]
        assert len(arrays[0]) == m
        tables.append(
            write_table_atomic(
                pa.Table.from_arrays(arrays, schema=schema),
                folder / "tables" / f"unit-{len(tables):05d}.parquet",
                compression="lz4",
                row_group_rows=UNIT_ROWS,
            )
        )

    root = folder / "index"
    index = DedupIndex.open(root, params)
    for s, rows in enumerate(segment_rows):
        seg_sig = rng.integers(0, 2**32, (rows, params.num_perm), dtype=np.uint32)
        seg_exact = rng.integers(0, 2**63, (rows, 2), dtype=np.int64).astype(np.uint64)
        copies = np.flatnonzero(rng.random(rows) < 1 / 3)
        of = rng.choice(np.flatnonzero(has), len(copies))
        exact_copy = rng.random(len(copies)) < 0.5
        for c, d, same in zip(copies, of, exact_copy):
            seg_sig[c], seg_exact[c] = (sig[d], exact[d]) if same else (_mutate(rng, sig[d]), seg_exact[c])
        seg_bands = signer.band_hashes(seg_sig)
        frame = pl.DataFrame(
            {
                "id": [f"r{s}-{r:07d}" for r in range(rows)],
                "exact_hi": seg_exact[:, 0],
                "exact_lo": seg_exact[:, 1],
                "has_shingles": np.ones(rows, dtype=bool),
                **{f"band_{b:02d}": seg_bands[:, b] for b in range(params.bands)},
            }
        )
        index.add_segment(frame.lazy(), f"r{s}", f"r{s}")
    return tables, root


def config(index_root: Path, verify_threshold: float) -> CurateConfig:
    return load_config(
        None,
        [
            "name=run",
            f"dedup.index_dir={json.dumps(str(index_root))}",
            f"dedup.verify_threshold={verify_threshold}",
            "executor.workers=1",
        ],
    )


# ----------------------------------------------------------------------------- measuring


def io_counters() -> dict[str, int]:
    return {k: int(v) for k, v in (line.split(":") for line in Path("/proc/self/io").read_text().splitlines())}


def run_once(
    module: ModuleType, cfg: CurateConfig, tables: list[Path], n: int, P: int, scratch: Path
) -> tuple[float, int, int, pl.DataFrame]:
    """One clustering, inline (Workers(1)), P partitions. Returns (seconds, bytes read,
    bytes written, decisions)."""
    module.PARTITION_DOCS = -(-n // P)
    params = params_from_config(cfg.dedup)
    index = DedupIndex.open(Path(cfg.dedup.index_dir), params, verify=False)
    before, started = io_counters(), time.perf_counter()
    files, _ = module.cluster_partitioned(cfg, params, tables, n, index, True, Workers(1), scratch, True)
    seconds, after = time.perf_counter() - started, io_counters()
    decisions = module.read_decisions(files)
    shutil.rmtree(scratch)
    return seconds, after["rchar"] - before["rchar"], after["wchar"] - before["wchar"], decisions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=200_000)
    parser.add_argument(
        "--segments", type=int, nargs="+", default=[60_000, 60_000, 60_000], help="rows of each index segment"
    )
    parser.add_argument("--partitions", type=int, nargs="+", default=[8, 2])
    parser.add_argument("--rounds", type=int, default=3, help="old/new pairs per setting, interleaved")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "curate-bench-dedup-io")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()

    shutil.rmtree(args.workdir, ignore_errors=True)
    args.workdir.mkdir(parents=True)
    old = old_code
    cfg0 = load_config(None, [])
    params = params_from_config(cfg0.dedup)
    tables, index_root = synthetic_run(args.workdir / "data", args.docs, params, args.segments)
    sizes = {
        "tables": sum(t.stat().st_size for t in tables),
        "index": sum(p.stat().st_size for p in index_root.glob("seg-*.parquet")),
    }
    print(
        f"{args.docs} documents in {len(tables)} tables ({sizes['tables'] / 1e6:.0f} MB), index of "
        f"{len(args.segments)} segments ({sizes['index'] / 1e6:.0f} MB)",
        flush=True,
    )

    rows: list[dict[str, object]] = []
    for verify_threshold in (0.0, 0.5):
        cfg = config(index_root, verify_threshold)
        for P in args.partitions:
            times: dict[str, list[float]] = {"old": [], "new": []}
            moved: dict[str, tuple[int, int]] = {}
            decided: dict[str, pl.DataFrame] = {}
            for r in range(args.rounds):
                # Alternate which side goes first, so load from other jobs falls on both alike.
                for name, module in (("old", old), ("new", new))[:: 1 if r % 2 == 0 else -1]:
                    seconds, read, written, decisions = run_once(
                        module, cfg, tables, args.docs, P, args.workdir / "scratch"
                    )
                    times[name].append(seconds)
                    moved[name] = (read, written)
                    decided[name] = decisions
            if not decided["old"].equals(decided["new"]):
                sys.exit(
                    f"decisions differ between the baseline and the current code (P={P}, verify={verify_threshold})"
                )
            row = {
                "verify": verify_threshold,
                "P": P,
                "old_s": min(times["old"]),
                "new_s": min(times["new"]),
                "ratios": [n / o for o, n in zip(times["old"], times["new"])],
                "old_read": moved["old"][0],
                "new_read": moved["new"][0],
                "old_written": moved["old"][1],
                "new_written": moved["new"][1],
                "decisions": decided["new"].height,
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    write_results(args, sizes, rows)


def write_results(args: argparse.Namespace, sizes: dict[str, int], rows: list[dict[str, object]]) -> None:
    mb = 1e6
    lines = [
        "# Dedup clustering I/O: previous algorithm (bench/baseline_partitioned.py) vs current",
        "",
        f"`python -m bench.bench_dedup_io --docs {args.docs} --segments {' '.join(map(str, args.segments))} --rounds "
        f"{args.rounds}` on {platform.node() or 'this machine'}"
        f" ({platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}), {datetime.date.today().isoformat()}, other work running beside it.",
        "old = bench/baseline_partitioned.py (curate's clustering up to commit 57908de, frozen as code); new = "
        "curate/dedup/partitioned.py.",
        f"{args.docs:,} synthetic documents in {-(-args.docs // UNIT_ROWS)} signature tables "
        f"({sizes['tables'] / mb:.0f} MB, signatures included);"
        f" an index of {len(args.segments)} segments ({', '.join(f'{r:,}' for r in args.segments)} rows, "
        f"{sizes['index'] / mb:.0f} MB),"
        " a third of whose rows copy this run's documents. Both code paths run inline (one process, one job after "
        "another)"
        " on the same tables, in interleaved rounds; both produce the same decisions (checked on every setting).",
        "",
        "Bytes are the process's rchar/wchar (/proc/self/io): every byte a read or write call moved, page cache or "
        "not.",
        "Wall ratio: new / old per round, then the median; lower is better.",
        "",
        "| verify | P | old s | new s | wall ratio (median) | MB read old | MB read new | read ratio | MB written old "
        "| MB written new | decisions |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratios = sorted(r["ratios"])  # type: ignore[arg-type]
        median = ratios[len(ratios) // 2]
        lines.append(
            f"| {r['verify']} | {r['P']} | {r['old_s']:.2f} | {r['new_s']:.2f} | {median:.2f} | "
            f"{r['old_read'] / mb:.0f} | {r['new_read'] / mb:.0f}"  # type: ignore[operator]
            f" | {r['new_read'] / r['old_read']:.3f} | {r['old_written'] / mb:.0f} | {r['new_written'] / mb:.0f} | "
            f"{r['decisions']:,} |"  # type: ignore[operator]
        )
    lines += [
        "",
        "Where the bytes went. Before: each partition's edges job re-read its whole key files once per band column",
        "(15 reads of every shuffled key), read every index segment (the band column in use) once per partition, and "
        "with",
        "verification read the signature column of every table once per band per partition (14 x P reads of ~90 MB "
        "here).",
        "After: key files hold one row group per column and each row group is read once; each segment is read once, "
        "by one",
        "job that shuffles its key rows to the partitions (the extra MB written: ~190 B per index document), and its",
        "matched rows' ids once; a partition verifies the candidates of all its bands together, in one signature read.",
        "The remaining P-fold reads are that signature read (~75 % of the new bytes with verification at P = 8) and",
        "`decide`'s read of the tables' id/length/quality/exact columns.",
        "",
        "Wall time follows the bytes where they are large (with verification; see the wall ratios). Without "
        "verification the",
        "repeated reads all came from the page cache on this machine, so the gain is small (P = 8) or the cost of "
        "shuffling",
        "the index outweighs it (P = 2); on storage where a re-read is not free (a cluster's shared or",
        "object storage, or a scratch folder larger than memory) the read ratio is the one that counts.",
    ]
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.results}")


if __name__ == "__main__":
    main()

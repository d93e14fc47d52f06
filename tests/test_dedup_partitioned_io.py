"""I/O of the partitioned dedup clustering (curate/dedup/partitioned.py): every index segment,
every shuffled key row group and (per partition) the signature tables are read once, not once
per partition or per band; and the partition count never changes a decision.

The inputs are synthetic signature tables with band hashes from curate's own Signer
(bench/bench_dedup_io.py); clustering reads only those tables, never text. Reads are
counted through the functions the steps read with, and measured as the bytes the process
read (/proc/self/io rchar), with every step run inline in this process."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq
import pytest

import curate.dedup.partitioned as partitioned
from bench.bench_dedup_io import config, io_counters, synthetic_run
from curate.config import load_config
from curate.dedup.index import DedupIndex
from curate.dedup.signatures import MinHashParams, params_from_config
from curate.dedup.workers import Workers

DOCS = 6_000
PARTITIONS = 6
SEGMENTS = [1_500, 1_500, 1_500]
FOOTER = 64 * 1024  # bytes Arrow's Parquet reader reads from a file's end to find its footer


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], Path, MinHashParams]:
    params = params_from_config(load_config(None, []).dedup)
    tables, index_root = synthetic_run(tmp_path_factory.mktemp("io"), DOCS, params, SEGMENTS, seed=5, unit_rows=1_500)
    return tables, index_root, params


def cluster(
    run: tuple[list[Path], Path, MinHashParams], scratch: Path, P: int, verify: float, monkeypatch: pytest.MonkeyPatch
) -> pl.DataFrame:
    tables, index_root, params = run
    monkeypatch.setattr(partitioned, "PARTITION_DOCS", -(-DOCS // P))
    # A small batch, so a segment spans several row groups of each partition's index file.
    monkeypatch.setattr(partitioned, "SEGMENT_BATCH_ROWS", 500)
    index = DedupIndex.open(index_root, params, verify=False)
    files, _ = partitioned.cluster_partitioned(
        config(index_root, verify), params, tables, DOCS, index, True, Workers(1), scratch, True
    )
    assert len(files) == P
    return partitioned.read_decisions(files)


def spy(
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    calls: list[tuple[Any, ...]] | None = None,
    read: Counter[str] | None = None,
) -> None:
    """Wrap partitioned.<name>: record its arguments and/or the bytes it read."""
    real: Callable[..., Any] = getattr(partitioned, name)

    def wrapper(*args: Any) -> Any:
        if calls is not None:
            calls.append(args)
        before = io_counters()["rchar"]
        result = real(*args)
        if read is not None:
            read[name] += io_counters()["rchar"] - before
        return result

    monkeypatch.setattr(partitioned, name, wrapper)


def size(files: list[Path]) -> int:
    return sum(f.stat().st_size for f in files)


@pytest.mark.parametrize("verify", [0.0, 0.5])
def test_the_partition_count_does_not_change_a_decision(
    run: tuple[list[Path], Path, MinHashParams], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, verify: float
) -> None:
    one = cluster(run, tmp_path / "one", 1, verify, monkeypatch)
    many = cluster(run, tmp_path / "many", PARTITIONS, verify, monkeypatch)
    assert many.equals(one)
    # Every kind of decision is there, so the equality covers each path.
    assert set(one.get_column("reason").to_list()) == {"exact_duplicate", "near_duplicate", "duplicate_id"}
    assert set(one.filter(pl.col("value").str.starts_with("earlier release")).get_column("value").to_list()) == {
        "earlier release r0",
        "earlier release r1",
        "earlier release r2",
    }
    assert one.height > DOCS // 10


def test_verification_drops_candidates(
    run: tuple[list[Path], Path, MinHashParams], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The verified run (whose signature reads are counted below) really verifies."""
    loose = cluster(run, tmp_path / "loose", PARTITIONS, 0.0, monkeypatch)
    strict = cluster(run, tmp_path / "strict", PARTITIONS, 0.9, monkeypatch)
    near = pl.col("reason") == "near_duplicate"
    assert 0 < strict.filter(near).height < loose.filter(near).height


def test_verifying_in_slices_decides_as_at_once(
    run: tuple[list[Path], Path, MinHashParams], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = cluster(run, tmp_path / "whole", PARTITIONS, 0.9, monkeypatch)
    monkeypatch.setattr(partitioned, "VERIFY_SLICE_EDGES", 3)  # many slices, one ragged
    assert cluster(run, tmp_path / "sliced", PARTITIONS, 0.9, monkeypatch).equals(whole)


def test_key_files_hold_one_column_per_row_group(
    run: tuple[list[Path], Path, MinHashParams], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster(run, tmp_path, PARTITIONS, 0.0, monkeypatch)
    bands = run[2].bands
    for folder, writes in (("keys", 1), ("index", -(-SEGMENTS[0] // 500))):
        files = sorted((tmp_path / folder).glob("*.parquet"))
        assert {f.name.split("-")[0] for f in files} == {f"{q:05d}" for q in range(PARTITIONS)}
        for path in files:
            meta = pq.read_metadata(path)
            at = meta.schema.names.index("column")
            columns = [
                (meta.row_group(g).column(at).statistics.min, meta.row_group(g).column(at).statistics.max)
                for g in range(meta.num_row_groups)
            ]
            assert all(lo == hi for lo, hi in columns), path
            # One row group per column and write: a unit is one write, a segment one per batch.
            found = Counter(lo for lo, _ in columns)
            assert set(found) <= set(range(-1, bands)) and max(found.values()) <= writes, path
            assert len(found) == bands + 1, path


def test_each_key_row_group_is_read_once(
    run: tuple[list[Path], Path, MinHashParams], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[Any, ...]] = []
    spy(monkeypatch, "read_group", calls)
    cluster(run, tmp_path, PARTITIONS, 0.5, monkeypatch)
    every = Counter((Path(path), group) for path, group, _ in calls)
    written = {
        (p, g)
        for folder in ("keys", "index")
        for p in (tmp_path / folder).glob("*.parquet")
        for g in range(pq.read_metadata(p).num_row_groups)
    }
    assert set(every) == written
    assert set(every.values()) == {1}


def test_index_segments_and_key_files_are_read_once(
    run: tuple[list[Path], Path, MinHashParams], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bytes read per step against the bytes of what the step reads. Before: each partition
    read every segment, and each band re-read the partition's whole key files (16x)."""
    read: Counter[str] = Counter()
    for step in ("bucket_segment", "partition_edges", "segment_hits"):
        spy(monkeypatch, step, read=read)
    cluster(run, tmp_path, PARTITIONS, 0.0, monkeypatch)
    segments = sorted(run[1].glob("seg-*.parquet"))
    scratch = sorted((tmp_path / "keys").glob("*.parquet")) + sorted((tmp_path / "index").glob("*.parquet"))
    dupids = sorted((tmp_path / "dupids").glob("*.parquet"))
    # Opening a Parquet file reads up to its last 64 KiB for the footer, once per file here.
    footers = sum(min(f.stat().st_size, FOOTER) for f in scratch)
    assert read["bucket_segment"] <= size(segments) + len(segments) * FOOTER
    # Each segment's job reads every partition's (small) list of matched index nodes.
    assert read["segment_hits"] <= size(segments) + len(segments) * (
        FOOTER + size(sorted((tmp_path / "hits").glob("*.parquet")))
    )
    # Each partition reads every dupids file (small: the repeated ids), and its own files once.
    assert size(scratch) <= read["partition_edges"] <= size(scratch) + footers + PARTITIONS * size(dupids)


def test_signatures_are_read_once_per_partition(
    run: tuple[list[Path], Path, MinHashParams], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[Any, ...]] = []
    spy(monkeypatch, "read_signatures", calls)
    cluster(run, tmp_path, PARTITIONS, 0.5, monkeypatch)
    # One call per partition with band candidates (every partition has some here).
    assert len(calls) == PARTITIONS
    # Each asks only for documents in a candidate edge, each once.
    for _, nodes in calls:
        assert 0 < len(nodes) < DOCS and len(set(nodes.tolist())) == len(nodes)


def test_key_writers_raise_the_open_file_limit_or_say_how(tmp_path: Path) -> None:
    """A bucket job holds one key file open per partition: with P past the soft limit on open
    files (1,024 by default, ~1B documents) it failed with EMFILE (found in review)."""
    import subprocess
    import sys
    import textwrap

    probe = textwrap.dedent(
        f"""
        import resource, sys
        import polars as pl
        from pathlib import Path
        from curate.dedup.partitioned import KeyWriter
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (200, hard))  # a low soft limit, as on many hosts
        P = 400
        frame = pl.DataFrame({{"doc": list(range(P)), "column": [0] * P, "k1": list(range(P)), "k2": [1] * P}})
        with KeyWriter(Path({str(tmp_path)!r}) / "keys", P, 0) as out:
            out.write(frame)
        print(len(list((Path({str(tmp_path)!r}) / "keys").glob("*.parquet"))))
        resource.setrlimit(resource.RLIMIT_NOFILE, (200, 300))  # and a hard limit below what P needs
        try:
            KeyWriter(Path({str(tmp_path)!r}) / "more", P, 0)
        except RuntimeError as exc:
            print(exc)
        """
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    files, message = done.stdout.strip().splitlines()
    assert files == "400"
    assert message == (
        "dedup needs 656 open files per job (one per partition) but this machine allows 300. "
        "Fix: raise the hard limit (`ulimit -Hn`, or LimitNOFILE in systemd / nofile in limits.conf) or use fewer "
        "partitions"
    )

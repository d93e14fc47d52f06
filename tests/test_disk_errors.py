"""A full disk and a read-only output while writing: the run stops with a message naming the
path and the fix, the shards finished before stay valid, and a rerun after freeing space
resumes and ends with the output of a run that never failed.

The small filesystem is a real tmpfs mounted for the test (tests run as root); where mounting
is not permitted the tests are skipped, saying so."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import polars as pl
import pytest
from conftest import require_or_skip

from curate.cli import main
from curate.core.errors import OutputError
from curate.core.shards import OutputConfig, write_shards

PAGE = 4096
# Small shards (a few documents each), so that the disk fills in the middle of them.
SMALL_SHARDS = {"output": {"shard_target_mb": 0.02, "row_group_rows": 4}}


@pytest.fixture
def tmpfs() -> Iterator[Callable[..., Path]]:
    mounted: list[Path] = []

    def mount(path: Path, size: str, read_only: bool = False) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, text=True
        )
        if done.returncode != 0:
            require_or_skip(
                f"mounting a tmpfs is not permitted here ({done.stderr.strip() or done.returncode}); these tests need "
                "root with mount rights"
            )
        mounted.append(path)
        if read_only:
            subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True)
        return path

    yield mount
    for path in reversed(mounted):
        # A process the run started (a task worker, the temporary Prefect server) may still
        # hold a file there for a moment after the test: retry, then detach it lazily (the
        # kernel frees it when the last file closes) rather than fail a test that passed.
        for _ in range(20):
            if subprocess.run(["umount", str(path)], capture_output=True).returncode == 0:
                break
            time.sleep(0.5)
        else:
            subprocess.run(["umount", "-l", str(path)], check=True)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _pages(path: Path) -> int:
    """Bytes a tmpfs spends on the files under `path` (whole pages)."""
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(-(-p.stat().st_size // PAGE) * PAGE for p in files)


def _free(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


@pytest.mark.slow
def test_disk_full_mid_shards_stops_cleanly_and_a_rerun_resumes(
    tmp_path: Path, tmpfs, make_inputs, articles, config_file, run_curate, capsys
) -> None:
    files = make_inputs(tmp_path / "in")
    corpus = files.jsonl("articles.jsonl", [{"id": a["id"], "text": a["text"]} for a in articles[:80]])
    config = config_file(tmp_path / "disk.yaml", name="disk", **SMALL_SHARDS)
    reference = run_curate(config, [corpus], tmp_path / "ref")
    shards = reference.manifest["shards"]
    assert len(shards) >= 4

    # A tmpfs with room for everything the stages write plus half the shards: the disk fills
    # while the shards are being written.
    disk = tmpfs(tmp_path / "disk", "16m")
    before_shards = sum(
        _pages(p)
        for p in reference.root.iterdir()
        if p.name not in ("data", "rejected", "manifest.json", "summary.json")
    )
    half = len(shards) // 2
    room = before_shards + sum(_pages(reference.root / s["path"]) for s in shards[:half]) + PAGE
    ballast = disk / "ballast"
    with open(ballast, "wb") as f:
        os.posix_fallocate(f.fileno(), 0, _free(disk) - room)
    out = disk / "out"

    code = main(["run", str(config), "--input", str(corpus), "--output", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2, err
    match = re.fullmatch(
        r"error: disk full while writing (\S+)\. Files finished before it are complete\. Fix: free space on that disk "
        r"\(or pass --output on a larger one\) and rerun the same command; finished stages are reused\n",
        err,
    )
    assert match, err
    failed = Path(match.group(1))
    assert failed.parent == out / "data" and failed.name.startswith("part-"), failed
    assert not (out / "manifest.json").exists()
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
    # The shards finished before the disk filled are whole: byte for byte the reference's.
    written = sorted(p.name for p in (out / "data").iterdir())
    assert written and len(written) < len(shards)
    assert failed.name not in written
    expected = {Path(s["path"]).name: s["sha256"] for s in shards}
    assert {name: _sha256(out / "data" / name) for name in written} == {name: expected[name] for name in written}

    # Free the space and rerun: the finished stages are reused, and the output is the reference's.
    ballast.unlink()
    assert main(["run", str(config), "--input", str(corpus), "--output", str(out), "--quiet"]) == 0
    capsys.readouterr()
    manifest = json.loads((out / "manifest.json").read_text())
    assert [(s["path"], s["sha256"]) for s in manifest["shards"]] == [(s["path"], s["sha256"]) for s in shards]
    assert {s["stage"]: s["reused"] for s in manifest["counts"]["stages"]}["annotate"] is True
    assert manifest["counts"]["by_reason"] == reference.manifest["counts"]["by_reason"]
    ledger = pl.read_parquet(out / "rejected" / "*.parquet").sort("id")
    assert ledger.drop("source").equals(reference.ledger().sort("id").drop("source"))
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]


def test_read_only_output_subfolder_stops_the_run_before_work(
    tmp_path: Path, tmpfs, inputs, config_file, capsys
) -> None:
    out = tmp_path / "out"
    (out / "data").mkdir(parents=True)
    tmpfs(out / "rejected", "1m", read_only=True)
    source = inputs.jsonl("ok.jsonl", [{"id": "a", "text": "Some text."}])
    code = main(["run", str(config_file(tmp_path / "c.yaml")), "--input", str(source), "--output", str(out), "--quiet"])
    assert code == 2
    assert (
        capsys.readouterr().err
        == f"error: output folder {out / 'rejected'} is not writable. Fix: fix its permissions or choose another --output\n"  # noqa: E501
    )
    assert not (out / "_work").exists() or not any((out / "_work").iterdir())


def test_read_only_data_folder_mid_write_names_the_shard(tmp_path: Path, tmpfs) -> None:
    """The shard writer itself, when its folder turns read-only after the run started."""
    import pyarrow.parquet as pq

    from curate.core import schema as S

    part = tmp_path / "part.parquet"
    pq.write_table(S.DOCUMENT_SCHEMA.empty_table(), part)
    out = tmp_path / "out"
    tmpfs(out / "data", "1m", read_only=True)
    with pytest.raises(OutputError) as err:
        write_shards([part], out, OutputConfig())
    assert str(err.value) == (
        f"cannot write {out / 'data' / 'part-00000.parquet'}: read-only file system. Fix: make that folder writable "
        "(or pass --output with a folder you can write to) and rerun the same command; finished stages are reused"
    )


@pytest.mark.slow
def test_output_turning_read_only_mid_run_names_the_path_and_a_rerun_resumes(
    tmp_path: Path, tmpfs, inputs, articles, config_file, prefect_harness, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`data/` is writable when the run starts (so the check before work passes) and turns
    read-only after the select stage (remounted, as a failing disk or an operator does)."""
    import curate.core.stages as stages

    corpus = inputs.jsonl("articles.jsonl", [{"id": a["id"], "text": a["text"]} for a in articles[:20]])
    config = config_file(tmp_path / "ro.yaml", name="ro", **SMALL_SHARDS)
    out = tmp_path / "out"
    data = tmpfs(out / "data", "16m")
    real_fault_point = stages.fault_point

    def turn_read_only(name: str) -> None:
        if name == "select":
            subprocess.run(["mount", "-o", "remount,ro", str(data)], check=True)
        real_fault_point(name)

    monkeypatch.setattr(stages, "fault_point", turn_read_only)
    argv = ["run", str(config), "--input", str(corpus), "--output", str(out), "--quiet"]
    assert main(argv) == 2
    assert capsys.readouterr().err == (
        f"error: cannot write {data / 'part-00000.parquet'}: read-only file system. Fix: make that folder writable "
        "(or pass --output with a folder you can write to) and rerun the same command; finished stages are reused\n"
    )
    assert not (out / "manifest.json").exists()

    monkeypatch.setattr(stages, "fault_point", real_fault_point)
    subprocess.run(["mount", "-o", "remount,rw", str(data)], check=True)
    assert main(argv) == 0
    capsys.readouterr()
    manifest = json.loads((out / "manifest.json").read_text())
    reused = {s["stage"]: s["reused"] for s in manifest["counts"]["stages"]}
    assert reused["annotate"] and reused["select"], reused
    assert {s["path"]: s["sha256"] for s in manifest["shards"]} == {
        f"data/{p.name}": _sha256(p) for p in data.glob("part-*.parquet")
    }
    assert manifest["counts"]["kept"] + manifest["counts"]["rejected"] == 20

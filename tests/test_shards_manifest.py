"""Output shards and manifest: what the manifest says matches the files, shards are written
atomically, sized by `output.shard_target_mb`, byte-identical on rerun, and a rerun leaves no
stale shard behind."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import curate
from curate.core import schema as S
from curate.core.shards import OutputConfig, write_shards

TARGET_MB = 0.01  # 10 kB: the module's ~20 kept documents make several shards


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, make_inputs, articles, texts) -> Path:
    files = make_inputs(tmp_path_factory.mktemp("corpus") / "in")
    docs = [{"id": a["id"], "text": a["text"], "url": a["url"]} for a in articles[:20]]
    docs += [
        {"id": name, "text": getattr(texts, name.upper())} for name in ("good", "water", "rocks", "cells", "french")
    ]
    files.jsonl("articles.jsonl", docs)
    return files.root


@pytest.fixture(scope="module")
def recipe(tmp_path_factory, config_file) -> Path:
    return config_file(
        tmp_path_factory.mktemp("recipe") / "recipe.yaml",
        name="shards",
        output={"shard_target_mb": TARGET_MB, "row_group_rows": 4},
    )


@pytest.fixture(scope="module")
def sharded(tmp_path_factory, corpus: Path, recipe: Path, run_curate):
    return run_curate(recipe, [corpus], tmp_path_factory.mktemp("sharded") / "out")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_manifest_matches_files_on_disk(sharded) -> None:
    shards = sharded.manifest["shards"]
    assert [s["path"] for s in shards] == [f"data/part-{i:05d}.parquet" for i in range(len(shards))]
    on_disk = sorted(p.relative_to(sharded.root).as_posix() for p in sharded.data.iterdir())
    assert on_disk == [s["path"] for s in shards]  # nothing else in data/
    for shard in shards:
        path = sharded.root / shard["path"]
        assert shard["sha256"] == sha256(path)
        assert shard["bytes"] == path.stat().st_size
        assert shard["rows"] == pq.ParquetFile(path).metadata.num_rows
    totals = sharded.manifest["totals"]
    assert totals == {
        "shards": len(shards),
        "rows": sum(s["rows"] for s in shards),
        "bytes": sum(s["bytes"] for s in shards),
    }
    assert totals["rows"] == sharded.manifest["counts"]["kept"]


def test_small_target_gives_several_shards_of_about_that_size(sharded) -> None:
    shards = sharded.manifest["shards"]
    assert len(shards) >= 3
    # A shard is closed once it reaches the target, so all but the last are at least that big.
    assert all(s["bytes"] >= TARGET_MB * 1_000_000 for s in shards[:-1])
    files = [pq.ParquetFile(sharded.root / s["path"]) for s in shards]
    row_groups = [f.metadata.row_group(i).num_rows for f in files for i in range(f.num_row_groups)]
    assert max(row_groups) <= 4  # output.row_group_rows


def test_shards_hold_the_kept_documents_in_input_order(sharded, articles) -> None:
    kept = sharded.kept()
    ids = kept["id"].to_list()
    order = [a["id"] for a in articles[:20]] + ["good", "water", "rocks", "cells", "french"]
    assert ids == [i for i in order if i in set(ids)]
    assert {"good", "water", "rocks", "cells"} <= set(ids) and "french" not in ids
    assert len(ids) == len(set(ids))


def test_shard_schema_is_the_document_schema(sharded) -> None:
    for shard in sharded.manifest["shards"]:
        assert pq.read_schema(sharded.root / shard["path"]).remove_metadata() == S.DOCUMENT_SCHEMA
    assert sharded.manifest["schema"] == [
        {"name": f.name, "type": str(f.type), "nullable": f.nullable} for f in S.DOCUMENT_SCHEMA
    ]
    # No annotation column leaks into a release.
    assert not [c for c in sharded.kept().columns if c.startswith("ann_")]


def test_manifest_records_how_it_was_made(sharded, corpus: Path) -> None:
    manifest = sharded.manifest
    assert manifest["name"] == "shards"
    assert manifest["inputs"] == [str(corpus / "articles.jsonl")]
    assert manifest["versions"]["curate"] == curate.__version__
    assert manifest["versions"]["pyarrow"] == pa.__version__
    assert manifest["created_at"].endswith("+00:00")
    assert json.loads((sharded.root / "manifest.json").read_text()) == manifest


def test_no_temporary_files_left(sharded, no_tmp_files) -> None:
    assert no_tmp_files(sharded.root) == []


def test_rerun_is_byte_identical(tmp_path: Path, sharded, corpus: Path, recipe: Path, run_curate) -> None:
    """A fresh run (annotate included) into another folder writes the very same shards."""
    again = run_curate(recipe, [corpus], tmp_path / "again")
    assert [(s["path"], s["sha256"], s["rows"]) for s in again.manifest["shards"]] == [
        (s["path"], s["sha256"], s["rows"]) for s in sharded.manifest["shards"]
    ]


def test_rerun_removes_stale_shards(tmp_path: Path, corpus: Path, recipe: Path, run_curate, no_tmp_files) -> None:
    out = tmp_path / "out"
    first = run_curate(recipe, [corpus], out)
    assert len(first.manifest["shards"]) >= 3
    first_kept = first.kept()  # read now: the second run replaces these files
    # Leftovers of a crashed writer and of an older, bigger release.
    (out / "data" / ".part-00000.parquet.tmp").write_bytes(b"half a shard")
    (out / "data" / "part-00042.parquet").write_bytes(b"old shard")
    second = run_curate(recipe, [corpus], out, ["output.shard_target_mb=64"])
    assert [s["path"] for s in second.manifest["shards"]] == ["data/part-00000.parquet"]
    assert sorted(p.name for p in (out / "data").iterdir()) == ["part-00000.parquet"]
    assert second.manifest["totals"]["rows"] == first.manifest["totals"]["rows"]
    assert no_tmp_files(out) == []
    # Same documents, same order: one shard holds exactly what the several did.
    assert second.kept().equals(first_kept)


# ------------------------------------------------------------------ write_shards alone


def kept_part(path: Path, n: int, start: int = 0) -> Path:
    rows = [
        {
            S.ID: f"d{i}",
            S.TEXT: f"Document {i}. " * 40,
            S.SOURCE: "x.jsonl",
            S.OFFSET: i,
            S.URL: None,
            S.DATE: None,
            S.LANG: "en",
            S.LANG_SCORE: 0.9,
            S.METADATA: None,
        }
        for i in range(start, start + n)
    ]
    pq.write_table(pa.Table.from_pylist(rows, schema=S.DOCUMENT_SCHEMA), path)
    return path


def test_empty_result_is_one_empty_shard(tmp_path: Path) -> None:
    part = kept_part(tmp_path / "empty.parquet", 0)
    shards = write_shards([part], tmp_path / "out", OutputConfig())
    assert [(s.path, s.rows) for s in shards] == [("data/part-00000.parquet", 0)]
    table = pq.read_table(tmp_path / "out" / "data" / "part-00000.parquet")
    assert table.num_rows == 0 and table.schema.remove_metadata() == S.DOCUMENT_SCHEMA


@pytest.mark.parametrize("compression", ["zstd", "snappy", "gzip", "none"])
def test_compression_options(tmp_path: Path, compression: str) -> None:
    parts = [kept_part(tmp_path / "a.parquet", 30), kept_part(tmp_path / "b.parquet", 20, start=30)]
    shards = write_shards(parts, tmp_path / "out", OutputConfig(compression=compression, row_group_rows=8))
    table = pl.concat([pl.read_parquet(tmp_path / "out" / s.path) for s in shards])
    assert table["id"].to_list() == [f"d{i}" for i in range(50)]
    codec = pq.ParquetFile(tmp_path / "out" / shards[0].path).metadata.row_group(0).column(0).compression
    assert codec == {"zstd": "ZSTD", "snappy": "SNAPPY", "gzip": "GZIP", "none": "UNCOMPRESSED"}[compression]


def test_write_shards_is_deterministic(tmp_path: Path) -> None:
    parts = [kept_part(tmp_path / "a.parquet", 300)]
    cfg = OutputConfig(shard_target_mb=0.01, row_group_rows=16)
    first = write_shards(parts, tmp_path / "one", cfg)
    second = write_shards(parts, tmp_path / "two", cfg)
    assert len(first) > 1
    assert [(s.path, s.sha256, s.bytes, s.rows) for s in first] == [(s.path, s.sha256, s.bytes, s.rows) for s in second]


@pytest.mark.slow
def test_parallel_workers_write_the_same_shards(
    tmp_path: Path, make_inputs, articles, sample_warc: Path, recipe: Path, run_curate
) -> None:
    """Two worker processes over three files give the very shards one worker gives: output
    must not depend on scheduling (trafilatura's cross-page dedup cache is off for this)."""
    files = make_inputs(tmp_path / "in")
    files.jsonl("a.jsonl", [{"id": a["id"], "text": a["text"]} for a in articles[20:30]])
    files.jsonl("b.jsonl.gz", [{"id": a["id"], "text": a["text"]} for a in articles[30:40]])
    inputs = [files.root, sample_warc]
    one = run_curate(recipe, inputs, tmp_path / "one", ["executor.workers=1"])
    two = run_curate(recipe, inputs, tmp_path / "two", ["executor.workers=2"])
    assert one.manifest["counts"]["ingested"] == 10 + 10 + 16
    assert [s["sha256"] for s in two.manifest["shards"]] == [s["sha256"] for s in one.manifest["shards"]]

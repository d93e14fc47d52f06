"""The persistent dedup index (curate/dedup/index.py): a later release loses its copies of
earlier releases without reading them, reruns do not match themselves, and a damaged
index is refused with the file and the fix."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest

from bench.dedup_data import real_documents, true_jaccard
from curate.config import load_config
from curate.dedup.index import DedupIndex, DedupIndexError
from curate.dedup.signatures import params_from_config
from curate.dedup.stage import run_dedup, stage_extra
from tests.test_dedup_stage import write_part


@pytest.fixture(scope="module")
def docs(shared_data: Path) -> list[tuple[str, str]]:
    # Wikipedia paragraphs with >= 120 words: long enough that a changed footer keeps J >= 0.9.
    return [d for d in real_documents() if len(d[1].split()) >= 120][:100]


def release(
    tmp: Path, name: str, index: Path, records: list[tuple[str, str]], *overrides: str
) -> tuple[list[str], pl.DataFrame]:
    folder = tmp / name
    part = write_part(folder / "in.parquet", records)
    cfg = load_config(
        None, [f"name={name}", f"dedup.index_dir={json.dumps(str(index))}", "executor.workers=1", *overrides]
    )
    out = run_dedup(cfg, [part], folder / "work", folder / "ledger")
    kept = pl.read_parquet(out[0]).get_column("id").to_list()
    return kept, pl.read_parquet(folder / "ledger" / "dedup-00000.parquet")


def test_a_later_release_drops_recrawls_of_an_earlier_one(tmp_path: Path, docs: list[tuple[str, str]]) -> None:
    index = tmp_path / "index"
    first = docs[:60]
    kept, ledger = release(tmp_path, "r1", index, first)
    assert len(kept) == 60 and ledger.height == 0
    # The earlier release's data is gone: the second run can only use the index.
    shutil.rmtree(tmp_path / "r1")
    recrawls = [(f"{d}@r2", t) for d, t in first[:10]]  # same text, new id
    # Re-crawled with a changed footer: true 5-gram Jaccard >= 0.9.
    edited = [(f"{d}@r2-edit", t + " Retrieved 12 March 2025 from the archive copy.") for d, t in first[10:20]]
    assert min(true_jaccard(t, c) for (_, t), (_, c) in zip(first[10:20], edited)) >= 0.9
    recrawls += edited
    fresh = docs[60:80]
    kept, ledger = release(tmp_path, "r2", index, recrawls + fresh)
    assert set(kept) == {d for d, _ in fresh}
    assert ledger.height == 20
    by_id = {r["id"]: r for r in ledger.iter_rows(named=True)}
    for d, _ in first[:20]:
        row = by_id.get(f"{d}@r2") or by_id[f"{d}@r2-edit"]
        assert row["duplicate_of"] == d
        assert row["value"] == "earlier release r1"
    assert {by_id[f"{d}@r2"]["reason"] for d, _ in first[:10]} == {"exact_duplicate"}
    assert "near_duplicate" in {by_id[f"{d}@r2-edit"]["reason"] for d, _ in first[10:20]}
    meta = json.loads((index / "index.json").read_text())
    assert [s["name"] for s in meta["segments"]] == ["r1", "r2"]
    assert [s["rows"] for s in meta["segments"]] == [60, 20]
    assert not [p for p in index.iterdir() if p.name.endswith(".tmp")]


def test_rerunning_a_release_does_not_match_itself(tmp_path: Path, docs: list[tuple[str, str]]) -> None:
    index = tmp_path / "index"
    release(tmp_path, "r1", index, docs[:30])
    kept, ledger = release(tmp_path / "again", "r1", index, docs[:30])
    assert len(kept) == 30 and ledger.height == 0
    assert len(json.loads((index / "index.json").read_text())["segments"]) == 1
    assert len(list(index.glob("seg-*.parquet"))) == 1
    # stage_extra, the resumable-stage key, sees other releases only.
    cfg = load_config(None, ["name=r2", f"dedup.index_dir={json.dumps(str(index))}"])
    assert len(stage_extra(cfg)) == 1
    assert stage_extra(load_config(None, ["name=r1", f"dedup.index_dir={json.dumps(str(index))}"])) == []


def test_update_index_false_leaves_the_index_alone(tmp_path: Path, docs: list[tuple[str, str]]) -> None:
    index = tmp_path / "index"
    release(tmp_path, "r1", index, docs[:10])
    before = (index / "index.json").read_bytes()
    kept, ledger = release(tmp_path, "r2", index, docs[:5] + docs[10:15], "dedup.update_index=false")
    assert ledger.height == 5
    assert (index / "index.json").read_bytes() == before


def _built_index(tmp_path: Path, docs: list[tuple[str, str]]) -> Path:
    index = tmp_path / "index"
    release(tmp_path, "r1", index, docs[:10])
    return index


def _expect_error(
    tmp_path: Path, index: Path, docs: list[tuple[str, str]], *names: str, overrides: tuple[str, ...] = ()
) -> str:
    with pytest.raises(DedupIndexError) as caught:
        release(tmp_path, "r2", index, docs[10:20], *overrides)
    message = str(caught.value)
    for name in names:
        assert name in message
    assert "Fix:" in message
    return message


def test_corrupt_index_json_is_refused_with_its_name(tmp_path: Path, docs: list[tuple[str, str]]) -> None:
    index = _built_index(tmp_path, docs)
    (index / "index.json").write_text('{"format": 1, "segm')
    _expect_error(tmp_path, index, docs, str(index / "index.json"), "corrupt")


def test_damaged_segment_is_refused_with_its_name(tmp_path: Path, docs: list[tuple[str, str]]) -> None:
    index = _built_index(tmp_path, docs)
    [segment] = index.glob("seg-*.parquet")
    data = bytearray(segment.read_bytes())
    data[len(data) // 2] ^= 0xFF
    segment.write_bytes(bytes(data))
    _expect_error(tmp_path, index, docs, str(segment), "corrupt")
    segment.unlink()
    _expect_error(tmp_path, index, docs, str(segment), "missing")


def test_index_built_with_other_settings_is_refused(tmp_path: Path, docs: list[tuple[str, str]]) -> None:
    index = _built_index(tmp_path, docs)
    _expect_error(tmp_path, index, docs, "ngram", "dedup.ngram=5", overrides=("dedup.ngram=3",))
    _expect_error(tmp_path, index, docs, "seed", overrides=("dedup.seed=7",))


def test_a_corrupt_index_fails_before_any_work(tmp_path: Path, docs: list[tuple[str, str]]) -> None:
    index = _built_index(tmp_path, docs)
    (index / "index.json").write_text("not json")
    _expect_error(tmp_path, index, docs, "index.json")
    assert not (tmp_path / "r2" / "work" / "_signatures").exists()
    assert not (tmp_path / "r2" / "ledger").exists() or not list((tmp_path / "r2" / "ledger").iterdir())


def test_open_creates_nothing_until_a_release_is_added(tmp_path: Path) -> None:
    params = params_from_config(load_config(None).dedup)
    index = DedupIndex.open(tmp_path / "new", params)
    assert index.segments == []
    assert not (tmp_path / "new").exists()

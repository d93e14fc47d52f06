"""The dedup stage end to end (curate/dedup/stage.py): what is removed, what is kept, the
ledger, determinism across runs and worker counts, bad inputs, and `curate dedup`."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import curate.dedup.sigtable as sigtable
import curate.dedup.stage as stage
from bench.dedup_data import edit, real_documents, true_jaccard
from curate.config import CurateConfig, load_config
from curate.core import schema as S
from curate.core.shards import conform
from curate.dedup.normalize import exact_key
from curate.dedup.stage import dedup_command, run_dedup


def write_part(
    path: Path, records: list[tuple[str, str]], quality: list[float | None] | None = None, row_group: int = 10_000
) -> Path:
    n = len(records)
    columns = {
        S.ID: [r[0] for r in records],
        S.TEXT: [r[1] for r in records],
        S.SOURCE: [f"src/{path.name}"] * n,
        S.OFFSET: list(range(n)),
        S.URL: [f"https://example.org/{r[0]}" for r in records],
        S.DATE: pa.nulls(n, pa.string()),
        S.LANG: ["en"] * n,
        S.LANG_SCORE: pa.array([0.99] * n, pa.float32()),
        S.METADATA: pa.nulls(n, pa.string()),
    }
    if quality is not None:
        columns["quality_score"] = pa.array(quality, pa.float64())
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(conform(pa.table(columns), S.DOCUMENT_SCHEMA), path, row_group_size=row_group)
    return path


def config(*overrides: str) -> CurateConfig:
    return load_config(None, ["executor.workers=1", *overrides])


def run(tmp: Path, parts: list[Path], *overrides: str) -> tuple[list[str], pl.DataFrame, list[Path]]:
    out = run_dedup(config(*overrides), parts, tmp / "work", tmp / "ledger")
    kept = pl.concat([pl.read_parquet(p) for p in out]).get_column(S.ID).to_list()
    ledger_files = sorted((tmp / "ledger").glob("dedup-*.parquet"))
    ledger = pl.concat([pl.read_parquet(p) for p in ledger_files]) if ledger_files else pl.DataFrame()
    return kept, ledger, out


@pytest.fixture(scope="module")
def docs(shared_data: Path) -> list[tuple[str, str]]:
    return list(real_documents()[:120])


def test_exact_copies_are_always_removed(tmp_path: Path, docs: list[tuple[str, str]]) -> None:
    originals = docs[:30]
    copies = [(f"{i}-upper", t.upper()) for i, t in originals[:10]]
    copies += [(f"{i}-spaces", "  " + "\n\n".join(t.split()) + " ") for i, t in originals[10:20]]
    copies += [(f"{i}-same", t) for i, t in originals[20:30]]
    # Every kind of copy, in its own part, before and after the originals.
    parts = [
        write_part(tmp_path / "in" / "a.parquet", copies[:15]),
        write_part(tmp_path / "in" / "b.parquet", originals),
        write_part(tmp_path / "in" / "c.parquet", copies[15:]),
    ]
    kept, ledger, out = run(tmp_path, parts, "dedup.near=false")
    assert len(kept) == 30
    assert ledger.height == 30
    assert set(ledger.get_column("reason")) == {"exact_duplicate"}
    assert set(ledger.get_column("stage")) == {"dedup"}
    # duplicate_of names a kept document with the same normalised text.
    texts = dict(originals + copies)
    for row in ledger.iter_rows(named=True):
        assert row["duplicate_of"] in kept
        assert exact_key(texts[row["id"]]) == exact_key(texts[row["duplicate_of"]])
    # Ledger rows carry the document's source and offset from its part.
    assert ledger.filter(pl.col("source").is_null()).height == 0
    assert {p.name for p in (tmp_path / "ledger").iterdir()} == {
        "dedup-00000.parquet",
        "dedup-00001.parquet",
        "dedup-00002.parquet",
    }


def test_near_duplicates_are_removed_and_distinct_documents_kept(tmp_path: Path, docs: list[tuple[str, str]]) -> None:
    rng = random.Random(1)
    originals = docs[:80]
    copies = []
    for doc_id, text in originals[:40]:
        copy = edit(text, 0.01, rng)
        copies.append((f"{doc_id}~copy", copy))
        assert true_jaccard(text, copy) >= 0.75
    part = write_part(tmp_path / "in.parquet", originals + copies)
    kept, ledger, out = run(tmp_path, [part])
    assert len(kept) == 80
    dropped = set(ledger.get_column("id"))
    for doc_id, _ in originals[:40]:
        assert (doc_id in dropped) != (f"{doc_id}~copy" in dropped)
    assert not dropped & {doc_id for doc_id, _ in originals[40:]}
    texts = dict(originals + copies)
    for row in ledger.iter_rows(named=True):
        same = exact_key(texts[row["id"]]) == exact_key(texts[row["duplicate_of"]])
        assert row["reason"] == ("exact_duplicate" if same else "near_duplicate")
    assert "near_duplicate" in set(ledger.get_column("reason"))
    # The output part keeps the input's schema and row order.
    assert pq.read_schema(out[0]) == pq.read_schema(part)
    order = [doc_id for doc_id, _ in originals + copies]
    assert kept == [d for d in order if d in set(kept)]


def test_keep_rule_quality_then_longest_then_smallest_id(tmp_path: Path, docs: list[tuple[str, str]]) -> None:
    text = docs[2][1]
    records = [("b", text), ("a", text + "Extra words make this copy the longest one."), ("c", text.upper())]
    # With quality_score: the highest score survives.
    kept, ledger, _ = run(tmp_path / "q", [write_part(tmp_path / "q.parquet", records, quality=[0.9, 0.1, None])])
    assert kept == ["b"]
    assert set(ledger.get_column("duplicate_of")) == {"b"}
    # Without the column: the longest text.
    kept, _, _ = run(tmp_path / "l", [write_part(tmp_path / "l.parquet", records)])
    assert kept == ["a"]
    # Equal length: the smallest id; and keep rules follow the config's order.
    kept, _, _ = run(
        tmp_path / "s", [write_part(tmp_path / "s.parquet", [("b", text), ("c", text.upper()), ("a", text.lower())])]
    )
    assert kept == ["a"]
    kept, _, _ = run(
        tmp_path / "o",
        [write_part(tmp_path / "o.parquet", records, quality=[0.9, 0.1, None])],
        "dedup.keep=[smallest_id]",
    )
    assert kept == ["a"]


def test_reason_is_exact_only_when_the_survivor_has_the_same_text(tmp_path: Path, docs: list[tuple[str, str]]) -> None:
    text = docs[3][1]
    records = [("x1", text), ("x2", text.lower()), ("x3", text + " And one more sentence about the harbour.")]
    _, ledger, _ = run(tmp_path, [write_part(tmp_path / "in.parquet", records)])
    reasons = dict(zip(ledger.get_column("id"), ledger.get_column("reason")))
    assert reasons == {"x1": "near_duplicate", "x2": "near_duplicate"}
    assert set(ledger.get_column("duplicate_of")) == {"x3"}
    assert set(ledger.get_column("value")) == {"cluster of 3"}


def test_bad_documents_are_skipped_or_counted_never_fatal(tmp_path: Path, docs: list[tuple[str, str]]) -> None:
    text = docs[0][1]
    records = [
        ("empty", ""),
        ("blank", "   \n\t "),
        ("blank2", "\n"),
        ("punct", "!!! ... ---"),
        ("punct2", "?? ,, ::"),
        ("short", "Hello, world!"),
        ("short2", "hello world"),
        ("doc", text),
        ("doc", text + " (a second record with the same id)"),
        ("other", docs[1][1]),
    ]
    part = write_part(tmp_path / "in.parquet", records)
    result = stage.deduplicate(config(), [part], tmp_path / "work", tmp_path / "ledger", stage.Workers(1))
    kept = pl.read_parquet(result.parts[0])
    ledger = pl.read_parquet(tmp_path / "ledger" / "dedup-00000.parquet")
    # Blank texts are not judged (selection's job): kept and counted.
    assert result.counts["blank_skipped"] == 3
    assert {"empty", "blank", "blank2"} <= set(kept.get_column(S.ID))
    # Texts without words still dedup exactly; short texts are one shingle.
    by_id = dict(zip(ledger.get_column("id"), ledger.get_column("reason")))
    assert by_id.get("punct2") is None and "punct2" in set(kept.get_column(S.ID))  # different text, no words: kept
    assert by_id["short2"] == "near_duplicate"  # same words as "Hello, world!", which is longer
    # The second record of an id is dropped as such; duplicate_of says which id.
    dup = ledger.filter(pl.col("reason") == "duplicate_id")
    assert dup.height == 1 and dup.get_column("duplicate_of").to_list() == ["doc"]
    assert kept.height + ledger.height == len(records)


def test_empty_parts_are_carried_through(tmp_path: Path, docs: list[tuple[str, str]]) -> None:
    empty = write_part(tmp_path / "in" / "empty.parquet", [])
    kept, ledger, out = run(tmp_path / "only", [empty])
    assert kept == [] and len(out) == 1 and pq.read_schema(out[0]) == pq.read_schema(empty)
    full = write_part(tmp_path / "in" / "full.parquet", docs[:3] + docs[:1])
    kept, ledger, out = run(tmp_path / "mixed", [empty, full, empty])
    assert len(out) == 3 and len(kept) == 3 and ledger.height == 1
    assert (tmp_path / "mixed" / "ledger" / "dedup-00001.parquet").is_file()


def test_same_input_same_result_twice(tmp_path: Path, docs: list[tuple[str, str]]) -> None:
    rng = random.Random(2)
    records = docs[:60] + [(f"{i}~", edit(t, 0.02, rng)) for i, t in docs[:30]] + [(f"{i}=", t) for i, t in docs[30:40]]
    rng.shuffle(records)
    part = write_part(tmp_path / "in.parquet", records)
    first = run(tmp_path / "one", [part])
    second = run(tmp_path / "two", [part])
    assert first[0] == second[0]
    assert first[1].sort("id").equals(second[1].sort("id"))


def test_disabled_dedup_keeps_everything(tmp_path: Path, docs: list[tuple[str, str]]) -> None:
    part = write_part(tmp_path / "in.parquet", docs[:5] + docs[:5])
    kept, ledger, _ = run(tmp_path, [part], "dedup.enabled=false")
    assert len(kept) == 10 and ledger.height == 0


def test_verify_threshold_keeps_candidates_below_it(tmp_path: Path, docs: list[tuple[str, str]]) -> None:
    rng = random.Random(4)
    pairs = []
    for doc_id, text in docs[:60]:
        copy = edit(text, 0.04, rng)
        pairs.append((doc_id, text, copy, true_jaccard(text, copy)))
    records = [(d, t) for d, t, _, _ in pairs] + [(f"{d}~", c) for d, _, c, _ in pairs]
    part = write_part(tmp_path / "in.parquet", records)
    _, loose, _ = run(tmp_path / "loose", [part])
    _, strict, _ = run(tmp_path / "strict", [part], "dedup.verify_threshold=0.9")
    assert strict.height < loose.height
    # What the strict run still drops is genuinely similar.
    similar = {d: j for d, _, _, j in pairs}
    for doc_id in strict.get_column("id"):
        assert similar[doc_id.rstrip("~")] > 0.75


@pytest.mark.slow
def test_one_and_two_workers_keep_the_same_documents(
    tmp_path: Path, docs: list[tuple[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(5)
    records = (
        list(docs)
        + [(f"{i}~", edit(t, 0.02, rng)) for i, t in docs[:50]]
        + [(f"{i}=", t.lower()) for i, t in docs[50:70]]
    )
    rng.shuffle(records)
    parts = [write_part(tmp_path / "in" / f"{k}.parquet", records[k::3], row_group=20) for k in range(3)]
    # Small units and no inline threshold, so two workers really split the work.
    monkeypatch.setattr(sigtable, "UNIT_ROWS", 40)
    monkeypatch.setattr(stage, "PARALLEL_MIN_ROWS", 0)
    assert len(sigtable.plan_units(parts)[0]) > 3
    one = run(tmp_path / "w1", parts)
    two = run_dedup(
        load_config(None, ["executor.workers=2"]), parts, tmp_path / "w2" / "work", tmp_path / "w2" / "ledger"
    )
    kept_two = pl.concat([pl.read_parquet(p) for p in two]).get_column(S.ID).to_list()
    ledger_two = pl.concat([pl.read_parquet(p) for p in sorted((tmp_path / "w2" / "ledger").glob("*.parquet"))])
    assert one[0] == kept_two
    assert one[1].sort("id").equals(ledger_two.sort("id"))
    assert one[1].height >= 60


def test_dedup_command_writes_the_usual_layout(tmp_path: Path, docs: list[tuple[str, str]]) -> None:
    (tmp_path / "in").mkdir()
    lines = [json.dumps({"id": d, "text": t, "quality_score": 0.5}) for d, t in docs[:20]]
    lines += [json.dumps({"id": f"{d}-again", "text": t, "quality_score": 0.9}) for d, t in docs[:5]]
    lines += ["{not json", json.dumps({"id": "blank", "text": "   "})]
    with gzip.open(tmp_path / "in" / "a.jsonl.gz", "wt") as f:
        f.write("\n".join(lines) + "\n")
    pq.write_table(
        pa.table(
            {
                "id": [f"{d}-pq" for d, _ in docs[5:10]] + ["fresh"],
                "text": [t.upper() for _, t in docs[5:10]] + [docs[30][1]],
            }
        ),
        tmp_path / "in" / "b.parquet",
    )
    manifest_path = dedup_command([str(tmp_path / "in")], tmp_path / "out", config())
    manifest = json.loads(manifest_path.read_text())
    counts = manifest["counts"]
    assert counts["ingested"] == 33
    assert counts["kept"] + counts["rejected"] == counts["ingested"]
    reasons = {(r["stage"], r["reason"]): r["documents"] for r in counts["by_reason"]}
    assert reasons[("dedup", "exact_duplicate")] == 10
    assert reasons[("ingest", "malformed_json")] == 1 and reasons[("ingest", "empty_text")] == 1
    data = pl.read_parquet(tmp_path / "out" / "data")
    assert data.height == counts["kept"] == 21
    # The copies with the higher quality_score survive, and the score is released with them.
    assert {f"{d}-again" for d, _ in docs[:5]} <= set(data.get_column("id"))
    assert "quality_score" in data.columns
    assert (tmp_path / "out" / "config.resolved.yaml").is_file()
    # Run again into the same folder: same result, no stale ledger rows.
    dedup_command([str(tmp_path / "in")], tmp_path / "out", config())
    assert json.loads(manifest_path.read_text())["counts"]["rejected"] == counts["rejected"]


def test_dedup_command_keeps_parts_numbered_from_zero(tmp_path: Path, docs: list[tuple[str, str]]) -> None:
    """Two part files with ids 0..9 and different texts: no document is lost to another file's
    id; the colliding ids are scoped to their file, a repeat within one file is duplicate_id."""
    from curate.core.input_files import source_tag

    folder = tmp_path / "in"
    folder.mkdir()
    parts = [folder / f"part-{p}.jsonl" for p in (0, 1)]
    for p, path in enumerate(parts):
        rows = [{"id": i, "text": docs[p * 10 + i][1]} for i in range(10)]
        if p == 1:
            rows.append({"id": 3, "text": docs[40][1]})  # id 3 again in the same file
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    manifest = json.loads(dedup_command([str(folder)], tmp_path / "out", config()).read_text())
    kept = pl.read_parquet(tmp_path / "out" / "data").get_column("id").to_list()
    ledger = pl.read_parquet(tmp_path / "out" / "rejected")
    assert sorted(kept) == sorted(f"{source_tag(str(path))}/{i}" for path in parts for i in range(10))
    assert ledger.select("id", "reason").rows() == [(f"{source_tag(str(parts[1]))}/3", "duplicate_id")]
    assert manifest["counts"]["ingested"] == 21

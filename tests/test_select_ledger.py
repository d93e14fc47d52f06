"""Selection and the rejection ledger: kept + rejected = ingested on mixed inputs, one ledger
row (id, stage, reason) per dropped document, and `curate annotate`, which drops nothing."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from curate.cli import main
from curate.config import load_config
from curate.core import schema as S
from curate.core.input_files import source_tag
from curate.core.ledger import ledger_files, reason_counts
from curate.select import rejection_exprs, run_select
from filters.registry import filter_stages

LEDGER_STAGES = {"ingest", "extract", "language", *filter_stages()}


@pytest.fixture(scope="module")
def mixed_inputs(tmp_path_factory, make_inputs, sample_warc: Path, texts, articles) -> tuple[list[Path], int]:
    """A WARC, a JSONL with good and broken lines, a Parquet with a null row; and how many
    records they hold, counted here independently of curate."""
    files = make_inputs(tmp_path_factory.mktemp("mixed") / "in")
    jsonl_records = [
        {"id": "good", "text": texts.GOOD},
        {"id": "french", "text": texts.FRENCH},
        "{not json",
        {"id": "int-text", "text": 3},
        {"id": "twin", "text": ["not", "a", "string"]},  # rejected; a valid "twin" follows
        {"id": "short", "text": texts.SHORT},
        {"id": "water", "text": texts.WATER},
        {"id": "twin", "text": texts.ROCKS},  # the valid one of two records with that id
        {"id": "water", "text": texts.CELLS},  # "water" again in the same file: duplicate_id
    ]
    jsonl = files.jsonl("a-web.jsonl.gz", jsonl_records)  # a-, b-: inputs are read in sorted order
    parquet = files.parquet(
        "b-table.parquet",
        {
            # "water" again, in another file: its own document, both keep their place.
            "id": ["null-text", "water", *(a["id"] for a in articles[:5])],
            "text": [None, texts.CELLS, *(a["text"] for a in articles[:5])],
        },
    )
    return [sample_warc, jsonl, parquet], 16 + len(jsonl_records) + 7


@pytest.fixture(scope="module")
def mixed_run(tmp_path_factory, mixed_inputs, config_file, run_curate):
    root = tmp_path_factory.mktemp("mixed-run")
    return run_curate(config_file(root / "recipe.yaml", name="mixed"), mixed_inputs[0], root / "out")


def test_kept_plus_rejected_is_ingested(mixed_run, mixed_inputs) -> None:
    _, records = mixed_inputs
    counts = mixed_run.manifest["counts"]
    assert counts["ingested"] == records
    assert counts["kept"] + counts["rejected"] == counts["ingested"]
    # The counts are those of the files on disk, not only of the manifest's arithmetic.
    assert mixed_run.kept().height == counts["kept"]
    assert mixed_run.ledger().height == counts["rejected"]
    assert mixed_run.annotations().height == records


def test_every_document_is_kept_or_in_the_ledger_exactly_once(mixed_run) -> None:
    """Each record (its file and line, row or byte offset) once, under its id as read, or
    scoped to its file where another file uses that id too (curate/core/ids.py)."""

    def where(frame: pl.DataFrame) -> Counter:
        return Counter(zip(frame["source"], frame["offset"]))

    annotated = mixed_run.annotations()
    kept, ledger = mixed_run.kept(), mixed_run.ledger()
    assert where(kept) + where(ledger) == where(annotated)
    colliding = set(annotated.group_by("id").agg(pl.col("source").n_unique().alias("n")).filter(pl.col("n") > 1)["id"])
    assert colliding == {"water"}
    expected = Counter(
        f"{source_tag(s)}/{i}" if i in colliding else i for i, s in zip(annotated["id"], annotated["source"])
    )
    assert Counter(kept["id"].to_list()) + Counter(ledger["id"].to_list()) == expected


def test_every_ledger_row_says_why(mixed_run) -> None:
    ledger = mixed_run.ledger()
    assert ledger.height > 0
    for column in ("id", "stage", "reason", "source"):
        assert ledger[column].null_count() == 0, column
        assert (ledger[column].str.len_chars() > 0).all(), column
    assert set(ledger["stage"]) <= LEDGER_STAGES
    for path in ledger_files(mixed_run.root / "rejected"):
        assert pq.read_schema(path).remove_metadata() == S.LEDGER_SCHEMA


def test_ledger_reasons_of_the_mixed_run(mixed_run) -> None:
    ledger = mixed_run.ledger()
    by_id = {r["id"]: (r["stage"], r["reason"]) for r in ledger.to_dicts()}
    assert by_id["french"] == ("language", "language_not_kept")
    assert by_id["int-text"] == ("ingest", "wrong_type")
    assert by_id["null-text"] == ("ingest", "missing_text")
    assert by_id["short"] == ("gopher_quality", "gopher_short_doc")
    malformed = ledger.filter(pl.col("reason") == "malformed_json").row(0, named=True)
    assert (malformed["stage"], malformed["offset"]) == ("ingest", 2)  # line 2 of the JSONL
    # Rejected web pages keep their URL and byte offset, so they can be found again.
    pages = ledger.filter(pl.col("source").str.ends_with(".warc.gz"))
    assert pages.height == 15  # all but the one English page of the sample
    assert pages["url"].null_count() == 0 and (pages["offset"] > 0).all()


def test_duplicate_id_within_a_file_keeps_the_first(mixed_run, texts) -> None:
    inputs = mixed_run.manifest["inputs"]
    assert inputs == sorted(inputs)
    jsonl = next(i for i in inputs if i.endswith("a-web.jsonl.gz"))
    (dup,) = mixed_run.ledger().filter(pl.col("reason") == "duplicate_id").to_dicts()
    assert (dup["id"], dup["stage"], dup["source"], dup["offset"]) == (f"{source_tag(jsonl)}/water", "ingest", jsonl, 8)
    kept = mixed_run.kept().filter(pl.col("id") == f"{source_tag(jsonl)}/water")
    assert kept["text"].to_list() == [texts.WATER]  # the first of the file's two


def test_same_id_in_two_files_keeps_both_scoped_to_their_file(mixed_run, texts) -> None:
    """ "water" in a-web.jsonl.gz and in b-table.parquet: two documents, each id scoped."""
    jsonl, parquet = (
        next(i for i in mixed_run.manifest["inputs"] if i.endswith(end))
        for end in ("a-web.jsonl.gz", "b-table.parquet")
    )
    kept = mixed_run.kept().filter(pl.col("id").str.ends_with("/water")).sort("id")
    assert dict(zip(kept["id"], kept["text"])) == {
        f"{source_tag(jsonl)}/water": texts.WATER,
        f"{source_tag(parquet)}/water": texts.CELLS,
    }
    assert not mixed_run.kept().filter(pl.col("id") == "water").height
    assert mixed_run.kept().filter(pl.col("id") == "good").height == 1  # an id no other file uses stays as it is


def test_rejected_record_does_not_shadow_a_valid_one(mixed_run, texts) -> None:
    kept = mixed_run.kept().filter(pl.col("id") == "twin")
    assert kept["text"].to_list() == [texts.ROCKS]
    rows = mixed_run.ledger().filter(pl.col("id") == "twin").to_dicts()
    assert [(r["stage"], r["reason"]) for r in rows] == [("ingest", "wrong_type")]


@pytest.mark.parametrize("scope", ["colliding", "always"])
def test_parts_numbered_from_zero_lose_no_document(
    tmp_path: Path, make_inputs, articles, config_file, run_curate, scope: str
) -> None:
    """Two part files with ids 0..9 each and different texts: twenty documents, none dropped
    as duplicate_id; the ids that collide (all of them here) are scoped to their file."""
    files = make_inputs(tmp_path / "in")
    parts = [
        files.jsonl(f"part-{p}.jsonl", [{"id": i, "text": articles[p * 10 + i]["text"]} for i in range(10)])
        for p in (0, 1)
    ]
    result = run_curate(
        config_file(tmp_path / "c.yaml", name="parts", input={"id_scope": scope}), parts, tmp_path / "out"
    )
    ledger = result.ledger()
    assert "duplicate_id" not in ledger["reason"].to_list()
    accounted = result.kept()["id"].to_list() + ledger["id"].to_list()
    expected = [f"{source_tag(str(part))}/{i}" for part in parts for i in range(10)]
    assert sorted(accounted) == sorted(expected)
    # Each document under the id of its own line (line i holds id i), not its namesake's.
    both = pl.concat([result.kept().select("id", "source", "offset"), ledger.select("id", "source", "offset")])
    assert all(i == f"{source_tag(s)}/{o}" for i, s, o in both.iter_rows())


def test_reason_counts_match_the_ledger(mixed_run) -> None:
    ledger = mixed_run.ledger()
    counted = reason_counts(mixed_run.root / "rejected")
    assert sum(r["documents"] for r in counted) == ledger.height
    expected = Counter(zip(ledger["stage"], ledger["reason"]))
    assert {(r["stage"], r["reason"]): r["documents"] for r in counted} == dict(expected)
    documents = [r["documents"] for r in counted]
    assert documents == sorted(documents, reverse=True)  # most frequent first
    assert counted == mixed_run.manifest["counts"]["by_reason"]


def test_select_is_pure_and_repeatable(mixed_run, tmp_path: Path) -> None:
    """Selecting twice from the same annotations writes the same rows."""
    cfg = load_config(mixed_run.root / "config.resolved.yaml")
    first = run_select(cfg, mixed_run.annotated_parts(), tmp_path / "a" / "kept", tmp_path / "a" / "ledger")
    second = run_select(cfg, mixed_run.annotated_parts(), tmp_path / "b" / "kept", tmp_path / "b" / "ledger")
    for a, b in zip(first[0] + first[1], second[0] + second[1]):
        assert pl.read_parquet(a).equals(pl.read_parquet(b))
    assert sum(pl.read_parquet(p).height for p in first[0]) == mixed_run.manifest["counts"]["kept"]


def test_first_failing_rule_wins() -> None:
    """Pure selection over a hand-made annotated frame: rule order is ingest, extract,
    language, then the heuristic stages in FineWeb's order."""
    cfg = load_config(None)
    frame = pl.DataFrame(
        {
            S.ANN_INGEST: [None, None, None, None, "too_large"],
            S.ANN_EXTRACT: [None, None, None, "no_main_content", None],
            S.ANN_DETAIL: [None, None, None, "d", "20000000 bytes"],
            S.LANG: ["en", "en", "de", "en", None],
            S.LANG_SCORE: [0.99, 0.99, 0.99, 0.99, None],
            **{
                S.filter_column(s): [None, "dup_line_frac" if s == "gopher_repetition" else "x", "y", None, None]
                for s in filter_stages()
            },
        },
        schema_overrides={S.LANG_SCORE: pl.Float32},
    )
    stage, reason, value = rejection_exprs(cfg)
    out = frame.select(stage, reason, value).rows()
    assert out == [
        (None, None, None),
        ("gopher_repetition", "dup_line_frac", None),
        ("language", "language_not_kept", "de"),
        ("extract", "no_main_content", "d"),
        ("ingest", "too_large", "20000000 bytes"),
    ]


# ------------------------------------------------------------------------ curate annotate


def test_annotate_only_writes_every_document(tmp_path: Path, mixed_inputs, capsys) -> None:
    files, records = mixed_inputs
    out = tmp_path / "annotated-out"
    code = main(["annotate", *map(str, files), "--output", str(out), "--set", "executor.workers=1"])
    assert code == 0
    target = out / "annotated"
    assert capsys.readouterr().out == f"annotated {records} documents from 3 file(s) into {target}\n"
    parts = sorted(target.glob("part-*.parquet"))
    assert [p.name for p in parts] == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    frame = pl.concat([pl.read_parquet(p) for p in parts])
    assert frame.height == records  # nothing dropped: bad records and French text included
    assert pq.read_schema(parts[0]).names == S.annotated_schema(filter_stages()).names
    assert {"french", "int-text", "null-text", "short"} <= set(frame["id"])
    assert frame.filter(pl.col(S.ANN_INGEST).is_not_null()).height == 4  # malformed, int text, list text, null text
    assert frame.filter(pl.col("id") == "french")["lang"][0] == "fr"
    # Annotate decides nothing: no shards, no ledger.
    assert not list((out / "data").glob("*.parquet")) and not list((out / "rejected").glob("*.parquet"))

"""A hostile input corpus, generated here, run through `curate run` in one go: truncated and
corrupt gzip and zstd, WARC records whose Content-Length is wrong, non-HTML payloads, invalid
UTF-8, NUL bytes, a 50 MB document, 100k nested divs, JSONL with wrong types, Parquet with a
wrong schema and empty files, mixed with valid records.

The run must complete; every bad record must be in the ledger under its reason with its
source file and offset (line, row or WARC byte offset; -1 for a whole file); every valid
record must be in the output, by id. Selection is switched off (every filter, language and
dedup), so that a valid record missing from the output can only mean ingest lost it."""

from __future__ import annotations

import gzip
import json
import random
import re
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pytest
import zstandard

from curate.cli import main

FIFTY_MB = 50_000_000
# Everything that could drop a valid record after ingest is off: the test is about reading.
KEEP_ALL = {
    "language": {"keep": [], "min_score": 0.0},
    "filters": {name: {"enabled": False} for name in ("gopher_repetition", "gopher_quality", "c4", "fineweb")},
    "dedup": {"enabled": False},
    "quality": {"enabled": False},
}


@dataclass
class Corpus:
    root: Path
    valid: set[str] = field(default_factory=set)  # ids that must come out
    # (file name, offset, reason) of every record that must be in the ledger
    rejects: set[tuple[str, int, str]] = field(default_factory=set)
    # (file name, lowest, highest offset, reason): a rejection whose offset is only known to lie
    # in a range (the record whose header was overwritten by its neighbour)
    rejects_in_range: list[tuple[str, int, int, str]] = field(default_factory=list)
    # ids that may be kept or rejected by extraction, never lost
    either: set[str] = field(default_factory=set)


def _lines(records: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def _page(text: str) -> str:
    paragraphs = "".join(f"<p>{p}</p>" for p in text.split("\n") if p.strip())
    return f"<html><head><title>t</title></head><body><article>{paragraphs}</article></body></html>"


def _valid_texts(articles: list[dict[str, str]], n: int) -> list[str]:
    """Distinct real article texts (long enough for trafilatura to find main content)."""
    picked = [a["text"] for a in articles if len(a["text"]) > 1500]
    assert len(picked) >= n
    return picked[:n]


def build_corpus(root: Path, make_inputs: Any, warc_index: Any, articles: list[dict[str, str]]) -> Corpus:
    files = make_inputs(root)
    corpus = Corpus(root)
    texts = iter(_valid_texts(articles, 40))

    def valid_records(prefix: str, n: int) -> list[dict[str, Any]]:
        records = [{"id": f"{prefix}-{i}", "text": next(texts)} for i in range(n)]
        corpus.valid.update(r["id"] for r in records)
        return records

    # -- gzip: an intact member of valid lines, then a member cut in half / garbled. Deflate
    # cannot resync inside a member, but reading resumes at the next member: the members
    # before and after the damage are kept.
    good = _lines(valid_records("gz-cut", 3))
    # The damaged member holds one long line, so nothing of it is recoverable: the damage is
    # one ledger row at line 3 (records decompressed before a cut would rightly be kept).
    noise = "".join(random.Random(9).choices(string.ascii_letters + " ", k=200_000))
    tail = gzip.compress(_lines([{"id": "lost", "text": noise}]), mtime=0)
    files.bytes("gz-cut.jsonl.gz", gzip.compress(good, mtime=0) + tail[: len(tail) // 2])
    corpus.rejects.add(("gz-cut.jsonl.gz", 3, "corrupt_compression"))
    records = valid_records("gz-bad", 3)
    before, after = _lines(records[:2]), _lines(records[2:])  # the garbled member between them
    garbled = bytearray(tail)
    garbled[10:-8] = b"\xff" * (len(garbled) - 18)  # keep the member's header, garble the deflate data
    files.bytes("gz-bad.jsonl.gz", gzip.compress(before, mtime=0) + bytes(garbled) + gzip.compress(after, mtime=0))
    corpus.rejects.add(("gz-bad.jsonl.gz", 2, "corrupt_compression"))

    # -- zstd: the same with frames: an intact frame, then a truncated / garbled one (and after
    # the garbled one, an intact frame again).
    zc = zstandard.ZstdCompressor()
    ztail = zc.compress(_lines([{"id": "zlost", "text": noise}]))
    files.bytes("zst-cut.jsonl.zst", zc.compress(_lines(valid_records("zst-cut", 3))) + ztail[: len(ztail) // 2])
    corpus.rejects.add(("zst-cut.jsonl.zst", 3, "corrupt_compression"))
    zgarbled = bytearray(ztail)
    zgarbled[4:12] = b"\xff" * 8  # the frame header descriptor: the frame cannot be decoded
    records = valid_records("zst-bad", 3)
    files.bytes(
        "zst-bad.jsonl.zst", zc.compress(_lines(records[:2])) + bytes(zgarbled) + zc.compress(_lines(records[2:]))
    )
    corpus.rejects.add(("zst-bad.jsonl.zst", 2, "corrupt_compression"))

    # -- JSONL with wrong types, invalid UTF-8, NUL bytes and a 50 MB line
    ok = valid_records("types", 3)
    lines: list[bytes] = [
        json.dumps(ok[0]).encode(),
        json.dumps({"id": "t-num", "text": 12.5}).encode(),  # 1
        json.dumps({"id": "t-list", "text": ["a", "b"]}).encode(),  # 2
        json.dumps({"id": "t-null", "text": None}).encode(),  # 3
        json.dumps({"id": "t-obj", "text": {"nested": "text"}}).encode(),  # 4
        json.dumps({"id": "t-bool", "text": True}).encode(),  # 5
        json.dumps({"id": {"an": "object"}, "text": ok[1]["text"]}).encode(),  # 6: id unusable -> its own
        b'{"id": "t-utf8", "text": "caf\xe9 \xff\xfe"}',  # 7: invalid UTF-8
        b'{"id": "t-rawnul", "text": "raw \x00 byte"}',  # 8: a raw NUL is not allowed in a JSON string
        json.dumps({"id": "t-nul", "text": ok[2]["text"][:200] + "\u0000" + ok[2]["text"][200:]}).encode(),  # 9
        json.dumps({"id": "t-big", "text": "z" * FIFTY_MB}).encode(),  # 10: 50 MB
        b"[1, 2, 3]",  # 11: JSON, not an object
        b"\xff\xd8\xff\xe0 binary junk \x00\x01\x02",  # 12
        json.dumps({"id": ["a", "list"], "text": ""}).encode(),  # 13: empty text
    ]
    files.bytes("types.jsonl", b"\n".join(lines) + b"\n")
    corpus.valid.discard(ok[1]["id"])
    corpus.valid.discard(ok[2]["id"])
    from curate.core.input_files import source_tag

    corpus.valid.update({f"{source_tag(str(root / 'types.jsonl'))}/6", "t-nul"})
    corpus.rejects |= {
        ("types.jsonl", 1, "wrong_type"),
        ("types.jsonl", 2, "wrong_type"),
        ("types.jsonl", 3, "missing_text"),
        ("types.jsonl", 4, "wrong_type"),
        ("types.jsonl", 5, "wrong_type"),
        ("types.jsonl", 7, "invalid_utf8"),
        ("types.jsonl", 8, "malformed_json"),
        ("types.jsonl", 10, "too_large"),
        ("types.jsonl", 11, "malformed_record"),
        ("types.jsonl", 12, "invalid_utf8"),
        ("types.jsonl", 13, "empty_text"),
    }

    # -- WARC: Content-Length too long (it swallows the next record's header), too short, and
    # non-HTML payloads; one record carries a 50 MB body.
    pages = [
        {
            "url": f"http://example.org/w{i}",
            "body": _page(next(texts)),
            "record_id": f"urn:uuid:00000000-0000-0000-0000-00000000000{i}",
        }
        for i in range(6)
    ]
    path = files.warc("lengths.warc", pages, warcinfo=False)
    index = warc_index(path)
    data = path.read_bytes()
    headers = [m.start() for m in re.finditer(rb"WARC/1\.0\r\n", data)]
    assert len(headers) == 6

    def shift_length(blob: bytes, record: int, delta: int) -> bytes:
        m = re.compile(rb"Content-Length: (\d+)").search(blob, headers[record])
        assert m is not None
        new = str(int(m.group(1)) + delta).encode()
        assert len(new) == len(m.group(1))  # same width: no offsets move
        return blob[: m.start(1)] + new + blob[m.end(1) :]

    data = shift_length(data, 1, +40)  # into record 2's header: record 2 is unreadable
    data = shift_length(data, 4, -40)  # record 4 ends early; its last 40 bytes are left over
    path.write_bytes(data)
    corpus.valid |= {pages[i]["record_id"] for i in (0, 3, 5)}
    corpus.rejects |= {
        ("lengths.warc", index[1]["offset"], "wrong_length"),
        ("lengths.warc", index[4]["offset"], "wrong_length"),
    }
    corpus.rejects_in_range.append(("lengths.warc", index[2]["offset"], index[3]["offset"] - 1, "corrupt_archive"))

    payload_pages = [
        {
            "url": "http://example.org/ok-1",
            "body": _page(next(texts)),
            "record_id": "urn:uuid:10000000-0000-0000-0000-000000000001",
        },
        {
            "url": "http://example.org/img.png",
            "body": b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4,
            "content_type": "image/png",
        },
        {"url": "http://example.org/doc.pdf", "body": b"%PDF-1.4 binary \x00\xff", "content_type": "application/pdf"},
        {"url": "http://example.org/blob", "body": bytes(range(256)) * 8, "content_type": "application/octet-stream"},
        {"url": "http://example.org/big", "body": "<html><body><p>" + "w" * FIFTY_MB + "</p></body></html>"},
        {
            "url": "http://example.org/bad-utf8",
            "body": _page(next(texts)).encode() + b"\xff\xfe\xfa",
            "record_id": "urn:uuid:10000000-0000-0000-0000-000000000006",
        },
        {
            "url": "http://example.org/nul",
            "body": _page(next(texts)).replace("</p>", "\x00</p>", 1),
            "record_id": "urn:uuid:10000000-0000-0000-0000-000000000007",
        },
        {
            "url": "http://example.org/ok-2",
            "body": _page(next(texts)),
            "record_id": "urn:uuid:10000000-0000-0000-0000-000000000008",
        },
    ]
    path = files.warc("payloads.warc.gz", payload_pages, warcinfo=False)
    index = warc_index(path)
    corpus.valid |= {payload_pages[i]["record_id"] for i in (0, 5, 6, 7)}
    corpus.rejects |= {
        ("payloads.warc.gz", index[i]["offset"], reason)
        for i, reason in (
            (1, "unsupported_content_type"),
            (2, "unsupported_content_type"),
            (3, "unsupported_content_type"),
            (4, "too_large"),
        )
    }

    # -- 100k nested divs: extraction must neither crash the run nor hang it; the page is kept
    # or quarantined with an extraction reason, and the page after it is read.
    nested = "<html><body>" + "<div>" * 100_000 + "<p>Deep inside.</p>" + "</div>" * 100_000 + "</body></html>"
    deep = [
        {
            "url": "http://example.org/deep",
            "body": nested,
            "record_id": "urn:uuid:20000000-0000-0000-0000-000000000001",
        },
        {
            "url": "http://example.org/after",
            "body": _page(next(texts)),
            "record_id": "urn:uuid:20000000-0000-0000-0000-000000000002",
        },
    ]
    files.warc("nested.warc.gz", deep, warcinfo=False)
    corpus.either.add(deep[0]["record_id"])
    corpus.valid.add(deep[1]["record_id"])

    # -- Parquet with a wrong schema, and null rows in a right one
    files.parquet("no-text.parquet", {"id": ["p1", "p2"], "body": ["text under another name", "more"]})
    files.parquet("int-text.parquet", {"id": ["p3", "p4"], "text": [1, 2]})
    rows = valid_records("pq", 2)
    files.parquet(
        "rows.parquet",
        pa.table({"id": [rows[0]["id"], "pq-null", rows[1]["id"]], "text": [rows[0]["text"], None, rows[1]["text"]]}),
    )
    corpus.rejects |= {
        ("no-text.parquet", -1, "wrong_schema"),
        ("int-text.parquet", -1, "wrong_schema"),
        ("rows.parquet", 1, "missing_text"),
    }

    # -- empty files of every kind
    for name, content in [
        ("empty.jsonl", b""),
        ("empty.jsonl.gz", gzip.compress(b"", mtime=0)),
        ("empty.jsonl.zst", zc.compress(b"")),
        ("empty.warc.gz", b""),
        ("blank.jsonl", b"\n \n\n"),
    ]:
        files.bytes(name, content)
        corpus.rejects.add((name, -1, "empty_file"))
    files.parquet("empty.parquet", pa.table({"id": pa.array([], pa.string()), "text": pa.array([], pa.string())}))
    corpus.rejects.add(("empty.parquet", -1, "empty_file"))
    files.bytes("zero-bytes.parquet", b"")
    corpus.rejects.add(("zero-bytes.parquet", -1, "corrupt_file"))

    # And plain valid files, so hostile ones sit among ordinary work.
    files.jsonl("valid.jsonl", valid_records("plain", 5))
    files.jsonl("valid.jsonl.zst", valid_records("plainz", 3))
    return corpus


@pytest.fixture(scope="module")
def hostile_run(
    tmp_path_factory: pytest.TempPathFactory, make_inputs, warc_records, articles, config_file, prefect_harness
) -> tuple[Corpus, Path, dict]:
    root = tmp_path_factory.mktemp("hostile")
    corpus = build_corpus(root / "in", make_inputs, warc_records, articles)
    config = config_file(root / "hostile.yaml", name="hostile", **KEEP_ALL)
    out = root / "out"
    code = main(["run", str(config), "--input", str(corpus.root), "--output", str(out), "--quiet"])
    assert code == 0
    return corpus, out, json.loads((out / "manifest.json").read_text())


def _ledger(out: Path) -> pl.DataFrame:
    from curate.core.ledger import read_ledger

    return read_ledger(out / "rejected")


@pytest.mark.slow
def test_every_bad_record_is_in_the_ledger_with_its_location(hostile_run) -> None:
    corpus, out, _ = hostile_run
    ledger = _ledger(out).with_columns(
        pl.col("source").map_elements(lambda s: Path(s).name, return_dtype=pl.String).alias("file")
    )
    rows = {
        (r["file"], r["offset"], r["reason"]) for r in ledger.filter(pl.col("stage") == "ingest").iter_rows(named=True)
    }
    ranged = rows - corpus.rejects
    assert corpus.rejects <= rows, f"missing from the ledger: {sorted(corpus.rejects - rows)}"
    # The only other ingest rows: the record whose header was swallowed, somewhere inside it.
    assert len(ranged) == len(corpus.rejects_in_range), sorted(ranged)
    for (name, low, high, reason), (got_name, offset, got_reason) in zip(corpus.rejects_in_range, sorted(ranged)):
        assert (got_name, got_reason) == (name, reason) and low <= offset <= high
    # Every ledger row says where the record came from, and what was wrong with it.
    assert ledger.filter(pl.col("source").is_null() | (pl.col("source") == "")).height == 0
    assert ledger.filter(pl.col("stage") == "ingest")["value"].is_not_null().all()


@pytest.mark.slow
def test_every_valid_record_is_in_the_output(hostile_run) -> None:
    corpus, out, manifest = hostile_run
    kept = pl.concat([pl.read_parquet(out / s["path"]) for s in manifest["shards"]])
    kept_ids = set(kept["id"].to_list())
    assert corpus.valid <= kept_ids, f"valid records lost: {sorted(corpus.valid - kept_ids)}"
    assert kept_ids - corpus.valid <= corpus.either, sorted(kept_ids - corpus.valid)
    assert kept["id"].is_unique().all()
    assert not kept["text"].str.contains("\x00", literal=True).any()
    # The deep page was kept or quarantined by extraction, never lost.
    ledger = _ledger(out)
    for doc_id in corpus.either:
        if doc_id not in kept_ids:
            (row,) = ledger.filter(pl.col("id") == doc_id).iter_rows(named=True)
            assert row["stage"] == "extract", row


@pytest.mark.slow
def test_hostile_run_accounts_for_every_record(hostile_run) -> None:
    _, out, manifest = hostile_run
    counts = manifest["counts"]
    assert counts["kept"] + counts["rejected"] == counts["ingested"]
    assert counts["rejected"] == _ledger(out).height
    assert counts["kept"] == manifest["totals"]["rows"]
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]

"""Bad input: each broken record is skipped and counted under its own reason, the run goes
on, and nothing valid is lost. Bad *setup* (missing input, unwritable output) stops the run
before any work with a message naming the path."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import pytest

from curate.cli import main
from curate.core.errors import InputError
from curate.core.input_files import resolve_inputs, source_tag
from curate.core.layout import prepare_output
from curate.core.schema import META_OFFSET, META_REJECT, META_URL

BIG = 20_000_000  # a 20 MB document: four times input.max_record_bytes


def rejections(docs, reason) -> list[tuple[str, int]]:
    return [(reason(d), d.metadata[META_OFFSET]) for d in docs if reason(d)]


def good(docs, reason) -> list:
    return [d for d in docs if reason(d) is None]


# ---------------------------------------------------------------------------------- WARC


@pytest.fixture(scope="module")
def sample_index(sample_warc: Path, warc_records) -> list[dict]:
    return warc_records(sample_warc)


@pytest.mark.parametrize("which", [0, 7, 15])  # first, middle and last response
def test_corrupt_gzip_member_mid_warc_resyncs(
    tmp_path: Path, sample_warc: Path, sample_index, which: int, read, reason
) -> None:
    """The real Common Crawl file with one gzip member overwritten in its middle: that record
    is lost and counted, every record after it is still read, at its true offset."""
    responses = [r for r in sample_index if r["type"] == "response"]
    victim = responses[which]
    data = bytearray(sample_warc.read_bytes())
    middle = victim["offset"] + victim["length"] // 2
    data[middle : middle + 64] = bytes(64)
    broken = tmp_path / "broken.warc.gz"
    broken.write_bytes(bytes(data))

    docs = read(broken)
    survivors = [r for r in responses if r is not victim]
    assert [(d.id, d.metadata[META_OFFSET], d.metadata[META_URL]) for d in good(docs, reason)] == [
        (r["id"], r["offset"], r["url"]) for r in survivors
    ]
    assert rejections(docs, reason) == [("corrupt_archive", victim["offset"])]
    (bad,) = [d for d in docs if reason(d)]
    assert bad.id == f"{source_tag(str(broken))}/{victim['offset']}"


def test_two_corrupt_members_each_counted_once(inputs, read, reason) -> None:
    pages = [dict(url=f"http://example.org/{i}", body=f"<html><body><p>Page {i}.</p></body></html>") for i in range(6)]
    path = inputs.warc("pages.warc.gz", pages, warcinfo=False)
    clean = read(path)
    offsets = [d.metadata[META_OFFSET] for d in clean]
    data = bytearray(path.read_bytes())
    for k in (1, 4):  # garble members 1 and 4, all but their gzip header and trailer
        start, end = offsets[k] + 12, offsets[k + 1] - 4
        data[start:end] = b"U" * (end - start)
    path.write_bytes(bytes(data))
    docs = read(path)
    assert rejections(docs, reason) == [("corrupt_archive", offsets[1]), ("corrupt_archive", offsets[4])]
    assert [d.id for d in good(docs, reason)] == [clean[i].id for i in (0, 2, 3, 5)]
    assert [d.metadata[META_OFFSET] for d in good(docs, reason)] == [offsets[i] for i in (0, 2, 3, 5)]


def test_truncated_warc_gz(tmp_path: Path, sample_warc: Path, sample_index, read, reason) -> None:
    """The file ends inside the last response: the 15 before it are read, the cut one counted."""
    last = [r for r in sample_index if r["type"] == "response"][-1]
    cut = tmp_path / "cut.warc.gz"
    cut.write_bytes(sample_warc.read_bytes()[: last["offset"] + last["length"] // 3])
    docs = read(cut)
    assert len(good(docs, reason)) == 15
    assert last["id"] not in [d.id for d in good(docs, reason)]
    assert rejections(docs, reason) == [("truncated_record", last["offset"])]


def test_truncated_plain_warc_keeps_the_record_id(inputs, read, reason) -> None:
    pages = [
        dict(url=f"http://example.org/{i}", body="<html><body><p>" + "words " * 50 + "</p></body></html>")
        for i in range(3)
    ]
    path = inputs.warc("plain.warc", pages, warcinfo=False)
    full = read(path)
    path.write_bytes(path.read_bytes()[:-120])  # cut inside the last page's HTML
    docs = read(path)
    assert [d.id for d in good(docs, reason)] == [d.id for d in full[:2]]
    (bad,) = [d for d in docs if reason(d)]
    assert (reason(bad), bad.id, bad.metadata[META_URL]) == ("truncated_record", full[2].id, "http://example.org/2")
    assert bad.metadata[META_REJECT][1].startswith("the record ends ")


def test_warc_too_large_record(inputs, read, reason) -> None:
    path = inputs.warc(
        "big.warc.gz",
        [
            dict(url="http://example.org/small", body="<html><body><p>Small page.</p></body></html>"),
            dict(url="http://example.org/huge", body="<html><body><p>" + "x" * BIG + "</p></body></html>"),
            dict(url="http://example.org/after", body="<html><body><p>After the big one.</p></body></html>"),
        ],
    )
    docs = read(path)
    assert [(d.metadata[META_URL], reason(d)) for d in docs] == [
        ("http://example.org/small", None),
        ("http://example.org/huge", "too_large"),
        ("http://example.org/after", None),
    ]
    assert docs[1].text == ""  # the 20 MB never travel down the pipeline


def test_nul_bytes_removed_from_warc(inputs, read) -> None:
    path = inputs.warc(
        "nul.warc.gz",
        [
            dict(url="http://example.org/html", body="<html><body><p>Null\x00 inside.</p></body></html>"),
            dict(
                url="http://example.org/wet",
                body="Text\x00 with\x00 NULs.",
                type="conversion",
                content_type="text/plain",
            ),
        ],
    )
    docs = read(path)
    assert docs[0].text == "<html><body><p>Null inside.</p></body></html>"
    assert docs[1].text == "Text with NULs."


# --------------------------------------------------------------------------------- JSONL


def test_bad_jsonl_lines_each_have_their_reason(inputs, read, reason) -> None:
    path = inputs.jsonl(
        "mixed.jsonl",
        [
            {"id": "ok-1", "text": "A valid line."},
            b'{"id": "latin1", "text": "caf\xe9"}',  # not UTF-8
            '{"id": "cut", "text": "no closing',  # malformed JSON
            '["a", "list"]',  # JSON, but not an object
            {"id": "int-text", "text": 42},
            {"id": "list-text", "text": ["a", "b"]},
            {"id": "null-text", "text": None},
            {"id": "no-text", "body": "wrong key"},
            {"id": "blank-text", "text": "  \n "},
            {"id": "ok-2", "text": "Another valid line."},
        ],
    )
    docs = read(path)
    tag = source_tag(str(path))
    assert [(d.id, reason(d)) for d in docs] == [
        ("ok-1", None),
        (f"{tag}/1", "invalid_utf8"),
        (f"{tag}/2", "malformed_json"),
        (f"{tag}/3", "malformed_record"),
        ("int-text", "wrong_type"),
        ("list-text", "wrong_type"),
        ("null-text", "missing_text"),
        ("no-text", "missing_text"),
        ("blank-text", "empty_text"),
        ("ok-2", None),
    ]
    details = {d.id: d.metadata[META_REJECT][1] for d in docs if reason(d)}
    assert details["int-text"] == "'text' is int, expected a string"
    assert details["list-text"] == "'text' is list, expected a string"
    assert details["null-text"] == "'text' is null"
    assert details["no-text"] == "no 'text' field; keys: ['body']"
    assert [d.metadata[META_OFFSET] for d in docs] == list(range(10))


def test_jsonl_wrong_id_and_url_types_fall_back(inputs, read, reason) -> None:
    path = inputs.jsonl("types.jsonl", [{"id": ["x"], "text": "Text.", "url": 5}, {"id": 12, "text": "Int id."}])
    docs = read(path)
    assert [reason(d) for d in docs] == [None, None]
    assert docs[0].id == f"{source_tag(str(path))}/0"
    assert docs[0].metadata[META_URL] is None
    assert docs[1].id == "12"


def test_jsonl_too_large_line(inputs, read, reason) -> None:
    path = inputs.jsonl(
        "big.jsonl", [{"id": "a", "text": "Before."}, {"id": "big", "text": "y" * BIG}, {"id": "b", "text": "After."}]
    )
    docs = read(path)
    assert [(d.metadata[META_OFFSET], reason(d)) for d in docs] == [(0, None), (1, "too_large"), (2, None)]
    line_bytes = len(json.dumps({"id": "big", "text": "y" * BIG})) + 1  # with its newline
    assert docs[1].metadata[META_REJECT][1] == f"{line_bytes} bytes > input.max_record_bytes=5000000"
    assert [d.text for d in good(docs, reason)] == ["Before.", "After."]


def test_nul_bytes_removed_from_jsonl(inputs, read, reason) -> None:
    # JSON carries NUL as the escape \u0000 (a raw NUL byte is not valid JSON text).
    (doc,) = read(inputs.jsonl("nul.jsonl", [{"id": "n", "text": "a\u0000b\u0000c"}]))
    assert (doc.text, reason(doc)) == ("abc", None)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("empty.jsonl", b""),
        ("empty.jsonl.gz", gzip.compress(b"")),
        ("blank.jsonl", b"\n\n  \n"),
        ("empty.warc.gz", b""),
        ("empty.warc", b""),
    ],
)
def test_empty_file(inputs, read, reason, name: str, content: bytes) -> None:
    path = inputs.bytes(name, content)
    (doc,) = read(path)
    assert (reason(doc), doc.id, doc.metadata[META_OFFSET]) == ("empty_file", f"{source_tag(str(path))}/file", -1)


def test_empty_parquet(inputs, read, reason) -> None:
    import pyarrow as pa

    (doc,) = read(inputs.parquet("none.parquet", pa.table({"text": pa.array([], pa.string())})))
    assert reason(doc) == "empty_file"


def test_truncated_jsonl_gz_keeps_what_was_read(inputs, read, reason) -> None:
    lines = [json.dumps({"id": f"d{i}", "text": f"Line {i} " + "lorem " * (i % 7)}) for i in range(5000)]
    data = gzip.compress("\n".join(lines).encode() + b"\n", mtime=0)
    path = inputs.bytes("cut.jsonl.gz", data[: len(data) * 2 // 3])
    docs = read(path)
    kept = good(docs, reason)
    assert len(kept) > 1000  # everything decompressed before the cut is kept ...
    assert [d.id for d in kept] == [f"d{i}" for i in range(len(kept))]
    # ... and the cut itself is one row (a partial last line may be malformed JSON first).
    reasons = [reason(d) for d in docs if reason(d)]
    assert reasons[-1] == "corrupt_compression"
    assert set(reasons) <= {"corrupt_compression", "malformed_json"} and len(reasons) <= 2


def _member_lines(prefix: str, n: int) -> bytes:
    rng = random.Random(prefix)  # varied words: deflate then uses Huffman blocks, as on real text
    return b"".join(
        json.dumps({"id": f"{prefix}{i}", "text": " ".join(rng.choice(WORDS) for _ in range(60))}).encode() + b"\n"
        for i in range(n)
    )


WORDS = "the of and to in is was for on that with as by at from his an were are which this be".split()


def test_multi_member_jsonl_gz_resumes_at_the_next_member(inputs, read, reason) -> None:
    """Concatenated gzip files (crawl exports): a member garbled in the middle costs only that
    member, one ledger row at the line where it starts; a cut last member is one more row."""
    a, b, c, d = (gzip.compress(_member_lines(p, n), mtime=0) for p, n in (("a", 3), ("b", 3), ("c", 3), ("d", 1)))
    garbled = bytearray(b)
    garbled[12:-8] = random.Random(3).randbytes(len(b) - 20)  # header and trailer intact
    path = inputs.bytes("export.jsonl.gz", a + bytes(garbled) + c + d[: len(d) // 2])
    docs = read(path)
    assert [(d.id, d.metadata[META_OFFSET]) for d in good(docs, reason)] == [
        ("a0", 0),
        ("a1", 1),
        ("a2", 2),
        ("c0", 4),
        ("c1", 5),
        ("c2", 6),
    ]
    assert rejections(docs, reason) == [("corrupt_compression", 3), ("corrupt_compression", 7)]
    assert [d.metadata[META_REJECT][1] for d in docs if reason(d)] == [
        f"gzip member at byte {len(a)}: Error -3 while decompressing data: invalid code lengths set; its lines from "
        "line 3 on are lost "
        f"(how many cannot be known); reading resumed at the next gzip member, byte {len(a) + len(b)}",
        f"gzip member at byte {len(a) + len(b) + len(c)}: the file ends inside it (truncated); its lines from line 7 "
        "on are lost "
        "(how many cannot be known); no later gzip member found, the rest of the file is skipped",
    ]
    # The same lines from .json.gz and .ndjson.gz, and a member whose magic bytes are hit.
    no_magic = bytearray(b)
    no_magic[1] = 0x00
    docs = read(inputs.bytes("export.ndjson.gz", a + bytes(no_magic) + c))
    assert [d.id for d in good(docs, reason)] == ["a0", "a1", "a2", "c0", "c1", "c2"]
    assert [d.metadata[META_REJECT][1] for d in docs if reason(d)] == [
        f"gzip member at byte {len(a)}: Error -3 while decompressing data: incorrect header check; its lines from "
        "line 3 on are lost "
        f"(how many cannot be known); reading resumed at the next gzip member, byte {len(a) + len(b)}",
    ]


def test_gzip_member_failing_its_crc_keeps_the_lines_read(inputs, read, reason) -> None:
    """A flipped byte that still inflates is caught only by the CRC after the member's data:
    the lines read before are kept (flagged in the row), and reading goes on."""
    a, b = gzip.compress(_member_lines("a", 2), mtime=0), gzip.compress(_member_lines("b", 2), mtime=0)
    bad_crc = bytearray(a)
    bad_crc[-8] ^= 0xFF
    docs = read(inputs.bytes("crc.json.gz", bytes(bad_crc) + b))
    assert [(d.id, d.metadata[META_OFFSET]) for d in docs] == [
        ("a0", 0),
        ("a1", 1),
        (f"{source_tag(str(inputs.root / 'crc.json.gz'))}/2", 2),
        ("b0", 3),
        ("b1", 4),
    ]
    assert docs[2].metadata[META_REJECT] == (
        "corrupt_compression",
        "gzip member at byte 0: Error -3 while decompressing data: incorrect data check; found by the check at its "
        "end: lines read "
        f"from it before are kept and may hold altered bytes; reading resumed at the next gzip member, byte {len(a)}",
    )


def test_multi_frame_jsonl_zst_resumes_at_the_next_frame(inputs, read, reason) -> None:
    import zstandard

    zc = zstandard.ZstdCompressor()
    a, b, c = (zc.compress(_member_lines(p, 2)) for p in "abc")
    broken = bytearray(b)
    broken[4:8] = b"\xff" * 4  # the frame header: the frame cannot be decoded
    docs = read(inputs.bytes("frames.jsonl.zst", a + bytes(broken) + c + b[: len(b) // 2]))
    assert [(d.id, d.metadata[META_OFFSET]) for d in good(docs, reason)] == [("a0", 0), ("a1", 1), ("c0", 3), ("c1", 4)]
    assert [(reason(d), d.metadata[META_OFFSET], d.metadata[META_REJECT][1]) for d in docs if reason(d)] == [
        (
            "corrupt_compression",
            2,
            f"zstd frame at byte {len(a)}: zstd decompressor error: Unsupported frame parameter; its lines from "
            "line 2 on are lost (how many cannot be known); reading resumed at the next zstd frame, byte "
            f"{len(a) + len(b)}",
        ),
        (
            "corrupt_compression",
            5,
            f"zstd frame at byte {len(a) + len(b) + len(c)}: the file ends inside it (truncated); its lines "
            "from line 5 on are lost (how many cannot be known); no later zstd frame found, the rest of the file is "
            "skipped",
        ),
    ]


def test_zstd_bomb_is_too_large_in_bounded_memory(inputs, read, reason) -> None:
    """32 KB of zstd that inflates to one 1 GiB line: rejected as too_large, and never held:
    zstd takes no output limit, so the reader feeds it little input per call."""
    import tracemalloc

    import zstandard

    zc = zstandard.ZstdCompressor(level=19).compressobj()
    zeros = bytes(1 << 20)
    bomb = b"".join(zc.compress(zeros) for _ in range(1024)) + zc.flush()
    assert len(bomb) < 64 * 1024
    path = inputs.bytes("bomb.jsonl.zst", bomb)
    tracemalloc.start()
    try:
        (doc,) = read(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (reason(doc), doc.metadata[META_REJECT][1]) == (
        "too_large",
        f"{1 << 30} bytes > input.max_record_bytes=5000000",
    )
    assert peak < 128 * 1024 * 1024, peak  # before the fix one call returned the whole GiB


# ------------------------------------------------------------------------------- Parquet


def test_parquet_without_text_column(inputs, read, reason) -> None:
    path = inputs.parquet("notext.parquet", {"content": ["a", "b"], "id": ["1", "2"]})
    (doc,) = read(path)
    assert reason(doc) == "wrong_schema"
    assert doc.metadata[META_REJECT][1] == "no 'text' column; columns: ['content', 'id']. Fix: set input.text_key"
    # With the right key the same file reads.
    assert [d.text for d in read(path, text_key="content")] == ["a", "b"]


def test_parquet_text_column_of_wrong_type(inputs, read, reason) -> None:
    (doc,) = read(inputs.parquet("ints.parquet", {"text": [1, 2]}))
    assert (reason(doc), doc.metadata[META_REJECT][1]) == ("wrong_schema", "column 'text' is int64, expected string")


def test_not_a_parquet_file(inputs, read, reason) -> None:
    (doc,) = read(inputs.bytes("junk.parquet", b"PAR1 this is not parquet"))
    assert reason(doc) == "corrupt_file"


def test_parquet_null_big_and_nul_rows(inputs, read, reason) -> None:
    path = inputs.parquet("rows.parquet", {"id": ["a", "b", "c", "d"], "text": ["Fine.", None, "z" * BIG, "x\x00y"]})
    docs = read(path)
    assert [(d.id, reason(d)) for d in docs] == [("a", None), ("b", "missing_text"), ("c", "too_large"), ("d", None)]
    assert docs[3].text == "xy"


# ------------------------------------------------------------- setup errors: stop at start


def test_missing_input_path(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such.jsonl"
    with pytest.raises(InputError) as err:
        resolve_inputs([str(missing)])
    assert str(err.value) == (
        f"input path not found or empty: {missing}. Fix: check the path, or pass --input with an existing file, "
        "folder or glob"
    )


def test_missing_input_stops_curate_run(tmp_path: Path, inputs, config_file, capsys) -> None:
    config = config_file(tmp_path / "c.yaml")
    present = inputs.jsonl("ok.jsonl", [{"text": "x"}])
    missing = tmp_path / "missing.jsonl"
    out = tmp_path / "out"
    code = main(["run", str(config), "--input", str(present), "--input", str(missing), "--output", str(out), "--quiet"])
    assert code == 2
    assert capsys.readouterr().err == (
        f"error: input path not found or empty: {missing}. Fix: check the path, or pass --input with an existing "
        "file, folder or glob\n"
    )
    assert not out.exists()  # checked before anything was created


def test_empty_input_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError) as err:
        resolve_inputs([str(tmp_path / "empty")])
    assert str(err.value).startswith(f"input path not found or empty: {tmp_path / 'empty'}.")


def test_unwritable_output_folder(tmp_path: Path) -> None:
    # Tests run as root, where permission bits do not stop writes; a path under a regular
    # file cannot be created by anyone.
    blocker = tmp_path / "afile"
    blocker.write_text("I am a file")
    target = blocker / "out"
    with pytest.raises(InputError) as err:
        prepare_output(target)
    assert (
        str(err.value)
        == f"output folder {target} is not writable (Not a directory). Fix: pass --output with a folder you can write to"  # noqa: E501
    )


def test_output_path_is_a_file(tmp_path: Path) -> None:
    target = tmp_path / "out.parquet"
    target.write_text("not a folder")
    with pytest.raises(InputError) as err:
        prepare_output(target)
    assert (
        str(err.value)
        == f"output folder {target} is an existing file, not a folder. Fix: pass --output with a folder path"
    )
    assert target.read_text() == "not a folder"


def test_unwritable_output_stops_curate_run(tmp_path: Path, inputs, config_file, capsys) -> None:
    config = config_file(tmp_path / "c.yaml")
    source = inputs.jsonl("ok.jsonl", [{"text": "x"}])
    blocker = tmp_path / "afile"
    blocker.write_text("")
    code = main(["run", str(config), "--input", str(source), "--output", str(blocker / "out"), "--quiet"])
    assert code == 2
    assert capsys.readouterr().err == (
        f"error: output folder {blocker / 'out'} is not writable (Not a directory). Fix: pass --output with a folder "
        "you can write to\n"
    )
    assert blocker.read_text() == ""


def test_unwritable_output_stops_curate_annotate(tmp_path: Path, inputs, capsys) -> None:
    source = inputs.jsonl("ok.jsonl", [{"text": "x"}])
    (tmp_path / "afile").write_text("")
    code = main(["annotate", str(source), "--output", str(tmp_path / "afile" / "deeper" / "out")])
    assert code == 2
    assert capsys.readouterr().err.startswith(
        f"error: output folder {tmp_path / 'afile' / 'deeper' / 'out'} is not writable"
    )


# ------------------------------------------------------------ all of it in one real run


@pytest.fixture(scope="module")
def bad_run(tmp_path_factory, make_inputs, sample_warc: Path, warc_records, articles, config_file, run_curate, texts):
    """One flow run over a folder holding every kind of broken file next to good ones."""
    root = tmp_path_factory.mktemp("bad-run")
    files = make_inputs(root / "in")
    real = articles[:4]
    files.jsonl("good.jsonl", [{"id": "good", "text": texts.GOOD}] + [{"id": a["id"], "text": a["text"]} for a in real])
    files.jsonl(
        "mixed.jsonl.gz",
        [
            {"id": "m-good", "text": texts.CELLS},
            b"\xff\xfe not utf-8",
            "{broken json",
            {"id": "m-int", "text": 7},
            {"id": "m-big", "text": "w" * BIG},
            {"id": "m-nul", "text": texts.ROCKS.replace("tectonic plates", "tectonic\u0000 plates")},
        ],
    )
    files.bytes("empty.jsonl", b"")
    files.parquet("notext.parquet", {"body": ["no text column here"]})
    data = bytearray(sample_warc.read_bytes())
    responses = [r for r in warc_records(sample_warc) if r["type"] == "response"]
    victim = responses[3]  # the one English page of the sample: its loss must be counted
    data[victim["offset"] + 20 : victim["offset"] + 200] = b"\x00" * 180
    files.bytes("crawl.warc.gz", bytes(data))
    files.bytes("cut.warc.gz", sample_warc.read_bytes()[: responses[1]["offset"] + 500])
    config = config_file(root / "recipe.yaml", name="bad-inputs")
    result = run_curate(config, [files.root], root / "out")
    return result, victim, real


def test_bad_run_counts_each_reason(bad_run) -> None:
    result, victim, _ = bad_run
    ledger = result.ledger()
    ingest = ledger.filter(ledger["stage"] == "ingest")
    counts = {row["reason"]: row["len"] for row in ingest.group_by("reason").len().iter_rows(named=True)}
    assert counts == {
        "corrupt_archive": 1,
        "empty_file": 1,
        "invalid_utf8": 1,
        "malformed_json": 1,
        "too_large": 1,
        "truncated_record": 1,
        "wrong_schema": 1,
        "wrong_type": 1,
    }
    corrupt = ingest.filter(ingest["reason"] == "corrupt_archive").row(0, named=True)
    assert corrupt["offset"] == victim["offset"]
    assert corrupt["source"].endswith("crawl.warc.gz")
    # The by-reason table of the manifest says the same.
    by_reason = {(r["stage"], r["reason"]): r["documents"] for r in result.manifest["counts"]["by_reason"]}
    assert all(by_reason[("ingest", reason)] == n for reason, n in counts.items())


def test_bad_run_loses_nothing_valid(bad_run) -> None:
    result, _, real = bad_run
    kept = result.kept()
    kept_ids = set(kept["id"].to_list())
    assert {"good", "m-good", "m-nul"} <= kept_ids
    assert "\x00" not in kept.filter(kept["id"] == "m-nul")["text"][0]
    ledger = result.ledger()
    # Every valid record reached selection: none of them is in the ledger as an ingest loss.
    valid = {"good", "m-good", "m-nul", *(a["id"] for a in real)}
    lost_at_ingest = set(ledger.filter(ledger["stage"] == "ingest")["id"].to_list())
    assert not valid & lost_at_ingest
    assert valid <= kept_ids | set(ledger["id"].to_list())
    # The 15 intact pages of the corrupted WARC and the first page of the cut one all arrived.
    annotated = result.annotations()
    read_ok = annotated.filter(annotated["ann_ingest"].is_null())
    assert read_ok.filter(read_ok["source"].str.ends_with("crawl.warc.gz")).height == 15
    assert read_ok.filter(read_ok["source"].str.ends_with("cut.warc.gz")).height == 1


def test_bad_run_invariant(bad_run) -> None:
    result, _, _ = bad_run
    counts = result.manifest["counts"]
    assert counts["kept"] + counts["rejected"] == counts["ingested"]
    assert counts["kept"] == result.kept().height == result.manifest["totals"]["rows"]
    assert counts["rejected"] == result.ledger().height
    assert counts["ingested"] == result.annotations().height

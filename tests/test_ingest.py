"""Each reader (WARC, WET, JSONL plain/.gz/.zst, Parquet), the ways to name inputs (file,
folder, glob, fsspec URL), and what every document carries: id, source, offset."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import fsspec
import pytest
from warcio.archiveiterator import ArchiveIterator

from curate.core.errors import InputError
from curate.core.input_files import detect_format, resolve_inputs, source_tag
from curate.core.schema import META_CONTENT, META_DATE, META_OFFSET, META_SOURCE, META_URL

HTML = "<html><head><title>T</title></head><body><article><p>{}</p></article></body></html>"


# ---------------------------------------------------------------------------------- WARC


@pytest.fixture(scope="module")
def sample_docs(sample_warc: Path, read) -> list:
    return read(sample_warc)


def test_warc_sample_reads_the_16_html_responses(sample_docs, sample_warc: Path, warc_records, reason) -> None:
    # The reference, read independently with warcio: the response records only (requests
    # and metadata records describe documents, they are not documents).
    responses = [r for r in warc_records(sample_warc) if r["type"] == "response"]
    assert len(responses) == 16
    assert [reason(d) for d in sample_docs] == [None] * 16
    assert [d.id for d in sample_docs] == [r["id"] for r in responses]
    assert all(d.id.startswith("urn:uuid:") for d in sample_docs)
    assert [d.metadata[META_URL] for d in sample_docs] == [r["url"] for r in responses]
    assert all(d.metadata[META_URL].startswith("http") for d in sample_docs)
    assert all(d.metadata[META_CONTENT] == "html" for d in sample_docs)
    assert all(d.metadata[META_SOURCE] == str(sample_warc) for d in sample_docs)
    assert all(d.metadata[META_DATE].startswith("2020-08") for d in sample_docs)  # crawl CC-MAIN-2020-34


def test_warc_offsets_point_at_their_records(sample_docs, sample_warc: Path, warc_records) -> None:
    offsets = [d.metadata[META_OFFSET] for d in sample_docs]
    assert offsets == sorted(set(offsets))  # strictly increasing
    responses = {r["id"]: r["offset"] for r in warc_records(sample_warc) if r["type"] == "response"}
    assert offsets == [responses[d.id] for d in sample_docs]
    # And seeking there and reading one record gives that very document: offsets are usable.
    with open(sample_warc, "rb") as f:
        for doc in sample_docs[::5]:
            f.seek(doc.metadata[META_OFFSET])
            record = next(iter(ArchiveIterator(f)))
            assert record.rec_headers.get_header("WARC-Record-ID").strip("<>") == doc.id


def test_warc_text_is_the_decoded_page(sample_docs) -> None:
    # The reader keeps the HTML (extraction comes later) and decodes each page's charset: the
    # first page is GB-encoded Chinese, and must not come out as mojibake or replacement chars.
    first = sample_docs[0]
    assert first.text.lstrip().lower().startswith("<!doctype html") or "<html" in first.text[:500].lower()
    assert "\ufffd" not in first.text[:2000]
    assert any("\u4e00" <= ch <= "\u9fff" for ch in first.text)


def test_warc_ids_are_stable_across_reads(sample_docs, sample_warc: Path, read) -> None:
    again = read(sample_warc)
    assert [(d.id, d.metadata[META_OFFSET]) for d in again] == [(d.id, d.metadata[META_OFFSET]) for d in sample_docs]


def test_plain_warc_and_gzip_warc_read_the_same(inputs, read, reason) -> None:
    records = [
        dict(
            url=f"http://example.org/{i}",
            body=HTML.format(f"Page number {i}."),
            record_id=f"urn:uuid:{uuid.UUID(int=i)}",
        )
        for i in range(4)
    ]
    plain = read(inputs.warc("a.warc", records))
    packed = read(inputs.warc("a.warc.gz", records))
    assert [d.id for d in plain] == [d.id for d in packed] == [f"urn:uuid:{uuid.UUID(int=i)}" for i in range(4)]
    assert [d.text for d in plain] == [d.text for d in packed] == [HTML.format(f"Page number {i}.") for i in range(4)]
    assert [reason(d) for d in plain + packed] == [None] * 8
    assert all(b.metadata[META_OFFSET] > a.metadata[META_OFFSET] for a, b in zip(plain, plain[1:]))


def test_warc_skips_requests_and_metadata_and_rejects_non_html(inputs, read, reason) -> None:
    path = inputs.warc(
        "mixed.warc.gz",
        [
            dict(url="http://example.org/a", type="request"),
            dict(url="http://example.org/a", body=HTML.format("Kept page.")),
            dict(
                url="http://example.org/a",
                body="fetchTimeMs: 12\n",
                type="metadata",
                content_type="application/warc-fields",
            ),
            dict(url="http://example.org/img.png", body=b"\x89PNG\r\n\x1a\n" + bytes(64), content_type="image/png"),
            dict(url="http://example.org/missing", body="<html><body>Not found</body></html>", status="404 Not Found"),
            dict(url="http://example.org/notes.txt", body="Plain text notes.", content_type="text/plain"),
        ],
    )
    docs = read(path)
    assert [(d.metadata[META_URL], reason(d)) for d in docs] == [
        ("http://example.org/a", None),
        ("http://example.org/img.png", "unsupported_content_type"),
        ("http://example.org/missing", "http_status"),
        ("http://example.org/notes.txt", None),
    ]
    assert [d.metadata.get(META_CONTENT) for d in (docs[0], docs[3])] == ["html", "text"]


def test_wet_conversion_records_are_text(inputs, read, reason) -> None:
    texts = ["First extracted page.\nWith two lines.", "Zweite Seite, schon als Text."]
    path = inputs.warc(
        "crawl.warc.wet.gz",
        [
            dict(
                url=f"http://example.org/{i}",
                body=t,
                type="conversion",
                content_type="text/plain",
                record_id=f"urn:uuid:{uuid.UUID(int=i + 7)}",
            )
            for i, t in enumerate(texts)
        ],
    )
    assert detect_format(str(path)) == "warc"
    docs = read(path)
    assert [d.text for d in docs] == texts
    assert [d.id for d in docs] == [f"urn:uuid:{uuid.UUID(int=7)}", f"urn:uuid:{uuid.UUID(int=8)}"]
    assert [d.metadata[META_CONTENT] for d in docs] == ["text", "text"]  # no HTML extraction for WET
    assert [reason(d) for d in docs] == [None, None]


def test_warc_resource_records_use_their_content_type(inputs, read, reason) -> None:
    path = inputs.warc(
        "res.warc.gz",
        [
            dict(
                url="file:///notes.txt",
                body="Plain notes, stored as a resource.",
                type="resource",
                content_type="text/plain; charset=utf-8",
            ),
            dict(
                url="file:///page.html", body=HTML.format("A stored page."), type="resource", content_type="text/html"
            ),
            dict(
                url="file:///logo.png", body=b"\x89PNG\r\n\x1a\n" + bytes(32), type="resource", content_type="image/png"
            ),
        ],
    )
    docs = read(path)
    assert [(reason(d), d.metadata.get(META_CONTENT)) for d in docs] == [
        (None, "text"),
        (None, "html"),
        ("unsupported_content_type", None),
    ]
    assert docs[0].text == "Plain notes, stored as a resource."


def test_warc_decodes_the_declared_charset(inputs, read) -> None:
    text = "Ça coûte 5 € à Zürich."
    path = inputs.warc(
        "latin.warc.gz",
        [
            dict(
                url="http://example.org/",
                body=HTML.format(text).encode("cp1252"),
                content_type="text/html; charset=windows-1252",
            )
        ],
    )
    (doc,) = read(path)
    assert text in doc.text


def test_warc_decodes_the_meta_charset(inputs, read) -> None:
    """No charset in the HTTP header: the page's own <meta> decides, as in a browser (a
    detector alone guessed IBM865 for such Latin-1 pages and produced mojibake)."""
    text = "Grüße aus Zürich – ‘Käse’ für 5 €."
    html = f'<html><head><meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1"></head><body><p>{text}</p></body></html>'  # noqa: E501
    path = inputs.warc(
        "meta.warc.gz", [dict(url="http://example.ch/", body=html.encode("cp1252"), content_type="text/html")]
    )
    (doc,) = read(path)
    assert text in doc.text


def test_warc_gb2312_label_with_gbk_characters(inputs, read) -> None:
    """Pages labelled gb2312 use GBK characters (镕 is not in GB2312): decoded as GB18030."""
    text = "朱镕基在上海。"
    path = inputs.warc(
        "gb.warc.gz",
        [
            dict(
                url="http://example.cn/",
                body=HTML.format(text).encode("gb18030"),
                content_type="text/html; charset=gb2312",
            )
        ],
    )
    (doc,) = read(path)
    assert text in doc.text


def test_sample_latin1_pages_have_no_mojibake(sample_docs) -> None:
    swiss = [d for d in sample_docs if "live-radsport.ch" in d.metadata[META_URL]]
    assert len(swiss) == 2
    for doc in swiss:
        assert "ü" in doc.text or "ö" in doc.text
        assert not set("ⁿ▄±÷") & set(doc.text)  # what IBM865 makes of ü, Ü, ñ, ö


# --------------------------------------------------------------------------------- JSONL

RECORDS = [
    {
        "id": "doc-1",
        "text": "First document.",
        "url": "http://example.org/1",
        "date": "2024-01-02",
        "lang_hint": "en",
        "n": 3,
    },
    {"id": "doc-2", "text": "Second document, with a unicode quote \u201cok\u201d."},
    {"text": "A record without an id."},
]


@pytest.mark.parametrize("name", ["docs.jsonl", "docs.jsonl.gz", "docs.jsonl.zst", "docs.json", "docs.ndjson"])
def test_jsonl_in_every_compression(inputs, read, reason, name: str) -> None:
    path = inputs.jsonl(name, RECORDS)
    docs = read(path)
    assert [reason(d) for d in docs] == [None, None, None]
    assert [d.text for d in docs] == [r["text"] for r in RECORDS]
    assert [d.metadata[META_OFFSET] for d in docs] == [0, 1, 2]  # line numbers
    assert [d.id for d in docs[:2]] == ["doc-1", "doc-2"]
    # No id in the record: file tag + line, so it is unique and the same on every read.
    assert docs[2].id == f"{source_tag(str(path))}/2"
    first = docs[0].metadata
    assert (first[META_URL], first[META_DATE], first[META_SOURCE]) == ("http://example.org/1", "2024-01-02", str(path))
    assert first["extra"] == {"lang_hint": "en", "n": 3}  # the rest of the record travels along


def test_large_zstd_file_with_several_frames(inputs, read) -> None:
    """A .zst made of several frames (parallel compressors write these) is read to the end."""
    import zstandard

    lines = [json.dumps({"id": f"d{i}", "text": f"Document number {i}."}).encode() + b"\n" for i in range(3000)]
    compressor = zstandard.ZstdCompressor()
    data = compressor.compress(b"".join(lines[:1000])) + compressor.compress(b"".join(lines[1000:]))
    docs = read(inputs.bytes("frames.jsonl.zst", data))
    assert [d.id for d in docs] == [f"d{i}" for i in range(3000)]


def test_jsonl_blank_lines_are_skipped_but_counted(inputs, read) -> None:
    path = inputs.jsonl("gaps.jsonl", [RECORDS[0], "", "   ", RECORDS[1]])
    docs = read(path)
    assert [(d.id, d.metadata[META_OFFSET]) for d in docs] == [("doc-1", 0), ("doc-2", 3)]


def test_jsonl_custom_keys(inputs, read) -> None:
    path = inputs.jsonl("custom.jsonl", [{"uid": 17, "content": "Body text.", "text": "not this"}])
    (doc,) = read(path, text_key="content", id_key="uid")
    assert (doc.id, doc.text) == ("17", "Body text.")
    assert doc.metadata["extra"] == {"text": "not this"}


def test_ids_without_id_field_are_stable_and_distinct_per_file(tmp_path: Path, make_inputs, read) -> None:
    a = make_inputs(tmp_path / "a").jsonl("part-0.jsonl", [{"text": "one"}, {"text": "two"}])
    b = make_inputs(tmp_path / "b").jsonl("part-0.jsonl", [{"text": "one"}, {"text": "two"}])
    ids_a = [d.id for d in read(a)]
    assert ids_a == [d.id for d in read(a)]  # same file, same ids
    ids_b = [d.id for d in read(b)]
    assert ids_a[0].startswith("part-0-") and ids_b[0].startswith("part-0-")
    assert not set(ids_a) & set(ids_b)  # same name in another folder: other ids


# ------------------------------------------------------------------------------- Parquet


def test_parquet_rows(inputs, read, reason) -> None:
    import pyarrow as pa

    n = 2500  # more than one read batch (1024 rows), so the row counter must carry over
    table = pa.table(
        {
            "id": [f"p{i}" for i in range(n)],
            "text": [f"Row {i} of the table." for i in range(n)],
            "url": [f"http://example.org/{i}" for i in range(n)],
            "score": [i / n for i in range(n)],
        }
    )
    docs = read(inputs.parquet("t.parquet", table))
    assert len(docs) == n
    assert all(reason(d) is None for d in docs)
    assert [d.metadata[META_OFFSET] for d in docs] == list(range(n))
    assert [d.id for d in docs[1023:1026]] == ["p1023", "p1024", "p1025"]
    assert docs[2000].text == "Row 2000 of the table."
    assert docs[2000].metadata[META_URL] == "http://example.org/2000"
    assert docs[2000].metadata["extra"] == {"score": 0.8}


def test_parquet_large_string_column(inputs, read) -> None:
    import pyarrow as pa

    table = pa.table({"text": pa.array(["large string text"], type=pa.large_string())})
    (doc,) = read(inputs.parquet("large.parquet", table))
    assert doc.text == "large string text"


# --------------------------------------------------------------------- naming the inputs


def test_folder_input_finds_known_formats_recursively(inputs) -> None:
    inputs.jsonl("b.jsonl", RECORDS)
    inputs.jsonl("sub/a.jsonl.gz", RECORDS)
    inputs.parquet("sub/deeper/c.parquet", {"text": ["x"]})
    inputs.bytes("notes.txt", b"not an input")
    inputs.jsonl(".hidden.jsonl", RECORDS)
    inputs.jsonl("_SUCCESS.jsonl", RECORDS)
    root = inputs.root
    assert resolve_inputs([str(root)]) == sorted(
        [str(root / "b.jsonl"), str(root / "sub/a.jsonl.gz"), str(root / "sub/deeper/c.parquet")]
    )


def test_glob_input(inputs) -> None:
    for name in ("x1.jsonl", "x2.jsonl", "y1.jsonl"):
        inputs.jsonl(name, RECORDS)
    root = inputs.root
    assert resolve_inputs([str(root / "x*.jsonl")]) == [str(root / "x1.jsonl"), str(root / "x2.jsonl")]


def test_several_inputs_are_sorted_and_deduplicated(inputs) -> None:
    b = inputs.jsonl("b.jsonl", RECORDS)
    a = inputs.jsonl("a.jsonl", RECORDS)
    assert resolve_inputs([str(b), str(inputs.root), str(a)]) == [str(a), str(b)]


def test_unknown_extension_needs_input_format(inputs, read) -> None:
    path = inputs.jsonl("dump.txt", RECORDS)
    with pytest.raises(InputError) as err:
        resolve_inputs([str(path)])
    assert str(err.value) == (
        f"cannot tell the format of {path}. Fix: name files .warc(.gz), .wet(.gz), .jsonl(.gz/.zst) or .parquet, or "
        "set input.format"
    )
    assert resolve_inputs([str(path)], "jsonl") == [str(path)]
    assert [d.id for d in read(path, fmt="jsonl")] == ["doc-1", "doc-2", f"{source_tag(str(path))}/2"]


def test_memory_url_input(read) -> None:
    """An fsspec URL: the files live in fsspec's in-memory filesystem, not on disk."""
    fs = fsspec.filesystem("memory")
    folder = f"/curate-test-{uuid.uuid4().hex}"
    fs.pipe(f"{folder}/one.jsonl", b'{"id": "m1", "text": "from memory"}\n')
    fs.pipe(f"{folder}/sub/two.jsonl", b'{"id": "m2", "text": "also from memory"}\n')
    fs.pipe(f"{folder}/skip.csv", b"a,b\n")
    try:
        files = resolve_inputs([f"memory://{folder}"])
        assert files == [f"memory://{folder}/one.jsonl", f"memory://{folder}/sub/two.jsonl"]
        docs = [d for f in files for d in read(f)]
        assert [(d.id, d.text, d.metadata[META_SOURCE]) for d in docs] == [
            ("m1", "from memory", files[0]),
            ("m2", "also from memory", files[1]),
        ]
    finally:
        fs.rm(folder, recursive=True)


def test_file_url_input(inputs, read) -> None:
    path = inputs.jsonl("u.jsonl", RECORDS)
    files = resolve_inputs([f"file://{path}"])
    assert files == [str(path)]
    assert [d.text for d in read(files[0])] == [r["text"] for r in RECORDS]


def test_missing_memory_url_names_it() -> None:
    url = f"memory:///curate-test-{uuid.uuid4().hex}/nothing.jsonl"
    with pytest.raises(InputError) as err:
        resolve_inputs([url])
    assert (
        str(err.value)
        == f"input path not found or empty: {url}. Fix: check the path, or pass --input with an existing file, folder or glob"  # noqa: E501
    )


def test_no_inputs_at_all() -> None:
    with pytest.raises(InputError) as err:
        resolve_inputs([])
    assert str(err.value) == "no input given. Fix: set input.paths in the config or pass --input PATH"

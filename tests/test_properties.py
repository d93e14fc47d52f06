"""Property-based tests (hypothesis): readers never raise on any bytes, never lose a valid
record, and account for every record (each non-blank JSONL line is one document, kept or
rejected); filters and annotators never raise on any text and give the same verdict twice."""

from __future__ import annotations

import atexit
import gzip
import itertools
import json
import shutil
import tempfile
from pathlib import Path

from datatrove.data import Document
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from curate.core.schema import META_REJECT
from curate.readers.reader import RecordReader

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SUFFIXES = ["x.jsonl", "x.jsonl.gz", "x.jsonl.zst", "x.warc", "x.warc.gz", "x.parquet"]


# One folder made at import, one numbered subfolder per example: tempfile's random names
# inside a hypothesis example draw from the global `random`, which hypothesis warns about.
_FOLDER = Path(tempfile.mkdtemp(prefix="curate-properties-"))
_EXAMPLE = itertools.count()
atexit.register(shutil.rmtree, _FOLDER, True)


def _read(name: str, data: bytes) -> list[Document]:
    folder = _FOLDER / str(next(_EXAMPLE))
    folder.mkdir()
    path = folder / name
    path.write_bytes(data)
    try:
        return list(RecordReader([str(path)]).run())
    finally:
        shutil.rmtree(folder)


def _is_rejected(doc: Document) -> bool:
    return META_REJECT in doc.metadata


@SETTINGS
@given(name=st.sampled_from(SUFFIXES), data=st.binary(max_size=4096))
def test_any_bytes_under_any_name_never_raise(name: str, data: bytes) -> None:
    docs = _read(name, data)
    assert docs  # at least the file itself is accounted for (empty_file, unreadable, ...)
    for doc in docs:
        assert isinstance(doc.text, str) and "\x00" not in doc.text
        assert _is_rejected(doc) or doc.text.strip()
        assert doc.metadata["source"].endswith(name)


valid_record = st.fixed_dictionaries(
    {
        "id": st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=20),
        "text": st.text(min_size=1, max_size=200).filter(lambda t: bool(t.strip())),
    }
)
junk_line = st.one_of(
    st.binary(max_size=200).map(lambda b: b.replace(b"\n", b" ")),
    st.text(max_size=200).map(lambda t: t.replace("\n", " ").encode("utf-8", "surrogatepass")),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
        max_leaves=8,
    ).map(lambda v: json.dumps(v).encode()),
)


@SETTINGS
@given(lines=st.lists(st.one_of(valid_record, junk_line), max_size=30), compress=st.booleans())
def test_random_jsonl_keeps_every_valid_record_and_counts_every_line(lines: list[object], compress: bool) -> None:
    raw = [json.dumps(line).encode() if isinstance(line, dict) else line for line in lines]
    body = b"".join(line + b"\n" for line in raw)
    docs = _read("x.jsonl.gz" if compress else "x.jsonl", gzip.compress(body, mtime=0) if compress else body)
    records = [line for line in raw if line.strip()]
    if not records:
        assert [d.metadata[META_REJECT][0] for d in docs] == ["empty_file"]
        return
    # One document per non-blank line, in order, at its own line number: kept + rejected = total.
    assert len(docs) == len(records)
    line_numbers = [i for i, line in enumerate(raw) if line.strip()]
    assert [d.metadata["offset"] for d in docs] == line_numbers
    for doc, line in zip(docs, lines_at(lines, line_numbers)):
        if isinstance(line, dict) and line["text"].replace("\x00", "").strip():
            assert not _is_rejected(doc), doc.metadata.get(META_REJECT)
            assert doc.text == line["text"].replace("\x00", "")
            assert doc.id == line["id"]


def lines_at(lines: list[object], numbers: list[int]) -> list[object]:
    return [lines[i] for i in numbers]


@SETTINGS
@given(
    texts=st.lists(
        st.text(min_size=1, max_size=80).filter(lambda t: bool(t.strip()) and "\x00" not in t), min_size=1, max_size=20
    ),
    cut=st.floats(min_value=0, max_value=1),
    flips=st.lists(st.tuples(st.floats(min_value=0, max_value=1), st.integers(0, 255)), max_size=4),
)
def test_mutated_gzip_never_raises_and_keeps_only_real_records(
    texts: list[str], cut: float, flips: list[tuple[float, int]]
) -> None:
    records = [{"id": f"r{i}", "text": t} for i, t in enumerate(texts)]
    data = bytearray(gzip.compress(b"".join(json.dumps(r).encode() + b"\n" for r in records), mtime=0))
    for where, value in flips:
        data[int(where * (len(data) - 1))] = value
    data = data[: max(1, int(len(data) * cut))] if cut < 1 else data
    docs = _read("x.jsonl.gz", bytes(data))
    assert docs
    for doc in docs:
        assert isinstance(doc.metadata["offset"], int) and doc.metadata["source"].endswith("x.jsonl.gz")
    kept = [(d.id, d.text) for d in docs if not _is_rejected(d)]
    expected = [(r["id"], r["text"]) for r in records]
    if not flips:
        # A cut alone cannot alter bytes: what is kept is exactly a prefix of the records, and
        # everything after it is one ledger row (or nothing, if the cut fell after the data).
        assert kept == expected[: len(kept)]
        assert len(docs) - len(kept) <= 2  # the cut (and a partial last line before it)
    if not flips and cut >= 1:
        assert kept == expected and len(docs) == len(records)


# ------------------------------------------------------------- filters and annotators


def _annotate(texts: list[str]) -> list[tuple[object, ...]]:
    from curate.config import FiltersConfig
    from filters.heuristics import heuristic_annotators
    from filters.language import LanguageAnnotator
    from filters.registry import filter_stages

    docs = [Document(text=t, id=str(i), metadata={}) for i, t in enumerate(texts)]
    steps = [LanguageAnnotator(), *heuristic_annotators(FiltersConfig(), filter_stages())]
    stream = iter(docs)
    for step in steps:
        stream = step.run(stream)
    out = list(stream)
    assert [d.id for d in out] == [d.id for d in docs]  # annotators drop nothing
    return [
        (
            d.metadata.get("language"),
            d.metadata.get("language_score"),
            json.dumps(d.metadata.get("annotations"), sort_keys=True),
        )
        for d in out
    ]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=st.lists(st.text(max_size=600), min_size=1, max_size=8))
def test_annotators_never_raise_and_are_deterministic(texts: list[str]) -> None:
    first = _annotate(texts)
    assert first == _annotate(texts)
    for language, score, _ in first:
        assert score is None or 0.0 <= score <= 1.0
        assert (language is None) == (score is None)


# ------------------------------------------------------------- multi-member gzip


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    members=st.lists(
        st.lists(
            st.text(min_size=1, max_size=60).filter(lambda t: bool(t.strip()) and "\x00" not in t),
            min_size=1,
            max_size=4,
        ),
        min_size=2,
        max_size=5,
    ),
    where=st.floats(min_value=0, max_value=1, exclude_max=True),
    value=st.integers(1, 255),
)
def test_one_corrupt_byte_costs_at_most_its_own_gzip_member(members: list[list[str]], where: float, value: int) -> None:
    """The contract of README "Guarantees": one byte changed anywhere in a multi-member
    .jsonl.gz never raises; every record of every other member is kept, exactly and in order;
    a damage that is detected is corrupt_compression rows naming a byte inside the damaged
    member; when none is detected, the member's bytes were not changed (the byte was one gzip
    does not check: the header's time, flags for the OS) and every record is kept."""
    records = [[{"id": f"m{k}-r{i}", "text": t} for i, t in enumerate(texts)] for k, texts in enumerate(members)]
    blobs = [gzip.compress(b"".join(json.dumps(r).encode() + b"\n" for r in member), mtime=0) for member in records]
    starts = [sum(len(b) for b in blobs[:k]) for k in range(len(blobs))]
    data = bytearray(b"".join(blobs))
    at = int(where * len(data))
    data[at] ^= value  # a change: value is never 0
    hit = max(k for k, start in enumerate(starts) if start <= at)
    docs = _read("x.jsonl.gz", bytes(data))
    kept = [(d.id, d.text) for d in docs if not _is_rejected(d)]
    intact = [(r["id"], r["text"]) for k, member in enumerate(records) if k != hit for r in member]
    remaining = iter(kept)  # every intact record appears in order (a subsequence of `kept`)
    assert all(record in remaining for record in intact), (intact, kept)
    damage = [d for d in docs if _is_rejected(d) and d.metadata[META_REJECT][0] == "corrupt_compression"]
    end = starts[hit] + len(blobs[hit])
    for row in damage:
        byte = int(row.metadata[META_REJECT][1].split(" at byte ", 1)[1].split(":", 1)[0])
        assert starts[hit] <= byte < end, (row.metadata[META_REJECT], starts, at)
    if not damage:
        assert kept == [(r["id"], r["text"]) for member in records for r in member]

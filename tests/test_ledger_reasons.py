"""README guarantees that had no test: the ledger reasons `extraction_timeout`,
`extraction_crashed`, `extraction_error`, `undecodable` and `unreadable_file`, each produced
by a real input or a faithful injection and found in the ledger of a real run; and the
bounded memory of a gzip bomb."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

import curate.annotate
from curate.core.schema import META_REJECT
from filters.extract import AccountedTrafilatura


def _page(title: str, body: str) -> str:
    return (
        f"<html><head><title>{title}</title></head><body><article><h1>{title}</h1><p>{body}</p></article></body></html>"
    )


class MisbehavingTrafilatura(AccountedTrafilatura):
    """The real step, sandbox and timeout; only trafilatura's own call misbehaves on the pages
    that ask for it, as it does on pathological HTML: it hangs, kills its process (as the
    kernel's OOM killer does), or reports an error through the sandbox's pipe (an exception
    object sent back as the result: what datatrove's sandbox raises in the parent)."""

    def extract(self, text: str) -> str:
        if "HANG-FOREVER" in text:
            time.sleep(600)
        if "DIE-NOW" in text:
            os._exit(137)
        if "REPORT-ERROR" in text:
            return ValueError("the markup is broken beyond repair")  # type: ignore[return-value]
        return super().extract(text)


@pytest.mark.slow
def test_extraction_failures_each_have_their_reason(
    tmp_path: Path, texts, make_inputs, config_file, run_curate, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(curate.annotate, "AccountedTrafilatura", MisbehavingTrafilatura)
    files = make_inputs(tmp_path / "in")
    GOOD = texts.GOOD
    pages = {
        "https://example.org/good": _page("Plants", GOOD),
        "https://example.org/hang": _page("HANG-FOREVER", GOOD),
        "https://example.org/die": _page("DIE-NOW", GOOD),
        "https://example.org/error": _page("REPORT-ERROR", GOOD),
        "https://example.org/after": _page("Plants again", GOOD.replace("plants", "green plants")),
    }
    warc = files.warc("pages.warc.gz", [{"url": url, "body": body} for url, body in pages.items()])
    config = config_file(tmp_path / "c.yaml", name="extract", extract={"timeout_s": 3})
    result = run_curate(config, [warc], tmp_path / "out")
    ledger = result.ledger()
    by_url = {row["url"]: (row["stage"], row["reason"]) for row in ledger.iter_rows(named=True)}
    assert by_url["https://example.org/hang"] == ("extract", "extraction_timeout")
    assert by_url["https://example.org/die"] == ("extract", "extraction_crashed")
    assert by_url["https://example.org/error"] == ("extract", "extraction_error")
    error = ledger.filter(pl.col("url") == "https://example.org/error")["value"][0]
    assert error == "ValueError: the markup is broken beyond repair"
    # The extractor restarted after each failure: the page after them was extracted.
    assert "https://example.org/after" not in by_url or by_url["https://example.org/after"][0] != "extract"
    assert result.manifest["counts"]["ingested"] == len(pages)


def test_undecodable_page(inputs, read, reason) -> None:
    """Bytes served as UTF-8 HTML that decode as nothing (binary data): `undecodable`."""
    junk = random.Random(0).randbytes(4000)
    path = inputs.warc(
        "junk.warc.gz", [{"url": "https://example.org/junk", "body": junk, "content_type": "text/html; charset=utf-8"}]
    )
    (doc,) = read(path)
    assert (reason(doc), doc.metadata[META_REJECT][1]) == ("undecodable", "bytes match no detectable charset")
    assert doc.metadata["url"] == "https://example.org/junk"


@pytest.mark.slow
def test_undecodable_and_unreadable_in_a_run_ledger(
    tmp_path: Path, texts, make_inputs, config_file, run_curate
) -> None:
    """A folder holding a page of binary junk and a link to a file that is gone (removed
    between listing and reading; the link shows it every time): both are ledger rows."""
    files = make_inputs(tmp_path / "in")
    junk = random.Random(1).randbytes(4000)
    files.warc(
        "junk.warc.gz", [{"url": "https://example.org/junk", "body": junk, "content_type": "text/html; charset=utf-8"}]
    )
    files.jsonl("ok.jsonl", [{"id": "ok", "text": texts.GOOD}])
    gone = files.root / "gone.jsonl"
    gone.symlink_to(files.root / "deleted.jsonl")
    result = run_curate(config_file(tmp_path / "c.yaml", name="reasons"), [files.root], tmp_path / "out")
    rows = {(r["stage"], r["reason"], r["source"]) for r in result.ledger().iter_rows(named=True)}
    assert ("ingest", "undecodable", str(files.root / "junk.warc.gz")) in rows
    assert ("ingest", "unreadable_file", str(gone)) in rows
    unreadable = result.ledger().filter(pl.col("reason") == "unreadable_file").row(0, named=True)
    assert (unreadable["offset"], unreadable["value"]) == (
        -1,
        f"FileNotFoundError: [Errno 2] No such file or directory: '{gone}'",
    )
    assert result.kept()["id"].to_list() == ["ok"]


def test_gzip_bomb_is_too_large_in_bounded_memory(inputs, read: Callable, reason: Callable) -> None:
    """~1 MB of gzip that inflates to one 1 GiB line: rejected as too_large, and never held:
    each inflate call gives at most 1 MB (the zstd twin is in test_bad_input.py)."""
    import tracemalloc
    import zlib

    deflate = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(1 << 20)
    bomb = b"".join(deflate.compress(zeros) for _ in range(1024)) + deflate.flush()
    assert len(bomb) < 2 * 1024 * 1024
    path = inputs.bytes("bomb.jsonl.gz", bomb)
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
    assert peak < 128 * 1024 * 1024, peak

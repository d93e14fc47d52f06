"""A read that fails in the middle of an input file (a disk read error, a connection cut by an
object store or a web server) is retried; when it keeps failing, the run stops naming the
file and the byte, the annotate stage is not marked done, and the next run reads the file
again and accounts for every record. Corrupt bytes stay ledger rows (tests/test_bad_input.py).

The faults are real: an EIO raised by the file object after N bytes (an fsspec filesystem
registered for the test), and a real HTTP server on 127.0.0.1 that cuts its responses short."""

from __future__ import annotations

import errno
import io
import json
import re
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import fsspec
import polars as pl
import pytest
from fsspec.implementations.local import LocalFileSystem

from curate.cli import main
from curate.core.errors import InputError
from curate.core.input_retry import RetryPolicy
from curate.readers.reader import RecordReader

FAST_RETRY = {"input": {"read_retries": 2, "read_retry_wait_s": 0.01}}
FIX = (
    "Fix: check the connection or the disk and rerun the same command: the files read to their end are reused "
    "and this one is read again (input.read_retries sets how often a read is retried)"
)


# ------------------------------------------------------------------ a disk that fails mid-file


class _FailingAfter(io.RawIOBase):
    """A local file whose reads raise EIO once `limit` bytes have been read, as a disk read
    error does: the bytes before arrive, the read past them fails."""

    def __init__(self, f: Any, limit: int) -> None:
        super().__init__()
        self.f, self.limit = f, limit

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.f.seek(offset, whence)

    def tell(self) -> int:
        return self.f.tell()

    def readinto(self, buffer: Any) -> int:
        position = self.f.tell()
        if position >= self.limit:
            raise OSError(errno.EIO, "Input/output error")
        data = self.f.read(min(len(buffer), self.limit - position))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self.f.close()
        super().close()


class FlakyFileSystem(LocalFileSystem):
    """`flaky:///path`: the local file, failing after faults[path][0] bytes for the next
    faults[path][1] opens (-1: every open)."""

    protocol = "flaky"
    faults: dict[str, list[int]] = {}
    opens: Counter[str] = Counter()

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        f = super()._open(path, mode, **kwargs)
        path = self._strip_protocol(path)
        self.opens[path] += 1
        fault = self.faults.get(path)
        if fault is None or fault[1] == 0:
            return f
        fault[1] -= 1 if fault[1] > 0 else 0
        return _FailingAfter(f, fault[0])


@pytest.fixture
def flaky() -> Iterator[type[FlakyFileSystem]]:
    fsspec.register_implementation("flaky", FlakyFileSystem, clobber=True)
    FlakyFileSystem.faults, FlakyFileSystem.opens = {}, Counter()
    yield FlakyFileSystem
    FlakyFileSystem.faults = {}


def test_a_read_error_mid_file_is_retried_from_that_byte(inputs, flaky) -> None:
    records = [{"id": f"r{i}", "text": f"Record {i} has a sentence or two of text in it."} for i in range(400)]
    path = inputs.jsonl("part.jsonl", records)
    flaky.faults[str(path)] = [path.stat().st_size // 2, 2]  # the first two opens fail halfway
    docs = list(RecordReader([f"flaky://{path}"], retry=RetryPolicy(2, 0.0)).run())
    assert [d.id for d in docs] == [r["id"] for r in records]  # each record once, none lost or doubled
    assert flaky.opens[str(path)] == 3


def test_a_read_error_that_persists_names_the_file_and_byte(inputs, flaky, read) -> None:
    path = inputs.jsonl("part.jsonl", [{"id": f"r{i}", "text": f"Record {i}."} for i in range(400)])
    half = path.stat().st_size // 2
    flaky.faults[str(path)] = [half, -1]
    with pytest.raises(InputError) as err:
        list(RecordReader([f"flaky://{path}"], retry=RetryPolicy(2, 0.0)).run())
    assert (
        str(err.value)
        == f"cannot read flaky://{path} at byte {half} (tried 3 times): OSError: [Errno 5] Input/output error. {FIX}"
    )


@pytest.mark.parametrize("name", ["pages.warc.gz", "rows.parquet"])
def test_warc_and_parquet_read_errors_stop_too(inputs, flaky, sample_warc: Path, name: str) -> None:
    """Not `corrupt_archive` / `corrupt_file` rows: the bytes were never seen."""
    if name.endswith(".parquet"):
        path = inputs.parquet(
            name, {"id": [str(i) for i in range(3000)], "text": [f"row {i} text" for i in range(3000)]}
        )
    else:
        path = inputs.bytes(name, sample_warc.read_bytes())
    at = path.stat().st_size // 3
    flaky.faults[str(path)] = [at, -1]
    with pytest.raises(
        InputError, match=re.escape(f"cannot read flaky://{path} at byte {at} (tried 2 times): OSError: [Errno 5]")
    ):
        list(RecordReader([f"flaky://{path}"], retry=RetryPolicy(1, 0.0)).run())


@pytest.mark.slow
def test_run_stops_on_a_read_error_and_the_rerun_accounts_for_every_record(
    tmp_path: Path, make_inputs, articles, config_file, run_curate, flaky, capsys
) -> None:
    files = make_inputs(tmp_path / "in")
    first = files.jsonl("a.jsonl", [{"id": a["id"], "text": a["text"]} for a in articles[:30]])
    second = files.jsonl("b.jsonl", [{"id": a["id"], "text": a["text"]} for a in articles[30:60]])
    half = second.stat().st_size // 2
    flaky.faults[str(second)] = [half, -1]
    config = config_file(tmp_path / "c.yaml", name="flaky", **FAST_RETRY)
    out = tmp_path / "out"
    argv = [
        "run",
        str(config),
        "--input",
        f"flaky://{first}",
        "--input",
        f"flaky://{second}",
        "--output",
        str(out),
        "--quiet",
    ]

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert (
        err
        == f"error: cannot read flaky://{second} at byte {half} (tried 3 times): OSError: [Errno 5] Input/output error. {FIX}\n"  # noqa: E501
    )
    assert not (out / "manifest.json").exists()
    assert not list(out.glob("_work/*/_done.json"))  # annotate is not done: the rerun reads the file again

    flaky.faults.clear()
    assert main(argv) == 0, capsys.readouterr().err
    capsys.readouterr()
    kept = pl.read_parquet(out / "data" / "*.parquet").get_column("id").to_list()
    ledger = pl.read_parquet(out / "rejected" / "*.parquet").get_column("id").to_list()
    assert Counter(kept + ledger) == Counter(a["id"] for a in articles[:60])


# ------------------------------------------------------------- a web server that cuts responses


class _CuttingServer:
    """Serves files over HTTP/1.1 with range requests (as object stores do); the first `cuts`
    downloads (range GETs: fsspec reads a file's bytes with them) send their headers and half
    their body, then close the connection. Other GETs (fsspec's folder check) are served whole."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.cuts = 0
        self.gets = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _body(self) -> tuple[int, bytes, dict[str, str]]:
                data = server.files.get(self.path)
                if data is None:
                    return 404, b"", {}
                m = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
                if not m:
                    return 200, data, {}
                start, end = int(m[1]), min(int(m[2]) + 1 if m[2] else len(data), len(data))
                return 206, data[start:end], {"Content-Range": f"bytes {start}-{end - 1}/{len(data)}"}

            def do_HEAD(self) -> None:
                status, _, _ = self._body()
                self.send_response(status)
                self.send_header("Content-Length", str(len(server.files.get(self.path, b""))))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()

            def do_GET(self) -> None:
                status, body, headers = self._body()
                server.gets += 1
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Accept-Ranges", "bytes")
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                if server.cuts and status == 206:
                    server.cuts -= 1
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(body)

        class Quiet(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client hanging up on a cut response is the point, not news

        self.httpd = Quiet(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def http_server() -> Iterator[_CuttingServer]:
    server = _CuttingServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def web_records(articles) -> list[dict[str, str]]:
    return [{"id": a["id"], "text": a["text"], "url": a["url"]} for a in articles[:40]]


def _jsonl(records: list[dict[str, str]]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def test_http_download_cut_halfway_is_retried(http_server, web_records, read) -> None:
    http_server.files["/web.jsonl"] = _jsonl(web_records)
    http_server.cuts = 2
    docs = list(RecordReader([http_server.url("web.jsonl")], retry=RetryPolicy(2, 0.01)).run())
    assert [d.id for d in docs] == [r["id"] for r in web_records]
    assert [d.text for d in docs] == [r["text"] for r in web_records]
    assert http_server.cuts == 0 and http_server.gets == 3


@pytest.mark.slow
def test_run_over_http_retries_cuts_and_fails_loudly_when_they_persist(
    tmp_path: Path, http_server, web_records, config_file, run_curate, capsys
) -> None:
    http_server.files["/web.jsonl"] = _jsonl(web_records)
    url = http_server.url("web.jsonl")
    config = config_file(tmp_path / "c.yaml", name="http", **FAST_RETRY)

    http_server.cuts = 1_000  # every response is cut: the run fails, naming the file and byte
    out = tmp_path / "out"
    argv = ["run", str(config), "--input", url, "--output", str(out), "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert re.fullmatch(
        rf"error: cannot read {re.escape(url)} at byte 0 \(tried 3 times\): ClientPayloadError: Response payload is "
        r"not completed[^\n]*\. " + re.escape(FIX) + "\n",
        err,
    ), err
    assert not (out / "manifest.json").exists()
    assert not list(out.glob("_work/*/_done.json"))

    http_server.cuts = 2  # the same server recovers: the retries carry the run through
    assert main(argv) == 0, capsys.readouterr().err
    capsys.readouterr()
    kept = pl.read_parquet(out / "data" / "*.parquet").get_column("id").to_list()
    ledger = pl.read_parquet(out / "rejected" / "*.parquet").get_column("id").to_list()
    assert Counter(kept + ledger) == Counter(r["id"] for r in web_records)
    assert http_server.cuts == 0

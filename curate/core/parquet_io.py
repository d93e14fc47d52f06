"""Writing Parquet safely: under a temporary name, renamed when complete, so a reader (or a
rerun after a crash) never sees half a file. The Document-to-row mapping is a step's (curate.writers)."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from curate.core.errors import output_error

TMP_SUFFIX = ".tmp"
COPY_BUFFER_BYTES = 1 << 20  # copy_atomic's chunk: few syscalls, little memory


def tmp_path(final: Path) -> Path:
    return final.with_name(f".{final.name}{TMP_SUFFIX}")


@contextmanager
def writing(final: Path) -> Iterator[None]:
    """Around the write calls of `final` (through its temp file): a full disk or a read-only
    path becomes an OutputError naming `final` and the fix, and the half-written temp file is
    removed (it holds space the rerun needs, and is never a result). Only write calls: a
    permission failure while reading is not "cannot write" (curate.core.errors.output_error)."""
    try:
        yield
    except Exception as exc:
        tmp = tmp_path(final)
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        error = output_error(exc, final)
        if error is None:
            raise
        raise error from None


def write_table_atomic(
    table: pa.Table, final: Path, compression: str = "zstd", level: int | None = 3, row_group_rows: int = 10_000
) -> Path:
    with writing(final):
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = tmp_path(final)
        pq.write_table(
            table,
            tmp,
            compression=None if compression == "none" else compression,
            compression_level=level if compression == "zstd" else None,
            row_group_size=row_group_rows,
        )
        fsync_file(tmp)
        os.replace(tmp, final)
    return final


def write_bytes_atomic(data: bytes, final: Path) -> None:
    with writing(final):
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = tmp_path(final)
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)


def copy_atomic(source: Path, final: Path) -> None:
    """Copy `source` to `final` through a temp file, renamed when complete."""
    with open(source, "rb") as src:  # opened outside writing(): an unreadable source is not an output error
        with writing(final):
            tmp = tmp_path(final)
            with open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst, COPY_BUFFER_BYTES)
            os.replace(tmp, final)


def fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()

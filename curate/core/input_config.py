"""The `input` section: which files a run reads and how, beside the code that reads them
(curate.core.input_files, curate.core.input_retry, curate.readers)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from curate.core.section import Section


class InputConfig(Section):
    # Files, folders, globs or fsspec URLs (s3://, https://, memory://). Relative paths are
    # resolved against the working directory, like any command-line tool.
    paths: list[str] = Field(default_factory=list)
    # auto: decided per file from its name (.warc/.warc.gz/.wet -> warc, .jsonl/.json(.gz/.zst)
    # -> jsonl, .parquet -> parquet). Set it when names carry no extension.
    format: Literal["auto", "warc", "jsonl", "parquet"] = "auto"
    text_key: str = "text"
    id_key: str = "id"
    # 5 MB: the largest real articles are ~0.5 MB of text; bigger records are dumps, logs or
    # binary junk, and trafilatura spends seconds on each. Larger records go to the ledger
    # as `too_large` instead of stalling a worker.
    max_record_bytes: int = Field(default=5_000_000, ge=1_000)
    # A read that fails for a reason that may pass (connection reset, a download cut short, a
    # disk read error) is retried this often, reopening the file at the byte where it stopped,
    # after read_retry_wait_s and twice as long before each next try; then the run fails naming
    # the file and the byte (curate.core.input_retry). 4 retries waiting 1+2+4+8 s outlast a dropped
    # connection or an object store's throttling burst; a server really down fails in ~15 s.
    # An id is unique only within its file (parts numbered from 0 reuse ids): `colliding`
    # scopes an id that several files use to its file (`<file tag>/<id>`), in each of them;
    # `always` scopes every id. No document is dropped because another file used its id; a
    # repeat within one file is `duplicate_id`. See curate/core/ids.py.
    id_scope: Literal["colliding", "always"] = "colliding"
    read_retries: int = Field(default=4, ge=0, le=20)
    read_retry_wait_s: float = Field(default=1.0, ge=0, le=600)

"""Reading raw inputs into Documents: WARC/WET, JSONL (.gz/.zst) and Parquet, from paths,
folders, globs or fsspec URLs.

Built on datatrove's `BaseReader` (its adapter, stats and Document type), with our own
record loops: datatrove's readers log a bad line and move on, or lose the rest of a file on a
corrupt gzip member, and neither tells the ledger. Here every record that cannot become a
document still travels down the pipeline, as an empty document whose `ingest_reject`
metadata says why, so the ledger can account for it and kept + rejected = ingested holds.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.readers.base import BaseReader

from curate.core.input_files import detect_format, source_tag
from curate.core.input_retry import DEFAULT_RETRY, RetryPolicy
from curate.core.schema import META_REJECT
from curate.readers.documents import Limits, rejected
from curate.readers.jsonl import read_jsonl
from curate.readers.parquet import read_parquet
from curate.readers.warc import read_warc


class RecordReader(BaseReader):
    """Reads every input file of this rank (files[rank::world_size]) and yields one Document
    per record, rejected records included (see module docstring)."""

    name = "curate reader"
    _requires_dependencies = ["warcio", ("cchardet", "faust-cchardet"), "orjson", "zstandard"]

    def __init__(
        self,
        files: list[str],
        fmt: str = "auto",
        text_key: str = "text",
        id_key: str = "id",
        max_record_bytes: int = 5_000_000,
        retry: RetryPolicy = DEFAULT_RETRY,
    ) -> None:
        super().__init__(text_key=text_key, id_key=id_key)
        self.files = files
        self.fmt = fmt
        self.limits = Limits(max_record_bytes=max_record_bytes, retry=retry)

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if data:
            yield from data
        for path in self.files[rank::world_size]:
            self.stat_update("input_files")
            yield from self.read_path(path)

    def read_path(self, path: str) -> Iterator[Document]:
        fmt = detect_format(path, self.fmt)
        tag = source_tag(path)
        produced = 0
        try:
            if fmt == "jsonl":
                records = read_jsonl(path, tag, self.text_key, self.id_key, self.limits)
            elif fmt == "parquet":
                records = read_parquet(path, tag, self.text_key, self.id_key, self.limits)
            else:
                records = read_warc(path, tag, self.limits)
            for doc in records:
                produced += 1
                if META_REJECT in doc.metadata:
                    self.stat_update(f"rejected_{doc.metadata[META_REJECT][0]}")
                else:
                    self.stat_update("documents")
                yield doc
        except (OSError, ValueError, EOFError, zlib.error) as exc:
            # The file could not be opened at all (missing, no permission), or its bytes are
            # not what its name says. A read that broke off is not this: RetryingFile retries
            # it, then raises ReadFailed (not an OSError), which stops the run.
            produced += 1
            yield rejected(tag, path, -1, "unreadable_file", f"{type(exc).__name__}: {exc}")
        if produced == 0:
            yield rejected(tag, path, -1, "empty_file", "the file holds no records")

"""Pre-tokenized shards for trainers (`release.formats`), written from the same rows, in the
same order, as the Parquet shards: one tokenized shard per Parquet shard, each document's
ids followed by `release.eos_token` (so a file holds num_tokens + 1 tokens per document).

    megatron/<split>-00000-of-00008.bin / .idx     Megatron-LM indexed dataset (MMIDIDX),
                                                   read by Megatron-LM, NeMo and GPT-NeoX
    nanotron/<split>/<split>-00000-of-00008.ds     datatrove's tokenized files (+ .ds.index,
                                                   .ds.metadata), read by nanotron
    tokens-index/<split>-00000-of-00008.parquet    provenance: per sequence, its first token
                                                   and its document (id, source, offset)

Both formats are written with datatrove's own writers (MegatronTokenizedFile and
TokenizedFile, as its MegatronDocumentTokenizer and DocumentTokenizer steps use them), fed
with our ids: the documents are already shuffled, mixed and sharded here, and datatrove's
steps would re-shuffle and re-read them. The token dtype fits the vocabulary: 2 bytes up to
65,536 ids (uint16), else 4 (int32 for Megatron, uint32 for datatrove: their own choices)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curate.core import schema as S
from curate.release.tokens import TokenCounter

MEGATRON = "megatron"
NANOTRON = "nanotron"
INDEX_DIR = "tokens-index"
# Megatron's .idx dtype codes (megatron/core/datasets/indexed_dataset.py DType).
MEGATRON_DTYPE_CODES = {np.dtype(np.uint16): 8, np.dtype(np.int32): 4}
INDEX_SCHEMA = pa.schema(
    [
        pa.field("sequence", pa.int64(), nullable=False),  # row of the Parquet shard = sequence of the .idx / .ds.index
        pa.field("token_start", pa.int64(), nullable=False),  # first token of the sequence in the shard's token file
        pa.field("tokens", pa.int32(), nullable=False),  # tokens of the sequence, its end-of-document token included
        pa.field(S.ID, pa.string(), nullable=False),
        pa.field(S.SOURCE, pa.string(), nullable=False),
        pa.field(S.OFFSET, pa.int64(), nullable=False),
    ]
)


def token_size(vocab_size: int) -> int:
    """Bytes per token: ids 0..65535 fit in 2 (datatrove's and Megatron's rule)."""
    return 2 if vocab_size <= np.iinfo(np.uint16).max + 1 else 4


def dtypes(size: int) -> dict[str, np.dtype]:
    return {
        MEGATRON: np.dtype(np.uint16 if size == 2 else np.int32),
        NANOTRON: np.dtype(np.uint16 if size == 2 else np.uint32),
    }


class TokenizedShard:
    """The tokenized twins of one Parquet shard (data/<stem>.parquet), written row group by
    row group in the shard's own writer thread, so row i of the shard is sequence i here."""

    def __init__(
        self, release: Path, split: str, stem: str, formats: list[str], counter: TokenCounter, eos_id: int
    ) -> None:
        from datatrove.pipeline.tokens.megatron_tokenizer import MegatronTokenizedFile
        from datatrove.pipeline.tokens.tokenizer import TokenizedFile

        self.release, self.split, self.stem, self.formats = release, split, stem, formats
        self.counter, self.eos_id = counter, eos_id
        self.size = token_size(counter.info.vocab_size)
        self.dtype = dtypes(self.size)[NANOTRON]  # the ids are the same; each writer casts to its own dtype
        self.paths: dict[str, list[str]] = {}  # format -> files, relative to the release folder
        self.megatron: Any = None
        self.nanotron: Any = None
        if MEGATRON in formats:
            (release / MEGATRON).mkdir(exist_ok=True)
            self.megatron = MegatronTokenizedFile(str(release / MEGATRON), stem, token_size=self.size)
            self.paths[MEGATRON] = [f"{MEGATRON}/{stem}.bin", f"{MEGATRON}/{stem}.idx"]
        if NANOTRON in formats:
            folder = release / NANOTRON / split
            folder.mkdir(parents=True, exist_ok=True)
            # nanotron reads the tokenizer name and token size from the .metadata file's first line.
            self.nanotron = TokenizedFile(
                str(folder),
                f"{stem}.ds",
                save_index=True,
                tokenizer_name_or_path=_tokenizer_name(counter),
                save_final_metadata=True,
                token_size=self.size,
            )
            name = f"{NANOTRON}/{split}/{stem}.ds"
            self.paths[NANOTRON] = [name, f"{name}.index", f"{name}.metadata"]
        self.index: list[pa.Table] = []
        self.sequences = 0
        self.tokens = 0

    def add(self, piece: pa.Table) -> np.ndarray:
        """Tokenize and append a row group's documents; returns num_tokens (EOS not counted)."""
        lengths, ids = self.counter.encode(piece.column(S.TEXT), self.eos_id, self.dtype)
        sizes = lengths.astype(np.int64) + 1
        ends = np.cumsum(sizes)
        if self.megatron is not None:
            # Megatron's writer takes one document at a time (numpy slices: no Python ints).
            starts = ends - sizes
            for lo, hi in zip(starts.tolist(), ends.tolist()):
                self.megatron.write(ids[lo:hi])
        if self.nanotron is not None:
            # datatrove's bulk write: the whole row group's bytes, with its document ends.
            self.nanotron.write_bytes(ids.tobytes(), doc_ends=ends.tolist())
        n = piece.num_rows
        self.index.append(
            pa.Table.from_arrays(
                [
                    pa.array(np.arange(self.sequences, self.sequences + n, dtype=np.int64)),
                    pa.array(self.tokens + ends - sizes),
                    pa.array(sizes.astype(np.int32)),
                    piece.column(S.ID).cast(pa.string()),
                    piece.column(S.SOURCE).cast(pa.string()),
                    piece.column(S.OFFSET),
                ],
                schema=INDEX_SCHEMA,
            )
        )
        self.sequences += n
        self.tokens += int(ends[-1]) if n else 0
        return lengths

    def close(self) -> None:
        """Write the indexes and footers (datatrove's close), and the provenance index."""
        if self.megatron is not None:
            self.megatron.close()
        if self.nanotron is not None:
            self.nanotron.close()
        (self.release / INDEX_DIR).mkdir(exist_ok=True)
        table = pa.concat_tables([INDEX_SCHEMA.empty_table(), *self.index])
        pq.write_table(table, self.release / INDEX_DIR / f"{self.stem}.parquet", compression="zstd")
        self.index = []

    def seal(self, shard: str) -> list[dict[str, Any]]:
        """The manifest entries of this shard's tokenized files (bytes, sha256), made durable."""
        out = []
        for fmt, paths in self.paths.items():
            files = [_sealed(self.release, p) for p in paths]
            out.append(
                {
                    "format": fmt,
                    "split": self.split,
                    "shard": shard,
                    "sequences": self.sequences,
                    "tokens": self.tokens,
                    "files": files,
                }
            )
        out.append(
            {
                "format": INDEX_DIR,
                "split": self.split,
                "shard": shard,
                "sequences": self.sequences,
                "tokens": self.tokens,
                "files": [_sealed(self.release, f"{INDEX_DIR}/{self.stem}.parquet")],
            }
        )
        return out

    def abandon(self) -> None:
        """After a failure: close the files so the staging folder can go (errors ignored)."""
        for writer in (self.megatron, self.nanotron):
            for attr in ("bin_file", "tokens_file"):
                handle = getattr(writer, attr, None)
                if handle is not None:
                    try:
                        handle.close()
                    except Exception:  # noqa: BLE001 - the first error is the one reported
                        pass


def _tokenizer_name(counter: TokenCounter) -> str:
    """What nanotron loads with AutoTokenizer.from_pretrained: the tokenizer's folder."""
    path = Path(counter.info.path)
    return str(path.parent if path.name == "tokenizer.json" else path)


def _sealed(release: Path, relative: str) -> dict[str, Any]:
    digest = hashlib.sha256()
    with open(release / relative, "rb") as f:
        while block := f.read(1 << 22):
            digest.update(block)
        os.fsync(f.fileno())
        size = f.tell()
    return {"path": relative, "bytes": size, "sha256": digest.hexdigest()}


def summary(
    entries: list[dict[str, Any]], formats: list[str], counter: TokenCounter, eos_token: str, eos_id: int
) -> dict[str, Any]:
    """manifest.json's `tokenized` section: settings, every file, and totals per format
    (tokens include one end-of-document token per sequence)."""
    size = token_size(counter.info.vocab_size)
    totals: dict[str, dict[str, int]] = {}
    for fmt in formats:
        mine = [e for e in entries if e["format"] == fmt]
        totals[fmt] = {
            "files": sum(len(e["files"]) for e in mine),
            "sequences": sum(e["sequences"] for e in mine),
            "tokens": sum(e["tokens"] for e in mine),
            "bytes": sum(f["bytes"] for e in mine for f in e["files"]),
        }
    return {
        "formats": formats,
        "eos_token": eos_token,
        "eos_id": eos_id,
        "eos_counted": "tokens here include one eos_token per sequence: tokens = num_tokens + 1 per document",
        "token_bytes": size,
        "dtype": {fmt: str(dtypes(size)[fmt]) for fmt in formats},
        "index": INDEX_DIR,
        "shards": entries,
        "totals": totals,
    }

"""Reading the tokenized shards back: what `curate verify` checks in them, and `curate lookup`
(from a token position in a tokenized file to the document it belongs to).

verify, after the Parquet shards have passed: every listed file exists and its sha256 matches
(any changed byte fails, naming the file); no unlisted file sits in megatron/, nanotron/ or
tokens-index/; each .idx / .ds.index agrees with its token file's size, with its Parquet shard
(one sequence per row, num_tokens + 1 tokens each) and with the provenance index; the totals
add up."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curate.core import schema as S
from curate.core.errors import InputError
from curate.release.tokenized import INDEX_DIR, MEGATRON, MEGATRON_DTYPE_CODES, NANOTRON
from curate.release.verify import REBUILD, VerifyError, check_listed_file

MEGATRON_MAGIC = b"MMIDIDX\x00\x00"
_CODE_DTYPES = {code: dtype for dtype, code in MEGATRON_DTYPE_CODES.items()}


@dataclass
class MegatronIndex:
    dtype: np.dtype
    lengths: np.ndarray  # int32 tokens per sequence
    pointers: np.ndarray  # int64 byte offset of each sequence in the .bin
    documents: np.ndarray  # int64 sequence index where each document starts (count + 1)


def read_megatron_index(path: Path) -> MegatronIndex:
    """The .idx layout of Megatron-LM's indexed dataset (megatron/core/datasets/indexed_dataset.py):
    magic, version (uint64 1), dtype code (uint8), sequence count and document count (uint64),
    then int32 lengths, int64 byte pointers, int64 document indices."""
    data = path.read_bytes()
    head = len(MEGATRON_MAGIC) + 8 + 1 + 8 + 8
    if len(data) < head or data[: len(MEGATRON_MAGIC)] != MEGATRON_MAGIC:
        raise ValueError("does not start with Megatron's MMIDIDX header")
    version, code, sequences, documents = struct.unpack_from("<QBQQ", data, len(MEGATRON_MAGIC))
    if version != 1 or code not in _CODE_DTYPES:
        raise ValueError(f"version {version}, dtype code {code}: not what curate writes (1, {sorted(_CODE_DTYPES)})")
    if len(data) != head + sequences * (4 + 8) + documents * 8:
        raise ValueError(
            f"is {len(data)} bytes; {sequences} sequences and {documents} document indices need "
            f"{head + sequences * 12 + documents * 8}"
        )
    lengths = np.frombuffer(data, np.int32, sequences, head)
    pointers = np.frombuffer(data, np.int64, sequences, head + sequences * 4)
    docs = np.frombuffer(data, np.int64, documents, head + sequences * 12)
    return MegatronIndex(_CODE_DTYPES[code], lengths, pointers, docs)


def verify_tokenized(release_dir: Path, manifest: dict[str, Any]) -> None:
    section = manifest.get("tokenized")
    if not section:
        return
    entries = section["shards"]
    for entry in entries:
        for file in entry["files"]:
            check_listed_file(release_dir, file["path"], file["sha256"], file["path"])
    listed = {f["path"] for e in entries for f in e["files"]}
    for folder in (MEGATRON, NANOTRON, INDEX_DIR):
        if (release_dir / folder).is_dir():
            for path in sorted(p for p in (release_dir / folder).rglob("*") if p.is_file()):
                relative = path.relative_to(release_dir).as_posix()
                if relative not in listed:
                    raise VerifyError(
                        f"{relative} is not listed in manifest.json; a trainer reading {folder}/ would include it. "
                        "Fix: remove it, or rebuild the release"
                    )

    shards = {s["path"]: s for s in manifest["shards"]}
    formats = sorted({e["format"] for e in entries} | set(section["totals"]))
    have = {(e["shard"], e["format"]) for e in entries}
    for shard_path in shards:
        for fmt in formats:
            if (shard_path, fmt) not in have:
                raise VerifyError(
                    f"manifest.json: shard {shard_path} has no {fmt} files; every Parquet shard has one per format. "
                    f"{REBUILD}"
                )
    rows_of: dict[str, tuple[np.ndarray, list[str]]] = {}
    for entry in entries:
        problem = _check_entry(release_dir, entry, shards.get(entry["shard"]), section)
        if problem is None and entry["shard"] in shards:
            if entry["shard"] not in rows_of:  # each Parquet shard's ids and lengths, read once
                table = pq.read_table(release_dir / entry["shard"], columns=[S.ID, S.NUM_TOKENS])
                rows_of[entry["shard"]] = (
                    table.column(S.NUM_TOKENS).to_numpy().astype(np.int64) + 1,
                    table.column(S.ID).cast(pa.string()).to_pylist(),
                )
            problem = _check_rows(release_dir, entry, *rows_of[entry["shard"]])
        if problem:
            raise VerifyError(f"{problem}. {REBUILD}")
    rows, tokens = sum(s["rows"] for s in shards.values()), sum(s["tokens"] or 0 for s in shards.values())
    for fmt, expected in section["totals"].items():
        if expected["tokens"] != tokens + rows:
            raise VerifyError(
                f"manifest.json: tokenized.totals.{fmt}.tokens is {expected['tokens']}, but the shards hold {tokens} "
                f"tokens + {rows} end-of-document tokens. {REBUILD}"
            )
    for fmt, expected in section["totals"].items():
        mine = [e for e in entries if e["format"] == fmt]
        found = {"sequences": sum(e["sequences"] for e in mine), "tokens": sum(e["tokens"] for e in mine)}
        for key, value in found.items():
            if value != expected[key]:
                raise VerifyError(
                    f"manifest.json: tokenized.totals.{fmt}.{key} is {expected[key]}, its files add up to {value}. "
                    f"{REBUILD}"
                )


def _check_entry(
    release_dir: Path, entry: dict[str, Any], shard: dict[str, Any] | None, section: dict[str, Any]
) -> str | None:
    """The first disagreement of one tokenized shard with its files and its Parquet shard."""
    first = entry["files"][0]["path"]
    if shard is None:
        return f"{first}: its Parquet shard {entry['shard']} is not in the manifest"
    if entry["sequences"] != shard["rows"]:
        return f"{first}: {entry['sequences']} sequences, but {entry['shard']} has {shard['rows']} rows"
    if shard["tokens"] is not None and entry["tokens"] != shard["tokens"] + shard["rows"]:
        return f"{first}: {entry['tokens']} tokens, but {entry['shard']} has {shard['tokens']} + one end-of-document token per row ({shard['tokens'] + shard['rows']})"  # noqa: E501
    fmt, tokens, sequences = entry["format"], entry["tokens"], entry["sequences"]
    if fmt == MEGATRON:
        bin_path, idx_path = (release_dir / f["path"] for f in entry["files"])
        try:
            index = read_megatron_index(idx_path)
        except ValueError as exc:
            return f"{entry['files'][1]['path']} {exc}"
        size = index.dtype.itemsize
        if str(index.dtype) != section["dtype"][MEGATRON]:
            return f"{idx_path.name}: dtype {index.dtype}, the manifest says {section['dtype'][MEGATRON]}"
        if index.lengths.size != sequences or int(index.lengths.sum()) != tokens:
            return f"{idx_path.name}: {index.lengths.size} sequences of {int(index.lengths.sum())} tokens, the manifest says {sequences} of {tokens}"  # noqa: E501
        starts = (
            np.concatenate([[0], np.cumsum(index.lengths.astype(np.int64))[:-1]]) * size
            if sequences
            else np.zeros(0, np.int64)
        )
        if not np.array_equal(index.pointers, starts) or not np.array_equal(index.documents, np.arange(sequences + 1)):
            return f"{idx_path.name}: sequence pointers or document indices do not follow the sequence lengths"
        if bin_path.stat().st_size != tokens * size:
            return f"{entry['files'][0]['path']}: {bin_path.stat().st_size} bytes, its index needs {tokens * size} ({tokens} tokens x {size})"  # noqa: E501
    elif fmt == NANOTRON:
        ds, index_path, meta = (release_dir / f["path"] for f in entry["files"])
        size = section["token_bytes"]
        ends = np.fromfile(index_path, dtype="<u8")
        if (
            ends.size != sequences
            or (sequences and int(ends[-1]) != tokens)
            or (ends.size and (np.diff(ends.astype(np.int64)) <= 0).any())
        ):
            return f"{entry['files'][1]['path']}: {ends.size} document ends up to {int(ends[-1]) if ends.size else 0}, the manifest says {sequences} documents of {tokens} tokens"  # noqa: E501
        if ds.stat().st_size != tokens * size:
            return f"{entry['files'][0]['path']}: {ds.stat().st_size} bytes, its index needs {tokens * size} ({tokens} tokens x {size})"  # noqa: E501
        lines = meta.read_text(encoding="utf-8").splitlines()
        if len(lines) < 2 or not lines[0].endswith(f"|{size}") or lines[1] != str(tokens):
            return f"{entry['files'][2]['path']}: says {lines[:2]}, expected a tokenizer name ending |{size} and {tokens} tokens"  # noqa: E501
    else:  # the provenance index
        table = pq.read_table(release_dir / first, columns=["sequence", "token_start", "tokens"])
        starts, counts = table.column("token_start").to_numpy(), table.column("tokens").to_numpy().astype(np.int64)
        if (
            table.num_rows != sequences
            or int(counts.sum()) != tokens
            or not np.array_equal(starts, np.cumsum(counts) - counts)
        ):
            return f"{first}: {table.num_rows} rows of {int(counts.sum())} tokens with gaps or overlaps, the manifest says {sequences} sequences of {tokens} tokens"  # noqa: E501
    return None


def _check_rows(release_dir: Path, entry: dict[str, Any], lengths: np.ndarray, ids: list[str]) -> str | None:
    """Sequence by sequence: each holds its Parquet row's num_tokens + 1 tokens, in the
    Parquet order, and the provenance index names each row's id (sums alone would pass a
    permutation or a swapped file)."""
    fmt, first = entry["format"], entry["files"][0]["path"]
    if fmt == MEGATRON:
        found = read_megatron_index(release_dir / entry["files"][1]["path"]).lengths.astype(np.int64)
    elif fmt == NANOTRON:
        ends = np.fromfile(release_dir / entry["files"][1]["path"], dtype="<u8").astype(np.int64)
        found = np.diff(np.concatenate([[0], ends]))
    else:
        table = pq.read_table(release_dir / first, columns=["tokens", S.ID])
        if table.column(S.ID).to_pylist() != ids:
            return f"{first}: its ids are not those of {entry['shard']}, row by row"
        found = table.column("tokens").to_numpy().astype(np.int64)
    if not np.array_equal(found, lengths):
        bad = int(np.argmax(found != lengths)) if found.size == lengths.size else min(found.size, lengths.size)
        return f"{first}: sequence {bad} does not hold its row's num_tokens + 1 tokens (row {bad} of {entry['shard']})"
    return None


def lookup(release_dir: Path, file: str, token: int) -> dict[str, Any]:
    """The document that token `token` (0-based, in tokens) of tokenized file `file` belongs
    to. file: as listed in the manifest (megatron/train-00000-of-00004.bin), its name, a
    Megatron prefix (without .bin), or the Parquet shard."""
    release_dir = Path(release_dir)
    manifest_path = release_dir / "manifest.json"
    if not manifest_path.is_file():
        raise InputError(f"{manifest_path} not found. Fix: pass a release folder (OUTPUT/releases/NAME/VERSION)")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    section = manifest.get("tokenized")
    if not section:
        raise InputError(
            f"{release_dir} has no tokenized shards. Fix: build the release with release.formats=[parquet,megatron] "
            "(or nanotron)"
        )
    wanted = Path(file).as_posix().removeprefix(release_dir.as_posix() + "/")
    match = None
    for entry in section["shards"]:
        names = {f["path"] for f in entry["files"]} | {entry["shard"]}
        names |= (
            {Path(n).name for n in names}
            | {n.removesuffix(".bin") for n in names if n.endswith(".bin")}
            | {Path(n).name.removesuffix(".bin") for n in names if n.endswith(".bin")}
        )
        if (wanted in names or Path(wanted).name in names) and entry["format"] != INDEX_DIR:
            match = entry
            break
    if match is None:
        raise InputError(
            f"{file} is not a tokenized file of {release_dir}. Fix: pass --file as listed in its manifest.json, e.g. "
            f"{section['shards'][0]['files'][0]['path']}"
        )
    if not 0 <= token < match["tokens"]:
        raise InputError(
            f"token {token} is outside {match['files'][0]['path']} (tokens 0 to {match['tokens'] - 1}). Fix: pass "
            "--token within that range"
        )
    index_path = next(
        f["path"]
        for e in section["shards"]
        if e["format"] == INDEX_DIR and e["shard"] == match["shard"]
        for f in e["files"]
    )
    table = pq.read_table(release_dir / index_path)
    starts = table.column("token_start").to_numpy()
    row = int(np.searchsorted(starts, token, side="right")) - 1
    found = {k: v[0] for k, v in table.slice(row, 1).to_pydict().items()}
    return {
        "file": match["files"][0]["path"],
        "token": token,
        "shard": match["shard"],
        **found,
        "position": token - found["token_start"],
        "end_of_document": token == found["token_start"] + found["tokens"] - 1,
    }

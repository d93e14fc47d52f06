"""`curate verify DIR`: is this release exactly what its manifest says? Checks, in order, and
stops at the first problem (its message names the shard and the fix):

1. every listed shard exists and its sha256 matches (catches any changed byte);
2. no unlisted file sits in data/ (a loader globbing data/ would read it);
3. each shard's schema, row count and token sum match the manifest;
4. row, token and byte totals add up, per split and overall;
5. the tokenized shards (release.formats: megatron, nanotron), when there are any: checksums,
   sizes against their indexes, sequences and tokens against the Parquet shards
   (curate.release.tokenized_read);
6. ids are unique across the release (reads only the id column); in a release that repeats
   documents, (id, copy) is, and each id's copies are numbered 0, 1, ... without a gap."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curate.core import schema as S
from curate.core.errors import CurateError
from curate.core.parquet_io import sha256_file
from curate.release.schema import NUM_TOKENS, schema_json


class VerifyError(CurateError):
    """The release differs from its manifest; the message names the first difference."""


@dataclass
class Verified:
    shards: int
    rows: int
    tokens: int | None
    bytes: int
    tokenized: dict[str, int] | None = None  # tokens per trainer format (end-of-document tokens included)


REBUILD = "Fix: restore the release from a good copy, or rebuild it with `curate release`"


def check_listed_file(release_dir: Path, relative: str, sha256: str, name: str) -> None:
    """A file the manifest lists exists and has its listed sha256 (any changed byte fails,
    naming it as `name`): Parquet shards and tokenized files alike."""
    file = release_dir / relative
    if not file.is_file():
        raise VerifyError(f"{name} is missing (listed in manifest.json). {REBUILD}")
    digest = sha256_file(file)
    if digest != sha256:
        raise VerifyError(
            f"{name}: sha256 {digest[:16]}... does not match the manifest's {sha256[:16]}...; the file changed after "
            f"the release was built. {REBUILD}"
        )


def verify_release(release_dir: Path) -> Verified:
    release_dir = Path(release_dir)
    path = release_dir / "manifest.json"
    if not path.is_file():
        raise VerifyError(f"{path} not found. Fix: pass a release folder (OUTPUT/releases/NAME/VERSION)")
    try:
        manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        shards = manifest["shards"]
    except (ValueError, KeyError) as exc:
        raise VerifyError(
            f"{path} is not a release manifest ({exc}). Fix: rebuild the release with `curate release`"
        ) from None
    for shard in shards:
        check_listed_file(release_dir, shard["path"], shard["sha256"], f"shard {shard['path']}")

    listed = {Path(s["path"]).name for s in shards}
    data = release_dir / "data"
    extra = sorted(p.name for p in data.iterdir() if p.name not in listed) if data.is_dir() else []
    if extra:
        raise VerifyError(
            f"data/{extra[0]} is not listed in manifest.json; loaders that read data/ would include it. Fix: remove "
            "it, or rebuild the release"
        )

    counted = manifest.get("tokenizer") is not None
    for shard in shards:
        file = release_dir / shard["path"]
        pf = pq.ParquetFile(file)
        if schema_json(pf.schema_arrow) != manifest["schema"]:
            raise VerifyError(
                f"shard {shard['path']}: schema {_names(pf.schema_arrow)} differs from the manifest's "
                f"{[f['name'] for f in manifest['schema']]}. {REBUILD}"
            )
        if pf.metadata.num_rows != shard["rows"]:
            raise VerifyError(
                f"shard {shard['path']}: {pf.metadata.num_rows} rows, the manifest says {shard['rows']}. {REBUILD}"
            )
        if counted:
            tokens = pc.sum(pf.read(columns=[NUM_TOKENS]).column(0)).as_py() or 0
            if tokens != shard["tokens"]:
                raise VerifyError(
                    f"shard {shard['path']}: {tokens} tokens, the manifest says {shard['tokens']}. {REBUILD}"
                )

    found = Verified(
        len(shards),
        sum(s["rows"] for s in shards),
        sum(s["tokens"] for s in shards) if counted else None,
        sum(s["bytes"] for s in shards),
    )
    totals = manifest["totals"]
    for key in ("shards", "rows", "tokens", "bytes"):
        if getattr(found, key) != totals.get(key):
            raise VerifyError(
                f"manifest.json: totals.{key} is {totals.get(key)}, the shards add up to {getattr(found, key)}. "
                f"{REBUILD}"
            )
    for split, expected in manifest.get("splits", {}).items():
        rows = sum(s["rows"] for s in shards if s["split"] == split)
        if rows != expected["rows"]:
            raise VerifyError(
                f"manifest.json: splits.{split}.rows is {expected['rows']}, its shards add up to {rows}. {REBUILD}"
            )

    from curate.release.tokenized_read import verify_tokenized

    verify_tokenized(release_dir, manifest)
    _check_unique_ids(release_dir, shards)
    found.tokenized = (
        {fmt: t["tokens"] for fmt, t in manifest["tokenized"]["totals"].items()} if manifest.get("tokenized") else {}
    )
    return found


def _check_unique_ids(release_dir: Path, shards: list[dict[str, Any]]) -> None:
    import polars as pl

    files = [str(release_dir / s["path"]) for s in shards]
    if not files:
        return
    if S.COPY in pq.read_schema(files[0]).names:
        # Copies share their id: copy numbers 0..n-1 of an id, each once.
        bad = (
            pl.scan_parquet(files)
            .group_by(S.ID)
            .agg(pl.len().alias("n"), pl.col(S.COPY).n_unique().alias("u"), pl.col(S.COPY).max().alias("top"))
            .filter((pl.col("u") != pl.col("n")) | (pl.col("top") != pl.col("n") - 1))
            .sort(S.ID)
            .head(1)
            .collect()
        )
        if bad.height:
            ident, n = bad.row(0)[:2]
            raise VerifyError(
                f"id {ident!r} has {n} rows whose copy numbers are not 0 to {n - 1}, each once. Fix: rebuild the "
                "release with `curate release` (it numbers the copies of a repeated document)"
            )
        return
    dup = (
        pl.scan_parquet(files)
        .group_by(S.ID)
        .agg(pl.len().alias("n"))
        .filter(pl.col("n") > 1)
        .sort(S.ID)
        .head(1)
        .collect()
    )
    if dup.height:
        ident, n = dup.row(0)
        raise VerifyError(
            f"id {ident!r} appears {n} times; ids must be unique. Fix: rebuild the release with `curate release` (it "
            "refuses duplicate ids)"
        )


def _names(schema: pa.Schema) -> list[str]:
    return schema.names

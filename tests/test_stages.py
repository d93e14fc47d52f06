"""The Stage contract (curate.core.stages.Stage, flows.stages.STAGES) and the one write_output:
a new stage is one entry in the list; a stage's cache key chains on the one before it and
on its own sections only; every command's output ends with shards, ledger, manifest last."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest

from curate.config import CurateConfig
from curate.core import schema as S
from curate.core.layout import Layout, begin_output
from curate.core.ledger import write_ledger
from curate.core.parquet_io import write_table_atomic
from curate.core.stages import MARKER, Stage, StageOutput, _value, write_output
from flows import stages as pipeline


def test_stages_are_one_ordered_list_whose_sections_are_config_keys():
    assert [s.name for s in pipeline.STAGES] == ["annotate", "select", "hygiene", "dedup", "generate"]
    assert pipeline.STEPS == ("annotate", "select", "hygiene", "dedup", "generate", "write", "release")
    assert [s.name for s in pipeline.STAGES if s.first] == ["annotate"]  # only the first reads the input files
    cfg = CurateConfig()
    for stage in pipeline.STAGES:
        for section in stage.sections:
            _value(cfg, section)  # an AttributeError here: a section that keys nothing
    assert pipeline.stage_named("dedup").sections == ("dedup", "name")
    stages = "annotate, select, hygiene, dedup, generate"
    with pytest.raises(KeyError, match=f"no stage named 'nope'; the stages are {stages}"):
        pipeline.stage_named("nope")


def _documents(ids: list[str]) -> pa.Table:
    n = len(ids)
    columns = {S.ID: ids, S.TEXT: [f"text of {i}" for i in ids], S.SOURCE: ["src"] * n, S.OFFSET: list(range(n))}
    return pa.Table.from_pydict(columns).cast(pa.schema([S.DOCUMENT_SCHEMA.field(c) for c in columns]))


def _drop_first(cfg: CurateConfig, parts: list[Path], stage_dir: Path) -> tuple[list[Path], list[Path]]:
    """A toy stage: each part loses its first row to the ledger (stage `toy`)."""
    kept, ledger = [], []
    for i, part in enumerate(parts):
        frame = pl.read_parquet(part)
        out = write_table_atomic(frame.slice(1).to_arrow(), stage_dir / "kept" / f"{i:05d}.parquet")
        rows = frame.head(1).select(S.ID, pl.lit("toy").alias("stage"), pl.lit("toy_rule").alias("reason"))
        kept.append(out)
        ledger.append(write_ledger(rows, stage_dir / "ledger" / f"toy-{i:05d}.parquet"))
    return kept, ledger


TOY = Stage("toy", ("dedup.seed",), _drop_first, enabled=lambda cfg: cfg.dedup.enabled)


def test_a_stage_chains_its_key_reuses_its_work_and_passes_through_when_off(tmp_path: Path):
    part = write_table_atomic(_documents(["a", "b", "c"]), tmp_path / "in" / "00000.parquet")
    previous = StageOutput("select", "prev-key", [str(part)], [])
    cfg = CurateConfig()

    first = TOY.run(cfg, tmp_path / "_work", previous.parts, previous)
    assert (first.stage, first.reused) == ("toy", False)
    assert (tmp_path / "_work" / f"toy-{first.key}" / MARKER).is_file()
    assert pl.read_parquet(first.parts[0])[S.ID].to_list() == ["b", "c"]
    assert pl.read_parquet(first.ledger[0])["reason"].to_list() == ["toy_rule"]

    again = TOY.run(cfg, tmp_path / "_work", previous.parts, previous)
    assert (again.key, again.reused, again.parts) == (first.key, True, first.parts)
    # Another value of its own section: another key; of a section it does not read: the same.
    reseeded = cfg.model_copy(update={"dedup": cfg.dedup.model_copy(update={"seed": 2})})
    assert TOY.key(reseeded, "prev-key", []) != first.key
    assert TOY.key(cfg.model_copy(update={"name": "other"}), "prev-key", []) == first.key
    assert TOY.key(cfg, "another-previous-key", []) != first.key  # a changed earlier stage reruns it

    off = TOY.run(CurateConfig(dedup={"enabled": False}), tmp_path / "_work", previous.parts, previous)
    assert (off.key, off.parts, off.ledger, off.reused) == ("prev-key", previous.parts, [], True)


@pytest.mark.slow
def test_a_new_stage_is_one_entry_in_the_list(run_curate, config_file, inputs, texts, tmp_path: Path, monkeypatch):
    """The flow runs a stage added to STAGES: its folder, its ledger rows, its timing."""
    stages = list(pipeline.STAGES)
    stages.insert(2, TOY)  # after select
    monkeypatch.setattr(pipeline, "STAGES", tuple(stages))
    source = inputs.jsonl("in.jsonl", [{"id": "good", "text": texts.GOOD}, {"id": "water", "text": texts.WATER}])
    run = run_curate(config_file(tmp_path / "recipe.yaml", name="toy-stage"), [source], tmp_path / "out")
    assert len(list((run.root / "_work").glob("toy-*"))) == 1
    assert {"stage": "toy", "reason": "toy_rule", "documents": 1} in run.manifest["counts"]["by_reason"]
    counts = run.manifest["counts"]
    assert [s["stage"] for s in counts["stages"]] == ["annotate", "select", "toy", "hygiene", "dedup", "generate"]
    assert counts["kept"] + counts["rejected"] == counts["ingested"] == 2


def test_write_output_writes_shards_then_ledger_then_the_manifest_last(tmp_path: Path):
    cfg = CurateConfig()
    work = tmp_path / "work"
    part = write_table_atomic(_documents(["a", "b"]), work / "kept.parquet")
    rows = pl.DataFrame({S.ID: ["c"], "stage": ["toy"], "reason": ["toy_rule"]})
    ledger = write_ledger(rows, work / "toy-00000.parquet")
    layout = begin_output(tmp_path / "out", cfg.to_yaml().encode())
    (layout.rejected / "select-00007.parquet").write_bytes(b"an earlier run's ledger part")

    def seen(lay: Layout) -> dict[str, list[str]]:
        return {"seen": sorted(p.name for p in lay.rejected.iterdir())}

    side = {"extra.json": b"{}\n"}
    manifest_path = write_output(cfg, layout, [part], [ledger], 3, ["in.jsonl"], seen, side_files=side)

    manifest = json.loads(manifest_path.read_text())
    assert manifest_path == layout.manifest
    assert [p.name for p in layout.rejected.iterdir()] == ["toy-00000.parquet"]  # the stale part is gone
    assert manifest["counts"]["seen"] == ["toy-00000.parquet"]  # more_counts reads the gathered ledger
    assert (manifest["counts"]["ingested"], manifest["counts"]["kept"], manifest["counts"]["rejected"]) == (3, 2, 1)
    assert manifest["inputs"] == ["in.jsonl"] and manifest["skipped_inputs"] == []
    assert (layout.root / "extra.json").read_bytes() == b"{}\n"
    written = [p.stat().st_mtime_ns for p in layout.root.rglob("*") if p.is_file()]
    assert layout.manifest.stat().st_mtime_ns == max(written)  # the manifest came last


def test_write_output_writes_no_manifest_when_the_ledger_does_not_add_up(tmp_path: Path):
    cfg = CurateConfig()
    part = write_table_atomic(_documents(["a", "b"]), tmp_path / "kept.parquet")
    layout = begin_output(tmp_path / "out", cfg.to_yaml().encode())
    with pytest.raises(RuntimeError, match=r"ledger invariant broken: kept 2 \+ rejected 0 != ingested 5"):
        write_output(cfg, layout, [part], [], 5, [])
    assert not layout.manifest.exists()

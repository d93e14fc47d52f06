"""`curate verify`, `curate stats`, `curate diff` and `curate release` on the command line
(curate.cli.main, the entries of its command table that curate.release.cli provides)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from bench.bench_release import word_tokenizer, write_parts
from curate.cli import main
from curate.config import CurateConfig
from curate.core.shards import OutputConfig, write_manifest, write_shards
from curate.release.build import build_release
from curate.release.config import ReleaseConfig


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("verify")
    web = write_parts(root / "web", docs=900, parts=3, seed=4)
    tok = word_tokenizer(root / "tok")
    release = build_release(
        CurateConfig(name="r"),
        web,
        [],
        release=ReleaseConfig(tokenizer=str(tok), shard_target_mb=0.2, plots=False),
        output_root=root / "out",
    )
    return {"root": root, "release": release, "tok": tok, "web": web}  # type: ignore[dict-item]


@pytest.fixture
def release(made: dict[str, Path], tmp_path: Path) -> Path:
    """A private copy: these tests damage it."""
    return Path(shutil.copytree(made["release"], tmp_path / "v1"))


def shards(release: Path) -> list[dict]:
    return json.loads((release / "manifest.json").read_text())["shards"]


def test_verify_passes_on_a_fresh_release(release: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = json.loads((release / "manifest.json").read_text())
    assert main(["verify", str(release)]) == 0
    out = capsys.readouterr().out.replace("\n", "")
    assert f"{manifest['totals']['rows']:,} documents" in out and f"{manifest['totals']['tokens']:,} tokens" in out


def test_one_changed_byte_fails_naming_the_shard(release: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shard = shards(release)[1]
    path = release / shard["path"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    from curate.core.parquet_io import sha256_file

    assert main(["verify", str(release)]) == 1
    err = capsys.readouterr().err
    assert err == (
        f"FAILED {release}: shard {shard['path']}: sha256 {sha256_file(path)[:16]}... does not match the manifest's "
        f"{shard['sha256'][:16]}...; "
        "the file changed after the release was built. Fix: restore the release from a good copy, or rebuild it with "
        "`curate release`\n"
    )


def test_a_removed_shard_fails_naming_it(release: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shard = shards(release)[-1]
    (release / shard["path"]).unlink()
    assert main(["verify", str(release)]) == 1
    assert capsys.readouterr().err == (
        f"FAILED {release}: shard {shard['path']} is missing (listed in manifest.json). Fix: restore the release from "
        "a good copy, or rebuild it with `curate release`\n"
    )


def test_an_unlisted_file_fails(release: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copy(release / shards(release)[0]["path"], release / "data" / "train-00099-of-00099.parquet")
    assert main(["verify", str(release)]) == 1
    assert "data/train-00099-of-00099.parquet is not listed in manifest.json" in capsys.readouterr().err


def test_a_wrong_token_total_fails(release: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = json.loads((release / "manifest.json").read_text())
    manifest["shards"][0]["tokens"] += 1
    (release / "manifest.json").write_text(json.dumps(manifest))
    assert main(["verify", str(release)]) == 1
    real = manifest["shards"][0]["tokens"] - 1
    assert (
        f"shard {manifest['shards'][0]['path']}: {real} tokens, the manifest says {real + 1}."
        in capsys.readouterr().err
    )


def test_duplicate_ids_fail(release: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A shard rewritten with a copied id (and its manifest entry updated to match)."""
    from curate.core.parquet_io import sha256_file

    manifest = json.loads((release / "manifest.json").read_text())
    entry = manifest["shards"][0]
    path = release / entry["path"]
    table = pq.read_table(path)
    ids = table.column("id").to_pylist()
    ids[1] = ids[0]
    import pyarrow as pa

    pq.write_table(table.set_column(0, table.schema.field("id"), pa.array(ids, pa.string())), path)
    entry["sha256"], entry["bytes"] = sha256_file(path), path.stat().st_size
    manifest["totals"]["bytes"] = sum(s["bytes"] for s in manifest["shards"])
    (release / "manifest.json").write_text(json.dumps(manifest))
    assert main(["verify", str(release)]) == 1
    assert f"id {ids[0]!r} appears 2 times; ids must be unique." in capsys.readouterr().err


def test_stats_prints_the_card_tables(made: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stats", str(made["release"])]) == 0
    out = capsys.readouterr().out
    manifest = json.loads((made["release"] / "manifest.json").read_text())
    for title in ("Release r v1", "Splits", "Funnel", "Mix", "Languages", "Length and quality"):
        assert title in out
    assert f"{manifest['totals']['tokens']:,}" in out


def test_diff_counts_added_removed_and_tokens(
    made: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """B drops the first input part and adds a new one: the diff must match the id sets."""
    import polars as pl

    new = write_parts(tmp_path / "new", docs=200, parts=1, seed=9, prefix="new")
    b = build_release(
        CurateConfig(name="r"),
        made["web"][1:] + new,
        [],
        release=ReleaseConfig(tokenizer=str(made["tok"]), plots=False),
        output_root=tmp_path,
    )
    from curate.release.diff import diff_releases

    result = diff_releases(made["release"], b)
    read = lambda path: pl.read_parquet(path / "data", columns=["id", "num_tokens"])  # noqa: E731
    a_rows, b_rows = read(made["release"]), read(b)
    removed = a_rows.join(b_rows.select("id"), on="id", how="anti")
    added = b_rows.join(a_rows.select("id"), on="id", how="anti")
    assert result["removed"] == {"documents": removed.height, "tokens": int(removed["num_tokens"].sum())}
    assert result["added"] == {"documents": added.height, "tokens": int(added["num_tokens"].sum())}
    assert removed.height == pq.ParquetFile(made["web"][0]).metadata.num_rows and added.height == 200
    assert result["token_delta"] == int(b_rows["num_tokens"].sum() - a_rows["num_tokens"].sum())
    assert main(["diff", str(made["release"]), str(b)]) == 0
    out = capsys.readouterr().out
    assert f"{result['token_delta']:+,}" in out and f"{added.height:,}" in out


def test_release_command_from_a_run_folder(
    made: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "run"
    infos = write_shards(made["web"], run, OutputConfig())
    kept = sum(s.rows for s in infos)
    write_manifest(run, infos, "h", "crawl-47", ["x"], {"ingested": kept, "kept": kept, "rejected": 0, "by_reason": []})
    args = ["release", str(run), "--name", "crawl", "--version", "2024.06"]
    if "release" in CurateConfig.model_fields:  # the recipe's release section, set from the command line
        args += ["--set", f"release.tokenizer={made['tok']}"]
    else:  # before curate.config gathers the section: its defaults, with the test tokenizer
        import curate.release.build as build

        monkeypatch.setattr(build, "release_config", lambda cfg: ReleaseConfig(tokenizer=str(made["tok"])))
    assert main(args) == 0
    release = run / "releases" / "crawl" / "2024.06"
    assert f"-> {release}" in capsys.readouterr().out.replace("\n", "")
    assert main(["verify", str(release)]) == 0
    assert main(args) == 2  # the same version again
    assert "release crawl 2024.06 already exists" in capsys.readouterr().err


def test_release_command_needs_an_output_for_loose_parts(
    made: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["release", str(made["web"][0])]) == 2
    assert capsys.readouterr().err == (
        "error: no output folder: the inputs are not a `curate run` output folder. Fix: pass --output FOLDER (the "
        "release goes to FOLDER/releases/NAME/VERSION)\n"
    )


def test_bad_version_names_the_fix(made: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["release", str(made["web"][0]), "--output", str(tmp_path), "--version", "v 2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: release.version='v 2': String should match pattern")
    assert err.endswith("Fix: use letters, digits, '.', '_' and '-', starting with a letter or digit (e.g. v3)\n")

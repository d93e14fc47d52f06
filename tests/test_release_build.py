"""Building releases: loaders agree with the manifest, same inputs give the same bytes,
versions never overwrite, mixing with synthetic documents, the card and its plots.

Inputs are DOCUMENT_SCHEMA parts of real text (../shared/data, recombined by
bench.bench_release); token counts use a small word-level tokenizer made here, so the
expected counts are computable independently (the SmolLM2 tokenizer: test_release_e2e)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from bench.bench_release import word_tokenizer, write_parts
from curate.config import CurateConfig
from curate.core import schema as S
from curate.core.errors import ConfigError, InputError
from curate.release.build import build_release
from curate.release.card import card_markdown
from curate.release.config import MixConfig, ReleaseConfig
from curate.release.tables import num
from curate.release.tokens import TokenCounter


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("release-data")
    return {
        "web": write_parts(root / "web", docs=1200, parts=3, seed=1, prefix="web"),
        "syn": write_parts(root / "syn", docs=500, parts=1, seed=2, prefix="syn", synthetic=True),
        "tokenizer": word_tokenizer(root / "tok"),
    }


def rcfg(data: dict, **kwargs: object) -> ReleaseConfig:
    base = {"tokenizer": str(data["tokenizer"]), "shard_target_mb": 0.3, "row_group_mb": 0.1, "plots": False}
    return ReleaseConfig(**(base | kwargs))


def build(data: dict, root: Path, synthetic: bool = False, **kwargs: object) -> Path:
    return build_release(
        CurateConfig(name="t"),
        data["web"],
        data["syn"] if synthetic else [],
        release=rcfg(data, **kwargs),
        output_root=root,
    )


def expected_tokens(texts: list[str]) -> int:
    """The word-level tokenizer gives one token per piece of its pre-tokenizer, one text at a
    time (the release counts in batches)."""
    from tokenizers.pre_tokenizers import Whitespace

    split = Whitespace()
    return sum(len(split.pre_tokenize_str(t)) for t in texts)


@pytest.mark.slow
def test_loaders_count_what_the_manifest_says(data: dict, tmp_path: Path) -> None:
    release = build(data, tmp_path, synthetic=True, mix=MixConfig(validation_fraction=0.1))
    manifest = json.loads((release / "manifest.json").read_text())
    assert manifest["totals"]["shards"] > 2 and set(manifest["splits"]) == {"train", "validation"}
    inputs = pa.concat_tables([pq.read_table(p) for p in data["web"] + data["syn"]], promote_options="default")
    assert manifest["totals"]["rows"] == inputs.num_rows
    assert manifest["totals"]["tokens"] == expected_tokens(inputs.column("text").to_pylist())

    files = {s: sorted(str(p) for p in (release / "data").glob(f"{s}-*.parquet")) for s in manifest["splits"]}
    for split, expected in manifest["splits"].items():
        table = ds.dataset(files[split], format="parquet").to_table(columns=["id", "num_tokens"])
        assert (table.num_rows, pa.compute.sum(table["num_tokens"]).as_py()) == (expected["rows"], expected["tokens"])
        frame = pl.scan_parquet(files[split]).select(pl.len(), pl.col("num_tokens").sum()).collect()
        assert frame.row(0) == (expected["rows"], expected["tokens"])

    from datasets import load_dataset

    cache = str(tmp_path / "hf-cache")
    loaded = load_dataset("parquet", data_files=files, cache_dir=cache)
    for split, expected in manifest["splits"].items():
        assert (loaded[split].num_rows, sum(loaded[split]["num_tokens"])) == (expected["rows"], expected["tokens"])
    stream = load_dataset("parquet", data_files=files, split="train", streaming=True)
    rows = tokens = 0
    for row in stream:
        rows += 1
        tokens += row["num_tokens"]
    assert (rows, tokens) == (manifest["splits"]["train"]["rows"], manifest["splits"]["train"]["tokens"])
    # The card's front matter names the splits, so loading the folder itself works too.
    by_folder = load_dataset(str(release), cache_dir=cache)
    assert {s: by_folder[s].num_rows for s in by_folder} == {s: v["rows"] for s, v in manifest["splits"].items()}


def test_shards_are_shuffled_sized_and_streamable(data: dict, tmp_path: Path) -> None:
    release = build(data, tmp_path)
    manifest = json.loads((release / "manifest.json").read_text())
    names = [Path(s["path"]).name for s in manifest["shards"]]
    count = len(names)
    assert count > 1 and names == [f"train-{i:05d}-of-{count:05d}.parquet" for i in range(count)]
    first = pq.ParquetFile(release / manifest["shards"][0]["path"])
    # Written as string_view without the Arrow schema in the footer: readers must still see
    # exactly the document schema (string columns, nullability) from the Parquet types.
    assert first.schema_arrow.equals(S.DOCUMENT_SCHEMA) and pl.read_parquet(
        release / manifest["shards"][0]["path"]
    ).schema == pl.Schema(S.DOCUMENT_SCHEMA)
    assert first.metadata.num_row_groups > 1  # row_group_mb=0.1 cuts each shard into groups
    assert first.metadata.row_group(0).column(0).compression == "ZSTD"
    ids = pl.scan_parquet([str(release / s["path"]) for s in manifest["shards"]]).select("id").collect()["id"].to_list()
    inputs = pl.concat([pl.read_parquet(p, columns=["id"]) for p in data["web"]])["id"].to_list()
    assert sorted(ids) == sorted(inputs) and ids != inputs


TOLERANCE = 0.05  # of the target, plus one document: a shard ends between two documents


@pytest.mark.parametrize(("target_mb", "row_group_mb"), [(0.1, 0.1), (0.06, 0.25), (0.3, 0.03)])
def test_shards_land_at_the_target_size(data: dict, tmp_path: Path, target_mb: float, row_group_mb: float) -> None:
    """Every shard but the last is within TOLERANCE of release.shard_target_mb plus the
    compressed size of the largest document (real lengths are heavy-tailed: here one document
    is up to ~20% of a 100 KB shard; at the default 256 MB it is nothing), whether row groups
    are smaller or larger than a shard (then they are cut where the shard is full); the last
    holds the rest. The inputs' own compressed size does not decide the shard count."""
    release = build(
        data, tmp_path, synthetic=True, shard_target_mb=target_mb, row_group_mb=row_group_mb, count_tokens=False
    )
    shards = json.loads((release / "manifest.json").read_text())["shards"]
    sizes = [(release / s["path"]).stat().st_size for s in shards]
    assert sizes == [s["bytes"] for s in shards] and len(sizes) >= 3
    text = pl.read_parquet(release / "data", columns=["text"])["text"].str.len_bytes()
    one_document = int(text.max()) * sum(sizes) / int(text.sum())  # at the release's compression ratio
    target = target_mb * 1e6
    assert all(abs(size - target) <= TOLERANCE * target + one_document for size in sizes[:-1]), (sizes, one_document)
    assert 0 < sizes[-1] <= (1 + TOLERANCE) * target + one_document
    rows = [pq.ParquetFile(release / s["path"]).metadata.num_rows for s in shards]
    assert rows == [s["rows"] for s in shards] and sum(rows) == 1700


def test_same_inputs_same_bytes_in_memory_or_spilled(data: dict, tmp_path: Path) -> None:
    in_memory = build(data, tmp_path / "a", synthetic=True)
    spilled = build(data, tmp_path / "b", synthetic=True, shuffle_memory_mb=0.5)  # several groups
    shards = lambda path: [(s["path"], s["sha256"]) for s in json.loads((path / "manifest.json").read_text())["shards"]]  # noqa: E731
    assert len(shards(in_memory)) > 2
    assert shards(in_memory) == shards(spilled)
    assert not list((tmp_path / "b").rglob("*.arrow"))  # spill files are gone
    other_seed = build(data, tmp_path / "c", synthetic=True, mix=MixConfig(seed=1))
    assert shards(other_seed) != shards(in_memory)


def test_same_bytes_and_stats_whatever_the_number_of_threads(
    data: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shards are planned before they are written and several are compressed at once; stats
    arrive from several threads in any order. One thread, three threads and a spilled shuffle
    give the same shards and the same stats.json, byte for byte."""
    import curate.release.shuffle as shuffle
    import curate.release.writer as writer

    def release(root: Path, threads: int, **kwargs: object) -> tuple[list[tuple[str, str]], str]:
        monkeypatch.setattr(writer, "WRITE_THREADS", threads)
        monkeypatch.setattr(shuffle, "READ_THREADS", threads)
        path = build(data, root, synthetic=True, mix=MixConfig(validation_fraction=0.1), **kwargs)
        shards = [(s["path"], s["sha256"]) for s in json.loads((path / "manifest.json").read_text())["shards"]]
        return shards, (path / "stats.json").read_text()

    one = release(tmp_path / "one", 1)
    three = release(tmp_path / "three", 3)
    spilled = release(tmp_path / "spilled", 3, shuffle_memory_mb=0.5)
    assert len(one[0]) > 3 and any(p.startswith("data/validation-") for p, _ in one[0])
    assert three == one
    assert spilled == one
    stats = json.loads(one[1])
    assert list(stats["splits"]) == ["validation", "train"] and stats["sample_rows"] == 1700


def test_versions_increment_and_never_overwrite(data: dict, tmp_path: Path) -> None:
    first, second = build(data, tmp_path), build(data, tmp_path)
    assert (first.name, second.name) == ("v1", "v2")
    named = build(data, tmp_path, version="2024-06")
    assert named.name == "2024-06"
    before = (first / "manifest.json").read_bytes()
    with pytest.raises(ConfigError) as err:
        build(data, tmp_path, version="v1")
    assert str(err.value) == (
        f"release t v1 already exists at {first}; releases are never overwritten. "
        "Fix: set release.version to a new version (or leave it empty for the next one, v3)"
    )
    assert (first / "manifest.json").read_bytes() == before
    assert sorted(p.name for p in first.parent.iterdir()) == [".lock", "2024-06", "v1", "v2"]  # no staging left


def test_synthetic_fraction_by_tokens(data: dict, tmp_path: Path) -> None:
    release = build(data, tmp_path, synthetic=True, mix=MixConfig(synthetic_fraction=0.2))
    manifest = json.loads((release / "manifest.json").read_text())
    table = pl.read_parquet(release / "data")
    syn_tokens = int(table.filter(pl.col("synthetic"))["num_tokens"].sum())
    total = int(table["num_tokens"].sum())
    assert total == manifest["totals"]["tokens"]
    assert abs(syn_tokens / total - 0.2) < 0.01
    assert (
        table["synthetic"].sum()
        == manifest["mix"]["selected"]["synthetic"]["documents"]
        == manifest["totals"]["synthetic_rows"]
    )
    syn_ids = set(pl.read_parquet(data["syn"][0], columns=["id"])["id"])
    assert set(table.filter(pl.col("synthetic"))["id"]) <= syn_ids


def test_token_budget_is_respected(data: dict, tmp_path: Path) -> None:
    release = build(data, tmp_path, synthetic=True, mix=MixConfig(budget=50_000, synthetic_fraction=0.5))
    table = pl.read_parquet(release / "data")
    assert 50_000 - 2 * table["num_tokens"].max() < table["num_tokens"].sum() <= 50_000


def test_duplicate_ids_fail_naming_both_parts(data: dict, tmp_path: Path) -> None:
    with pytest.raises(InputError) as err:
        build_release(
            CurateConfig(name="t"), data["web"][:1], data["web"][:1], release=rcfg(data), output_root=tmp_path
        )
    smallest = min(pq.read_table(data["web"][0], columns=["id"]).column(0).to_pylist())  # the first, sorted
    part = data["web"][0]
    assert (
        str(err.value)
        == f"id '{smallest}' appears 2 times (in {part} and {part}); a release needs unique ids. Fix: pass each input once, or give synthetic documents their own ids"  # noqa: E501
    )


def test_part_without_text_column_fails(data: dict, tmp_path: Path) -> None:
    bad = tmp_path / "bad.parquet"
    pq.write_table(pq.read_table(data["web"][0]).drop_columns(["text"]), bad)
    with pytest.raises(InputError) as err:
        build_release(CurateConfig(name="t"), [bad], [], release=rcfg(data), output_root=tmp_path)
    assert (
        str(err.value)
        == f"{bad} has no column 'text'. Fix: pass Parquet parts with curate's document schema (curate/core/schema.py)"
    )


def test_missing_tokenizer_fails_naming_the_key(data: dict, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        TokenCounter.load(str(tmp_path / "nope"))
    assert str(err.value) == (
        f"release.tokenizer: {tmp_path / 'nope'} not found. Fix: set release.tokenizer to a Hugging Face tokenizer "
        "folder "
        "(with tokenizer.json) or a tokenizer.json file, or to 'default' for SmolLM2's"
    )


def test_without_token_counts(data: dict, tmp_path: Path) -> None:
    release = build(data, tmp_path, count_tokens=False)
    manifest = json.loads((release / "manifest.json").read_text())
    assert manifest["totals"]["tokens"] is None and manifest["tokenizer"] is None
    assert pl.read_parquet(release / "data")["num_tokens"].null_count() == manifest["totals"]["rows"]


@pytest.mark.slow
def test_card_and_plots_from_the_run(data: dict, tmp_path: Path) -> None:
    """A run-like output folder (curate.core.shards writes it, with counts), released with plots."""
    from curate.core.shards import OutputConfig, write_manifest, write_shards
    from curate.release.build import build_release_from_run

    run = tmp_path / "run"
    shards = write_shards(data["web"], run, OutputConfig())
    kept = sum(s.rows for s in shards)
    by_reason = [
        {"stage": "language", "reason": "low_language_score", "documents": 311},
        {"stage": "ingest", "reason": "malformed_json", "documents": 7},
    ]
    counts = {"ingested": kept + 318, "kept": kept, "rejected": 318, "by_reason": by_reason}
    write_manifest(run, shards, "abc", "weekly", ["in.jsonl"], counts)
    cfg = CurateConfig(name="weekly")
    release = build_release_from_run(cfg, run, data["syn"], release=rcfg(data, plots=True))
    assert release == run / "releases" / "weekly" / "v1"
    card = card_markdown(release)
    assert f"| ingested |  |  | {kept + 318:,} | 100.0% |" in card
    assert f"| ingest | 7 |  | {kept + 311:,} |" in card
    assert f"| language | 311 |  | {kept:,} |" in card
    assert f"| + synthetic |  | 500 | {kept + 500:,} |" in card
    assert "| language | low_language_score | 311 |" in card
    assert (release / "README.md").read_text().startswith("---\nconfigs:\n")
    assert card in (release / "README.md").read_text()
    import matplotlib.image as mpimg

    for name in ("funnel.png", "languages.png", "length.png", "quality.png"):
        assert f"]({name})" in card
        pixels = mpimg.imread(release / name)
        assert pixels.shape[0] > 300 and pixels.shape[1] > 500
        assert np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0).shape[0] > 10  # drawn, not blank
    stats = json.loads((release / "stats.json").read_text())
    langs = pl.read_parquet(release / "data")["lang"].value_counts()
    assert {k: v["documents"] for k, v in stats["languages"].items()} == dict(zip(langs["lang"], langs["count"]))


def test_empty_inputs_give_one_empty_verified_shard(data: dict, tmp_path: Path) -> None:
    from curate.release.verify import verify_release

    empty = tmp_path / "empty.parquet"
    pq.write_table(pq.read_table(data["web"][0]).slice(0, 0), empty)
    release = build_release(CurateConfig(name="t"), [empty], [], release=rcfg(data, plots=True), output_root=tmp_path)
    manifest = json.loads((release / "manifest.json").read_text())
    assert [s["path"] for s in manifest["shards"]] == ["data/train-00000-of-00001.parquet"]
    assert (manifest["totals"]["rows"], manifest["totals"]["tokens"]) == (0, 0)
    assert verify_release(release).rows == 0
    assert pq.read_schema(release / manifest["shards"][0]["path"]).names == [f["name"] for f in manifest["schema"]]
    assert "| documents | 0 |" in card_markdown(release)


def test_synthetic_rows_of_a_run_are_mixed_as_synthetic(data: dict, tmp_path: Path) -> None:
    """`curate run` with generation writes synthetic documents (synthetic=true) into the same
    shards as web ones. Its release step (build_release_from_run) and `curate release RUN`
    tell them apart by that column, so mix ratios work without --synthetic."""
    from curate.cli import main as release_main
    from curate.core.shards import OutputConfig, write_manifest, write_shards
    from curate.release.build import build_release_from_run

    run = tmp_path / "run"
    # Web rows of a run carry synthetic=null (the curation stages never set it).
    web0 = pq.read_table(data["web"][0])
    null_flags = tmp_path / "web-null.parquet"
    pq.write_table(
        web0.set_column(web0.schema.get_field_index("synthetic"), "synthetic", pa.nulls(web0.num_rows, pa.bool_())),
        null_flags,
    )
    # Web and synthetic rows interleaved across the run's shards, as one document schema.
    shards = write_shards([null_flags, data["syn"][0], *data["web"][1:]], run, OutputConfig(shard_target_mb=0.2))
    assert len(shards) > 1 and pl.read_parquet(run / shards[0].path)["synthetic"].unique().to_list() in (
        [None, True],
        [True, None],
    )
    write_manifest(
        run, shards, "abc", "gen", ["in.jsonl"], {"ingested": 1700, "kept": 1700, "rejected": 0, "by_reason": []}
    )
    syn_ids = set(pl.read_parquet(data["syn"][0], columns=["id"])["id"])

    def check(release: Path) -> None:
        manifest = json.loads((release / "manifest.json").read_text())
        assert manifest["mix"]["available"]["web"]["documents"] == 1200
        assert manifest["mix"]["available"]["synthetic"]["documents"] == 500
        table = pl.read_parquet(release / "data")
        assert (
            set(table.filter(pl.col("synthetic"))["id"]) <= syn_ids
            and not set(table.filter(~pl.col("synthetic"))["id"]) & syn_ids
        )
        syn_tokens = int(table.filter(pl.col("synthetic"))["num_tokens"].sum())
        assert abs(syn_tokens / int(table["num_tokens"].sum()) - 0.2) < 0.01
        assert (
            manifest["mix"]["selected"]["synthetic"]["documents"]
            == table["synthetic"].sum()
            == manifest["totals"]["synthetic_rows"]
        )
        assert sum(p["synthetic_rows"] for p in manifest["inputs"]["parts"]) == 500 and not any(
            p["synthetic"] for p in manifest["inputs"]["parts"]
        )
        assert (
            f"- web (curated): {len(shards)} part(s), 1,700 documents (500 of them synthetic, generated in the run),"
            in card_markdown(release)
        )

    check(
        build_release_from_run(CurateConfig(name="gen"), run, release=rcfg(data, mix=MixConfig(synthetic_fraction=0.2)))
    )
    sets = [
        "release.mix.synthetic_fraction=0.2",
        f"release.tokenizer={data['tokenizer']}",
        "release.plots=false",
        "release.shard_target_mb=0.3",
    ]
    assert release_main(["release", str(run), *[a for kv in sets for a in ("--set", kv)]]) == 0
    check(run / "releases" / "gen" / "v2")


def bucketed_parts(data: dict, folder: Path) -> list[Path]:
    """The web parts with quality_bucket filled from their stand-in quality_score (x 20)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for part in data["web"]:
        table = pq.read_table(part)
        score = table.column(S.QUALITY_SCORE).to_numpy()
        bucket = pa.array(np.minimum(score * 20, 19).astype(np.int8), pa.int8())
        table = table.set_column(
            table.schema.get_field_index(S.QUALITY_BUCKET), table.schema.field(S.QUALITY_BUCKET), bucket
        )
        pq.write_table(table, folder / part.name)
        out.append(folder / part.name)
    return out


@pytest.mark.slow
def test_repeated_buckets_are_copies_counted_and_never_in_validation(data: dict, tmp_path: Path) -> None:
    from curate.release.verify import verify_release

    parts = bucketed_parts(data, tmp_path / "parts")
    mix = MixConfig(bucket_weights={5: 3, 6: 2.5, 0: 0}, validation_fraction=0.1)
    release = rcfg(data, mix=mix)

    def make(root: Path, **kwargs: object) -> Path:
        return build_release(
            CurateConfig(name="t"), parts, [], release=release.model_copy(update=kwargs), output_root=root
        )

    folder = make(tmp_path / "a")
    spilled = make(tmp_path / "b", shuffle_memory_mb=0.5)
    manifest = json.loads((folder / "manifest.json").read_text())
    shards = lambda m: [(s["path"], s["sha256"]) for s in m["shards"]]  # noqa: E731
    assert shards(manifest) == shards(json.loads((spilled / "manifest.json").read_text()))  # same bytes
    assert verify_release(folder).rows == manifest["totals"]["rows"]
    assert pq.read_schema(folder / manifest["shards"][0]["path"]) == S.DOCUMENT_SCHEMA.append(S.COPY_FIELD)

    frames = {
        split: pl.read_parquet([str(folder / s["path"]) for s in manifest["shards"] if s["split"] == split])
        for split in ("train", "validation")
    }
    train, validation = frames["train"], frames["validation"]
    assert validation[S.ID].n_unique() == validation.height and set(validation[S.COPY]) == {0}
    assert not set(validation[S.ID]) & set(train[S.ID])  # no document of validation has a copy in train
    every = pl.concat([validation, train])
    assert (
        every.filter(pl.col(S.COPY) == 0).height == every[S.ID].n_unique() == manifest["totals"]["distinct_documents"]
    )
    per_id = train.group_by(S.ID).agg(pl.len().alias("n"), pl.col(S.QUALITY_BUCKET).first())
    assert set(per_id.filter(pl.col(S.QUALITY_BUCKET) == 5)["n"]) == {3}
    assert set(per_id.filter(pl.col(S.QUALITY_BUCKET) == 6)["n"]) == {2, 3}
    assert set(per_id.filter(pl.col(S.QUALITY_BUCKET) == 7)["n"]) == {1}
    assert 0 not in set(every[S.QUALITY_BUCKET])
    # Per bucket in the manifest: distinct documents, rows and tokens with copies.
    for bucket in (5, 6, 7):
        rows = every.filter(pl.col(S.QUALITY_BUCKET) == bucket)
        assert manifest["mix"]["buckets"][str(bucket)] == {
            "documents": rows[S.ID].n_unique(),
            "rows": rows.height,
            "tokens": int(rows[S.NUM_TOKENS].sum()),
        }
    selected = manifest["mix"]["selected"]["web"]
    assert (selected["documents"], selected["rows"]) == (every[S.ID].n_unique(), every.height)
    assert manifest["mix"]["bucket_weights"] == {"0": 0.0, "5": 3.0, "6": 2.5}
    # Validation documents of bucket 5 leave out 2 copies each, of bucket 6 one or two.
    in_validation = {b: validation.filter(pl.col(S.QUALITY_BUCKET) == b).height for b in (5, 6)}
    assert in_validation[5] > 0 and in_validation[6] > 0
    dropped = manifest["mix"]["validation_copies_dropped"]
    assert 2 * in_validation[5] + in_validation[6] <= dropped <= 2 * in_validation[5] + 2 * in_validation[6]
    card = card_markdown(folder)
    assert (
        "| bucket | weight | distinct documents | rows (with copies) | share | tokens (with copies) | share |" in card
    )
    assert "`copy == 0` selects each document once" in card
    rows, distinct = num(manifest["totals"]["rows"]), num(manifest["totals"]["distinct_documents"])
    assert f"A curate dataset release: {rows} rows ({distinct} distinct documents)" in card
    assert f"| + copies (bucket weights), as rows |  | {num(every.height - every[S.ID].n_unique())} | {rows} |" in card


def test_diff_counts_a_repeated_document_once_and_its_copies_tokens(data: dict, tmp_path: Path) -> None:
    from curate.release.diff import diff_releases

    parts = bucketed_parts(data, tmp_path / "parts")
    make = lambda root, mix: build_release(  # noqa: E731
        CurateConfig(name="t"), parts, [], release=rcfg(data, mix=mix), output_root=root
    )
    plain, repeated = make(tmp_path / "a", MixConfig()), make(tmp_path / "b", MixConfig(bucket_weights={4: 3, 0: 0}))
    frame = pl.read_parquet(str(repeated / "data" / "*.parquet"))
    dropped = pl.read_parquet(str(plain / "data" / "*.parquet")).filter(pl.col(S.QUALITY_BUCKET) == 0)
    copies = frame.filter(pl.col(S.COPY) > 0)
    result = diff_releases(plain, repeated)
    assert result["added"] == {"documents": 0, "tokens": 0}
    assert (
        result["removed"]
        == {"documents": dropped.height, "tokens": int(dropped[S.NUM_TOKENS].sum())}
        != {
            "documents": 0,
            "tokens": 0,
        }
    )
    assert result["b"]["documents"] == frame[S.ID].n_unique() == frame.height - copies.height
    assert result["token_delta"] == int(copies[S.NUM_TOKENS].sum() - dropped[S.NUM_TOKENS].sum())


def test_verify_checks_the_copy_numbers_of_repeated_documents(data: dict, tmp_path: Path) -> None:
    from curate.core.parquet_io import sha256_file
    from curate.release.verify import VerifyError, verify_release

    parts = bucketed_parts(data, tmp_path / "parts")
    folder = build_release(
        CurateConfig(name="t"),
        parts,
        [],
        release=rcfg(data, mix=MixConfig(bucket_weights={3: 2, 4: 3})),
        output_root=tmp_path / "out",
    )
    verify_release(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    shard = manifest["shards"][0]
    table = pq.read_table(folder / shard["path"])
    assert table.column(S.COPY).to_numpy().max() > 0
    zeroed = table.set_column(
        table.schema.get_field_index(S.COPY), S.COPY_FIELD, pa.array(np.zeros(table.num_rows, np.int16))
    )
    pq.write_table(zeroed, folder / shard["path"])  # every copy 0: one document, several first copies
    shard["sha256"] = sha256_file(folder / shard["path"])
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(VerifyError) as err:
        verify_release(folder)
    assert str(err.value).endswith(
        "each once. Fix: rebuild the release with `curate release` (it numbers the copies of a repeated document)"
    )
    assert "rows whose copy numbers are not 0 to" in str(err.value)


def test_duplicate_input_ids_fail_with_repeats_too(data: dict, tmp_path: Path) -> None:
    """Copies share an id by design; two input rows with one id are still refused."""
    part = bucketed_parts(data, tmp_path / "parts")[0]
    with pytest.raises(InputError) as err:
        build_release(
            CurateConfig(name="t"),
            [part, part],
            [],
            release=rcfg(data, mix=MixConfig(bucket_weights={3: 2, 4: 3})),
            output_root=tmp_path,
        )
    smallest = min(pq.read_table(part, columns=["id"]).column(0).to_pylist())
    assert str(err.value) == (
        f"id '{smallest}' appears 2 times (in {part} and {part}); a release needs unique ids. Fix: pass each input "
        "once, or give synthetic documents their own ids"
    )

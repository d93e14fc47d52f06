"""Trainer formats of a release (release.formats: megatron, nanotron), read back: the Megatron
.idx/.bin with a reader of the published layout written here (independent of curate's), the
nanotron files with datatrove's own DatatroveFolderDataset; both hold exactly the tokens of
the Parquet texts, shard by shard, one end-of-document token after each document. Then
`curate verify` on them, provenance lookups, and bad configs.

Inputs: DOCUMENT_SCHEMA parts of real text (../shared/data via bench.bench_release); the
tokenizer: the default SmolLM2 one (offline), used here through `tokenizers` one text at a
time (the release encodes in batches)."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from bench.bench_release import word_tokenizer, write_parts
from curate.cli import main as release_main
from curate.config import CurateConfig, load_config
from curate.core.errors import ConfigError, InputError
from curate.release.build import build_release
from curate.release.config import MixConfig, ReleaseConfig
from curate.release.tokenized_read import lookup
from curate.release.tokens import TokenCounter
from curate.release.verify import VerifyError, verify_release

FORMATS = ["parquet", "megatron", "nanotron"]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("tokenized")
    web = write_parts(root / "web", docs=700, parts=2, seed=3, prefix="web")
    syn = write_parts(root / "syn", docs=200, parts=1, seed=4, prefix="syn", synthetic=True)
    rcfg = ReleaseConfig(
        shard_target_mb=0.4, row_group_mb=0.1, plots=False, formats=FORMATS, mix=MixConfig(validation_fraction=0.1)
    )
    release = build_release(CurateConfig(name="t"), web, syn, release=rcfg, output_root=root)
    return {"release": release, "root": root, "web": web}


def reference_stream(release: Path, shard: str) -> tuple[list[list[int]], list[str]]:
    """Each row's ids + EOS, tokenizing the Parquet shard's texts one at a time; and ids."""
    from tokenizers import Tokenizer

    manifest = json.loads((release / "manifest.json").read_text())
    tokenizer = Tokenizer.from_file(manifest["tokenizer"]["path"])
    eos = tokenizer.token_to_id("<|endoftext|>")
    assert manifest["tokenized"]["eos_id"] == eos == 0
    table = pq.read_table(release / shard, columns=["text", "id"])
    docs = [tokenizer.encode(t, add_special_tokens=False).ids + [eos] for t in table.column("text").to_pylist()]
    return docs, table.column("id").to_pylist()


def read_megatron(prefix: Path) -> list[np.ndarray]:
    """Megatron-LM's indexed dataset, as published (megatron/core/datasets/indexed_dataset.py):
    .idx = b'MMIDIDX\\x00\\x00', <Q version=1, <B dtype code, <Q sequence count, <Q document
    count, int32 lengths, int64 byte pointers, int64 document indices; .bin = the tokens."""
    raw = prefix.with_suffix(".idx").read_bytes()
    assert raw[:9] == b"MMIDIDX\x00\x00"
    version, code, n_seq, n_doc = struct.unpack("<QBQQ", raw[9:34])
    assert version == 1 and n_doc == n_seq + 1
    dtype = {8: np.uint16, 4: np.int32}[code]
    lengths = np.frombuffer(raw, np.int32, n_seq, 34)
    pointers = np.frombuffer(raw, np.int64, n_seq, 34 + 4 * n_seq)
    documents = np.frombuffer(raw, np.int64, n_doc, 34 + 12 * n_seq)
    assert len(raw) == 34 + 12 * n_seq + 8 * n_doc
    assert documents.tolist() == list(range(n_seq + 1))
    data = np.fromfile(prefix.with_suffix(".bin"), dtype=dtype)
    itemsize = np.dtype(dtype).itemsize
    return [data[p // itemsize : p // itemsize + n] for p, n in zip(pointers.tolist(), lengths.tolist())]


def entries(release: Path, fmt: str) -> list[dict]:
    manifest = json.loads((release / "manifest.json").read_text())
    return [e for e in manifest["tokenized"]["shards"] if e["format"] == fmt]


def test_megatron_files_hold_exactly_the_parquet_tokens(built: dict) -> None:
    release = built["release"]
    manifest = json.loads((release / "manifest.json").read_text())
    megatron = entries(release, "megatron")
    assert [e["shard"] for e in megatron] == [s["path"] for s in manifest["shards"]]
    assert len(manifest["shards"]) >= 3  # validation + several train shards
    total = 0
    for entry, shard in zip(megatron, manifest["shards"]):
        prefix = release / entry["files"][0]["path"].removesuffix(".bin")
        sequences = read_megatron(prefix)
        expected, _ = reference_stream(release, shard["path"])
        assert len(sequences) == shard["rows"] == entry["sequences"]
        assert [s.tolist() for s in sequences] == expected
        assert sum(len(s) for s in sequences) == entry["tokens"] == shard["tokens"] + shard["rows"]
        total += entry["tokens"]
    totals = manifest["tokenized"]["totals"]["megatron"]
    assert totals["tokens"] == total == manifest["totals"]["tokens"] + manifest["totals"]["rows"]
    assert totals["sequences"] == manifest["totals"]["rows"]
    assert manifest["tokenized"]["dtype"]["megatron"] == "uint16"  # SmolLM2: 49,152 ids


def test_nanotron_files_load_with_datatroves_reader(built: dict) -> None:
    from datatrove.utils.dataset import DatatroveFolderDataset

    release = built["release"]
    manifest = json.loads((release / "manifest.json").read_text())
    rows = {s["path"]: s["rows"] for s in manifest["shards"]}
    for split in ("train", "validation"):
        mine = [e for e in entries(release, "nanotron") if e["split"] == split]
        seq_len = 63
        dataset = DatatroveFolderDataset(
            str(release / "nanotron" / split),
            seq_len=seq_len,
            filename_pattern="*.ds",
            token_size=2,
            return_positions=True,
        )
        expected_windows, positions = [], []
        for entry in sorted(mine, key=lambda e: e["files"][0]["path"]):  # the dataset lists files by name
            docs, _ = reference_stream(release, entry["shard"])
            assert len(docs) == rows[entry["shard"]] == entry["sequences"]
            stream = np.concatenate([np.array(d) for d in docs])
            in_doc = np.concatenate([np.arange(len(d)) for d in docs])
            n = stream.size // (seq_len + 1)
            expected_windows += list(stream[: n * (seq_len + 1)].reshape(n, seq_len + 1))
            positions += list(in_doc[: n * (seq_len + 1)].reshape(n, seq_len + 1))
        assert len(dataset) == len(expected_windows) > 0
        for i in range(len(dataset)):
            item = dataset[i]
            assert item["input_ids"].tolist() == expected_windows[i].tolist()
            # Positions from the .ds.index restart at each document: the index matches the tokens.
            first = positions[i] - positions[i][0]
            restarts = np.flatnonzero(positions[i] == 0)
            if restarts.size:
                first[restarts[0] :] = positions[i][restarts[0] :]
            assert item["positions"].tolist() == first.tolist()
        meta = (release / mine[0]["files"][2]["path"]).read_text().splitlines()
        assert meta[0] == f"{Path(manifest['tokenizer']['path']).parent}|2"


def test_verify_passes_then_fails_naming_the_changed_file(
    built: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    release = built["release"]
    assert verify_release(release).tokenized == {
        k: v["tokens"] for k, v in json.loads((release / "manifest.json").read_text())["tokenized"]["totals"].items()
    }
    for fmt, suffix in (("megatron", ".bin"), ("nanotron", ".ds")):
        copy = tmp_path / fmt
        shutil.copytree(release, copy)
        name = next(
            f["path"]
            for e in entries(copy, fmt)
            if e["split"] == "train"
            for f in e["files"]
            if f["path"].endswith(suffix)
        )
        with open(copy / name, "r+b") as f:
            f.seek(101)
            byte = f.read(1)
            f.seek(101)
            f.write(bytes([byte[0] ^ 0x01]))
        with pytest.raises(VerifyError) as info:
            verify_release(copy)
        assert str(info.value).startswith(f"{name}: sha256 ")
        assert "does not match the manifest's" in str(info.value)
        assert release_main(["verify", str(copy)]) == 1
        assert f"FAILED {copy}: {name}: sha256 " in capsys.readouterr().err


def test_verify_checks_sizes_against_the_index(built: dict, tmp_path: Path) -> None:
    """A .bin cut short with its checksum updated in the manifest (a bad copy tool, a manual
    fix) still fails: its size disagrees with the .idx."""
    copy = tmp_path / "r"
    shutil.copytree(built["release"], copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    entry = next(e for e in manifest["tokenized"]["shards"] if e["format"] == "megatron")
    path = copy / entry["files"][0]["path"]
    path.write_bytes(path.read_bytes()[:-2])
    from curate.core.parquet_io import sha256_file

    entry["files"][0]["sha256"] = sha256_file(path)
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(VerifyError, match=rf"^{entry['files'][0]['path']}: \d+ bytes, its index needs"):
        verify_release(copy)
    shutil.copy(built["release"] / "manifest.json", copy / "manifest.json")
    shutil.copy(built["release"] / entry["files"][0]["path"], path)
    verify_release(copy)
    stray = copy / "nanotron" / "train" / "extra.ds"
    stray.write_bytes(b"\0\0")
    with pytest.raises(VerifyError, match="nanotron/train/extra.ds is not listed in manifest.json"):
        verify_release(copy)


def test_verify_checks_every_sequence_against_its_row(built: dict, tmp_path: Path) -> None:
    """Sums alone pass a permutation: two sequences of a .idx swapped (checksum updated) and a
    provenance index naming other ids both fail, row by row; a shard left without its files
    in one format fails too."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from curate.core.parquet_io import sha256_file
    from curate.release.tokenized_read import read_megatron_index

    def broken(edit) -> Path:
        copy = tmp_path / f"r{len(list(tmp_path.iterdir()))}"
        shutil.copytree(built["release"], copy)
        manifest = json.loads((copy / "manifest.json").read_text())
        edit(copy, manifest)
        (copy / "manifest.json").write_text(json.dumps(manifest))
        return copy

    def swap_sequences(copy: Path, manifest: dict) -> None:
        entry = next(e for e in manifest["tokenized"]["shards"] if e["format"] == "megatron")
        idx_path = copy / entry["files"][1]["path"]
        index = read_megatron_index(idx_path)
        lengths = index.lengths.copy()
        j = int(np.argmax(lengths != lengths[0]))  # a sequence of another length than the first
        assert j > 0
        lengths[[0, j]] = lengths[[j, 0]]
        raw = bytearray(idx_path.read_bytes())
        at = raw.find(index.lengths.astype("<i4").tobytes())
        raw[at : at + lengths.size * 4] = lengths.astype("<i4").tobytes()
        idx_path.write_bytes(bytes(raw))
        pointers = np.concatenate([[0], np.cumsum(lengths.astype(np.int64))[:-1]]) * index.dtype.itemsize
        raw = bytearray(idx_path.read_bytes())
        at = raw.find(index.pointers.astype("<i8").tobytes())
        raw[at : at + pointers.size * 8] = pointers.astype("<i8").tobytes()
        idx_path.write_bytes(bytes(raw))
        entry["files"][1]["sha256"] = sha256_file(idx_path)

    with pytest.raises(
        VerifyError, match=r"megatron/.*\.bin: sequence 0 does not hold its row's num_tokens \+ 1 tokens"
    ):
        verify_release(broken(swap_sequences))

    def other_ids(copy: Path, manifest: dict) -> None:
        entry = next(e for e in manifest["tokenized"]["shards"] if e["format"] == "tokens-index")
        path = copy / entry["files"][0]["path"]
        table = pq.read_table(path)
        ids = table.column("id").to_pylist()
        table = table.set_column(
            table.schema.get_field_index("id"), table.schema.field("id"), pa.array(ids[::-1], pa.string())
        )
        pq.write_table(table, path)
        entry["files"][0]["sha256"] = sha256_file(path)

    with pytest.raises(VerifyError, match=r"tokens-index/.*: its ids are not those of"):
        verify_release(broken(other_ids))

    def drop_a_format(copy: Path, manifest: dict) -> None:
        entries = manifest["tokenized"]["shards"]
        gone = next(e for e in entries if e["format"] == "megatron")
        entries.remove(gone)
        for f in gone["files"]:
            (copy / f["path"]).unlink()

    with pytest.raises(VerifyError, match=r"has no megatron files"):
        verify_release(broken(drop_a_format))


def test_lookup_from_token_to_document(built: dict, capsys: pytest.CaptureFixture[str]) -> None:
    release = built["release"]
    for entry in entries(release, "megatron")[:2] + entries(release, "nanotron")[:1]:
        docs, ids = reference_stream(release, entry["shard"])
        owner = np.repeat(np.arange(len(docs)), [len(d) for d in docs])
        start = np.cumsum([0] + [len(d) for d in docs])
        for token in (0, 1, int(start[1]) - 1, int(start[1]), entry["tokens"] // 2, entry["tokens"] - 1):
            found = lookup(release, entry["files"][0]["path"], token)
            row = int(owner[token])
            assert (found["sequence"], found["id"], found["token_start"]) == (row, ids[row], int(start[row]))
            assert found["end_of_document"] == (token == start[row + 1] - 1)
    parquet = pq.read_table(release / entry["shard"], columns=["id", "source", "offset"]).to_pylist()
    found = lookup(release, entry["files"][0]["path"], 0)
    assert {k: found[k] for k in ("id", "source", "offset")} == parquet[0]
    name = entries(release, "megatron")[0]["files"][0]["path"]
    assert release_main(["lookup", str(release), "--file", name.removesuffix(".bin"), "--token", "5"]) == 0
    assert json.loads(capsys.readouterr().out)["sequence"] == 0
    with pytest.raises(InputError, match=r"token 99999999 is outside .* Fix: pass --token within that range"):
        lookup(release, name, 99_999_999)


def test_token_budget_counts_up_front_agree_with_the_files(built: dict, tmp_path: Path) -> None:
    rcfg = ReleaseConfig(
        shard_target_mb=0.4,
        row_group_mb=0.1,
        plots=False,
        formats=["parquet", "megatron"],
        mix=MixConfig(budget=30_000),
    )
    release = build_release(CurateConfig(name="b"), built["web"], [], release=rcfg, output_root=tmp_path)
    manifest = json.loads((release / "manifest.json").read_text())
    assert 29_000 < manifest["totals"]["tokens"] <= 30_000
    assert (
        manifest["tokenized"]["totals"]["megatron"]["tokens"]
        == manifest["totals"]["tokens"] + manifest["totals"]["rows"]
    )
    verify_release(release)


def test_bad_formats_fail_before_work(built: dict, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, ["release.formats=[foo]"])
    assert str(info.value) == (
        "invalid config (defaults):\n  release.formats: 'foo' is not accepted; accepted values: 'parquet', 'megatron' "
        "or 'nanotron'. "
        "Fix: list only accepted values in release.formats."
    )
    with pytest.raises(
        ConfigError,
        match=r"formats \['megatron'\] lacks parquet; .* Fix: set release.formats to \[parquet\] plus megatron and/or "
        r"nanotron",
    ):
        load_config(None, ["release.formats=[megatron]"])
    with pytest.raises(
        ConfigError,
        match=r"need the tokenizer but count_tokens is false. Fix: set release.count_tokens=true, or "
        r"release.formats=\[parquet\]",
    ):
        load_config(
            None, ["release.formats=[parquet,nanotron]", "release.count_tokens=false", "release.mix.unit=documents"]
        )
    # A tokenizer without the end-of-document token: refused before any release folder exists.
    rcfg = ReleaseConfig(tokenizer=str(word_tokenizer(tmp_path / "tok")), formats=["parquet", "megatron"], plots=False)
    with pytest.raises(ConfigError) as info:
        build_release(CurateConfig(name="e"), built["web"], [], release=rcfg, output_root=tmp_path / "out")
    assert str(info.value).startswith("release.eos_token: '<|endoftext|>' is not a token of ")
    assert str(info.value).endswith(
        "Fix: set release.eos_token to that tokenizer's end-of-document token (e.g. <|endoftext|>, </s> or "
        "<|end_of_text|>)"
    )
    assert not (tmp_path / "out" / "releases").exists()
    assert TokenCounter.load("default").eos_id("<|endoftext|>") == 0


@pytest.mark.slow
def test_demo_release_in_trainer_formats(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Acceptance: `curate release OUT --set 'release.formats=[parquet,megatron]'` on a real demo
    run, then the same with nanotron: sequences = Parquet rows, tokens = the manifest's
    (num_tokens + one end-of-document token per document); verify passes, and fails naming
    the file once a byte of a .bin / .ds changes."""
    from datatrove.utils.dataset import DatatroveFolderDataset

    from flows.curate_corpus import curate_corpus

    repo = Path(__file__).resolve().parents[1]
    out = tmp_path / "demo"
    run = json.loads(
        Path(
            curate_corpus(str(repo / "configs" / "demo.yaml"), [], [str(repo / "curate" / "data" / "demo")], str(out))
        ).read_text()
    )
    for version, fmt in (("v1", "megatron"), ("v2", "nanotron")):
        assert release_main(["release", str(out), "--set", f"release.formats=[parquet,{fmt}]"]) == 0
        release = out / "releases" / run["name"] / version
        manifest = json.loads((release / "manifest.json").read_text())
        rows, tokens = manifest["totals"]["rows"], manifest["totals"]["tokens"]
        assert rows == run["counts"]["kept"] > 0
        assert list(manifest["tokenized"]["totals"]) == [fmt]
        assert manifest["tokenized"]["totals"][fmt]["tokens"] == tokens + rows
        assert not (release / {"megatron": "nanotron", "nanotron": "megatron"}[fmt]).exists()
        if fmt == "megatron":
            sequences = [
                s
                for e in entries(release, fmt)
                for s in read_megatron(release / e["files"][0]["path"].removesuffix(".bin"))
            ]
            assert len(sequences) == rows
            assert sum(len(s) for s in sequences) == tokens + rows
            assert all(s[-1] == 0 for s in sequences)  # <|endoftext|> closes every document
        else:
            held = 0
            for split in manifest["splits"]:
                dataset = DatatroveFolderDataset(
                    str(release / "nanotron" / split), seq_len=1, filename_pattern="*.ds", token_size=2
                )
                held += sum(f.fsize // 2 for f in dataset.files)
                assert len(dataset) == sum(f.fsize // 2 // 2 for f in dataset.files)
            assert held == tokens + rows
            ends = np.concatenate([np.fromfile(release / e["files"][1]["path"], "<u8") for e in entries(release, fmt)])
            assert ends.size == rows
        assert release_main(["verify", str(release)]) == 0
        assert f"{fmt}: {tokens + rows:,} tokens" in capsys.readouterr().out.replace("\n", "")
        name = next(f["path"] for e in entries(release, fmt) for f in e["files"] if f["path"].endswith((".bin", ".ds")))
        with open(release / name, "r+b") as f:
            first = f.read(1)
            f.seek(0)
            f.write(bytes([first[0] ^ 0xFF]))
        assert release_main(["verify", str(release)]) == 1
        assert f"{name}: sha256 " in capsys.readouterr().err
        card = (release / "README.md").read_text()
        assert "HuggingFaceTokenizer" in card if fmt == "megatron" else "dataset_folder" in card


def test_card_tells_trainers_where_the_files_are(built: dict) -> None:
    release = built["release"]
    manifest = json.loads((release / "manifest.json").read_text())
    card = (release / "README.md").read_text()
    folder = str(Path(manifest["tokenizer"]["path"]).parent)
    first = next(e for e in entries(release, "megatron") if e["split"] == "train")
    assert f"--train-data-path {first['tokens']} {release}/{first['files'][0]['path'].removesuffix('.bin')} " in card
    assert (
        f"--valid-data-path {entries(release, 'megatron')[0]['tokens']} {release}/megatron/validation-00000-of-00001 \\"
        in card
    )
    assert f"--tokenizer-type HuggingFaceTokenizer --tokenizer-model {folder}\n" in card
    assert f"      dataset_folder: [{release}/nanotron/train]\n" in card
    assert f"  tokenizer_name_or_path: {folder}\n" in card
    assert f"**{manifest['tokenizer']['name']}**" in card
    assert "Every document is followed by `<|endoftext|>` (id 0)" in card


def test_empty_release_has_empty_verified_tokenized_shards(tmp_path: Path) -> None:
    from curate.core import schema as S

    pq.write_table(S.DOCUMENT_SCHEMA.empty_table(), tmp_path / "empty.parquet")
    rcfg = ReleaseConfig(plots=False, formats=FORMATS)
    release = build_release(
        CurateConfig(name="e"), [tmp_path / "empty.parquet"], [], release=rcfg, output_root=tmp_path
    )
    assert verify_release(release).tokenized == {"megatron": 0, "nanotron": 0}
    assert read_megatron(release / "megatron" / "train-00000-of-00001") == []


def test_large_vocabulary_gets_four_byte_tokens(built: dict, tmp_path: Path) -> None:
    """A vocabulary over 65,536 ids: int32 in Megatron's .idx (dtype code 4), uint32 in the
    .ds files, ids above 65,535 intact in both."""
    from datatrove.utils.dataset import DatatroveFolderDataset
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    vocab = {f"w{i}": i for i in range(70_000)} | {"[UNK]": 70_000, "the": 70_001, "<|endoftext|>": 70_002}
    tok = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = Whitespace()
    (tmp_path / "tok").mkdir()
    tok.save(str(tmp_path / "tok" / "tokenizer.json"))
    rcfg = ReleaseConfig(tokenizer=str(tmp_path / "tok"), plots=False, formats=FORMATS)
    release = build_release(CurateConfig(name="big"), built["web"][:1], [], release=rcfg, output_root=tmp_path)
    manifest = json.loads((release / "manifest.json").read_text())
    assert manifest["tokenized"]["dtype"] == {"megatron": "int32", "nanotron": "uint32"}
    texts = pq.read_table(release / "data" / "train-00000-of-00001.parquet", columns=["text"]).column(0).to_pylist()
    expected = [tok.encode(t, add_special_tokens=False).ids + [70_002] for t in texts]
    assert any(70_001 in e for e in expected)
    assert [s.tolist() for s in read_megatron(release / "megatron" / "train-00000-of-00001")] == expected
    stream = [i for e in expected for i in e]
    dataset = DatatroveFolderDataset(
        str(release / "nanotron" / "train"), seq_len=len(stream) - 1, filename_pattern="*.ds", token_size=4
    )
    assert len(dataset) == 1 and dataset[0]["input_ids"].tolist() == stream
    verify_release(release)


def test_tokenized_bytes_do_not_depend_on_the_number_of_threads(
    built: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import curate.release.writer as writer

    digests = []
    for threads in (1, 3):
        monkeypatch.setattr(writer, "WRITE_THREADS", threads)
        rcfg = ReleaseConfig(shard_target_mb=0.2, row_group_mb=0.05, plots=False, formats=FORMATS)
        release = build_release(
            CurateConfig(name="t"), built["web"], [], release=rcfg, output_root=tmp_path / str(threads)
        )
        manifest = json.loads((release / "manifest.json").read_text())
        digests.append([(f["path"], f["sha256"]) for e in manifest["tokenized"]["shards"] for f in e["files"]])
    assert digests[0] == digests[1] and len(digests[0]) > 6


def test_megatron_cores_own_reader(built: dict) -> None:
    """Megatron-core's IndexedDataset, when installed (not a dependency: checked by hand with
    megatron-core 0.16.1 via PYTHONPATH), reads exactly the tokens of the Parquet texts."""
    indexed = pytest.importorskip("megatron.core.datasets.indexed_dataset")
    release = built["release"]
    for entry in entries(release, "megatron"):
        dataset = indexed.IndexedDataset(str(release / entry["files"][0]["path"].removesuffix(".bin")))
        expected, _ = reference_stream(release, entry["shard"])
        assert [dataset[i].tolist() for i in range(len(dataset))] == expected


def test_repeated_documents_are_tokenized_once_per_copy(built: dict, tmp_path: Path) -> None:
    """Bucket weights above 1: every copy is a sequence of the trainer files, in the Parquet
    order, and verify (sequences against rows, (id, copy) unique) passes."""
    import pyarrow as pa

    from curate.core import schema as S

    parts = []
    for part in built["web"]:
        table = pq.read_table(part)
        bucket = pa.array(np.arange(table.num_rows) % 20, pa.int8())
        index = table.schema.get_field_index(S.QUALITY_BUCKET)
        pq.write_table(table.set_column(index, table.schema.field(index), bucket), tmp_path / part.name)
        parts.append(tmp_path / part.name)
    rcfg = ReleaseConfig(
        shard_target_mb=0.4,
        row_group_mb=0.1,
        plots=False,
        formats=FORMATS,
        mix=MixConfig(bucket_weights={19: 3, 18: 2}, validation_fraction=0.1),
    )
    release = build_release(CurateConfig(name="t"), parts, [], release=rcfg, output_root=tmp_path / "out")
    manifest = json.loads((release / "manifest.json").read_text())
    # 34 documents per bucket (17 per part): bucket 19 adds 2 copies each, 18 one; validation keeps one of each.
    extra = 34 * 2 + 34 - manifest["mix"]["validation_copies_dropped"]
    assert verify_release(release).rows == manifest["totals"]["rows"] == 700 + extra
    repeated = 0
    for entry in entries(release, "megatron"):
        sequences = read_megatron(release / entry["files"][0]["path"].removesuffix(".bin"))
        expected, ids = reference_stream(release, entry["shard"])
        assert [s.tolist() for s in sequences] == expected
        repeated += pq.read_table(release / entry["shard"], columns=["copy"]).column(0).to_numpy().astype(bool).sum()
    assert repeated == manifest["totals"]["rows"] - manifest["totals"]["distinct_documents"] > 60

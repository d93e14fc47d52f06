"""Generation reads and signs only what it must: dedup against the corpus reuses the dedup
index (or its own earlier signature tables) instead of signing every corpus document on
every run, with the same decisions as signing it all; a resume reads only the status column
of finished batches; the diversity report comes from the documents in memory, not from a
second read of the part just written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bench.bench_generate_dedup import old_dedup
from bench.dedup_data import real_documents
from curate.config import CurateConfig, load_config
from curate.core import schema as S
from curate.dedup.index import PROBE_TEXT
from curate.dedup.signatures import Signer
from curate.dedup.stage import run_dedup
from curate.synth import generate as G
from curate.synth.corpus_dedup import dedup_against_corpus
from curate.synth.diversity import diversity_report
from tests.test_dedup_stage import write_part
from tests.test_generate import ENGLISH, FRENCH, HEART, TIDES, Config, _write_raw, corpus


@pytest.fixture(scope="module")
def docs(shared_data: Path) -> list[tuple[str, str]]:
    return [d for d in real_documents() if len(d[1].split()) >= 80][:260]


@pytest.fixture
def signed(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Texts signed per call of the real Signer.signatures (the index's one-text probe aside)."""
    calls: list[int] = []
    real = Signer.signatures

    def counting(self: Signer, texts: Any) -> Any:
        if list(texts) != [PROBE_TEXT]:
            calls.append(len(texts))
        return real(self, texts)

    monkeypatch.setattr(Signer, "signatures", counting)
    return calls


def _cfg(tmp: Path, index: bool, *overrides: str) -> CurateConfig:
    folder = json.dumps(str(tmp / "index") if index else "")
    return load_config(None, ["name=rel", f"dedup.index_dir={folder}", "executor.workers=1", *overrides])


def _world(tmp: Path, docs: list[tuple[str, str]], monkeypatch: pytest.MonkeyPatch) -> tuple[list[Path], pa.Table]:
    """An earlier release r0 and this release `rel` deduplicated into one index by the real
    dedup stage (as `curate run` does before generation), the corpus = rel's kept parts with
    a part the index lacks in the middle (like a release's generated documents), and a
    table of generated documents with every kind of duplicate."""
    earlier, rel, fresh = docs[:30], docs[30:230], docs[230:]
    run_dedup(
        _cfg(tmp, True, "name=r0"),
        [write_part(tmp / "r0.parquet", earlier, row_group=20)],
        tmp / "r0-work",
        tmp / "r0-ledger",
    )
    inputs = [write_part(tmp / f"rel-{i}.parquet", rel[i * 100 : (i + 1) * 100], row_group=20) for i in range(2)]
    kept = run_dedup(_cfg(tmp, True), inputs, tmp / "rel-work", tmp / "rel-ledger")
    extra = write_part(tmp / "extra.parquet", [("x-blank", "   "), ("x-1", fresh[0][1]), ("x-2", fresh[1][1])])
    corpus_parts = [kept[0], extra, kept[1]]
    c5, c150 = rel[5], rel[150]
    generated = [
        ("g-exact-corpus", c5[1].upper()),  # exact key ignores case and spacing
        ("g-near-corpus", c150[1] + " Retrieved 2025."),
        ("g-earlier", earlier[3][1]),
        ("g-extra", fresh[1][1]),
        ("g-new", fresh[5][1]),
        ("g-new-copy", fresh[5][1] + " "),
        ("g-near-new", fresh[5][1] + " And that is all."),
        ("g-no-words", "!!! ??? ..."),
        ("g-distinct", fresh[6][1]),
    ]
    rows = [{S.ID: i, S.TEXT: t, S.SOURCE: "generate:test@v1", S.OFFSET: k} for k, (i, t) in enumerate(generated)]
    return corpus_parts, pa.Table.from_pylist(rows, schema=S.DOCUMENT_SCHEMA)


def test_corpus_signatures_come_from_the_index_with_the_same_decisions(
    tmp_path: Path, docs: list[tuple[str, str]], monkeypatch: pytest.MonkeyPatch, signed: list[int]
) -> None:
    corpus_parts, table = _world(tmp_path, docs, monkeypatch)
    corpus_docs = sum(pq.ParquetFile(p).metadata.num_rows for p in corpus_parts)
    cfg = _cfg(tmp_path, True)
    (tmp_path / "old").mkdir()
    signed.clear()
    old = old_dedup(cfg, table, corpus_parts, tmp_path / "old")
    assert sum(signed) == corpus_docs + table.num_rows  # the old path signs the whole corpus

    signed.clear()
    (tmp_path / "new").mkdir()
    kept, dropped, counts = dedup_against_corpus(cfg, table, corpus_parts, tmp_path / "new", tmp_path / "cache")
    origin = counts.pop("corpus_signatures")
    assert (kept.to_pylist(), dropped, counts) == (old[0].to_pylist(), old[1], old[2])
    # Only the generated documents and the 3 of the part the index lacks were signed.
    assert sum(signed) == table.num_rows + 3
    assert origin == {"from_index": corpus_docs - 3, "cached": 0, "signed": 3}
    by_id = {d[S.ID]: (d["reason"], d["value"], d["duplicate_of"]) for d in dropped}
    assert by_id == {
        "g-exact-corpus": ("exact_duplicate", "cluster of 2", docs[35][0]),
        "g-near-corpus": ("near_duplicate", "cluster of 2", docs[180][0]),
        "g-earlier": ("exact_duplicate", "earlier release r0", docs[3][0]),
        "g-extra": ("exact_duplicate", "cluster of 2", "x-2"),
        "g-new-copy": ("exact_duplicate", "cluster of 3", "g-new"),
        "g-near-new": ("near_duplicate", "cluster of 3", "g-new"),
    }
    assert (
        len(list((tmp_path / "cache").iterdir())) == 1
    )  # the signed unit is kept for a rerun; the index's need no copy


def test_without_an_index_a_rerun_reuses_its_own_signatures(
    tmp_path: Path, docs: list[tuple[str, str]], monkeypatch: pytest.MonkeyPatch, signed: list[int]
) -> None:
    corpus_parts, table = _world(tmp_path, docs, monkeypatch)
    corpus_docs = sum(pq.ParquetFile(p).metadata.num_rows for p in corpus_parts)
    cfg = _cfg(tmp_path, False)
    (tmp_path / "old").mkdir()
    old = old_dedup(cfg, table, corpus_parts, tmp_path / "old")
    for run, expected in (
        (1, {"from_index": 0, "cached": 0, "signed": corpus_docs}),
        (2, {"from_index": 0, "cached": corpus_docs, "signed": 0}),
    ):
        signed.clear()
        work = tmp_path / f"run{run}"
        work.mkdir()
        kept, dropped, counts = dedup_against_corpus(cfg, table, corpus_parts, work, tmp_path / "cache")
        assert counts.pop("corpus_signatures") == expected
        assert (kept.to_pylist(), dropped, counts) == (old[0].to_pylist(), old[1], old[2])
        assert sum(signed) == table.num_rows + expected["signed"]
    assert len(old[1]) == 5  # no index: the earlier-release copy is kept


def test_same_ids_with_new_texts_are_signed_not_taken_from_the_index(
    tmp_path: Path, docs: list[tuple[str, str]], signed: list[int]
) -> None:
    """A source re-dumped in place keeps its page ids with new texts: an earlier release's
    segment holds those ids, but its keys are of the old texts (found in review: the copy of
    a new text was kept)."""
    ids = [f"page-{i}" for i in range(100)]
    january = [(ids[i], docs[i][1]) for i in range(100)]
    february = [(ids[i], docs[100 + i][1]) for i in range(100)]
    run_dedup(
        _cfg(tmp_path, True, "name=r0"),
        [write_part(tmp_path / "jan.parquet", january, row_group=20)],
        tmp_path / "w0",
        tmp_path / "l0",
    )
    # This release's dedup ran without writing the index, so only r0's segment is there.
    kept = run_dedup(
        _cfg(tmp_path, True, "dedup.update_index=false"),
        [write_part(tmp_path / "feb.parquet", february, row_group=20)],
        tmp_path / "w1",
        tmp_path / "l1",
    )
    generated = [("copy-of-feb", february[7][1]), ("copy-of-jan", january[9][1])]
    table = pa.Table.from_pylist(
        [{S.ID: i, S.TEXT: t, S.SOURCE: "generate:t@v1", S.OFFSET: k} for k, (i, t) in enumerate(generated)],
        schema=S.DOCUMENT_SCHEMA,
    )
    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    _, old_dropped, _ = old_dedup(_cfg(tmp_path, True), table, kept, tmp_path / "old")
    _, dropped, counts = dedup_against_corpus(_cfg(tmp_path, True), table, kept, tmp_path / "new", tmp_path / "cache")
    assert [(d[S.ID], d["reason"], d["duplicate_of"]) for d in dropped] == [
        ("copy-of-feb", "exact_duplicate", "page-7"),
        ("copy-of-jan", "exact_duplicate", "page-9"),
    ]
    assert dropped == old_dropped
    assert counts["corpus_signatures"] == {"from_index": 0, "cached": 0, "signed": 100}


def test_verified_candidates_need_full_signatures_so_the_index_is_not_used(
    tmp_path: Path, docs: list[tuple[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus_parts, table = _world(tmp_path, docs, monkeypatch)
    cfg = _cfg(tmp_path, True, "dedup.verify_threshold=0.7")
    (tmp_path / "old").mkdir()
    old = old_dedup(cfg, table, corpus_parts, tmp_path / "old")
    (tmp_path / "new").mkdir()
    kept, dropped, counts = dedup_against_corpus(cfg, table, corpus_parts, tmp_path / "new", tmp_path / "cache")
    assert counts.pop("corpus_signatures")["from_index"] == 0
    assert (kept.to_pylist(), dropped, counts) == (old[0].to_pylist(), old[1], old[2])


# ------------------------------------------------------------------- the generate command


def _gen_cfg(tmp: Path, index: Path | None) -> CurateConfig:
    data = {
        "name": "gen-test",
        "generate": {"min_words": 40, "batch_size": 2},
        "engine": {"model": str(tmp / "no-model")},  # opening the engine would fail: nothing is generated
        "dedup": {"index_dir": str(index) if index else ""},
    }
    return Config.model_validate(data)


def test_generate_command_reuses_the_index_and_reads_what_it_wrote_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, signed: list[int]
) -> None:
    """A real small run: the corpus deduplicated by the dedup stage into an index, then
    `curate generate` from raw batches on disk, with and without the index: the same
    documents and ledger, the corpus signed only without it, and neither the finished raw
    batches' texts (before checking) nor the written part read back for the report."""
    release = corpus(
        tmp_path,
        {
            "web-1": "# Photosynthesis\n\n" + ENGLISH,
            "web-2": "# Tides\n\n" + TIDES,
            "web-3": "# Photosynthèse\n\n" + FRENCH,
        },
    )
    index = tmp_path / "index"
    run_dedup(_gen_cfg(tmp_path, index), G.corpus_parts(release), tmp_path / "dedup-work", tmp_path / "dedup-ledger")
    texts = [
        (HEART + " It never rests.", "stop"),
        (FRENCH, "stop"),
        ("# Tides\n\n" + TIDES, "stop"),
        (TIDES.replace("coastal towns", "harbour towns"), "stop"),
    ]
    results = {}
    reads: list[tuple[str, Any]] = []
    real_read = pq.read_table

    def spy(source: Any, *args: Any, **kwargs: Any) -> Any:
        reads.append((str(source), kwargs.get("columns")))
        return real_read(source, *args, **kwargs)

    for label, idx in (("index", index), ("signing", None)):
        cfg = _gen_cfg(tmp_path, idx)
        out = tmp_path / label
        ids = _write_raw(cfg, release, out, texts)
        raw_dir = out / "_work" / "generate" / "raw"
        signed.clear()
        monkeypatch.setattr(pq, "read_table", spy)
        reads.clear()
        manifest = json.loads(G.generate_command(cfg, release, len(texts), out).read_text())
        monkeypatch.setattr(pq, "read_table", real_read)
        batch_reads = [cols for src, cols in reads if src.startswith(str(raw_dir))]
        # One status-column read per finished batch, then each batch whole once, to check it.
        assert batch_reads == [["finish_reason"]] * 2 + [None] * 2
        part = out / "_work" / "generate" / "kept" / "00000.parquet"
        assert not [r for r in reads if r[0] == str(part)]
        written = real_read(part)
        prompts = {f"synth-{p.id}": p for p in G.make_plan(cfg, G.corpus_parts(release), len(texts))[0]}
        kept_prompts = [prompts[i] for i in written.column(S.ID).to_pylist()]
        seeds = G.make_plan(cfg, G.corpus_parts(release), len(texts))[1]
        assert manifest["counts"]["diversity"] == diversity_report(
            written.column(S.TEXT).to_pylist(),
            [p.seed.topic for p in kept_prompts],
            [p.seed.topic for p in prompts.values()],
            len({s.topic.lower() for s in seeds}),
            [p.template.id for p in kept_prompts],
            [p.audience for p in kept_prompts],
        )
        ledger = {
            r["id"]: (r["reason"], r["value"], r["duplicate_of"]) for r in real_read(out / "rejected").to_pylist()
        }
        results[label] = (pq.read_table(out / "data").to_pylist(), ledger)
        origin = manifest["counts"]["generate"]["dedup"]["corpus_signatures"]
        assert origin == (
            {"from_index": 3, "cached": 0, "signed": 0} if idx else {"from_index": 0, "cached": 0, "signed": 3}
        )
        dropped = manifest["counts"]["generate"]["dropped"]
        checked = manifest["counts"]["kept"] + dropped.get("exact_duplicate", 0) + dropped.get("near_duplicate", 0)
        assert sum(signed) == checked + origin["signed"]
    assert results["index"] == results["signing"]
    ledger = results["index"][1]
    assert ledger == {
        f"synth-{ids[1]}": ("wrong_language", ledger[f"synth-{ids[1]}"][1], None),
        f"synth-{ids[2]}": ("exact_duplicate", "cluster of 3", "web-2"),
        f"synth-{ids[3]}": ("near_duplicate", "cluster of 3", "web-2"),  # web-2 and both copies
    }
    assert [r[S.ID] for r in results["index"][0]] == [f"synth-{ids[0]}"]


def test_resume_reads_only_the_status_of_finished_batches_and_retries_failed_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = _gen_cfg(tmp_path, None)
    topics = tmp_path / "topics.txt"
    topics.write_text("tides\nvolcanoes\nthe heart\nglaciers\n")
    cfg = cfg.model_copy(update={"generate": cfg.generate.model_copy(update={"topics_file": str(topics)})})
    raw = tmp_path / "raw"
    _write_raw(cfg, None, tmp_path, [(ENGLISH, "stop"), (TIDES, "stop"), (HEART, "stop"), ("", "error")], raw=raw)
    prompts = G.make_plan(cfg, [], 4)[0]
    reads: list[Any] = []
    real_read = pq.read_table
    monkeypatch.setattr(
        pq,
        "read_table",
        lambda source, *a, **k: reads.append((Path(source).name, k.get("columns"))) or real_read(source, *a, **k),
    )
    from curate.llm.engines.base import EngineError

    # The second batch holds a failed request: it is read whole, then the engine is asked
    # (and cannot open here, which proves it was asked).
    with pytest.raises(EngineError, match=r"engine.model: the folder .*no-model does not exist\. Fix:"):
        G.generate_raw(cfg.generate, cfg.engine, prompts, raw)
    names = sorted(p.name for p in raw.glob("batch-*.parquet"))
    assert reads == [(names[0], ["finish_reason"]), (names[1], ["finish_reason"])]
    # Both finished: two status reads, no engine, nothing rewritten.
    reads.clear()
    paths, stats = G.generate_raw(cfg.generate, cfg.engine, prompts[:2], raw)
    assert reads == [(names[0], ["finish_reason"])] and stats["requests"] == 0 and stats["batches_reused"] == 1


def test_distinct_4grams_counted_by_hash_match_counting_the_4grams(docs: list[tuple[str, str]]) -> None:
    from collections import Counter

    from curate.synth.diversity import _words

    texts = [t for _, t in docs[:120]] + [t for _, t in docs[:30]] + ["", "one two three"]  # repeats: fewer distinct
    grams: Counter[tuple[str, ...]] = Counter()
    for t in texts:
        w = _words(t)
        grams.update(tuple(w[i : i + 4]) for i in range(len(w) - 3))
    report = diversity_report(texts, ["x"] * len(texts), ["x"], 1, ["t"] * len(texts), ["a"] * len(texts))
    assert report["distinct_4grams"] == round(len(grams) / sum(grams.values()), 4) < 0.9

"""Benchmark decontamination (curate.hygiene): real documents with real benchmark items
against the shipped index, clean real text, the generation checks, the index builder, and the
errors for a missing or corrupt index.

Two items are quoted here as test inputs, under their MIT licences: GSM8K test problem 0
(openai/grade-school-math) and HumanEval/0's prompt (openai/human-eval). Nothing else of any
benchmark is in the repository; the shipped index holds hashes only."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.cli import main
from curate.config import load_config
from curate.core import schema as S
from curate.core.errors import ConfigError, InputError
from curate.core.ledger import read_ledger
from curate.hygiene import build_steps, hygiene_enabled
from curate.hygiene.config import DecontamConfig
from curate.hygiene.decontam import Decontaminator, open_index
from curate.hygiene.index import DEFAULT_INDEX, load_index
from curate.hygiene.stage import hygiene_stage

GSM8K_TEST_0 = (
    "Janet\u2019s ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins for her "
    "friends every day "
    "with four. She sells the remainder at the farmers' market daily for $2 per fresh duck egg. How much in dollars "
    "does she make "
    "every day at the farmers' market?"
)
HUMANEVAL_0_PROMPT = (
    "from typing import List\n\n\ndef has_close_elements(numbers: List[float], threshold: float) -> bool:\n"
    '    """ Check if in given list of numbers, are any two numbers closer to each other than\n    given threshold.\n'
    "    >>> has_close_elements([1.0, 2.0, 3.0], 0.5)\n    False\n    >>> has_close_elements([1.0, 2.8, 3.0, 4.0, "
    "5.0, 2.0], 0.3)\n"
    '    True\n    """\n'
)
FIX = (
    "Fix: rebuild it with `curate decontam build-index --input FILES... --output PATH` (the default index: "
    "`python scripts/build_decontam_index.py`), or set decontam.index to a valid index (decontam.enabled: false "
    "switches the check off)"
)


def paste(article: str, item: str) -> str:
    """The item pasted between two paragraphs in the middle of a real article."""
    paras = article.split("\n")
    mid = len(paras) // 2
    return "\n".join(paras[:mid] + [item] + paras[mid:])


def part(path: Path, texts: dict[str, str]) -> Path:
    rows = [
        {S.ID: k, S.TEXT: v, S.SOURCE: "web.jsonl", S.OFFSET: i, S.URL: f"https://example.org/{k}"}
        for i, (k, v) in enumerate(texts.items())
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=S.DOCUMENT_SCHEMA), path)
    return path


@pytest.fixture(scope="module")
def decontaminator() -> Decontaminator:
    return Decontaminator(DecontamConfig())


# ---------------------------------------------------------------------- web documents


def test_real_article_with_a_gsm8k_test_problem_is_dropped_naming_gsm8k(
    tmp_path: Path, articles: list[dict[str, str]]
) -> None:
    bodies = [a["text"] for a in articles[:6]]
    texts = {"pasted": paste(bodies[0], GSM8K_TEST_0), **{f"clean-{i}": b for i, b in enumerate(bodies[1:])}}
    cfg = load_config(None)
    kept, ledger = hygiene_stage(cfg, [part(tmp_path / "in" / "00000.parquet", texts)], tmp_path / "stage")
    assert pq.read_table(kept[0]).column(S.ID).to_pylist() == [f"clean-{i}" for i in range(5)]
    rows = read_ledger(ledger[0].parent).to_dicts()
    assert len(rows) == 1
    row = rows[0]
    assert (row[S.ID], row["stage"], row["reason"], row["value"], row[S.URL]) == (
        "pasted",
        "decontam",
        "contaminated",
        "gsm8k",
        "https://example.org/pasted",
    )
    # The evidence: the span (normalised: numbers are 0) and how much of the item it covers.
    assert row["matched"].startswith("longest span 53 words, 100% of one gsm8k item: janet s ducks lay 0 eggs per day")


@pytest.mark.slow
def test_parts_on_a_process_pool_give_the_inline_result(
    tmp_path: Path, articles: list[dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    import curate.hygiene.stage as stage

    bodies = [a["text"] for a in articles[:8]]
    parts = [
        part(
            tmp_path / "in" / f"{i:05d}.parquet",
            {f"p{i}-pasted": paste(bodies[i], GSM8K_TEST_0), f"p{i}-clean": bodies[i + 4]},
        )
        for i in range(2)
    ]
    cfg = load_config(None, ["executor.workers=2"])
    inline = hygiene_stage(cfg, parts, tmp_path / "inline")
    monkeypatch.setattr(stage, "PARALLEL_MIN_ROWS", 0)
    pooled = hygiene_stage(cfg, parts, tmp_path / "pooled")
    for a, b in zip(inline[0] + inline[1], pooled[0] + pooled[1]):
        assert pq.read_table(a).equals(pq.read_table(b))
    assert sorted(read_ledger(pooled[1][0].parent)["id"].to_list()) == ["p0-pasted", "p1-pasted"]


def test_a_stock_phrase_or_a_short_quote_of_an_item_is_kept(
    decontaminator: Decontaminator, articles: list[dict[str, str]]
) -> None:
    # The problem's first 20 words (21 once "Janet's" is split): one chain of 9 indexed 13-grams,
    # a 21-word span (< 30) and 9 of the item's 41 n-grams (< 50 %): an overlap, not a copy.
    quote = " ".join(GSM8K_TEST_0.split()[:20])
    m = decontaminator.match(paste(articles[0]["text"], quote))
    assert (
        m is not None
        and m.benchmark == "gsm8k"
        and m.span_words == 21
        and round(m.item_share * 41) == 9
        and not m.contaminated
    )
    assert decontaminator.check(paste(articles[0]["text"], quote)) is None
    stock = (
        "It was the best of times in the United States of America, and which of the following is true is a question."
    )
    assert decontaminator.match(paste(articles[1]["text"], stock)) is None


def test_clean_real_articles_are_not_flagged(decontaminator: Decontaminator, articles: list[dict[str, str]]) -> None:
    # bench/RESULTS-hygiene.md measures the Wikipedia sample and the demo data too.
    flagged = [a["id"] for a in articles if decontaminator.check(a["text"]) is not None]
    assert len(articles) > 150 and flagged == []


def test_switched_off_by_a_recipe(tmp_path: Path) -> None:
    cfg = load_config(None, ["decontam.enabled=false"])
    assert [s.name for s in build_steps(cfg)] == ["urls", "pii"]  # the other hygiene steps stay on
    cfg = load_config(None, ["decontam.enabled=false", "urls.enabled=false", "pii.enabled=false"])
    assert not hygiene_enabled(cfg) and build_steps(cfg) == []
    assert hygiene_enabled(load_config(None))  # on by default
    assert [s.name for s in build_steps(load_config(None))] == ["urls", "decontam", "pii"]


# -------------------------------------------------------------------- generated text


def test_generated_section_copying_a_humaneval_prompt_is_dropped_naming_humaneval(tmp_path: Path) -> None:
    from test_generate import ENGLISH, HEART, _write_raw, corpus, make_cfg

    from curate.synth import generate as G

    release = corpus(tmp_path, {"web-1": "# Photosynthesis\n\n" + ENGLISH})
    cfg = make_cfg(tmp_path, batch_size=2, engine={"model": str(tmp_path / "no-model")}, score_quality=False)
    out = tmp_path / "out"
    section = (
        "# Checking a list for close numbers\n\nIn this section we write a small Python function.\n\n"
        + HUMANEVAL_0_PROMPT
        + "\n"
        + HEART
    )
    ids = _write_raw(cfg, release, out, [(section, "stop"), (HEART, "stop")])
    manifest = json.loads(G.generate_command(cfg, release, 2, out).read_text())
    assert manifest["counts"]["kept"] == 1
    row = read_ledger(out / "rejected").to_dicts()[0]
    assert (row[S.ID], row["stage"], row["reason"], row["value"]) == (
        f"synth-{ids[0]}",
        "generate",
        "contaminated",
        "humaneval",
    )
    assert "from typing import list def has close elements" in row["matched"]


# ------------------------------------------------------------------------ the index


def test_build_index_command_indexes_local_jsonl_csv_and_parquet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    items = [
        "A farmer plants seven rows of corn with twelve stalks in each row and then gives away a third of the stalks "
        "to a neighbour.",
        "Which property of a mineral can be determined just by looking at it when it is held up to the light of a "
        "window?",
    ]
    jsonl = tmp_path / "mathbench.jsonl"
    jsonl.write_text("".join(json.dumps({"question": q, "answer": "42"}) + "\n" for q in items[:1]))
    csv_file = tmp_path / "science.csv"
    csv_file.write_text('question,choice\n"' + items[1] + '",luster\n')
    pq.write_table(pa.table({"text": [items[0]]}), tmp_path / "dup.parquet")
    index = tmp_path / "my-index.npz"
    assert (
        main(
            [
                "decontam",
                "build-index",
                "--input",
                str(jsonl),
                "--input",
                str(csv_file),
                "--input",
                f"mathbench={tmp_path / 'dup.parquet'}",
                "--output",
                str(index),
                "--fields",
                "question,text",
            ]
        )
        == 0
    )
    idx = load_index(index)
    assert idx.names == ["mathbench", "science"] and [b["items"] for b in idx.benchmarks] == [2, 1]
    d = Decontaminator(DecontamConfig(index=str(index)))
    drop = d.check("Some intro text here.\n" + items[1] + "\nAnd an unrelated ending sentence follows.")
    assert drop is not None and drop.value == "science"
    assert d.check("A farmer plants corn.") is None


def test_shipped_index_lists_its_benchmarks_with_sources_and_licences() -> None:
    idx = load_index(DEFAULT_INDEX)
    expected = {
        "gsm8k",
        "humaneval",
        "mbpp",
        "mmlu",
        "arc_easy",
        "arc_challenge",
        "hellaswag",
        "truthfulqa",
        "piqa",
        "winogrande",
        "boolq",
        "openbookqa",
    }
    assert set(idx.names) == expected and idx.ngram == 13
    for b in idx.benchmarks:
        assert b["source"] and b["licence"] and b["split"] and b["items"] > 0 and b["ngrams"] > 0
    assert "sciq" in idx.meta["unavailable"]
    sources = json.loads((DEFAULT_INDEX.parent / "sources.json").read_text())
    assert [b["name"] for b in sources["benchmarks"]] == idx.names
    assert DEFAULT_INDEX.stat().st_size < 20_000_000


def test_missing_index_fails_before_work_naming_the_file_and_the_fix(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.npz"
    cfg = load_config(None, [f"decontam.index={missing}"])
    with pytest.raises(InputError) as err:
        build_steps(cfg)
    assert str(err.value) == f"decontamination index {missing} not found. {FIX}"


def test_validate_and_run_refuse_a_missing_index(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing, demo = tmp_path / "gone.npz", str(Path(__file__).resolve().parents[1] / "configs" / "demo.yaml")
    for command in (["validate", demo], ["run", demo, "--output", str(tmp_path / "out"), "--quiet"]):
        assert main([*command, "--set", f"decontam.index={missing}"]) == 2
        assert capsys.readouterr().err.strip().endswith(f"error: decontamination index {missing} not found. {FIX}")
    assert not (tmp_path / "out").exists()  # refused before any work


def test_corrupt_index_fails_naming_the_file_and_the_fix(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not an index at all")
    with pytest.raises(InputError) as err:
        open_index(DecontamConfig(index=str(garbage)))
    message = str(err.value)
    assert message.startswith(f"decontamination index {garbage} is corrupt or not an index (") and message.endswith(
        f"). {FIX}"
    )

    partial = tmp_path / "partial.npz"
    with zipfile.ZipFile(DEFAULT_INDEX) as src, zipfile.ZipFile(partial, "w") as dst:
        for name in src.namelist():
            if name != "item.npy":
                dst.writestr(name, src.read(name))
    with pytest.raises(InputError) as err:
        load_index(partial)
    assert str(err.value) == f"decontamination index {partial} is corrupt: arrays ['item'] are missing. {FIX}"

    unsorted = tmp_path / "unsorted.npz"
    with np.load(DEFAULT_INDEX) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["hashes"] = arrays["hashes"][::-1].copy()
    np.savez(unsorted, **arrays)
    with pytest.raises(InputError) as err:
        load_index(unsorted)
    assert (
        str(err.value)
        == f"decontamination index {unsorted} is corrupt: its arrays do not agree (types, lengths or order). {FIX}"
    )


def test_ngram_must_match_the_index() -> None:
    with pytest.raises(ConfigError) as err:
        open_index(DecontamConfig(ngram=8))
    assert str(err.value) == (
        f"decontam.ngram is 8 but the index {DEFAULT_INDEX} holds 13-word n-grams. "
        "Fix: set decontam.ngram: 13, or rebuild the index with `curate decontam build-index --input BENCHMARK_FILES "
        f"--output {DEFAULT_INDEX} --ngram 8`"
    )


# ---------------------------------------------------------------------- curate run


@pytest.mark.slow
def test_curate_run_drops_a_contaminated_page_and_its_duplicate_before_dedup(
    tmp_path: Path, run_curate, config_file, articles: list[dict[str, str]]
) -> None:
    from conftest import Inputs

    english = [a for a in articles if a["text"].isascii() and len(a["text"].split()) > 300][:4]
    pasted = paste(english[0]["text"], GSM8K_TEST_0)
    records = [
        {"id": "pasted", "text": pasted, "url": "https://news.example/a"},
        {"id": "pasted-copy", "text": pasted, "url": "https://mirror.example/a"},
    ]
    records += [{"id": f"clean-{i}", "text": a["text"]} for i, a in enumerate(english[1:])]
    source = Inputs(tmp_path / "in").jsonl("web.jsonl", records)
    config = config_file(tmp_path / "c.yaml", name="decontam-run", quality={"enabled": False})
    result = run_curate(config, [source], tmp_path / "out")
    ledger = {r["id"]: r for r in result.ledger().to_dicts()}
    # Both copies leave as contaminated, neither as the other's duplicate: hygiene runs before dedup.
    for doc_id in ("pasted", "pasted-copy"):
        assert (ledger[doc_id]["stage"], ledger[doc_id]["reason"], ledger[doc_id]["value"]) == (
            "decontam",
            "contaminated",
            "gsm8k",
        )
    assert not any(r["stage"] == "decontam" for k, r in ledger.items() if k.startswith("clean-"))
    table = {b["name"]: b for b in result.manifest["counts"]["contamination"]["benchmarks"]}
    assert table["gsm8k"]["web"] == 2 and sum(b["web"] for b in table.values()) == 2


def test_release_card_sums_contamination_over_runs() -> None:
    from curate.hygiene.report import merge_contamination
    from curate.release.tables import _contamination, markdown_table

    def run(gsm8k_web: int, humaneval_gen: int) -> dict:
        bench = [
            {
                "name": "gsm8k",
                "split": "test",
                "licence": "MIT",
                "items": 2,
                "ngrams": 80,
                "web": gsm8k_web,
                "generated": 0,
            },
            {
                "name": "humaneval",
                "split": "test",
                "licence": "MIT",
                "items": 1,
                "ngrams": 40,
                "web": 0,
                "generated": humaneval_gen,
            },
        ]
        return {
            "index": "default-index.npz",
            "ngram": 13,
            "min_span_words": 30,
            "min_item_share": 0.5,
            "unavailable": {},
            "benchmarks": bench,
        }

    merged = merge_contamination([run(2, 0), None, run(1, 3)])
    assert merged is not None
    assert [(b["name"], b["web"], b["generated"]) for b in merged["benchmarks"]] == [
        ("gsm8k", 3, 0),
        ("humaneval", 0, 3),
    ]
    table = markdown_table(_contamination(merged))
    assert "| gsm8k | test | MIT | 2 | 80 | 3 | 0 |" in table and "longest matched span reaches 30 words" in table
    assert merge_contamination([None, None]) is None


def test_normalise_is_datatrove_simplify_text_exactly(articles: list[dict[str, str]], shared_data: Path) -> None:
    """curate's faster normalisation (one regex for punctuation and whitespace, combining marks
    dropped by a table) gives datatrove's `simplify_text` string, on real text (article bodies
    and their raw HTML: tags, entities, scripts, many languages) and on random strings built
    from the characters where the steps could differ."""
    import random

    from datatrove.utils.text import PUNCTUATION, simplify_text

    from curate.hygiene.ngrams import NORM, normalise

    samples = [a["text"] for a in articles]
    html_dir = shared_data / "article-extraction-benchmark" / "html"
    samples += [p.read_bytes().decode("utf-8", "replace") for p in sorted(html_dir.iterdir())[:60]]
    rng = random.Random(18)
    alphabet = (
        list(PUNCTUATION)
        + list("aZ09 \t\n\r\x0b\x0c\x1c\x85\xa0\u2000\u2028\u3000")
        + list("\u0301\u0308\u0327\u064b\u05b4\u0e31\u20dd")  # combining marks (Mn) and an enclosing one (Me)
        + list("éÅçñöİßﬁ½²٣߂१٫۔१٬¾Ⅻ")  # decomposable letters, digits of other scripts, separators
        + list("😀中文Ωσς")
    )
    samples += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60))) for _ in range(3000)]
    for text in samples:
        assert normalise(text) == simplify_text(text, NORM), repr(text[:200])

"""Synthetic generation without a model: bad input fails before work with a message naming
the fix; the plan is deterministic; output checks; the diversity report; and the whole
post-generation path (checks, dedup against the corpus, ledger, layout, resume) over raw
batches already on disk, which is also how a rerun after a crash sees them."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import Field

from curate.config import CurateConfig
from curate.core import schema as S
from curate.core.errors import ConfigError, InputError
from curate.synth import generate as G
from curate.synth.diversity import diversity_report
from curate.synth.generate_config import GenerateConfig
from curate.synth.postprocess import EMPTY, REPETITIVE, TOO_SHORT, TRUNCATED, WRONG_LANGUAGE, OutputChecker, clean
from curate.synth.prompts import load_templates, plan, template_sampling
from curate.synth.seeds import Seed, collect_seeds, topic_of
from filters.language import LanguageConfig

# Until CurateConfig carries `generate:` itself, a config class that does (the same field).
if "generate" in CurateConfig.model_fields:
    Config = CurateConfig
else:

    class Config(CurateConfig):  # type: ignore[no-redef]
        generate: GenerateConfig = Field(default_factory=GenerateConfig)


ENGLISH = (
    "Photosynthesis is the process by which green plants turn light into chemical energy. Inside the "
    "chloroplasts, chlorophyll absorbs red and blue light and uses its energy to split water molecules. "
    "The oxygen we breathe is released as a by-product of that split. The hydrogen and the energy captured "
    "from light are then used to build sugars from carbon dioxide taken in through small pores in the leaves. "
    "Those sugars feed the plant, and through food chains they feed almost every other living thing on Earth. "
    "Scientists measure the rate of photosynthesis by counting the bubbles of oxygen a water plant gives off "
    "under lamps of different brightness, and they find that the rate rises with light until another factor, "
    "such as the supply of carbon dioxide or the temperature, becomes the limit."
)
TIDES = (
    "Tides are the slow rise and fall of the sea that coastal towns see about twice a day. They happen because "
    "the Moon's gravity pulls hardest on the side of the Earth that faces it, drawing the water there into a bulge, "
    "while a second bulge forms on the far side where the pull is weakest. As the Earth turns beneath these two "
    "bulges, each beach passes through high water and low water roughly every twelve hours and twenty-five minutes. "
    "When the Sun and the Moon line up at new and full moon their pulls add together and give spring tides, with "
    "the largest range; at the quarter moons they partly cancel and give the smaller neap tides."
)
HEART = (
    "The human heart is a muscular pump about the size of a fist, with four chambers. The right side receives blood "
    "that has delivered its oxygen to the body and sends it to the lungs, where it picks up fresh oxygen and releases "
    "carbon dioxide. The left side, whose wall is much thicker, pushes that oxygen-rich blood out through the aorta to "
    "every organ. Valves between the chambers open and close in a fixed order so that blood only flows one way, and "
    "the familiar lub-dub sound of a heartbeat is the noise of those valves snapping shut. A resting adult heart "
    "beats around seventy times a minute and moves about five litres of blood in that time."
)
FRENCH = (
    "La photosynthèse est le processus par lequel les plantes vertes transforment la lumière en énergie chimique. "
    "Dans les chloroplastes, la chlorophylle absorbe la lumière rouge et bleue et utilise son énergie pour "
    "décomposer les molécules d'eau. L'oxygène que nous respirons est libéré comme sous-produit de cette "
    "réaction, et les sucres fabriqués nourrissent la plante puis presque tous les êtres vivants de la Terre. "
    "Les scientifiques mesurent la vitesse de la photosynthèse en comptant les bulles d'oxygène."
)


def make_cfg(tmp_path: Path, engine: dict[str, object] | None = None, **generate: object) -> CurateConfig:
    data = {"name": "gen-test", "generate": {"min_words": 40, **generate}, "engine": engine or {}}
    return Config.model_validate(data)


def corpus(tmp_path: Path, texts: dict[str, str]) -> Path:
    folder = tmp_path / "release" / "data"
    folder.mkdir(parents=True)
    rows = [{S.ID: k, S.TEXT: v, S.SOURCE: "test", S.OFFSET: i} for i, (k, v) in enumerate(texts.items())]
    pq.write_table(pa.Table.from_pylist(rows, schema=S.DOCUMENT_SCHEMA), folder / "part-00000.parquet")
    return folder.parent


# ------------------------------------------------------------------ bad input, before work


def test_no_seeds_fails_before_work(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path)
    with pytest.raises(
        ConfigError,
        match=r"no seeds to generate from: no input documents and no generate.topics_file\. Fix: pass --input",
    ):
        G.generate_command(cfg, None, 2, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing written
    short = corpus(tmp_path, {"a": "Too short to ground anything."})
    with pytest.raises(ConfigError, match=r"held no document of 50\+ words"):
        G.generate_command(cfg, short, 2, tmp_path / "out")


def test_old_nested_engine_key_names_the_fix(tmp_path: Path) -> None:
    from curate.config import load_config

    recipe = tmp_path / "old.yaml"
    recipe.write_text("generate:\n  n: 4\n  engine:\n    kind: vllm\n    max_num_seqs: 16\n")
    with pytest.raises(ConfigError) as info:
        load_config(recipe)
    assert (
        "generate.engine: no longer read here: one top-level engine: section serves generation and LLM annotation. "
        "Fix: move these keys to the top-level engine: section and delete generate.engine (got {'kind': 'vllm', "
        "'max_num_seqs': 16})."
    ) in str(info.value)
    recipe.write_text("generate:\n  n: 4\nengine:\n  kind: vllm\n  max_num_seqs: 16\n")
    cfg = load_config(recipe)
    assert cfg.engine.max_num_seqs == 16 and "engine" not in cfg.generate.model_dump()


def test_empty_topic_file_fails_before_work(tmp_path: Path) -> None:
    topics = tmp_path / "topics.txt"
    topics.write_text("\n  \n# only a comment\n")
    cfg = make_cfg(tmp_path, topics_file=str(topics))
    with pytest.raises(InputError, match=r"holds no topics\. Fix: write one topic per line"):
        G.generate_command(cfg, None, 2, tmp_path / "out")
    cfg = make_cfg(tmp_path, topics_file=str(tmp_path / "missing.txt"))
    with pytest.raises(InputError, match=r"topics file not found: .*missing.txt\. Fix: set generate.topics_file"):
        G.generate_command(cfg, None, 2, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_template_with_unknown_placeholder_fails_naming_both(tmp_path: Path) -> None:
    folder = tmp_path / "prompts"
    folder.mkdir()
    (folder / "ok.yaml").write_text("id: ok\nversion: 1\nformat: essay\nuser: Write about {topic} for {audience}.\n")
    (folder / "bad.yaml").write_text(
        "id: bad_one\nversion: 2\nformat: essay\nsystem: You write.\nuser: Write about {topic} in {langauge}.\n"
    )
    topics = tmp_path / "topics.txt"
    topics.write_text("tides\n")
    cfg = make_cfg(tmp_path, templates_dir=str(folder), topics_file=str(topics))
    with pytest.raises(
        ConfigError,
        match=r"prompt template 'bad_one' \(.*bad.yaml\), user: unknown placeholder \{langauge\}\. Fix: use only "
        r"\{audience\}",
    ):
        G.generate_command(cfg, None, 2, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    (folder / "bad.yaml").write_text("id: bad_one\nversion: 2\nformat: essay\nuser: 'Use a set {like this'\n")
    with pytest.raises(ConfigError, match=r"bad.yaml \(user\): .*Fix: write literal braces as \{\{ and \}\}"):
        load_templates(folder)
    (folder / "bad.yaml").write_text("id: ok\nversion: 2\nformat: essay\nuser: '{topic}'\n")
    with pytest.raises(ConfigError, match=r"template id 'ok' is used by both"):
        load_templates(folder)


def test_unknown_template_id_names_the_known_ones() -> None:
    with pytest.raises(
        ConfigError,
        match=r"unknown template id\(s\) textbok; .* has exercises, how_to, lecture_notes, rephrase_encyclopedia, "
        r"rephrase_qa, rephrase_textbook, story_children, textbook_academic, textbook_narrative",
    ):
        load_templates("", ["textbok"])


# ------------------------------------------------------------------------------- the plan


def test_shipped_templates_cover_the_formats() -> None:
    templates = {t.id: t for t in load_templates("")}
    assert {"textbook_academic", "textbook_narrative", "lecture_notes", "story_children", "how_to", "exercises"} <= set(
        templates
    )
    assert templates["story_children"].audience == "young children"
    assert templates["lecture_notes"].audience == "college students"


def test_plan_is_deterministic_and_prefix_stable() -> None:
    seeds = [Seed(f"topic:{i}", f"topic {i}", "", None) for i in range(3)]
    templates = load_templates("")
    sampling = {"temperature": 0.6, "top_p": 0.95, "max_tokens": 200}
    long = plan(seeds, templates, ["college students", "general readers"], 10, 7, "m", sampling)
    short = plan(seeds, templates, ["college students", "general readers"], 4, 7, "m", sampling)
    assert [p.id for p in short] == [p.id for p in long[:4]]
    assert len({p.id for p in long}) == 10
    # every seed before any seed twice; a seed's second round uses another template/audience
    assert [p.seed.id for p in long[:3]] == [s.id for s in seeds]
    assert (long[0].template.id, long[0].audience) != (long[3].template.id, long[3].audience)
    other = plan(seeds, templates, ["college students", "general readers"], 4, 8, "m", sampling)
    assert [p.id for p in other] != [p.id for p in short]  # generate.seed changes the plan
    assert "{" not in long[0].user and "topic" in long[0].user


def test_seeds_from_documents_carry_topic_and_extract(tmp_path: Path) -> None:
    release = corpus(tmp_path, {"doc-1": "# Photosynthesis\n\n" + ENGLISH, "doc-2": "Too short."})
    seeds = collect_seeds(G.corpus_parts(release), "", 300, 50, 0)
    assert [(s.id, s.doc_id, s.topic) for s in seeds] == [("doc:doc-1", "doc-1", "Photosynthesis")]
    assert seeds[0].text.startswith("# Photosynthesis") and len(seeds[0].text) <= 300 and seeds[0].text.endswith(".")
    assert topic_of(ENGLISH) == "Photosynthesis is the process by which green plants turn light into chemical..."


def _big_corpus(tmp_path: Path, docs: int, parts: int) -> list[Path]:
    """`docs` documents of ~70 words (every 7th too short to seed) over `parts` files of
    row groups of 500 rows."""
    folder = tmp_path / "big"
    folder.mkdir()
    words = ENGLISH.split()
    paths = []
    for p in range(parts):
        rows = []
        for i in range(p, docs, parts):
            text = f"Topic {i}\n\n" + " ".join(words[(i % 40) :] + words[: (i % 40)]) if i % 7 else "Too short."
            rows.append({S.ID: f"doc-{i}", S.TEXT: text, S.SOURCE: "test", S.OFFSET: i})
        path = folder / f"part-{p:05d}.parquet"
        pq.write_table(pa.Table.from_pylist(rows, schema=S.DOCUMENT_SCHEMA), path, row_group_size=500)
        paths.append(path)
    return paths


def test_seeds_are_a_bounded_deterministic_sample_giving_the_same_plan(tmp_path: Path) -> None:
    import tracemalloc

    parts = _big_corpus(tmp_path, 6_000, 3)
    tracemalloc.start()
    bounded = collect_seeds(parts, "", 300, 50, 7, limit=20)
    _, peak_bounded = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    base, _ = tracemalloc.get_traced_memory()
    every = collect_seeds(parts, "", 300, 50, 7)
    peak_all = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    assert len(every) == 6_000 - len(range(0, 6_000, 7))  # the short ones never seed
    assert bounded == every[:20]  # exactly the first 20 of the full order
    assert collect_seeds(parts[::-1], "", 300, 50, 7, limit=20) == bounded  # input order does not matter
    assert collect_seeds(parts, "", 300, 50, 8, limit=20) != bounded  # generate.seed does
    # Memory follows the sample, not the corpus: the full list holds 5k extracts.
    assert peak_bounded * 10 < peak_all, (peak_bounded, peak_all)
    # The plan of n prompts is the same from the first n seeds as from all of them.
    templates = load_templates("", ["textbook_academic", "how_to"])
    sampling = {"max_tokens": 100}
    assert [p.id for p in plan(bounded, templates, ["kids"], 20, 7, "m", sampling)] == [
        p.id for p in plan(every, templates, ["kids"], 20, 7, "m", sampling)
    ]
    few = collect_seeds(parts[:1], "", 300, 50, 7, limit=5_000)  # fewer seeds than prompts: all of them
    assert len(few) == len([s for s in every if int(s.doc_id.split("-")[1]) % 3 == 0])


# --------------------------------------------------------------------------- output checks


def test_clean_strips_chat_artifacts_only() -> None:
    assert (
        clean("Sure! Here is a textbook section on tides:\n\n# Tides\nThe moon pulls.<|im_end|>")
        == "# Tides\nThe moon pulls."
    )
    assert clean("```markdown\n# Title\nBody text.\n```") == "# Title\nBody text."
    assert clean("Certainly.\nHere is the section:\nBody.\n\nI hope this helps!") == "Body."
    assert clean("Sure enough, the tide came in.") == "Sure enough, the tide came in."
    assert clean("Here is why tides matter: gravity.") == "Here is why tides matter: gravity."


def test_checker_reasons() -> None:
    checker = OutputChecker(GenerateConfig(min_words=40), LanguageConfig())
    ok = checker.check("Sure! Here it is:\n" + ENGLISH + "<|im_end|>", "stop", None, "x")
    assert ok.reason is None and ok.lang == "en" and ok.text == ENGLISH and ok.stripped and ok.quality is not None
    assert checker.check(ENGLISH, "length", None, "x").reason == TRUNCATED
    assert checker.check("<|im_end|>", "stop", None, "x").reason == EMPTY
    assert checker.check("A short answer.", "stop", None, "x").reason == TOO_SHORT
    assert checker.check(FRENCH, "stop", None, "x").reason == WRONG_LANGUAGE
    looping = "\n\n".join(["The plant grows towards the light because the light is good for the plant."] * 8)
    verdict = checker.check(looping, "stop", None, "x")
    assert verdict.reason == REPETITIVE and verdict.value == "dup_para_frac"
    trim = OutputChecker(GenerateConfig(min_words=40, truncated="trim", score_quality=False), LanguageConfig())
    cut = trim.check(ENGLISH + " And then the leaf", "length", None, "x")
    assert cut.reason is None and cut.text == ENGLISH


def test_diversity_report_measures_once_upon_a_time() -> None:
    texts = ["Once upon a time there was a fox."] * 3 + ["Tides rise twice a day.", "Binary search halves the range."]
    r = diversity_report(
        texts,
        ["fox", "fox", "fox", "tides", "search"],
        ["fox", "tides", "search", "heart"],
        10,
        ["story"] * 3 + ["t", "t"],
        ["kids"] * 5,
    )
    assert r["top_openings"][0] == {"words": "once upon a", "documents": 3, "share": 0.6}
    assert r["openings"]["3"]["distinct"] == 3 and r["openings"]["3"]["top_share"] == 0.6
    assert r["topics"] == {
        "available": 10,
        "planned": 4,
        "covered": 3,
        "coverage_of_planned": 0.75,
        "coverage_of_available": 0.3,
    }
    assert 0 < r["distinct_4grams"] < 1


# ----------------------------------------------------- post-generation path, from raw batches


def _write_raw(
    cfg: CurateConfig, corpus_dir: Path | None, out: Path, texts: list[tuple[str, str]], raw: Path | None = None
) -> list[str]:
    """Raw batches as generate_raw writes them, for the plan `cfg` makes: what a crashed run
    leaves behind. Returns the prompt ids."""
    parts = G.corpus_parts(corpus_dir) if corpus_dir else []
    prompts, _, _ = G.make_plan(cfg, parts, len(texts))
    size = cfg.generate.batch_size
    raw = raw or out / "_work" / "generate" / "raw"
    raw.mkdir(parents=True)
    for b in range(0, len(prompts), size):
        batch = prompts[b : b + size]
        rows = [
            {
                "prompt_id": p.id,
                "index": p.index,
                "text": t,
                "finish_reason": r,
                "error": "boom" if r == "error" else None,
                "prompt_tokens": 10,
                "completion_tokens": 100,
            }
            for p, (t, r) in zip(batch, texts[b : b + size])
        ]
        pq.write_table(
            pa.Table.from_pylist(rows, schema=G.RAW_SCHEMA),
            raw / f"batch-{b // size:05d}-{G._batch_digest(batch)}.parquet",
        )
    return [p.id for p in prompts]


def test_command_from_cached_batches_checks_dedups_and_accounts(tmp_path: Path) -> None:
    corpus_text = "# Photosynthesis\n\n" + ENGLISH
    release = corpus(tmp_path, {"web-1": corpus_text, "web-2": "# Tides\n\n" + TIDES})
    # engine.model points nowhere: opening the engine would fail, so success proves the
    # cached batches were used and nothing was regenerated.
    cfg = make_cfg(tmp_path, batch_size=2, engine={"model": str(tmp_path / "no-model")}, score_quality=True)
    out = tmp_path / "out"
    ids = _write_raw(
        cfg,
        release,
        out,
        [
            ("Sure! Here is the section:\n" + HEART + "<|im_end|>", "stop"),  # kept, artifacts stripped
            (FRENCH, "stop"),  # wrong language
            (corpus_text, "stop"),  # exact copy of a corpus document
            (
                TIDES.replace("coastal towns", "harbour towns") + " Sailors print tables of them.",
                "stop",
            ),  # near copy of web-2
            ("```markdown\n" + HEART + "\n```", "stop"),  # the same text as prompt 0 once the fence is gone
            (TIDES, "length"),  # cut off by max_tokens
        ],
    )
    manifest = json.loads(G.generate_command(cfg, release, 6, out).read_text())
    assert manifest["counts"]["ingested"] == 6 and manifest["counts"]["kept"] + manifest["counts"]["rejected"] == 6
    table = pq.read_table(out / "data" / "part-00000.parquet")
    assert table.schema.equals(G.GENERATED_SCHEMA)
    rows = table.to_pylist()
    assert [(r[S.ID], r[S.TEXT]) for r in rows] == [(f"synth-{ids[0]}", HEART)]
    for r in rows:
        assert (
            r["synthetic"] is True
            and r["gen_model"] == str(tmp_path / "no-model")
            and r["gen_template"]
            and r["gen_template_version"] == "1"
        )
        assert r["gen_seed_doc"] in {"web-1", "web-2"} and r["gen_random_seed"] is not None
        # the sampling this template's prompts used: defaults, then the template's own
        assert json.loads(r["gen_sampling"]) == template_sampling(load_templates("", [r["gen_template"]])[0], None)
        assert r[S.LANG] == "en" and 0 <= r["quality_score"] <= 1
    ledger = {r["id"]: r for r in pq.read_table(out / "rejected").to_pylist()}
    assert {k: (v["stage"], v["reason"], v["duplicate_of"]) for k, v in ledger.items()} == {
        f"synth-{ids[1]}": ("generate", "wrong_language", None),
        f"synth-{ids[2]}": ("generate", "exact_duplicate", "web-1"),  # the corpus document wins
        f"synth-{ids[3]}": ("generate", "near_duplicate", "web-2"),
        f"synth-{ids[4]}": ("generate", "exact_duplicate", f"synth-{ids[0]}"),  # the earlier prompt wins
        f"synth-{ids[5]}": ("generate", "truncated", None),
    }
    diversity = json.loads((out / "diversity.json").read_text())
    assert diversity["documents"] == 1 and manifest["counts"]["diversity"] == diversity
    gen = manifest["counts"]["generate"]["generation"]
    assert gen["batches_reused"] == gen["batches"] == 3 and gen["requests"] == 0


def test_error_rows_are_retried_and_open_the_engine(tmp_path: Path) -> None:
    """A batch holding a failed request is not final: the rerun asks the engine again (here
    the engine cannot open, which proves it was asked, and the error names the fix)."""
    topics = tmp_path / "topics.txt"
    topics.write_text("tides\nvolcanoes\n")
    cfg = make_cfg(tmp_path, topics_file=str(topics), engine={"model": str(tmp_path / "no-model")})
    out = tmp_path / "out"
    _write_raw(cfg, None, out, [(ENGLISH, "stop"), ("", "error")])
    from curate.llm.engines.base import EngineError

    with pytest.raises(EngineError, match=r"engine.model: the folder .*no-model does not exist\. Fix:"):
        G.generate_command(cfg, None, 2, out)


def test_stage_adds_a_synthetic_part_and_ledger_for_curate_run(tmp_path: Path) -> None:
    release = corpus(tmp_path, {"web-1": "# Tides\n\n" + TIDES})
    cfg = make_cfg(tmp_path, enabled=True, n=2, engine={"model": str(tmp_path / "no-model")})
    work = tmp_path / "_work"
    ids = _write_raw(cfg, release, tmp_path, [(HEART, "stop"), (TIDES, "stop")], raw=work / "generate-raw")
    parts, ledger = G.generate_stage(cfg, G.corpus_parts(release), work / "generate-abc")
    assert parts[0] == G.corpus_parts(release)[0] and len(parts) == 2
    assert pq.read_table(parts[1]).column(S.ID).to_pylist() == [f"synth-{ids[0]}"]
    [row] = pq.read_table(ledger[0]).to_pylist()
    assert (row["id"], row["stage"], row["reason"], row["duplicate_of"]) == (
        f"synth-{ids[1]}",
        "generate",
        "near_duplicate",
        "web-1",
    )
    stats = G.read_generate_stats(ledger[0])
    assert stats["prompts"] == 2 and stats["kept"] == 1 and stats["diversity"]["documents"] == 1

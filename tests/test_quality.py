"""The quality classifier: metrics from first principles, normalisation, labels, the
train -> eval -> apply round trip with real fastText, the shipped model, and the CLI."""

from __future__ import annotations

import hashlib
import itertools
import json
import random
from pathlib import Path

import pytest
from conftest import quality_data_script, require_or_skip
from datatrove.data import Document

from curate.cli import build_parser, cmd_classifier
from curate.core.errors import ConfigError, InputError
from curate.core.schema import META_QUALITY, META_REJECT
from curate.quality.apply import QualityAnnotator
from curate.quality.evaluate import best_f1_threshold, binary_metrics, evaluate, roc_auc
from curate.quality.labels import read_labelled
from curate.quality.model import DEFAULT_MODEL, QualityModel, card_path, load_card
from curate.quality.normalize import normalize
from curate.quality.train import (
    DETERMINISTIC_FIX,
    TrainParams,
    fasttext_distribution,
    fasttext_is_deterministic,
    heldout_mask,
    train_classifier,
)

# Metrics, against brute force


def pairwise_auc(scores: list[float], labels: list[int]) -> float:
    """The definition: the share of (positive, negative) pairs ranked right, ties 1/2."""
    pos = [s for s, y in zip(scores, labels) if y == 1]
    neg = [s for s, y in zip(scores, labels) if y == 0]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


def test_roc_auc_perfect_inverted_and_tied() -> None:
    labels = [0, 0, 1, 1]
    assert roc_auc([0.1, 0.2, 0.8, 0.9], labels) == 1.0
    assert roc_auc([0.9, 0.8, 0.2, 0.1], labels) == 0.0
    assert roc_auc([0.5, 0.5, 0.5, 0.5], labels) == 0.5


def test_roc_auc_one_misranked_pair() -> None:
    # positives 0.35 and 0.8, negatives 0.1 and 0.4: 3 of the 4 pairs are ranked right
    scores, labels = [0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]
    assert roc_auc(scores, labels) == pytest.approx(3 / 4)


def test_roc_auc_matches_pair_counting_with_ties() -> None:
    rng = random.Random(7)
    for _ in range(50):
        n = rng.randint(2, 40)
        scores = [rng.choice([0.0, 0.25, 0.5, 0.75, 1.0, rng.random()]) for _ in range(n)]
        labels = [rng.randint(0, 1) for _ in range(n)]
        if len(set(labels)) < 2:
            assert roc_auc(scores, labels) is None  # undefined, not a made-up 0.5
            continue
        assert roc_auc(scores, labels) == pytest.approx(pairwise_auc(scores, labels))


def test_binary_metrics_by_hand() -> None:
    # threshold 0.5: predicted positive = {0.6, 0.9, 0.7}; tp = 0.9, 0.7 (label 1); fp = 0.6
    m = binary_metrics([0.2, 0.6, 0.9, 0.4, 0.7], [0, 0, 1, 1, 1], 0.5)
    assert (m["tp"], m["fp"], m["tn"], m["fn"]) == (2, 1, 1, 1)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    assert m["accuracy"] == pytest.approx(3 / 5)


def test_best_f1_threshold_is_the_brute_force_best() -> None:
    rng = random.Random(3)
    for _ in range(30):
        scores = [round(rng.random(), 2) for _ in range(25)]
        labels = [int(rng.random() < s) for s in scores]
        if 1 not in labels:
            continue
        best = max(binary_metrics(scores, labels, t)["f1"] for t in set(scores))
        chosen = best_f1_threshold(scores, labels)
        assert binary_metrics(scores, labels, chosen)["f1"] == pytest.approx(best)


# ---------------------------------------------------------------------------------------
# Normalisation and labels


def test_normalize_removes_source_markers_and_keeps_sentence_punctuation() -> None:
    out = normalize(
        "The Cell, explained!\nSee https://example.org/x?y=1 or write to a@b.org. It costs $19.99 | Home » Shop — don’t"
    )
    assert out == out.lower() and "\n" not in out
    assert "http" not in out and "example" not in out and "@" not in out
    assert "19" not in out and "00 . 00" in out  # digits become 0s, the number's shape stays
    tokens = out.split()
    assert tokens[:4] == ["the", "cell", ",", "explained"] and tokens[-1] == "don't"
    assert not {"|", "»", "$", "—"} & set(out)
    assert normalize("a" * 50, max_chars=10) == "a" * 10
    assert normalize("Café au lait, 3 ½ cups.\ud800").split() == ["café", "au", "lait", ",", "0", "½", "cups", "."]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_labels_scores_binary_and_unlabelled(tmp_path: Path) -> None:
    scores = write_jsonl(
        tmp_path / "s.jsonl", [{"text": "a", "label": s} for s in (0, 2, 3, 5)] + [{"text": "b", "label": None}]
    )
    texts, labels, info = read_labelled(scores, score_threshold=3)
    assert labels == [0, 0, 1, 1] and info["label_kind"] == "score" and info["skipped_unlabelled"] == 1
    _, labels, _ = read_labelled(scores, score_threshold=2)
    assert labels == [0, 1, 1, 1]
    binary = write_jsonl(tmp_path / "b.jsonl", [{"text": "a", "label": y} for y in (0, 1, 1)])
    _, labels, info = read_labelled(binary)
    assert labels == [0, 1, 1] and info["label_kind"] == "binary"


def test_labels_errors_name_the_line_and_fix(tmp_path: Path) -> None:
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"text": "a", "label": 1}, {"text": "b", "label": 9}])
    with pytest.raises(InputError, match=r"bad\.jsonl:2: label=9.0 is outside 0-5"):
        read_labelled(bad)
    missing = write_jsonl(tmp_path / "m.jsonl", [{"body": "a", "label": 1}])
    with pytest.raises(InputError, match="--text-field"):
        read_labelled(missing)


def test_heldout_split_keeps_groups_together() -> None:
    groups = [f"doc{i // 3}" for i in range(300)]
    mask = heldout_mask(groups, 0.2, seed=1)
    for g in set(groups):
        assert len({m for m, gg in zip(mask, groups) if gg == g}) == 1
    assert 0.08 < sum(mask) / len(mask) < 0.35
    assert mask != heldout_mask(groups, 0.2, seed=2)


# ---------------------------------------------------------------------------------------
# Train -> eval -> apply, on a generated labelled set

EDU = (
    "the process of photosynthesis converts light energy into chemical energy . plants use "
    "water and carbon dioxide to make glucose , and oxygen is released as a result . "
    "for example , a leaf contains chloroplasts , which absorb light . this explains why "
    "plants need sunlight to grow . in other words , energy flows from the sun to living things . "
    "scientists describe the water cycle as evaporation , condensation and precipitation ."
).split()
WEB = (
    "add to cart free shipping on orders over 0 buy now limited offer sign in register "
    "home about contact privacy policy terms subscribe newsletter click here best deals "
    "sale price in stock customer reviews share tweet follow us menu search login cookies"
).split()


# Neutral filler words shared by both classes: fastText's training breaks down ("Encountered
# NaN") on a vocabulary of a few dozen words, and real text never has one that small.
FILLER = ["".join(p) for p in itertools.product("bdfgklmnprst", "aeiou", "nrs")][:150]


def fake_docs(n: int, seed: int) -> list[dict]:
    """Half explanatory, half shop/nav, each with 20% words of the other kind and 30% shared
    filler, so the task is learnable but not trivially separable by one word."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = i % 2
        own, other = (EDU, WEB) if label else (WEB, EDU)
        words = [
            rng.choice(FILLER if (r := rng.random()) < 0.3 else other if r < 0.5 else own)
            for _ in range(rng.randint(40, 120))
        ]
        rows.append({"text": " ".join(words), "label": label, "group": f"g{i}"})
    return rows


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, Path]:
    tmp = tmp_path_factory.mktemp("quality")
    data = write_jsonl(tmp / "train.jsonl", fake_docs(400, seed=1))
    model = tmp / "toy.bin"
    try:
        card = train_classifier(
            data,
            model,
            params=TrainParams(epoch=20, bucket=20_000, dim=16),
            heldout=0.2,
            provenance={"source": "generated in test"},
        )
    except RuntimeError as exc:
        if "NaN" in str(exc) and not fasttext_is_deterministic():
            # fasttext-numpy2-wheel fails training at random, more often in a long process
            # (measured: every retry in the full suite); a property of that build, see train.py.
            require_or_skip(
                f"{fasttext_distribution()} cannot train reliably here. Fix: {DETERMINISTIC_FIX}", xfail=True
            )
        raise
    return model, card, data


def test_train_writes_model_and_card(trained: tuple[Path, dict, Path]) -> None:
    model, card, _ = trained
    assert model.is_file() and card_path(model).is_file()
    on_disk = load_card(model)
    assert on_disk == card
    assert on_disk["model_sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()
    assert on_disk["data"]["documents"] == 400 and on_disk["data"]["provenance"] == {"source": "generated in test"}
    split = on_disk["split"]
    assert split["heldout"] + split["train"] + split["heldout_near_duplicates_dropped"] == 400
    assert (
        split["heldout_near_duplicates_dropped"] == 0 and split["near_duplicates_after_filtering"] == 0
    )  # independent random texts
    assert on_disk["hyperparameters"]["seed"] == 1 and on_disk["hyperparameters"]["thread"] == 1
    m = on_disk["heldout_metrics"]
    assert m["n"] == on_disk["split"]["heldout"] and m["roc_auc"] > 0.9
    assert 0 < on_disk["threshold"] < 1


def test_training_is_deterministic(trained: tuple[Path, dict, Path], tmp_path: Path) -> None:
    model, card, data = trained
    if not fasttext_is_deterministic():
        # A property of the installed fastText build, measured: see curate.quality.train.
        require_or_skip(
            f"{fasttext_distribution()} trains a different model on each run. Fix: {DETERMINISTIC_FIX}", xfail=True
        )
    again = train_classifier(
        data, tmp_path / "again.bin", params=TrainParams(epoch=20, bucket=20_000, dim=16), heldout=0.2
    )
    assert again["model_sha256"] == card["model_sha256"]
    assert again["threshold"] == card["threshold"]


def test_eval_on_new_documents(trained: tuple[Path, dict, Path], tmp_path: Path) -> None:
    model, card, _ = trained
    test = write_jsonl(tmp_path / "test.jsonl", [{"body": r["text"], "y": r["label"]} for r in fake_docs(100, seed=99)])
    result = evaluate(model, test, text_field="body", label_field="y")
    assert result["n"] == 100 and result["positives"] == 50
    assert result["roc_auc"] > 0.9 and result["f1"] > 0.8
    assert result["threshold"] == card["threshold"]  # the card's, not 0.5
    qm = QualityModel(model)
    scores = qm.score([r["text"] for r in fake_docs(100, seed=99)])
    recomputed = binary_metrics(scores, [i % 2 for i in range(100)], card["threshold"])
    assert recomputed["f1"] == pytest.approx(result["f1"])


def test_apply_scores_every_document_with_text(trained: tuple[Path, dict, Path]) -> None:
    model, _, _ = trained
    rows = fake_docs(40, seed=5)
    docs = [Document(text=r["text"], id=str(i), metadata={}) for i, r in enumerate(rows)]
    docs.append(Document(text="", id="empty", metadata={}))
    docs.append(Document(text="add to cart", id="rejected", metadata={META_REJECT: ("too_large", "x")}))
    out = list(QualityAnnotator(str(model), scorer="edu").run(iter(docs)))
    assert [d.id for d in out] == [d.id for d in docs]  # drops nothing, keeps order
    scored = out[:40]
    assert all(0.0 <= d.metadata[META_QUALITY] <= 1.0 for d in scored)
    assert META_QUALITY not in out[40].metadata and META_QUALITY not in out[41].metadata
    edu = [d.metadata[META_QUALITY] for d, r in zip(scored, rows) if r["label"] == 1]
    web = [d.metadata[META_QUALITY] for d, r in zip(scored, rows) if r["label"] == 0]
    assert sum(edu) / len(edu) > sum(web) / len(web)
    assert roc_auc([d.metadata[META_QUALITY] for d in scored], [r["label"] for r in rows]) > 0.9


def test_annotator_pickles_without_the_model(trained: tuple[Path, dict, Path]) -> None:
    import pickle

    model, _, _ = trained
    step = QualityAnnotator(str(model), scorer="edu")
    _ = step.model
    clone = pickle.loads(pickle.dumps(step))
    assert clone._model is None and clone.model.path == model
    combined = QualityAnnotator()  # the default scorer, with the edu model it was fitted on
    _ = combined.model
    clone = pickle.loads(pickle.dumps(combined))
    assert clone._model is None and clone.model.edu_path == DEFAULT_MODEL


# ---------------------------------------------------------------------------------------
# Model files that are wrong


def test_missing_model_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.ftz"
    with pytest.raises(ConfigError, match=r"quality model not found: .*nope\.ftz.*Fix"):
        QualityModel(path)


def test_non_fasttext_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "junk.ftz"
    path.write_bytes(b"this is not a model" * 10)
    with pytest.raises(ConfigError, match=r"junk\.ftz is not a fastText quality model"):
        QualityModel(path)
    with pytest.raises(ConfigError, match=r"junk\.ftz"):
        QualityAnnotator(str(path))


def test_fasttext_model_of_another_task_is_refused() -> None:
    from filters.language import default_lid_model

    with pytest.raises(ConfigError, match=r"lid\.176\.ftz is a fastText model without the label __label__1"):
        QualityModel(default_lid_model())


# ---------------------------------------------------------------------------------------
# The shipped model


def test_shipped_model_is_small_documented_and_sensible() -> None:
    assert DEFAULT_MODEL.is_file(), f"{DEFAULT_MODEL} missing: rebuild it with scripts/build_default_quality_model.py"
    assert DEFAULT_MODEL.stat().st_size < 2_000_000
    card = load_card(DEFAULT_MODEL)
    assert card["model_sha256"] == hashlib.sha256(DEFAULT_MODEL.read_bytes()).hexdigest()
    assert card["quantized"] and 0 < card["threshold"] < 1
    assert card["data"]["provenance"]["debian_packages"] and card["heldout_metrics"]["roc_auc"] > 0.8
    qm = QualityModel(DEFAULT_MODEL)
    explain, nav = qm.score(
        [
            "Photosynthesis is the process by which green plants turn light into chemical energy. "
            "The light is absorbed by chlorophyll in the chloroplasts, and the energy is used to "
            "build glucose from carbon dioxide and water. This is why plants need sunlight to grow.",
            "Home | Shop | Cart (0) | Sign in\nFree shipping on orders over $50!\nAdd to cart\n"
            "Customer reviews\nFollow us on Facebook Twitter Instagram\nPrivacy Policy Terms of Use",
        ]
    )
    assert explain > qm.threshold > nav


# ---------------------------------------------------------------------------------------
# CLI


def run_cli(argv: list[str]) -> int:
    return cmd_classifier(build_parser().parse_args(argv))


def test_cli_train_then_eval(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", fake_docs(200, seed=2))
    model = tmp_path / "m.bin"
    assert (
        run_cli(["classifier", "train", "--input", str(data), "--output", str(model), "--epoch", "5", "--dim", "16"])
        == 0
    )
    assert "roc_auc=" in capsys.readouterr().out
    assert run_cli(["classifier", "eval", "--model", str(model), "--input", str(data)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"n", "roc_auc", "precision", "recall", "f1", "accuracy"} <= set(result) and result["n"] == 200


def test_cli_train_with_character_ngrams(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", fake_docs(200, seed=3))
    model = tmp_path / "m.bin"
    assert (
        run_cli(
            [
                "classifier",
                "train",
                "--input",
                str(data),
                "--output",
                str(model),
                "--epoch",
                "5",
                "--dim",
                "16",
                "--minn",
                "3",
                "--maxn",
                "4",
            ]
        )
        == 0
    )
    card = load_card(model)
    assert (card["hyperparameters"]["minn"], card["hyperparameters"]["maxn"]) == (3, 4)
    # The model really cuts words into 3-4 character pieces: an unseen word gets their vectors.
    subwords, _ = QualityModel(model).model.get_subwords("photosynthesis")
    assert "<ph" in subwords and "hesi" in subwords and all(len(w) in (3, 4) for w in subwords if w != "photosynthesis")
    with pytest.raises(ConfigError) as err:
        run_cli(
            [
                "classifier",
                "train",
                "--input",
                str(data),
                "--output",
                str(tmp_path / "x.bin"),
                "--minn",
                "5",
                "--maxn",
                "3",
            ]
        )
    assert (
        str(err.value)
        == "minn=5, maxn=3: character n-grams need 1 <= minn <= maxn. Fix: e.g. --set classifier.train.minn=3 --set classifier.train.maxn=6, or classifier.train.maxn=0 for none"  # noqa: E501
    )


def test_cli_eval_defaults_to_the_shipped_scores(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", fake_docs(20, seed=4))
    assert run_cli(["classifier", "eval", "--input", str(data)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["scorer"] == "combined" and {"combined", "edu"} <= set(result["scores"])
    assert run_cli(["classifier", "eval", "--model", str(DEFAULT_MODEL), "--input", str(data)]) == 0
    assert json.loads(capsys.readouterr().out)["model"] == str(DEFAULT_MODEL)


def test_min_score_defaults_to_the_card_threshold(trained: tuple[Path, dict, Path]) -> None:
    from curate.quality.config import QualityConfig, effective_min_score

    model, card, _ = trained
    assert effective_min_score(QualityConfig(model_path=str(model), scorer="edu")) == card["threshold"]
    assert effective_min_score(QualityConfig(model_path=str(model), min_score=0.9)) == 0.9
    assert effective_min_score(QualityConfig(scorer="edu")) == load_card(DEFAULT_MODEL)["threshold"]
    with pytest.raises(ValueError):
        QualityConfig(min_score=1.5)


def test_model_fingerprint_follows_the_file(trained: tuple[Path, dict, Path], tmp_path: Path) -> None:
    import shutil

    from curate.quality.config import QualityConfig, model_fingerprint

    model, card, _ = trained
    copy = tmp_path / "m.bin"
    shutil.copyfile(model, copy)
    assert model_fingerprint(QualityConfig(enabled=True, model_path=str(copy), scorer="edu")) == card["model_sha256"]
    # The combined scorer's key also covers its JSON and the general model.
    assert model_fingerprint(QualityConfig(enabled=True, model_path=str(copy))).startswith(card["model_sha256"] + "+")
    copy.write_bytes(b"other")
    assert model_fingerprint(QualityConfig(enabled=True, model_path=str(copy), scorer="edu")) != card["model_sha256"]
    assert model_fingerprint(QualityConfig(enabled=False)) == ""


# ---------------------------------------------------------------------------------------
# Held-out web-like evaluation sources


class Bunch(dict):
    """Stands for scikit-learn's Bunch in the pickled 20 Newsgroups sample gensim ships."""


def test_newsgroup_posts_reads_the_bunch_and_strips_headers(tmp_path: Path) -> None:
    import pickle
    import zlib

    from bench.webeval import newsgroup_posts

    bunch = Bunch(
        data=["From: a@b\nSubject: orbits\n\nKepler's laws describe orbits.", "Subject: hi\n\nme too"],
        target=[1, 0],
        target_names=["alt.atheism", "sci.space"],
        filenames=["/x/sci.space/61253", "/x/alt.atheism/53607"],
    )
    path = tmp_path / "mini_newsgroup"
    path.write_bytes(zlib.compress(pickle.dumps(bunch, protocol=0)))
    assert list(newsgroup_posts(path)) == [
        ("sci.space", "61253", "Kepler's laws describe orbits."),
        ("alt.atheism", "53607", "me too"),
    ]


def test_newsgroup_posts_refuses_a_pickle_that_would_run_code(tmp_path: Path) -> None:
    import os
    import pickle
    import zlib

    from bench.webeval import newsgroup_posts

    class Evil:
        def __reduce__(self) -> tuple:
            return (os.system, ("echo pwned",))

    path = tmp_path / "mini_newsgroup"
    path.write_bytes(zlib.compress(pickle.dumps(Evil(), protocol=0)))
    with pytest.raises(pickle.UnpicklingError, match=r"posix\.system is not allowed in mini_newsgroup"):
        list(newsgroup_posts(path))


def test_web_eval_labels_name_real_items() -> None:
    from bench.webeval import (
        EDUCATIONAL_PAGES,
        FAQ_NOT_EDUCATIONAL,
        FORUM_EDUCATIONAL,
        RELABELLED,
        article_pages,
        shared_data_dir,
    )

    assert all(len(k) == 5 and k.isdigit() for k in FORUM_EDUCATIONAL)  # Usenet article numbers
    assert all(name.endswith(".en.html") for name in FAQ_NOT_EDUCATIONAL)
    pages = list(article_pages(shared_data_dir()))
    ids = {p.page_id[:8] for p in pages}
    assert EDUCATIONAL_PAGES <= ids and set(RELABELLED) <= ids  # every label names a real page
    assert {p.page_id[:8] for p in pages if p.label} == EDUCATIONAL_PAGES | {k for k, v in RELABELLED.items() if v}
    held = [p for p in pages if p.heldout]
    # Corrections change labels, never the halves: the split is stratified on the first reading.
    assert len(held) == 80 and sum(p.page_id[:8] in EDUCATIONAL_PAGES for p in held) == 6
    assert sum(p.label for p in held) == 7  # the news subset of the card


def _build_script():  # scripts/ is not a package: load the build script by path
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "scripts" / "build_default_quality_model.py"
    spec = importlib.util.spec_from_file_location("build_default_quality_model", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cached_data_built_with_other_labels_is_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import bench.webeval as webeval

    build = _build_script()
    assert not build._labels_current(tmp_path)  # no provenance: build the data
    (tmp_path / "provenance.json").write_text(json.dumps({"labels_sha256": webeval.labels_fingerprint()}))
    assert build._labels_current(tmp_path)
    # A corrected label (here: one page back to 0) makes the cached data stale.
    monkeypatch.setattr(webeval, "RELABELLED", {**webeval.RELABELLED, "7bb1ca90": 0})
    assert not build._labels_current(tmp_path)


def test_news_two_fold_pools_both_halves(trained: tuple[Path, dict, Path], tmp_path: Path) -> None:
    model, _, _ = trained
    build = _build_script()
    write_jsonl(tmp_path / "train-swap.jsonl", fake_docs(200, seed=5))
    swapped = [dict(r, subset="news_body") for r in fake_docs(30, seed=6)]
    write_jsonl(tmp_path / "eval-news-swap.jsonl", swapped)
    held = [dict(r, subset="news_body") for r in fake_docs(40, seed=7)] + [
        dict(r, subset="forum") for r in fake_docs(10, seed=8)
    ]
    result = build.news_two_fold(tmp_path, model, held, seed=1)
    # 40 held-out bodies (the forum rows are not bodies) + 30 swapped ones, half of each positive.
    assert (result["n"], result["positives"]) == (70, 35)
    s_held = QualityModel(model).score([r["text"] for r in held[:40]])
    assert result["roc_auc_heldout_half"] == pytest.approx(roc_auc(s_held, [r["label"] for r in held[:40]]))
    assert result["roc_auc_swapped_half"] > 0.8  # the swapped model learnt the toy task
    assert result["roc_auc_mean_of_halves"] == pytest.approx(
        (result["roc_auc_heldout_half"] + result["roc_auc_swapped_half"]) / 2
    )
    assert 0.8 < result["roc_auc"] <= 1.0  # pooled over the 70 bodies, both models' scores together


def test_modern_web_folds_score_each_page_with_a_model_that_never_saw_its_site(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build = _build_script()
    pages = [
        dict(r, id=f"p{i}", type="article" if i % 3 else "product", fold=i % 2)
        for i, r in enumerate(fake_docs(60, seed=11))
    ]
    base = fake_docs(300, seed=12)
    # The pages' own training rows carry their fold, as build_quality_data.py writes them.
    write_jsonl(
        tmp_path / "train.jsonl",
        base + [{"text": p["text"], "label": p["label"], "group": p["id"], "fold": p["fold"]} for p in pages],
    )
    write_jsonl(tmp_path / "modern-web.jsonl", pages)
    seen_folds: list[set] = []
    real = build.curate_classifier

    def spy(argv: list[str]) -> int:  # records which folds each fold model trained on
        rows = [json.loads(line) for line in Path(argv[argv.index("--input") + 1]).read_text().splitlines()]
        seen_folds.append({r["fold"] for r in rows if "fold" in r})
        return real(argv)

    monkeypatch.setattr(build, "curate_classifier", spy)
    try:
        result = build.modern_web_folds(tmp_path, seed=1)
    except RuntimeError as exc:
        if "NaN" in str(exc) and not fasttext_is_deterministic():
            require_or_skip(
                f"{fasttext_distribution()} cannot train reliably here. Fix: {DETERMINISTIC_FIX}", xfail=True
            )
        raise
    assert seen_folds == [{1}, {0}]  # fold 0's model never saw fold 0's pages, and so on
    assert (result["n"], result["positives"]) == (60, 30)
    assert result["roc_auc"] > 0.8 and result["roc_auc_articles"] > 0.8  # the toy task is learnt


def test_modern_web_labels_are_complete_and_fingerprinted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import bench.webeval as webeval

    rows = [json.loads(line) for line in webeval.MODERN_WEB_LABELS.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == len({r["id"] for r in rows}) == 1000
    assert {r["label"] for r in rows} == {0, 1}
    assert all(len(r["sha256"]) == 16 and int(r["sha256"], 16) >= 0 and r["why"] for r in rows)
    twice = [r for r in rows if "second_label" in r]
    assert len(twice) == 180 and all(r["second_reader"] != r["reader"] for r in twice)
    # A corrected label makes cached training data stale, as for the other hand labels.
    before = webeval.labels_fingerprint()
    changed = tmp_path / "labels.jsonl"
    changed.write_text(
        "".join(json.dumps(dict(r, label=1 - r["label"]) if i == 0 else r) + "\n" for i, r in enumerate(rows)),
        encoding="utf-8",
    )
    monkeypatch.setattr(webeval, "MODERN_WEB_LABELS", changed)
    assert webeval.labels_fingerprint() != before


def test_openstax_module_text_keeps_prose_and_drops_exercises_figures_and_maths() -> None:
    data = quality_data_script()
    cnxml = b"""<document xmlns="http://cnx.rice.edu/cnxml" xmlns:m="http://www.w3.org/1998/Math/MathML">
<title>Why We Sleep</title>
<metadata><md:abstract xmlns:md="http://cnx.rice.edu/mdml"><para>By the end of this section</para></md:abstract></metadata>
<content>
  <para id="a">We spend about a third of our lives asleep (<link target-id="fig1"/>).</para>
  <section><title>What is Sleep?</title>
    <para id="b">Sleep is a state of <term>reduced awareness</term>, with an energy of <m:math><m:mi>E</m:mi></m:math> units.</para>
    <para id="c">Its stages:<list><item>light sleep<list><item>stage N1</item></list></item><item><para>deep sleep</para></item></list></para>
    <para id="d"><title>REM</title>Rapid eye movement sleep.</para>
    <figure id="fig1"><caption>The pineal gland.</caption></figure>
    <exercise><problem><para>Why do we dream?</para></problem></exercise>
    <table><tgroup><tbody><row><entry><para>cell text</para></entry></row></tbody></tgroup></table>
  </section>
</content></document>"""  # noqa: E501
    title, text = data.cnxml_text(cnxml)
    assert title == "Why We Sleep"
    assert text.split("\n") == [
        "We spend about a third of our lives asleep.",
        "What is Sleep?",
        "Sleep is a state of reduced awareness, with an energy of units.",
        "Its stages:",
        "light sleep",
        "stage N1",
        "deep sleep",
        "REM Rapid eye movement sleep.",
    ]


def test_modern_web_page_whose_text_changed_upstream_stops_the_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess

    data = quality_data_script()
    repo = tmp_path / "src"
    (repo / "benchmark" / "ground-truth").mkdir(parents=True)
    text = "Photosynthesis turns light into chemical energy. " * 20
    for fid, url in (
        ("0001", "https://docs.example.org/a"),
        ("0002", "https://www.example.org/b"),
        ("0003", "https://shop.test/c"),
    ):
        page = {
            "file_id": fid,
            "url": url,
            "_internal": {"page_type": {"primary": "article"}},
            "ground_truth": {"main_content": text if fid != "0003" else "Buy now."},
        }
        (repo / "benchmark" / "ground-truth" / f"{fid}.json").write_text(json.dumps(page))
    git = ["git", "-C", str(repo), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "pages"], check=True)
    commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    root = tmp_path / "git"
    root.mkdir()
    (root / data.MODERN_WEB_REPO[0]).symlink_to(repo)
    sha = {t: hashlib.sha256(t.encode()).hexdigest()[:16] for t in (text, "Buy now.")}
    labels = tmp_path / "labels.jsonl"
    labels.write_text(
        "".join(
            json.dumps({"id": i, "label": y, "why": "w", "reader": "r0", "sha256": sha[t]}) + "\n"
            for i, y, t in (("0001", 1, text), ("0002", 1, text), ("0003", 0, "Buy now."))
        )
    )
    monkeypatch.setattr(data, "MODERN_WEB_COMMIT", commit)
    monkeypatch.setattr(data, "MODERN_WEB_LABELS", labels)
    pages = data.modern_web_pages(tmp_path / "out", root)
    # 0002 holds the same text as 0001 (the benchmark has such twins): one page, not two.
    assert [(p["id"], p["label"], p["site"]) for p in pages] == [("0001", 1, "example.org"), ("0003", 0, "shop.test")]
    assert all(0 <= p["fold"] < data.MODERN_WEB_FOLDS for p in pages)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "0003", "label": 0, "why": "w", "reader": "r0", "sha256": "0" * 16}) + "\n")
    monkeypatch.setattr(data, "MODERN_WEB_LABELS", bad)
    with pytest.raises(SystemExit) as err:
        data.modern_web_pages(tmp_path / "out", root)
    assert (
        str(err.value)
        == f"page 0003 of modern-web-{commit[:12]}.jsonl: its text is not the one that was labelled. Fix: pin MODERN_WEB_COMMIT back to {commit}"  # noqa: E501
    )


def test_wcxb_test_reports_unseen_sites_and_page_types(trained: tuple[Path, dict, Path], tmp_path: Path) -> None:
    model, _, _ = trained
    build = _build_script()
    pages = [
        dict(r, id=f"w{i}", site=f"s{i % 4}.org", type="article" if i % 2 else "forum")
        for i, r in enumerate(fake_docs(40, seed=21))
    ]
    write_jsonl(tmp_path / "eval-wcxb-test.jsonl", pages)
    write_jsonl(tmp_path / "modern-web.jsonl", [{"site": "s0.org"}, {"site": "s1.org"}])  # the training pages' sites
    result = build.wcxb_test(tmp_path, model)
    assert (result["n"], result["positives"], result["n_unseen_sites"]) == (40, 20, 20)
    scores = QualityModel(model).score([p["text"] for p in pages])
    unseen = [i for i, p in enumerate(pages) if p["site"] in ("s2.org", "s3.org")]
    assert result["roc_auc_unseen_sites"] == pytest.approx(
        roc_auc([scores[i] for i in unseen], [pages[i]["label"] for i in unseen])
    )
    assert result["roc_auc"] == pytest.approx(roc_auc(scores, [p["label"] for p in pages]))

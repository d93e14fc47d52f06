"""One table of commands (curate.cli.COMMANDS): every command is registered there with its
arguments and its run, and `classifier` and `decontam build-index` take the recipe + `--set`
convention like the rest, their older flags kept as hidden aliases of the same keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from curate.cli import COMMANDS, build_parser, main
from curate.config import load_config


def test_every_command_is_one_entry_of_the_table(capsys) -> None:
    names = [c.name for c in COMMANDS]
    assert len(names) == len(set(names))
    assert set(names) == {
        "run",
        "validate",
        "dedup",
        "generate",
        "annotate",
        "deploy",
        "serve",
        "decontam",
        "classifier",
        "release",
        "verify",
        "stats",
        "lookup",
        "diff",
    }
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    listed = capsys.readouterr().out
    assert all(name in listed for name in names)


@pytest.mark.parametrize(
    ("argv", "keys"),
    [
        (
            ["train", "--input", "l.jsonl", "--output", "m.ftz", "--epoch", "5", "--label-field", "yes"],
            ["classifier.train.epoch=5", 'classifier.train.label_field="yes"'],
        ),
        (
            ["eval", "--input", "l.jsonl", "--threshold", "0.9", "--set", "classifier.eval.threshold=0.5"],
            ["classifier.eval.threshold=0.9", "classifier.eval.threshold=0.5"],
        ),
        (
            ["annotate", "d.jsonl", "--output", "o.jsonl", "-n", "7", "--engine-kind", "openai"],
            ["classifier.annotate.n=7", 'engine.kind="openai"'],
        ),
    ],
)
def test_classifier_flags_are_aliases_of_set_keys(argv: list[str], keys: list[str]) -> None:
    args = build_parser().parse_args(["classifier", *argv])
    assert args.overrides == keys  # in the order given: the last one wins


def test_classifier_settings_load_from_the_recipe_and_set(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("classifier:\n  train:\n    epoch: 3\n    label_field: score\n")
    args = build_parser().parse_args(
        ["classifier", "train", "--input", "l", "--output", "m.ftz", "--config", str(recipe), "--dim", "16"]
    )
    train = load_config(args.config, args.overrides).classifier.train
    assert (train.epoch, train.label_field, train.dim, train.lr) == (3, "score", 16, None)
    # A run's hash and resolved config do not carry the classifier's settings.
    cfg = load_config(recipe)
    assert cfg.config_hash() == load_config(None).config_hash() and "classifier" not in cfg.to_yaml()


def test_classifier_help_shows_one_convention(capsys) -> None:
    for sub in ("train", "eval", "annotate"):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["classifier", sub, "--help"])
        shown = capsys.readouterr().out
        assert "--set KEY=VALUE" in shown and "--config CONFIG" in shown
        assert not any(
            flag in shown for flag in ("--epoch", "--text-field", "--threshold", "--engine-kind", "--max-chars")
        )


def test_a_misspelt_classifier_key_fails_naming_it(capsys) -> None:
    assert (
        main(["classifier", "train", "--input", "l.jsonl", "--output", "m.ftz", "--set", "classifier.train.epok=5"])
        == 2
    )
    from curate.quality.config import ClassifierTrainConfig

    accepted = ", ".join(sorted(ClassifierTrainConfig.model_fields))
    assert capsys.readouterr().err == (
        "error: invalid config (defaults):\n"
        f"  classifier.train.epok: unknown key. Accepted names here: {accepted}. Fix: rename or remove "
        "'classifier.train.epok'.\n"
    )


def test_decontam_build_index_flags_are_aliases_of_set_keys() -> None:
    args = build_parser().parse_args(
        ["decontam", "build-index", "--input", "b.jsonl", "--output", "i.npz", "--fields", "question, text"]
        + ["--ngram", "8", "--split", "test", "--set", "decontam_index.stop_items=5", "--stop-items", "4"]
    )
    assert args.overrides == [
        'decontam_index.fields=["question", "text"]',
        "decontam_index.ngram=8",
        'decontam_index.split="test"',
        "decontam_index.stop_items=5",
        "decontam_index.stop_items=4",
    ]
    s = load_config(None, args.overrides).decontam_index
    assert (s.fields, s.ngram, s.split, s.stop_items, s.licence) == (["question", "text"], 8, "test", 4, "")


def test_decontam_build_index_takes_the_recipe_and_its_ngram(tmp_path: Path, capsys) -> None:
    from curate.hygiene.index import load_index

    bench = tmp_path / "bench.jsonl"
    bench.write_text('{"question": "How many legs do three spiders and two ants have in total when counted?"}\n')
    recipe = tmp_path / "r.yaml"
    recipe.write_text("decontam:\n  ngram: 8\ndecontam_index:\n  split: test\n")
    out = tmp_path / "i.npz"
    argv = ["decontam", "build-index", "--input", f"mini={bench}", "--output", str(out), "--config", str(recipe)]
    assert main(argv) == 0
    idx = load_index(out)
    # No decontam_index.ngram: the n the recipe's runs check with, so the index fits them.
    assert idx.ngram == 8 and idx.names == ["mini"] and idx.benchmarks[0]["split"] == "test"
    assert main([*argv, "--ngram", "9"]) == 0 and load_index(out).ngram == 9
    # Not part of a run: the recipe's hash is the hash of its decontam: section alone.
    assert load_config(recipe).config_hash() == load_config(None, ["decontam.ngram=8"]).config_hash()


def test_decontam_build_index_help_shows_one_convention(capsys) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["decontam", "build-index", "--help"])
    shown = capsys.readouterr().out
    assert "--set KEY=VALUE" in shown and "--config CONFIG" in shown
    assert not any(flag in shown for flag in ("--fields", "--ngram", "--stop-items", "--split", "--licence"))

"""The recipe: `curate validate`, error messages that name the key and the fix, `--set`
overrides, and the resolved config + its hash written with every run."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from curate.cli import main
from curate.config import CurateConfig, load_config
from curate.core.errors import ConfigError
from filters.language import LanguageConfig


@pytest.fixture
def good_config(tmp_path: Path, config_file) -> Path:
    return config_file(tmp_path / "good.yaml", name="good", language={"keep": ["en"], "min_score": 0.7})


def write_yaml(tmp_path: Path, text: str, name: str = "recipe.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# ----------------------------------------------------------------------- curate validate


def test_validate_good_config_exits_0(good_config: Path, capsys) -> None:
    assert main(["validate", str(good_config)]) == 0
    out = capsys.readouterr().out
    expected_hash = load_config(good_config).config_hash()[:12]
    assert out == f"ok: {good_config} is valid (config hash {expected_hash})\n"


def test_validate_unknown_nested_key(tmp_path: Path, capsys) -> None:
    path = write_yaml(tmp_path, "name: x\nlanguage:\n  min_scor: 0.5\n")
    assert main(["validate", str(path)]) == 2
    # The accepted names come from the model so that adding a field elsewhere does not break
    # this test; the wording around them is asserted exactly.
    accepted = ", ".join(sorted(LanguageConfig.model_fields))
    assert "min_score" in accepted
    assert capsys.readouterr().err == (
        f"error: invalid config {path}:\n"
        f"  language.min_scor: unknown key. Accepted names here: {accepted}. Fix: rename or remove "
        "'language.min_scor'.\n"
    )


def test_validate_unknown_key_three_levels_deep(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "filters:\n  c4:\n    lorem: true\n")
    from filters.config import C4Config

    with pytest.raises(ConfigError) as err:
        load_config(path)
    accepted = ", ".join(sorted(C4Config.model_fields))
    assert str(err.value) == (
        f"invalid config {path}:\n"
        f"  filters.c4.lorem: unknown key. Accepted names here: {accepted}. Fix: rename or remove 'filters.c4.lorem'."
    )


def test_validate_unknown_top_level_key(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "name: x\noutputs:\n  dir: out\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    accepted = ", ".join(sorted(CurateConfig.model_fields))
    assert str(err.value) == (
        f"invalid config {path}:\n  outputs: unknown key. Accepted names here: {accepted}. Fix: rename or remove "
        "'outputs'."
    )


def test_validate_out_of_range_names_the_range(tmp_path: Path, capsys) -> None:
    path = write_yaml(tmp_path, "language:\n  min_score: 1.5\n")
    assert main(["validate", str(path)]) == 2
    assert capsys.readouterr().err == (
        f"error: invalid config {path}:\n  language.min_score: must be <= 1.0, got 1.5. Fix: set a value <= 1.0.\n"
    )


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "language:\n  min_score: -0.1\noutput:\n  shard_target_mb: 0\n  compression: lz9\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == (
        f"invalid config {path}:\n"
        "  output.shard_target_mb: must be > 0.0, got 0. Fix: set a value > 0.0.\n"
        "  output.compression: got 'lz9'; accepted values: 'zstd', 'snappy', 'gzip' or 'none'.\n"
        "  language.min_score: must be >= 0.0, got -0.1. Fix: set a value >= 0.0."
    )


def test_bad_language_code(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, ["language.keep=[en, e1]"])
    assert str(err.value) == (
        "invalid config (defaults):\n"
        "  language.keep: 'e1' is not a language code; use ISO 639 codes such as en, fr, de (got ['en', 'e1'])."
    )


def test_config_file_not_found(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "nope.yaml"
    assert main(["validate", str(missing)]) == 2
    assert capsys.readouterr().err == (
        f"error: config file not found: {missing}. Fix: pass the path of a YAML recipe, e.g. configs/demo.yaml, "
        "or the name of one that ships with curate: demo, generate_demo, incremental_demo, rephrase_demo\n"
    )


def test_config_not_a_mapping(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "- input\n- output\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == f"config {path} must be a mapping of sections (input:, output:, ...), got list"


def test_config_not_yaml(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "name: [unclosed\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value).startswith(f"config {path} is not valid YAML: ")


def test_empty_config_file_means_defaults(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "")
    assert load_config(path) == CurateConfig()


def test_validate_console_script_exit_codes(good_config: Path, tmp_path: Path, curate_cli, subprocess_env) -> None:
    """The installed entry point turns main()'s return value into the process exit status."""
    ok = subprocess.run(
        [*curate_cli, "validate", str(good_config)], capture_output=True, text=True, env=subprocess_env, timeout=120
    )
    assert ok.returncode == 0, ok.stderr
    bad = write_yaml(tmp_path, "language:\n  min_score: 1.5\n", "bad.yaml")
    failed = subprocess.run(
        [*curate_cli, "validate", str(bad)], capture_output=True, text=True, env=subprocess_env, timeout=120
    )
    assert failed.returncode != 0
    assert "language.min_score: must be <= 1.0, got 1.5" in failed.stderr
    assert "Traceback" not in failed.stderr


# --------------------------------------------------------------------------------- --set


def test_set_overrides_keep_their_types(good_config: Path) -> None:
    cfg = load_config(
        good_config,
        [
            "language.keep=[en, fr]",
            "output.shard_target_mb=0.5",
            "language.min_score=0.9",
            "filters.c4.enabled=false",
            "executor.workers=3",
            "input.paths=[a.jsonl, 'b c.parquet']",
        ],
    )
    assert cfg.language.keep == ["en", "fr"]
    assert cfg.output.shard_target_mb == 0.5 and isinstance(cfg.output.shard_target_mb, float)
    assert cfg.language.min_score == 0.9
    assert cfg.filters.c4.enabled is False
    assert cfg.executor.workers == 3
    assert cfg.input.paths == ["a.jsonl", "b c.parquet"]
    # What the file set and --set did not touch stays.
    assert cfg.name == "good"


def test_set_wins_over_the_file(good_config: Path) -> None:
    assert load_config(good_config).language.min_score == 0.7
    assert load_config(good_config, ["language.min_score=0.2"]).language.min_score == 0.2


def test_set_creates_missing_sections(good_config: Path) -> None:
    cfg = load_config(good_config, ["filters.fineweb.short_line_length=12"])
    assert cfg.filters.fineweb.short_line_length == 12


def test_set_into_a_value_is_an_error(good_config: Path, capsys) -> None:
    assert main(["validate", str(good_config), "--set", "name.x=1"]) == 2
    assert (
        capsys.readouterr().err == "error: --set name.x=1: 'name' is a value, not a section; set 'name=...' instead\n"
    )


def test_set_into_a_nested_value_names_the_full_path(good_config: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(good_config, ["language.min_score.x=1"])
    assert str(err.value) == (
        "--set language.min_score.x=1: 'language.min_score' is a value, not a section; set 'language.min_score=...' "
        "instead"
    )


def test_set_without_equals(good_config: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(good_config, ["language.min_score"])
    assert str(err.value) == "--set language.min_score: expected KEY=VALUE, for example --set language.min_score=0.8"


def test_set_with_empty_key(good_config: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(good_config, ["=3"])
    assert str(err.value) == "--set =3: the key is empty; write --set section.key=value"


def test_set_out_of_range_is_validated(good_config: Path, capsys) -> None:
    assert main(["validate", str(good_config), "--set", "language.min_score=1.5"]) == 2
    assert capsys.readouterr().err == (
        f"error: invalid config {good_config}:\n  language.min_score: must be <= 1.0, got 1.5. Fix: set a value <= "
        "1.0.\n"
    )


def test_set_unknown_key_is_rejected(good_config: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(good_config, ["language.min_scor=0.5"])
    assert "language.min_scor: unknown key." in str(err.value)


def test_config_hash_follows_the_values(good_config: Path) -> None:
    base = load_config(good_config)
    assert load_config(good_config).config_hash() == base.config_hash()
    assert load_config(good_config, ["language.min_score=0.71"]).config_hash() != base.config_hash()
    # Only the sections asked for feed a section hash: output changes leave annotate's key alone.
    changed_output = load_config(good_config, ["output.shard_target_mb=1"])
    assert changed_output.section_hash("language", "filters") == base.section_hash("language", "filters")
    assert changed_output.section_hash("output") != base.section_hash("output")


# ------------------------------------------------------- resolved config next to the output


def test_resolved_config_and_hash_in_manifest(tmp_path: Path, inputs, texts, config_file, run_curate) -> None:
    config = config_file(tmp_path / "recipe.yaml", name="resolved", output={"dir": str(tmp_path / "elsewhere")})
    source = inputs.jsonl("docs.jsonl", [{"id": "good", "text": texts.GOOD}])
    out = tmp_path / "out"
    result = run_curate(config, [source], out, ["language.min_score=0.5", "output.shard_target_mb=2"])

    resolved_path = out / "config.resolved.yaml"
    resolved = yaml.safe_load(resolved_path.read_text())
    # The resolved file holds every key (defaults included) with the overrides applied ...
    assert resolved["language"]["min_score"] == 0.5
    assert resolved["output"]["shard_target_mb"] == 2.0
    assert resolved["output"]["dir"] == str(out)
    assert resolved["input"]["paths"] == [str(source)]
    assert resolved["filters"]["gopher_quality"]["min_doc_words"] == CurateConfig().filters.gopher_quality.min_doc_words
    # ... it reloads to the same config, and the manifest carries that config's hash.
    reloaded = load_config(resolved_path)
    assert result.manifest["config_hash"] == reloaded.config_hash()
    assert result.manifest["config_file"] == "config.resolved.yaml"
    # The config's own output.dir was overridden by --output: nothing was written there.
    assert not (tmp_path / "elsewhere").exists()


def test_a_shipped_recipe_is_found_by_name_from_any_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`curate run demo` outside a checkout: the recipe and its embedded inputs come from the
    package (curate/configs, curate/data), not from the working directory."""
    import curate

    package = Path(curate.__file__).resolve().parent
    monkeypatch.chdir(tmp_path)  # an empty folder: no configs/ here
    cfg = load_config("demo")
    assert cfg.name == "demo"
    assert cfg.input.paths == [str(package.parent / "curate" / "data" / "demo")]
    assert Path(cfg.input.paths[0], "pages.warc.gz").is_file()
    # A recipe given by path keeps its paths relative to the working directory.
    (tmp_path / "demo").write_text("name: mine\ninput:\n  paths: [in]\n")
    assert load_config("demo").input.paths == ["in"]
    # The shipped prompt templates are package data too.
    from curate.synth.prompts import default_templates_dir, load_templates

    assert default_templates_dir() == package / "configs" / "prompts"
    assert {t.id for t in load_templates("")} == {
        "exercises",
        "how_to",
        "lecture_notes",
        "story_children",
        "textbook_academic",
        "textbook_narrative",
    }
    # Names only: a path that is not a file is still "not found", never a shipped recipe.
    with pytest.raises(ConfigError, match="config file not found: sub/demo.yaml"):
        load_config("sub/demo.yaml")

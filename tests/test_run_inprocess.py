"""`curate run` without a Prefect API runs its steps in-process (flows/pipeline.py) and never
imports prefect; with PREFECT_API_URL (environment or active profile) it runs the flow. Found
without importing prefect: flows/prefect_api.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from flows.pipeline import run_pipeline, set_progress_hook
from flows.prefect_api import configured_api_url
from flows.stages import STEPS

REPO = Path(__file__).resolve().parent.parent
URL = "http://prefect.example:4200/api"


# ------------------------------------------------------------------ which mode


def _profiles(home: Path, text: str) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    (home / "profiles.toml").write_text(text)
    return {"PREFECT_HOME": str(home)}


def test_no_url_anywhere_means_in_process(tmp_path: Path) -> None:
    assert configured_api_url({"PREFECT_HOME": str(tmp_path / "none")}, cwd=tmp_path) is None
    env = _profiles(tmp_path / "home", 'active = "mine"\n[profiles.mine]\nPREFECT_LOGGING_LEVEL = "INFO"\n')
    assert configured_api_url(env, cwd=tmp_path) is None


def test_url_in_the_environment_means_prefect(tmp_path: Path) -> None:
    env = {"PREFECT_API_URL": URL, "PREFECT_HOME": str(tmp_path / "none")}
    assert configured_api_url(env, cwd=tmp_path) == URL


def test_url_in_the_active_profile_means_prefect(tmp_path: Path) -> None:
    text = f'active = "remote"\n[profiles.remote]\nPREFECT_API_URL = "{URL}"\n[profiles.other]\n'
    env = _profiles(tmp_path / "home", text)
    assert configured_api_url(env, cwd=tmp_path) == URL
    # PREFECT_PROFILE picks another profile than the file's `active` one.
    assert configured_api_url({**env, "PREFECT_PROFILE": "other"}, cwd=tmp_path) is None
    # PREFECT_PROFILES_PATH names the file instead of PREFECT_HOME.
    elsewhere = {"PREFECT_PROFILES_PATH": str(tmp_path / "home" / "profiles.toml")}
    assert configured_api_url(elsewhere, cwd=tmp_path) == URL


def test_prefects_own_local_profile_has_a_url(tmp_path: Path) -> None:
    # Prefect ships a `local` profile naming a server on localhost; selecting it is a server.
    env = _profiles(tmp_path / "home", 'active = "local"\n')
    assert configured_api_url(env, cwd=tmp_path) == "http://127.0.0.1:4200/api"


def test_url_in_prefect_toml_of_the_working_folder_means_prefect(tmp_path: Path) -> None:
    (tmp_path / "prefect.toml").write_text(f'[api]\nurl = "{URL}"\n')
    assert configured_api_url({"PREFECT_HOME": str(tmp_path / "none")}, cwd=tmp_path) == URL


def test_a_broken_profiles_file_is_no_url(tmp_path: Path) -> None:
    env = _profiles(tmp_path / "home", "active = [not toml\n")
    assert configured_api_url(env, cwd=tmp_path) is None


# ------------------------------------------------------------------ the in-process run


def test_in_process_run_reports_progress_and_writes_the_summary(tmp_path: Path, inputs, config_file, texts) -> None:
    source = inputs.jsonl("one.jsonl", [{"id": "good", "text": texts.GOOD}, "{oops"])
    config = config_file(tmp_path / "c.yaml", name="inline")
    events: list[tuple[str, str]] = []
    set_progress_hook(lambda stage, event: events.append((stage, event)))
    try:
        done = run_pipeline(str(config), [], [str(source)], str(tmp_path / "out"))
    finally:
        set_progress_hook(None)
    assert events == [(step, event) for step in STEPS for event in ("start", "done")]
    manifest = json.loads(Path(done.manifest).read_text())
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary == done.summary
    assert (summary["ingested"], summary["kept"], summary["rejected"]) == (2, 1, 1)
    assert summary["by_reason"] == manifest["counts"]["by_reason"]
    assert done.release is None


@pytest.mark.slow
def test_curate_run_without_a_server_never_imports_prefect(tmp_path: Path, inputs, config_file, texts) -> None:
    """`curate run` as a user types it, in a fresh interpreter with no Prefect API anywhere: it
    says it runs in-process, writes its output, and neither prefect nor torch (which spaCy's
    thinc would import: filters/spacy_import.py) is ever imported."""
    source = inputs.jsonl("one.jsonl", [{"id": "good", "text": texts.GOOD}])
    config = config_file(tmp_path / "c.yaml", name="no-prefect")
    out = tmp_path / "out"
    probe = (
        "import sys; from curate.cli import main; "
        f"code = main(['run', {str(config)!r}, '--input', {str(source)!r}, '--output', {str(out)!r}, '--quiet']); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('prefect', 'torch'))); sys.exit(code)"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(tmp_path / "prefect-home"), PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1")
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0] == "running in-process (no PREFECT_API_URL; --prefect records the run in Prefect)"
    assert lines[-1] == "[]"
    assert json.loads((out / "manifest.json").read_text())["counts"]["kept"] == 1
    assert (out / "summary.json").is_file()


@pytest.mark.parametrize(
    ("env_url", "flag", "expected"),
    [
        (None, [], "running in-process (no PREFECT_API_URL; --prefect records the run in Prefect)"),
        (None, ["--prefect"], "running the curate-corpus Prefect flow on a temporary local Prefect server (--prefect)"),
        (URL, [], f"running the curate-corpus Prefect flow (PREFECT_API_URL={URL})"),
    ],
    ids=["in-process", "--prefect", "PREFECT_API_URL"],
)
def test_curate_run_chooses_the_flow_when_asked_or_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, inputs, config_file, texts, env_url, flag, expected
) -> None:
    """Which way `curate run` goes, and the line that says so: the flow (here a stand-in that
    records its call and runs the same pipeline) only with --prefect or a configured API."""
    import flows.curate_corpus as corpus
    from curate.cli import main

    for key in ("PREFECT_API_URL", "PREFECT_PROFILE", "PREFECT_PROFILES_PATH"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect-home"))
    if env_url:
        monkeypatch.setenv("PREFECT_API_URL", env_url)
    flow_calls: list[tuple] = []

    def stand_in(*args: object) -> str:
        flow_calls.append(args)
        return run_pipeline(*args).manifest  # type: ignore[arg-type]

    monkeypatch.setattr(corpus, "curate_corpus", stand_in)
    source = inputs.jsonl("one.jsonl", [{"id": "good", "text": texts.GOOD}])
    config = config_file(tmp_path / "c.yaml", name="mode")
    out = tmp_path / "out"
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(config), "--input", str(source), "--output", str(out), "--quiet", *flag]) == 0
    assert capsys.readouterr().out.splitlines()[0] == expected
    assert len(flow_calls) == (0 if expected.startswith("running in-process") else 1)
    assert json.loads((out / "manifest.json").read_text())["counts"]["kept"] == 1

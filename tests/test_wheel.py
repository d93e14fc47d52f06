"""The package outside its checkout: a wheel built from the repository, installed into
another virtual environment and run from an empty folder, with no PYTHONPATH and the
checkout nowhere on sys.path, runs `curate run demo` (recipe and inputs from package data)
and `curate generate` with the shipped prompt templates (real vLLM, one document).

curate's own files come only from the wheel: the new environment gets it with --no-deps, and
a .pth line adds this environment's site-packages for the dependencies (a plain path line:
.pth files there, such as the editable install's, are not processed, so the checkout is not
reachable)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
# What a wheel is built from: the packaged sources (curate/configs links to configs/).
SOURCES = ["pyproject.toml", "README.md", "curate", "filters", "flows", "configs"]


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: int) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{cmd} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-4000:]}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    tmp = tmp_path_factory.mktemp("wheel")
    # Built from a copy, so the build's own files (build/, *.egg-info) never land in the checkout.
    src = tmp / "src"
    src.mkdir()
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, src / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(path, src / name)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # Offline: built by this environment's setuptools (pinned by `make setup`), no isolated build env to download.
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(src),
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp / "dist"),
            "-q",
        ],
        tmp,
        env,
        600,
    )
    (wheel,) = (tmp / "dist").glob("curate-*.whl")

    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp, env, 120)
    python = venv / "bin" / "python"
    _run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)], tmp, env, 300
    )
    purelib = Path(
        _run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp, env, 60
        ).stdout.strip()
    )
    (purelib / "curate-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    empty = tmp / "empty"
    empty.mkdir()
    env.update(
        PREFECT_HOME=str(tmp / "prefect-home"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        HF_HUB_OFFLINE="1",
        DO_NOT_TRACK="1",
        # The temporary Prefect server on a loaded 2-core machine can take longer than 20 s.
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180",
    )
    env.pop("PREFECT_API_URL", None)
    return {"venv": venv, "purelib": purelib, "empty": empty, "env": env}


def test_curate_comes_only_from_the_wheel(installed: dict) -> None:
    code = (
        "import json, sys, curate, filters, flows.curate_corpus, curate.synth.prompts as p;"
        "print(json.dumps({'files': [curate.__file__, filters.__file__, flows.curate_corpus.__file__, "
        "str(p.default_templates_dir())],"
        " 'path': sys.path}))"
    )
    done = _run([str(installed["venv"] / "bin" / "python"), "-c", code], installed["empty"], installed["env"], 120)
    found = json.loads(done.stdout)
    purelib = str(installed["purelib"])
    assert all(f.startswith(purelib + os.sep) for f in found["files"]), found["files"]
    # No other sys.path entry (the checkout, its source folders) could provide them.
    others = [Path(p) for p in found["path"] if p and Path(p) != Path(purelib)]
    assert REPO not in [p.resolve() for p in others]
    assert not [p for p in others for pkg in ("curate", "filters", "flows") if (p / pkg).exists()], others


def test_run_and_generate_from_an_empty_folder(installed: dict) -> None:
    venv, empty, env = installed["venv"], installed["empty"], installed["env"]
    curate = str(venv / "bin" / "curate")
    _run([curate, "run", "demo", "--output", "out/demo", "--quiet", "--set", "executor.workers=1"], empty, env, 900)
    manifest = json.loads((empty / "out" / "demo" / "manifest.json").read_text())
    data = installed["purelib"] / "curate" / "data" / "demo"
    assert manifest["inputs"] == [str(data / "pages.warc.gz"), str(data / "web.jsonl.gz")]
    assert manifest["counts"]["kept"] > 0 and manifest["shards"]

    # One real document with the embedded model on the CPU, prompts from the shipped templates.
    done = _run(
        [curate, "generate", "--config", "generate_demo", "--input", "out/demo", "--n", "1", "--output", "out/gen"],
        empty,
        env,
        900,
    )
    assert "generate: 1 prompts" in done.stdout
    gen = json.loads((empty / "out" / "gen" / "manifest.json").read_text())
    assert gen["counts"]["ingested"] == 1
    assert gen["counts"]["kept"] + gen["counts"]["rejected"] == 1
    assert sorted(p.name for p in empty.iterdir()) == ["out"]  # nothing else written to the working folder


def test_deploy_outside_a_checkout_names_the_fix(installed: dict) -> None:
    done = subprocess.run(
        [str(installed["venv"] / "bin" / "curate"), "deploy"],
        cwd=installed["empty"],
        env=installed["env"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2
    assert (
        done.stderr
        == f"error: {installed['empty'] / 'prefect.yaml'} not found. Fix: run from a curate checkout (its prefect.yaml and flows/ define the deployments)\n"  # noqa: E501
    )

"""Review leftovers: incremental state fingerprints each file once and records a batch in one
pass; `curate run` plans once; a file that cannot be read is never reported as "cannot
write"; importing the config does not import the generation engine."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from conftest import require_or_skip

import curate.incremental as inc
import flows.curate_corpus as corpus
import flows.pipeline as pipeline
from curate.cli import main
from curate.core.errors import InputError
from curate.incremental import Batch, Fingerprint, State, load_state, new_fingerprints, record_batch, state_path

REPO = Path(__file__).resolve().parent.parent
# Root keeps its file access through these capabilities even on a chmod 000 file; a child
# started without them meets permissions as any other user would.
NO_DAC = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-dac_override,-dac_read_search"]


def _count_calls(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> list[tuple]:
    """Install a wrapper around the real `module.name` that records each call's arguments."""
    real = getattr(module, name)
    calls: list[tuple] = []

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


# ------------------------------------------------------------ 1. incremental state


def _files(folder: Path, count: int) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"f{i:04d}.jsonl"
        path.write_text(json.dumps({"id": str(i), "text": "x" * i}) + "\n")
        paths.append(str(path))
    return paths


def _lines_run(call: Callable[[], Any], skip: set[str]) -> int:
    """Lines of curate/incremental.py that `call` executes, outside the functions in `skip`:
    a count of work done that does not depend on how busy the machine is."""
    source = inc.__file__
    count = 0

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal count
        if event == "line":
            count += 1
        return local

    def tracer(frame: FrameType, event: str, arg: Any) -> Any:
        if event == "call" and frame.f_code.co_filename == source and frame.f_code.co_name not in skip:
            return local
        return None

    sys.settrace(tracer)
    try:
        call()
    finally:
        sys.settrace(None)
    return count


def test_a_batch_fingerprints_each_file_once_and_records_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = _files(tmp_path / "in", 5)
    state = State("s")
    record_batch(state, [inc.fingerprint(f) for f in files[:2]], Batch(1, files[:2], "o", None, 2, 0, "t"))
    calls = _count_calls(monkeypatch, inc, "fingerprint")
    new = new_fingerprints(files, state)  # what the incremental flow does before the batch ...
    record_batch(state, new, Batch(2, [fp.path for fp in new], "o", None, 3, 0, "t"))  # ... and after it
    assert sorted(c[0] for c in calls) == files  # each listed file once, the recorded ones included
    assert [fp.path for fp in new] == files[2:]
    monkeypatch.undo()
    assert state.processed == {fp.key: fp for fp in map(inc.fingerprint, files)}


def test_recording_a_batch_is_one_pass_over_the_state(tmp_path: Path) -> None:
    """Linear in files already recorded plus files of the batch: 400 recorded, 100 new (20 of
    them rewritten since their earlier batch). One rebuild of the state per new file, as before,
    executes ~50,000 lines; one pass, a few hundred."""
    files = _files(tmp_path / "in", 100)
    old = {f"{tmp_path}/old/{i}.jsonl": Fingerprint(f"{tmp_path}/old/{i}.jsonl", i, "0") for i in range(380)}
    old |= {f: Fingerprint(f, 0, "before") for f in files[:20]}  # rewritten since: new size and mtime
    state = State("s", {fp.key: fp for fp in old.values()})
    new = [inc.fingerprint(f) for f in files]
    lines = _lines_run(lambda: record_batch(state, new, Batch(1, files, "o", None, 0, 0, "t")), skip={"fingerprint"})
    assert lines < 5 * (len(old) + len(files)), lines
    # Each path once, with its newest fingerprint; the other recorded files untouched.
    expected = {fp.path: fp for fp in old.values()} | {fp.path: fp for fp in new}
    assert state.processed == {fp.key: fp for fp in expected.values()}
    assert len(state.processed) == 380 + 100
    # And it survives the round trip through the state file unchanged.
    path = state_path(tmp_path / "out", "s")
    inc.save_state(state, path)
    assert load_state(path, "s").processed == state.processed


@pytest.mark.slow
def test_incremental_flow_fingerprints_each_input_once_per_run(
    tmp_path: Path, prefect_harness: None, make_inputs, config_file, texts, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.incremental import curate_incremental

    files = make_inputs(tmp_path / "in")
    first = [
        files.jsonl(f"{name}.jsonl", [{"id": name, "text": text}])
        for name, text in (("good", texts.GOOD), ("water", texts.WATER))
    ]
    config = config_file(tmp_path / "inc.yaml", name="inc")
    calls = _count_calls(monkeypatch, inc, "fingerprint")
    batch = curate_incremental(str(config), str(tmp_path / "in"), str(tmp_path / "out"), release=False)
    assert batch["batch"] == 1 and batch["files"] == [str(p) for p in first]
    assert sorted(c[0] for c in calls) == [str(p) for p in first]
    third = files.jsonl("rocks.jsonl", [{"id": "rocks", "text": texts.ROCKS}])
    calls.clear()
    batch = curate_incremental(str(config), str(tmp_path / "in"), str(tmp_path / "out"), release=False)
    assert batch["batch"] == 2 and batch["files"] == [str(third)]
    assert sorted(c[0] for c in calls) == sorted(str(p) for p in [*first, third])
    monkeypatch.undo()
    state = load_state(state_path((tmp_path / "out").resolve(), "inc"), "inc")
    assert state.processed == {fp.key: fp for fp in (inc.fingerprint(str(p)) for p in [*first, third])}


# ------------------------------------------------------------------ 2. plan once


@pytest.mark.parametrize("mode", [[], ["--prefect"]], ids=["in-process", "prefect"])
def test_curate_run_plans_once(
    tmp_path: Path,
    prefect_harness: None,
    inputs,
    config_file,
    texts,
    monkeypatch: pytest.MonkeyPatch,
    capsys,
    mode: list[str],
) -> None:
    source = inputs.jsonl("one.jsonl", [{"id": "good", "text": texts.GOOD}])
    config = config_file(tmp_path / "c.yaml", name="plan-once")
    walks = _count_calls(monkeypatch, pipeline, "begin_output")  # prepares (walks) the output folder
    plans = _count_calls(monkeypatch, pipeline, "plan")
    out = tmp_path / "out"
    assert main(["run", str(config), "--input", str(source), "--output", str(out), "--quiet", *mode]) == 0, (
        capsys.readouterr().err
    )
    assert [Path(c[0]) for c in walks] == [out]
    assert len(plans) == 1
    assert json.loads((out / "manifest.json").read_text())["counts"]["kept"] == 1
    assert pipeline._planned == {}  # nothing left for a later run to pick up


def test_the_flow_called_directly_still_validates(
    tmp_path: Path, prefect_harness: None, inputs, config_file, texts
) -> None:
    """As a deployment calls it: no CLI planned before, so the flow plans, and a missing input
    fails it. Also when the CLI planned other arguments in this process."""
    config = config_file(tmp_path / "c.yaml", name="direct")
    source = inputs.jsonl("one.jsonl", [{"id": "good", "text": texts.GOOD}])
    missing = str(tmp_path / "missing.jsonl")
    with corpus.planned(str(config), [], [str(source)], str(tmp_path / "out")):
        with pytest.raises(InputError) as err:
            corpus.curate_corpus(str(config), [], [missing], str(tmp_path / "out"))
    assert (
        str(err.value)
        == f"input path not found or empty: {missing}. Fix: check the path, or pass --input with an existing file, folder or glob"  # noqa: E501
    )


def test_planned_fails_before_the_flow_and_leaves_nothing(tmp_path: Path, config_file) -> None:
    config = config_file(tmp_path / "c.yaml", name="bad")
    missing = str(tmp_path / "missing.jsonl")
    with pytest.raises(InputError):
        with corpus.planned(str(config), [], [missing], str(tmp_path / "out")):
            pytest.fail("the block runs only after a successful plan")
    assert pipeline._planned == {}
    assert not (tmp_path / "out").exists()


# ----------------------------------------------- 3. unreadable is not "cannot write"

# Run without root's file-access capabilities (see NO_DAC); prints one JSON object.
_UNREADABLE_PROBE = textwrap.dedent(
    """
    import contextlib, io, json, sys
    from pathlib import Path
    from datatrove.pipeline.readers import JsonlReader
    from curate.cli import main
    from curate.core.errors import last_resort_error
    from curate.writers import AnnotatedWriter
    from curate.core.parquet_io import copy_atomic

    root = Path(sys.argv[1])
    result = {}

    def outcome(call):
        try:
            call()
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"
        return "ok"

    result["copy"] = outcome(lambda: copy_atomic(root / "in" / "secret.jsonl", root / "out" / "copy.jsonl"))

    def annotate_unreadable():
        data = JsonlReader(str(root / "in"), glob_pattern="secret.jsonl").run(None)
        for _ in AnnotatedWriter(str(root / "out" / "parts"), ()).run(data):
            pass

    result["annotate"] = outcome(annotate_unreadable)
    result["annotate_left"] = sorted(p.name for p in (root / "out" / "parts").iterdir())

    from curate.core.shards import OutputConfig
    from curate.core.shards import write_shards

    result["shards"] = outcome(lambda: write_shards([root / "in" / "part.parquet"], root / "out" / "release", OutputConfig()))

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        result["validate_code"] = main(["validate", str(root / "in" / "secret.yaml")])
    result["validate_err"] = err.getvalue()

    def error_of(call):
        try:
            call()
        except OSError as exc:
            return str(last_resort_error(exc, root / "out"))
        return "no error"

    result["read_input"] = error_of(lambda: open(root / "in" / "secret.jsonl", "rb"))
    result["write_output"] = error_of(lambda: open(root / "out" / "locked" / "new.txt", "wb"))
    print(json.dumps(result))
    """  # noqa: E501
)


def _without_file_access(tmp_path: Path) -> None:
    probe = tmp_path / "probe"
    probe.write_text("x")
    probe.chmod(0)
    if shutil.which("setpriv") is None:
        require_or_skip(
            "setpriv (util-linux) is not installed: cannot run a child without root's file-access capabilities"
        )
    done = subprocess.run([*NO_DAC, "cat", str(probe)], capture_output=True, text=True)
    if done.returncode == 0 or "Permission denied" not in done.stderr:
        require_or_skip(
            f"cannot make a file unreadable to a child process here ({done.stderr.strip() or 'it read it'})"
        )


def test_an_unreadable_file_is_not_reported_as_cannot_write(tmp_path: Path) -> None:
    _without_file_access(tmp_path)
    (tmp_path / "in").mkdir()
    (tmp_path / "out" / "parts").mkdir(parents=True)
    (tmp_path / "out" / "locked").mkdir(mode=0o555)
    (tmp_path / "out" / "locked").chmod(0o555)
    secret = tmp_path / "in" / "secret.jsonl"
    secret.write_text('{"id": "a", "text": "Some text."}\n')
    secret.chmod(0)
    part = tmp_path / "in" / "part.parquet"
    import pyarrow.parquet as pq

    from curate.core.schema import DOCUMENT_SCHEMA

    pq.write_table(DOCUMENT_SCHEMA.empty_table(), part)
    part.chmod(0)
    config = tmp_path / "in" / "secret.yaml"
    config.write_text("name: secret\n")
    config.chmod(0)
    done = subprocess.run(
        [*NO_DAC, sys.executable, "-c", _UNREADABLE_PROBE, str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    reads = {k: v for k, v in result.items() if k != "write_output"}
    assert "cannot write" not in json.dumps(reads), reads

    # The read failure itself comes through, naming the input.
    assert result["copy"] == f"PermissionError: [Errno 13] Permission denied: '{secret}'"
    assert result["annotate"] == f"PermissionError: [Errno 13] Permission denied: '{secret}'"
    assert result["annotate_left"] == []  # no half-written temp file
    # A part the release cannot read fails as a read (pyarrow's own message names the file).
    assert result["shards"].startswith("PermissionError: ") and str(part) in result["shards"], result["shards"]
    assert result["validate_code"] == 2
    assert (
        result["validate_err"]
        == f"error: cannot read config {config}: Permission denied. Fix: make it readable by this user, or pass another recipe\n"  # noqa: E501
    )
    assert result["read_input"] == (
        f"permission denied: {secret}. Fix: give this user access to it (read for inputs, configs and models; write "
        "for the output folder) and rerun"
    )
    # A forbidden write inside the output folder is still one.
    locked = tmp_path / "out" / "locked" / "new.txt"
    assert result["write_output"] == (
        f"cannot write {locked}: permission denied. Fix: make that folder writable (or pass --output with a folder "
        "you can write to) "
        "and rerun the same command; finished stages are reused"
    )


# ------------------------------------------------------------ 6. lazy engines


def test_loading_the_config_does_not_import_the_engine() -> None:
    # Every command loads the config; the engines (and what they import) load only when one opens.
    code = (
        "import sys, curate.config\n"
        "assert not [m for m in sys.modules if m.startswith(('curate.llm.engine', 'vllm', 'torch'))], 'engine "
        "imported'\n"
        "from curate.llm.engine import open_engine\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0 and done.stdout == "ok\n", done.stderr[-2000:]


def test_a_permission_error_naming_no_file_says_so() -> None:
    from curate.core.errors import last_resort_error

    error = last_resort_error(PermissionError(13, "Permission denied"), None)
    assert str(error) == (
        "permission denied: a file this command opened (the system did not name it). "
        "Fix: give this user access to it (read for inputs, configs and models; write for the output folder) and rerun"
    )

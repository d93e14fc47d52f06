"""Retries are for transient errors only: a connection hiccup is retried, a bug is not; the
same policy (flows.pipeline) in Prefect's tasks and in `curate run`'s in-process runner."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from prefect import flow, task

import flows.pipeline as pipeline
from flows.curate_corpus import RETRY, transient_failure
from flows.pipeline import STEP_RETRIES, STEP_RETRY_DELAYS_S, InProcess, Step

ATTEMPTS: dict[str, int] = {}


@task(retries=2, retry_delay_seconds=0, retry_condition_fn=transient_failure)
def flaky(kind: str) -> str:
    ATTEMPTS[kind] = ATTEMPTS.get(kind, 0) + 1
    if kind == "network" and ATTEMPTS[kind] < 2:
        raise ConnectionError("connection reset by peer")
    if kind == "bug":
        raise ValueError("a bug, not a hiccup")
    return "ok"


@flow
def call(kind: str) -> str:
    return flaky(kind)


def test_transient_errors_are_retried_and_bugs_are_not(prefect_harness: None) -> None:
    ATTEMPTS.clear()
    assert call("network") == "ok"
    assert ATTEMPTS["network"] == 2  # failed once, retried, succeeded
    with pytest.raises(ValueError, match="a bug, not a hiccup"):
        call("bug")
    assert ATTEMPTS["bug"] == 1  # no retry for a non-transient error


# ------------------------------------------------- the in-process runner (`curate run` default)


def _counting(kind: str, failures: int = 1) -> tuple[list[int], Callable[[], str]]:
    """A step function that raises `kind` errors `failures` times, then returns "ok"."""
    calls: list[int] = []

    def fn() -> str:
        calls.append(1)
        if len(calls) <= failures:
            raise ConnectionError("connection reset by peer") if kind == "network" else ValueError("a bug")
        return "ok"

    return calls, fn


def test_in_process_retries_a_transient_error_with_the_policy_delays(caplog) -> None:
    slept: list[float] = []
    run = InProcess(sleep=slept.append)
    calls, fn = _counting("network", failures=2)
    with caplog.at_level(logging.WARNING, logger="curate.run"):
        assert run(Step("annotate", retry=True), fn) == "ok"
    assert len(calls) == 3  # failed twice, retried twice, succeeded
    assert slept == [10, 60] == list(STEP_RETRY_DELAYS_S)  # the one policy, not sleeping here
    assert [r.getMessage() for r in caplog.records] == [
        "step annotate failed with a transient error (ConnectionError: connection reset by peer); retry 1 of 2 in 10 s",
        "step annotate failed with a transient error (ConnectionError: connection reset by peer); retry 2 of 2 in 60 s",
    ]


def test_in_process_does_not_retry_a_bug_or_a_step_without_retries() -> None:
    slept: list[float] = []
    run = InProcess(sleep=slept.append)
    calls, fn = _counting("bug")
    with pytest.raises(ValueError, match="a bug"):
        run(Step("annotate", retry=True), fn)
    assert len(calls) == 1
    calls, fn = _counting("network")
    with pytest.raises(ConnectionError):
        run(Step("write"), fn)  # not a retried step
    assert len(calls) == 1
    assert slept == []


def test_in_process_run_exhausting_retries_fails_loudly_and_writes_no_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, inputs, config_file, texts
) -> None:
    """A real run whose annotate stage keeps failing on the network: tried 1 + STEP_RETRIES
    times, then the error itself is raised, and the output folder holds no manifest."""
    source = inputs.jsonl("one.jsonl", [{"id": "good", "text": texts.GOOD}])
    config = config_file(tmp_path / "c.yaml", name="flaky")
    attempts: list[str] = []
    real = pipeline.run_one_stage

    def flaky(name: str, *args: object) -> dict:
        if name == "annotate":
            attempts.append(name)
            raise TimeoutError("read timed out")
        return real(name, *args)

    monkeypatch.setattr(pipeline, "run_one_stage", flaky)
    slept: list[float] = []
    with pytest.raises(TimeoutError, match="read timed out"):
        pipeline.run_pipeline(str(config), [], [str(source)], str(tmp_path / "out"), InProcess(sleep=slept.append))
    assert len(attempts) == 1 + STEP_RETRIES == 3
    assert slept == [10, 60]
    assert not (tmp_path / "out" / "manifest.json").exists()
    assert not (tmp_path / "out" / "summary.json").exists()
    # The same run, the hiccup over, succeeds and writes its manifest.
    monkeypatch.setattr(pipeline, "run_one_stage", real)
    done = pipeline.run_pipeline(str(config), [], [str(source)], str(tmp_path / "out"), InProcess(sleep=slept.append))
    assert json.loads(Path(done.manifest).read_text())["counts"]["kept"] == 1


def test_prefect_task_options_come_from_the_same_policy() -> None:
    assert RETRY["retries"] == STEP_RETRIES
    assert RETRY["retry_delay_seconds"] == list(STEP_RETRY_DELAYS_S)

"""Retries are for transient errors only: a connection hiccup is retried, a bug is not."""

from __future__ import annotations

import pytest
from prefect import flow, task

from flows.curate_corpus import transient_failure

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

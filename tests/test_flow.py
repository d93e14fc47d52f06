"""The Prefect flow end to end: summary artifact, progress events, `curate run` as a user
types it, and the acceptance check: on a real Common Crawl WARC, the kept documents are
English and their text is the page's main content, not its navigation."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path

import lxml.html
import polars as pl
import pytest
import yaml
from warcio.archiveiterator import ArchiveIterator

from flows.curate_corpus import curate_corpus, set_progress_hook
from flows.stages import STEPS

RUN_NAME = "Flow_Test.1"
ARTIFACT_KEY = "curate-summary-flow-test-1"  # lowercase, dashes only: Prefect's key rules
ENGLISH_PAGE = "http://037426.cn/"  # the one English page of the sample (a chemicals company)


@pytest.fixture(scope="module")
def flow_inputs(tmp_path_factory, make_inputs, sample_warc: Path, texts) -> list[Path]:
    files = make_inputs(tmp_path_factory.mktemp("flow-in"))
    jsonl = files.jsonl(
        "web.jsonl", [{"id": "good", "text": texts.GOOD}, {"id": "french", "text": texts.FRENCH}, "{oops"]
    )
    return [sample_warc, jsonl]


@pytest.fixture(scope="module")
def flow_run(tmp_path_factory, prefect_harness, flow_inputs, config_file):
    """The flow called directly, as the CLI calls it, with a progress hook listening."""
    root = tmp_path_factory.mktemp("flow")
    config = config_file(root / "recipe.yaml", name=RUN_NAME)
    events: list[tuple[str, str]] = []
    set_progress_hook(lambda stage, event: events.append((stage, event)))
    try:
        manifest_path = curate_corpus(str(config), [], [str(p) for p in flow_inputs], str(root / "out"))
    finally:
        set_progress_hook(None)
    return Path(manifest_path), events, root / "out"


def read_artifacts(key: str) -> list:
    """Artifacts with this key, newest first, through the Prefect client.

    Not `client.read_artifacts()`: it sends `"flow_runs": null, "task_runs": null` for filters
    not given, and this Prefect server build answers 422 to explicit nulls. The same endpoint
    with those fields left out works."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import Artifact

    async def query() -> list:
        async with get_client() as client:
            response = await client.request(
                "POST",
                "/artifacts/filter",
                json={"artifacts": {"key": {"any_": [key]}}, "sort": "CREATED_DESC", "limit": 10, "offset": 0},
            )
            response.raise_for_status()
            return [Artifact.model_validate(item) for item in response.json()]

    return asyncio.run(query())


def test_flow_returns_the_manifest(flow_run) -> None:
    manifest_path, _, out = flow_run
    assert manifest_path == out / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    assert manifest["name"] == RUN_NAME
    counts = manifest["counts"]
    assert counts["kept"] + counts["rejected"] == counts["ingested"] == 16 + 3


def test_summary_matches_the_manifest(flow_run) -> None:
    manifest_path, _, out = flow_run
    manifest = json.loads(manifest_path.read_text())
    summary = json.loads((out / "summary.json").read_text())
    assert summary["name"] == RUN_NAME
    assert (summary["ingested"], summary["kept"], summary["rejected"]) == (
        manifest["counts"]["ingested"],
        manifest["counts"]["kept"],
        manifest["counts"]["rejected"],
    )
    assert summary["by_reason"] == manifest["counts"]["by_reason"]
    assert (summary["shards"], summary["bytes"]) == (manifest["totals"]["shards"], manifest["totals"]["bytes"])
    assert summary["seconds"] > 0


def test_summary_artifact_rows_match_the_summary(flow_run) -> None:
    _, _, out = flow_run
    summary = json.loads((out / "summary.json").read_text())
    artifacts = read_artifacts(ARTIFACT_KEY)
    assert artifacts, f"no artifact with key {ARTIFACT_KEY}"
    artifact = artifacts[0]
    assert artifact.type == "table"
    assert artifact.flow_run_id is not None
    rows = json.loads(artifact.data) if isinstance(artifact.data, str) else artifact.data
    expected = [
        {"stage": "input", "reason": "documents in", "documents": summary["ingested"]},
        {"stage": "output", "reason": "kept", "documents": summary["kept"]},
    ] + [{"stage": r["stage"], "reason": r["reason"], "documents": r["documents"]} for r in summary["by_reason"]]
    assert rows == expected
    # Dropped documents in the table add up to the rejected count.
    assert sum(r["documents"] for r in rows[2:]) == summary["rejected"]
    assert {("language", "language_not_kept"), ("ingest", "malformed_json")} <= {
        (r["stage"], r["reason"]) for r in rows
    }


def test_progress_hook_sees_every_stage(flow_run) -> None:
    _, events, _ = flow_run
    assert events == [(stage, event) for stage in STEPS for event in ("start", "done")]


def test_resolved_config_of_the_flow(flow_run, flow_inputs) -> None:
    _, _, out = flow_run
    resolved = yaml.safe_load((out / "config.resolved.yaml").read_text())
    assert resolved["input"]["paths"] == [str(p) for p in flow_inputs]
    assert resolved["output"]["dir"] == str(out)
    assert resolved["name"] == RUN_NAME


# --------------------------------------------------------------- acceptance: main content


def sample_pages(sample_warc: Path) -> dict[str, str]:
    """url -> decoded HTML of every response in the WARC, read independently of curate."""
    pages = {}
    with open(sample_warc, "rb") as f:
        for record in ArchiveIterator(f):
            if record.rec_type != "response":
                continue
            content_type = record.http_headers.get_header("Content-Type") or ""
            charset = content_type.split("charset=")[-1].strip() if "charset=" in content_type else "utf-8"
            charset = {"gb2312": "gb18030", "gbk": "gb18030"}.get(charset.lower(), charset)
            pages[record.rec_headers.get_header("WARC-Target-URI")] = (
                record.content_stream().read().decode(charset, "replace")
            )
    return pages


def words(text: str) -> str:
    return " ".join(text.split())


def assert_main_content(kept: pl.DataFrame, sample_warc: Path) -> None:
    pages = sample_pages(sample_warc)
    web = kept.filter(pl.col("source") == str(sample_warc))
    assert web.height >= 1
    assert set(web["lang"]) == {"en"}
    for row in web.iter_rows(named=True):
        tree = lxml.html.fromstring(pages[row["url"]])
        body = words(tree.body.text_content())
        links = {words(a.text_content()) for a in tree.iter("a")} - {""}
        lines = [words(line) for line in row["text"].splitlines() if line.strip()]
        assert lines
        # Every line comes from the page's visible body (not its <head>, not invented) ...
        assert [line for line in lines if line not in body] == []
        # ... and none is a link label: menus, sidebars and footers are lists of links.
        assert [line for line in lines if line in links] == []

    # The English page, checked against its HTML by hand: the kept text is the company
    # description in <div id="main">, without the menu, the product sidebar, the contact box
    # or the footer and its link farm.
    (text,) = web.filter(pl.col("url") == ENGLISH_PAGE)["text"].to_list()
    tree = lxml.html.fromstring(pages[ENGLISH_PAGE])
    main = words(tree.xpath('//div[@id="main"]')[0].text_content())
    assert all(words(line) in main for line in text.splitlines() if line.strip())
    assert "BONDTEK places strong emphasis not only on a product quality" in text
    for nav in (
        "HOME",
        "ABOUT US",
        "PRODUCTS",
        "CONTACT",
        "PROCESSING AGENT",
        "ANTIOXIDANT AGENT",
        "the only agent in China",
        "All rights reserved",
        "ffp5727",
        "boooming",
        "E-MAIL",
    ):
        assert nav not in text, nav


def test_kept_web_text_is_main_content(flow_run, sample_warc: Path) -> None:
    manifest_path, _, out = flow_run
    manifest = json.loads(manifest_path.read_text())
    kept = pl.concat([pl.read_parquet(out / s["path"]) for s in manifest["shards"]])
    assert_main_content(kept, sample_warc)
    # The other 15 pages (Chinese, Russian, Dutch, German) are in the ledger as not English.
    ledger = pl.concat([pl.read_parquet(p) for p in sorted((out / "rejected").glob("*.parquet"))])
    pages = ledger.filter(pl.col("source") == str(sample_warc))
    assert pages.height == 15
    assert set(pages["reason"]) == {"language_not_kept"}
    assert "en" not in set(pages["value"])


# ------------------------------------------------------------------- the CLI, as typed


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory, sample_warc: Path, config_file, curate_cli):
    root = tmp_path_factory.mktemp("cli")
    # COLUMNS: rich wraps its output at 80 columns when not on a terminal.
    env = dict(
        os.environ,
        COLUMNS="200",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        HF_HUB_OFFLINE="1",
        DO_NOT_TRACK="1",
        PREFECT_HOME=str(root / "prefect-home"),
    )
    config = config_file(
        root / "recipe.yaml",
        name="cli",
        input={"paths": [str(root / "not-used.jsonl")]},
        output={"dir": str(root / "not-used")},
    )
    out = root / "out"
    proc = subprocess.run(
        [
            *curate_cli,
            "run",
            str(config),
            "--input",
            str(sample_warc),
            "--output",
            str(out),
            "--quiet",
            "--set",
            "language.min_score=0.6",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        cwd=root,
    )
    return proc, out, root


@pytest.mark.slow
def test_curate_run_cli_with_overrides(cli_run, sample_warc: Path) -> None:
    proc, out, root = cli_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "curate run: cli" in proc.stdout
    assert f"ledger in {out / 'rejected'}" in proc.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    summary = json.loads((out / "summary.json").read_text())
    assert manifest["inputs"] == [str(sample_warc)]  # --input replaced input.paths
    assert not (root / "not-used").exists()  # --output replaced output.dir
    resolved = yaml.safe_load((out / "config.resolved.yaml").read_text())
    assert resolved["language"]["min_score"] == 0.6  # --set applied
    assert resolved["input"]["paths"] == [str(sample_warc)]
    # The table printed is the run's summary, row for row.
    printed = [
        [cell.strip() for cell in line.strip().strip("│").split("│")]
        for line in proc.stdout.splitlines()
        if line.startswith("│")
    ]
    assert printed == [
        ["input", "documents in", str(summary["ingested"])],
        ["output", "kept", str(summary["kept"])],
    ] + [[r["stage"], r["reason"], str(r["documents"])] for r in summary["by_reason"]]
    assert f"{summary['shards']} shard(s), {summary['bytes']:,} bytes in {out / 'data'}" in proc.stdout


@pytest.mark.slow
def test_curate_run_cli_keeps_main_content(cli_run, sample_warc: Path) -> None:
    proc, out, _ = cli_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = json.loads((out / "manifest.json").read_text())
    kept = pl.concat([pl.read_parquet(out / s["path"]) for s in manifest["shards"]])
    assert_main_content(kept, sample_warc)

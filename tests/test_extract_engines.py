"""extract.engine: trafilatura or resiliparse, the same ledger accounting for both (a page that
fails, hangs, crashes its extractor or has no main text), a bad engine name refused before
work, and the engine in the annotate stage's cache key."""

from __future__ import annotations

import gzip
import json
import os
import time
from pathlib import Path

import pytest
from datatrove.data import Document

import curate.annotate
from curate.annotate import ANNOTATE_SECTIONS, build_extractor
from curate.config import CurateConfig, load_config
from curate.core.errors import ConfigError
from curate.core.schema import META_EXTRACT_FAIL
from curate.core.stages import stage_key
from filters.extract import AccountedResiliparse, AccountedTrafilatura, ExtractConfig


def _html_docs(pages: dict[str, str]) -> list[Document]:
    return [Document(text=html, id=key, metadata={"content_type": "html"}) for key, html in pages.items()]


def _page(title: str, body: str) -> str:
    head = f"<html><head><title>{title}</title></head>"
    return f"{head}<body><article><h1>{title}</h1><p>{body}</p></article></body></html>"


def test_bad_engine_fails_naming_the_key_and_the_fix() -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, ["extract.engine=boilerpipe"])
    assert str(err.value) == (
        "invalid config (defaults):\n"
        "  extract.engine: unknown extractor (accepted: trafilatura, resiliparse). "
        "Fix: set extract.engine to trafilatura or resiliparse (got 'boilerpipe')."
    )


def test_engine_switch_builds_the_named_step() -> None:
    assert type(build_extractor(ExtractConfig(engine="resiliparse", timeout_s=3))) is AccountedResiliparse
    default = build_extractor(ExtractConfig())
    assert type(default) is AccountedTrafilatura
    recall = {"include_tables": False, "favor_recall": True}
    assert (default.favour_precision, default.kwargs, default.deduplicate) == (False, recall, False)
    # A config written before favour_recall existed (favour_precision: true) still means precision mode.
    precise = build_extractor(ExtractConfig(favour_precision=True, include_tables=True))
    assert (precise.favour_precision, precise.kwargs) == (True, {"include_tables": True})


def test_engine_is_part_of_the_annotate_cache_key() -> None:
    """Switching the extractor re-annotates: an output folder never mixes two engines' texts."""
    traf = CurateConfig.model_validate({"extract": {"engine": "trafilatura"}})
    resi = CurateConfig.model_validate({"extract": {"engine": "resiliparse"}})
    assert stage_key("", traf, ANNOTATE_SECTIONS) != stage_key("", resi, ANNOTATE_SECTIONS)


@pytest.mark.parametrize("engine", ["trafilatura", "resiliparse"])
def test_real_article_extracted_and_empty_page_counted(engine: str, shared_data: Path) -> None:
    """A real article page (article-extraction benchmark) gives its gold body's opening words;
    a page with no text is kept with `no_main_content`, naming the engine."""
    root = shared_data / "article-extraction-benchmark"
    truth = json.loads((root / "ground-truth.json").read_text())
    key = min(truth)
    html = gzip.decompress((root / "html" / f"{key}.html.gz").read_bytes()).decode("utf-8")
    step = build_extractor(ExtractConfig(engine=engine, timeout_s=30))
    docs = list(step.run(iter(_html_docs({"real": html, "empty": "<html><body><div></div></body></html>"}))))
    real, empty = docs
    opening = " ".join(truth[key]["articleBody"].split()[:12])
    assert opening in " ".join(real.text.split())
    assert META_EXTRACT_FAIL not in real.metadata and real.metadata["content_type"] == "text"
    assert empty.metadata[META_EXTRACT_FAIL] == ("no_main_content", f"{engine} found no main text")
    assert empty.text == ""


class MisbehavingResiliparse(AccountedResiliparse):
    """The real step, sandbox and timeout; only the parser call misbehaves on the pages that ask
    for it, as it can on pathological HTML: it hangs, kills its process, or raises."""

    def extract(self, text: str) -> str:
        if "HANG-FOREVER" in text:
            time.sleep(600)
        if "DIE-NOW" in text:
            os._exit(137)
        if "RAISE-NOW" in text:
            raise ValueError("the markup is broken beyond repair")
        return super().extract(text)


@pytest.mark.slow  # the hanging page waits out its 3 s timeout
def test_resiliparse_failures_each_have_their_reason(texts) -> None:
    step = MisbehavingResiliparse(timeout=3)
    pages = {
        "good": _page("Plants", texts.GOOD),
        "hang": _page("HANG-FOREVER", texts.GOOD),
        "die": _page("DIE-NOW", texts.GOOD),
        "error": _page("RAISE-NOW", texts.GOOD),
        "after": _page("Water", texts.WATER),
    }
    out = {doc.id: doc for doc in step.run(iter(_html_docs(pages)))}
    assert list(out) == list(pages)  # nothing lost, order kept
    reasons = {key: doc.metadata.get(META_EXTRACT_FAIL) for key, doc in out.items()}
    assert reasons["hang"] == ("extraction_timeout", "> extract.timeout_s=3")
    assert reasons["die"] == ("extraction_crashed", "extractor process died (out of memory?)")
    assert reasons["error"] == ("extraction_error", "ValueError: the markup is broken beyond repair")
    # The sandbox restarted after each failure: the pages around them were extracted.
    assert reasons["good"] is None and reasons["after"] is None
    assert "Calvin cycle" in out["good"].text and "transpiration" in out["after"].text
    assert step.stats["extraction_timeout"].total == 1 and step.stats["extracted"].total == 2


@pytest.mark.slow
def test_resiliparse_run_ledger(
    tmp_path: Path, texts, make_inputs, config_file, run_curate, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A whole `curate run` with extract.engine: resiliparse: a failing page is a ledger row with
    its reason, a good page reaches the shards."""
    monkeypatch.setattr(curate.annotate, "AccountedResiliparse", MisbehavingResiliparse)
    files = make_inputs(tmp_path / "in")
    pages = {
        "https://example.org/good": _page("Plants", texts.GOOD),
        "https://example.org/error": _page("RAISE-NOW", texts.WATER),
    }
    warc = files.warc("pages.warc.gz", [{"url": url, "body": body} for url, body in pages.items()])
    config = config_file(tmp_path / "c.yaml", name="resi", extract={"engine": "resiliparse", "timeout_s": 5})
    result = run_curate(config, [warc], tmp_path / "out")
    by_url = {row["url"]: (row["stage"], row["reason"]) for row in result.ledger().iter_rows(named=True)}
    assert by_url["https://example.org/error"] == ("extract", "extraction_error")
    assert "https://example.org/good" not in by_url
    assert result.manifest["counts"]["ingested"] == 2

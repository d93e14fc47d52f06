"""Files inside an input folder that are not read (hidden, `_`-prefixed, unknown format) are
listed with the reason in the manifest, the summary and the CLI's summary: never left out
without a word."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from curate.cli import main
from curate.core.input_files import SKIP_FORMAT, SKIP_HIDDEN, SKIP_UNDERSCORE, find_inputs


def _folder(inputs, texts) -> tuple[Path, list[dict[str, str]]]:
    inputs.jsonl("ok.jsonl", [{"id": "ok", "text": texts.GOOD}])
    inputs.jsonl(".hidden.jsonl", [{"id": "hidden", "text": texts.WATER}])
    inputs.jsonl("_tmp.jsonl", [{"id": "tmp", "text": texts.ROCKS}])
    inputs.bytes("_SUCCESS", b"")
    inputs.bytes("notes.txt", b"written by hand")
    inputs.jsonl("sub/_part.jsonl", [{"id": "part", "text": texts.CELLS}])
    root = inputs.root
    skipped = [
        {"path": str(root / ".hidden.jsonl"), "reason": SKIP_HIDDEN},
        {"path": str(root / "_SUCCESS"), "reason": SKIP_UNDERSCORE},
        {"path": str(root / "_tmp.jsonl"), "reason": SKIP_UNDERSCORE},
        {"path": str(root / "notes.txt"), "reason": SKIP_FORMAT},
        {"path": str(root / "sub" / "_part.jsonl"), "reason": SKIP_UNDERSCORE},
    ]
    return root, skipped


def test_find_inputs_lists_what_it_leaves_out(inputs, texts) -> None:
    root, skipped = _folder(inputs, texts)
    files, left_out = find_inputs([str(root)])
    assert files == [str(root / "ok.jsonl")]
    assert left_out == skipped


def test_a_file_named_on_the_command_line_is_read_whatever_its_name(inputs, texts) -> None:
    root, _ = _folder(inputs, texts)
    files, left_out = find_inputs([str(root / "_tmp.jsonl")])
    assert (files, left_out) == ([str(root / "_tmp.jsonl")], [])


@pytest.mark.slow
def test_skipped_inputs_in_manifest_summary_and_cli(
    tmp_path: Path, inputs, texts, config_file, prefect_harness, capsys
) -> None:
    root, skipped = _folder(inputs, texts)
    out = tmp_path / "out"
    assert (
        main(["run", str(config_file(tmp_path / "c.yaml", name="skips")), "--input", str(root), "--output", str(out)])
        == 0
    )
    printed = capsys.readouterr().out
    assert json.loads((out / "manifest.json").read_text())["skipped_inputs"] == skipped
    assert json.loads((out / "summary.json").read_text())["skipped_inputs"] == skipped
    assert "5 file(s) in the input folders not read:" in printed
    flat = "".join(printed.split())  # rich wraps long lines, inside a path too
    for left_out in skipped:
        assert "".join(f"{left_out['path']}: {left_out['reason']}".split()) in flat


def test_files_inside_underscore_or_dot_folders_are_skipped_and_listed(tmp_path: Path) -> None:
    """Spark's `_temporary/` attempt folders and `_delta_log/` hold partial or duplicate
    output: a file inside them is skipped like a `_SUCCESS` marker, and listed with why."""

    root = tmp_path / "in"
    (root / "_temporary" / "0" / "attempt_1").mkdir(parents=True)
    (root / ".git").mkdir()
    (root / "part-00000.jsonl").write_text('{"text": "kept"}\n')
    (root / "_temporary" / "0" / "attempt_1" / "part-00000.jsonl").write_text('{"text": "partial"}\n')
    (root / ".git" / "x.jsonl").write_text('{"text": "no"}\n')
    files, skipped = find_inputs([str(root)])
    assert files == [str(root / "part-00000.jsonl")]
    assert skipped == [
        {"path": str(root / ".git" / "x.jsonl"), "reason": SKIP_HIDDEN},
        {"path": str(root / "_temporary" / "0" / "attempt_1" / "part-00000.jsonl"), "reason": SKIP_UNDERSCORE},
    ]

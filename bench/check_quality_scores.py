"""Same scores before and after a speed change of the quality stage: every score column of
QualityAnnotator (scorer combined and edu) on bench_quality's documents, and of a finished
`curate run` output folder, written to JSON by one version and compared by the other.

    PYTHONPATH=. .venv/bin/python -m bench.check_quality_scores write /tmp/qspeed-scores.json [--run-output OUT]
    PYTHONPATH=. .venv/bin/python -m bench.check_quality_scores compare /tmp/qspeed-scores.json [--run-output OUT]

Exit status 1 and the first differences when any column differs by more than --tol (1e-12)."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from bench.bench_quality import MAX_CHARS, corpus
from bench.webeval import shared_data_dir
from curate.core import schema as S

COLUMNS = (S.QUALITY_EDU, S.QUALITY_GENERAL, S.QUALITY_SCORE, S.QUALITY_BUCKET)


def stage_scores(texts: list[str], scorer: str) -> list[dict[str, Any]]:
    from datatrove.data import Document

    from curate.quality.apply import QualityAnnotator

    step = QualityAnnotator(max_chars=MAX_CHARS, scorer=scorer)
    docs = [Document(text=t, id=str(i), metadata={}) for i, t in enumerate(texts)]
    return [{c: doc.metadata.get(c) for c in COLUMNS} for doc in step.run(iter(docs))]


def run_scores(out: Path) -> dict[str, dict[str, Any]]:
    """Score columns of every row of a run's output (kept and rejected), by document id."""
    import pyarrow.parquet as pq

    rows: dict[str, dict[str, Any]] = {}
    for path in sorted(out.rglob("*.parquet")):
        table = pq.read_table(path)
        if S.QUALITY_SCORE not in table.column_names or "id" not in table.column_names:
            continue
        cols = {c: table.column(c).to_pylist() if c in table.column_names else None for c in COLUMNS}
        for i, doc_id in enumerate(table.column("id").to_pylist()):
            rows[f"{path.relative_to(out)}:{doc_id}"] = {c: (v[i] if v is not None else None) for c, v in cols.items()}
    return rows


def collect(repeat: int, run_output: str) -> dict[str, Any]:
    texts = corpus(shared_data_dir()) * repeat
    out: dict[str, Any] = {"documents": len(texts)}
    for scorer in ("combined", "edu"):
        out[scorer] = stage_scores(texts, scorer)
    if run_output:
        out["run"] = run_scores(Path(run_output))
        if not out["run"]:
            raise SystemExit(f"no parquet rows with {S.QUALITY_SCORE} under {run_output}")
    return out


def differences(old: Any, new: Any, tol: float, where: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        if old.keys() != new.keys():
            return [f"{where}: keys differ ({sorted(set(old) ^ set(new))[:5]})"]
        return [d for k in old for d in differences(old[k], new[k], tol, f"{where}/{k}")]
    if isinstance(old, list) and isinstance(new, list):
        if len(old) != len(new):
            return [f"{where}: {len(old)} rows before, {len(new)} after"]
        return [d for i, (a, b) in enumerate(zip(old, new)) for d in differences(a, b, tol, f"{where}[{i}]")]
    if isinstance(old, float) and isinstance(new, (int, float)) and not isinstance(new, bool):
        return [] if math.isclose(old, new, rel_tol=0, abs_tol=tol) else [f"{where}: {old!r} -> {new!r}"]
    return [] if old == new else [f"{where}: {old!r} -> {new!r}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=["write", "compare"])
    parser.add_argument("path")
    parser.add_argument("--repeat", type=int, default=3, help="as bench_quality --repeat (3: 1,275 documents)")
    parser.add_argument("--run-output", default="", help="a finished `curate run` output folder to compare too")
    parser.add_argument("--tol", type=float, default=1e-12)
    args = parser.parse_args(argv)
    now = collect(args.repeat, args.run_output)
    if args.mode == "write":
        Path(args.path).write_text(json.dumps(now))
        print(
            f"wrote the scores of {now['documents']} documents (and {len(now.get('run', {}))} run rows) to {args.path}"
        )
        return 0
    before = json.loads(Path(args.path).read_text())
    if not args.run_output:
        before.pop("run", None)
    diffs = differences(before, now, args.tol)
    scored = sum(r[S.QUALITY_SCORE] is not None for r in now["combined"])
    print(
        f"{now['documents']} documents ({scored} scored), {len(now.get('run', {}))} run rows: "
        f"{len(diffs)} differences above {args.tol}"
    )
    for d in diffs[:20]:
        print("  " + d)
    return 1 if diffs else 0


if __name__ == "__main__":
    raise SystemExit(main())

"""End-to-end benchmark: `curate run` against a bare datatrove pipeline with the same reader,
extractor and filters, on the same real pages, in the same run, one process each.

Reports documents/s/core and peak memory (whole process tree) for both, and their ratio:
our overhead. curate's run also pays a fixed cost per run (Prefect's temporary server,
planning, the manifest), measured separately on a one-page input and reported apart.

Usage: python -m bench.bench_e2e [--copies 10] [--quick]"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from bench.common import REPO, Measured, measure, write_article_warc, write_json


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update({"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "HF_HUB_OFFLINE": "1", "DO_NOT_TRACK": "1", "PYTHONPATH": str(REPO)})
    return env


def run_curate(warc: Path, out: Path) -> Measured:
    config = out.parent / f"{out.name}.yaml"
    config.write_text(f"name: bench\ninput: {{paths: ['{warc}']}}\noutput: {{dir: '{out}'}}\nexecutor: {{workers: 1}}\ndedup: {{enabled: false}}\n")
    return measure([str(REPO / ".venv/bin/curate"), "run", str(config), "--quiet"], env=_env(), cwd=REPO)


def run_bare(warc: Path, out: Path) -> Measured:
    return measure([sys.executable, "-m", "bench.bare_datatrove", str(warc), str(out)], env=_env(), cwd=REPO)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--copies", type=int, default=10, help="times each of the 181 real pages is served (10 -> 1,810 pages)")
    parser.add_argument("--quick", action="store_true", help="2 copies, for a smoke run")
    args = parser.parse_args()
    copies = 2 if args.quick else args.copies
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        warc = tmp / "pages.warc.gz"
        pages = write_article_warc(warc, copies)
        one = tmp / "one.warc.gz"
        write_article_warc(one, copies=1, limit=1)

        fixed = run_curate(one, tmp / "out-fixed")
        ours = run_curate(warc, tmp / "out-curate")
        bare = run_bare(warc, tmp / "out-bare")
        for name, m in (("curate (1 page)", fixed), ("curate", ours), ("bare datatrove", bare)):
            if m.returncode != 0:
                sys.exit(f"{name} failed:\n{m.output[-3000:]}")
        manifest = json.loads((tmp / "out-curate" / "manifest.json").read_text())

    per_doc_ours = (ours.seconds - fixed.seconds) / pages
    per_doc_bare = bare.seconds / pages
    result = {
        "pages": pages,
        "curate": {"seconds": round(ours.seconds, 2), "fixed_seconds": round(fixed.seconds, 2), "fixed_peak_rss_mb": round(fixed.peak_rss_mb), "docs_per_s_core": round(1 / per_doc_ours, 1), "peak_rss_mb": round(ours.peak_rss_mb), "kept": manifest["counts"]["kept"]},
        "bare_datatrove": {"seconds": round(bare.seconds, 2), "docs_per_s_core": round(1 / per_doc_bare, 1), "peak_rss_mb": round(bare.peak_rss_mb)},
        "throughput_ratio": round(per_doc_bare / per_doc_ours, 3),
        "memory_ratio": round(ours.peak_rss_mb / bare.peak_rss_mb, 3),
    }
    print(json.dumps(result, indent=2))
    write_json(REPO / "bench" / "out" / "e2e.json", result)


if __name__ == "__main__":
    main()

"""Where the time of `curate run` goes, per step, on real pages: seconds per page, per MB of
HTML and share of the per-page total, plus the fixed cost of a run (imports, model loads,
Prefect's temporary server).

Method (not cProfile, whose per-call hooks inflate the Python-heavy steps): the annotate
pipeline's steps are the real curate steps, run one after the other in this process over the
whole document list (each step consumes the previous step's materialised output), and timed
with `time.perf_counter` (wall) and `time.process_time` (this process's CPU). Extraction runs
in datatrove's sandbox child process, so its CPU appears in wall time only. The heuristic
rules are timed three ways: datatrove's four filters each through `FilterAnnotator` (curate's
path before issue 18, `filters.engine: datatrove`), and the fused step (`filters.engine:
fused`, the default). Then the later stages run on the part written: select, hygiene, dedup.
Fixed costs: each import and model load timed in a fresh interpreter; Prefect's share is a
whole `curate run` on one page minus the same run's in-process work.

Input: the 181 real article pages (bench/common.py's WARC, `--copies` times) and the shared
Common Crawl sample WARC. Rounds: `--rounds`, medians reported.

With `--wcxb-git DIR --wcxb-pages N` the input is instead the first N HTML pages of the WCXB
benchmark (~340 KB of HTML each, read as bench/bench_e2e.py reads them): the large pages of the
945-page end-to-end run, where curate's own per-page overhead on long texts shows.

Usage: python -m bench.profile_pages [--copies 1] [--rounds 3] [--skip-fixed] [--wcxb-git DIR --wcxb-pages 300]"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.common import (
    REPO,
    measure,
    run_header,
    shared_data,
    write_article_warc,
    write_json,
)

IMPORTS = {
    "import datatrove + readers/filters": "import datatrove.pipeline.filters, datatrove.pipeline.readers",
    "import trafilatura": "import trafilatura",
    "import spacy (blank en)": "import spacy; spacy.blank('en')",
    # as the rules import it (filters/spacy_import.py): thinc does not import torch
    "import spacy without torch": "from filters.spacy_import import import_spacy; import_spacy().blank('en')",
    "import fasttext + load lid.176": "from filters.language import LanguageAnnotator; LanguageAnnotator()._filter().model.model",  # noqa: E501
    "import curate.annotate (all annotate steps)": "import curate.annotate",
    "import prefect + flows.curate_corpus": "import flows.curate_corpus",
    "import curate.cli": "import curate.cli",
    "load quality scorers (combined)": "from curate.quality.apply import QualityAnnotator; QualityAnnotator().model",
}


def timed(fn: Callable[[], object]) -> tuple[object, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def per_page_steps(warcs: list[Path], work: Path) -> tuple[dict[str, tuple[float, float]], int, float]:
    """{step: (wall s, CPU s)} for every per-page step over `warcs`, the pages and the MB of HTML."""
    from datatrove.data import Document

    from curate.annotate import annotate_pipeline
    from curate.config import load_config
    from curate.dedup.stage import dedup_stage
    from curate.hygiene import hygiene_enabled
    from curate.hygiene.stage import hygiene_stage
    from curate.quality.apply import QualityAnnotator
    from curate.readers.reader import RecordReader
    from curate.select import run_select
    from curate.writers import AnnotatedWriter
    from filters.annotate import FilterAnnotator
    from filters.extract import AccountedTrafilatura
    from filters.fused_rules import FusedRules
    from filters.heuristics import build_filter
    from filters.language import LanguageAnnotator
    from filters.registry import filter_stages

    files = [str(w) for w in warcs]
    cfg = load_config(None, ["executor.workers=1", "quality.enabled=true"])
    annotate_pipeline(cfg, files, work)  # builds (and loads) every step once, as a run does
    out: dict[str, tuple[float, float]] = {}

    def step(name: str, fn: Callable[[], object]) -> object:
        result, wall, cpu = timed(fn)
        out[name] = (wall, cpu)
        return result

    docs: list[Document] = step("read WARC (curate RecordReader)", lambda: list(RecordReader(files).run(None)))  # type: ignore[assignment]
    html_mb = sum(len(d.text.encode()) for d in docs) / 1e6
    docs = step("extract (trafilatura, sandboxed)", lambda: list(AccountedTrafilatura().run(iter(docs))))  # type: ignore[assignment]
    lid = LanguageAnnotator()
    lid.annotate_batch([Document(text="warm up", id="w")])
    docs = step("language ID (fastText, batched)", lambda: list(lid.run(iter(docs))))  # type: ignore[assignment]
    filters = {s: build_filter(s, cfg.filters) for s in filter_stages()}
    snapshot = [(d.text, dict(d.metadata)) for d in docs]

    def fresh() -> list[Document]:
        return [Document(text=t, id=str(i), metadata=dict(m)) for i, (t, m) in enumerate(snapshot)]

    for stage, f in filters.items():
        annotator, batch = FilterAnnotator(stage, f), fresh()
        step(f"rule {stage} (datatrove, FilterAnnotator)", lambda a=annotator, b=batch: list(a.run(iter(b))))
    fused = FusedRules(filters)
    fused.annotate("warm up the tokenizer.")
    batch = fresh()
    docs = step("rules, all four (fused)", lambda: list(fused.run(iter(batch))))  # type: ignore[assignment]
    quality = QualityAnnotator()
    quality.model  # noqa: B018  (load outside the timing: a fixed cost)
    docs = step("quality scorers (off by default)", lambda: list(quality.run(iter(docs))))  # type: ignore[assignment]
    writer = AnnotatedWriter(str(work / "parts"), filter_stages())
    step("Parquet write (annotated part)", lambda: list(writer.run(iter(docs))))
    parts = [work / "parts" / "00000.parquet"]
    kept, _ = step("select", lambda: run_select(cfg, parts, work / "kept", work / "ledger"))  # type: ignore[misc]
    if hygiene_enabled(cfg):
        kept, _ = step("hygiene (URL filter, PII, decontamination)", lambda: hygiene_stage(cfg, kept, work / "hygiene"))  # type: ignore[misc]
    step("dedup (exact + MinHash)", lambda: dedup_stage(cfg, kept, work / "dedup"))
    return out, len(snapshot), html_mb


def fixed_costs(tmp: Path) -> dict[str, float]:
    """Wall seconds of each import / load in a fresh interpreter, and a whole `curate run` on one page."""
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "HF_HUB_OFFLINE": "1",
        "DO_NOT_TRACK": "1",
    }
    out: dict[str, float] = {}
    base = measure([sys.executable, "-c", "pass"], env=env, cwd=REPO)
    out["python start"] = base.seconds
    for name, code in IMPORTS.items():
        m = measure([sys.executable, "-c", code], env=env, cwd=REPO)
        if m.returncode != 0:
            sys.exit(f"{name} failed: {m.output[-2000:]}")
        out[name] = m.seconds - base.seconds
        out[f"{name} (CPU)"] = m.cpu_s
    tmp.mkdir(parents=True, exist_ok=True)
    one = tmp / "one.warc.gz"
    write_article_warc(one, 1, 1)
    cfg = tmp / "one.yaml"
    cfg.write_text(
        f"name: one\ninput: {{paths: ['{one}']}}\noutput: {{dir: '{tmp / 'one-out'}'}}\nexecutor: {{workers: 1}}\n"
    )
    # `curate run` in-process (its default without PREFECT_API_URL) and as the Prefect flow with
    # its temporary local server (--prefect): the difference is Prefect's fixed cost.
    for label, flag in (("", []), (" --prefect", ["--prefect"])):
        cmd = [str(REPO / ".venv/bin/curate"), "run", str(cfg), "--quiet", "--output", str(tmp / f"out{label}"), *flag]
        run = measure(cmd, env=env, cwd=REPO)
        if run.returncode != 0:
            sys.exit(f"curate run{label} failed: {run.output[-2000:]}")
        out[f"curate run{label}, 1 page (whole)"] = run.seconds
        out[f"curate run{label}, 1 page (whole, CPU)"] = run.cpu_s
    code = (
        "import time; t=time.perf_counter(); from pathlib import Path; from curate.config import load_config;"
        "from curate.annotate import run_annotate; from curate.select import run_select; from curate.dedup.stage "
        "import dedup_stage;"
        f"cfg=load_config('{cfg}'); d=Path('{tmp / 'inproc'}'); p=run_annotate(cfg, ['{one}'], d/'a');"
        "k,_=run_select(cfg, p, d/'k', d/'l'); dedup_stage(cfg, k, d/'d')"
    )
    inproc = measure([sys.executable, "-c", code], env=env, cwd=REPO)
    if inproc.returncode != 0:
        sys.exit(f"in-process run failed: {inproc.output[-2000:]}")
    out["same stages in-process, no Prefect (whole)"] = inproc.seconds
    out["same stages in-process, no Prefect (whole, CPU)"] = inproc.cpu_s
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--copies", type=int, default=1, help="copies of the 181 article pages")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--skip-fixed", action="store_true", help="only the per-page table")
    ap.add_argument("--wcxb-git", type=Path, help="profile the first --wcxb-pages WCXB pages instead (a git clone)")
    ap.add_argument("--wcxb-pages", type=int, default=300)
    ap.add_argument("--json", type=Path, default=REPO / "bench" / "out" / "profile_pages.json")
    args = ap.parse_args()
    rounds: list[dict[str, tuple[float, float]]] = []
    fixed: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="fast-rules-profile-") as tmp_name:
        tmp = Path(tmp_name)
        if args.wcxb_git:
            from bench.bench_e2e import wcxb_pages, write_pages_warc

            warc = tmp / "wcxb.warc.gz"
            write_pages_warc(warc, wcxb_pages(args.wcxb_git, args.wcxb_pages))
            warcs = [warc]
        else:
            warc = tmp / "articles.warc.gz"
            write_article_warc(warc, args.copies)
            warcs = [warc, shared_data() / "cc-main-2020-34-sample.warc.gz"]
        for r in range(args.rounds):
            work = tmp / f"round-{r}"
            steps, pages, html_mb = per_page_steps(warcs, work)
            rounds.append(steps)
            print(f"round {r + 1}: " + ", ".join(f"{k} {v[0]:.2f}s" for k, v in steps.items()), flush=True)
            if not args.skip_fixed:
                fixed.append(fixed_costs(tmp / f"fixed-{r}"))
                print(f"round {r + 1} fixed: " + ", ".join(f"{k} {v:.2f}" for k, v in fixed[-1].items()), flush=True)
    names = list(rounds[0])
    med = {n: (statistics.median(r[n][0] for r in rounds), statistics.median(r[n][1] for r in rounds)) for n in names}
    spread = {n: (min(r[n][0] for r in rounds), max(r[n][0] for r in rounds)) for n in names}
    # the default path's total: datatrove's rule rows are the alternative, not added
    default = [n for n in names if "(datatrove" not in n and not n.startswith("quality")]
    total = sum(med[n][0] for n in default)
    lines = [
        f"{pages} pages, {html_mb:.1f} MB of HTML, one process, medians of {args.rounds} rounds (wall; CPU of this "
        "process)",
        "",
        "| step | ms per page (wall) | min-max over rounds | CPU ms per page | s per MB of HTML | share of default "
        "per-page total |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for n in names:
        wall, cpu = med[n]
        share = f"{100 * wall / total:.1f} %" if n in default else "(not in default)"
        lines.append(
            f"| {n} | {1000 * wall / pages:.2f} | {1000 * spread[n][0] / pages:.2f}-{1000 * spread[n][1] / pages:.2f} "
            f"| {1000 * cpu / pages:.2f} | {wall / html_mb:.3f} | {share} |"
        )
    lines.append(f"| **default per-page total** | **{1000 * total / pages:.2f}** | | | {total / html_mb:.3f} | 100 % |")
    result: dict[str, object] = {
        **run_header(),
        "command": " ".join(["python -m bench.profile_pages", *sys.argv[1:]]),
        "pages": pages,
        "html_mb": html_mb,
        "steps_median": med,
        "steps_rounds": rounds,
    }
    if fixed:
        fmed = {k: statistics.median(f[k] for f in fixed) for k in fixed[0]}
        result["fixed_median"] = fmed
        lines += ["", "| fixed cost, per run | wall s (median) |", "|---|---:|"]
        lines += [f"| {k} | {v:.2f} |" for k, v in fmed.items()]
    print("\n".join(lines))
    result["table"] = lines
    write_json(args.json, result)


if __name__ == "__main__":
    main()

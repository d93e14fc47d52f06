"""End-to-end benchmark: `curate run` against a bare datatrove pipeline with the same reader,
extractor and filters, on the same real pages, one worker each, each side measured whole.

Sides (each its own process, its whole process tree's wall time and peak RSS measured):
  bare      bench/bare_datatrove.py: datatrove WarcReader -> Trafilatura -> LanguageFilter ->
            Gopher repetition -> Gopher quality -> C4 -> FineWeb -> ParquetWriter, dropping as
            it goes; no dedup (datatrove's MinHash dedup is four more pipelines).
  curate    `curate run` with its defaults (executor.workers=1): the same extraction and rules,
            every rule run on every document (annotate, then select), exact + MinHash near
            dedup, shards, manifest, ledger, in-process (no PREFECT_API_URL: a new user's run).
  prefect   the same `curate run --prefect`: the Prefect flow with its temporary local server.
  precision the same `curate run` with extract.favour_precision=true: the bare side's extractor
            setting (curate's default is favour_recall).
  nodedup   the same `curate run` with dedup.enabled=false (the work closest to the bare side).
  dtrules   `curate run` with filters.engine=datatrove: datatrove's four filters one by one
            (curate's path before issue 18) instead of the fused rules, dedup on.

Headline (issue 18): pages per CPU-second of each whole run, fixed costs included, curate /
bare, median of the per-round ratios, at each size.

Inputs, one WARC.gz per size, records typed `WARC-Identified-Payload-Type: text/html`:
  --pages A B   A and B *distinct* real pages: the 181 pages of the article-extraction
                benchmark, then the HTML pages of the WCXB benchmark (dev, then test, in file
                order) read from its git clone (--wcxb-git, or $CURATE_WCXB_GIT): e.g. 181 945.
  --copies A B  the 181 article pages served A and B times under distinct URLs (repeats: the
                second copy finds per-process caches warm).

Wall and CPU seconds (user + system of the whole tree) are both reported; on a machine
shared with other jobs the CPU figures are the steadier ones. Reported per side: seconds per
run at each size, and the per-page cost as the slope between the two sizes, so each side's own
fixed cost (imports, model loads, Prefect's temporary server) is removed from its own figure.
Rounds alternate the order of the sides so load from other jobs falls on all alike; ratios
are taken within each round and the median over rounds is reported.

Usage: python -m bench.bench_e2e [--copies 1 2 | --pages 181 945 --wcxb-git DIR] [--rounds 3]
                                 [--sides bare,curate,prefect,nodedup,dtrules]
       python -m bench.bench_e2e --quick      # 91 and 181 pages, one round: a smoke run"""  # noqa: E501

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import REPO, Measured, article_pages, measure, run_header, write_article_warc, write_json

SIDES = ("bare", "curate", "prefect", "precision", "nodedup", "dtrules")
# The WCXB benchmark's commit that scripts/combined_quality_data.py reads (pages of 2025-2026).
WCXB_COMMIT = "c039d5ee9f5a3a984a0e167e63aacd04e76e78a9"
# The first line `curate run` prints: which way it ran (checked, so a configured Prefect API
# cannot silently turn the in-process side into the flow).
MODE_LINE = {"curate": "running in-process", "prefect": "running the curate-corpus Prefect flow"}


def wcxb_pages(gdir: Path, n: int) -> list[tuple[str, bytes]]:
    """The first `n` HTML pages of WCXB (dev, then test, in file order) from a git clone, read
    with one `git cat-file --batch` (a process per page would cost more than the reading)."""
    if n <= 0:
        return []
    if not (gdir / "objects").is_dir() and not (gdir / ".git").exists():
        sys.exit(
            f"no git clone of the WCXB benchmark at {gdir or '(unset)'}. Fix: pass --wcxb-git with a (bare) clone of "
            "Murrough-Foley/web-content-extraction-benchmark, or set CURATE_WCXB_GIT"
        )
    names = [
        name
        for split in ("dev", "test")
        for name in subprocess.run(
            ["git", f"--git-dir={gdir}", "ls-tree", "-r", "--name-only", WCXB_COMMIT, f"{split}/html"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
    ][:n]
    if len(names) < n:
        sys.exit(f"WCXB has {len(names)} HTML pages, {n} asked. Fix: ask for at most {181 + len(names)} pages")
    request = "".join(f"{WCXB_COMMIT}:{name}\n" for name in names).encode()
    out = subprocess.run(["git", f"--git-dir={gdir}", "cat-file", "--batch"], input=request, capture_output=True)
    out.check_returncode()
    pages, pos = [], 0
    for name in names:
        header_end = out.stdout.index(b"\n", pos)
        size = int(out.stdout[pos:header_end].split()[2])
        blob = out.stdout[header_end + 1 : header_end + 1 + size]
        pos = header_end + 1 + size + 1
        page_id = "wcxb-" + name.replace("/html/", "-").split(".")[0]
        pages.append((page_id, gzip.decompress(blob)))
    return pages


def write_pages_warc(path: Path, pages: list[tuple[str, bytes]]) -> int:
    """A WARC.gz of these pages, each once under its own URL, typed text/html (as in Common
    Crawl; without it datatrove's WarcReader guesses with libmagic and skips most pages)."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    with open(path, "wb") as out:
        writer = WARCWriter(out, gzip=True)
        for page_id, html in pages:
            http = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
            record = writer.create_warc_record(
                f"https://bench.example/{page_id}",
                "response",
                payload=io.BytesIO(html),
                http_headers=http,
                warc_headers_dict={"WARC-Identified-Payload-Type": "text/html"},
            )
            writer.write_record(record)
    return len(pages)


def distinct_pages(n: int, wcxb_git: Path) -> list[tuple[str, bytes]]:
    """`n` distinct real pages: the 181 article-benchmark pages, then WCXB's."""
    articles = [(f"article-{page_id}", html) for page_id, html in article_pages()]
    return (articles + wcxb_pages(wcxb_git, n - len(articles)))[:n]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "HF_HUB_OFFLINE": "1",
            "DO_NOT_TRACK": "1",
            "PYTHONPATH": str(REPO),
        }
    )
    return env


def run_side(side: str, warc: Path, out: Path) -> tuple[Measured, int]:
    """One whole run of `side` on `warc`; returns the measurement and the documents it kept."""
    if side == "bare":
        m = measure([sys.executable, "-m", "bench.bare_datatrove", str(warc), str(out)], env=_env(), cwd=REPO)
        if m.returncode != 0:
            sys.exit(f"bare datatrove failed:\n{m.output[-3000:]}")
        stats = json.loads([line for line in m.output.splitlines() if line.startswith('{"stats"')][-1])["stats"]
        writer = [s for s in stats if "Parquet" in s.get("name", "")]
        kept = int(writer[-1]["stats"].get("total", 0)) if writer else -1
        return m, kept
    dedup = "false" if side == "nodedup" else "true"
    flags = ["--prefect"] if side == "prefect" else []
    engine = "datatrove" if side == "dtrules" else "fused"
    precision = "true" if side == "precision" else "false"
    config = out.parent / f"{out.name}.yaml"
    config.write_text(
        f"name: bench\ninput: {{paths: ['{warc}']}}\noutput: {{dir: '{out}'}}\nexecutor: {{workers: 1}}\ndedup: "
        f"{{enabled: {dedup}}}\nfilters: {{engine: {engine}}}\nextract: {{favour_precision: {precision}}}\n"
    )
    m = measure([str(REPO / ".venv/bin/curate"), "run", str(config), "--quiet", *flags], env=_env(), cwd=REPO)
    if m.returncode != 0:
        sys.exit(f"curate run ({side}) failed:\n{m.output[-3000:]}")
    want = MODE_LINE.get(side, MODE_LINE["curate"])
    if want not in m.output:
        sys.exit(f"curate run ({side}) did not run as meant (expected '{want}...'):\n{m.output[:500]}")
    return m, int(json.loads((out / "manifest.json").read_text())["counts"]["kept"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--copies", type=int, nargs=2, default=[1, 2], help="copies of the 181 pages at the small and the large size"
    )
    parser.add_argument(
        "--pages", type=int, nargs=2, default=None, help="distinct real pages at the two sizes, e.g. 181 945"
    )
    parser.add_argument(
        "--wcxb-git",
        type=Path,
        default=Path(os.environ.get("CURATE_WCXB_GIT", "")),
        help="git clone of the WCXB benchmark (Murrough-Foley/web-content-extraction-benchmark); default "
        "$CURATE_WCXB_GIT; needed by --pages above 181",
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sides", default=",".join(SIDES), help=f"comma-separated, from {SIDES}; bare is always run")
    parser.add_argument("--quick", action="store_true", help="91 and 181 pages, one round, bare and curate only")
    args = parser.parse_args()
    sides = ["bare", *[s for s in args.sides.split(",") if s in SIDES and s != "bare"]]
    if args.quick:
        sizes, rounds, sides = [(1, 91), (1, None)], 1, ["bare", "curate"]
    else:
        sizes, rounds = [(c, None) for c in args.copies], args.rounds
    runs: dict[str, list[dict[str, float]]] = {s: [] for s in sides}
    with tempfile.TemporaryDirectory(prefix="curate-bench-e2e-") as tmp_name:
        tmp = Path(tmp_name)
        warcs = [tmp / f"pages-{i}.warc.gz" for i in range(2)]
        if args.pages and not args.quick:
            real = distinct_pages(max(args.pages), args.wcxb_git)
            pages = [write_pages_warc(w, real[:n]) for w, n in zip(warcs, args.pages)]
        else:
            pages = [write_article_warc(w, copies, limit) for w, (copies, limit) in zip(warcs, sizes)]
        print(f"sizes: {pages[0]} and {pages[1]} pages; sides: {', '.join(sides)}; {rounds} round(s)", flush=True)
        for r in range(rounds):
            order = sides if r % 2 == 0 else sides[::-1]
            row: dict[str, dict[str, float]] = {}
            for side in order:
                for i, warc in enumerate(warcs):
                    out = tmp / f"out-{side}-{r}-{i}"
                    m, kept = run_side(side, warc, out)
                    row.setdefault(side, {})[f"s{i}"] = m.seconds
                    row[side][f"rss{i}"] = m.peak_rss_mb
                    row[side][f"cpu{i}"] = m.cpu_s
                    row[side][f"kept{i}"] = kept
                    print(
                        f"round {r + 1} {side:<8} {pages[i]:>5} pages: {m.seconds:6.1f} s wall, {m.cpu_s:6.1f} s CPU, "
                        f"peak RSS {m.peak_rss_mb:,.0f} MB, kept {kept}",
                        flush=True,
                    )
            for side in sides:
                runs[side].append(row[side])

    def per_page(run: dict[str, float], what: str = "s") -> float:
        return (run[f"{what}1"] - run[f"{what}0"]) / (pages[1] - pages[0])

    result: dict[str, object] = {
        **run_header(),
        "command": " ".join(["python -m bench.bench_e2e", *sys.argv[1:]]),
        "pages": pages,
        "distinct_pages": bool(args.pages and not args.quick),
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO
        ).stdout.strip(),
        "rounds": rounds,
    }
    for side in sides:
        rs = runs[side]
        slope = statistics.median(per_page(x) for x in rs)
        result[side] = {
            "wall_s": [statistics.median(x[f"s{i}"] for x in rs) for i in range(2)],
            "per_page_s": slope,
            "pages_per_s": 1 / slope if slope > 0 else float("inf"),
            "fixed_s": statistics.median(x["s0"] - per_page(x) * pages[0] for x in rs),
            "cpu_s": [statistics.median(x[f"cpu{i}"] for x in rs) for i in range(2)],
            "cpu_per_page_s": statistics.median(per_page(x, "cpu") for x in rs),
            "fixed_cpu_s": statistics.median(x["cpu0"] - per_page(x, "cpu") * pages[0] for x in rs),
            "peak_rss_mb": [max(x[f"rss{i}"] for x in rs) for i in range(2)],
            "kept": [rs[-1]["kept0"], rs[-1]["kept1"]],
            # whole runs, fixed costs included: what a user's bill is made of
            "pages_per_cpu_s": [statistics.median(pages[i] / x[f"cpu{i}"] for x in rs) for i in range(2)],
            "pages_per_wall_s": [statistics.median(pages[i] / x[f"s{i}"] for x in rs) for i in range(2)],
        }
    for side in sides[1:]:
        pairs = list(zip(runs["bare"], runs[side]))
        result[f"{side}_vs_bare"] = {
            # per-page throughput of curate / of bare (fixed costs removed): 1.0 = as fast
            "throughput_ratio": statistics.median(per_page(b) / per_page(o) for b, o in pairs),
            "throughput_ratio_rounds": [per_page(b) / per_page(o) for b, o in pairs],
            # the same from CPU seconds (user + system, whole tree): steadier under others' load
            "cpu_throughput_ratio": statistics.median(per_page(b, "cpu") / per_page(o, "cpu") for b, o in pairs),
            "cpu_throughput_ratio_rounds": [per_page(b, "cpu") / per_page(o, "cpu") for b, o in pairs],
            # = pages per CPU-second of the whole run, this side / bare (fixed costs included)
            "cpu_ratio": [statistics.median(b[f"cpu{i}"] / o[f"cpu{i}"] for b, o in pairs) for i in range(2)],
            "cpu_ratio_rounds": [[b[f"cpu{i}"] / o[f"cpu{i}"] for b, o in pairs] for i in range(2)],
            # whole runs: bare wall / curate wall at each size (fixed costs included)
            "wall_ratio": [statistics.median(b[f"s{i}"] / o[f"s{i}"] for b, o in pairs) for i in range(2)],
            "memory_ratio": [
                max(o[f"rss{i}"] for _, o in pairs) / max(b[f"rss{i}"] for b, _ in pairs) for i in range(2)
            ],
        }
    print(json.dumps(result, indent=2))
    write_json(REPO / "bench" / "out" / "e2e.json", result)


if __name__ == "__main__":
    main()

"""The card's tables, built once from manifest.json and stats.json, rendered twice: as
Markdown (the dataset card, the Prefect artifact) and with rich (`curate stats`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from curate.core import schema as S
from filters.registry import filter_stages


def stage_order() -> tuple[str, ...]:
    """The order stages drop documents in a run (curate.select, then dedup); others follow."""
    return ("ingest", "extract", "language", *filter_stages(), "quality", "urls", "decontam", "pii", "dedup")


TOP_LANGUAGES = 20
TOP_REASONS = 30


@dataclass
class Table:
    key: str
    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    note: str = ""


def num(value: int | float | None) -> str:
    return "-" if value is None else f"{value:,}" if isinstance(value, int) else f"{value:,.4g}"


def human(value: int | None) -> str:
    """1234567 -> 1.23M: the size a reader remembers."""
    if value is None:
        return "-"
    for size, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.3g}{suffix}"
    return str(value)


def pct(part: int | None, whole: int | None) -> str:
    return "-" if part is None or not whole else f"{100 * part / whole:.1f}%"


def funnel(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """[{step, dropped, added, documents}]: documents left after each step, from the runs'
    counts to the release."""
    counts = manifest.get("counts")
    mix = manifest["mix"]
    web_in = mix["available"]["web"]["documents"]
    steps: list[dict[str, Any]] = []
    if counts:
        left = counts["ingested"]
        steps.append({"step": "ingested", "dropped": 0, "added": 0, "documents": left})
        by_stage: dict[str, int] = {}
        for row in counts.get("by_reason", []):
            by_stage[row["stage"]] = by_stage.get(row["stage"], 0) + row["documents"]
        order = stage_order()
        for stage in sorted(by_stage, key=lambda s: (order.index(s) if s in order else len(order), s)):
            left -= by_stage[stage]
            steps.append({"step": stage, "dropped": by_stage[stage], "added": 0, "documents": left})
        steps.append({"step": "kept by the run(s)", "dropped": 0, "added": 0, "documents": counts["kept"]})
        if web_in != counts["kept"]:
            steps.append({"step": "web documents given to the release", "dropped": 0, "added": 0, "documents": web_in})
    else:
        steps.append({"step": "web documents in", "dropped": 0, "added": 0, "documents": web_in})
    web = mix["selected"]["web"]["documents"]
    steps.append({"step": "selected by the mix", "dropped": web_in - web, "added": 0, "documents": web})
    syn = mix["selected"]["synthetic"]["documents"]
    if mix["available"]["synthetic"]["documents"]:
        steps.append({"step": "+ synthetic", "dropped": 0, "added": syn, "documents": web + syn})
    if "rows" in mix["selected"]["web"]:  # bucket weights above 1: the rows a trainer reads
        rows = mix["selected"]["web"]["rows"] + mix["selected"]["synthetic"]["rows"]
        steps.append(
            {"step": "+ copies (bucket weights), as rows", "dropped": 0, "added": rows - web - syn, "documents": rows}
        )
    return steps


def card_tables(manifest: dict[str, Any], stats: dict[str, Any]) -> list[Table]:
    totals = manifest["totals"]
    counted = manifest.get("tokenizer") is not None
    tables = [_overview(manifest, stats), _splits(manifest)]
    steps = funnel(manifest)
    t = Table("funnel", "Funnel: documents after each stage", ["stage", "dropped", "added", "documents", "of ingested"])
    first = steps[0]["documents"]
    for s in steps:
        t.rows.append(
            [
                s["step"],
                num(s["dropped"]) if s["dropped"] else "",
                num(s["added"]) if s["added"] else "",
                num(s["documents"]),
                pct(s["documents"], first),
            ]
        )
    tables.append(t)
    counts = manifest.get("counts")
    if counts:
        t = Table("reasons", "Drop reasons", ["stage", "reason", "documents", "of ingested"])
        for row in counts.get("by_reason", [])[:TOP_REASONS]:
            t.rows.append(
                [row["stage"], row["reason"], num(row["documents"]), pct(row["documents"], counts["ingested"])]
            )
        hidden = len(counts.get("by_reason", [])) - TOP_REASONS
        t.note = f"{hidden} more reasons in manifest.json" if hidden > 0 else ""
        if not t.rows:
            t.note = "no document was dropped"
        tables.append(t)
        if counts.get("contamination"):
            tables.append(_contamination(counts["contamination"]))
    tables.append(_mix(manifest))
    t = Table(
        "languages", "Languages", ["language", "documents", "share", "tokens" if counted else "text bytes", "share"]
    )
    key = "tokens" if counted else "text_bytes"
    whole = sum(v[key] for v in stats["languages"].values())
    for lang, v in list(stats["languages"].items())[:TOP_LANGUAGES]:
        t.rows.append([lang, num(v["documents"]), pct(v["documents"], totals["rows"]), num(v[key]), pct(v[key], whole)])
    hidden = len(stats["languages"]) - TOP_LANGUAGES
    t.note = f"{hidden} more languages in stats.json" if hidden > 0 else ""
    tables.append(t)
    tables.append(_buckets(manifest, stats, key))
    tables.append(_distributions(stats))
    if stats.get("pii"):
        tables.append(_pii(stats["pii"], totals["rows"]))
    return tables


def _buckets(manifest: dict[str, Any], stats: dict[str, Any], key: str) -> Table:
    """Documents and tokens per quality bucket; with repeats (bucket weights above 1) also the
    distinct documents, rows and tokens counting every copy."""
    rows_total = manifest["totals"]["rows"]
    buckets = stats.get("quality_buckets", {})
    weights = manifest["mix"].get("bucket_weights") or {}
    repeats = any("distinct_documents" in v for v in buckets.values())
    label = "tokens" if key == "tokens" else "text bytes"
    head = ["bucket", "weight"] if weights else ["bucket"]
    if repeats:
        head += ["distinct documents", "rows (with copies)", "share", f"{label} (with copies)", "share"]
    else:
        head += ["documents", "share", label, "share"]
    t = Table("quality_buckets", "Quality buckets", head)
    whole = sum(v[key] for v in buckets.values())
    for name, v in buckets.items():
        row = [name, _weight(weights, name)] if weights else [name]
        row += [num(v["distinct_documents"])] if repeats else []
        t.rows.append(row + [num(v["documents"]), pct(v["documents"], rows_total), num(v[key]), pct(v[key], whole)])
    t.note = "" if buckets else "no quality scores (quality.enabled is off)"
    if repeats:
        t.note = (
            "release.mix.bucket_weights above 1 repeat a bucket's documents (the `copy` column numbers them, 0 the "
            "first); validation holds each document once, and none of its documents has a copy in train"
        )
    return t


def _weight(weights: dict[str, float], bucket: str) -> str:
    """A bucket's weight as configured (unlisted buckets and unscored documents: 1)."""
    return f"{weights.get(bucket, 1.0):g}"


def _pii(pii: dict[str, Any], rows: int) -> Table:
    t = Table(
        "pii", "PII found in the released documents", ["kind", "placeholder", "found", "documents", "of documents"]
    )
    for kind, v in pii["kinds"].items():
        t.rows.append([kind, f"`<{kind.upper()}>`", num(v["found"]), num(v["documents"]), pct(v["documents"], rows)])
    t.rows.append(
        [
            "any",
            "",
            num(sum(v["found"] for v in pii["kinds"].values())),
            num(pii["documents"]),
            pct(pii["documents"], rows),
        ]
    )
    t.note = (
        f"{num(pii['scanned'])} of {num(rows)} documents scanned (column `pii`); with pii.mode redact, the default, "
        "each find was "
        "replaced by its placeholder in the text, with pii.mode annotate the text still holds it"
    )
    if not pii["scanned"]:
        t.note = "no document was scanned for PII (pii.enabled was false)"
    return t


def _contamination(c: dict[str, Any]) -> Table:
    t = Table(
        "contamination",
        "Benchmark contamination",
        ["benchmark", "split", "licence", "items", "indexed n-grams", "web documents dropped", "generated dropped"],
    )
    for b in c["benchmarks"]:
        t.rows.append(
            [b["name"], b["split"], b["licence"], num(b["items"]), num(b["ngrams"]), num(b["web"]), num(b["generated"])]
        )
    missing = "; ".join(f"{k}: {v}" for k, v in c.get("unavailable", {}).items())
    t.note = (
        f"index `{c['index']}`, {c['ngram']}-word n-grams; a document is dropped when its longest matched span reaches "
        f"{c['min_span_words']} words or it holds {c['min_item_share']:.0%} of one item's n-grams"
        + (f". Not indexed: {missing}" if missing else "")
    )
    return t


def _overview(manifest: dict[str, Any], stats: dict[str, Any]) -> Table:
    totals = manifest["totals"]
    tok = manifest.get("tokenizer")
    syn = stats["sources"]["synthetic"]
    t = Table("overview", f"Release {manifest['name']} {manifest['version']}", ["", "value"])
    distinct = totals.get("distinct_documents")  # bucket weights above 1: rows repeat documents
    t.rows += [
        ["documents", num(totals["rows"])]
        if distinct is None
        else ["rows", f"{num(totals['rows'])} ({num(distinct)} distinct documents, repeated by quality bucket weight)"],
        ["tokens", f"{num(totals['tokens'])} ({human(totals['tokens'])})" if tok else "not counted"],
        ["tokenizer", f"{tok['name']} (vocab {tok['vocab_size']:,}; special tokens not counted)" if tok else "-"],
        ["text", f"{num(sum(s['text_bytes'] for s in stats['splits'].values()))} bytes of UTF-8"],
        [
            "shards",
            f"{totals['shards']} ({human(totals['bytes'])}B on disk, {manifest['release_config']['compression']})",
        ],
        [
            "synthetic share",
            f"{pct(syn['documents'], totals['rows'])} of documents, {pct(syn['tokens'], totals['tokens'])} of tokens"
            if tok
            else f"{pct(syn['documents'], totals['rows'])} of documents",
        ],
        ["created", manifest["created_at"]],
        ["config hash", manifest["config_hash"][:16]],
    ]
    return t


def _splits(manifest: dict[str, Any]) -> Table:
    t = Table("splits", "Splits", ["split", "shards", "documents", "tokens", "bytes"])
    for split, v in manifest["splits"].items():
        t.rows.append([split, num(v["shards"]), num(v["rows"]), num(v["tokens"]), num(v["bytes"])])
    return t


def _mix(manifest: dict[str, Any]) -> Table:
    mix = manifest["mix"]
    unit = mix["unit"]
    repeats = "rows" in mix["selected"]["web"]  # bucket weights above 1: rows and tokens count the copies
    head = ["source", "documents available", "documents selected", "tokens available", "tokens selected"]
    if repeats:
        head[2:] = ["documents selected", "rows (with copies)", "tokens available", "tokens selected (with copies)"]
    t = Table("mix", "Mix: available and selected", head)
    for source in ("web", "synthetic"):
        a, s = mix["available"][source], mix["selected"][source]
        copies = [num(s["rows"])] if repeats else []
        t.rows.append([source, num(a["documents"]), num(s["documents"]), *copies, num(a["tokens"]), num(s["tokens"])])
    rule = (
        "everything"
        if mix["synthetic_fraction"] is None and not mix["budget"]
        else (
            f"synthetic share {mix['synthetic_fraction']}" if mix["synthetic_fraction"] is not None else "natural share"
        )
    )
    budget = f", budget {num(mix['budget'])} {unit}" if mix["budget"] else ""
    weights = mix.get("bucket_weights") or {}
    if weights:
        shown = ", ".join(f"{b}: {w:g}" for b, w in sorted(weights.items(), key=lambda kv: -int(kv[0])))
        budget += f"; quality bucket weights {{{shown}}} (others 1)"
        if "validation_copies_dropped" in mix:
            budget += f", {num(mix['validation_copies_dropped'])} copies of validation documents left out"
    t.note = f"{rule}{budget}; shuffled with seed {mix['seed']}; {num(mix['validation_documents'])} documents held out for validation"  # noqa: E501
    return t


def _distributions(stats: dict[str, Any]) -> Table:
    labels = {
        "tokens": "tokens per document",
        "text_bytes": "bytes per document",
        S.LANG_SCORE: "language-ID confidence",
    }
    cols = ["measure", "mean"] + [f"p{p}" for p in ("1", "10", "50", "90", "99")]
    t = Table("distributions", "Length and quality distributions", cols)
    for group in ("lengths", "scores"):
        for key, d in stats[group].items():
            if not d["count"]:
                continue
            t.rows.append(
                [labels.get(key, key), num(round(d["mean"], 3))]
                + [num(round(d["percentiles"][p], 3)) for p in ("1", "10", "50", "90", "99")]
            )
    if stats["sample_rows"] < stats["documents"]:
        t.note = f"from a uniform sample of {num(stats['sample_rows'])} of {num(stats['documents'])} documents (the first rows of the shuffled release)"  # noqa: E501
    return t


def numeric_columns(table: Table) -> list[bool]:
    """Columns whose every cell is a number, a percentage or empty: right-aligned."""

    def is_number(cell: str) -> bool:
        return cell.replace(",", "").replace(".", "").replace("%", "").replace("-", "").replace(
            "+", ""
        ).strip().isdigit() or cell in ("", "-")

    return [i > 0 and all(is_number(row[i]) for row in table.rows) for i in range(len(table.columns))]


def markdown_table(table: Table) -> str:
    align = numeric_columns(table)
    lines = [
        "| " + " | ".join(table.columns) + " |",
        "|" + "|".join("---:" if right else "---" for right in align) + "|",
    ]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in table.rows]
    if table.note:
        lines += ["", f"_{table.note}_"]
    return "\n".join(lines)

"""The dataset card: README.md of a release. Hugging Face front matter (so `load_dataset` on
the folder, or on the Hub after an upload, finds the splits), then what went in, the funnel,
drop reasons, mix, languages, distributions with their plots, how to load it, provenance."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from curate.core.errors import InputError
from curate.release.plots import PLOTS
from curate.release.tables import card_tables, human, markdown_table, num

MAX_LISTED_PARTS = 20
# Who made the quality columns, in one paragraph; the model JSON holds the figures (each scorer's
# sha256, training sources and sizes, the regression, its held-out metrics).
QUALITY_SCORERS = (
    "Scorers: `quality_edu`, P(educational) from a fastText classifier (curate/models/quality-edu.card.json: its "
    "training sources and sizes); `quality_general`, P(good text) from a second fastText trained the DCLM way "
    "(reference text and pages read as good against whole crawl pages); `quality_score`, a logistic regression over "
    "both and structure signals, fitted on real crawl pages of sites no scorer trained on. Labels: by source, or by "
    "LLM agents reading pages against a written rubric, not by humans (`labels` and `scorers` in "
    "curate/models/quality-combined.json)."
)


def load_release(release_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(manifest, stats) of a release folder."""
    release_dir = Path(release_dir)
    out = []
    for name in ("manifest.json", "stats.json"):
        path = release_dir / name
        if not path.is_file():
            raise InputError(
                f"{path} not found: {release_dir} is not a release. Fix: pass a release folder, "
                "OUTPUT/releases/NAME/VERSION"
            )
        try:
            out.append(json.loads(path.read_text(encoding="utf-8")))
        except ValueError as exc:
            raise InputError(
                f"{path} is not valid JSON ({exc}). Fix: rebuild the release with `curate release`"
            ) from None
    return out[0], out[1]


def card_markdown(release_dir: Path, location: Path | None = None) -> str:
    """The card without its front matter: what a Prefect markdown artifact shows."""
    release_dir = Path(release_dir)
    manifest, stats = load_release(release_dir)
    return _body(manifest, stats, release_dir, location or release_dir)


def write_card(release_dir: Path, location: Path | None = None) -> Path:
    """README.md with front matter. location: where the release will live (the card's load
    snippets use it), when written in a staging folder."""
    release_dir = Path(release_dir)
    manifest, stats = load_release(release_dir)
    path = release_dir / "README.md"
    path.write_text(
        _front_matter(manifest) + _body(manifest, stats, release_dir, location or release_dir), encoding="utf-8"
    )
    return path


def _front_matter(manifest: dict[str, Any]) -> str:
    lines = ["---", "configs:", "- config_name: default", "  data_files:"]
    for split in manifest["splits"]:
        lines += [f"  - split: {split}", f"    path: data/{split}-*.parquet"]
    return "\n".join(lines + ["---", ""]) + "\n"


def _body(manifest: dict[str, Any], stats: dict[str, Any], release_dir: Path, location: Path) -> str:
    tables = {t.key: t for t in card_tables(manifest, stats)}
    totals = manifest["totals"]
    tok = manifest.get("tokenizer")
    out = [f"# {manifest['name']} {manifest['version']}", ""]
    rows = (
        f"{num(totals['rows'])} documents"
        if "distinct_documents" not in totals
        else f"{num(totals['rows'])} rows ({num(totals['distinct_documents'])} distinct documents)"
    )
    size = rows + (f", {human(totals['tokens'])} tokens ({tok['name']})" if tok else "")
    out += [
        f"A curate dataset release: {size} in {totals['shards']} Parquet shard(s), built {manifest['created_at']}.",
        "",
    ]
    out += [markdown_table(tables["overview"]), "", "## Splits", "", markdown_table(tables["splits"]), ""]
    out += ["## What went in", "", *_inputs(manifest), ""]
    out += [
        "## Funnel",
        "",
        "Documents left after each stage of the run(s) that made the inputs, then the release's mix.",
        "",
    ]
    out += [markdown_table(tables["funnel"]), "", *_image(release_dir, "funnel"), ""]
    if "reasons" in tables:
        out += [
            "## Drop reasons",
            "",
            "Every dropped document has a row in the run's ledger (`rejected/`) saying why.",
            "",
            markdown_table(tables["reasons"]),
            "",
        ]
    if "contamination" in tables:
        t = tables["contamination"]
        out += [
            "## Benchmark contamination",
            "",
            "Documents that reproduce an evaluation item (curate's decontam stage and generation checks), per "
            "benchmark.",
            "",
            markdown_table(t),
            "",
        ]
    out += ["## Mix", "", markdown_table(tables["mix"]), ""]
    out += ["## Languages", "", markdown_table(tables["languages"]), "", *_image(release_dir, "languages"), ""]
    if "quality_buckets" in tables:
        out += [
            "## Quality buckets",
            "",
            "quality_bucket: the combined quality score cut into 20 buckets, 19 the best "
            "(curate/models/quality-combined.json).",
            "",
            QUALITY_SCORERS,
            "",
            markdown_table(tables["quality_buckets"]),
            "",
        ]
    out += [
        "## Length and quality",
        "",
        markdown_table(tables["distributions"]),
        "",
        *_image(release_dir, "length"),
        *_image(release_dir, "quality"),
        "",
    ]
    if "pii" in tables:
        out += ["## PII", "", markdown_table(tables["pii"]), ""]
    out += ["## How to load it", "", *_snippets(manifest, location), ""]
    if manifest.get("tokenized"):
        from curate.release.card_trainers import trainer_section

        out += ["## Training with Megatron-LM, NeMo or nanotron", "", *trainer_section(manifest, location), ""]
    out += ["## Files and checks", "", *_files(manifest), ""]
    return "\n".join(out)


def _inputs(manifest: dict[str, Any]) -> list[str]:
    lines = []
    for run in manifest["inputs"]["runs"]:
        lines.append(
            f"- run `{run['name']}` from `{run['dir']}` (config {str(run['config_hash'])[:12]}, {run['created_at']})"
        )
    parts = manifest["inputs"]["parts"]
    web = [p for p in parts if not p["synthetic"]]
    syn = [p for p in parts if p["synthetic"]]
    for label, group in (("web (curated)", web), ("synthetic", syn)):
        if not group:
            lines.append(f"- {label}: none")
            continue
        rows = sum(p["rows"] for p in group)
        # A run with generation keeps its synthetic documents in the same shards as web ones.
        flagged = sum(p.get("synthetic_rows", 0) for p in group) if not group[0]["synthetic"] else 0
        note = f" ({num(flagged)} of them synthetic, generated in the run)" if flagged else ""
        lines.append(
            f"- {label}: {len(group)} part(s), {num(rows)} documents{note}, {human(sum(p['bytes'] for p in group))}B"
        )
        for p in group[:MAX_LISTED_PARTS]:
            lines.append(f"  - `{p['path']}`: {num(p['rows'])} rows")
        if len(group) > MAX_LISTED_PARTS:
            lines.append(f"  - ... and {len(group) - MAX_LISTED_PARTS} more (manifest.json lists every part)")
    return lines


def _image(release_dir: Path, key: str) -> list[str]:
    name, alt = PLOTS[key]
    return [f"![{alt}]({name})", ""] if (release_dir / name).is_file() else []


def _snippets(manifest: dict[str, Any], location: Path) -> list[str]:
    where = str(location)
    splits = list(manifest["splits"])
    files = ", ".join(f'"{s}": f"{{RELEASE}}/data/{s}-*.parquet"' for s in splits)
    return [
        "```python",
        f'RELEASE = "{where}"',
        "",
        "# pyarrow: a lazy dataset over the train shards",
        "import glob",
        "import pyarrow.dataset as ds",
        'train = ds.dataset(sorted(glob.glob(f"{RELEASE}/data/train-*.parquet")), format="parquet")',
        'print(train.count_rows())  # or: for batch in train.to_batches(columns=["text"]): ...',
        "",
        "# polars: lazy, reads only the columns a query needs",
        "import polars as pl",
        'train = pl.scan_parquet(f"{RELEASE}/data/train-*.parquet")',
        'print(train.select(pl.len(), pl.col("num_tokens").sum()).collect())',
        "",
        "# Hugging Face datasets (local files work offline; streaming reads row group by row group)",
        "from datasets import load_dataset",
        f'dataset = load_dataset("parquet", data_files={{{files}}})',
        f'stream = load_dataset("parquet", data_files={{{files}}}, split="train", streaming=True)',
        "```",
        "",
        f"Splits: {', '.join(splits)}. Rows are already shuffled (seed {manifest['mix']['seed']}); `num_tokens` counts"
        " tokens without special tokens (add one per document if your loader appends EOS)."
        + (
            " Documents of repeated quality buckets appear once per copy, with the same `id`; `copy` numbers them"
            " (0 the first), so `copy == 0` selects each document once."
            if any(f["name"] == "copy" for f in manifest["schema"])
            else ""
        ),
    ]


def _files(manifest: dict[str, Any]) -> list[str]:
    lines = [
        "- `data/`: the shards; `manifest.json`: every shard's rows, tokens, bytes and sha256, totals, inputs, config "
        "hash and versions;"
        " `stats.json`: the numbers behind this card.",
        "- `curate verify <this folder>` re-checks every checksum, the schema, row and token totals and that ids are "
        + ("unique" if not any(f["name"] == "copy" for f in manifest["schema"]) else "unique per copy")
        + (
            " (and every tokenized file: checksums, sizes against its index, sequences and tokens against its Parquet "
            "shard)."
            if manifest.get("tokenized")
            else "."
        ),
        "",
        "| column | type | nullable |",
        "|---|---|---|",
    ]
    lines += [f"| `{f['name']}` | {f['type']} | {'yes' if f['nullable'] else 'no'} |" for f in manifest["schema"]]
    versions = ", ".join(f"{k} {v}" for k, v in manifest["versions"].items() if v != "not installed")
    tok = manifest.get("tokenizer")
    lines += ["", f"Made with {versions}."]
    if tok:
        lines.append(f"Tokenizer: {tok['name']}, `tokenizer.json` sha256 {tok['sha256'][:16]}.")
    lines.append(f"Config hash: `{manifest['config_hash']}`.")
    return lines

"""The decontamination index: 64-bit hashes of the n-grams of evaluation items, never their
text, in one `.npz` file (numpy arrays, loaded without pickle):

    hashes      uint64, sorted, unique    every indexed n-gram
    item        uint16/32, same length    the (global) item each n-gram came from
    item_ngrams uint32, one per item      distinct indexed n-grams of that item (for its share)
    item_bench  uint16, one per item      its benchmark (index into meta.benchmarks)
    meta        uint8, JSON bytes         format, n, normalisation, per benchmark: name, split,
                                          source, licence, items, ngrams; stoplist size

Memory is the index (11-13 bytes per n-gram), never the corpus. `build_index` makes one from
benchmark records; `load_index` checks every array and names the file and the fix when
anything is missing or corrupt."""

from __future__ import annotations

import csv
import gzip
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from curate.core.errors import InputError
from curate.hygiene.ngrams import NORM, ngram_hashes, word_hashes, words

FORMAT = "curate-decontam-index/1"
DEFAULT_INDEX = Path(__file__).resolve().parent.parent / "data" / "decontam" / "default-index.npz"
ARRAYS = ("hashes", "item", "item_ngrams", "item_bench", "meta")
REBUILD_FIX = "rebuild it with `curate decontam build-index --input FILES... --output PATH` (the default index: `python scripts/build_decontam_index.py`)"  # noqa: E501


@dataclass
class DecontamIndex:
    path: str
    ngram: int
    hashes: np.ndarray
    item: np.ndarray
    item_ngrams: np.ndarray
    item_bench: np.ndarray
    benchmarks: list[dict[str, Any]]
    meta: dict[str, Any]

    @property
    def names(self) -> list[str]:
        return [b["name"] for b in self.benchmarks]


# ------------------------------------------------------------------------------ reading


def _fail(path: Path | str, what: str) -> InputError:
    return InputError(
        f"decontamination index {path} {what}. Fix: {REBUILD_FIX}, or set decontam.index to a valid index "
        "(decontam.enabled: false switches the check off)"
    )


def load_index(path: str | Path) -> DecontamIndex:
    path = Path(path)
    if not path.is_file():
        raise _fail(path, "not found")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [a for a in ARRAYS if a not in z.files]
            if missing:
                raise _fail(path, f"is corrupt: arrays {missing} are missing")
            arrays = {a: z[a] for a in ARRAYS}
        meta = json.loads(arrays["meta"].tobytes().decode("utf-8"))
    except InputError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, UnicodeDecodeError) as exc:
        raise _fail(path, f"is corrupt or not an index ({type(exc).__name__}: {str(exc)[:120]})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise _fail(path, f"is not a {FORMAT} file (format {meta.get('format') if isinstance(meta, dict) else None!r})")
    h, item, item_ngrams, item_bench = arrays["hashes"], arrays["item"], arrays["item_ngrams"], arrays["item_bench"]
    benchmarks = meta.get("benchmarks", [])
    ok = (
        h.dtype == np.uint64
        and item.dtype in (np.uint16, np.uint32)
        and item_ngrams.dtype == np.uint32
        and item_bench.dtype == np.uint16
        and len(h) == len(item)
        and len(item_ngrams) == len(item_bench)
        and (len(item) == 0 or int(item.max()) < len(item_ngrams))
        and (len(item_bench) == 0 or int(item_bench.max()) < len(benchmarks))
        and (len(h) < 2 or bool(np.all(h[1:] > h[:-1])))
        and isinstance(meta.get("ngram"), int)
    )
    if not ok:
        raise _fail(path, "is corrupt: its arrays do not agree (types, lengths or order)")
    return DecontamIndex(str(path), int(meta["ngram"]), h, item, item_ngrams, item_bench, benchmarks, meta)


# ------------------------------------------------------------------------------ building


@dataclass
class Benchmark:
    """One evaluation set: its items' texts and where they came from."""

    name: str
    texts: list[str]
    split: str = ""
    source: str = ""
    licence: str = ""


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """Records of a local benchmark file: JSONL/JSON lines (.gz), Parquet, or CSV (header row)."""
    name = path.name.lower()
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq

        yield from pq.read_table(path).to_pylist()
        return
    opener = gzip.open if name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", newline="") as f:  # type: ignore[operator]
        if name.removesuffix(".gz").endswith(".csv"):
            yield from csv.DictReader(f)
            return
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except ValueError:
                    raise InputError(
                        f"{path}:{n} is not a JSON line. Fix: give JSONL (one JSON object per line), Parquet or CSV "
                        "benchmark files"
                    ) from None


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)


def record_text(record: dict[str, Any], fields: list[str] | None) -> str:
    """An item's text: the named fields joined; else `text` if present; else every string
    value of the record (lists and nested objects included), in key order."""
    if fields:
        return "\n".join(s for f in fields for s in _strings(record.get(f)))
    if isinstance(record.get("text"), str):
        return record["text"]
    return "\n".join(_strings(record))


def build_index(
    benchmarks: Iterable[Benchmark], ngram: int, stop_items: int
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Arrays and meta of an index. An n-gram found in `stop_items` or more distinct items (over
    all benchmarks) is a template or stock phrase ("which of the following is true"), not an
    item: it is left out (the stoplist), so it can never flag a document."""
    per_item: list[np.ndarray] = []
    item_bench: list[int] = []
    metas: list[dict[str, Any]] = []
    for b_index, b in enumerate(benchmarks):
        count = 0
        for text in b.texts:
            h = np.unique(ngram_hashes(word_hashes(words(text)), ngram))
            if len(h) == 0:
                continue  # shorter than n words: no n-gram can match it
            per_item.append(h)
            item_bench.append(b_index)
            count += 1
        metas.append(
            {
                "name": b.name,
                "split": b.split,
                "source": b.source,
                "licence": b.licence,
                "items": len(b.texts),
                "indexed_items": count,
            }
        )
    if len(metas) > np.iinfo(np.uint16).max:
        raise InputError("more than 65,535 benchmarks in one index. Fix: build several indexes")
    all_h = np.concatenate(per_item) if per_item else np.empty(0, np.uint64)
    all_i = (
        np.concatenate([np.full(len(h), i, np.uint32) for i, h in enumerate(per_item)])
        if per_item
        else np.empty(0, np.uint32)
    )
    order = np.argsort(all_h, kind="stable")
    all_h, all_i = all_h[order], all_i[order]
    uniq, first, counts = np.unique(all_h, return_index=True, return_counts=True)
    keep = counts < stop_items
    hashes, item = uniq[keep], all_i[first[keep]]
    if len(per_item) <= np.iinfo(np.uint16).max:
        item = item.astype(np.uint16)  # 2 bytes per n-gram instead of 4 while items fit
    item_ngrams = np.bincount(item, minlength=len(per_item)).astype(np.uint32)
    ibench = np.asarray(item_bench, np.uint16)
    for b_index, m in enumerate(metas):
        m["ngrams"] = int(item_ngrams[ibench == b_index].sum())
    meta = {
        "format": FORMAT,
        "ngram": ngram,
        "normalisation": f"datatrove simplify_text {NORM}, split on whitespace; n-gram hash: polynomial over xxh3_64 word hashes",  # noqa: E501
        "stop_items": stop_items,
        "stoplisted_ngrams": int((~keep).sum()),
        "benchmarks": metas,
    }
    return {"hashes": hashes, "item": item, "item_ngrams": item_ngrams, "item_bench": ibench}, meta


def save_index(arrays: dict[str, np.ndarray], meta: dict[str, Any], output: Path) -> Path:
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.tmp")
    with open(tmp, "wb") as f:  # np.savez on a path would append .npz to the temp name
        np.savez_compressed(f, **arrays, meta=np.frombuffer(json.dumps(meta, sort_keys=True).encode(), dtype=np.uint8))
    tmp.replace(output)
    return output


def sources_markdown(meta: dict[str, Any]) -> str:
    """The table shipped beside the index (and summed up in release cards)."""
    lines = [
        f"# Decontamination index sources ({meta['ngram']}-word n-grams)",
        "",
        "Hashes only: no benchmark text is stored. n-grams in "
        f"{meta['stop_items']}+ distinct items (templates, stock phrases) are left out: {meta['stoplisted_ngrams']:,} "
        "of them.",
        "",
        "| benchmark | split | items | indexed items | n-grams | licence | source |",
        "|---|---|---|---|---|---|---|",
    ]
    for b in meta["benchmarks"]:
        lines.append(
            f"| {b['name']} | {b['split']} | {b['items']:,} | {b['indexed_items']:,} | {b['ngrams']:,} | "
            f"{b['licence']} | {b['source']} |"
        )
    return "\n".join(lines) + "\n"


def index_summary(idx: DecontamIndex) -> str:
    buf = io.StringIO()
    buf.write(
        f"{idx.path}: {len(idx.hashes):,} n-grams of {idx.ngram} words, {len(idx.item_ngrams):,} items, "
        f"{len(idx.benchmarks)} benchmarks\n"
    )
    for b in idx.benchmarks:
        buf.write(f"  {b['name']:<12} {b.get('split', ''):<24} items {b['items']:>6,}  n-grams {b['ngrams']:>9,}\n")
    return buf.getvalue()

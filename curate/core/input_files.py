"""Which files a run reads: formats by file name, folders, globs and fsspec URLs expanded
into a sorted list of input files, with the files inside folders left out (and why), and the
tag that scopes a file's ids (curate.core.ids) and names records that carry no id."""

from __future__ import annotations

import hashlib

import fsspec

from curate.core.errors import InputError
from curate.core.input_retry import DEFAULT_RETRY, RetryPolicy, with_retries

FORMATS = ("warc", "jsonl", "parquet")
_SUFFIXES = {
    "warc": (".warc", ".warc.gz", ".wet", ".wet.gz", ".warc.wet", ".warc.wet.gz", ".arc.gz"),
    "jsonl": (".jsonl", ".jsonl.gz", ".jsonl.zst", ".json", ".json.gz", ".json.zst", ".ndjson", ".ndjson.gz"),
    "parquet": (".parquet", ".pq"),
}


def detect_format(path: str, declared: str = "auto") -> str | None:
    if declared != "auto":
        return declared
    name = path.lower().rstrip("/")
    for fmt, suffixes in _SUFFIXES.items():
        if name.endswith(suffixes):
            return fmt
    return None


def resolve_inputs(paths: list[str], declared_format: str = "auto", retry: RetryPolicy = DEFAULT_RETRY) -> list[str]:
    return find_inputs(paths, declared_format, retry)[0]


def find_inputs(
    paths: list[str], declared_format: str = "auto", retry: RetryPolicy = DEFAULT_RETRY
) -> tuple[list[str], list[dict[str, str]]]:
    """Expand folders and globs into a sorted list of input files, and the files inside the
    folders that were left out, each with why ({"path", "reason"}: the manifest and summary
    list them). A path that matches nothing is an error naming it, raised before any work."""
    if not paths:
        raise InputError("no input given. Fix: set input.paths in the config or pass --input PATH")
    files: list[str] = []
    skipped: list[dict[str, str]] = []
    for raw in paths:
        found, left_out = with_retries(lambda: _expand(raw, declared_format), retry, raw)
        skipped.extend(left_out)
        if not found:
            raise InputError(
                f"input path not found or empty: {raw}. Fix: check the path, or pass --input with an existing file, "
                "folder or glob"
            )
        files.extend(found)
    unknown = [f for f in files if detect_format(f, declared_format) is None]
    if unknown:
        raise InputError(
            f"cannot tell the format of {unknown[0]}. Fix: name files .warc(.gz), .wet(.gz), .jsonl(.gz/.zst) "
            "or .parquet, or set input.format"
        )
    kept = set(files)
    return sorted(kept), sorted(
        {s["path"]: s for s in skipped if s["path"] not in kept}.values(), key=lambda s: s["path"]
    )


# Why a file inside an input folder is not read. Names starting with "." or "_" are the
# marks of hidden, temporary and bookkeeping files (.DS_Store, .part-0.crc, _SUCCESS,
# _delta_log/...): Spark, Hadoop and datatrove skip them too. Named on the command line, such
# a file is read.
SKIP_HIDDEN = "its name, or a folder's below the input folder, starts with '.' (a hidden or temporary file)"
SKIP_UNDERSCORE = "its name, or a folder's below the input folder, starts with '_' (bookkeeping such as _SUCCESS, _delta_log/, _temporary/)"  # noqa: E501
SKIP_FORMAT = "not a format curate reads, by its name; set input.format to read it"


def _expand(raw: str, declared_format: str) -> tuple[list[str], list[dict[str, str]]]:
    fs, _, expanded = fsspec.get_fs_token_paths(raw)
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    prefix = "" if protocol in ("file", "local") else f"{protocol}://"

    def full(path: str) -> str:
        return prefix + path if prefix and not path.startswith(prefix) else path

    found: list[str] = []
    skipped: list[dict[str, str]] = []
    for path in expanded:
        if fs.isdir(path):
            for child in sorted(fs.find(path)):
                why = _skip_reason(child, declared_format, root=path)
                if why is None:
                    found.append(full(child))
                else:
                    skipped.append({"path": full(child), "reason": why})
        elif fs.exists(path):
            found.append(full(path))
    return found, skipped


def _skip_reason(path: str, declared_format: str, root: str = "") -> str | None:
    # Every folder below the input root counts too: `_delta_log/`, Spark's `_temporary/`
    # attempt folders (partial or duplicate output) and `.git/` are not data.
    below = (
        path.rstrip("/")[len(root.rstrip("/")) :]
        if root and path.startswith(root.rstrip("/"))
        else path.rstrip("/").split("/")[-1]
    )
    parts = [p for p in below.split("/") if p]
    if any(p.startswith(".") for p in parts):
        return SKIP_HIDDEN
    if any(p.startswith("_") for p in parts):
        return SKIP_UNDERSCORE
    if detect_format(path, declared_format) is None:
        return SKIP_FORMAT
    return None


def source_tag(path: str) -> str:
    """A short stable prefix for ids of records that carry none: the file's name plus a hash of
    its full path, so two `part-0.jsonl` in different folders never collide."""
    name = path.rstrip("/").split("/")[-1]
    for suffix in (".gz", ".zst", ".jsonl", ".json", ".ndjson", ".parquet", ".warc", ".wet"):
        name = name.removesuffix(suffix)
    return f"{name}-{hashlib.sha1(path.encode()).hexdigest()[:8]}"

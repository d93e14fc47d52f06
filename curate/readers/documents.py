"""What every reader yields: a Document with the metadata keys of curate.core.schema, or a rejected
one (empty text, `ingest_reject` says why) that the ledger accounts for."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from datatrove.data import Document

from curate.core.input_retry import DEFAULT_RETRY, RetryPolicy
from curate.core.schema import META_CONTENT, META_DATE, META_OFFSET, META_REJECT, META_SOURCE, META_URL


@dataclass
class Limits:
    max_record_bytes: int
    retry: RetryPolicy = DEFAULT_RETRY  # transient read errors: see curate.core.input_retry


def rejected(
    tag: str, source: str, offset: int, reason: str, detail: str, url: str | None = None, id_: str | None = None
) -> Document:
    doc_id = id_ or (f"{tag}/{offset}" if offset >= 0 else f"{tag}/file")
    return Document(
        text="",
        id=doc_id,
        metadata={META_SOURCE: source, META_OFFSET: offset, META_URL: url, META_REJECT: (reason, detail[:500])},
    )


def document(
    text: str,
    id_: str,
    source: str,
    offset: int,
    url: str | None,
    date: str | None,
    extra: dict[str, Any],
    content_type: str = "text",
) -> Document:
    meta: dict[str, Any] = {
        META_SOURCE: source,
        META_OFFSET: offset,
        META_URL: url,
        META_DATE: date,
        META_CONTENT: content_type,
    }
    if extra:
        meta["extra"] = extra
    if "\x00" in text:
        # NUL bytes break C-string consumers downstream (tokenizers, some viewers); they carry
        # no meaning in text, so they are removed rather than the whole record dropped.
        text = text.replace("\x00", "")
    return Document(text=text, id=id_, metadata=meta)


def from_mapping(record: Any, path: str, tag: str, offset: int, text_key: str, id_key: str) -> Document:
    if not isinstance(record, dict):
        return rejected(tag, path, offset, "malformed_record", f"expected a JSON object, got {type(record).__name__}")
    raw_id = record.pop(id_key, None)
    id_ = str(raw_id) if isinstance(raw_id, (str, int)) and str(raw_id) else f"{tag}/{offset}"
    url = record.pop("url", None)
    url = url if isinstance(url, str) else None
    if record.get(text_key) is None:
        detail = (
            f"'{text_key}' is null" if text_key in record else f"no '{text_key}' field; keys: {sorted(record)[:10]}"
        )
        return rejected(tag, path, offset, "missing_text", detail, url, id_)
    text = record.pop(text_key)
    if not isinstance(text, str):
        return rejected(
            tag, path, offset, "wrong_type", f"'{text_key}' is {type(text).__name__}, expected a string", url, id_
        )
    if not text.strip():
        return rejected(tag, path, offset, "empty_text", "text is empty or whitespace", url, id_)
    date = record.pop("date", None)
    extra = _jsonable(record)
    return document(text, id_, path, offset, url, date if isinstance(date, str) else None, extra)


def _jsonable(record: dict[str, Any]) -> dict[str, Any]:
    try:
        json.dumps(record, default=str)
        return record
    except (TypeError, ValueError):
        return {k: str(v) for k, v in record.items()}

"""The schema of release shards: DOCUMENT_SCHEMA, which declares `num_tokens` and
`synthetic` (null until a release counts tokens / on web documents), plus `copy` in a release
that repeats documents."""

from __future__ import annotations

import pyarrow as pa

from curate.core import schema as S

NUM_TOKENS = S.NUM_TOKENS
SYNTHETIC = S.SYNTHETIC


COPY = S.COPY


def release_schema(repeats: bool = False) -> pa.Schema:
    # num_tokens and synthetic are columns of DOCUMENT_SCHEMA itself: one schema everywhere;
    # `copy` only when the mix repeats documents.
    return S.release_document_schema(repeats)


def schema_json(schema: pa.Schema) -> list[dict[str, object]]:
    return [{"name": f.name, "type": str(f.type), "nullable": f.nullable} for f in schema]


def score_columns(schema: pa.Schema) -> list[str]:
    """Float columns the card shows as distributions: lang_score and any quality score."""
    return [f.name for f in schema if pa.types.is_floating(f.type)]

"""The schema of release shards: DOCUMENT_SCHEMA plus `num_tokens` and `synthetic`, unless
curate.schema already declares them (then its declaration wins, so there is one schema)."""

from __future__ import annotations

import pyarrow as pa

from curate import schema as S

NUM_TOKENS = "num_tokens"
SYNTHETIC = "synthetic"
# The exact fields to add to DOCUMENT_SCHEMA. Nullable: a run's shards have no counts yet
# (null) until a release counts them with the target tokenizer; int32 holds 2e9 tokens, and
# input.max_record_bytes caps a document at 5 MB (< 5M tokens).
NUM_TOKENS_FIELD = pa.field(NUM_TOKENS, pa.int32())
SYNTHETIC_FIELD = pa.field(SYNTHETIC, pa.bool_())


def release_schema() -> pa.Schema:
    schema = S.DOCUMENT_SCHEMA
    for extra in (NUM_TOKENS_FIELD, SYNTHETIC_FIELD):
        if extra.name not in schema.names:
            schema = schema.append(extra)
    return schema


def schema_json(schema: pa.Schema) -> list[dict[str, object]]:
    return [{"name": f.name, "type": str(f.type), "nullable": f.nullable} for f in schema]


def score_columns(schema: pa.Schema) -> list[str]:
    """Float columns the card shows as distributions: lang_score and any quality score."""
    return [f.name for f in schema if pa.types.is_floating(f.type)]

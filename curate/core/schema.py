"""The one Arrow schema of a document row, and of a ledger row. Declared once, used by every
writer; a shard that does not match is a bug, not a variant."""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

# Column names, so no module spells them twice.
ID = "id"
TEXT = "text"
SOURCE = "source"
OFFSET = "offset"
URL = "url"
DATE = "date"
LANG = "lang"
LANG_SCORE = "lang_score"
METADATA = "metadata"
QUALITY_SCORE = "quality_score"
# The scorers behind quality_score, each a column (curate.quality.combined).
QUALITY_EDU, QUALITY_GENERAL, QUALITY_BUCKET = "quality_edu", "quality_general", "quality_bucket"
# Provenance of synthetic documents (null on web documents).
SYNTHETIC, GEN_MODEL, GEN_TEMPLATE, GEN_TEMPLATE_VERSION = (
    "synthetic",
    "gen_model",
    "gen_template",
    "gen_template_version",
)
GEN_SEED_DOC, GEN_SAMPLING, GEN_RANDOM_SEED = "gen_seed_doc", "gen_sampling", "gen_random_seed"
NUM_TOKENS = "num_tokens"
PII = "pii"
# The PII kinds counted per document (curate/hygiene/pii.py), in the order of the struct.
PII_KINDS = ("email", "phone", "ip", "card", "iban", "secret")
PII_TYPE = pa.struct([pa.field(kind, pa.int32()) for kind in PII_KINDS])

# Document metadata keys: what each step leaves in a datatrove Document's metadata on the way
# to the Parquet columns. Declared here, with the columns, so the writer (curate.core.parquet_io)
# needs no step to know them.
# Reading (curate.readers):
META_REJECT = "ingest_reject"  # (reason, detail) for a record that could not be read
META_SOURCE = "source"
META_OFFSET = "offset"
META_URL = "url"
META_DATE = "date"
META_CONTENT = "content_type"  # "html" when the text still needs extraction
# Annotators (filters.annotate, filters.extract, filters.language):
META_ANNOTATIONS = "annotations"  # {stage: reason or None}
META_EXTRACT_FAIL = "extract_fail"
META_LANG = "language"
META_LANG_SCORE = "language_score"
# Hygiene (curate.hygiene.pii, curate.hygiene.urls) and quality (curate.quality.apply):
META_PII = "pii"  # {kind: count} of the document, written to the `pii` column
META_PII_DROP = "pii_drop"  # drop mode: "email=1 phone=2", the ledger value
META_URL_MATCH = "url_match"  # "<list>: <entry>" of a dropped document, the ledger value
META_QUALITY = QUALITY_SCORE

DOCUMENT_SCHEMA = pa.schema(
    [
        pa.field(ID, pa.string(), nullable=False),
        pa.field(TEXT, pa.string(), nullable=False),
        # The input file the record came from (as given, URL or path) ...
        pa.field(SOURCE, pa.string(), nullable=False),
        # ... and where in it: the line number (JSONL), row (Parquet) or byte offset (WARC).
        pa.field(OFFSET, pa.int64(), nullable=False),
        pa.field(URL, pa.string()),
        pa.field(DATE, pa.string()),
        pa.field(LANG, pa.string()),
        pa.field(LANG_SCORE, pa.float32()),
        # Everything else the source record carried, as a JSON object.
        pa.field(METADATA, pa.string()),
        # The selection score: with quality.scorer=combined (the default) P(good pretraining
        # text) from the combined model, with quality.scorer=edu P(educational); null when
        # quality did not run.
        pa.field(QUALITY_SCORE, pa.float32()),
        pa.field(QUALITY_EDU, pa.float32()),  # P(educational), the educational classifier
        pa.field(QUALITY_GENERAL, pa.float32()),  # P(good), the general-quality classifier
        # quality_score cut into 20 equal-width buckets, 0-19 (19 best), as Nemotron-CC's.
        pa.field(QUALITY_BUCKET, pa.int8()),
        pa.field(SYNTHETIC, pa.bool_()),  # true on generated documents
        pa.field(GEN_MODEL, pa.string()),
        pa.field(GEN_TEMPLATE, pa.string()),
        pa.field(GEN_TEMPLATE_VERSION, pa.string()),
        pa.field(GEN_SEED_DOC, pa.string()),  # id of the grounding document (null: topic list)
        pa.field(GEN_SAMPLING, pa.string()),  # sampling parameters, JSON
        pa.field(GEN_RANDOM_SEED, pa.int64()),
        # Tokens of `text` with the release's tokenizer, special tokens not counted. Null until
        # a release counts them (a run's shards are tokenizer-agnostic). int32: max_record_bytes
        # caps a document at 5 MB.
        pa.field(NUM_TOKENS, pa.int32()),
        # PII found in the document, per kind (replaced by placeholders when pii.mode is
        # redact, the default). Null when the PII step did not run (pii.enabled: false).
        pa.field(PII, PII_TYPE),
    ]
)

# A release that repeats documents (release.mix.bucket_weights above 1) holds each copy as its
# own row with the same `id`; `copy` tells them apart (0: the first in release order, so
# `copy == 0` counts distinct documents). Only such releases have the column: run shards and
# releases without repeats are exactly DOCUMENT_SCHEMA.
COPY = "copy"
COPY_FIELD = pa.field(COPY, pa.int16(), nullable=False)


def release_document_schema(repeats: bool) -> pa.Schema:
    """The schema of a release's shards: DOCUMENT_SCHEMA, plus `copy` when documents repeat."""
    return DOCUMENT_SCHEMA.append(COPY_FIELD) if repeats else DOCUMENT_SCHEMA


# Annotation columns: written by annotators, read by selection, never in released shards.
# Each holds null when the document passes, else the reason it fails.
ANN_INGEST = "ann_ingest"  # the record could not be read (malformed_json, too_large, ...)
ANN_EXTRACT = "ann_extract"  # HTML extraction failed (extraction_timeout, no_main_content, ...)
ANN_DETAIL = "ann_detail"  # the detail behind an ingest or extract reason


def filter_column(stage: str) -> str:
    """The annotation column of a heuristic rule (its verdict, null when the document passes)."""
    return f"ann_{stage}"


def annotated_schema(filter_stages: Sequence[str]) -> pa.Schema:
    """A document row plus its annotations: ingest, extract, and one column per heuristic rule.
    The rules are those of the registry (filters.registry.filter_stages()), in their order."""
    return pa.schema(
        list(DOCUMENT_SCHEMA)
        + [pa.field(ANN_INGEST, pa.string()), pa.field(ANN_EXTRACT, pa.string()), pa.field(ANN_DETAIL, pa.string())]
        + [pa.field(filter_column(stage), pa.string()) for stage in filter_stages]
    )


# The rejection ledger: one row per document that left the pipeline, so "why was this
# dropped?" always has an answer.
LEDGER_SCHEMA = pa.schema(
    [
        pa.field(ID, pa.string(), nullable=False),
        pa.field("stage", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        # The measured value or detail behind the reason (a score, an exception message).
        pa.field("value", pa.string()),
        pa.field(SOURCE, pa.string()),
        pa.field(OFFSET, pa.int64()),
        pa.field(URL, pa.string()),
        # For duplicates: the id of the document that was kept instead.
        pa.field("duplicate_of", pa.string()),
        # For hygiene drops: the evidence (a benchmark span with its length and item share, a
        # blocklist entry); `value` names what it matched (the benchmark, the list).
        pa.field("matched", pa.string()),
    ]
)


def empty_table(schema: pa.Schema) -> pa.Table:
    return schema.empty_table()

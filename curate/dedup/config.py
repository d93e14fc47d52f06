"""The `dedup` section: exact and MinHash near-duplicate removal, and the persistent index."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from curate.core.section import Section


class DedupConfig(Section):
    """Exact, then MinHash near-duplicate removal (FineWeb's settings)."""

    enabled: bool = True
    exact: bool = True  # sha1 of whitespace- and case-normalised text
    near: bool = True
    # 5-word shingles: FineWeb's choice; shorter n-grams make unrelated documents that share
    # stock phrases look similar, longer ones miss near-copies with small edits.
    ngram: int = Field(default=5, ge=1, le=32)
    # 14 bands x 8 rows = 112 permutations (112 x 4 B = 448 B of signature per document).
    # A pair with Jaccard s becomes a candidate with probability 1 - (1 - s^8)^14:
    # 0.05 at s = 0.5, 0.77 at s = 0.75, 0.92 at s = 0.8, 0.99 at s = 0.85, 0.9996 at s = 0.9.
    bands: int = Field(default=14, ge=1, le=1024)
    rows: int = Field(default=8, ge=1, le=256)
    # When set, bands x rows are derived from it (datasketch's optimal parameters for
    # num_perm = bands x rows) instead of the two numbers above.
    threshold: float | None = Field(default=None, gt=0, lt=1)
    # Candidate pairs are verified against the estimated Jaccard of their full signatures
    # (each bucket member is checked against the bucket's smallest document);
    # 0 keeps every LSH candidate (FineWeb does not verify).
    verify_threshold: float = Field(default=0.0, ge=0, le=1)
    # Fixed seed: the same permutations on every run and every worker -> same clusters.
    seed: int = 1
    # Which document of a cluster survives, tried in order: highest quality_score (when the
    # column is present), then longest text, then smallest id (a total order: deterministic).
    keep: list[Literal["quality", "longest", "smallest_id"]] = Field(
        default_factory=lambda: ["quality", "longest", "smallest_id"]
    )
    # Folder of the persistent index of earlier releases' signatures ("" = none). A run
    # removes documents that duplicate anything in it, then adds its kept documents as the
    # segment of release `name`; a rerun with the same name replaces that segment and never
    # matches itself, so distinct releases need distinct names.
    index_dir: str = ""
    update_index: bool = True

"""Deduplication: exact (sha1 of case- and whitespace-normalised text), then MinHash LSH
near-duplicates (FineWeb's 5-gram shingles, 14 bands x 8 rows), optionally against a
persistent index of earlier releases.

    normalize.py   text -> exact key, text -> words (versioned)
    signatures.py  words -> shingle hashes -> datasketch affine32 MinHash -> band hashes
    sigtable.py    phase 1, one table of keys and band hashes per unit of rows (parallel)
    clusters.py    candidate edges -> connected components (numpy), star edges (polars)
    index.py       the persistent index: segments of band hashes per release
    stage.py       run_dedup / dedup_stage (the flow) and dedup_command (`curate dedup`)

Kept light on purpose (no imports here): spawned workers import only what they run.
"""

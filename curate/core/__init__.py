"""The bottom layer: the one schema (every column and metadata key), errors, the config Section base,
Parquet I/O, output layout, ledger, shards, ids, input files and read retries, and the stage runner.
It imports nothing from the layers above (see README, "Layout")."""

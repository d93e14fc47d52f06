"""Reading raw inputs into datatrove Documents, one module per format (JSONL, Parquet, WARC), with the
decompression and charset handling they share; `RecordReader` (reader.py) is the datatrove step."""

"""curate: raw web text in, textbook-quality pretraining shards out."""

__version__ = "0.1.0"

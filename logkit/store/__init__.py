"""The embedded file store: Hive-partitioned JSONL segments that DuckDB and Spark read as they
are (PRODUCT.md gives the layout, the envelope and the dead-letter record)."""

"""Data: synthetic LIP-format generation, safe ingest, TFRecords and the tf.data pipeline."""

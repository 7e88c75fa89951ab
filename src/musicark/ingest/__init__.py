"""Ingest: audio files into the content-addressed store and the per-file ledger."""

"""The stages, one module each: ingest, transcribe, segment, score. Each maps records to records."""

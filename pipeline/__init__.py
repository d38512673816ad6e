"""callqa: recorded customer calls in, scored and searchable Parquet tables out."""

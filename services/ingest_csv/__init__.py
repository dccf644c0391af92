"""ingest-csv: answers `imagegen.submit.csv`, then streams each accepted CSV into render tasks."""

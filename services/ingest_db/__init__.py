"""ingest-db: answers `imagegen.submit.db`, then streams a read-only query's rows into render
tasks through a server-side cursor."""

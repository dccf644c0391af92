"""ingest: answers `imagegen.submit.<source>` for the sources it serves, records each job, and
streams the job's rows into render tasks. Sources are plug-ins (`shared.sources`); which ones a
process serves is `IMAGEGEN_INGEST_SOURCES` (all by default), so file and database ingest can run
as separate deployments with separate credentials."""

-- Sources are plug-ins (shared/sources): the ledger no longer lists them; the service checks a
-- job's source against its registry. Failures keep the source's own row number for reports.
ALTER TABLE imagegen_jobs DROP CONSTRAINT IF EXISTS imagegen_jobs_source_check;
ALTER TABLE imagegen_item_failures ADD COLUMN row_number integer NOT NULL DEFAULT 0;

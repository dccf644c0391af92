-- Items rendered with characters no font covers are "incomplete": counted apart (they are in
-- done_items too) and listed beside the failures with what is missing; a retry re-renders only
-- the failed ones.
ALTER TABLE imagegen_jobs ADD COLUMN incomplete_items integer NOT NULL DEFAULT 0;
ALTER TABLE imagegen_job_batches ADD COLUMN incomplete_items integer NOT NULL DEFAULT 0;
ALTER TABLE imagegen_item_failures ADD COLUMN kind text NOT NULL DEFAULT 'failed';

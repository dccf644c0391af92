-- Retrying failed items needs what they were: their text and output name travel with the
-- failure, so a retry can re-publish them without re-reading the source.
ALTER TABLE imagegen_item_failures ADD COLUMN text text;
ALTER TABLE imagegen_item_failures ADD COLUMN name text;
ALTER TABLE imagegen_jobs ADD COLUMN cancelled_at timestamptz;

-- A retried item keeps its per-row style overrides ({field: cell text}).
ALTER TABLE imagegen_item_failures ADD COLUMN style jsonb;

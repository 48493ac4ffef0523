-- A request_id is reserved (response NULL) before its call runs, so concurrent retries wait for the first.
ALTER TABLE request_log ALTER COLUMN response DROP NOT NULL;

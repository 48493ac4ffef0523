-- A listing is loaded with one COPY per chunk and read once, by planning: keeping a unique index on it cost
-- more than the rest of registering. Planning ignores a file listed twice instead.
ALTER TABLE listings DROP CONSTRAINT listings_pkey;

-- Incremental listing (source.listing.mode = incremental). A run lists only the keys after `listing_start_after`
-- (NULL: the whole source). Per ingestion: when the last full listing was planned, how many incremental
-- listings followed it, which source (uri and pattern) it listed, and how many clears of processed files it
-- had seen; a clear or a changed source since then makes the next listing full.
ALTER TABLE runs ADD COLUMN listing_start_after text;
ALTER TABLE runs ADD COLUMN listing_time timestamptz;
ALTER TABLE ingestion_state ADD COLUMN clears bigint NOT NULL DEFAULT 0;
ALTER TABLE ingestion_state ADD COLUMN full_listing_clears bigint;
ALTER TABLE ingestion_state ADD COLUMN full_listing_time timestamptz;
ALTER TABLE ingestion_state ADD COLUMN incremental_listings integer NOT NULL DEFAULT 0;
ALTER TABLE ingestion_state ADD COLUMN full_listing_source text;

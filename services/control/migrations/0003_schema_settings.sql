-- Schema policy and file metadata columns of an ingestion. NULL in older rows means "the defaults".
ALTER TABLE ingestions ADD COLUMN schema jsonb;
ALTER TABLE ingestions ADD COLUMN metadata_columns jsonb;

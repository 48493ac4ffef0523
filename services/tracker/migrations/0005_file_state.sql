-- The life of each file: when a listing first saw it, when a run took it, when its outcome was recorded,
-- and when the Iceberg commit holding its rows was made.
ALTER TABLE files ADD COLUMN discover_time timestamptz;
ALTER TABLE files ADD COLUMN claim_time timestamptz;
ALTER TABLE files ADD COLUMN process_time timestamptz;
ALTER TABLE files ADD COLUMN commit_time timestamptz;
CREATE INDEX files_by_run ON files (ingestion_id, run_id);

-- Files a listing found that no run has taken yet (run limits left them for later): the backlog, and
-- where their discovery time is kept until a run takes them.
CREATE TABLE pending_files (
    ingestion_id   text NOT NULL,
    key            text NOT NULL,
    etag           text NOT NULL,
    size           bigint NOT NULL,
    last_modified  timestamptz NOT NULL,
    discover_time  timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (ingestion_id, key, etag)
);

-- Runs of ingestions. A run is QUEUED, then RUNNING under a lease, then SUCCESS, PARTIAL_SUCCESS or FAILED.
CREATE TABLE runs (
    run_id            text PRIMARY KEY,
    ingestion_id      text NOT NULL,
    status            text NOT NULL CHECK (status IN ('QUEUED', 'RUNNING', 'SUCCESS', 'FAILED', 'PARTIAL_SUCCESS')),
    trigger           text NOT NULL,
    requested_by      text NOT NULL,
    ingestion         jsonb NOT NULL,          -- configuration the run uses, frozen when it was queued
    table_name        text NOT NULL,
    lease_owner       text,
    lease_epoch       bigint NOT NULL DEFAULT 0,
    lease_expires_at  timestamptz,
    batch_seq         bigint,
    files_discovered  bigint NOT NULL DEFAULT 0,
    files_processed   bigint NOT NULL DEFAULT 0,
    files_failed      bigint NOT NULL DEFAULT 0,
    files_skipped     bigint NOT NULL DEFAULT 0,
    rows_written      bigint NOT NULL DEFAULT 0,
    bytes_processed   bigint NOT NULL DEFAULT 0,
    snapshot_id       bigint,
    error             text NOT NULL DEFAULT '',
    create_time       timestamptz NOT NULL DEFAULT clock_timestamp(),
    start_time        timestamptz,
    end_time          timestamptz
);
-- At most one queued or running run per ingestion: a second trigger conflicts (HTTP 409).
CREATE UNIQUE INDEX runs_one_active_per_ingestion ON runs (ingestion_id) WHERE status IN ('QUEUED', 'RUNNING');
CREATE INDEX runs_by_ingestion ON runs (ingestion_id, create_time DESC, run_id DESC);
CREATE INDEX runs_claimable ON runs (create_time) WHERE status IN ('QUEUED', 'RUNNING');

-- Per-ingestion state: the next batch number and the schema of the last loaded table.
CREATE TABLE ingestion_state (
    ingestion_id    text PRIMARY KEY,
    next_batch_seq  bigint NOT NULL DEFAULT 1,
    table_schema    text NOT NULL DEFAULT ''
);

-- The source listing of a run, streamed in by the executor before planning. Unlogged: it is scratch data
-- that a crashed run simply lists again.
CREATE UNLOGGED TABLE listings (
    run_id         text NOT NULL,
    key            text NOT NULL,
    etag           text NOT NULL,
    size           bigint NOT NULL,
    last_modified  timestamptz NOT NULL,
    PRIMARY KEY (run_id, key, etag)
);

-- Processed-file records: one per (ingestion, key, etag). A file is new when it has no record.
CREATE TABLE files (
    ingestion_id   text NOT NULL,
    key            text NOT NULL,
    etag           text NOT NULL,
    size           bigint NOT NULL,
    last_modified  timestamptz NOT NULL,
    status         text NOT NULL CHECK (status IN ('CLAIMED', 'PROCESSED', 'FAILED', 'SKIPPED')),
    run_id         text NOT NULL,
    batch_seq      bigint NOT NULL,
    snapshot_id    bigint,
    attempts       integer NOT NULL DEFAULT 0,
    error          text NOT NULL DEFAULT '',
    update_time    timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (ingestion_id, key, etag)
);
CREATE INDEX files_by_status ON files (ingestion_id, status, key);

-- Planned batches, frozen before Spark reads anything: a run that is taken over redoes the same batch.
CREATE TABLE batches (
    ingestion_id  text NOT NULL,
    batch_seq     bigint NOT NULL,
    run_id        text NOT NULL,
    files         jsonb NOT NULL,   -- [{key, etag, size, last_modified, attempts}] in load order
    files_hash    text NOT NULL,
    create_time   timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (ingestion_id, batch_seq)
);

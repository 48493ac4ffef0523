-- Previews of an ingestion's next run: queued by the control service, listed by an executor, answered
-- with the same planning SQL as a run. Kept only until read; old ones are deleted.
CREATE TABLE previews (
    preview_id    text PRIMARY KEY,
    ingestion_id  text NOT NULL,
    ingestion     jsonb NOT NULL,
    page_size     integer NOT NULL,
    clear_selection jsonb,          -- a clear to count the effect of (a dry run), or NULL
    status        text NOT NULL CHECK (status IN ('QUEUED', 'RUNNING', 'DONE', 'FAILED')),
    result        jsonb,
    error         text NOT NULL DEFAULT '',
    executor_id   text NOT NULL DEFAULT '',
    create_time   timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX previews_queued ON previews (create_time) WHERE status = 'QUEUED';

-- Files whose rows a run committed before their records were cleared: loading them again into the same
-- table duplicates those rows, which a preview warns about.
CREATE TABLE cleared_files (
    ingestion_id  text NOT NULL,
    key           text NOT NULL,
    etag          text NOT NULL,
    snapshot_id   bigint,
    clear_time    timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (ingestion_id, key, etag)
);

-- Notices of ended runs to the ingestion's webhook: written in the transaction that ends the run, so none
-- is lost, and sent (again) until delivered or out of attempts.
CREATE TABLE webhook_deliveries (
    delivery_id        text PRIMARY KEY,
    ingestion_id       text NOT NULL,
    run_id             text NOT NULL,
    url                text NOT NULL,
    secret             text NOT NULL,
    max_attempts       integer NOT NULL,
    payload            jsonb NOT NULL,
    status             text NOT NULL CHECK (status IN ('PENDING', 'DELIVERED', 'FAILED')),
    attempts           jsonb NOT NULL DEFAULT '[]',
    next_attempt_time  timestamptz NOT NULL DEFAULT clock_timestamp(),
    create_time        timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_time) WHERE status = 'PENDING';
CREATE INDEX webhook_deliveries_by_ingestion ON webhook_deliveries (ingestion_id, create_time DESC, delivery_id DESC);

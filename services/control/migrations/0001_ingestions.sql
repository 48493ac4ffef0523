-- Ingestion configurations. Nested parts of the configuration are stored as JSON documents.
CREATE TABLE ingestions (
    ingestion_id       text PRIMARY KEY,
    name               text NOT NULL,
    source             jsonb NOT NULL,
    destination        jsonb NOT NULL,
    max_retries        integer NOT NULL,
    max_files_per_run  bigint,
    max_bytes_per_run  bigint,
    schedule           jsonb,
    enabled            boolean NOT NULL,
    owner              text NOT NULL,
    create_time        timestamptz NOT NULL DEFAULT now(),
    update_time        timestamptz NOT NULL DEFAULT now()
);

-- Responses of mutating calls that carried a request_id, so a retried call returns the first result.
CREATE TABLE request_log (
    principal    text NOT NULL,
    request_id   text NOT NULL,
    method       text NOT NULL,
    response     bytea NOT NULL,
    create_time  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (principal, request_id)
);

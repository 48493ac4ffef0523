-- Who else may act on an ingestion, and at which role (the owner is on the ingestion itself).
CREATE TABLE ingestion_shares (
    ingestion_id  text NOT NULL REFERENCES ingestions (ingestion_id) ON DELETE CASCADE,
    principal     text NOT NULL,
    role          text NOT NULL CHECK (role IN ('viewer', 'runner', 'editor')),
    granted_by    text NOT NULL,
    grant_time    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (ingestion_id, principal)
);
CREATE INDEX ingestion_shares_by_principal ON ingestion_shares (principal, ingestion_id);

-- Every mutating call: who, with which token, what it named, how it ended. Append-only.
CREATE TABLE audit_events (
    event_seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id         text NOT NULL UNIQUE,
    event_time       timestamptz NOT NULL DEFAULT now(),
    principal        text NOT NULL,
    token_id         text NOT NULL,
    action           text NOT NULL,
    ingestion_id     text NOT NULL DEFAULT '',
    run_id           text NOT NULL DEFAULT '',
    target_token_id  text NOT NULL DEFAULT '',
    result           text NOT NULL,
    request_id       text NOT NULL DEFAULT ''
);
CREATE INDEX audit_events_by_principal ON audit_events (principal, event_seq);
CREATE INDEX audit_events_by_ingestion ON audit_events (ingestion_id, event_seq);

-- API tokens. Only a SHA-256 hash of each secret is stored; the secret is shown once.
CREATE TABLE tokens (
    token_id     text PRIMARY KEY,
    name         text NOT NULL,
    role         text NOT NULL CHECK (role IN ('viewer', 'editor', 'admin')),
    secret_hash  bytea NOT NULL UNIQUE,
    created_by   text NOT NULL,
    create_time  timestamptz NOT NULL DEFAULT now(),
    revoke_time  timestamptz
);

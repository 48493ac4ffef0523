-- When each scheduled, enabled ingestion fires next (NULL: not scheduled), and its webhook.
ALTER TABLE ingestions ADD COLUMN next_fire_time timestamptz;
ALTER TABLE ingestions ADD COLUMN webhook jsonb;
CREATE INDEX ingestions_due ON ingestions (next_fire_time) WHERE next_fire_time IS NOT NULL;

-- What became of each due time of a schedule. The key makes a due time fire at most once, whichever
-- control replica handles it.
CREATE TABLE schedule_ticks (
    ingestion_id  text NOT NULL REFERENCES ingestions ON DELETE CASCADE,
    tick_time     timestamptz NOT NULL,
    outcome       text NOT NULL CHECK (outcome IN ('FIRED', 'SKIPPED', 'FAILED')),
    run_id        text NOT NULL DEFAULT '',
    missed_ticks  integer NOT NULL DEFAULT 0,
    detail        text NOT NULL DEFAULT '',
    handle_time   timestamptz NOT NULL,
    PRIMARY KEY (ingestion_id, tick_time)
);

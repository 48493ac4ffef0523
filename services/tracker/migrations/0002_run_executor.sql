-- The executor that last held the run (kept after the run ends, unlike the lease).
ALTER TABLE runs ADD COLUMN executor_id text NOT NULL DEFAULT '';

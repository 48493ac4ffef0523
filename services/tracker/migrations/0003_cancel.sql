-- A run can be cancelled: a queued one at once, a running one by its executor once it sees the request.
ALTER TABLE runs DROP CONSTRAINT runs_status_check;
ALTER TABLE runs ADD CONSTRAINT runs_status_check
    CHECK (status IN ('QUEUED', 'RUNNING', 'SUCCESS', 'FAILED', 'PARTIAL_SUCCESS', 'CANCELLED'));
ALTER TABLE runs ADD COLUMN cancel_requested_by text NOT NULL DEFAULT '';

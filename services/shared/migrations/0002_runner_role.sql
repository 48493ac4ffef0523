-- The runner role: reads, previews, runs and cancels runs, but changes no configuration.
ALTER TABLE tokens DROP CONSTRAINT tokens_role_check;
ALTER TABLE tokens ADD CONSTRAINT tokens_role_check CHECK (role IN ('viewer', 'runner', 'editor', 'admin'));

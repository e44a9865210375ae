-- 003_attempts.sql — a bound on crash loops (issue 8). `attempts` counts
-- the runs of a job started since it last made progress (an epoch
-- committed, or a checkpoint taken at shutdown). A job that was running
-- each time the daemon died, --max-attempts runs in a row, ends failed at
-- the next start instead of being resumed again (a job that takes the
-- daemon down would otherwise do so at every start). Applied once as
-- user_version 3.
ALTER TABLE jobs ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;

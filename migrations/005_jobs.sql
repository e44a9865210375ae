-- 005_jobs.sql — what a job was given and what it will take, and one more
-- metrics column (the operator-safety issue). Applied once as user_version 5.

-- Compute threads the job's trainer got in its latest run (the daemon's
-- budget, --cores / --workers, or fewer when the spec asks); NULL until it runs.
ALTER TABLE jobs ADD COLUMN threads INTEGER;

-- Its estimated peak memory in bytes, computed at submit against
-- --max-job-memory; NULL for jobs submitted before, or when the dataset
-- could not be read at submit.
ALTER TABLE jobs ADD COLUMN memory_estimate INTEGER;

-- The fraction of an epoch's training time spent waiting for the batch
-- loader (isif train's metrics.csv has it; the daemon's CSV now does too).
-- NULL in rows committed before.
ALTER TABLE metrics ADD COLUMN data_wait REAL;

-- 010_groups.sql — job groups (POST /groups): one job per point of a grid
-- over spec fields, seeds among them (issue 18).

-- A group: the base spec and the grid as sent (JSON text).
CREATE TABLE groups (
	id INTEGER PRIMARY KEY AUTOINCREMENT,   -- never reused: a deleted group's URL stays dead
	base TEXT NOT NULL,
	grid TEXT NOT NULL,
	created_at TEXT NOT NULL
);

-- The jobs of a group. point: the index of the job's grid point with the
-- seed left out (jobs that differ only by seed share it); point_values:
-- that point's grid values as a JSON object keyed by dotted path; values:
-- every grid value of the job (seed included). A job deleted on its own
-- (DELETE /jobs/{id}) takes its row with it.
CREATE TABLE group_jobs (
	job_id INTEGER PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,
	group_id INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
	point INTEGER NOT NULL,
	point_values TEXT NOT NULL,
	job_values TEXT NOT NULL
);
CREATE INDEX group_jobs_group ON group_jobs(group_id, point);

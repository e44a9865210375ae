/*
 * server/store.c — SQLite storage of isifd (see store.h). One connection,
 * WAL journal, synchronous=FULL (an epoch's row is durable when the commit
 * returns), foreign keys on, a busy timeout for outside readers such as the
 * sqlite3 shell. A mutex serialises users of the connection, so each
 * function's statements run as a unit.
 */
#include "store.h"

#include <sqlite3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

struct store {
	sqlite3 *db;
	pthread_mutex_t mu;
	char last_error[256];
};

static const char *const status_names[JOB_STATUS_COUNT] = {
	"queued", "running", "succeeded", "failed", "cancelled",
};

const char *job_status_name(enum job_status s)
{
	return (unsigned)s < JOB_STATUS_COUNT ? status_names[s] : "unknown";
}

int job_status_parse(const char *name)
{
	for (int i = 0; i < JOB_STATUS_COUNT; i++)
		if (strcmp(name, status_names[i]) == 0)
			return i;
	return -1;
}

/* Records SQLite's message and returns STORE_ERR. */
static int db_fail(struct store *st, const char *what)
{
	snprintf(st->last_error, sizeof st->last_error, "%s: %s", what,
		 sqlite3_errmsg(st->db));
	log_error("store: %s", st->last_error);
	return STORE_ERR;
}

const char *store_last_error(struct store *st)
{
	return st->last_error;
}

static int exec(struct store *st, const char *sql)
{
	char *msg = NULL;
	if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(st->last_error, sizeof st->last_error, "%s", msg ? msg : "?");
		sqlite3_free(msg);
		return STORE_ERR;
	}
	return STORE_OK;
}

static sqlite3_stmt *prepare(struct store *st, const char *sql)
{
	sqlite3_stmt *s = NULL;
	if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK) {
		db_fail(st, "prepare");
		return NULL;
	}
	return s;
}

/* ---- opening and migrations -------------------------------------------- */

static int pragma_int(struct store *st, const char *sql, int *out)
{
	sqlite3_stmt *s = prepare(st, sql);
	if (!s)
		return STORE_ERR;
	int rc = sqlite3_step(s) == SQLITE_ROW ? STORE_OK : STORE_ERR;
	if (rc == STORE_OK)
		*out = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	return rc;
}

/* Version of a migration from its file name's leading digits, or -1. */
static int migration_version(const char *name)
{
	int v = 0, digits = 0;
	for (; name[digits] >= '0' && name[digits] <= '9' && digits < 6; digits++)
		v = v * 10 + (name[digits] - '0');
	return digits == 3 && name[3] == '_' ? v : -1;
}

static int migrate(struct store *st, const struct migration *m, int n, char *err,
		   size_t errlen)
{
	int version = 0;
	if (pragma_int(st, "PRAGMA user_version", &version)) {
		snprintf(err, errlen, "reading the schema version: %s", st->last_error);
		return STORE_ERR;
	}
	if (version > n) {
		snprintf(err, errlen, "database schema version %d is newer than this isifd (%d)",
			 version, n);
		return STORE_ERR;
	}
	for (int i = version; i < n; i++) {
		char sql[64];
		if (migration_version(m[i].name) != i + 1) {
			snprintf(err, errlen, "migration %s: expected number %03d", m[i].name, i + 1);
			return STORE_ERR;
		}
		snprintf(sql, sizeof sql, "PRAGMA user_version = %d", i + 1);
		if (exec(st, "BEGIN IMMEDIATE") || exec(st, m[i].sql) || exec(st, sql) ||
		    exec(st, "COMMIT")) {
			snprintf(err, errlen, "migration %s: %s", m[i].name, st->last_error);
			exec(st, "ROLLBACK");
			return STORE_ERR;
		}
		log_info("store: applied migration %s", m[i].name);
	}
	return STORE_OK;
}

/*
 * PRAGMA quick_check (the b-tree structure of every page, not the index
 * contents; linear in the file size, milliseconds for isifd's database). A
 * damaged file would otherwise open fine and fail request by request later.
 */
static int check_integrity(struct store *st, char *err, size_t errlen)
{
	sqlite3_stmt *s = prepare(st, "PRAGMA quick_check(3)");
	if (!s) {
		snprintf(err, errlen, "%s", st->last_error);
		return STORE_ERR;
	}
	char found[256] = "";
	int step;
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		const char *line = (const char *)sqlite3_column_text(s, 0);
		if (line && strcmp(line, "ok") != 0 && !found[0]) {
			snprintf(found, sizeof found, "%s", line);
			for (char *c = found; *c; c++)
				if (*c == '\n')
					*c = ' ';
		}
	}
	if (step != SQLITE_DONE && !found[0])
		snprintf(found, sizeof found, "%s", sqlite3_errmsg(st->db));
	sqlite3_finalize(s);
	if (!found[0])
		return STORE_OK;
	snprintf(err, errlen, "the database is damaged (quick_check: %s); isifd will not use it: "
		 "restore a backup or move the file away", found);
	return STORE_ERR;
}

int store_open(struct store **out, const char *path,
	       const struct migration *migrations, int n, char *err, size_t errlen)
{
	struct store *st = calloc(1, sizeof *st);
	if (!st) {
		snprintf(err, errlen, "out of memory");
		return STORE_ERR;
	}
	pthread_mutex_init(&st->mu, NULL);
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX;
	if (sqlite3_open_v2(path, &st->db, flags, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path, st->db ? sqlite3_errmsg(st->db) : "cannot open");
		store_close(st);
		return STORE_ERR;
	}
	sqlite3_busy_timeout(st->db, 5000);
	if (exec(st, "PRAGMA journal_mode = WAL") || exec(st, "PRAGMA synchronous = FULL") ||
	    exec(st, "PRAGMA foreign_keys = ON")) {
		snprintf(err, errlen, "%s: %s", path, st->last_error);
		store_close(st);
		return STORE_ERR;
	}
	if (check_integrity(st, err, errlen) || migrate(st, migrations, n, err, errlen)) {
		store_close(st);
		return STORE_ERR;
	}
	*out = st;
	return STORE_OK;
}

void store_close(struct store *st)
{
	if (!st)
		return;
	if (st->db)
		sqlite3_close(st->db);
	pthread_mutex_destroy(&st->mu);
	free(st);
}

int store_schema_version(struct store *st)
{
	int v = -1;
	pthread_mutex_lock(&st->mu);
	pragma_int(st, "PRAGMA user_version", &v);
	pthread_mutex_unlock(&st->mu);
	return v;
}

/* ---- jobs ------------------------------------------------------------------ */

int store_job_insert(struct store *st, const char *spec_json, const char *dataset,
		     int epochs, int priority, long max_queued, int64_t *id)
{
	char now[32];
	int rc = STORE_ERR, queued = 0;
	sqlite3_stmt *s = NULL;
	iso8601_now(now, sizeof now);
	pthread_mutex_lock(&st->mu);
	if (exec(st, "BEGIN IMMEDIATE")) {
		db_fail(st, "begin");
		goto out;
	}
	if (pragma_int(st, "SELECT COUNT(*) FROM jobs WHERE status = 'queued'", &queued))
		goto rollback;
	if (queued >= max_queued) {
		rc = STORE_FULL;
		goto rollback;
	}
	s = prepare(st, "INSERT INTO jobs (spec, dataset, epochs, priority, created_at) "
			"VALUES (?, ?, ?, ?, ?)");
	if (!s)
		goto rollback;
	sqlite3_bind_text(s, 1, spec_json, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, dataset, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 3, epochs);
	sqlite3_bind_int(s, 4, priority);
	sqlite3_bind_text(s, 5, now, -1, SQLITE_STATIC);
	if (sqlite3_step(s) != SQLITE_DONE) {
		db_fail(st, "insert job");
		goto rollback;
	}
	*id = sqlite3_last_insert_rowid(st->db);
	if (exec(st, "COMMIT")) {
		db_fail(st, "commit");
		goto rollback;
	}
	rc = STORE_OK;
	goto out;
rollback:
	exec(st, "ROLLBACK");
out:
	sqlite3_finalize(s);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

json_t *store_column_json(sqlite3_stmt *s, int col)
{
	switch (sqlite3_column_type(s, col)) {
	case SQLITE_NULL:
		return json_null();
	case SQLITE_INTEGER:
		return json_integer(sqlite3_column_int64(s, col));
	case SQLITE_FLOAT:
		return json_real(sqlite3_column_double(s, col));
	default:
		return json_string((const char *)sqlite3_column_text(s, col));
	}
}

#define METRICS_COLUMNS "epoch, loss, knn_top1, knn_top5, recall_at_1, recall_at_2, " \
	"recall_at_4, recall_at_8, nmi, lr, seconds, images_per_sec, images"

static void row_from_stmt(sqlite3_stmt *s, struct metrics_row *r)
{
	memset(r, 0, sizeof *r);
	r->epoch = sqlite3_column_int(s, 0);
	r->loss = sqlite3_column_double(s, 1);
	r->has_knn = sqlite3_column_type(s, 2) != SQLITE_NULL;
	r->knn_top1 = sqlite3_column_double(s, 2);
	r->knn_top5 = sqlite3_column_double(s, 3);
	r->unseen = sqlite3_column_type(s, 4) != SQLITE_NULL;
	for (int k = 0; k < 4; k++)
		r->recall_at[k] = sqlite3_column_double(s, 4 + k);
	r->nmi = sqlite3_column_double(s, 8);
	r->lr = sqlite3_column_double(s, 9);
	r->seconds = sqlite3_column_double(s, 10);
	r->images_per_sec = sqlite3_column_double(s, 11);
	r->images = sqlite3_column_int64(s, 12);
}

json_t *metrics_row_json(const struct metrics_row *r)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
	json_object_set_new(o, "epoch", json_integer(r->epoch));
	json_object_set_new(o, "loss", json_real(r->loss));
	json_object_set_new(o, "knn_top1", r->has_knn ? json_real(r->knn_top1) : json_null());
	json_object_set_new(o, "knn_top5", r->has_knn ? json_real(r->knn_top5) : json_null());
	json_object_set_new(o, "lr", json_real(r->lr));
	json_object_set_new(o, "seconds", json_real(r->seconds));
	json_object_set_new(o, "images_per_sec", json_real(r->images_per_sec));
	if (r->unseen) {
		json_t *rec = json_object();
		static const char *const ks[4] = {"1", "2", "4", "8"};
		for (int k = 0; k < 4; k++)
			json_object_set_new(rec, ks[k], json_real(r->recall_at[k]));
		json_object_set_new(o, "recall_at", rec);
		json_object_set_new(o, "nmi", json_real(r->nmi));
	}
	return o;
}

static json_t *last_metrics(struct store *st, int64_t id)
{
	sqlite3_stmt *s = prepare(st, "SELECT " METRICS_COLUMNS " FROM metrics "
				      "WHERE job_id = ? ORDER BY epoch DESC LIMIT 1");
	json_t *o = NULL;
	if (!s)
		return json_null();
	sqlite3_bind_int64(s, 1, id);
	if (sqlite3_step(s) == SQLITE_ROW) {
		struct metrics_row r;
		row_from_stmt(s, &r);
		o = metrics_row_json(&r);
	}
	sqlite3_finalize(s);
	return o ? o : json_null();
}

#define JOB_COLUMNS "id, status, priority, spec, epoch, epochs, created_at, started_at, " \
	"finished_at, error, resumed_from_epoch, cancel_requested"

static json_t *job_from_stmt(struct store *st, sqlite3_stmt *s)
{
	json_t *o = json_object();
	int64_t id = sqlite3_column_int64(s, 0);
	json_t *spec = json_loads((const char *)sqlite3_column_text(s, 3), 0, NULL);
	json_object_set_new(o, "id", json_integer(id));
	json_object_set_new(o, "status", store_column_json(s, 1));
	json_object_set_new(o, "priority", json_integer(sqlite3_column_int(s, 2)));
	json_object_set_new(o, "spec", spec ? spec : json_null());
	json_object_set_new(o, "epoch", json_integer(sqlite3_column_int(s, 4)));
	json_object_set_new(o, "epochs", json_integer(sqlite3_column_int(s, 5)));
	json_object_set_new(o, "created_at", store_column_json(s, 6));
	json_object_set_new(o, "started_at", store_column_json(s, 7));
	json_object_set_new(o, "finished_at", store_column_json(s, 8));
	json_object_set_new(o, "last_metrics", last_metrics(st, id));
	json_object_set_new(o, "error", store_column_json(s, 9));
	json_object_set_new(o, "resumed_from_epoch", store_column_json(s, 10));
	json_object_set_new(o, "cancel_requested", json_boolean(sqlite3_column_int(s, 11)));
	return o;
}

int store_job_json(struct store *st, int64_t id, json_t **out)
{
	int rc = STORE_ERR;
	pthread_mutex_lock(&st->mu);
	sqlite3_stmt *s = prepare(st, "SELECT " JOB_COLUMNS " FROM jobs WHERE id = ?");
	if (s) {
		sqlite3_bind_int64(s, 1, id);
		int step = sqlite3_step(s);
		if (step == SQLITE_ROW) {
			*out = job_from_stmt(st, s);
			rc = *out ? STORE_OK : STORE_ERR;
		} else {
			rc = step == SQLITE_DONE ? STORE_NOTFOUND : db_fail(st, "job");
		}
	}
	sqlite3_finalize(s);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

int store_jobs_json(struct store *st, int status, int limit, json_t **out)
{
	int rc = STORE_OK;
	json_t *arr = json_array();
	pthread_mutex_lock(&st->mu);
	sqlite3_stmt *s = prepare(st, "SELECT " JOB_COLUMNS " FROM jobs "
				      "WHERE ?1 < 0 OR status = ?2 ORDER BY id DESC LIMIT ?3");
	if (!s) {
		rc = STORE_ERR;
		goto out;
	}
	sqlite3_bind_int(s, 1, status);
	sqlite3_bind_text(s, 2, job_status_name(status < 0 ? 0 : status), -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 3, limit);
	int step;
	while ((step = sqlite3_step(s)) == SQLITE_ROW)
		json_array_append_new(arr, job_from_stmt(st, s));
	if (step != SQLITE_DONE)
		rc = db_fail(st, "jobs");
out:
	sqlite3_finalize(s);
	pthread_mutex_unlock(&st->mu);
	if (rc) {
		json_decref(arr);
		return rc;
	}
	*out = json_pack("{s:o}", "jobs", arr);
	return *out ? STORE_OK : STORE_ERR;
}

/* Status of job id with the mutex held. */
static int status_locked(struct store *st, int64_t id, enum job_status *status)
{
	sqlite3_stmt *s = prepare(st, "SELECT status FROM jobs WHERE id = ?");
	if (!s)
		return STORE_ERR;
	sqlite3_bind_int64(s, 1, id);
	int rc, step = sqlite3_step(s);
	if (step == SQLITE_ROW) {
		*status = (enum job_status)job_status_parse((const char *)sqlite3_column_text(s, 0));
		rc = STORE_OK;
	} else {
		rc = step == SQLITE_DONE ? STORE_NOTFOUND : db_fail(st, "status");
	}
	sqlite3_finalize(s);
	return rc;
}

int store_job_status(struct store *st, int64_t id, enum job_status *status)
{
	pthread_mutex_lock(&st->mu);
	int rc = status_locked(st, id, status);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

/* Runs one statement binding ?1 = id (and ?2.. text args) with the mutex held. */
static int run_id(struct store *st, const char *sql, int64_t id, const char *a2,
		  const char *a3)
{
	sqlite3_stmt *s = prepare(st, sql);
	if (!s)
		return STORE_ERR;
	sqlite3_bind_int64(s, 1, id);
	if (a2)
		sqlite3_bind_text(s, 2, a2, -1, SQLITE_STATIC);
	if (a3)
		sqlite3_bind_text(s, 3, a3, -1, SQLITE_STATIC);
	int rc = sqlite3_step(s) == SQLITE_DONE ? STORE_OK : db_fail(st, sql);
	sqlite3_finalize(s);
	return rc;
}

static char *dup_text(sqlite3_stmt *s, int col)
{
	const unsigned char *t = sqlite3_column_text(s, col);
	return t ? strdup((const char *)t) : NULL;
}

int store_job_claim(struct store *st, struct job_claim *c)
{
	char now[32];
	int rc = STORE_ERR;
	memset(c, 0, sizeof *c);
	iso8601_now(now, sizeof now);
	pthread_mutex_lock(&st->mu);
	if (exec(st, "BEGIN IMMEDIATE")) {
		db_fail(st, "begin");
		pthread_mutex_unlock(&st->mu);
		return STORE_ERR;
	}
	sqlite3_stmt *s = prepare(st, "SELECT id, spec, epoch, checkpoint, resume_pending FROM jobs "
				      "WHERE status = 'queued' "
				      "ORDER BY resume_pending DESC, priority DESC, id LIMIT 1");
	if (!s)
		goto rollback;
	int step = sqlite3_step(s);
	if (step == SQLITE_DONE) {
		rc = STORE_EMPTY;
		goto rollback;
	}
	if (step != SQLITE_ROW) {
		db_fail(st, "claim");
		goto rollback;
	}
	c->id = sqlite3_column_int64(s, 0);
	c->spec_json = dup_text(s, 1);
	c->epoch = sqlite3_column_int(s, 2);
	c->checkpoint = dup_text(s, 3);
	c->resume = sqlite3_column_int(s, 4) != 0;
	if (!c->spec_json)
		goto rollback;
	if (run_id(st, "UPDATE jobs SET status = 'running', attempts = attempts + 1, "
		       "started_at = COALESCE(started_at, ?2) WHERE id = ?1", c->id, now, NULL) ||
	    exec(st, "COMMIT"))
		goto rollback;
	rc = STORE_OK;
	goto out;
rollback:
	exec(st, "ROLLBACK");
	if (rc != STORE_EMPTY)
		rc = STORE_ERR;
out:
	sqlite3_finalize(s);
	pthread_mutex_unlock(&st->mu);
	if (rc)
		job_claim_free(c);
	return rc;
}

void job_claim_free(struct job_claim *c)
{
	free(c->spec_json);
	free(c->checkpoint);
	memset(c, 0, sizeof *c);
}

int store_job_finish(struct store *st, int64_t id, enum job_status status,
		     const char *error)
{
	char now[32];
	iso8601_now(now, sizeof now);
	pthread_mutex_lock(&st->mu);
	sqlite3_stmt *s = prepare(st, "UPDATE jobs SET status = ?2, finished_at = ?3, error = ?4, "
				      "resume_pending = 0 WHERE id = ?1");
	int rc = STORE_ERR;
	if (s) {
		sqlite3_bind_int64(s, 1, id);
		sqlite3_bind_text(s, 2, job_status_name(status), -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 3, now, -1, SQLITE_STATIC);
		if (error)
			sqlite3_bind_text(s, 4, error, -1, SQLITE_STATIC);
		rc = sqlite3_step(s) == SQLITE_DONE ? STORE_OK : db_fail(st, "finish");
	}
	sqlite3_finalize(s);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

int store_job_requeue(struct store *st, int64_t id)
{
	pthread_mutex_lock(&st->mu);
	/* A run ended on purpose does not count against --max-attempts. */
	int rc = run_id(st, "UPDATE jobs SET status = 'queued', resume_pending = 1, "
			    "attempts = MAX(attempts - 1, 0) "
			    "WHERE id = ?1 AND status = 'running'", id, NULL, NULL);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

int store_fail_interrupted(struct store *st, int max_attempts, int *n)
{
	char now[32], max[16];
	*n = 0;
	if (max_attempts <= 0)
		return STORE_OK;
	iso8601_now(now, sizeof now);
	snprintf(max, sizeof max, "%d", max_attempts);
	pthread_mutex_lock(&st->mu);
	sqlite3_stmt *s = prepare(st, "UPDATE jobs SET status = 'failed', finished_at = ?1, "
				      "resume_pending = 0, error = 'isifd stopped during ' || attempts || "
				      "' runs of this job in a row with no epoch completed in between; "
				      "giving up (--max-attempts ' || ?2 || ')' "
				      "WHERE status = 'running' AND attempts >= CAST(?2 AS INTEGER) "
				      "RETURNING id, attempts");
	int rc = s ? STORE_OK : STORE_ERR, step;
	if (s) {
		sqlite3_bind_text(s, 1, now, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 2, max, -1, SQLITE_STATIC);
		while ((step = sqlite3_step(s)) == SQLITE_ROW) {
			log_error("job %lld: failed: the daemon stopped during %d runs of it in a row "
				  "(--max-attempts %d)", (long long)sqlite3_column_int64(s, 0),
				  sqlite3_column_int(s, 1), max_attempts);
			(*n)++;
		}
		if (step != SQLITE_DONE)
			rc = db_fail(st, "fail interrupted jobs");
	}
	sqlite3_finalize(s);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

int store_recover_running(struct store *st, int *n)
{
	pthread_mutex_lock(&st->mu);
	int rc = exec(st, "UPDATE jobs SET status = 'queued', resume_pending = 1 "
			  "WHERE status = 'running'");
	*n = rc ? 0 : sqlite3_changes(st->db);
	if (rc)
		db_fail(st, "recover");
	pthread_mutex_unlock(&st->mu);
	return rc ? STORE_ERR : STORE_OK;
}

int store_job_cancel(struct store *st, int64_t id, enum job_status *before)
{
	char now[32];
	iso8601_now(now, sizeof now);
	pthread_mutex_lock(&st->mu);
	int rc = status_locked(st, id, before);
	if (rc == STORE_OK) {
		if (*before == JOB_QUEUED)
			rc = run_id(st, "UPDATE jobs SET status = 'cancelled', finished_at = ?2, "
				    "cancel_requested = 1, resume_pending = 0 WHERE id = ?1",
				    id, now, NULL);
		else if (*before == JOB_RUNNING)
			rc = run_id(st, "UPDATE jobs SET cancel_requested = 1 WHERE id = ?1",
				    id, NULL, NULL);
		else
			rc = STORE_CONFLICT;
	}
	pthread_mutex_unlock(&st->mu);
	return rc;
}

int store_job_delete(struct store *st, int64_t id, enum job_status *status)
{
	pthread_mutex_lock(&st->mu);
	int rc = status_locked(st, id, status);
	if (rc == STORE_OK && !job_status_final(*status))
		rc = STORE_CONFLICT;
	if (rc == STORE_OK)
		rc = run_id(st, "DELETE FROM jobs WHERE id = ?1", id, NULL, NULL);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

static void bind_opt(sqlite3_stmt *s, int i, bool present, double x)
{
	if (present)
		sqlite3_bind_double(s, i, x);
	else
		sqlite3_bind_null(s, i);
}

int store_epoch_commit(struct store *st, int64_t id, const struct metrics_row *r,
		       const char *checkpoint)
{
	int rc = STORE_ERR;
	sqlite3_stmt *s = NULL;
	pthread_mutex_lock(&st->mu);
	if (exec(st, "BEGIN IMMEDIATE")) {
		db_fail(st, "begin");
		goto out;
	}
	s = prepare(st, "INSERT OR REPLACE INTO metrics (job_id, " METRICS_COLUMNS ") "
			"VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
	if (!s)
		goto rollback;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int(s, 2, r->epoch);
	sqlite3_bind_double(s, 3, r->loss);
	bind_opt(s, 4, r->has_knn, r->knn_top1);
	bind_opt(s, 5, r->has_knn, r->knn_top5);
	for (int k = 0; k < 4; k++)
		bind_opt(s, 6 + k, r->unseen, r->recall_at[k]);
	bind_opt(s, 10, r->unseen, r->nmi);
	sqlite3_bind_double(s, 11, r->lr);
	sqlite3_bind_double(s, 12, r->seconds);
	sqlite3_bind_double(s, 13, r->images_per_sec);
	sqlite3_bind_int64(s, 14, r->images);
	if (sqlite3_step(s) != SQLITE_DONE) {
		db_fail(st, "insert metrics");
		goto rollback;
	}
	sqlite3_finalize(s);
	s = prepare(st, "UPDATE jobs SET epoch = ?2, checkpoint = COALESCE(?3, checkpoint), "
			"attempts = 0 WHERE id = ?1");
	if (!s)
		goto rollback;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int(s, 2, r->epoch);
	if (checkpoint)
		sqlite3_bind_text(s, 3, checkpoint, -1, SQLITE_STATIC);
	if (sqlite3_step(s) != SQLITE_DONE) {
		db_fail(st, "update epoch");
		goto rollback;
	}
	if (exec(st, "COMMIT")) {
		db_fail(st, "commit");
		goto rollback;
	}
	rc = STORE_OK;
	goto out;
rollback:
	exec(st, "ROLLBACK");
out:
	sqlite3_finalize(s);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

int store_job_set_checkpoint(struct store *st, int64_t id, const char *checkpoint)
{
	pthread_mutex_lock(&st->mu);
	int rc = run_id(st, "UPDATE jobs SET checkpoint = ?2, attempts = 0 WHERE id = ?1", id,
			checkpoint, NULL);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

int store_job_resumed(struct store *st, int64_t id, int from)
{
	char ep[16];
	snprintf(ep, sizeof ep, "%d", from);
	pthread_mutex_lock(&st->mu);
	int rc = STORE_ERR;
	if (exec(st, "BEGIN IMMEDIATE") == STORE_OK &&
	    run_id(st, "DELETE FROM metrics WHERE job_id = ?1 AND epoch > CAST(?2 AS INTEGER)",
		   id, ep, NULL) == STORE_OK &&
	    run_id(st, "UPDATE jobs SET epoch = CAST(?2 AS INTEGER), "
		   "resumed_from_epoch = CAST(?2 AS INTEGER), resume_pending = 0, "
		   "checkpoint = CASE WHEN CAST(?2 AS INTEGER) = 0 THEN NULL ELSE checkpoint END "
		   "WHERE id = ?1", id, ep, NULL) == STORE_OK &&
	    exec(st, "COMMIT") == STORE_OK)
		rc = STORE_OK;
	else
		exec(st, "ROLLBACK");
	pthread_mutex_unlock(&st->mu);
	return rc;
}

int store_job_checkpoint(struct store *st, int64_t id, char *rel, size_t len,
			 int *epoch)
{
	pthread_mutex_lock(&st->mu);
	int rc = STORE_ERR;
	sqlite3_stmt *s = prepare(st, "SELECT checkpoint, epoch FROM jobs WHERE id = ?");
	if (s) {
		sqlite3_bind_int64(s, 1, id);
		int step = sqlite3_step(s);
		if (step == SQLITE_ROW && sqlite3_column_type(s, 0) == SQLITE_NULL) {
			rc = STORE_EMPTY;
		} else if (step == SQLITE_ROW) {
			snprintf(rel, len, "%s", (const char *)sqlite3_column_text(s, 0));
			*epoch = sqlite3_column_int(s, 1);
			rc = STORE_OK;
		} else {
			rc = step == SQLITE_DONE ? STORE_NOTFOUND : db_fail(st, "checkpoint");
		}
	}
	sqlite3_finalize(s);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

int store_metrics(struct store *st, int64_t id, int since, struct metrics_row **rows,
		  int *n)
{
	int rc = STORE_OK, cap = 0;
	*rows = NULL;
	*n = 0;
	pthread_mutex_lock(&st->mu);
	sqlite3_stmt *s = prepare(st, "SELECT " METRICS_COLUMNS " FROM metrics "
				      "WHERE job_id = ? AND epoch > ? ORDER BY epoch");
	if (!s) {
		rc = STORE_ERR;
		goto out;
	}
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int(s, 2, since);
	int step;
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		if (*n == cap) {
			/* Epochs are at most 10000 per job, so this stays bounded. */
			cap = cap ? 2 * cap : 16;
			struct metrics_row *p = realloc(*rows, (size_t)cap * sizeof *p);
			if (!p) {
				rc = STORE_ERR;
				break;
			}
			*rows = p;
		}
		row_from_stmt(s, &(*rows)[(*n)++]);
	}
	if (rc == STORE_OK && step != SQLITE_DONE)
		rc = db_fail(st, "metrics");
out:
	sqlite3_finalize(s);
	pthread_mutex_unlock(&st->mu);
	if (rc) {
		free(*rows);
		*rows = NULL;
		*n = 0;
	}
	return rc;
}

/* ---- datasets and counts ----------------------------------------------- */

int store_dataset_lookup(struct store *st, const char *name, char *format,
			 size_t format_len, char *path, size_t path_len)
{
	pthread_mutex_lock(&st->mu);
	int rc = STORE_ERR;
	sqlite3_stmt *s = prepare(st, "SELECT format, path FROM datasets WHERE name = ?");
	if (s) {
		sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
		int step = sqlite3_step(s);
		if (step == SQLITE_ROW) {
			snprintf(format, format_len, "%s", (const char *)sqlite3_column_text(s, 0));
			snprintf(path, path_len, "%s", (const char *)sqlite3_column_text(s, 1));
			rc = STORE_OK;
		} else {
			rc = step == SQLITE_DONE ? STORE_NOTFOUND : db_fail(st, "dataset");
		}
	}
	sqlite3_finalize(s);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

int store_count_by_status(struct store *st, long counts[JOB_STATUS_COUNT])
{
	for (int i = 0; i < JOB_STATUS_COUNT; i++)
		counts[i] = 0;
	pthread_mutex_lock(&st->mu);
	int rc = STORE_OK;
	sqlite3_stmt *s = prepare(st, "SELECT status, COUNT(*) FROM jobs GROUP BY status");
	if (!s) {
		rc = STORE_ERR;
	} else {
		while (sqlite3_step(s) == SQLITE_ROW) {
			int k = job_status_parse((const char *)sqlite3_column_text(s, 0));
			if (k >= 0)
				counts[k] = sqlite3_column_int64(s, 1);
		}
	}
	sqlite3_finalize(s);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

/* ---- access for store_*.c extension files ------------------------------- */

sqlite3 *store_lock(struct store *st)
{
	pthread_mutex_lock(&st->mu);
	return st->db;
}

void store_unlock(struct store *st)
{
	pthread_mutex_unlock(&st->mu);
}

int store_fail(struct store *st, const char *what)
{
	return db_fail(st, what);
}

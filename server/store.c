/*
 * server/store.c — SQLite storage of isifd (see store.h). One connection,
 * WAL journal, synchronous=FULL (an epoch's row is durable when the commit
 * returns), foreign keys on, a busy timeout for outside readers such as the
 * sqlite3 shell. A mutex serialises users of the connection, so each
 * function's statements run as a unit.
 *
 * Errors: a failing call writes SQLite's message into the caller's err
 * before it releases the mutex (sqlite3_errmsg describes the connection's
 * latest statement, so it must be read at once, by the thread holding the
 * lock). A ROLLBACK after a failure never replaces the first message:
 * SQLite rolls some failures (SQLITE_FULL, SQLITE_IOERR) back by itself, and
 * the ROLLBACK then only reports "no transaction is active".
 */
#include "store.h"

#include <sqlite3.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

struct store {
	sqlite3 *db;
	pthread_mutex_t mu;
	atomic_llong index_gen;   /* store_index_generation */
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

/* Writes SQLite's message for the connection's last statement into err
 * and the log; returns ISIF_EIO. Mutex held. `what` (often the SQL) is cut
 * short so that the message, the cause, always fits. */
static enum isif_rc db_fail(struct store *st, const char *what, struct isif_error *err)
{
	struct isif_error e;
	isif_fail(&e, ISIF_EIO, "%.120s: %s", what, sqlite3_errmsg(st->db));
	log_error("store: %s", e.msg);
	if (err)
		*err = e;
	return ISIF_EIO;
}

static enum isif_rc exec(struct store *st, const char *sql, struct isif_error *err)
{
	char *msg = NULL;
	if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		isif_fail(err, ISIF_EIO, "%s", msg ? msg : "?");
		sqlite3_free(msg);
		return ISIF_EIO;
	}
	return ISIF_OK;
}

/* Ends a failed transaction, if SQLite has not already rolled it back, and
 * leaves the caller's err (the first error) alone; a failing ROLLBACK is
 * only logged. */
static void rollback(struct store *st)
{
	if (sqlite3_get_autocommit(st->db))
		return;
	char *msg = NULL;
	if (sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, &msg) != SQLITE_OK)
		log_error("store: rollback: %s", msg ? msg : "?");
	sqlite3_free(msg);
}

static sqlite3_stmt *prepare(struct store *st, const char *sql, struct isif_error *err)
{
	sqlite3_stmt *s = NULL;
	if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK) {
		db_fail(st, "prepare", err);
		return NULL;
	}
	return s;
}

/* ---- opening and migrations -------------------------------------------- */

static enum isif_rc pragma_int(struct store *st, const char *sql, int *out,
			       struct isif_error *err)
{
	sqlite3_stmt *s = prepare(st, sql, err);
	if (!s)
		return ISIF_EIO;
	enum isif_rc rc = sqlite3_step(s) == SQLITE_ROW ? ISIF_OK : db_fail(st, sql, err);
	if (rc == ISIF_OK)
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

static enum isif_rc migrate(struct store *st, const struct migration *m, int n, struct isif_error *err)
{
	int version = 0;
	struct isif_error e;
	if (pragma_int(st, "PRAGMA user_version", &version, &e))
		return isif_fail(err, ISIF_EIO, "reading the schema version: %s", e.msg);
	if (version > n)
		return isif_fail(err, ISIF_EFORMAT, "database schema version %d is newer than this "
				 "isifd (%d)", version, n);
	for (int i = version; i < n; i++) {
		char sql[64];
		if (migration_version(m[i].name) != i + 1)
			return isif_fail(err, ISIF_EINVAL, "migration %s: expected number %03d",
					 m[i].name, i + 1);
		snprintf(sql, sizeof sql, "PRAGMA user_version = %d", i + 1);
		if (exec(st, "BEGIN IMMEDIATE", &e) || exec(st, m[i].sql, &e) || exec(st, sql, &e) ||
		    exec(st, "COMMIT", &e)) {
			rollback(st);
			return isif_fail(err, ISIF_EIO, "migration %s: %s", m[i].name, e.msg);
		}
		log_info("store: applied migration %s", m[i].name);
	}
	return ISIF_OK;
}

/*
 * PRAGMA quick_check (the b-tree structure of every page, not the index
 * contents; linear in the file size, milliseconds for isifd's database). A
 * damaged file would otherwise open fine and fail request by request later.
 */
static enum isif_rc check_integrity(struct store *st, struct isif_error *err)
{
	sqlite3_stmt *s = prepare(st, "PRAGMA quick_check(3)", err);
	if (!s)
		return ISIF_EIO;
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
		return ISIF_OK;
	return isif_fail(err, ISIF_EFORMAT, "the database is damaged (quick_check: %s); isifd "
			 "will not use it: restore a backup or move the file away", found);
}

enum isif_rc store_open(struct store **out, const char *path,
	       const struct migration *migrations, int n, struct isif_error *err)
{
	struct store *st = calloc(1, sizeof *st);
	struct isif_error e;
	if (!st)
		return isif_fail(err, ISIF_ENOMEM, "out of memory");
	pthread_mutex_init(&st->mu, NULL);
	atomic_init(&st->index_gen, 1);
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX;
	if (sqlite3_open_v2(path, &st->db, flags, NULL) != SQLITE_OK) {
		isif_fail(err, ISIF_EIO, "%s: %s", path, st->db ? sqlite3_errmsg(st->db) : "cannot open");
		store_close(st);
		return ISIF_EIO;
	}
	sqlite3_busy_timeout(st->db, 5000);
	if (exec(st, "PRAGMA journal_mode = WAL", &e) || exec(st, "PRAGMA synchronous = FULL", &e) ||
	    exec(st, "PRAGMA foreign_keys = ON", &e)) {
		isif_fail(err, ISIF_EIO, "%s: %s", path, e.msg);
		store_close(st);
		return ISIF_EIO;
	}
	enum isif_rc rc = check_integrity(st, err);
	if (rc == ISIF_OK)
		rc = migrate(st, migrations, n, err);
	if (rc) {
		store_close(st);
		return rc;
	}
	*out = st;
	return ISIF_OK;
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

enum isif_rc store_schema_version(struct store *st, int *version, struct isif_error *err)
{
	pthread_mutex_lock(&st->mu);
	enum isif_rc rc = pragma_int(st, "PRAGMA user_version", version, err);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

/* ---- jobs ------------------------------------------------------------------ */

enum isif_rc store_job_insert(struct store *st, const char *spec_json, const char *dataset,
		     int epochs, int priority, long max_queued, int64_t *id,
		     struct isif_error *err)
{
	return store_job_insert_estimated(st, spec_json, dataset, epochs, priority, -1,
					  max_queued, id, err);
}

enum isif_rc store_job_insert_estimated(struct store *st, const char *spec_json,
					const char *dataset, int epochs, int priority,
					int64_t memory_estimate, long max_queued, int64_t *id,
					struct isif_error *err)
{
	char now[32];
	enum isif_rc rc = ISIF_EIO;
	int queued = 0;
	sqlite3_stmt *s = NULL;
	iso8601_now(now, sizeof now);
	pthread_mutex_lock(&st->mu);
	if (exec(st, "BEGIN IMMEDIATE", NULL)) {
		db_fail(st, "begin", err);
		goto out;
	}
	if (pragma_int(st, "SELECT COUNT(*) FROM jobs WHERE status = 'queued'", &queued, err))
		goto rollback;
	if (queued >= max_queued) {
		rc = isif_fail(err, ISIF_EBUSY, "the queue is full (%d jobs queued)", queued);
		goto rollback;
	}
	s = prepare(st, "INSERT INTO jobs (spec, dataset, epochs, priority, created_at, "
			"memory_estimate) VALUES (?, ?, ?, ?, ?, ?)", err);
	if (!s)
		goto rollback;
	sqlite3_bind_text(s, 1, spec_json, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, dataset, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 3, epochs);
	sqlite3_bind_int(s, 4, priority);
	sqlite3_bind_text(s, 5, now, -1, SQLITE_STATIC);
	if (memory_estimate >= 0)
		sqlite3_bind_int64(s, 6, memory_estimate);
	if (sqlite3_step(s) != SQLITE_DONE) {
		db_fail(st, "insert job", err);
		goto rollback;
	}
	*id = sqlite3_last_insert_rowid(st->db);
	if (exec(st, "COMMIT", NULL)) {
		db_fail(st, "commit", err);
		goto rollback;
	}
	rc = ISIF_OK;
	goto out;
rollback:
	rollback(st);
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
	"recall_at_4, recall_at_8, nmi, lr, seconds, images_per_sec, images, data_wait, " \
	"probe_top1, probe_backbone_top1"
/* Read beside METRICS_COLUMNS: the epoch's similarity means (NULL: none). */
#define SIM_MEANS ", (SELECT s.same_sum / s.same_pairs FROM similarity s WHERE " \
	"s.job_id = metrics.job_id AND s.epoch = metrics.epoch), (SELECT s.diff_sum / " \
	"s.diff_pairs FROM similarity s WHERE s.job_id = metrics.job_id AND s.epoch = " \
	"metrics.epoch), EXISTS (SELECT 1 FROM similarity s WHERE s.job_id = metrics.job_id " \
	"AND s.epoch = metrics.epoch)"

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
	r->data_wait = sqlite3_column_type(s, 13) == SQLITE_NULL ? NAN : sqlite3_column_double(s, 13);
	r->has_probe = sqlite3_column_type(s, 14) != SQLITE_NULL;
	r->probe_top1 = sqlite3_column_double(s, 14);
	r->probe_backbone_top1 = sqlite3_column_double(s, 15);
	r->has_sim = sqlite3_column_int(s, 18) != 0;
	r->sim_same_mean = sqlite3_column_type(s, 16) == SQLITE_NULL ? NAN
		: sqlite3_column_double(s, 16);
	r->sim_diff_mean = sqlite3_column_type(s, 17) == SQLITE_NULL ? NAN
		: sqlite3_column_double(s, 17);
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
	json_object_set_new(o, "probe_top1", r->has_probe ? json_real(r->probe_top1) : json_null());
	json_object_set_new(o, "probe_backbone_top1",
			    r->has_probe ? json_real(r->probe_backbone_top1) : json_null());
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
	if (r->has_sim) {
		json_object_set_new(o, "sim_same_mean", isfinite(r->sim_same_mean)
				    ? json_real(r->sim_same_mean) : json_null());
		json_object_set_new(o, "sim_diff_mean", isfinite(r->sim_diff_mean)
				    ? json_real(r->sim_diff_mean) : json_null());
	}
	return o;
}

static json_t *last_metrics(struct store *st, int64_t id)
{
	sqlite3_stmt *s = prepare(st, "SELECT " METRICS_COLUMNS SIM_MEANS " FROM metrics "
				      "WHERE job_id = ? ORDER BY epoch DESC LIMIT 1", NULL);
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
	"finished_at, error, resumed_from_epoch, cancel_requested, threads, memory_estimate"

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
	json_object_set_new(o, "threads", store_column_json(s, 12));
	json_object_set_new(o, "memory_estimate_bytes", store_column_json(s, 13));
	return o;
}

/* ISIF_ENOTFOUND with its message for job id. */
static enum isif_rc no_job(int64_t id, struct isif_error *err)
{
	return isif_fail(err, ISIF_ENOTFOUND, "no job %lld", (long long)id);
}

enum isif_rc store_job_json(struct store *st, int64_t id, json_t **out, struct isif_error *err)
{
	enum isif_rc rc = ISIF_EIO;
	pthread_mutex_lock(&st->mu);
	sqlite3_stmt *s = prepare(st, "SELECT " JOB_COLUMNS " FROM jobs WHERE id = ?", err);
	if (s) {
		sqlite3_bind_int64(s, 1, id);
		int step = sqlite3_step(s);
		if (step == SQLITE_ROW) {
			*out = job_from_stmt(st, s);
			rc = *out ? ISIF_OK : isif_fail(err, ISIF_ENOMEM, "out of memory");
		} else {
			rc = step == SQLITE_DONE ? no_job(id, err) : db_fail(st, "job", err);
		}
	}
	sqlite3_finalize(s);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

enum isif_rc store_jobs_json(struct store *st, int status, int limit, json_t **out,
			     struct isif_error *err)
{
	enum isif_rc rc = ISIF_OK;
	json_t *arr = json_array();
	pthread_mutex_lock(&st->mu);
	sqlite3_stmt *s = prepare(st, "SELECT " JOB_COLUMNS " FROM jobs "
				      "WHERE ?1 < 0 OR status = ?2 ORDER BY id DESC LIMIT ?3", err);
	if (!s) {
		rc = ISIF_EIO;
		goto out;
	}
	sqlite3_bind_int(s, 1, status);
	sqlite3_bind_text(s, 2, job_status_name(status < 0 ? 0 : status), -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 3, limit);
	int step;
	while ((step = sqlite3_step(s)) == SQLITE_ROW)
		json_array_append_new(arr, job_from_stmt(st, s));
	if (step != SQLITE_DONE)
		rc = db_fail(st, "jobs", err);
out:
	sqlite3_finalize(s);
	pthread_mutex_unlock(&st->mu);
	if (rc) {
		json_decref(arr);
		return rc;
	}
	*out = json_pack("{s:o}", "jobs", arr);
	return *out ? ISIF_OK : isif_fail(err, ISIF_ENOMEM, "out of memory");
}

/* Status of job id with the mutex held. */
static enum isif_rc status_locked(struct store *st, int64_t id, enum job_status *status,
				  struct isif_error *err)
{
	sqlite3_stmt *s = prepare(st, "SELECT status FROM jobs WHERE id = ?", err);
	if (!s)
		return ISIF_EIO;
	sqlite3_bind_int64(s, 1, id);
	enum isif_rc rc;
	int step = sqlite3_step(s);
	if (step == SQLITE_ROW) {
		*status = (enum job_status)job_status_parse((const char *)sqlite3_column_text(s, 0));
		rc = ISIF_OK;
	} else {
		rc = step == SQLITE_DONE ? no_job(id, err) : db_fail(st, "status", err);
	}
	sqlite3_finalize(s);
	return rc;
}

enum isif_rc store_job_status(struct store *st, int64_t id, enum job_status *status,
			      struct isif_error *err)
{
	pthread_mutex_lock(&st->mu);
	enum isif_rc rc = status_locked(st, id, status, err);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

/* Runs one statement binding ?1 = id (and ?2.. text args) with the mutex held. */
static enum isif_rc run_id(struct store *st, const char *sql, int64_t id, const char *a2,
			   const char *a3, struct isif_error *err)
{
	sqlite3_stmt *s = prepare(st, sql, err);
	if (!s)
		return ISIF_EIO;
	sqlite3_bind_int64(s, 1, id);
	if (a2)
		sqlite3_bind_text(s, 2, a2, -1, SQLITE_STATIC);
	if (a3)
		sqlite3_bind_text(s, 3, a3, -1, SQLITE_STATIC);
	enum isif_rc rc = sqlite3_step(s) == SQLITE_DONE ? ISIF_OK : db_fail(st, sql, err);
	sqlite3_finalize(s);
	return rc;
}

static char *dup_text(sqlite3_stmt *s, int col)
{
	const unsigned char *t = sqlite3_column_text(s, col);
	return t ? strdup((const char *)t) : NULL;
}

enum isif_rc store_job_claim(struct store *st, struct job_claim *c, struct isif_error *err)
{
	char now[32];
	enum isif_rc rc = ISIF_EIO;
	memset(c, 0, sizeof *c);
	iso8601_now(now, sizeof now);
	pthread_mutex_lock(&st->mu);
	if (exec(st, "BEGIN IMMEDIATE", NULL)) {
		db_fail(st, "begin", err);
		pthread_mutex_unlock(&st->mu);
		return ISIF_EIO;
	}
	sqlite3_stmt *s = prepare(st, "SELECT id, spec, epoch, checkpoint, resume_pending FROM jobs "
				      "WHERE status = 'queued' "
				      "ORDER BY resume_pending DESC, priority DESC, id LIMIT 1", err);
	if (!s)
		goto rollback;
	int step = sqlite3_step(s);
	if (step == SQLITE_DONE) {
		rc = isif_fail(err, ISIF_EEMPTY, "no queued job");
		goto rollback;
	}
	if (step != SQLITE_ROW) {
		db_fail(st, "claim", err);
		goto rollback;
	}
	c->id = sqlite3_column_int64(s, 0);
	c->spec_json = dup_text(s, 1);
	c->epoch = sqlite3_column_int(s, 2);
	c->checkpoint = dup_text(s, 3);
	c->resume = sqlite3_column_int(s, 4) != 0;
	if (!c->spec_json) {
		rc = isif_fail(err, ISIF_ENOMEM, "out of memory");
		goto rollback;
	}
	if (run_id(st, "UPDATE jobs SET status = 'running', attempts = attempts + 1, "
		       "started_at = COALESCE(started_at, ?2) WHERE id = ?1", c->id, now, NULL, err))
		goto rollback;
	if (exec(st, "COMMIT", NULL)) {
		db_fail(st, "commit", err);
		goto rollback;
	}
	rc = ISIF_OK;
	goto out;
rollback:
	rollback(st);
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

enum isif_rc store_job_finish(struct store *st, int64_t id, enum job_status status,
		     const char *error, struct isif_error *err)
{
	char now[32];
	iso8601_now(now, sizeof now);
	pthread_mutex_lock(&st->mu);
	sqlite3_stmt *s = prepare(st, "UPDATE jobs SET status = ?2, finished_at = ?3, error = ?4, "
				      "resume_pending = 0 WHERE id = ?1", err);
	enum isif_rc rc = ISIF_EIO;
	if (s) {
		sqlite3_bind_int64(s, 1, id);
		sqlite3_bind_text(s, 2, job_status_name(status), -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 3, now, -1, SQLITE_STATIC);
		if (error)
			sqlite3_bind_text(s, 4, error, -1, SQLITE_STATIC);
		rc = sqlite3_step(s) == SQLITE_DONE ? ISIF_OK : db_fail(st, "finish", err);
	}
	sqlite3_finalize(s);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

enum isif_rc store_job_requeue(struct store *st, int64_t id, struct isif_error *err)
{
	pthread_mutex_lock(&st->mu);
	/* A run ended on purpose does not count against --max-attempts. */
	enum isif_rc rc = run_id(st, "UPDATE jobs SET status = 'queued', resume_pending = 1, "
				     "attempts = MAX(attempts - 1, 0) "
				     "WHERE id = ?1 AND status = 'running'", id, NULL, NULL, err);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

enum isif_rc store_job_retry(struct store *st, int64_t id, const char *error, int max_attempts,
			     bool *retried, int *attempts, struct isif_error *err)
{
	*retried = false;
	*attempts = 0;
	pthread_mutex_lock(&st->mu);
	sqlite3_stmt *s = prepare(st, "UPDATE jobs SET status = 'queued', resume_pending = 1, "
				      "error = ?2 WHERE id = ?1 AND status = 'running' AND "
				      "cancel_requested = 0 AND attempts < ?3 RETURNING attempts", err);
	enum isif_rc rc = s ? ISIF_OK : ISIF_EIO;
	if (s) {
		sqlite3_bind_int64(s, 1, id);
		sqlite3_bind_text(s, 2, error, -1, SQLITE_STATIC);
		sqlite3_bind_int(s, 3, max_attempts);
		int step = sqlite3_step(s);
		if (step == SQLITE_ROW) {
			*retried = true;
			*attempts = sqlite3_column_int(s, 0);
		} else if (step != SQLITE_DONE) {
			rc = db_fail(st, "retry", err);
		}
		sqlite3_finalize(s);
	}
	if (!rc && !*retried && (s = prepare(st, "SELECT attempts FROM jobs WHERE id = ?1", NULL))) {
		sqlite3_bind_int64(s, 1, id);
		if (sqlite3_step(s) == SQLITE_ROW)
			*attempts = sqlite3_column_int(s, 0);
		sqlite3_finalize(s);
	}
	pthread_mutex_unlock(&st->mu);
	return rc;
}

enum isif_rc store_fail_interrupted(struct store *st, int max_attempts, int *n,
				    struct isif_error *err)
{
	char now[32], max[16];
	*n = 0;
	if (max_attempts <= 0)
		return ISIF_OK;
	iso8601_now(now, sizeof now);
	snprintf(max, sizeof max, "%d", max_attempts);
	pthread_mutex_lock(&st->mu);
	sqlite3_stmt *s = prepare(st, "UPDATE jobs SET status = 'failed', finished_at = ?1, "
				      "resume_pending = 0, error = 'isifd stopped during ' || attempts || "
				      "' runs of this job in a row with no epoch completed in between; "
				      "giving up (--max-attempts ' || ?2 || ')' "
				      "WHERE status = 'running' AND attempts >= CAST(?2 AS INTEGER) "
				      "RETURNING id, attempts", err);
	enum isif_rc rc = s ? ISIF_OK : ISIF_EIO;
	int step;
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
			rc = db_fail(st, "fail interrupted jobs", err);
	}
	sqlite3_finalize(s);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

enum isif_rc store_end_cancelled(struct store *st, int *n, struct isif_error *err)
{
	char now[32];
	iso8601_now(now, sizeof now);
	*n = 0;
	pthread_mutex_lock(&st->mu);
	sqlite3_stmt *s = prepare(st, "UPDATE jobs SET status = 'cancelled', finished_at = ?1, "
				      "resume_pending = 0 WHERE cancel_requested = 1 AND "
				      "status IN ('running', 'queued') RETURNING id, epoch", err);
	enum isif_rc rc = s ? ISIF_OK : ISIF_EIO;
	int step;
	if (s) {
		sqlite3_bind_text(s, 1, now, -1, SQLITE_STATIC);
		while ((step = sqlite3_step(s)) == SQLITE_ROW) {
			log_info("job %lld: cancelled (its cancel was accepted before isifd stopped; "
				 "%d epochs kept)", (long long)sqlite3_column_int64(s, 0),
				 sqlite3_column_int(s, 1));
			(*n)++;
		}
		if (step != SQLITE_DONE)
			rc = db_fail(st, "end cancelled jobs", err);
	}
	sqlite3_finalize(s);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

enum isif_rc store_recover_running(struct store *st, int *n, struct isif_error *err)
{
	pthread_mutex_lock(&st->mu);
	enum isif_rc rc = exec(st, "UPDATE jobs SET status = 'queued', resume_pending = 1 "
				   "WHERE status = 'running'", NULL);
	*n = rc ? 0 : sqlite3_changes(st->db);
	if (rc)
		db_fail(st, "recover", err);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

enum isif_rc store_job_cancel(struct store *st, int64_t id, enum job_status *before,
			      struct isif_error *err)
{
	char now[32];
	iso8601_now(now, sizeof now);
	pthread_mutex_lock(&st->mu);
	enum isif_rc rc = status_locked(st, id, before, err);
	if (rc == ISIF_OK) {
		if (*before == JOB_QUEUED)
			rc = run_id(st, "UPDATE jobs SET status = 'cancelled', finished_at = ?2, "
				    "cancel_requested = 1, resume_pending = 0 WHERE id = ?1",
				    id, now, NULL, err);
		else if (*before == JOB_RUNNING)
			rc = run_id(st, "UPDATE jobs SET cancel_requested = 1 WHERE id = ?1",
				    id, NULL, NULL, err);
		else
			rc = isif_fail(err, ISIF_ECONFLICT, "job %lld already %s", (long long)id,
				       job_status_name(*before));
	}
	pthread_mutex_unlock(&st->mu);
	return rc;
}

enum isif_rc store_job_delete(struct store *st, int64_t id, enum job_status *status,
			      struct isif_error *err)
{
	pthread_mutex_lock(&st->mu);
	enum isif_rc rc = status_locked(st, id, status, err);
	if (rc == ISIF_OK && !job_status_final(*status))
		rc = isif_fail(err, ISIF_ECONFLICT, "job %lld is %s; cancel it first", (long long)id,
			       job_status_name(*status));
	if (rc == ISIF_OK)
		rc = run_id(st, "DELETE FROM jobs WHERE id = ?1", id, NULL, NULL, err);
	pthread_mutex_unlock(&st->mu);
	store_index_changed(st);   /* the job's index row went with it */
	return rc;
}

long long store_index_generation(struct store *st)
{
	return atomic_load(&st->index_gen);
}

void store_index_changed(struct store *st)
{
	atomic_fetch_add(&st->index_gen, 1);
}

static void bind_opt(sqlite3_stmt *s, int i, bool present, double x)
{
	if (present)
		sqlite3_bind_double(s, i, x);
	else
		sqlite3_bind_null(s, i);
}

/* A histogram's counts as a JSON array text; false when out does not fit. */
static bool counts_text(const struct isif_simhist_part *p, char *out, size_t cap)
{
	size_t at = 0;
	for (int b = 0; b < ISIF_SIMHIST_BINS; b++) {
		int k = snprintf(out + at, cap - at, "%s%lld", b ? "," : "[", (long long)p->counts[b]);
		if (k < 0 || (size_t)k >= cap - at)
			return false;
		at += (size_t)k;
	}
	return at + 2 <= cap && snprintf(out + at, cap - at, "]") == 1;
}

/* The similarity row of an epoch, inside store_epoch_commit's transaction. */
static enum isif_rc insert_similarity(struct store *st, int64_t id, int epoch,
				      const struct isif_simhist *h, struct isif_error *err)
{
	char same[ISIF_SIMHIST_BINS * 21 + 4], diff[ISIF_SIMHIST_BINS * 21 + 4];
	if (!counts_text(&h->same, same, sizeof same) || !counts_text(&h->diff, diff, sizeof diff))
		return isif_fail(err, ISIF_EIO, "similarity counts do not fit");
	sqlite3_stmt *s = prepare(st, "INSERT OR REPLACE INTO similarity (job_id, epoch, bins, "
				      "same_pairs, same_sum, same_counts, diff_pairs, diff_sum, "
				      "diff_counts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", err);
	if (!s)
		return ISIF_EIO;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int(s, 2, epoch);
	sqlite3_bind_int(s, 3, ISIF_SIMHIST_BINS);
	sqlite3_bind_int64(s, 4, h->same.pairs);
	sqlite3_bind_double(s, 5, h->same.sum);
	sqlite3_bind_text(s, 6, same, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 7, h->diff.pairs);
	sqlite3_bind_double(s, 8, h->diff.sum);
	sqlite3_bind_text(s, 9, diff, -1, SQLITE_STATIC);
	enum isif_rc rc = sqlite3_step(s) == SQLITE_DONE ? ISIF_OK
		: db_fail(st, "insert similarity", err);
	sqlite3_finalize(s);
	return rc;
}

enum isif_rc store_epoch_commit(struct store *st, int64_t id, const struct metrics_row *r,
		       const char *checkpoint, struct isif_error *err)
{
	enum isif_rc rc = ISIF_EIO;
	sqlite3_stmt *s = NULL;
	pthread_mutex_lock(&st->mu);
	if (exec(st, "BEGIN IMMEDIATE", NULL)) {
		db_fail(st, "begin", err);
		goto out;
	}
	s = prepare(st, "INSERT OR REPLACE INTO metrics (job_id, " METRICS_COLUMNS ") "
			"VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", err);
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
	bind_opt(s, 15, isfinite(r->data_wait), r->data_wait);
	bind_opt(s, 16, r->has_probe, r->probe_top1);
	bind_opt(s, 17, r->has_probe, r->probe_backbone_top1);
	if (sqlite3_step(s) != SQLITE_DONE) {
		db_fail(st, "insert metrics", err);
		goto rollback;
	}
	sqlite3_finalize(s);
	s = NULL;
	if (r->sim && insert_similarity(st, id, r->epoch, r->sim, err))
		goto rollback;
	s = prepare(st, "UPDATE jobs SET epoch = ?2, checkpoint = COALESCE(?3, checkpoint), "
			"attempts = 0 WHERE id = ?1", err);
	if (!s)
		goto rollback;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int(s, 2, r->epoch);
	if (checkpoint)
		sqlite3_bind_text(s, 3, checkpoint, -1, SQLITE_STATIC);
	if (sqlite3_step(s) != SQLITE_DONE) {
		db_fail(st, "update epoch", err);
		goto rollback;
	}
	if (exec(st, "COMMIT", NULL)) {
		db_fail(st, "commit", err);
		goto rollback;
	}
	rc = ISIF_OK;
	goto out;
rollback:
	rollback(st);
out:
	sqlite3_finalize(s);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

enum isif_rc store_job_set_threads(struct store *st, int64_t id, int threads,
				   struct isif_error *err)
{
	char text[16];
	snprintf(text, sizeof text, "%d", threads);
	pthread_mutex_lock(&st->mu);
	enum isif_rc rc = run_id(st, "UPDATE jobs SET threads = CAST(?2 AS INTEGER) WHERE id = ?1",
				 id, text, NULL, err);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

enum isif_rc store_job_set_checkpoint(struct store *st, int64_t id, const char *checkpoint,
				      struct isif_error *err)
{
	pthread_mutex_lock(&st->mu);
	enum isif_rc rc = run_id(st, "UPDATE jobs SET checkpoint = ?2, attempts = 0 WHERE id = ?1",
				 id, checkpoint, NULL, err);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

enum isif_rc store_job_resumed(struct store *st, int64_t id, int from, struct isif_error *err)
{
	char ep[16];
	snprintf(ep, sizeof ep, "%d", from);
	pthread_mutex_lock(&st->mu);
	enum isif_rc rc = exec(st, "BEGIN IMMEDIATE", err);
	if (rc == ISIF_OK)
		rc = run_id(st, "DELETE FROM metrics WHERE job_id = ?1 AND epoch > CAST(?2 AS INTEGER)",
			    id, ep, NULL, err);
	if (rc == ISIF_OK)
		rc = run_id(st, "DELETE FROM similarity WHERE job_id = ?1 AND "
			    "epoch > CAST(?2 AS INTEGER)", id, ep, NULL, err);
	if (rc == ISIF_OK)
		rc = run_id(st, "UPDATE jobs SET epoch = CAST(?2 AS INTEGER), "
			    "resumed_from_epoch = CAST(?2 AS INTEGER), resume_pending = 0, "
			    "checkpoint = CASE WHEN CAST(?2 AS INTEGER) = 0 THEN NULL ELSE checkpoint END "
			    "WHERE id = ?1", id, ep, NULL, err);
	if (rc == ISIF_OK)
		rc = exec(st, "COMMIT", err);
	if (rc)
		rollback(st);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

enum isif_rc store_job_checkpoint(struct store *st, int64_t id, char *rel, size_t len,
			 int *epoch, struct isif_error *err)
{
	pthread_mutex_lock(&st->mu);
	enum isif_rc rc = ISIF_EIO;
	sqlite3_stmt *s = prepare(st, "SELECT checkpoint, epoch FROM jobs WHERE id = ?", err);
	if (s) {
		sqlite3_bind_int64(s, 1, id);
		int step = sqlite3_step(s);
		if (step == SQLITE_ROW && sqlite3_column_type(s, 0) == SQLITE_NULL) {
			rc = isif_fail(err, ISIF_EEMPTY, "job %lld has no checkpoint yet",
				       (long long)id);
		} else if (step == SQLITE_ROW) {
			snprintf(rel, len, "%s", (const char *)sqlite3_column_text(s, 0));
			*epoch = sqlite3_column_int(s, 1);
			rc = ISIF_OK;
		} else {
			rc = step == SQLITE_DONE ? no_job(id, err) : db_fail(st, "checkpoint", err);
		}
	}
	sqlite3_finalize(s);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

enum isif_rc store_metrics(struct store *st, int64_t id, int since, struct metrics_row **rows,
		  int *n, struct isif_error *err)
{
	enum isif_rc rc = ISIF_OK;
	int cap = 0;
	*rows = NULL;
	*n = 0;
	pthread_mutex_lock(&st->mu);
	sqlite3_stmt *s = prepare(st, "SELECT " METRICS_COLUMNS SIM_MEANS " FROM metrics "
				      "WHERE job_id = ? AND epoch > ? ORDER BY epoch", err);
	if (!s) {
		rc = ISIF_EIO;
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
				rc = isif_fail(err, ISIF_ENOMEM, "out of memory");
				break;
			}
			*rows = p;
		}
		row_from_stmt(s, &(*rows)[(*n)++]);
	}
	if (rc == ISIF_OK && step != SQLITE_DONE)
		rc = db_fail(st, "metrics", err);
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

/* ---- similarity histograms ------------------------------------------------ */

/* {"pairs", "mean", "counts"} of one kind from columns col.. (pairs, sum, counts). */
static json_t *similarity_part(sqlite3_stmt *s, int col)
{
	int64_t pairs = sqlite3_column_int64(s, col);
	double sum = sqlite3_column_double(s, col + 1);
	const char *text = (const char *)sqlite3_column_text(s, col + 2);
	json_t *counts = text ? json_loads(text, 0, NULL) : NULL;
	return json_pack("{s:I, s:o, s:o}", "pairs", (json_int_t)pairs,
			 "mean", pairs > 0 ? json_real(sum / (double)pairs) : json_null(),
			 "counts", counts ? counts : json_array());
}

/* The epochs job id has histograms of, ascending. */
static enum isif_rc similarity_epochs(struct store *st, int64_t id, json_t *epochs,
				      struct isif_error *err)
{
	sqlite3_stmt *s = prepare(st, "SELECT epoch FROM similarity WHERE job_id = ? "
				      "ORDER BY epoch", err);
	if (!s)
		return ISIF_EIO;
	sqlite3_bind_int64(s, 1, id);
	int step;
	while ((step = sqlite3_step(s)) == SQLITE_ROW)
		json_array_append_new(epochs, json_integer(sqlite3_column_int(s, 0)));
	sqlite3_finalize(s);
	return step == SQLITE_DONE ? ISIF_OK : db_fail(st, "similarity epochs", err);
}

enum isif_rc store_similarity(struct store *st, int64_t id, int epoch, json_t **out,
			      struct isif_error *err)
{
	*out = NULL;
	json_t *epochs = json_array();
	if (!epochs)
		return isif_fail(err, ISIF_ENOMEM, "out of memory");
	pthread_mutex_lock(&st->mu);
	sqlite3_stmt *s = NULL;
	enum isif_rc rc = similarity_epochs(st, id, epochs, err);
	size_t n = json_array_size(epochs);
	if (rc == ISIF_OK && n == 0)
		rc = isif_fail(err, ISIF_EEMPTY, "job %lld has no similarity histograms (one is "
			       "made at each evaluation; none yet, or eval.every is 0)", (long long)id);
	if (rc == ISIF_OK)
		s = prepare(st, "SELECT epoch, bins, same_pairs, same_sum, same_counts, diff_pairs, "
				"diff_sum, diff_counts FROM similarity WHERE job_id = ?1 AND "
				"(?2 = 0 OR epoch = ?2) ORDER BY epoch DESC LIMIT 1", err);
	if (rc == ISIF_OK && !s)
		rc = ISIF_EIO;
	if (s) {
		sqlite3_bind_int64(s, 1, id);
		sqlite3_bind_int(s, 2, epoch);
		int step = sqlite3_step(s);
		if (step == SQLITE_ROW) {
			*out = json_pack("{s:I, s:i, s:O, s:i, s:[i, i], s:o, s:o}", "job",
					 (json_int_t)id, "epoch", sqlite3_column_int(s, 0),
					 "epochs", epochs, "bins", sqlite3_column_int(s, 1),
					 "range", -1, 1, "same", similarity_part(s, 2),
					 "different", similarity_part(s, 5));
			if (!*out)
				rc = isif_fail(err, ISIF_ENOMEM, "out of memory");
		} else if (step == SQLITE_DONE) {
			rc = isif_fail(err, ISIF_ENOTFOUND, "job %lld has no similarity histograms "
				       "for epoch %d (it has %zu, epochs %lld to %lld)", (long long)id,
				       epoch, n, (long long)json_integer_value(json_array_get(epochs, 0)),
				       (long long)json_integer_value(json_array_get(epochs, n - 1)));
		} else {
			rc = db_fail(st, "similarity", err);
		}
	}
	sqlite3_finalize(s);
	pthread_mutex_unlock(&st->mu);
	json_decref(epochs);
	return rc;
}

/* ---- datasets and counts ----------------------------------------------- */

enum isif_rc store_dataset_lookup(struct store *st, const char *name, char *format,
			 size_t format_len, char *path, size_t path_len, struct isif_error *err)
{
	pthread_mutex_lock(&st->mu);
	enum isif_rc rc = ISIF_EIO;
	sqlite3_stmt *s = prepare(st, "SELECT format, path FROM datasets WHERE name = ?", err);
	if (s) {
		sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
		int step = sqlite3_step(s);
		if (step == SQLITE_ROW) {
			snprintf(format, format_len, "%s", (const char *)sqlite3_column_text(s, 0));
			snprintf(path, path_len, "%s", (const char *)sqlite3_column_text(s, 1));
			rc = ISIF_OK;
		} else if (step == SQLITE_DONE) {
			rc = isif_fail(err, ISIF_ENOTFOUND, "unknown dataset \"%s\"", name);
		} else {
			rc = db_fail(st, "dataset", err);
		}
	}
	sqlite3_finalize(s);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

enum isif_rc store_count_by_status(struct store *st, long counts[JOB_STATUS_COUNT],
				   struct isif_error *err)
{
	for (int i = 0; i < JOB_STATUS_COUNT; i++)
		counts[i] = 0;
	pthread_mutex_lock(&st->mu);
	enum isif_rc rc = ISIF_OK;
	sqlite3_stmt *s = prepare(st, "SELECT status, COUNT(*) FROM jobs GROUP BY status", err);
	if (!s) {
		rc = ISIF_EIO;
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

enum isif_rc store_fail(struct store *st, const char *what, struct isif_error *err)
{
	return db_fail(st, what, err);
}

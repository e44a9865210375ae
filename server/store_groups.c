/*
 * server/store_groups.c — SQL of job groups (see store_groups.h), on the
 * store's connection through store_lock.
 */
#include "store_groups.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* Runs sql (no result rows) on the locked connection. */
static enum isif_rc run(struct store *st, sqlite3 *db, const char *sql, struct isif_error *err)
{
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return store_fail(st, sql, err);
	return ISIF_OK;
}

static void rollback(sqlite3 *db)
{
	if (!sqlite3_get_autocommit(db) && sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK)
		log_error("store: group rollback: %s", sqlite3_errmsg(db));
}

/* COUNT(*) of queued jobs. */
static enum isif_rc queued_count(struct store *st, sqlite3 *db, int64_t *n, struct isif_error *err)
{
	sqlite3_stmt *s = NULL;
	if (sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM jobs WHERE status = 'queued'", -1, &s,
			       NULL) != SQLITE_OK || sqlite3_step(s) != SQLITE_ROW) {
		enum isif_rc rc = store_fail(st, "count queued jobs", err);
		sqlite3_finalize(s);
		return rc;
	}
	*n = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return ISIF_OK;
}

static enum isif_rc insert_group(struct store *st, sqlite3 *db, const char *base,
				 const char *grid, int64_t *id, struct isif_error *err)
{
	char now[32];
	iso8601_now(now, sizeof now);
	sqlite3_stmt *s = NULL;
	enum isif_rc rc = ISIF_OK;
	if (sqlite3_prepare_v2(db, "INSERT INTO groups (base, grid, created_at) VALUES (?, ?, ?)",
			       -1, &s, NULL) != SQLITE_OK)
		return store_fail(st, "insert group", err);
	sqlite3_bind_text(s, 1, base, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, grid, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, now, -1, SQLITE_STATIC);
	if (sqlite3_step(s) != SQLITE_DONE)
		rc = store_fail(st, "insert group", err);
	else
		*id = sqlite3_last_insert_rowid(db);
	sqlite3_finalize(s);
	return rc;
}

static enum isif_rc insert_job(struct store *st, sqlite3 *db, int64_t group,
			       const struct group_job_in *j, int priority, int64_t *id,
			       struct isif_error *err)
{
	char now[32];
	iso8601_now(now, sizeof now);
	sqlite3_stmt *s = NULL, *m = NULL;
	enum isif_rc rc = ISIF_OK;
	if (sqlite3_prepare_v2(db, "INSERT INTO jobs (spec, dataset, epochs, priority, created_at, "
				   "memory_estimate) VALUES (?, ?, ?, ?, ?, ?)", -1, &s,
			       NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "INSERT INTO group_jobs (job_id, group_id, point, point_values, "
				   "job_values) VALUES (?, ?, ?, ?, ?)", -1, &m, NULL) != SQLITE_OK) {
		rc = store_fail(st, "insert group job", err);
		goto out;
	}
	sqlite3_bind_text(s, 1, j->spec_json, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, j->dataset, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 3, j->epochs);
	sqlite3_bind_int(s, 4, priority);
	sqlite3_bind_text(s, 5, now, -1, SQLITE_STATIC);
	if (j->memory_estimate >= 0)
		sqlite3_bind_int64(s, 6, j->memory_estimate);
	if (sqlite3_step(s) != SQLITE_DONE) {
		rc = store_fail(st, "insert group job", err);
		goto out;
	}
	*id = sqlite3_last_insert_rowid(db);
	sqlite3_bind_int64(m, 1, *id);
	sqlite3_bind_int64(m, 2, group);
	sqlite3_bind_int(m, 3, j->point);
	sqlite3_bind_text(m, 4, j->point_values, -1, SQLITE_STATIC);
	sqlite3_bind_text(m, 5, j->job_values, -1, SQLITE_STATIC);
	if (sqlite3_step(m) != SQLITE_DONE)
		rc = store_fail(st, "insert group job", err);
out:
	sqlite3_finalize(s);
	sqlite3_finalize(m);
	return rc;
}

enum isif_rc store_group_create(struct store *st, const char *base, const char *grid,
				const struct group_job_in *jobs, int n, int priority,
				long max_queued, int64_t *group_id, int64_t *ids,
				struct isif_error *err)
{
	sqlite3 *db = store_lock(st);
	int64_t queued = 0;
	enum isif_rc rc = run(st, db, "BEGIN IMMEDIATE", err);
	if (rc)
		goto out;
	if ((rc = queued_count(st, db, &queued, err)))
		goto rollback;
	if (queued + n > max_queued) {
		rc = isif_fail(err, ISIF_EBUSY, "the queue is full: %lld jobs queued, the group adds "
			       "%d, --max-queued is %ld", (long long)queued, n, max_queued);
		goto rollback;
	}
	if ((rc = insert_group(st, db, base, grid, group_id, err)))
		goto rollback;
	for (int i = 0; i < n; i++)
		if ((rc = insert_job(st, db, *group_id, &jobs[i], priority, &ids[i], err)))
			goto rollback;
	if ((rc = run(st, db, "COMMIT", err)) == ISIF_OK)
		goto out;
rollback:
	rollback(db);
out:
	store_unlock(st);
	return rc;
}

/* The group row as {"id", "base", "grid", "created_at"}; base and grid are
 * parsed back (they were stored from valid JSON). */
static json_t *group_from_stmt(sqlite3_stmt *s)
{
	json_t *base = json_loads((const char *)sqlite3_column_text(s, 1), 0, NULL);
	json_t *grid = json_loads((const char *)sqlite3_column_text(s, 2), 0, NULL);
	return json_pack("{s:I, s:o, s:o, s:s}", "id", (json_int_t)sqlite3_column_int64(s, 0),
			 "base", base ? base : json_null(), "grid", grid ? grid : json_null(),
			 "created_at", (const char *)sqlite3_column_text(s, 3));
}

static char *dup_col(sqlite3_stmt *s, int col)
{
	const char *t = (const char *)sqlite3_column_text(s, col);
	return strdup(t ? t : "{}");
}

void group_members_free(struct group_member *m, int n)
{
	for (int i = 0; m && i < n; i++) {
		free(m[i].point_values);
		free(m[i].job_values);
	}
	free(m);
}

static enum isif_rc read_members(struct store *st, sqlite3 *db, int64_t id,
				 struct group_member **out, int *n, struct isif_error *err)
{
	sqlite3_stmt *s = NULL;
	struct group_member *m = NULL;
	int len = 0, cap = 0, step;
	enum isif_rc rc = ISIF_OK;
	if (sqlite3_prepare_v2(db, "SELECT job_id, point, point_values, job_values FROM group_jobs "
				   "WHERE group_id = ? ORDER BY point, job_id", -1, &s,
			       NULL) != SQLITE_OK)
		return store_fail(st, "group jobs", err);
	sqlite3_bind_int64(s, 1, id);
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		if (len == cap) {
			cap = cap ? 2 * cap : 16;
			struct group_member *g = realloc(m, (size_t)cap * sizeof *m);
			if (!g) {
				rc = isif_fail(err, ISIF_ENOMEM, "out of memory");
				goto out;
			}
			m = g;
		}
		struct group_member *g = &m[len++];
		g->job = sqlite3_column_int64(s, 0);
		g->point = sqlite3_column_int(s, 1);
		g->point_values = dup_col(s, 2);
		g->job_values = dup_col(s, 3);
		if (!g->point_values || !g->job_values) {
			rc = isif_fail(err, ISIF_ENOMEM, "out of memory");
			goto out;
		}
	}
	if (step != SQLITE_DONE)
		rc = store_fail(st, "group jobs", err);
out:
	sqlite3_finalize(s);
	if (rc) {
		group_members_free(m, len);
		return rc;
	}
	*out = m;
	*n = len;
	return ISIF_OK;
}

enum isif_rc store_group_get(struct store *st, int64_t id, json_t **group,
			     struct group_member **members, int *n, struct isif_error *err)
{
	sqlite3 *db = store_lock(st);
	sqlite3_stmt *s = NULL;
	enum isif_rc rc;
	*group = NULL;
	if (sqlite3_prepare_v2(db, "SELECT id, base, grid, created_at FROM groups WHERE id = ?",
			       -1, &s, NULL) != SQLITE_OK) {
		rc = store_fail(st, "group", err);
		goto out;
	}
	sqlite3_bind_int64(s, 1, id);
	int step = sqlite3_step(s);
	if (step == SQLITE_DONE) {
		rc = isif_fail(err, ISIF_ENOTFOUND, "no group %lld", (long long)id);
	} else if (step != SQLITE_ROW) {
		rc = store_fail(st, "group", err);
	} else if (!(*group = group_from_stmt(s))) {
		rc = isif_fail(err, ISIF_ENOMEM, "out of memory");
	} else if ((rc = read_members(st, db, id, members, n, err))) {
		json_decref(*group);
		*group = NULL;
	}
out:
	sqlite3_finalize(s);
	store_unlock(st);
	return rc;
}

/* {"queued": n, ...} of the group's jobs, every status present. */
static enum isif_rc status_counts(struct store *st, sqlite3 *db, int64_t id, json_t *group,
				  struct isif_error *err)
{
	sqlite3_stmt *s = NULL;
	json_t *counts = json_object();
	int64_t total = 0;
	for (int i = 0; i < JOB_STATUS_COUNT; i++)
		json_object_set_new(counts, job_status_name(i), json_integer(0));
	if (sqlite3_prepare_v2(db, "SELECT j.status, COUNT(*) FROM group_jobs g JOIN jobs j ON "
				   "j.id = g.job_id WHERE g.group_id = ? GROUP BY j.status", -1, &s,
			       NULL) != SQLITE_OK) {
		json_decref(counts);
		return store_fail(st, "group status", err);
	}
	sqlite3_bind_int64(s, 1, id);
	int step;
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		int64_t c = sqlite3_column_int64(s, 1);
		json_object_set_new(counts, (const char *)sqlite3_column_text(s, 0), json_integer(c));
		total += c;
	}
	sqlite3_finalize(s);
	json_object_set_new(group, "n_jobs", json_integer(total));
	json_object_set_new(group, "status", counts);
	return step == SQLITE_DONE ? ISIF_OK : store_fail(st, "group status", err);
}

enum isif_rc store_groups_json(struct store *st, int limit, json_t **out, struct isif_error *err)
{
	sqlite3 *db = store_lock(st);
	sqlite3_stmt *s = NULL;
	json_t *arr = json_array();
	enum isif_rc rc = ISIF_OK;
	if (sqlite3_prepare_v2(db, "SELECT id, base, grid, created_at FROM groups ORDER BY id DESC "
				   "LIMIT ?", -1, &s, NULL) != SQLITE_OK) {
		rc = store_fail(st, "groups", err);
		goto out;
	}
	sqlite3_bind_int(s, 1, limit);
	int step;
	while (rc == ISIF_OK && (step = sqlite3_step(s)) == SQLITE_ROW) {
		json_t *g = group_from_stmt(s);
		if (!g) {
			rc = isif_fail(err, ISIF_ENOMEM, "out of memory");
			break;
		}
		json_array_append_new(arr, g);
		rc = status_counts(st, db, sqlite3_column_int64(s, 0), g, err);
	}
	if (rc == ISIF_OK && step != SQLITE_DONE)
		rc = store_fail(st, "groups", err);
out:
	sqlite3_finalize(s);
	store_unlock(st);
	if (rc) {
		json_decref(arr);
		return rc;
	}
	*out = json_pack("{s:o}", "groups", arr);
	return *out ? ISIF_OK : isif_fail(err, ISIF_ENOMEM, "out of memory");
}

enum isif_rc store_group_delete(struct store *st, int64_t id, struct isif_error *err)
{
	sqlite3 *db = store_lock(st);
	sqlite3_stmt *s = NULL;
	enum isif_rc rc = ISIF_OK;
	if (sqlite3_prepare_v2(db, "DELETE FROM groups WHERE id = ?", -1, &s, NULL) != SQLITE_OK) {
		rc = store_fail(st, "delete group", err);
	} else {
		sqlite3_bind_int64(s, 1, id);
		if (sqlite3_step(s) != SQLITE_DONE)
			rc = store_fail(st, "delete group", err);
		else if (sqlite3_changes(db) == 0)
			rc = isif_fail(err, ISIF_ENOTFOUND, "no group %lld", (long long)id);
	}
	sqlite3_finalize(s);
	store_unlock(st);
	return rc;
}

/*
 * server/store_items.c — SQL of the job_items table (see store_items.h),
 * on the store's connection through store_lock.
 */
#include "store_items.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* With the connection locked: runs one statement without results. */
static int exec(sqlite3 *db, const char *sql)
{
	return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

/* With the transaction open: the seq of job's item id, or -1 (-2 error). */
static int64_t seq_of(sqlite3 *db, int64_t job, const char *id)
{
	sqlite3_stmt *s = NULL;
	int64_t seq = -2;
	if (sqlite3_prepare_v2(db, "SELECT seq FROM job_items WHERE job_id = ? AND item_id = ?",
			       -1, &s, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(s, 1, job);
		sqlite3_bind_text(s, 2, id, -1, SQLITE_STATIC);
		int step = sqlite3_step(s);
		seq = step == SQLITE_ROW ? sqlite3_column_int64(s, 0) : step == SQLITE_DONE ? -1 : -2;
	}
	sqlite3_finalize(s);
	return seq;
}

static int64_t count_of(sqlite3 *db, int64_t job)
{
	sqlite3_stmt *s = NULL;
	int64_t n = -1;
	if (sqlite3_prepare_v2(db, "SELECT count(*) FROM job_items WHERE job_id = ?", -1, &s,
			       NULL) == SQLITE_OK) {
		sqlite3_bind_int64(s, 1, job);
		if (sqlite3_step(s) == SQLITE_ROW)
			n = sqlite3_column_int64(s, 0);
	}
	sqlite3_finalize(s);
	return n;
}

/* With the transaction open: removes replaced rows (or finds a conflict),
 * checks the bound, inserts. */
static enum isif_rc add_locked(struct store *st, sqlite3 *db, int64_t job,
			       const struct item_new *items, int n, int dim, bool replace,
			       int64_t max_items, struct item_added *out, struct isif_error *err)
{
	char now[32];
	iso8601_now(now, sizeof now);
	/* the job, checked inside the transaction: deleted or no longer
	 * succeeded since the route looked is 404 / 409, not a failed insert */
	sqlite3_stmt *js = NULL;
	if (sqlite3_prepare_v2(db, "SELECT status FROM jobs WHERE id = ?", -1, &js, NULL) != SQLITE_OK)
		return store_fail(st, "item job", err);
	sqlite3_bind_int64(js, 1, job);
	int step = sqlite3_step(js);
	char status[32] = "";
	if (step == SQLITE_ROW && sqlite3_column_text(js, 0))
		snprintf(status, sizeof status, "%s", (const char *)sqlite3_column_text(js, 0));
	sqlite3_finalize(js);
	if (step == SQLITE_DONE)
		return isif_fail(err, ISIF_ENOTFOUND, "no job %lld", (long long)job);
	if (step != SQLITE_ROW)
		return store_fail(st, "item job", err);
	if (strcmp(status, "succeeded") != 0)
		return isif_fail(err, ISIF_EBUSY, "job %lld is %s: items are added to the index of a "
				 "succeeded job", (long long)job, status);
	for (int i = 0; i < n; i++) {
		int64_t old = seq_of(db, job, items[i].id);
		if (old == -2)
			return store_fail(st, "item lookup", err);
		if (old >= 0 && !replace)
			return isif_fail(err, ISIF_ECONFLICT, "items[%d].id: \"%s\" is already in job "
					 "%lld's collection (delete it first, or add with replace)",
					 i, items[i].id, (long long)job);
		out[i].replaced = old;
		if (old >= 0) {
			sqlite3_stmt *s = NULL;
			int ok = sqlite3_prepare_v2(db, "DELETE FROM job_items WHERE seq = ?", -1, &s,
						    NULL) == SQLITE_OK;
			if (ok) {
				sqlite3_bind_int64(s, 1, old);
				ok = sqlite3_step(s) == SQLITE_DONE;
			}
			sqlite3_finalize(s);
			if (!ok)
				return store_fail(st, "item replace", err);
		}
	}
	int64_t have = count_of(db, job);
	if (have < 0)
		return store_fail(st, "item count", err);
	if (have + n > max_items)
		return isif_fail(err, ISIF_ERANGE, "items: job %lld's collection holds %lld items; "
				 "%d more would pass --max-items %lld", (long long)job,
				 (long long)have, n, (long long)max_items);
	sqlite3_stmt *s = NULL;
	if (sqlite3_prepare_v2(db, "INSERT INTO job_items (job_id, item_id, label, metadata, "
			       "embedding, created_at) VALUES (?, ?, ?, ?, ?, ?)", -1, &s,
			       NULL) != SQLITE_OK)
		return store_fail(st, "item insert", err);
	enum isif_rc rc = ISIF_OK;
	for (int i = 0; !rc && i < n; i++) {
		sqlite3_reset(s);
		sqlite3_bind_int64(s, 1, job);
		sqlite3_bind_text(s, 2, items[i].id, -1, SQLITE_STATIC);
		if (items[i].label >= 0)
			sqlite3_bind_int(s, 3, items[i].label);
		else
			sqlite3_bind_null(s, 3);
		if (items[i].metadata)
			sqlite3_bind_text(s, 4, items[i].metadata, -1, SQLITE_STATIC);
		else
			sqlite3_bind_null(s, 4);
		sqlite3_bind_blob(s, 5, items[i].emb, dim * (int)sizeof(float), SQLITE_STATIC);
		sqlite3_bind_text(s, 6, now, -1, SQLITE_STATIC);
		if (sqlite3_step(s) != SQLITE_DONE)
			rc = store_fail(st, "item insert", err);
		else
			out[i].seq = sqlite3_last_insert_rowid(db);
	}
	sqlite3_finalize(s);
	return rc;
}

enum isif_rc store_items_add(struct store *st, int64_t job, const struct item_new *items, int n,
			     int dim, bool replace, int64_t max_items, struct item_added *out,
			     struct isif_error *err)
{
	sqlite3 *db = store_lock(st);
	enum isif_rc rc;
	if (exec(db, "BEGIN IMMEDIATE") != SQLITE_OK) {
		rc = store_fail(st, "item add", err);
		store_unlock(st);
		return rc;
	}
	rc = add_locked(st, db, job, items, n, dim, replace, max_items, out, err);
	if (!rc && exec(db, "COMMIT") != SQLITE_OK)
		rc = store_fail(st, "item commit", err);
	if (rc)
		exec(db, "ROLLBACK");
	store_unlock(st);
	return rc;
}

enum isif_rc store_items_delete(struct store *st, int64_t job, const char *id, int64_t *seq,
				struct isif_error *err)
{
	sqlite3 *db = store_lock(st);
	sqlite3_stmt *s = NULL;
	enum isif_rc rc;
	if (sqlite3_prepare_v2(db, "DELETE FROM job_items WHERE job_id = ? AND item_id = ? "
			       "RETURNING seq", -1, &s, NULL) != SQLITE_OK) {
		rc = store_fail(st, "item delete", err);
		goto out;
	}
	sqlite3_bind_int64(s, 1, job);
	sqlite3_bind_text(s, 2, id, -1, SQLITE_STATIC);
	int step = sqlite3_step(s);
	if (step == SQLITE_ROW) {
		*seq = sqlite3_column_int64(s, 0);
		step = sqlite3_step(s);
	} else if (step == SQLITE_DONE) {
		*seq = -1;
	}
	if (step != SQLITE_DONE)
		rc = store_fail(st, "item delete", err);
	else if (*seq < 0)
		rc = isif_fail(err, ISIF_ENOTFOUND, "job %lld has no item \"%s\"", (long long)job, id);
	else
		rc = ISIF_OK;
out:
	sqlite3_finalize(s);
	store_unlock(st);
	return rc;
}

enum isif_rc store_items_each(struct store *st, int64_t job, int dim,
			      enum isif_rc (*fn)(void *arg, int64_t seq, const char *id,
						 int32_t label, const char *meta, const float *emb),
			      void *arg, struct isif_error *err)
{
	sqlite3 *db = store_lock(st);
	sqlite3_stmt *s = NULL;
	enum isif_rc rc = ISIF_OK;
	float *emb = malloc((size_t)dim * sizeof *emb);
	if (!emb) {
		rc = isif_fail(err, ISIF_ENOMEM, "items: out of memory");
		goto out;
	}
	if (sqlite3_prepare_v2(db, "SELECT seq, item_id, label, metadata, embedding FROM job_items "
			       "WHERE job_id = ? ORDER BY seq", -1, &s, NULL) != SQLITE_OK) {
		rc = store_fail(st, "item load", err);
		goto out;
	}
	sqlite3_bind_int64(s, 1, job);
	int step;
	while (!rc && (step = sqlite3_step(s)) == SQLITE_ROW) {
		int bytes = sqlite3_column_bytes(s, 4);
		if (bytes != dim * (int)sizeof(float)) {
			log_warn("job %lld: item seq %lld has %d embedding bytes, not %d: skipped",
				 (long long)job, (long long)sqlite3_column_int64(s, 0), bytes,
				 dim * (int)sizeof(float));
			continue;
		}
		memcpy(emb, sqlite3_column_blob(s, 4), (size_t)bytes);
		int32_t label = sqlite3_column_type(s, 2) == SQLITE_NULL ? -1 : sqlite3_column_int(s, 2);
		rc = fn(arg, sqlite3_column_int64(s, 0), (const char *)sqlite3_column_text(s, 1), label,
			(const char *)sqlite3_column_text(s, 3), emb);
		if (rc)
			isif_fail(err, rc, "items: %s", isif_strerror(rc));
	}
	if (!rc && step != SQLITE_DONE)
		rc = store_fail(st, "item load", err);
out:
	sqlite3_finalize(s);
	store_unlock(st);
	free(emb);
	return rc;
}

/* The current row (seq, item_id, label, metadata, created_at, embedding) as JSON. */
static json_t *row_json(sqlite3_stmt *s, bool with_emb)
{
	json_t *o = json_pack("{s:s, s:s}", "id", (const char *)sqlite3_column_text(s, 1),
			      "created_at", (const char *)sqlite3_column_text(s, 4));
	if (sqlite3_column_type(s, 2) != SQLITE_NULL)
		json_object_set_new(o, "label", json_integer(sqlite3_column_int(s, 2)));
	const char *meta = (const char *)sqlite3_column_text(s, 3);
	json_t *m = meta ? json_loads(meta, 0, NULL) : NULL;
	if (m)
		json_object_set_new(o, "metadata", m);
	if (with_emb) {
		int n = sqlite3_column_bytes(s, 5) / (int)sizeof(float);
		const float *v = sqlite3_column_blob(s, 5);
		json_t *a = json_array();
		for (int i = 0; v && i < n; i++) {
			float x;
			memcpy(&x, v + i, sizeof x);
			json_array_append_new(a, json_real(x));
		}
		json_object_set_new(o, "embedding", a);
	}
	return o;
}

enum isif_rc store_items_json(struct store *st, int64_t job, const char *after, int limit,
			      json_t **out, struct isif_error *err)
{
	sqlite3 *db = store_lock(st);
	sqlite3_stmt *s = NULL;
	enum isif_rc rc = ISIF_OK;
	*out = NULL;
	int64_t total = count_of(db, job);
	if (total < 0 || sqlite3_prepare_v2(db, "SELECT seq, item_id, label, metadata, created_at "
					    "FROM job_items WHERE job_id = ?1 AND (?2 IS NULL OR "
					    "item_id > ?2) ORDER BY item_id LIMIT ?3", -1, &s,
					    NULL) != SQLITE_OK) {
		rc = store_fail(st, "item list", err);
		goto out;
	}
	sqlite3_bind_int64(s, 1, job);
	if (after)
		sqlite3_bind_text(s, 2, after, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, 2);
	sqlite3_bind_int(s, 3, limit + 1);
	json_t *list = json_array(), *next = json_null();
	int step;
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		if ((int)json_array_size(list) == limit) {
			/* one more exists: the page ends at the last one listed */
			json_decref(next);
			next = json_string(json_string_value(json_object_get(
				json_array_get(list, (size_t)limit - 1), "id")));
			break;
		}
		json_array_append_new(list, row_json(s, false));
	}
	if (step != SQLITE_ROW && step != SQLITE_DONE) {
		json_decref(list);
		json_decref(next);
		rc = store_fail(st, "item list", err);
		goto out;
	}
	*out = json_pack("{s:I, s:o, s:I, s:o}", "job", (json_int_t)job, "items", list, "count",
			 (json_int_t)total, "next_after", next);
out:
	sqlite3_finalize(s);
	store_unlock(st);
	return rc;
}

enum isif_rc store_item_json(struct store *st, int64_t job, const char *id, bool with_emb,
			     json_t **out, struct isif_error *err)
{
	sqlite3 *db = store_lock(st);
	sqlite3_stmt *s = NULL;
	enum isif_rc rc;
	*out = NULL;
	if (sqlite3_prepare_v2(db, "SELECT seq, item_id, label, metadata, created_at, embedding "
			       "FROM job_items WHERE job_id = ? AND item_id = ?", -1, &s,
			       NULL) != SQLITE_OK) {
		rc = store_fail(st, "item get", err);
		goto out;
	}
	sqlite3_bind_int64(s, 1, job);
	sqlite3_bind_text(s, 2, id, -1, SQLITE_STATIC);
	int step = sqlite3_step(s);
	if (step == SQLITE_ROW) {
		*out = row_json(s, with_emb);
		rc = ISIF_OK;
	} else if (step == SQLITE_DONE) {
		rc = isif_fail(err, ISIF_ENOTFOUND, "job %lld has no item \"%s\"", (long long)job, id);
	} else {
		rc = store_fail(st, "item get", err);
	}
out:
	sqlite3_finalize(s);
	store_unlock(st);
	return rc;
}

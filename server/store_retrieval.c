/*
 * server/store_retrieval.c — SQL of the retrieval tables (see
 * store_retrieval.h), on the store's connection through store_lock.
 */
#include "store_retrieval.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

enum isif_rc store_index_get(struct store *st, int64_t job, struct index_row *row,
			     struct isif_error *err)
{
	sqlite3 *db = store_lock(st);
	sqlite3_stmt *s = NULL;
	enum isif_rc rc = ISIF_EIO;
	memset(row, 0, sizeof *row);
	if (sqlite3_prepare_v2(db, "SELECT j.id, x.epoch, x.path, x.n_train, x.n_test, x.dim, "
				   "x.bytes FROM jobs j LEFT JOIN job_indexes x ON x.job_id = j.id "
				   "WHERE j.id = ?", -1, &s, NULL) != SQLITE_OK) {
		rc = store_fail(st, "index lookup", err);
		goto out;
	}
	sqlite3_bind_int64(s, 1, job);
	int step = sqlite3_step(s);
	if (step == SQLITE_DONE) {
		rc = isif_fail(err, ISIF_ENOTFOUND, "no job %lld", (long long)job);
	} else if (step != SQLITE_ROW) {
		rc = store_fail(st, "index lookup", err);
	} else if (sqlite3_column_type(s, 1) == SQLITE_NULL) {
		rc = isif_fail(err, ISIF_EEMPTY, "job %lld has no embedding index yet", (long long)job);
	} else {
		row->job = job;
		row->epoch = sqlite3_column_int(s, 1);
		snprintf(row->path, sizeof row->path, "%s", (const char *)sqlite3_column_text(s, 2));
		row->n_train = sqlite3_column_int64(s, 3);
		row->n_test = sqlite3_column_int64(s, 4);
		row->dim = sqlite3_column_int(s, 5);
		row->bytes = sqlite3_column_int64(s, 6);
		rc = ISIF_OK;
	}
out:
	sqlite3_finalize(s);
	store_unlock(st);
	return rc;
}

enum isif_rc store_index_put(struct store *st, const struct index_row *row,
			     struct isif_error *err)
{
	char now[32];
	iso8601_now(now, sizeof now);
	sqlite3 *db = store_lock(st);
	sqlite3_stmt *s = NULL;
	enum isif_rc rc;
	if (sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO job_indexes (job_id, epoch, path, "
				   "n_train, n_test, dim, bytes, created_at) "
				   "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", -1, &s, NULL) != SQLITE_OK) {
		rc = store_fail(st, "index insert", err);
		goto out;
	}
	sqlite3_bind_int64(s, 1, row->job);
	sqlite3_bind_int(s, 2, row->epoch);
	sqlite3_bind_text(s, 3, row->path, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, row->n_train);
	sqlite3_bind_int64(s, 5, row->n_test);
	sqlite3_bind_int(s, 6, row->dim);
	sqlite3_bind_int64(s, 7, row->bytes);
	sqlite3_bind_text(s, 8, now, -1, SQLITE_STATIC);
	rc = sqlite3_step(s) == SQLITE_DONE ? ISIF_OK : store_fail(st, "index insert", err);
out:
	sqlite3_finalize(s);
	store_unlock(st);
	store_index_changed(st);
	return rc;
}

enum isif_rc store_index_default_job(struct store *st, int64_t *job, struct isif_error *err)
{
	sqlite3 *db = store_lock(st);
	sqlite3_stmt *s = NULL;
	enum isif_rc rc;
	if (sqlite3_prepare_v2(db, "SELECT j.id FROM jobs j JOIN job_indexes x ON x.job_id = j.id "
				   "WHERE j.status IN ('succeeded', 'running') "
				   "ORDER BY j.id DESC LIMIT 1", -1, &s, NULL) != SQLITE_OK) {
		rc = store_fail(st, "default job", err);
		goto out;
	}
	int step = sqlite3_step(s);
	if (step == SQLITE_ROW) {
		*job = sqlite3_column_int64(s, 0);
		rc = ISIF_OK;
	} else if (step == SQLITE_DONE) {
		rc = isif_fail(err, ISIF_EEMPTY, "no succeeded or running job has an embedding index");
	} else {
		rc = store_fail(st, "default job", err);
	}
out:
	sqlite3_finalize(s);
	store_unlock(st);
	return rc;
}

/* Binds the six shape columns from ?first on, negative values as NULL,
 * then the normalization and class names (NULL when absent). */
static void bind_info(sqlite3_stmt *s, int first, const struct dataset_info *in)
{
	const int64_t v[6] = {in->train_images, in->test_images, in->channels, in->height,
			      in->width, in->classes};
	for (int i = 0; i < 6; i++) {
		if (v[i] >= 0)
			sqlite3_bind_int64(s, first + i, v[i]);
		else
			sqlite3_bind_null(s, first + i);
	}
	const char *text[2] = {in->normalization, in->class_names};
	for (int i = 0; i < 2; i++) {
		if (text[i])
			sqlite3_bind_text(s, first + 6 + i, text[i], -1, SQLITE_STATIC);
		else
			sqlite3_bind_null(s, first + 6 + i);
	}
}

enum isif_rc store_dataset_insert(struct store *st, const char *name, const char *format,
			 const char *path, const struct dataset_info *info, struct isif_error *err)
{
	char now[32];
	iso8601_now(now, sizeof now);
	sqlite3 *db = store_lock(st);
	sqlite3_stmt *s = NULL;
	enum isif_rc rc;
	if (sqlite3_prepare_v2(db, "INSERT INTO datasets (name, format, path, created_at, "
				   "train_images, test_images, channels, height, width, classes, "
				   "normalization, class_names, image_size) "
				   "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", -1, &s, NULL) != SQLITE_OK) {
		rc = store_fail(st, "dataset insert", err);
		goto out;
	}
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, format, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, path, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, now, -1, SQLITE_STATIC);
	bind_info(s, 5, info);
	if (info->image_size > 0)
		sqlite3_bind_int(s, 13, info->image_size);
	int step = sqlite3_step(s);
	if (step == SQLITE_DONE)
		rc = ISIF_OK;
	else if (step == SQLITE_CONSTRAINT)   /* the name is the primary key */
		rc = isif_fail(err, ISIF_ECONFLICT, "dataset \"%s\" already exists", name);
	else
		rc = store_fail(st, "dataset insert", err);
out:
	sqlite3_finalize(s);
	store_unlock(st);
	return rc;
}

int store_dataset_image_size(struct store *st, const char *name)
{
	sqlite3 *db = store_lock(st);
	sqlite3_stmt *s = NULL;
	int size = 0;
	if (sqlite3_prepare_v2(db, "SELECT image_size FROM datasets WHERE name = ?", -1, &s,
			       NULL) == SQLITE_OK) {
		sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
		if (sqlite3_step(s) == SQLITE_ROW)
			size = sqlite3_column_int(s, 0);   /* NULL reads as 0 */
	}
	sqlite3_finalize(s);
	store_unlock(st);
	return size;
}

enum isif_rc store_dataset_set_info(struct store *st, const char *name,
				    const struct dataset_info *info, struct isif_error *err)
{
	sqlite3 *db = store_lock(st);
	sqlite3_stmt *s = NULL;
	enum isif_rc rc;
	if (sqlite3_prepare_v2(db, "UPDATE datasets SET train_images = ?1, test_images = ?2, "
				   "channels = ?3, height = ?4, width = ?5, classes = ?6, "
				   "normalization = ?7, class_names = ?8 WHERE name = ?9", -1, &s, NULL) != SQLITE_OK) {
		rc = store_fail(st, "dataset update", err);
		goto out;
	}
	bind_info(s, 1, info);
	sqlite3_bind_text(s, 9, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(s) == SQLITE_DONE ? ISIF_OK : store_fail(st, "dataset update", err);
out:
	sqlite3_finalize(s);
	store_unlock(st);
	return rc;
}

static json_t *dataset_from_stmt(sqlite3_stmt *s)
{
	static const char *const keys[] = {"name", "format", "path", "url", "created_at",
					   "train_images", "test_images", "channels", "height",
					   "width", "classes", "normalization", "class_names"};
	json_t *o = json_object();
	for (int k = 0; o && k < (int)(sizeof keys / sizeof keys[0]); k++)
		json_object_set_new(o, keys[k], store_column_json(s, k));
	return o;
}

enum isif_rc store_dataset_json(struct store *st, const char *name, json_t **out,
				struct isif_error *err)
{
	sqlite3 *db = store_lock(st);
	sqlite3_stmt *s = NULL;
	json_t *arr = json_array();
	enum isif_rc rc = ISIF_OK;
	int step;
	*out = NULL;
	if (sqlite3_prepare_v2(db, "SELECT name, format, path, url, created_at, train_images, "
				   "test_images, channels, height, width, classes, normalization, "
				   "class_names FROM datasets "
				   "WHERE ?1 IS NULL OR name = ?1 ORDER BY name", -1, &s,
			       NULL) != SQLITE_OK) {
		rc = store_fail(st, "datasets", err);
		goto out;
	}
	if (name)
		sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	while ((step = sqlite3_step(s)) == SQLITE_ROW)
		json_array_append_new(arr, dataset_from_stmt(s));
	if (step != SQLITE_DONE)
		rc = store_fail(st, "datasets", err);
out:
	sqlite3_finalize(s);
	store_unlock(st);
	if (rc == ISIF_OK && name) {
		if (json_array_size(arr) == 0)
			rc = isif_fail(err, ISIF_ENOTFOUND, "unknown dataset \"%s\"", name);
		else
			*out = json_incref(json_array_get(arr, 0));
	} else if (rc == ISIF_OK) {
		*out = json_pack("{s:O}", "datasets", arr);
	}
	json_decref(arr);
	if (rc == ISIF_OK && !*out)
		rc = isif_fail(err, ISIF_ENOMEM, "out of memory");
	return rc;
}

/*
 * tests/server/test_store.c — the SQLite store: migrations (applied once,
 * each in one transaction, recorded in user_version; a failing one leaves
 * nothing behind), the queue limit, job life cycle, epoch commits and the
 * resume rule that drops rows past the checkpoint epoch.
 */
#include "../unit/check.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "migrations.h"
#include "store.h"
#include "store_retrieval.h"

static struct store *open_fresh(const char *name)
{
	char path[512];
	struct isif_error err = {0};
	struct store *st = NULL;
	snprintf(path, sizeof path, "%s/%s", test_tmpdir(), name);
	unlink(path);
	int rc = store_open(&st, path, isifd_migrations, isifd_n_migrations, &err);
	CHECK_MSG(rc == ISIF_OK, "store_open: %s", err.msg);
	return st;
}

/* Raw SQLite scalar query on a database file, independent of the store. */
static long long sql_scalar(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;
	long long v = -12345;
	if (sqlite3_open(path, &db) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK &&
	    sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return v;
}

TEST(srv_store_migrations_applied_once)
{
	char path[512];
	struct isif_error err = {0};
	struct store *st = open_fresh("mig.db");
	int version = -1;
	CHECK_EQ(store_schema_version(st, &version, NULL), ISIF_OK);
	CHECK_EQ(version, isifd_n_migrations);
	store_close(st);
	snprintf(path, sizeof path, "%s/mig.db", test_tmpdir());
	CHECK_EQ(sql_scalar(path, "PRAGMA user_version"), isifd_n_migrations);
	CHECK_EQ(sql_scalar(path, "SELECT COUNT(*) FROM datasets WHERE name = 'fashion-mnist'"), 1);
	/* Reopening applies nothing again (the INSERT would duplicate-fail). */
	CHECK_EQ(store_open(&st, path, isifd_migrations, isifd_n_migrations, &err),
		 ISIF_OK);
	store_close(st);
	sqlite3 *db;
	sqlite3_stmt *s;
	sqlite3_open(path, &db);
	sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL);
	CHECK(sqlite3_step(s) == SQLITE_ROW && strcmp((const char *)sqlite3_column_text(s, 0), "wal") == 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
}

TEST(srv_store_failing_migration_rolls_back)
{
	char path[512];
	struct isif_error err = {0};
	struct store *st = NULL;
	struct migration m[3] = {
		isifd_migrations[0],
		/* Creates a table, then fails: the table must not survive. */
		{"002_broken.sql", "CREATE TABLE half_done (x INTEGER); INSERT INTO nope VALUES (1);"},
		{"003_never.sql", "CREATE TABLE never (x INTEGER);"},
	};
	snprintf(path, sizeof path, "%s/broken.db", test_tmpdir());
	unlink(path);
	CHECK_EQ(store_open(&st, path, m, 3, &err), ISIF_EIO);
	CHECK_MSG(strstr(err.msg, "002_broken.sql") != NULL, "err: %s", err.msg);
	CHECK_EQ(sql_scalar(path, "PRAGMA user_version"), 1);
	CHECK_EQ(sql_scalar(path, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'half_done'"), 0);
	CHECK_EQ(sql_scalar(path, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'never'"), 0);
	/* A database newer than the binary is refused. */
	struct migration one[1] = {isifd_migrations[0]};
	sqlite3 *db;
	sqlite3_open(path, &db);
	sqlite3_exec(db, "PRAGMA user_version = 7", NULL, NULL, NULL);
	sqlite3_close(db);
	CHECK_EQ(store_open(&st, path, one, 1, &err), ISIF_EFORMAT);
	CHECK_MSG(strstr(err.msg, "newer") != NULL, "err: %s", err.msg);
	/* Misnumbered migrations are refused too. */
	struct migration gap[2] = {isifd_migrations[0], {"005_gap.sql", "SELECT 1;"}};
	unlink(path);
	CHECK_EQ(store_open(&st, path, gap, 2, &err), ISIF_EINVAL);
	CHECK_MSG(strstr(err.msg, "expected number 002") != NULL, "err: %s", err.msg);
}

TEST(srv_store_queue_limit_and_claim_order)
{
	struct store *st = open_fresh("queue.db");
	int64_t a, b, c, d;
	CHECK_EQ(store_job_insert(st, "{}", "fashion-mnist", 2, 0, 3, &a, NULL), ISIF_OK);
	CHECK_EQ(store_job_insert(st, "{}", "fashion-mnist", 2, 5, 3, &b, NULL), ISIF_OK);
	CHECK_EQ(store_job_insert(st, "{}", "fashion-mnist", 2, 0, 3, &c, NULL), ISIF_OK);
	CHECK_EQ(store_job_insert(st, "{}", "fashion-mnist", 2, 0, 3, &d, NULL), ISIF_EBUSY);
	struct job_claim cl;
	CHECK_EQ(store_job_claim(st, &cl, NULL), ISIF_OK);
	CHECK_EQ(cl.id, b); /* priority 5 first */
	CHECK(!cl.resume && cl.checkpoint == NULL && cl.epoch == 0);
	job_claim_free(&cl);
	/* One slot freed by the claim. */
	CHECK_EQ(store_job_insert(st, "{}", "fashion-mnist", 2, 9, 3, &d, NULL), ISIF_OK);
	CHECK_EQ(store_job_claim(st, &cl, NULL), ISIF_OK);
	CHECK_EQ(cl.id, d);
	job_claim_free(&cl);
	CHECK_EQ(store_job_claim(st, &cl, NULL), ISIF_OK);
	CHECK_EQ(cl.id, a); /* then FIFO among equal priority */
	job_claim_free(&cl);
	CHECK_EQ(store_job_claim(st, &cl, NULL), ISIF_OK);
	CHECK_EQ(cl.id, c);
	job_claim_free(&cl);
	CHECK_EQ(store_job_claim(st, &cl, NULL), ISIF_EEMPTY);
	long counts[JOB_STATUS_COUNT];
	CHECK_EQ(store_count_by_status(st, counts, NULL), ISIF_OK);
	CHECK_EQ(counts[JOB_RUNNING], 4);
	CHECK_EQ(counts[JOB_QUEUED], 0);
	store_close(st);
}

static struct metrics_row row(int epoch)
{
	struct metrics_row r = {.epoch = epoch, .loss = 6.0 - epoch, .lr = 0.03, .seconds = 1.5,
				.images_per_sec = 100, .images = 512};
	if (epoch % 2 == 0) {
		r.has_knn = true;
		r.knn_top1 = 0.5 + 0.01 * epoch;
		r.knn_top5 = 0.9;
		r.has_probe = true;
		r.probe_top1 = 0.75;
		r.probe_backbone_top1 = 0.8125;
	}
	return r;
}

TEST(srv_store_job_lifecycle)
{
	struct store *st = open_fresh("life.db");
	int64_t id;
	enum job_status s;
	json_t *job;
	CHECK_EQ(store_job_insert(st, "{\"dataset\": \"fashion-mnist\"}", "fashion-mnist", 3, 0, 10, &id, NULL),
		 ISIF_OK);
	CHECK_EQ(store_job_json(st, id, &job, NULL), ISIF_OK);
	CHECK(strcmp(json_string_value(json_object_get(job, "status")), "queued") == 0);
	CHECK(json_is_null(json_object_get(job, "last_metrics")));
	CHECK(json_is_null(json_object_get(job, "started_at")));
	CHECK(json_is_object(json_object_get(job, "spec")));
	json_decref(job);
	struct job_claim cl;
	CHECK_EQ(store_job_claim(st, &cl, NULL), ISIF_OK);
	job_claim_free(&cl);
	CHECK_EQ(store_job_delete(st, id, &s, NULL), ISIF_ECONFLICT);
	CHECK_EQ(s, JOB_RUNNING);
	struct metrics_row r1 = row(1), r2 = row(2);
	CHECK_EQ(store_epoch_commit(st, id, &r1, "jobs/1/ckpt-000001/c.safetensors", NULL), ISIF_OK);
	CHECK_EQ(store_epoch_commit(st, id, &r2, NULL, NULL), ISIF_OK);
	char rel[256];
	int ep = -1;
	CHECK_EQ(store_job_checkpoint(st, id, rel, sizeof rel, &ep, NULL), ISIF_OK);
	CHECK(strcmp(rel, "jobs/1/ckpt-000001/c.safetensors") == 0); /* NULL kept the old one */
	CHECK_EQ(ep, 2);
	struct metrics_row *rows;
	int n;
	CHECK_EQ(store_metrics(st, id, 0, &rows, &n, NULL), ISIF_OK);
	CHECK_EQ(n, 2);
	CHECK(n == 2 && !rows[0].has_knn && rows[1].has_knn && rows[1].knn_top1 == 0.52);
	/* the probe's columns (migration 009): NULL without a probe, else both values */
	CHECK(n == 2 && !rows[0].has_probe && rows[1].has_probe && rows[1].probe_top1 == 0.75 &&
	      rows[1].probe_backbone_top1 == 0.8125);
	free(rows);
	CHECK_EQ(store_metrics(st, id, 1, &rows, &n, NULL), ISIF_OK);
	CHECK(n == 1 && rows[0].epoch == 2);
	free(rows);
	CHECK_EQ(store_job_json(st, id, &job, NULL), ISIF_OK);
	json_t *lm = json_object_get(job, "last_metrics");
	CHECK_EQ(json_integer_value(json_object_get(lm, "epoch")), 2);
	CHECK_EQ(json_integer_value(json_object_get(job, "epoch")), 2);
	json_decref(job);
	CHECK_EQ(store_job_cancel(st, id, &s, NULL), ISIF_OK);
	CHECK_EQ(s, JOB_RUNNING);
	CHECK_EQ(store_job_finish(st, id, JOB_FAILED, "boom", NULL), ISIF_OK);
	CHECK_EQ(store_job_cancel(st, id, &s, NULL), ISIF_ECONFLICT);
	CHECK_EQ(store_job_json(st, id, &job, NULL), ISIF_OK);
	CHECK(strcmp(json_string_value(json_object_get(job, "error")), "boom") == 0);
	CHECK(json_is_true(json_object_get(job, "cancel_requested")));
	CHECK(json_is_string(json_object_get(job, "finished_at")));
	json_decref(job);
	CHECK_EQ(store_job_delete(st, id, &s, NULL), ISIF_OK);
	CHECK_EQ(store_job_status(st, id, &s, NULL), ISIF_ENOTFOUND);
	CHECK_EQ(store_metrics(st, id, 0, &rows, &n, NULL), ISIF_OK);
	CHECK_EQ(n, 0); /* rows cascade */
	free(rows);
	store_close(st);
}

TEST(srv_store_recover_and_resume_drop_rows_past_checkpoint)
{
	struct store *st = open_fresh("resume.db");
	int64_t id;
	int n;
	CHECK_EQ(store_job_insert(st, "{}", "fashion-mnist", 5, 0, 10, &id, NULL), ISIF_OK);
	struct job_claim cl;
	CHECK_EQ(store_job_claim(st, &cl, NULL), ISIF_OK);
	job_claim_free(&cl);
	for (int e = 1; e <= 3; e++) {
		struct metrics_row r = row(e);
		CHECK_EQ(store_epoch_commit(st, id, &r, e <= 2 ? "jobs/1/ckpt/c" : NULL, NULL), ISIF_OK);
	}
	/* The daemon "died": the job is running in the table. */
	CHECK_EQ(store_recover_running(st, &n, NULL), ISIF_OK);
	CHECK_EQ(n, 1);
	CHECK_EQ(store_job_claim(st, &cl, NULL), ISIF_OK);
	CHECK(cl.resume);
	CHECK_EQ(cl.epoch, 3);
	job_claim_free(&cl);
	CHECK_EQ(store_job_resumed(st, id, 2, NULL), ISIF_OK);
	struct metrics_row *rows;
	CHECK_EQ(store_metrics(st, id, 0, &rows, &n, NULL), ISIF_OK);
	CHECK_EQ(n, 2);
	CHECK(n == 2 && rows[0].epoch == 1 && rows[1].epoch == 2);
	free(rows);
	json_t *job;
	CHECK_EQ(store_job_json(st, id, &job, NULL), ISIF_OK);
	CHECK_EQ(json_integer_value(json_object_get(job, "resumed_from_epoch")), 2);
	CHECK_EQ(json_integer_value(json_object_get(job, "epoch")), 2);
	json_decref(job);
	/* Resuming from scratch (no checkpoint) clears every row and the path. */
	CHECK_EQ(store_job_resumed(st, id, 0, NULL), ISIF_OK);
	CHECK_EQ(store_metrics(st, id, 0, &rows, &n, NULL), ISIF_OK);
	CHECK_EQ(n, 0);
	free(rows);
	char rel[64];
	int ep;
	CHECK_EQ(store_job_checkpoint(st, id, rel, sizeof rel, &ep, NULL), ISIF_EEMPTY);
	store_close(st);
}

TEST(srv_store_requeue_puts_resumed_jobs_first)
{
	struct store *st = open_fresh("requeue.db");
	int64_t a, b;
	CHECK_EQ(store_job_insert(st, "{}", "d", 2, 0, 10, &a, NULL), ISIF_OK);
	struct job_claim cl;
	CHECK_EQ(store_job_claim(st, &cl, NULL), ISIF_OK);
	job_claim_free(&cl);
	CHECK_EQ(store_job_insert(st, "{}", "d", 2, 50, 10, &b, NULL), ISIF_OK);
	CHECK_EQ(store_job_requeue(st, a, NULL), ISIF_OK);
	CHECK_EQ(store_job_claim(st, &cl, NULL), ISIF_OK);
	CHECK_EQ(cl.id, a); /* resumed before a higher priority */
	CHECK(cl.resume);
	job_claim_free(&cl);
	store_close(st);
}

TEST(srv_store_lists_and_datasets)
{
	struct store *st = open_fresh("list.db");
	int64_t a, b;
	CHECK_EQ(store_job_insert(st, "{}", "d", 2, 0, 10, &a, NULL), ISIF_OK);
	CHECK_EQ(store_job_insert(st, "{}", "d", 2, 0, 10, &b, NULL), ISIF_OK);
	enum job_status s;
	CHECK_EQ(store_job_cancel(st, a, &s, NULL), ISIF_OK);
	json_t *out;
	CHECK_EQ(store_jobs_json(st, -1, 100, &out, NULL), ISIF_OK);
	json_t *jobs = json_object_get(out, "jobs");
	CHECK_EQ(json_array_size(jobs), 2);
	CHECK_EQ(json_integer_value(json_object_get(json_array_get(jobs, 0), "id")), b); /* newest first */
	json_decref(out);
	CHECK_EQ(store_jobs_json(st, JOB_CANCELLED, 100, &out, NULL), ISIF_OK);
	jobs = json_object_get(out, "jobs");
	CHECK_EQ(json_array_size(jobs), 1);
	CHECK_EQ(json_integer_value(json_object_get(json_array_get(jobs, 0), "id")), a);
	json_decref(out);
	CHECK_EQ(store_jobs_json(st, -1, 1, &out, NULL), ISIF_OK);
	CHECK_EQ(json_array_size(json_object_get(out, "jobs")), 1);
	json_decref(out);
	char fmt[16], path[256];
	CHECK_EQ(store_dataset_lookup(st, "fashion-mnist", fmt, sizeof fmt, path, sizeof path, NULL), ISIF_OK);
	CHECK(strcmp(fmt, "idx") == 0 && strcmp(path, "/usr/share/datasets/fashion-mnist") == 0);
	CHECK_EQ(store_dataset_lookup(st, "nope", fmt, sizeof fmt, path, sizeof path, NULL), ISIF_ENOTFOUND);
	CHECK_EQ(store_dataset_json(st, NULL, &out, NULL), ISIF_OK);
	CHECK_EQ(json_array_size(json_object_get(out, "datasets")), 1);
	json_decref(out);
	store_close(st);
}

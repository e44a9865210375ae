/*
 * tests/server/test_store_errors.c — the store's error messages belong to
 * the call that failed: two threads making store calls fail at once each
 * read their own message (the old store kept one last-error buffer in the
 * shared store, read after the mutex was released: run under `make tsan`
 * this test reported that race), and a transaction that fails because the
 * database is full reports "database or disk is full", not the ROLLBACK
 * that follows it.
 */
#include "../unit/check.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "migrations.h"
#include "store.h"

static struct store *open_fresh(const char *name)
{
	char path[512];
	struct isif_error err = {0};
	struct store *st = NULL;
	snprintf(path, sizeof path, "%s/%s", test_tmpdir(), name);
	unlink(path);
	CHECK_MSG(store_open(&st, path, isifd_migrations, isifd_n_migrations, &err) == ISIF_OK,
		  "store_open: %s", err.msg);
	return st;
}

/* Runs sql on the store's own connection (triggers, pragmas). */
static void store_exec(struct store *st, const char *sql)
{
	sqlite3 *db = store_lock(st);
	char *msg = NULL;
	CHECK_MSG(sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK, "%s: %s", sql,
		  msg ? msg : "?");
	sqlite3_free(msg);
	store_unlock(st);
}

struct racer {
	struct store *st;
	int64_t id;
	bool delete;         /* store_job_delete, else store_job_set_checkpoint */
	int wrong;
	char seen[ISIF_ERR_LEN + 32];
};

/* Fails its own kind of call again and again; each message must name it. */
static void *race(void *arg)
{
	struct racer *r = arg;
	const char *want = r->delete ? "delete refused" : "update refused";
	for (int i = 0; i < 300; i++) {
		struct isif_error err = {0};
		enum job_status s;
		enum isif_rc rc = r->delete ? store_job_delete(r->st, r->id, &s, &err)
					    : store_job_set_checkpoint(r->st, r->id, "x", &err);
		if (rc != ISIF_EIO || !strstr(err.msg, want)) {
			r->wrong++;
			snprintf(r->seen, sizeof r->seen, "rc %d: %s", rc, err.msg);
		}
	}
	return NULL;
}

TEST(srv_store_errors_are_per_call)
{
	struct store *st = open_fresh("race.db");
	int64_t a, b;
	CHECK_EQ(store_job_insert(st, "{}", "fashion-mnist", 1, 0, 10, &a, NULL), ISIF_OK);
	CHECK_EQ(store_job_insert(st, "{}", "fashion-mnist", 1, 0, 10, &b, NULL), ISIF_OK);
	CHECK_EQ(store_job_finish(st, b, JOB_FAILED, "x", NULL), ISIF_OK);
	/* Every UPDATE and DELETE of a job now fails, each with its own text. */
	store_exec(st, "CREATE TRIGGER no_update BEFORE UPDATE ON jobs BEGIN "
		       "SELECT RAISE(ABORT, 'update refused by the test'); END; "
		       "CREATE TRIGGER no_delete BEFORE DELETE ON jobs BEGIN "
		       "SELECT RAISE(ABORT, 'delete refused by the test'); END;");
	struct racer r[2] = {{.st = st, .id = a}, {.st = st, .id = b, .delete = true}};
	pthread_t t[2];
	log_set_level((enum log_level)(LOG_ERROR + 1));   /* 600 expected error lines */
	for (int i = 0; i < 2; i++)
		CHECK(pthread_create(&t[i], NULL, race, &r[i]) == 0);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	log_set_level(LOG_INFO);
	for (int i = 0; i < 2; i++)
		CHECK_MSG(r[i].wrong == 0, "thread %d: %d wrong messages, e.g. \"%s\"", i, r[i].wrong,
			  r[i].seen);
	store_close(st);
}

TEST(srv_store_disk_full_keeps_the_first_error)
{
	struct store *st = open_fresh("full.db");
	/* A few pages more than it has: a job row or two fit, then none. SQLite
	 * rolls a transaction that hits the limit back itself, so the store's
	 * ROLLBACK then finds none (it used to report just that). */
	sqlite3 *db = store_lock(st);
	sqlite3_stmt *s = NULL;
	int pages = 0;
	if (sqlite3_prepare_v2(db, "PRAGMA page_count", -1, &s, NULL) == SQLITE_OK &&
	    sqlite3_step(s) == SQLITE_ROW)
		pages = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	store_unlock(st);
	CHECK(pages > 0);
	char sql[64], spec[8192];
	snprintf(sql, sizeof sql, "PRAGMA max_page_count = %d", pages + 4);
	store_exec(st, sql);
	memset(spec, 'x', sizeof spec - 1);
	spec[sizeof spec - 1] = '\0';
	struct isif_error err = {0};
	enum isif_rc rc = ISIF_OK;
	int64_t id, first = 0;
	for (int i = 0; i < 100 && rc == ISIF_OK; i++) {
		rc = store_job_insert(st, spec, "fashion-mnist", 1, 0, 1000, &id, &err);
		if (rc == ISIF_OK && !first)
			first = id;
	}
	CHECK_EQ(rc, ISIF_EIO);
	CHECK_MSG(strstr(err.msg, "database or disk is full") != NULL, "err: %s", err.msg);
	CHECK_MSG(strstr(err.msg, "rollback") == NULL, "err: %s", err.msg);
	/* The same for an epoch commit (metrics row and job row in one go). */
	CHECK(first > 0);
	struct metrics_row row = {.loss = 1, .lr = 0.1};
	rc = ISIF_OK;
	for (int e = 1; e < 100 && rc == ISIF_OK; e++) {
		row.epoch = e;
		rc = store_epoch_commit(st, first, &row, spec, &err);
	}
	CHECK_EQ(rc, ISIF_EIO);
	CHECK_MSG(strstr(err.msg, "database or disk is full") != NULL, "err: %s", err.msg);
	store_close(st);
}

TEST(srv_store_every_failure_has_a_message)
{
	struct store *st = open_fresh("codes.db");
	struct isif_error err = {0};
	enum job_status s;
	int64_t id;
	json_t *job;
	CHECK_EQ(store_job_json(st, 42, &job, &err), ISIF_ENOTFOUND);
	CHECK_MSG(strcmp(err.msg, "no job 42") == 0, "%s", err.msg);
	CHECK_EQ(store_job_insert(st, "{}", "fashion-mnist", 1, 0, 0, &id, &err), ISIF_EBUSY);
	CHECK_MSG(strstr(err.msg, "queue is full") != NULL, "%s", err.msg);
	CHECK_EQ(store_job_insert(st, "{}", "fashion-mnist", 1, 0, 1, &id, &err), ISIF_OK);
	CHECK_EQ(store_job_delete(st, id, &s, &err), ISIF_ECONFLICT);
	CHECK_MSG(strstr(err.msg, "cancel it first") != NULL, "%s", err.msg);
	char rel[64];
	int epoch;
	CHECK_EQ(store_job_checkpoint(st, id, rel, sizeof rel, &epoch, &err), ISIF_EEMPTY);
	CHECK_MSG(strstr(err.msg, "no checkpoint") != NULL, "%s", err.msg);
	store_close(st);
}

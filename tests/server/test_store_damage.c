/*
 * tests/server/test_store_damage.c — start-up on a damaged database: a file
 * whose b-tree page is overwritten (quick_check fails) and a file that is
 * not SQLite at all are both refused by store_open with a message saying
 * what is wrong, instead of opening and failing request by request later.
 */
#include "../unit/check.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "migrations.h"
#include "store.h"

static void dmg_path(char *out, size_t cap, const char *name)
{
	snprintf(out, cap, "%s/%s", test_tmpdir(), name);
	unlink(out);
}

/* A database of many pages: 300 jobs with 200-byte specs, checkpointed into
 * the main file (no WAL left) so that damage to the file is what is read. */
static void dmg_build(const char *path)
{
	char spec[300];
	struct isif_error err = {0};
	struct store *st = NULL;
	CHECK_MSG(store_open(&st, path, isifd_migrations, isifd_n_migrations, &err) ==
		  ISIF_OK, "store_open: %s", err.msg);
	if (!st)
		return;
	memset(spec, 'x', sizeof spec);
	memcpy(spec, "{\"pad\": \"", 9);
	memcpy(spec + 280, "\"}", 3);
	for (int i = 0; i < 300; i++) {
		int64_t id;
		CHECK_EQ(store_job_insert(st, spec, "d", 1, 0, 100000, &id, NULL), ISIF_OK);
	}
	store_close(st);
	sqlite3 *db = NULL;
	CHECK(sqlite3_open(path, &db) == SQLITE_OK);
	CHECK(sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(db);
}

/* Overwrites len bytes at off with 0xff. */
static void dmg_scribble(const char *path, long off, size_t len)
{
	FILE *f = fopen(path, "r+b");
	CHECK(f != NULL);
	if (!f)
		return;
	unsigned char junk[64];
	memset(junk, 0xff, sizeof junk);
	CHECK(fseek(f, off, SEEK_SET) == 0 && fwrite(junk, 1, len, f) == len);
	fclose(f);
}

TEST(srv_store_refuses_damaged_database)
{
	char path[512];
	struct isif_error err = {0};
	struct store *st = NULL;
	dmg_path(path, sizeof path, "damaged.db");
	dmg_build(path);
	/* Page 20's b-tree header (4 KiB pages; page 1 is the schema). */
	dmg_scribble(path, 19L * 4096, 24);
	int rc = store_open(&st, path, isifd_migrations, isifd_n_migrations, &err);
	CHECK_EQ(rc, ISIF_EFORMAT);
	CHECK(st == NULL);
	CHECK_MSG(strstr(err.msg, "damaged") && strstr(err.msg, "quick_check") && !strchr(err.msg, '\n'),
		  "message: %s", err.msg);
}

TEST(srv_store_refuses_a_file_that_is_not_a_database)
{
	char path[512];
	struct isif_error err = {0};
	struct store *st = NULL;
	dmg_path(path, sizeof path, "garbage.db");
	FILE *f = fopen(path, "wb");
	CHECK(f != NULL);
	for (int i = 0; f && i < 100; i++)
		fputs("not a database at all ", f);
	if (f)
		fclose(f);
	CHECK_EQ(store_open(&st, path, isifd_migrations, isifd_n_migrations, &err),
		 ISIF_EIO);
	CHECK_MSG(strstr(err.msg, "not a database"), "message: %s", err.msg);
}

TEST(srv_store_opens_an_intact_database_again)
{
	char path[512];
	struct isif_error err = {0};
	struct store *st = NULL;
	dmg_path(path, sizeof path, "intact.db");
	dmg_build(path);
	CHECK_EQ(store_open(&st, path, isifd_migrations, isifd_n_migrations, &err),
		 ISIF_OK);
	long counts[JOB_STATUS_COUNT];
	if (st) {
		CHECK_EQ(store_count_by_status(st, counts, NULL), ISIF_OK);
		CHECK_EQ(counts[JOB_QUEUED], 300);
		store_close(st);
	}
}

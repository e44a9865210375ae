/*
 * tests/server/test_attempts.c — the crash-loop bound (--max-attempts):
 * a job the daemon died under max_attempts runs in a row (no epoch
 * committed in between) ends failed at the next start with a message
 * saying why; a committed epoch or a shutdown checkpoint resets the count;
 * a graceful stop (requeue) does not count; 0 means no bound. "The daemon
 * died" is simulated as a real restart sees it: the job row left running.
 */
#include "../unit/check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "migrations.h"
#include "store.h"

static struct store *att_open(const char *name)
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

/* A start-up after a crash: bound first, then requeue; returns the failed count. */
static int att_restart(struct store *st, int max_attempts)
{
	int failed = -1, requeued = -1;
	CHECK_EQ(store_fail_interrupted(st, max_attempts, &failed, NULL), ISIF_OK);
	CHECK_EQ(store_recover_running(st, &requeued, NULL), ISIF_OK);
	return failed;
}

/* Claims the only queued job (a run starts). */
static void att_claim(struct store *st, int64_t want)
{
	struct job_claim c;
	CHECK_EQ(store_job_claim(st, &c, NULL), ISIF_OK);
	CHECK_EQ(c.id, want);
	job_claim_free(&c);
}

static enum job_status att_status(struct store *st, int64_t id)
{
	enum job_status s = JOB_STATUS_COUNT;
	CHECK_EQ(store_job_status(st, id, &s, NULL), ISIF_OK);
	return s;
}

TEST(srv_attempts_job_fails_after_max_interrupted_runs)
{
	struct store *st = att_open("att1.db");
	int64_t id;
	CHECK_EQ(store_job_insert(st, "{}", "fashion-mnist", 5, 0, 10, &id, NULL), ISIF_OK);
	for (int run = 1; run <= 2; run++) {
		att_claim(st, id);              /* run `run` starts, then the daemon dies */
		CHECK_EQ(att_restart(st, 3), 0);
		CHECK_EQ(att_status(st, id), JOB_QUEUED);
	}
	att_claim(st, id);                      /* the third run in a row */
	CHECK_EQ(att_restart(st, 3), 1);
	CHECK_EQ(att_status(st, id), JOB_FAILED);
	json_t *job = NULL;
	CHECK_EQ(store_job_json(st, id, &job, NULL), ISIF_OK);
	const char *e = json_string_value(json_object_get(job, "error"));
	CHECK_MSG(e && strstr(e, "during 3 runs") && strstr(e, "--max-attempts 3"),
		  "error: %s", e ? e : "(null)");
	CHECK(json_is_string(json_object_get(job, "finished_at")));
	json_decref(job);
	struct job_claim c;
	CHECK_EQ(store_job_claim(st, &c, NULL), ISIF_EEMPTY); /* not resumed again */
	store_close(st);
}

TEST(srv_attempts_progress_resets_the_count)
{
	struct store *st = att_open("att2.db");
	int64_t id;
	CHECK_EQ(store_job_insert(st, "{}", "fashion-mnist", 50, 0, 10, &id, NULL), ISIF_OK);
	/* Each run commits an epoch (odd runs) or takes a shutdown checkpoint
	 * (even runs) before the daemon dies: ten crashes with a bound of 2
	 * never fail it. */
	for (int run = 1; run <= 10; run++) {
		att_claim(st, id);
		if (run % 2) {
			struct metrics_row r = {.epoch = run, .loss = 5.0, .lr = 0.03,
						.seconds = 1.0, .images_per_sec = 10.0};
			CHECK_EQ(store_epoch_commit(st, id, &r, "jobs/1/ckpt-x/c", NULL), ISIF_OK);
		} else {
			CHECK_EQ(store_job_set_checkpoint(st, id, "jobs/1/ckpt-x-s1/c", NULL), ISIF_OK);
		}
		CHECK_EQ(att_restart(st, 2), 0);
		CHECK_EQ(att_status(st, id), JOB_QUEUED);
	}
	att_claim(st, id);                      /* two runs in a row without progress */
	CHECK_EQ(att_restart(st, 2), 0);
	att_claim(st, id);
	CHECK_EQ(att_restart(st, 2), 1);
	CHECK_EQ(att_status(st, id), JOB_FAILED);
	store_close(st);
}

TEST(srv_attempts_graceful_stop_does_not_count)
{
	struct store *st = att_open("att3.db");
	int64_t id;
	CHECK_EQ(store_job_insert(st, "{}", "fashion-mnist", 5, 0, 10, &id, NULL), ISIF_OK);
	/* SIGTERM: the run ends on purpose and the job is requeued. */
	for (int run = 1; run <= 5; run++) {
		att_claim(st, id);
		CHECK_EQ(store_job_requeue(st, id, NULL), ISIF_OK);
		CHECK_EQ(att_restart(st, 1), 0);
	}
	CHECK_EQ(att_status(st, id), JOB_QUEUED);
	att_claim(st, id);                      /* one crash with a bound of 1 */
	CHECK_EQ(att_restart(st, 1), 1);
	CHECK_EQ(att_status(st, id), JOB_FAILED);
	store_close(st);
}

TEST(srv_attempts_zero_means_no_bound)
{
	struct store *st = att_open("att4.db");
	int64_t id;
	CHECK_EQ(store_job_insert(st, "{}", "fashion-mnist", 5, 0, 10, &id, NULL), ISIF_OK);
	for (int run = 1; run <= 20; run++) {
		att_claim(st, id);
		CHECK_EQ(att_restart(st, 0), 0);
	}
	CHECK_EQ(att_status(st, id), JOB_QUEUED);
	/* Finished and queued jobs are never touched by the bound. */
	int64_t done;
	CHECK_EQ(store_job_insert(st, "{}", "fashion-mnist", 5, 0, 10, &done, NULL), ISIF_OK);
	att_claim(st, id);
	CHECK_EQ(store_job_finish(st, id, JOB_SUCCEEDED, NULL, NULL), ISIF_OK);
	CHECK_EQ(att_restart(st, 1), 0);
	CHECK_EQ(att_status(st, id), JOB_SUCCEEDED);
	CHECK_EQ(att_status(st, done), JOB_QUEUED);
	store_close(st);
}

/*
 * tests/server/test_sched.c — the scheduler with a stub job in place of the
 * trainer: queue order (priority then FIFO), parallel workers, cancel of
 * queued and running jobs (metrics kept), failure, shutdown (requeued, then
 * resumed by a new scheduler), crash recovery from a committed snapshot,
 * and the checkpoint snapshot protocol; an accepted cancel that survives a
 * crash; a job's end recorded through a failing store by retrying (with
 * cancel and delete answering why they cannot act meanwhile); the live
 * phase. Run under ThreadSanitizer by `make tsan`.
 *
 * The stub reads its behaviour from the spec: `epochs` epochs of
 * `train_subset` milliseconds each (in ten slices, checking the cancel
 * flag between them, like batches), seed 666 fails at once. Each epoch it
 * writes run/checkpoint-latest.safetensors ("epoch=N") and
 * run/optim-N.safetensors the way the trainer does, then reports the epoch.
 */
#include "../unit/check.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "isif/base/clock.h"
#include "isif/base/common.h"
#include "isif/train/spec.h"
#include "migrations.h"
#include "prom.h"
#include "scheduler.h"
#include "sse.h"
#include "store.h"

struct stub {
	pthread_mutex_t mu;
	int64_t order[64];
	int n_order;
	int running, max_running;
	int barrier;                 /* >0: each job waits until this many run at once */
	int resumed_from[64];        /* by job id: checkpoint epoch given, -1 fresh */
	bool resume_file_ok[64];     /* the checkpoint and its optimizer file were there */
};

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static int write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
	fputs(text, f);
	return fclose(f);
}

static bool file_says(const char *path, const char *text)
{
	char buf[64] = "";
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	return strcmp(buf, text) == 0;
}

static enum isif_rc stub_run(void *user, struct sched_job *job, struct isif_error *err)
{
	struct stub *sb = user;
	struct isif_job_spec spec;
	char path[1200], text[32];
	isif_spec_default(&spec);
	if (isif_spec_parse(&spec, job->spec_json, true, err))
		return ISIF_EINVAL;
	pthread_mutex_lock(&sb->mu);
	if (sb->n_order < 64)
		sb->order[sb->n_order++] = job->id;
	if (job->id < 64) {
		sb->resumed_from[job->id] = job->checkpoint ? job->checkpoint_epoch : -1;
		if (job->checkpoint) {
			char dir[1024], optim[1100];
			snprintf(dir, sizeof dir, "%s", job->checkpoint);
			*strrchr(dir, '/') = '\0';
			snprintf(text, sizeof text, "epoch=%d", job->checkpoint_epoch);
			snprintf(optim, sizeof optim, "%s/optim-%d.safetensors", dir, job->checkpoint_epoch);
			sb->resume_file_ok[job->id] = file_says(job->checkpoint, text) &&
						      access(optim, R_OK) == 0;
		}
	}
	sb->running++;
	if (sb->running > sb->max_running)
		sb->max_running = sb->running;
	pthread_mutex_unlock(&sb->mu);
	for (int waited = 0; sb->barrier && waited < 2000; waited += 2) {
		pthread_mutex_lock(&sb->mu);
		bool ok = sb->running >= sb->barrier || sb->max_running >= sb->barrier;
		pthread_mutex_unlock(&sb->mu);
		if (ok)
			break;
		sleep_ms(2);
	}
	int rc = ISIF_OK;
	if (spec.seed == 666) {
		rc = isif_fail(err, ISIF_EIO, "stub failure on purpose");
		goto out;
	}
	for (int e = job->checkpoint_epoch + 1; e <= spec.epochs; e++) {
		for (int k = 0; k < 10; k++) {
			if (atomic_load(job->cancel)) {
				rc = ISIF_ECANCELLED;
				goto out;
			}
			sleep_ms((int)spec.train_subset / 10);
			struct job_progress p = {.epoch = e, .epochs = spec.epochs, .images_done = k + 1,
						 .images_total = 10, .loss = 1.0};
			sched_job_progress(job, &p);
		}
		snprintf(path, sizeof path, "%s/optim-%d.safetensors", job->run_dir, e);
		snprintf(text, sizeof text, "optim=%d", e);
		write_text(path, text);
		snprintf(path, sizeof path, "%s/checkpoint-latest.safetensors", job->run_dir);
		snprintf(text, sizeof text, "epoch=%d", e);
		write_text(path, text);
		if (e > 1) {
			char old[1200];
			snprintf(old, sizeof old, "%s/optim-%d.safetensors", job->run_dir, e - 1);
			unlink(old);
		}
		struct metrics_row r = {.epoch = e, .loss = 5.0 / e, .lr = 0.03, .seconds = 0.01,
					.images_per_sec = 1000, .images = 10};
		rc = sched_epoch_done(job, &r, path, err);
		if (rc)
			goto out;
	}
out:
	pthread_mutex_lock(&sb->mu);
	sb->running--;
	pthread_mutex_unlock(&sb->mu);
	return rc;
}

struct fixture {
	char dir[512];
	struct store *st;
	struct stub stub;
	struct sse_bus *bus;
	struct prom *prom;
	struct scheduler *s;
};

static void fx_open(struct fixture *fx, const char *name)
{
	char db[600];
	struct isif_error err = {0};
	memset(&fx->stub, 0, sizeof fx->stub);
	pthread_mutex_init(&fx->stub.mu, NULL);
	snprintf(fx->dir, sizeof fx->dir, "%s/%s", test_tmpdir(), name);
	mkdir(fx->dir, 0750);
	snprintf(db, sizeof db, "%s/isifd.db", fx->dir);
	CHECK_MSG(store_open(&fx->st, db, isifd_migrations, isifd_n_migrations, &err) == 0,
		  "%s", err.msg);
	fx->bus = sse_bus_create(15);
	static const char *const labels[] = {"/jobs"};
	fx->prom = prom_create(labels, 1);
}

static void fx_sched(struct fixture *fx, int workers)
{
	struct sched_options o = {
		.workers = workers, .cores = 4, .max_queued = 100, .progress_interval_ms = 0,
		.state_dir = fx->dir, .run = stub_run, .run_user = &fx->stub, .bus = fx->bus,
		.prom = fx->prom,
	};
	CHECK_EQ(sched_create(&fx->s, fx->st, &o, NULL), 0);
}

static void fx_close(struct fixture *fx)
{
	if (fx->s) {
		CHECK_EQ(sched_stop(fx->s, 5, NULL), 0);
		sched_free(fx->s);
	}
	sse_bus_free(fx->bus);
	prom_free(fx->prom);
	store_close(fx->st);
	pthread_mutex_destroy(&fx->stub.mu);
}

/* A canonical spec: `epochs` of `ms` milliseconds, seed selects behaviour. */
static int64_t submit(struct fixture *fx, int epochs, int ms, int priority, int seed)
{
	struct isif_job_spec spec;
	isif_spec_default(&spec);
	snprintf(spec.dataset, sizeof spec.dataset, "fashion-mnist");
	spec.epochs = epochs;
	spec.train_subset = ms;
	spec.seed = (uint64_t)seed;
	char *json = isif_spec_to_json(&spec);
	int64_t id = 0;
	CHECK_EQ(sched_submit(fx->s, json, spec.dataset, epochs, priority, -1, &id, NULL), ISIF_OK);
	free(json);
	return id;
}

static bool wait_status(struct store *st, int64_t id, enum job_status want, int timeout_ms)
{
	enum job_status s = JOB_QUEUED;
	for (int t = 0; t < timeout_ms; t += 2) {
		if (store_job_status(st, id, &s, NULL) == ISIF_OK && s == want)
			return true;
		sleep_ms(2);
	}
	return false;
}

static int metrics_count(struct store *st, int64_t id, int *distinct_ok)
{
	struct metrics_row *rows;
	int n = 0;
	store_metrics(st, id, 0, &rows, &n, NULL);
	*distinct_ok = 1;
	for (int i = 0; i < n; i++)
		if (rows[i].epoch != i + 1)
			*distinct_ok = 0;
	free(rows);
	return n;
}

TEST(srv_sched_priority_then_fifo)
{
	struct fixture fx = {0};
	fx_open(&fx, "order");
	fx_sched(&fx, 1);
	/* Submitted before the workers start, so the order is the queue's. */
	int64_t a = submit(&fx, 1, 0, 0, 1), b = submit(&fx, 1, 0, 5, 1);
	int64_t c = submit(&fx, 1, 0, 0, 1), d = submit(&fx, 1, 0, 5, 1);
	int64_t e = submit(&fx, 1, 0, -3, 1);
	CHECK_EQ(sched_start(fx.s, NULL), 0);
	CHECK(wait_status(fx.st, e, JOB_SUCCEEDED, 5000));
	int64_t want[5] = {b, d, a, c, e};
	CHECK_EQ(fx.stub.n_order, 5);
	for (int i = 0; i < 5 && i < fx.stub.n_order; i++)
		CHECK_EQ(fx.stub.order[i], want[i]);
	fx_close(&fx);
}

TEST(srv_sched_workers_run_in_parallel)
{
	struct fixture fx = {0};
	fx_open(&fx, "parallel");
	fx_sched(&fx, 2);
	fx.stub.barrier = 2;
	CHECK_EQ(sched_start(fx.s, NULL), 0);
	int64_t a = submit(&fx, 2, 20, 0, 1), b = submit(&fx, 2, 20, 0, 1);
	CHECK(wait_status(fx.st, a, JOB_SUCCEEDED, 5000));
	CHECK(wait_status(fx.st, b, JOB_SUCCEEDED, 5000));
	CHECK_EQ(fx.stub.max_running, 2);
	int ok;
	CHECK_EQ(metrics_count(fx.st, a, &ok), 2);
	CHECK(ok);
	CHECK_EQ(sched_busy(fx.s), 0);
	fx_close(&fx);
}

TEST(srv_sched_cancel_queued_and_running)
{
	struct fixture fx = {0};
	fx_open(&fx, "cancel");
	fx_sched(&fx, 1);
	CHECK_EQ(sched_start(fx.s, NULL), 0);
	int64_t a = submit(&fx, 50, 40, 0, 1), b = submit(&fx, 1, 0, 0, 1);
	enum job_status before;
	CHECK(wait_status(fx.st, a, JOB_RUNNING, 2000));
	CHECK_EQ(sched_cancel(fx.s, b, &before, NULL), ISIF_OK);
	CHECK_EQ(before, JOB_QUEUED);
	CHECK(wait_status(fx.st, b, JOB_CANCELLED, 10)); /* at once */
	/* Let job a commit at least one epoch, then cancel it mid-epoch. */
	for (int t = 0; t < 2000; t += 2) {
		int ok;
		if (metrics_count(fx.st, a, &ok) >= 1)
			break;
		sleep_ms(2);
	}
	json_t *p = sched_progress_json(fx.s, a);
	CHECK(p != NULL);
	json_decref(p);
	CHECK_EQ(sched_cancel(fx.s, a, &before, NULL), ISIF_OK);
	CHECK_EQ(before, JOB_RUNNING);
	CHECK(wait_status(fx.st, a, JOB_CANCELLED, 2000));
	int ok;
	int n = metrics_count(fx.st, a, &ok);
	CHECK_MSG(n >= 1 && n < 50 && ok, "%d rows kept", n);
	CHECK_EQ(sched_cancel(fx.s, a, &before, NULL), ISIF_ECONFLICT);
	CHECK_EQ(before, JOB_CANCELLED);
	/* Job b never ran. */
	CHECK_EQ(fx.stub.n_order, 1);
	/* Delete removes the rows and the files. */
	char dir[700];
	snprintf(dir, sizeof dir, "%s/jobs/%lld", fx.dir, (long long)a);
	CHECK(access(dir, F_OK) == 0);
	CHECK_EQ(sched_delete(fx.s, a, &before, NULL), ISIF_OK);
	CHECK(access(dir, F_OK) != 0);
	fx_close(&fx);
}

TEST(srv_sched_failure_is_recorded)
{
	struct fixture fx = {0};
	fx_open(&fx, "fail");
	fx_sched(&fx, 1);
	CHECK_EQ(sched_start(fx.s, NULL), 0);
	int64_t a = submit(&fx, 1, 0, 0, 666), b = submit(&fx, 1, 0, 0, 1);
	CHECK(wait_status(fx.st, a, JOB_FAILED, 2000));
	CHECK(wait_status(fx.st, b, JOB_SUCCEEDED, 2000)); /* the worker goes on */
	json_t *job;
	CHECK_EQ(store_job_json(fx.st, a, &job, NULL), ISIF_OK);
	const char *e = json_string_value(json_object_get(job, "error"));
	CHECK(e && strcmp(e, "stub failure on purpose") == 0);
	json_decref(job);
	fx_close(&fx);
}

TEST(srv_sched_snapshot_keeps_one_committed_checkpoint)
{
	struct fixture fx = {0};
	fx_open(&fx, "snap");
	fx_sched(&fx, 1);
	CHECK_EQ(sched_start(fx.s, NULL), 0);
	int64_t a = submit(&fx, 3, 0, 0, 1);
	CHECK(wait_status(fx.st, a, JOB_SUCCEEDED, 2000));
	char rel[256], path[1024];
	int ep = 0;
	CHECK_EQ(store_job_checkpoint(fx.st, a, rel, sizeof rel, &ep, NULL), ISIF_OK);
	CHECK_EQ(ep, 3);
	CHECK(strcmp(rel, "jobs/1/ckpt-000003/checkpoint-latest.safetensors") == 0);
	snprintf(path, sizeof path, "%s/%s", fx.dir, rel);
	CHECK(file_says(path, "epoch=3"));
	snprintf(path, sizeof path, "%s/jobs/1/ckpt-000003/optim-3.safetensors", fx.dir);
	CHECK(file_says(path, "optim=3"));
	snprintf(path, sizeof path, "%s/jobs/1/ckpt-000002", fx.dir);
	CHECK(access(path, F_OK) != 0); /* the previous snapshot is gone */
	fx_close(&fx);
}

TEST(srv_sched_shutdown_requeues_then_resumes)
{
	struct fixture fx = {0};
	fx_open(&fx, "shutdown");
	fx_sched(&fx, 1);
	CHECK_EQ(sched_start(fx.s, NULL), 0);
	int64_t a = submit(&fx, 6, 60, 0, 1);
	int ok, n = 0;
	for (int t = 0; t < 3000 && n < 2; t += 2) {
		n = metrics_count(fx.st, a, &ok);
		sleep_ms(2);
	}
	CHECK_EQ(sched_stop(fx.s, 5, NULL), 0);
	sched_free(fx.s);
	fx.s = NULL;
	enum job_status s;
	CHECK_EQ(store_job_status(fx.st, a, &s, NULL), ISIF_OK);
	CHECK_EQ(s, JOB_QUEUED);
	int committed = metrics_count(fx.st, a, &ok);
	CHECK(committed >= 2 && committed < 6);
	/* A new scheduler (the next start) resumes it from its last epoch. */
	fx_sched(&fx, 1);
	CHECK_EQ(sched_start(fx.s, NULL), 0);
	CHECK(wait_status(fx.st, a, JOB_SUCCEEDED, 5000));
	CHECK_EQ(fx.stub.resumed_from[a], committed);
	CHECK(fx.stub.resume_file_ok[a]);
	CHECK_EQ(metrics_count(fx.st, a, &ok), 6);
	CHECK(ok);
	json_t *job;
	CHECK_EQ(store_job_json(fx.st, a, &job, NULL), ISIF_OK);
	CHECK_EQ(json_integer_value(json_object_get(job, "resumed_from_epoch")), committed);
	json_decref(job);
	fx_close(&fx);
}

TEST(srv_sched_crash_recovery_from_committed_snapshot)
{
	/* Build the state a kill -9 leaves: job running, epoch 2 committed with
	 * its snapshot, epoch 3 written by the trainer but not committed, and a
	 * stray row for epoch 3 (which the protocol never leaves, but resume
	 * must drop anyway). */
	struct fixture fx = {0};
	char path[1024];
	fx_open(&fx, "crash");
	fx_sched(&fx, 1);
	int64_t a = submit(&fx, 4, 0, 0, 1);
	struct job_claim cl;
	CHECK_EQ(store_job_claim(fx.st, &cl, NULL), ISIF_OK);
	job_claim_free(&cl);
	snprintf(path, sizeof path, "%s/jobs/%lld/ckpt-000002", fx.dir, (long long)a);
	char mk[3200];
	snprintf(mk, sizeof mk, "mkdir -p '%s' '%s/../run' '%s/../ckpt-000003.tmp'", path, path, path);
	CHECK_EQ(system(mk), 0);
	char f[1200];
	snprintf(f, sizeof f, "%s/checkpoint-latest.safetensors", path);
	write_text(f, "epoch=2");
	snprintf(f, sizeof f, "%s/optim-2.safetensors", path);
	write_text(f, "optim=2");
	for (int e = 1; e <= 3; e++) {
		struct metrics_row r = {.epoch = e, .loss = 1, .lr = 0.03, .images = 10};
		CHECK_EQ(store_epoch_commit(fx.st, a, &r,
					    e == 2 ? "jobs/1/ckpt-000002/checkpoint-latest.safetensors"
						   : NULL, NULL), ISIF_OK);
	}
	/* Epoch 3's row came without a new checkpoint path: the committed
	 * checkpoint is still epoch 2's, but jobs.epoch says 3. Put it back. */
	struct metrics_row r2 = {.epoch = 2, .loss = 1, .lr = 0.03, .images = 10};
	CHECK_EQ(store_epoch_commit(fx.st, a, &r2, NULL, NULL), ISIF_OK);
	CHECK_EQ(sched_start(fx.s, NULL), 0);
	CHECK(wait_status(fx.st, a, JOB_SUCCEEDED, 5000));
	CHECK_EQ(fx.stub.resumed_from[a], 2);
	CHECK(fx.stub.resume_file_ok[a]);
	int ok;
	CHECK_EQ(metrics_count(fx.st, a, &ok), 4);
	CHECK(ok); /* 1, 2, 3, 4 once each */
	snprintf(f, sizeof f, "%s/jobs/%lld/ckpt-000003.tmp", fx.dir, (long long)a);
	CHECK(access(f, F_OK) != 0); /* stale half-built snapshot cleaned */
	fx_close(&fx);
}

TEST(srv_sched_queue_full)
{
	struct fixture fx = {0};
	fx_open(&fx, "full");
	struct sched_options o = {
		.workers = 1, .cores = 1, .max_queued = 2, .state_dir = fx.dir, .run = stub_run,
		.run_user = &fx.stub,
	};
	CHECK_EQ(sched_create(&fx.s, fx.st, &o, NULL), 0);
	int64_t id;
	CHECK_EQ(sched_submit(fx.s, "{\"dataset\": \"d\"}", "d", 1, 0, -1, &id, NULL), ISIF_OK);
	CHECK_EQ(sched_submit(fx.s, "{\"dataset\": \"d\"}", "d", 1, 0, -1, &id, NULL), ISIF_OK);
	CHECK_EQ(sched_submit(fx.s, "{\"dataset\": \"d\"}", "d", 1, 0, -1, &id, NULL), ISIF_EBUSY);
	fx_close(&fx);
}

/* Runs sql on the store's own connection (a trigger standing in for a full
 * disk, say). */
static void store_sql(struct store *st, const char *sql)
{
	sqlite3 *db = store_lock(st);
	char *msg = NULL;
	CHECK_MSG(sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK, "%s: %s", sql,
		  msg ? msg : "?");
	sqlite3_free(msg);
	store_unlock(st);
}

TEST(srv_sched_accepted_cancel_survives_a_crash)
{
	/* The state kill -9 leaves after POST /cancel answered 202 and before
	 * the worker stopped: job a running with an epoch committed and
	 * cancel_requested; job b, stopped for a shutdown after its cancel was
	 * accepted, queued to resume. Both used to resume and succeed. */
	struct fixture fx = {0};
	fx_open(&fx, "cancel_crash");
	fx_sched(&fx, 1);
	int64_t a = submit(&fx, 3, 0, 0, 1), b = submit(&fx, 3, 0, 0, 1);
	int64_t c = submit(&fx, 2, 0, 0, 1);   /* no cancel: resumes as before */
	struct job_claim cl;
	enum job_status before;
	CHECK_EQ(store_job_claim(fx.st, &cl, NULL), ISIF_OK);
	CHECK_EQ(cl.id, a);
	job_claim_free(&cl);
	struct metrics_row r = {.epoch = 1, .loss = 4, .lr = 0.03, .images = 10};
	CHECK_EQ(store_epoch_commit(fx.st, a, &r, NULL, NULL), ISIF_OK);
	CHECK_EQ(store_job_cancel(fx.st, a, &before, NULL), ISIF_OK);
	CHECK_EQ(before, JOB_RUNNING);
	CHECK_EQ(store_job_claim(fx.st, &cl, NULL), ISIF_OK);
	CHECK_EQ(cl.id, b);
	job_claim_free(&cl);
	CHECK_EQ(store_job_cancel(fx.st, b, &before, NULL), ISIF_OK);
	CHECK_EQ(store_job_requeue(fx.st, b, NULL), ISIF_OK);
	CHECK_EQ(sched_start(fx.s, NULL), 0);
	CHECK(wait_status(fx.st, c, JOB_SUCCEEDED, 5000));
	enum job_status sa, sb;
	CHECK_EQ(store_job_status(fx.st, a, &sa, NULL), ISIF_OK);
	CHECK_EQ(store_job_status(fx.st, b, &sb, NULL), ISIF_OK);
	CHECK_MSG(sa == JOB_CANCELLED && sb == JOB_CANCELLED, "a %s, b %s", job_status_name(sa),
		  job_status_name(sb));
	int ok;
	CHECK_EQ(metrics_count(fx.st, a, &ok), 1);   /* its metrics are kept */
	CHECK_EQ(fx.stub.n_order, 1);                /* only c ran */
	json_t *job;
	CHECK_EQ(store_job_json(fx.st, a, &job, NULL), ISIF_OK);
	CHECK(json_string_value(json_object_get(job, "finished_at")) != NULL);
	CHECK(json_is_null(json_object_get(job, "resumed_from_epoch")));
	json_decref(job);
	fx_close(&fx);
}

/* The job's live end_pending as "status/retries>0", or "" when null. */
static void end_pending(struct scheduler *s, int64_t id, char *out, size_t len)
{
	json_t *job = json_pack("{s:I}", "id", (json_int_t)id);
	sched_job_live(s, job);
	json_t *p = json_object_get(job, "end_pending");
	if (json_is_object(p))
		snprintf(out, len, "%s/%s", json_string_value(json_object_get(p, "status")),
			 json_integer_value(json_object_get(p, "retries")) > 0 ? "retrying" : "0");
	else
		snprintf(out, len, "%s", "");
	json_decref(job);
}

#define REFUSE_END "CREATE TRIGGER refuse_end BEFORE UPDATE OF status ON jobs " \
	"WHEN NEW.status IN ('succeeded', 'failed', 'cancelled') BEGIN " \
	"SELECT RAISE(ABORT, 'database or disk is full (test)'); END"

TEST(srv_sched_end_recorded_by_retrying)
{
	struct fixture fx = {0};
	fx_open(&fx, "end_retry");
	fx_sched(&fx, 1);
	CHECK_EQ(sched_start(fx.s, NULL), 0);
	store_sql(fx.st, REFUSE_END);
	int64_t a = submit(&fx, 1, 0, 0, 1);
	char pending[64] = "";
	for (int t = 0; t < 5000 && !pending[0]; t += 5) {
		end_pending(fx.s, a, pending, sizeof pending);
		sleep_ms(5);
	}
	/* The run ended; its end is not recorded yet, and the job says so. */
	CHECK_MSG(strcmp(pending, "succeeded/retrying") == 0, "end_pending: \"%s\"", pending);
	enum job_status st, before;
	CHECK_EQ(store_job_status(fx.st, a, &st, NULL), ISIF_OK);
	CHECK_EQ(st, JOB_RUNNING);
	CHECK_EQ(sched_busy(fx.s), 1);
	struct isif_error err = {0};
	CHECK_EQ(sched_cancel(fx.s, a, &before, &err), ISIF_ECONFLICT);
	CHECK_MSG(strstr(err.msg, "it ends succeeded") && strstr(err.msg, "nothing left to cancel"),
		  "%s", err.msg);
	CHECK_EQ(sched_delete(fx.s, a, &before, &err), ISIF_ECONFLICT);
	CHECK_MSG(strstr(err.msg, "disk is full (test)"), "%s", err.msg);
	/* Room again: the worker records it on its own, no restart. */
	store_sql(fx.st, "DROP TRIGGER refuse_end");
	CHECK(wait_status(fx.st, a, JOB_SUCCEEDED, 10000));
	for (int t = 0; t < 2000 && sched_busy(fx.s); t += 5)
		sleep_ms(5);
	CHECK_EQ(sched_busy(fx.s), 0);
	end_pending(fx.s, a, pending, sizeof pending);
	CHECK_EQ(strlen(pending), 0);
	/* The worker is free for the next job. */
	int64_t b = submit(&fx, 1, 0, 0, 1);
	CHECK(wait_status(fx.st, b, JOB_SUCCEEDED, 5000));
	CHECK_EQ(sched_delete(fx.s, a, &before, NULL), ISIF_OK);
	fx_close(&fx);
}

TEST(srv_sched_stop_ends_end_retries)
{
	/* A stop while a job's end cannot be recorded returns in time; the job
	 * still shows running, and the next start finishes it. */
	struct fixture fx = {0};
	fx_open(&fx, "end_retry_stop");
	fx_sched(&fx, 1);
	CHECK_EQ(sched_start(fx.s, NULL), 0);
	store_sql(fx.st, REFUSE_END);
	int64_t a = submit(&fx, 1, 0, 0, 1);
	char pending[64] = "";
	for (int t = 0; t < 5000 && !pending[0]; t += 5) {
		end_pending(fx.s, a, pending, sizeof pending);
		sleep_ms(5);
	}
	CHECK(pending[0] != '\0');
	sleep_ms(300);   /* a few retries, into a longer backoff */
	double t0 = isif_now_s();
	CHECK_EQ(sched_stop(fx.s, 5, NULL), ISIF_OK);
	CHECK_MSG(isif_now_s() - t0 < 1.0, "stop took %.2f s", isif_now_s() - t0);
	sched_free(fx.s);
	fx.s = NULL;
	enum job_status st;
	CHECK_EQ(store_job_status(fx.st, a, &st, NULL), ISIF_OK);
	CHECK_EQ(st, JOB_RUNNING);
	store_sql(fx.st, "DROP TRIGGER refuse_end");
	fx_sched(&fx, 1);
	CHECK_EQ(sched_start(fx.s, NULL), 0);
	CHECK(wait_status(fx.st, a, JOB_SUCCEEDED, 5000));
	int ok;
	CHECK_EQ(metrics_count(fx.st, a, &ok), 1);
	fx_close(&fx);
}

TEST(srv_sched_live_phase_and_threads)
{
	struct fixture fx = {0};
	fx_open(&fx, "live");
	fx_sched(&fx, 1);
	CHECK_EQ(sched_threads_per_job(fx.s), 4);   /* cores 4 / 1 worker */
	CHECK_EQ(sched_start(fx.s, NULL), 0);
	int64_t a = submit(&fx, 50, 40, 0, 1);
	CHECK(wait_status(fx.st, a, JOB_RUNNING, 2000));
	json_t *job = NULL;
	for (int t = 0; t < 3000; t += 5) {
		json_decref(job);
		job = json_pack("{s:I}", "id", (json_int_t)a);
		sched_job_live(fx.s, job);
		if (json_is_string(json_object_get(job, "phase")))
			break;
		sleep_ms(5);
	}
	const char *phase = json_string_value(json_object_get(job, "phase"));
	json_t *progress = json_object_get(job, "progress");
	CHECK_MSG(phase && strcmp(phase, "training") == 0, "phase %s", phase ? phase : "null");
	CHECK(json_is_object(progress) &&
	      strcmp(json_string_value(json_object_get(progress, "phase")), "training") == 0);
	CHECK(json_is_null(json_object_get(job, "end_pending")));
	json_decref(job);
	enum job_status before;
	CHECK_EQ(sched_cancel(fx.s, a, &before, NULL), ISIF_OK);
	CHECK(wait_status(fx.st, a, JOB_CANCELLED, 2000));
	job = json_pack("{s:I}", "id", (json_int_t)a);
	sched_job_live(fx.s, job);
	CHECK(json_is_null(json_object_get(job, "phase")) &&
	      json_is_null(json_object_get(job, "progress")));
	json_decref(job);
	fx_close(&fx);
}

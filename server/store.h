/*
 * server/store.h — isifd's SQLite database: schema migrations, the durable
 * job queue, per-epoch metrics and the dataset registry. One connection in
 * WAL mode behind a mutex; every function is thread-safe and every
 * multi-statement change is one transaction.
 *
 * Not here: files (checkpoints live in the state directory; the store only
 * records their relative paths) and scheduling policy beyond the queue order.
 */
#ifndef ISIFD_STORE_H
#define ISIFD_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "migrations.h"

enum store_rc {
	STORE_OK = 0,
	STORE_ERR,       /* SQLite failed; err says how */
	STORE_NOTFOUND,  /* no such job / dataset */
	STORE_FULL,      /* the queue holds max_queued jobs already */
	STORE_CONFLICT,  /* the job is not in a state that allows this */
	STORE_EMPTY,     /* no queued job to claim */
};

enum job_status {
	JOB_QUEUED = 0,
	JOB_RUNNING,
	JOB_SUCCEEDED,
	JOB_FAILED,
	JOB_CANCELLED,
	JOB_STATUS_COUNT
};

/* "queued", "running", ...; job_status_parse returns -1 for an unknown name. */
const char *job_status_name(enum job_status s);
int job_status_parse(const char *name);
static inline bool job_status_final(enum job_status s) { return s >= JOB_SUCCEEDED; }

/* One epoch's metrics row (DESIGN "A metrics row"). */
struct metrics_row {
	int epoch;
	double loss;
	bool has_knn;
	double knn_top1, knn_top5;
	bool unseen;
	double recall_at[4];   /* R@1, 2, 4, 8 */
	double nmi;
	double lr, seconds, images_per_sec;
	int64_t images;        /* source images trained in the epoch */
};

/* What a worker needs to run a claimed job; strings owned (job_claim_free). */
struct job_claim {
	int64_t id;
	char *spec_json;
	int epoch;             /* epochs committed */
	char *checkpoint;      /* relative to the state dir, or NULL */
	bool resume;           /* it was running when the daemon stopped */
};

struct store;

/* Opens (creating) the database at path, refuses a damaged one (PRAGMA
 * quick_check) or one newer than migrations[n], and applies the migrations
 * not yet recorded in PRAGMA user_version, each in its own transaction. */
int store_open(struct store **out, const char *path,
	       const struct migration *migrations, int n, char *err, size_t errlen);
void store_close(struct store *st);

/* PRAGMA user_version (schema version). */
int store_schema_version(struct store *st);

/* Inserts a queued job unless max_queued jobs are waiting (STORE_FULL). */
int store_job_insert(struct store *st, const char *spec_json, const char *dataset,
		     int epochs, int priority, long max_queued, int64_t *id);

/* The job as DESIGN's JSON object (new reference), without "progress". */
int store_job_json(struct store *st, int64_t id, json_t **out);

/* {"jobs": [...]} newest first, optionally one status only (status < 0: all). */
int store_jobs_json(struct store *st, int status, int limit, json_t **out);

int store_job_status(struct store *st, int64_t id, enum job_status *status);

/* Takes the next queued job (resumed first, then priority, then FIFO) and
 * marks it running. STORE_EMPTY when none is waiting. */
int store_job_claim(struct store *st, struct job_claim *c);
void job_claim_free(struct job_claim *c);

/* Ends a job in a final state; error may be NULL. */
int store_job_finish(struct store *st, int64_t id, enum job_status status,
		     const char *error);

/* Puts a running job back in the queue to resume later (shutdown); that
 * run does not count as an attempt. */
int store_job_requeue(struct store *st, int64_t id);

/* At start: every job left running becomes queued with resume pending. */
int store_recover_running(struct store *st, int *n);

/* At start, before store_recover_running: a job left running whose last
 * max_attempts runs all ended with the daemon dying (`attempts`: runs
 * claimed since its last committed epoch or checkpoint) ends failed with a
 * message saying so; *n of them. max_attempts 0: no bound. */
int store_fail_interrupted(struct store *st, int max_attempts, int *n);

/* Cancels: a queued job ends at once; a running one gets cancel_requested.
 * *before is the status found. STORE_CONFLICT for a finished job. */
int store_job_cancel(struct store *st, int64_t id, enum job_status *before);

/* Deletes a finished job and its metrics; STORE_CONFLICT otherwise. */
int store_job_delete(struct store *st, int64_t id, enum job_status *status);

/* Points the job at another checkpoint (relative path) of the same epoch. */
int store_job_set_checkpoint(struct store *st, int64_t id, const char *checkpoint);

/* One transaction: the epoch's metrics row, the job's epoch counter and its
 * checkpoint (relative path, NULL keeps the old one). */
int store_epoch_commit(struct store *st, int64_t id, const struct metrics_row *r,
		       const char *checkpoint);

/* After resuming from epoch `from`: metrics rows past it are deleted, the
 * job's epoch set to it, resumed_from_epoch recorded, resume_pending cleared. */
int store_job_resumed(struct store *st, int64_t id, int from);

/* The job's committed checkpoint (relative path) into rel; STORE_EMPTY when
 * it has none yet. */
int store_job_checkpoint(struct store *st, int64_t id, char *rel, size_t len,
			 int *epoch);

/* Rows with epoch > since, ascending. */
int store_metrics(struct store *st, int64_t id, int since,
		  struct metrics_row **rows, int *n);

/* A row as JSON (new reference). */
json_t *metrics_row_json(const struct metrics_row *r);

/* Format name and path of a registered dataset. */
int store_dataset_lookup(struct store *st, const char *name, char *format,
			 size_t format_len, char *path, size_t path_len);

/* Number of jobs in each status. */
int store_count_by_status(struct store *st, long counts[JOB_STATUS_COUNT]);

/* Last SQLite error text (for logs); valid until the next call. */
const char *store_last_error(struct store *st);

/* ---- for store_*.c files that add queries of their own ------------------ */

struct sqlite3;
struct sqlite3_stmt;

/* Locks the connection for one unit of statements (store_unlock ends it). */
struct sqlite3 *store_lock(struct store *st);
void store_unlock(struct store *st);

/* Records SQLite's last message (store_last_error) under `what`; returns
 * STORE_ERR. Call with the connection locked. */
int store_fail(struct store *st, const char *what);

/* Column col of the current row as JSON: null, integer, real or string. */
json_t *store_column_json(struct sqlite3_stmt *s, int col);

#endif

/*
 * server/store.h — isifd's SQLite database: schema migrations, the durable
 * job queue, per-epoch metrics and the dataset registry. One connection in
 * WAL mode behind a mutex; every function is thread-safe and every
 * multi-statement change is one transaction. Every function that can fail
 * returns an enum isif_rc and writes its message into the caller's err
 * (NULL allowed) while it still holds the mutex: ISIF_EIO when SQLite
 * failed (the message is SQLite's, naming the first error of the call),
 * ISIF_ENOTFOUND, ISIF_ECONFLICT, ISIF_EBUSY, ISIF_EEMPTY and ISIF_ENOMEM
 * as documented per function.
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

#include "isif/base/common.h"
#include "isif/eval/simhist.h"
#include "migrations.h"

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
	double data_wait;      /* fraction of training time waiting for data; NAN: not recorded */
	const struct isif_simhist *sim; /* to store: the epoch's similarity histograms, or NULL */
	bool has_sim;          /* read back: the similarity table has the epoch */
	double sim_same_mean, sim_diff_mean; /* its means; NAN: no pairs of that kind */
	bool has_probe;        /* the linear probe ran (eval.linear_probe) */
	double probe_top1, probe_backbone_top1; /* its test top-1: embedding, backbone */
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
enum isif_rc store_open(struct store **out, const char *path,
	       const struct migration *migrations, int n, struct isif_error *err);
void store_close(struct store *st);

/* PRAGMA user_version (schema version) into *version. */
enum isif_rc store_schema_version(struct store *st, int *version, struct isif_error *err);

/* Inserts a queued job unless max_queued jobs are waiting (ISIF_EBUSY). */
enum isif_rc store_job_insert(struct store *st, const char *spec_json, const char *dataset,
		     int epochs, int priority, long max_queued, int64_t *id,
		     struct isif_error *err);

/* store_job_insert that also records the job's estimated peak memory in
 * bytes (memory_estimate_bytes; < 0: unknown). */
enum isif_rc store_job_insert_estimated(struct store *st, const char *spec_json,
					const char *dataset, int epochs, int priority,
					int64_t memory_estimate, long max_queued, int64_t *id,
					struct isif_error *err);

/* The job as DESIGN's JSON object (new reference), without "progress";
 * ISIF_ENOTFOUND for an unknown job. */
enum isif_rc store_job_json(struct store *st, int64_t id, json_t **out, struct isif_error *err);

/* {"jobs": [...]} newest first, optionally one status only (status < 0: all). */
enum isif_rc store_jobs_json(struct store *st, int status, int limit, json_t **out,
			     struct isif_error *err);

/* ISIF_ENOTFOUND for an unknown job. */
enum isif_rc store_job_status(struct store *st, int64_t id, enum job_status *status,
			      struct isif_error *err);

/* Takes the next queued job (resumed first, then priority, then FIFO) and
 * marks it running. ISIF_EEMPTY when none is waiting. */
enum isif_rc store_job_claim(struct store *st, struct job_claim *c, struct isif_error *err);
void job_claim_free(struct job_claim *c);

/* Ends a job in a final state; error may be NULL. */
enum isif_rc store_job_finish(struct store *st, int64_t id, enum job_status status,
		     const char *error, struct isif_error *err);

/* Puts a running job back in the queue to resume later (shutdown); that
 * run does not count as an attempt. */
enum isif_rc store_job_requeue(struct store *st, int64_t id, struct isif_error *err);

/* A run of job id failed in a way the next may not (an MPI rank died): the
 * job goes back to the queue to resume from its last committed checkpoint,
 * with error kept as its `error` until it ends, when it has had fewer than
 * max_attempts runs since it last made progress (`attempts`, 003) and no
 * cancel is pending. *retried says whether it did; *attempts is its count
 * of runs since progress either way. */
enum isif_rc store_job_retry(struct store *st, int64_t id, const char *error, int max_attempts,
			     bool *retried, int *attempts, struct isif_error *err);

/* At start, before the two below: a job left running or queued whose
 * cancel was accepted (cancel_requested: POST /jobs/{id}/cancel answered
 * 202, then isifd died or stopped before the job did) ends cancelled,
 * keeping its metrics and checkpoint; *n of them. */
enum isif_rc store_end_cancelled(struct store *st, int *n, struct isif_error *err);

/* At start: every job left running becomes queued with resume pending. */
enum isif_rc store_recover_running(struct store *st, int *n, struct isif_error *err);

/* At start, before store_recover_running: a job left running whose last
 * max_attempts runs all ended with the daemon dying (`attempts`: runs
 * claimed since its last committed epoch or checkpoint) ends failed with a
 * message saying so; *n of them. max_attempts 0: no bound. */
enum isif_rc store_fail_interrupted(struct store *st, int max_attempts, int *n,
				    struct isif_error *err);

/* Cancels: a queued job ends at once; a running one gets cancel_requested.
 * *before is the status found. ISIF_ECONFLICT for a finished job. */
enum isif_rc store_job_cancel(struct store *st, int64_t id, enum job_status *before,
			      struct isif_error *err);

/* Deletes a finished job and its metrics; ISIF_ECONFLICT otherwise. */
enum isif_rc store_job_delete(struct store *st, int64_t id, enum job_status *status,
			      struct isif_error *err);

/* Records the compute threads the job's run got. */
enum isif_rc store_job_set_threads(struct store *st, int64_t id, int threads,
				   struct isif_error *err);

/* Points the job at another checkpoint (relative path) of the same epoch. */
enum isif_rc store_job_set_checkpoint(struct store *st, int64_t id, const char *checkpoint,
				      struct isif_error *err);

/* One transaction: the epoch's metrics row, the job's epoch counter and its
 * checkpoint (relative path, NULL keeps the old one). */
enum isif_rc store_epoch_commit(struct store *st, int64_t id, const struct metrics_row *r,
		       const char *checkpoint, struct isif_error *err);

/* After resuming from epoch `from`: metrics rows past it are deleted, the
 * job's epoch set to it, resumed_from_epoch recorded, resume_pending cleared. */
enum isif_rc store_job_resumed(struct store *st, int64_t id, int from, struct isif_error *err);

/* The job's committed checkpoint (relative path) into rel; ISIF_EEMPTY when
 * it has none yet. */
enum isif_rc store_job_checkpoint(struct store *st, int64_t id, char *rel, size_t len,
			 int *epoch, struct isif_error *err);

/* Rows with epoch > since, ascending. */
enum isif_rc store_metrics(struct store *st, int64_t id, int since,
		  struct metrics_row **rows, int *n, struct isif_error *err);

/* A row as JSON (new reference). */
json_t *metrics_row_json(const struct metrics_row *r);

/* The similarity histograms of job id at epoch (0: the latest) as the JSON
 * of GET /jobs/{id}/similarity. ISIF_EEMPTY: the job has none (yet);
 * ISIF_ENOTFOUND: not that epoch (the message lists the epochs there are). */
enum isif_rc store_similarity(struct store *st, int64_t id, int epoch, json_t **out,
			      struct isif_error *err);

/* Format name and path of a registered dataset; ISIF_ENOTFOUND. */
enum isif_rc store_dataset_lookup(struct store *st, const char *name, char *format,
			 size_t format_len, char *path, size_t path_len, struct isif_error *err);

/* Number of jobs in each status. */
enum isif_rc store_count_by_status(struct store *st, long counts[JOB_STATUS_COUNT],
				   struct isif_error *err);

/* ---- for store_*.c files that add queries of their own ------------------ */

struct sqlite3;
struct sqlite3_stmt;

/* A counter that changes after every write that may change what
 * store_index_get answers (an index row put, a job deleted): a reader that
 * saw the same value before its lookup may reuse that lookup's answer. */
long long store_index_generation(struct store *st);
void store_index_changed(struct store *st);

/* Locks the connection for one unit of statements (store_unlock ends it). */
struct sqlite3 *store_lock(struct store *st);
void store_unlock(struct store *st);

/* Writes SQLite's last message under `what` into err (and the log); returns
 * ISIF_EIO. Call with the connection locked, before any other statement. */
enum isif_rc store_fail(struct store *st, const char *what, struct isif_error *err);

/* Column col of the current row as JSON: null, integer, real or string. */
json_t *store_column_json(struct sqlite3_stmt *s, int col);

#endif

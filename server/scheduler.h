/*
 * server/scheduler.h — the worker pool that runs training jobs from the
 * durable queue in the store: --workers threads take queued jobs in
 * priority then FIFO order (jobs resumed after a restart first), run them
 * through an injected run function (the trainer in the daemon, a stub in
 * tests), commit each epoch's metrics row with its checkpoint, publish
 * events, and handle cancel and shutdown.
 *
 * Checkpoints: the trainer writes into <state>/jobs/<id>/run/. When an
 * epoch ends, its files are hard-linked into <state>/jobs/<id>/ckpt-NNNNNN/
 * (built under a temporary name, then renamed) before the metrics row and
 * the checkpoint's path are committed in one transaction; the previous
 * snapshot is removed after the commit. So the database always names a
 * complete checkpoint whose epoch equals its last metrics row: after a
 * crash at any point the job resumes from it and no epoch is lost or
 * counted twice.
 *
 * Thread-safe.
 */
#ifndef ISIFD_SCHEDULER_H
#define ISIFD_SCHEDULER_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "isif/train/train.h"
#include "prom.h"
#include "sse.h"
#include "store.h"

struct scheduler;

/* What the run function gets for one job. */
struct sched_job {
	int64_t id;
	const char *spec_json;      /* canonical spec */
	int threads;                /* the budget, cores/workers: the spec may ask for fewer */
	const char *job_dir;        /* <state>/jobs/<id> */
	const char *run_dir;        /* <job_dir>/run, exists: the trainer's output directory */
	const char *checkpoint;     /* resume from this file, or NULL to start fresh */
	int checkpoint_epoch;       /* epochs the checkpoint holds */
	atomic_int *cancel;         /* raised by cancel and shutdown */
	bool retryable;             /* set by the run: its failure may pass on another
				     * attempt (an MPI rank died), see store_job_retry */
	struct scheduler *sched;
	int worker;
};

/* Trains job; returns ISIF_OK, ISIF_ECANCELLED after *job->cancel, or
 * another isif_rc with a message in err. */
typedef enum isif_rc (*sched_run_fn)(void *user, struct sched_job *job, struct isif_error *err);

struct sched_options {
	int workers;
	int cores;                  /* 0: online cores */
	long max_queued;
	int max_attempts;           /* see store_fail_interrupted; 0: no bound */
	int progress_interval_ms;
	const char *state_dir;
	sched_run_fn run;
	void *run_user;
	struct sse_bus *bus;        /* may be NULL */
	struct prom *prom;          /* may be NULL */
};

/* A progress snapshot from the trainer (see isif_progress). */
struct job_progress {
	int epoch, epochs;
	enum isif_phase phase;
	int64_t images_done, images_total;   /* of the phase */
	double images_per_sec, eta_seconds, loss;
};

enum isif_rc sched_create(struct scheduler **out, struct store *st, const struct sched_options *o,
			  struct isif_error *err);

/* Ends cancelled the jobs whose cancel was accepted before the previous
 * process died, fails jobs left running by it that reached max_attempts,
 * requeues the others, then starts the workers. */
enum isif_rc sched_start(struct scheduler *s, struct isif_error *err);

/* Queues a job (ISIF_EBUSY beyond max_queued) with its estimated peak
 * memory in bytes (< 0: unknown) and wakes a worker. */
enum isif_rc sched_submit(struct scheduler *s, const char *spec_json, const char *dataset,
			  int epochs, int priority, int64_t memory_estimate, int64_t *id,
			  struct isif_error *err);

/* Wakes the workers after jobs were queued behind the scheduler's back
 * (store_group_create inserts a group's jobs in one transaction). */
void sched_wake(struct scheduler *s);

/* Cancels a queued job at once or asks a running one to stop between
 * batches (durably: see store_end_cancelled). *before: the status found.
 * ISIF_ECONFLICT if already finished, or if its run has ended and only
 * recording that is pending (end_pending, see sched_job_live). */
enum isif_rc sched_cancel(struct scheduler *s, int64_t id, enum job_status *before,
			  struct isif_error *err);

/* Deletes a finished job, its rows and its files; ISIF_ECONFLICT if it has
 * not finished (recording its end pending included). */
enum isif_rc sched_delete(struct scheduler *s, int64_t id, enum job_status *status,
			  struct isif_error *err);

/*
 * Stops: running jobs are cancelled between batches and go back to the
 * queue to resume at the next start; waits at most timeout_s for the
 * workers. Returns ISIF_OK when every worker ended, ISIF_EBUSY on timeout
 * (the caller should then exit without freeing).
 */
enum isif_rc sched_stop(struct scheduler *s, int timeout_s, struct isif_error *err);
void sched_free(struct scheduler *s);

/* The running job's progress as JSON (new reference), or NULL. */
json_t *sched_progress_json(struct scheduler *s, int64_t id);

/*
 * Sets the live fields of a job object (the store's JSON, with "id"):
 * "progress" (sched_progress_json or null), "phase" ("training",
 * "evaluating", or null when it is not running or has not reported yet)
 * and "end_pending": null, or while the job's run has ended but recording
 * that failed (a full disk, say) {"status": the final status it gets,
 * "error": why recording failed, "retries": attempts so far}; the worker
 * retries with backoff until it succeeds or isifd stops.
 */
void sched_job_live(struct scheduler *s, json_t *job);

/* Compute threads each job gets unless its spec asks for fewer: --cores
 * (or the online cores) / --workers, at least 1. */
int sched_threads_per_job(const struct scheduler *s);

int sched_workers(const struct scheduler *s);
int sched_busy(struct scheduler *s);

/* The count of jobs whose run is under way (training or evaluating, MPI
 * included), for readers that must never block: load it atomically (the
 * search threads' CPU policy, search.h). Lives as long as s. */
const atomic_int *sched_running_jobs(struct scheduler *s);

/* ---- called by the run function ---------------------------------------- */

/* An epoch ended and its checkpoint (a file in run_dir, or NULL) is on disk:
 * snapshot it, commit the row, publish the event. ISIF_EIO on failure. */
enum isif_rc sched_epoch_done(struct sched_job *job, const struct metrics_row *r,
		     const char *checkpoint_path, struct isif_error *err);

/* The trainer stopped for a shutdown after writing a checkpoint inside epoch
 * epoch + 1 (step batches done): snapshot it and make it the job's
 * checkpoint, so the next start resumes at that batch. The epoch counter and
 * the metrics stay as they are. */
enum isif_rc sched_stop_checkpoint(struct sched_job *job, int epoch, int step,
			  const char *checkpoint_path, struct isif_error *err);

/* Progress of the running epoch (rate-limited events; a new phase and a
 * phase's end are always sent). */
void sched_job_progress(struct sched_job *job, const struct job_progress *p);

/* The run's trainer got `threads` compute threads (and `loader` loader
 * threads): recorded in the job (its "threads") and logged. */
void sched_job_threads(struct sched_job *job, int threads, int loader);

#endif

/*
 * server/scheduler.c — worker threads over the store's job queue (see
 * scheduler.h for the contract and the checkpoint protocol).
 *
 * Locking: s->mu guards the worker slots (which job each runs, its cancel
 * reason and progress, a pending end) and the wake-up generation. A claim
 * and a cancel both hold s->mu around their store calls, so a cancel either
 * finds the job still queued or finds the slot already naming it. Lock
 * order: s->mu → store mutex; the SSE bus and prom locks are leaves.
 *
 * A job's end is recorded by its worker, which keeps the job until the
 * store has taken it: when that write fails (a full disk), the worker
 * retries with backoff (END_RETRY_FIRST_S doubling to END_RETRY_MAX_S), the
 * job shows end_pending, and cancel and delete answer 409 saying so. Only
 * a stop ends the retries; the next start then resumes the job, or ends it
 * cancelled when its cancel had been accepted.
 */
#include "scheduler.h"

#include "isif/train/train.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "isif/base/common.h"
#include "isif/base/clock.h"
#include "log.h"

#define END_RETRY_FIRST_S 0.1
#define END_RETRY_MAX_S 5.0

enum cancel_reason { REASON_NONE = 0, REASON_USER, REASON_SHUTDOWN };

struct worker {
	pthread_t thread;
	struct scheduler *s;
	int index;
	bool started, joined;
	int64_t job_id;               /* 0: idle */
	atomic_int cancel;
	enum cancel_reason reason;
	bool has_progress;
	struct job_progress progress;
	double last_progress_event;
	char snapshot[PATH_MAX];      /* committed checkpoint directory, "" if none */
	/* the run ended but recording its end failed: retrying */
	bool ending;
	enum job_status end_status;
	int end_retries;
	char end_error[ISIF_ERR_LEN];
};

struct scheduler {
	struct store *st;
	struct sched_options o;
	char state_dir[PATH_MAX];
	int threads_per_job;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	uint64_t gen;                 /* bumped by every submit */
	bool stopping;
	struct worker *workers;
	atomic_int running;           /* runs under way (sched_running_jobs) */
};

/* ---- files ---------------------------------------------------------------- */

/* snprintf into a path buffer; -1 (errno ENAMETOOLONG) when it does not fit. */
static int path_fmt(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int path_fmt(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= len) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

static int mkdir_p(const char *path)
{
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof tmp, "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0750) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(tmp, 0750) != 0 && errno != EEXIST ? -1 : 0;
}

static int remove_entry(const char *path, const struct stat *sb, int type, struct FTW *f)
{
	(void)sb;
	(void)f;
	return type == FTW_DP ? rmdir(path) : unlink(path);
}

/* rm -rf path; a missing path is fine. */
static int remove_tree(const char *path)
{
	struct stat st;
	if (lstat(path, &st) != 0)
		return errno == ENOENT ? 0 : -1;
	return nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	close(fd);
	return rc;
}

/* Copies src to dst and fsyncs it (when a hard link is not possible). */
static int copy_file(const char *src, const char *dst)
{
	char buf[1 << 16];
	int in = open(src, O_RDONLY | O_CLOEXEC), out = -1, rc = -1;
	if (in < 0)
		return -1;
	out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (out < 0)
		goto done;
	for (;;) {
		ssize_t n = read(in, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto done;
		if (n == 0)
			break;
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(out, buf + off, (size_t)(n - off));
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				goto done;
			off += w;
		}
	}
	rc = fsync(out);
done:
	if (out >= 0 && close(out) != 0)
		rc = -1;
	close(in);
	return rc;
}

/* Links (or copies) every complete file of src_dir into a new dst_dir,
 * built as dst_dir.tmp and renamed into place. */
static int snapshot_dir(const char *src_dir, const char *dst_dir)
{
	char tmp[PATH_MAX], from[PATH_MAX], to[PATH_MAX];
	if (path_fmt(tmp, sizeof tmp, "%s.tmp", dst_dir) || remove_tree(tmp) != 0 ||
	    mkdir(tmp, 0750) != 0)
		return -1;
	DIR *d = opendir(src_dir);
	if (!d)
		return -1;
	struct dirent *e;
	int rc = 0;
	while (rc == 0 && (e = readdir(d))) {
		struct stat sb;
		if (e->d_name[0] == '.' || strstr(e->d_name, ".tmp."))
			continue;
		if (path_fmt(from, sizeof from, "%s/%s", src_dir, e->d_name) ||
		    path_fmt(to, sizeof to, "%s/%s", tmp, e->d_name)) {
			rc = -1;
			break;
		}
		if (lstat(from, &sb) != 0 || !S_ISREG(sb.st_mode))
			continue;
		if (link(from, to) != 0)
			rc = copy_file(from, to);
	}
	closedir(d);
	if (rc == 0)
		rc = fsync_dir(tmp);
	if (rc == 0)
		rc = remove_tree(dst_dir);
	if (rc == 0)
		rc = rename(tmp, dst_dir);
	return rc;
}

/* Removes every ckpt-* entry of job_dir except `keep` (a full path or ""). */
static void remove_stale_snapshots(const char *job_dir, const char *keep)
{
	char path[PATH_MAX];
	DIR *d = opendir(job_dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (strncmp(e->d_name, "ckpt-", 5) != 0)
			continue;
		if (path_fmt(path, sizeof path, "%s/%s", job_dir, e->d_name) == 0 &&
		    strcmp(path, keep) != 0)
			remove_tree(path);
	}
	closedir(d);
}

/* ---- events ----------------------------------------------------------------- */

/* Publishes the job's current row as a "state" event, shaped as GET
 * /jobs/{id} shows it: "progress" included (null once not running). */
static void publish_state(struct scheduler *s, int64_t id)
{
	json_t *job = NULL;
	if (!s->o.bus || store_job_json(s->st, id, &job, NULL) != ISIF_OK)
		return;
	sched_job_live(s, job);
	const char *status = json_string_value(json_object_get(job, "status"));
	int st = status ? job_status_parse(status) : -1;
	sse_publish(s->o.bus, id, "state", job, st >= 0 && job_status_final(st));
	json_decref(job);
}

/* ---- the worker ------------------------------------------------------------- */

/* The worker that holds job id, or NULL; s->mu held. */
static struct worker *worker_of(struct scheduler *s, int64_t id)
{
	for (int i = 0; i < s->o.workers; i++)
		if (s->workers[i].job_id == id)
			return &s->workers[i];
	return NULL;
}

/* Waits up to `seconds` on s->cond, or until the scheduler stops; s->mu held. */
static void wait_unless_stopping(struct scheduler *s, double seconds)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	long ns = until.tv_nsec + (long)((seconds - (long)seconds) * 1e9);
	until.tv_sec += (time_t)seconds + ns / 1000000000L;
	until.tv_nsec = ns % 1000000000L;
	while (!s->stopping && pthread_cond_timedwait(&s->cond, &s->mu, &until) == 0)
		;
}

/* Frees the worker's slot; s->mu held. */
static void release_slot_locked(struct worker *w)
{
	w->job_id = 0;
	w->has_progress = false;
	w->ending = false;
	w->end_retries = 0;
	w->end_error[0] = '\0';
}

static void release_slot(struct scheduler *s, struct worker *w)
{
	pthread_mutex_lock(&s->mu);
	release_slot_locked(w);
	pthread_mutex_unlock(&s->mu);
}

/*
 * Records that job id ended in status and frees the worker, retrying while
 * the store fails (see the file comment). The write and the release happen
 * under s->mu together, so a cancel or delete either finds the worker
 * holding the job or finds it final, and a job that shows final has a free
 * worker. Returns false when the scheduler stopped first: the job then
 * still shows running, and the next start takes it up.
 */
static bool record_end(struct scheduler *s, struct worker *w, int64_t id, enum job_status status,
		       const char *error)
{
	double delay = END_RETRY_FIRST_S;
	for (int attempt = 1;; attempt++) {
		struct isif_error e_db = {0};
		pthread_mutex_lock(&s->mu);
		bool done = store_job_finish(s->st, id, status, error, &e_db) == ISIF_OK;
		if (done) {
			release_slot_locked(w);
		} else {
			w->ending = true;
			w->end_status = status;
			w->end_retries = attempt;
			snprintf(w->end_error, sizeof w->end_error, "%s", e_db.msg);
		}
		bool stopping = s->stopping;
		pthread_mutex_unlock(&s->mu);
		if (done) {
			if (attempt > 1)
				log_info("job %lld: its end (%s) recorded at attempt %d", (long long)id,
					 job_status_name(status), attempt);
			return true;
		}
		if (attempt == 1) {
			log_error("job %lld: ended %s, but recording that failed (%s); retrying until it "
				  "succeeds", (long long)id, job_status_name(status), e_db.msg);
			publish_state(s, id);   /* event streams see end_pending */
		} else if (attempt % 12 == 0) {
			log_warn("job %lld: still cannot record its end (%s) after %d attempts: %s",
				 (long long)id, job_status_name(status), attempt, e_db.msg);
		}
		if (stopping) {
			log_error("job %lld: isifd stops before its end (%s) could be recorded; the "
				  "next start takes it up again", (long long)id, job_status_name(status));
			release_slot(s, w);
			return false;
		}
		pthread_mutex_lock(&s->mu);
		wait_unless_stopping(s, delay);
		pthread_mutex_unlock(&s->mu);
		delay = delay * 2 < END_RETRY_MAX_S ? delay * 2 : END_RETRY_MAX_S;
	}
}

/*
 * A failed run the next may get past (job->retryable: an MPI rank died) is
 * retried as a crash of isifd is: the job goes back to the queue and resumes
 * from its last committed checkpoint, while it has had fewer than
 * --max-attempts runs since its last completed epoch (0: never retried: an
 * unbounded retry of a failure that repeats would never end). Returns true
 * when it was requeued; otherwise *why says why it was not (for the error).
 */
static bool retry_job(struct scheduler *s, struct worker *w, int64_t id, const char *err,
		      char *why, size_t len)
{
	bool retried = false;
	int attempts = 0;
	struct isif_error e_db = {0};
	char msg[ISIF_ERR_LEN + 96];
	why[0] = '\0';
	if (s->o.max_attempts <= 0) {
		snprintf(why, len, " (not retried: --max-attempts 0)");
		return false;
	}
	snprintf(msg, sizeof msg, "an attempt failed and the job was retried from its last "
		 "checkpoint: %s", err);
	pthread_mutex_lock(&s->mu);
	if (store_job_retry(s->st, id, msg, s->o.max_attempts, &retried, &attempts, &e_db) != ISIF_OK)
		log_error("job %lld: cannot requeue the failed attempt: %s", (long long)id, e_db.msg);
	if (retried) {   /* queued again: any idle worker may claim it */
		release_slot_locked(w);
		s->gen++;
		pthread_cond_broadcast(&s->cond);
	}
	pthread_mutex_unlock(&s->mu);
	if (retried) {
		log_warn("job %lld: an attempt failed (%s); retrying from its last checkpoint "
			 "(%d runs since its last completed epoch, --max-attempts %d)", (long long)id,
			 err, attempts, s->o.max_attempts);
		publish_state(s, id);
	} else if (attempts >= s->o.max_attempts) {
		snprintf(why, len, " (%d runs in a row without a completed epoch; not retried: "
			 "--max-attempts %d)", attempts, s->o.max_attempts);
	}
	return retried;
}

static void finish_job(struct scheduler *s, struct worker *w, const struct job_claim *c,
		       int rc, bool retryable, const char *err)
{
	pthread_mutex_lock(&s->mu);
	enum cancel_reason reason = w->reason;
	w->has_progress = false;
	pthread_mutex_unlock(&s->mu);

	enum job_status status;
	if (rc == ISIF_OK)
		status = JOB_SUCCEEDED;
	else if (rc == ISIF_ECANCELLED && reason == REASON_SHUTDOWN) {
		/* A cancel accepted meanwhile stays in cancel_requested: the next
		 * start ends the job cancelled instead of resuming it. */
		store_job_requeue(s->st, c->id, NULL);   /* logged by the store */
		release_slot(s, w);
		log_info("job %lld: stopped for shutdown at a batch boundary; resumes at the next start",
			 (long long)c->id);
		return;
	} else if (rc == ISIF_ECANCELLED)
		status = JOB_CANCELLED;
	else
		status = JOB_FAILED;
	char why[160] = "", full[ISIF_ERR_LEN + 200];
	if (status == JOB_FAILED && retryable && retry_job(s, w, c->id, err, why, sizeof why))
		return;
	snprintf(full, sizeof full, "%s%s", err, why);
	err = full;
	if (!record_end(s, w, c->id, status, status == JOB_FAILED ? err : NULL))
		return;
	if (s->o.prom)
		prom_add_job_finished(s->o.prom, status);
	if (status == JOB_FAILED)
		log_error("job %lld: failed: %s", (long long)c->id, err);
	else
		log_info("job %lld: %s", (long long)c->id, job_status_name(status));
	publish_state(s, c->id);
}

static void run_claimed(struct scheduler *s, struct worker *w, struct job_claim *c)
{
	char job_dir[PATH_MAX], run_dir[PATH_MAX], ckpt[PATH_MAX];
	struct isif_error err = {0};
	struct sched_job job = {0};
	int rc = ISIF_OK;
	w->snapshot[0] = '\0';
	if (path_fmt(job_dir, sizeof job_dir, "%s/jobs/%lld", s->state_dir, (long long)c->id) ||
	    path_fmt(run_dir, sizeof run_dir, "%s/run", job_dir) ||
	    (c->checkpoint && path_fmt(ckpt, sizeof ckpt, "%s/%s", s->state_dir, c->checkpoint))) {
		rc = isif_fail(&err, ISIF_EINVAL, "state directory path too long");
		goto done;
	}
	if (c->checkpoint) {
		/* The snapshot directory is the checkpoint file's directory. */
		memcpy(w->snapshot, ckpt, sizeof ckpt);
		char *slash = strrchr(w->snapshot, '/');
		if (slash)
			*slash = '\0';
	}
	if (remove_tree(run_dir) != 0 || mkdir_p(run_dir) != 0) {
		rc = isif_fail(&err, ISIF_EIO, "cannot create %s: %s", run_dir, strerror(errno));
		goto done;
	}
	remove_stale_snapshots(job_dir, w->snapshot);
	if (c->resume) {
		/* Rows past the committed checkpoint cannot exist under the
		 * protocol above, but a restart must never show an epoch twice. */
		int from = c->checkpoint ? c->epoch : 0;
		struct isif_error e_db;
		if (store_job_resumed(s->st, c->id, from, &e_db) != ISIF_OK) {
			rc = isif_fail(&err, ISIF_EIO, "cannot record the resume: %s", e_db.msg);
			goto done;
		}
		log_info("job %lld: resuming from epoch %d", (long long)c->id, from);
	}
	job.id = c->id;
	job.spec_json = c->spec_json;
	job.threads = s->threads_per_job;
	job.job_dir = job_dir;
	job.run_dir = run_dir;
	job.checkpoint = c->checkpoint && c->resume ? ckpt : NULL;
	job.checkpoint_epoch = c->checkpoint && c->resume ? c->epoch : 0;
	job.cancel = &w->cancel;
	job.sched = s;
	job.worker = w->index;
	log_info("job %lld: running on worker %d (budget %d threads)", (long long)c->id, w->index,
		 job.threads);
	publish_state(s, c->id);
	atomic_fetch_add(&s->running, 1);
	rc = s->o.run(s->o.run_user, &job, &err);
	atomic_fetch_sub(&s->running, 1);
done:
	finish_job(s, w, c, rc, job.retryable, err.msg[0] ? err.msg : isif_strerror(rc));
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct scheduler *s = w->s;
	for (;;) {
		struct job_claim c;
		pthread_mutex_lock(&s->mu);
		if (s->stopping) {
			pthread_mutex_unlock(&s->mu);
			break;
		}
		uint64_t gen = s->gen;
		enum isif_rc rc = store_job_claim(s->st, &c, NULL);   /* failures are logged */
		if (rc == ISIF_OK) {
			w->job_id = c.id;
			w->reason = REASON_NONE;
			w->has_progress = false;
			w->last_progress_event = 0;
			atomic_store(&w->cancel, 0);
			pthread_mutex_unlock(&s->mu);
			run_claimed(s, w, &c);
			job_claim_free(&c);
			continue;
		}
		/* Nothing queued (or the store failed: retry in a second). */
		while (!s->stopping && s->gen == gen) {
			if (rc == ISIF_EEMPTY) {
				pthread_cond_wait(&s->cond, &s->mu);
			} else {
				struct timespec ts;
				clock_gettime(CLOCK_REALTIME, &ts);
				ts.tv_sec += 1;
				pthread_cond_timedwait(&s->cond, &s->mu, &ts);
				break;
			}
		}
		pthread_mutex_unlock(&s->mu);
	}
	return NULL;
}

/* ---- public ------------------------------------------------------------------ */

enum isif_rc sched_create(struct scheduler **out, struct store *st, const struct sched_options *o,
			  struct isif_error *err)
{
	struct scheduler *s = calloc(1, sizeof *s);
	if (!s)
		return isif_fail(err, ISIF_ENOMEM, "out of memory");
	s->workers = calloc((size_t)o->workers, sizeof *s->workers);
	if (!s->workers) {
		free(s);
		return isif_fail(err, ISIF_ENOMEM, "out of memory");
	}
	s->st = st;
	s->o = *o;
	snprintf(s->state_dir, sizeof s->state_dir, "%s", o->state_dir);
	s->o.state_dir = s->state_dir;
	int cores = o->cores > 0 ? o->cores : (int)sysconf(_SC_NPROCESSORS_ONLN);
	s->threads_per_job = cores / o->workers > 0 ? cores / o->workers : 1;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cond, NULL);
	for (int i = 0; i < o->workers; i++) {
		s->workers[i].s = s;
		s->workers[i].index = i;
		atomic_init(&s->workers[i].cancel, 0);
	}
	*out = s;
	return ISIF_OK;
}

enum isif_rc sched_start(struct scheduler *s, struct isif_error *err)
{
	int n = 0;
	enum isif_rc rc = store_end_cancelled(s->st, &n, err);
	if (rc)
		return rc;
	for (int i = 0; i < n && s->o.prom; i++)
		prom_add_job_finished(s->o.prom, JOB_CANCELLED);
	rc = store_fail_interrupted(s->st, s->o.max_attempts, &n, err);
	if (rc)
		return rc;
	for (int i = 0; i < n && s->o.prom; i++)
		prom_add_job_finished(s->o.prom, JOB_FAILED);
	rc = store_recover_running(s->st, &n, err);
	if (rc)
		return rc;
	if (n)
		log_info("scheduler: %d job(s) were running when isifd stopped; they resume first", n);
	for (int i = 0; i < s->o.workers; i++) {
		int e = pthread_create(&s->workers[i].thread, NULL, worker_main, &s->workers[i]);
		if (e != 0)
			return isif_fail(err, ISIF_ENOMEM, "starting worker %d: %s", i, strerror(e));
		s->workers[i].started = true;
	}
	return ISIF_OK;
}

enum isif_rc sched_submit(struct scheduler *s, const char *spec_json, const char *dataset,
			  int epochs, int priority, int64_t memory_estimate, int64_t *id,
			  struct isif_error *err)
{
	enum isif_rc rc = store_job_insert_estimated(s->st, spec_json, dataset, epochs, priority,
						     memory_estimate, s->o.max_queued, id, err);
	if (rc == ISIF_OK) {
		pthread_mutex_lock(&s->mu);
		s->gen++;
		pthread_cond_broadcast(&s->cond);
		pthread_mutex_unlock(&s->mu);
		log_info("job %lld: queued (%s, %d epochs, priority %d)", (long long)*id, dataset,
			 epochs, priority);
	}
	return rc;
}

void sched_wake(struct scheduler *s)
{
	pthread_mutex_lock(&s->mu);
	s->gen++;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->mu);
}

/* ISIF_ECONFLICT for a cancel or delete (what) of a job whose end is
 * being recorded; s->mu held. */
static enum isif_rc ending_conflict(const struct worker *w, int64_t id, const char *what,
				    struct isif_error *err)
{
	bool cancel = strcmp(what, "cancel") == 0;
	return isif_fail(err, ISIF_ECONFLICT, "job %lld has stopped (it ends %s), but isifd could "
			 "not record that yet (%d attempts: %s) and keeps retrying: %s",
			 (long long)id, job_status_name(w->end_status), w->end_retries, w->end_error,
			 cancel ? "there is nothing left to cancel"
				: "delete it once it shows its final state");
}

enum isif_rc sched_cancel(struct scheduler *s, int64_t id, enum job_status *before,
			  struct isif_error *err)
{
	pthread_mutex_lock(&s->mu);
	struct worker *w = worker_of(s, id);
	if (w && w->ending) {
		*before = JOB_RUNNING;
		enum isif_rc rc = ending_conflict(w, id, "cancel", err);
		pthread_mutex_unlock(&s->mu);
		return rc;
	}
	enum isif_rc rc = store_job_cancel(s->st, id, before, err);
	if (rc == ISIF_OK && *before == JOB_RUNNING && w) {
		if (w->reason == REASON_NONE)
			w->reason = REASON_USER;
		atomic_store(&w->cancel, 1);
	}
	pthread_mutex_unlock(&s->mu);
	if (rc == ISIF_OK) {
		log_info("job %lld: cancel requested (was %s)", (long long)id, job_status_name(*before));
		if (*before == JOB_QUEUED) {
			if (s->o.prom)
				prom_add_job_finished(s->o.prom, JOB_CANCELLED);
			publish_state(s, id);
		}
	}
	return rc;
}

enum isif_rc sched_delete(struct scheduler *s, int64_t id, enum job_status *status,
			  struct isif_error *err)
{
	char dir[PATH_MAX];
	pthread_mutex_lock(&s->mu);
	struct worker *w = worker_of(s, id);
	enum isif_rc rc = ISIF_OK;
	if (w && w->ending) {
		*status = JOB_RUNNING;
		rc = ending_conflict(w, id, "delete", err);
	}
	pthread_mutex_unlock(&s->mu);
	if (rc == ISIF_OK)
		rc = store_job_delete(s->st, id, status, err);
	bool have_dir = path_fmt(dir, sizeof dir, "%s/jobs/%lld", s->state_dir, (long long)id) == 0;
	/* On a full disk SQLite cannot log the delete; the finished job's own
	 * files (its checkpoints) are what the user asked to free, so remove them
	 * first to make room and try once more. */
	if (rc == ISIF_EIO && have_dir && err && strstr(err->msg, "disk is full")) {
		log_warn("job %lld: the disk is full; removing its files before its row",
			 (long long)id);
		remove_tree(dir);
		rc = store_job_delete(s->st, id, status, err);
	}
	if (rc != ISIF_OK)
		return rc;
	if (!have_dir || remove_tree(dir) != 0)
		log_warn("job %lld: deleted, but removing %s failed: %s", (long long)id, dir,
			 strerror(errno));
	else
		log_info("job %lld: deleted", (long long)id);
	return ISIF_OK;
}

enum isif_rc sched_stop(struct scheduler *s, int timeout_s, struct isif_error *err)
{
	pthread_mutex_lock(&s->mu);
	s->stopping = true;
	for (int i = 0; i < s->o.workers; i++) {
		struct worker *w = &s->workers[i];
		if (w->job_id) {
			if (w->reason == REASON_NONE)
				w->reason = REASON_SHUTDOWN;
			/* A shutdown keeps the work done: checkpoint at this batch. */
			atomic_store(&w->cancel, w->reason == REASON_SHUTDOWN ?
				     ISIF_STOP_CHECKPOINT : ISIF_CANCEL);
		}
	}
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->mu);
	struct timespec deadline;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += timeout_s;
	int running = 0;
	for (int i = 0; i < s->o.workers; i++) {
		struct worker *w = &s->workers[i];
		if (!w->started || w->joined)
			continue;
		if (pthread_timedjoin_np(w->thread, NULL, &deadline) == 0)
			w->joined = true;
		else
			running++;
	}
	if (running)
		return isif_fail(err, ISIF_EBUSY, "%d worker(s) still running after %d s", running,
				 timeout_s);
	return ISIF_OK;
}

void sched_free(struct scheduler *s)
{
	if (!s)
		return;
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cond);
	free(s->workers);
	free(s);
}

static json_t *progress_json(int64_t id, const struct job_progress *p)
{
	json_t *o = json_pack("{s:I, s:i, s:i, s:s, s:I, s:I, s:f, s:f}", "job", (json_int_t)id,
			      "epoch", p->epoch, "epochs", p->epochs,
			      "phase", isif_phase_name(p->phase),
			      "images_done", (json_int_t)p->images_done,
			      "images_total", (json_int_t)p->images_total,
			      "images_per_sec", p->images_per_sec, "loss", p->loss);
	/* not known before the first step of this run */
	if (o)
		json_object_set_new(o, "eta_seconds", p->eta_seconds >= 0
				    ? json_real(p->eta_seconds) : json_null());
	return o;
}

json_t *sched_progress_json(struct scheduler *s, int64_t id)
{
	json_t *o = NULL;
	pthread_mutex_lock(&s->mu);
	for (int i = 0; i < s->o.workers && !o; i++)
		if (s->workers[i].job_id == id && s->workers[i].has_progress)
			o = progress_json(id, &s->workers[i].progress);
	pthread_mutex_unlock(&s->mu);
	return o;
}

void sched_job_live(struct scheduler *s, json_t *job)
{
	int64_t id = json_integer_value(json_object_get(job, "id"));
	json_t *progress = NULL, *pending = NULL;
	const char *phase = NULL;
	pthread_mutex_lock(&s->mu);
	struct worker *w = id > 0 ? worker_of(s, id) : NULL;
	if (w && w->has_progress) {
		progress = progress_json(id, &w->progress);
		phase = isif_phase_name(w->progress.phase);
	}
	if (w && w->ending)
		pending = json_pack("{s:s, s:s, s:i}", "status", job_status_name(w->end_status),
				    "error", w->end_error, "retries", w->end_retries);
	pthread_mutex_unlock(&s->mu);
	json_object_set_new(job, "progress", progress ? progress : json_null());
	json_object_set_new(job, "phase", phase ? json_string(phase) : json_null());
	json_object_set_new(job, "end_pending", pending ? pending : json_null());
}

int sched_threads_per_job(const struct scheduler *s)
{
	return s->threads_per_job;
}

int sched_workers(const struct scheduler *s)
{
	return s->o.workers;
}

const atomic_int *sched_running_jobs(struct scheduler *s)
{
	return &s->running;
}

int sched_busy(struct scheduler *s)
{
	int n = 0;
	pthread_mutex_lock(&s->mu);
	for (int i = 0; i < s->o.workers; i++)
		n += s->workers[i].job_id != 0;
	pthread_mutex_unlock(&s->mu);
	return n;
}

/* Replaces the worker's committed snapshot directory by snap. */
static void adopt_snapshot(struct worker *w, const char *snap)
{
	if (w->snapshot[0] && strcmp(w->snapshot, snap) != 0)
		remove_tree(w->snapshot);
	snprintf(w->snapshot, sizeof w->snapshot, "%s", snap);
}

enum isif_rc sched_epoch_done(struct sched_job *job, const struct metrics_row *r,
		     const char *checkpoint_path, struct isif_error *err)
{
	struct scheduler *s = job->sched;
	struct worker *w = &s->workers[job->worker];
	char snap[PATH_MAX], rel[PATH_MAX];
	const char *rel_ckpt = NULL;
	if (checkpoint_path) {
		const char *base = strrchr(checkpoint_path, '/');
		base = base ? base + 1 : checkpoint_path;
		if (path_fmt(snap, sizeof snap, "%s/ckpt-%06d", job->job_dir, r->epoch) ||
		    snapshot_dir(job->run_dir, snap) != 0 || fsync_dir(job->job_dir) != 0)
			return isif_fail(err, ISIF_EIO, "snapshot of the epoch %d checkpoint in %s: %s",
					 r->epoch, snap, strerror(errno));
		if (path_fmt(rel, sizeof rel, "jobs/%lld/ckpt-%06d/%s", (long long)job->id,
			     r->epoch, base))
			return isif_fail(err, ISIF_EIO, "checkpoint path too long");
		rel_ckpt = rel;
	}
	struct isif_error e_db;
	if (store_epoch_commit(s->st, job->id, r, rel_ckpt, &e_db) != ISIF_OK)
		return isif_fail(err, ISIF_EIO, "committing epoch %d: %s", r->epoch, e_db.msg);
	if (rel_ckpt)
		adopt_snapshot(w, snap);
	if (s->o.prom)
		prom_add_epoch(s->o.prom, r->images);
	if (s->o.bus) {
		json_t *ev = metrics_row_json(r);
		if (ev) {
			json_object_set_new(ev, "job", json_integer(job->id));
			sse_publish(s->o.bus, job->id, "epoch", ev, false);
			json_decref(ev);
		}
	}
	log_info("job %lld: epoch %d loss %.4f%s", (long long)job->id, r->epoch, r->loss,
		 r->has_knn ? " (evaluated)" : "");
	return ISIF_OK;
}


enum isif_rc sched_stop_checkpoint(struct sched_job *job, int epoch, int step,
			  const char *checkpoint_path, struct isif_error *err)
{
	struct scheduler *s = job->sched;
	struct worker *w = &s->workers[job->worker];
	char snap[PATH_MAX], rel[PATH_MAX];
	const char *base = strrchr(checkpoint_path, '/');
	base = base ? base + 1 : checkpoint_path;
	if (path_fmt(snap, sizeof snap, "%s/ckpt-%06d-s%06d", job->job_dir, epoch, step) ||
	    snapshot_dir(job->run_dir, snap) != 0 || fsync_dir(job->job_dir) != 0)
		return isif_fail(err, ISIF_EIO, "snapshot of the stop checkpoint in %s: %s", snap,
				 strerror(errno));
	if (path_fmt(rel, sizeof rel, "jobs/%lld/ckpt-%06d-s%06d/%s", (long long)job->id, epoch,
		     step, base))
		return isif_fail(err, ISIF_EIO, "checkpoint path too long");
	struct isif_error e_db;
	if (store_job_set_checkpoint(s->st, job->id, rel, &e_db) != ISIF_OK)
		return isif_fail(err, ISIF_EIO, "recording the stop checkpoint: %s", e_db.msg);
	adopt_snapshot(w, snap);
	log_info("job %lld: checkpoint at epoch %d + %d batches for the next start",
		 (long long)job->id, epoch, step);
	return ISIF_OK;
}

void sched_job_progress(struct sched_job *job, const struct job_progress *p)
{
	struct scheduler *s = job->sched;
	struct worker *w = &s->workers[job->worker];
	double now = isif_now_s();
	pthread_mutex_lock(&s->mu);
	bool new_phase = !w->has_progress || w->progress.phase != p->phase;
	w->progress = *p;
	w->has_progress = true;
	bool emit = now - w->last_progress_event >= s->o.progress_interval_ms / 1000.0 ||
		    p->images_done >= p->images_total || new_phase;
	if (emit)
		w->last_progress_event = now;
	pthread_mutex_unlock(&s->mu);
	if (emit && s->o.bus) {
		json_t *ev = progress_json(job->id, p);
		if (ev) {
			sse_publish(s->o.bus, job->id, "progress", ev, false);
			json_decref(ev);
		}
	}
}

void sched_job_threads(struct sched_job *job, int threads, int loader)
{
	struct isif_error err = {0};
	if (store_job_set_threads(job->sched->st, job->id, threads, &err) != ISIF_OK)
		log_warn("job %lld: recording its threads: %s", (long long)job->id, err.msg);
	log_info("job %lld: training on %d compute threads and %d loader threads", (long long)job->id,
		 threads, loader);
}

/*
 * server/jobmpi.c — a job of several MPI processes, supervised (jobmpi.h).
 *
 * Protocol with `isif train --supervised` (rank 0; mpirun forwards its
 * stdout and stdin): it prints "@progress ...", "@epoch ... CKPT" and
 * "@stop EPOCH STEP CKPT" lines; after each @epoch it waits for "ack", which
 * we send once the epoch's row and checkpoint are committed (the next epoch
 * overwrites the run directory's checkpoint). "stop" asks for a checkpoint
 * at the next batch (shutdown), "cancel" for a plain stop; EOF on its stdin
 * (isifd died) cancels too, and mpirun gets SIGTERM when isifd dies
 * (PR_SET_PDEATHSIG), so no orphan trains on.
 */
#include "jobmpi.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "isif/base/fileio.h"
#include "isif/base/npy.h"
#include "log.h"

#define MAX_ARGS 64

/* isif beside this isifd (/proc/self/exe's directory). */
static void default_isif(char *out, size_t len)
{
	char self[PATH_MAX - 8];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	self[n > 0 ? n : 0] = '\0';
	char *slash = strrchr(self, '/');
	if (slash)
		*slash = '\0';
	snprintf(out, len, "%s/isif", n > 0 ? self : ".");
}

struct argv_buf {
	char *v[MAX_ARGS + 1];
	int n;
	char words[4096];     /* the split mpirun_args */
	char np[16], threads[16], image_size[16], cache_mib[24];
};

static int push(struct argv_buf *a, char *arg)
{
	if (a->n >= MAX_ARGS)
		return -1;
	a->v[a->n++] = arg;
	a->v[a->n] = NULL;
	return 0;
}

static int build_argv(struct argv_buf *a, const struct jobmpi_options *o, char *isif,
		      char *spec_path, const struct sched_job *job,
		      const struct isif_job_spec *spec, char *format, char *path, int image_size)
{
	int bad = push(a, "mpirun");
	if (geteuid() == 0)
		bad |= push(a, "--allow-run-as-root");
	if (o->hostfile && *o->hostfile)
		bad |= push(a, "--hostfile") | push(a, (char *)o->hostfile);
	snprintf(a->words, sizeof a->words, "%s", o->mpirun_args ? o->mpirun_args : "");
	char *save = NULL;
	for (char *w = strtok_r(a->words, " ", &save); w; w = strtok_r(NULL, " ", &save))
		bad |= push(a, w);
	/* the job's threads budget is shared by its ranks on this machine */
	int per_rank = spec->threads > 0 ? spec->threads : job->threads / spec->processes;
	snprintf(a->np, sizeof a->np, "%d", spec->processes);
	snprintf(a->threads, sizeof a->threads, "%d", per_rank > 0 ? per_rank : 1);
	bad |= push(a, "-np") | push(a, a->np) | push(a, isif) | push(a, "train") |
	       push(a, "--spec") | push(a, spec_path) | push(a, "--dataset") | push(a, path) |
	       push(a, "--format") | push(a, format) | push(a, "--out") |
	       push(a, (char *)job->run_dir) | push(a, "--threads") | push(a, a->threads) |
	       push(a, "--quiet") | push(a, "--supervised");
	if (job->checkpoint)
		bad |= push(a, "--resume-from") | push(a, (char *)job->checkpoint);
	if (o->folder_cache && *o->folder_cache && o->folder_cache_mib > 0) {
		/* the ranks map the file isifd's own load of the dataset stored */
		snprintf(a->cache_mib, sizeof a->cache_mib, "%ld", o->folder_cache_mib);
		bad |= push(a, "--cache-dir") | push(a, (char *)o->folder_cache) |
		       push(a, "--cache-max-mib") | push(a, a->cache_mib);
	} else {
		bad |= push(a, "--no-cache");
	}
	if (image_size > 0) {   /* the folder's registered resize (POST /datasets image_size) */
		snprintf(a->image_size, sizeof a->image_size, "%d", image_size);
		bad |= push(a, "--image-size") | push(a, a->image_size);
	}
	return bad;
}

/* In the child: stdin and stdout are our pipes, stderr the log; nothing
 * else of isifd's (sockets, the database) leaks into mpirun. */
static void exec_child(char **argv, int in_fd, int out_fd, int log_fd)
{
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	setpgid(0, 0);
	if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(log_fd, 2) < 0)
		_exit(127);
	long max = sysconf(_SC_OPEN_MAX);
	for (int fd = 3; fd < (max > 0 && max < 65536 ? max : 65536); fd++)
		close(fd);
	signal(SIGPIPE, SIG_DFL);
	execvp(argv[0], argv);
	dprintf(2, "isifd: cannot run %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

/* Reads an evaluation's embeddings isif train wrote beside its checkpoint:
 * n rows of d floats, or NULL. */
static float *read_embeddings(const char *run_dir, const char *name, int64_t *n, int *d)
{
	char p[1200];
	struct isif_npy a = { 0 };
	struct isif_error err = { 0 };
	snprintf(p, sizeof p, "%s/embeddings-%s.npy", run_dir, name);
	*n = 0;
	if (isif_npy_read(p, &a, &err) != ISIF_OK || a.ndim != 2 || a.shape[1] > INT_MAX) {
		free(a.data);
		return NULL;
	}
	*n = a.shape[0];
	*d = (int)a.shape[1];
	return a.data;
}

struct supervision {
	const struct sched_job *job;
	const struct isif_train_callbacks *cb;
	int to_child;
};

static void send_line(struct supervision *s, const char *line)
{
	if (s->to_child >= 0 && write(s->to_child, line, strlen(line)) < 0)
		log_warn("job %lld: mpirun's stdin: %s", (long long)s->job->id, strerror(errno));
}

/* "@epoch": the epoch's metrics and checkpoint, committed through on_epoch
 * as the in-process trainer's are; then "ack" lets rank 0 go on. */
static void on_epoch_line(struct supervision *s, const char *args)
{
	struct isif_epoch_metrics m = { 0 };
	int has_knn, unseen, emb, at = 0;
	if (sscanf(args, "%d %lf %d %lf %lf %d %lf %lf %lf %lf %lf %lf %lf %lf %lf %lf %d %n",
		   &m.epoch, &m.loss, &has_knn, &m.knn_top1, &m.knn_top5, &unseen,
		   &m.recall_at[0], &m.recall_at[1], &m.recall_at[2], &m.recall_at[3], &m.nmi,
		   &m.lr, &m.seconds, &m.train_seconds, &m.images_per_sec, &m.data_wait_frac,
		   &emb, &at) < 17 || !at) {
		log_error("job %lld: bad @epoch line from isif train", (long long)s->job->id);
		return;
	}
	m.has_knn = has_knn;
	m.unseen = unseen;
	int64_t n_train = 0, n_test = 0;
	int d_train = 0, d_test = 0;
	float *tr = emb ? read_embeddings(s->job->run_dir, "train", &n_train, &d_train) : NULL;
	float *te = emb ? read_embeddings(s->job->run_dir, "test", &n_test, &d_test) : NULL;
	if (!tr || !te || d_train != d_test) {
		free(tr);
		free(te);
		tr = te = NULL;
		n_train = n_test = 0;
	}
	if (s->cb->on_epoch)
		s->cb->on_epoch(s->cb->user, &m, args + at, tr, n_train, te, n_test, d_train);
	free(tr);
	free(te);
	send_line(s, "ack\n");
}

static void on_line(struct supervision *s, const char *line)
{
	if (strncmp(line, "@progress ", 10) == 0) {
		struct isif_progress p = { 0 };
		int phase;
		long long done, total;
		if (sscanf(line + 10, "%d %d %d %lld %lld %lf %lf %lf", &p.epoch, &p.epochs, &phase,
			   &done, &total, &p.images_per_sec, &p.eta_seconds, &p.loss) == 8 &&
		    s->cb->on_progress) {
			p.phase = phase == ISIF_PHASE_EVALUATING ? ISIF_PHASE_EVALUATING
								 : ISIF_PHASE_TRAINING;
			p.images_done = done;
			p.images_total = total;
			s->cb->on_progress(s->cb->user, &p);
		}
	} else if (strncmp(line, "@epoch ", 7) == 0) {
		on_epoch_line(s, line + 7);
	} else if (strncmp(line, "@stop ", 6) == 0) {
		int epoch, step, at = 0;
		if (sscanf(line + 6, "%d %d %n", &epoch, &step, &at) >= 2 && at && s->cb->on_stop)
			s->cb->on_stop(s->cb->user, epoch, step, line + 6 + at);
	} else if (*line && s->cb->on_log) {
		s->cb->on_log(s->cb->user, line);
	}
}

/* The line of mpirun.log that says what went wrong: a rank's own message,
 * else mpirun's note of a rank that died, else the last line. */
static void failure_line(const char *log_path, char *out, size_t len)
{
	FILE *f = fopen(log_path, "r");
	char line[512], last[512] = "", best[512] = "";
	while (f && fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = '\0';
		if (!*line || line[0] == '-')
			continue;
		snprintf(last, sizeof last, "%s", line);
		if (strstr(line, "isif train:") || strstr(line, "exited on signal") ||
		    strstr(line, "isifd:"))
			snprintf(best, sizeof best, "%s", line);
	}
	if (f)
		fclose(f);
	snprintf(out, len, "%s", *best ? best : last);
}

bool jobmpi_worth_retrying(const char *log_path)
{
	FILE *f = fopen(log_path, "r");
	char line[512];
	bool died = false, own = false;
	while (f && fgets(line, sizeof line, f)) {
		died |= strstr(line, "exited on signal") != NULL;
		own |= strstr(line, "isif train:") != NULL || strncmp(line, "isif: ", 6) == 0;
	}
	if (f)
		fclose(f);
	return died || !own;
}

/* Reads the child's stdout until EOF, passing the job's cancel flag on. */
static void supervise(struct supervision *s, int from_child)
{
	char buf[8192];
	size_t have = 0;
	int sent = 0;
	for (;;) {
		int flag = atomic_load(s->job->cancel);
		if (flag && flag != sent) {
			send_line(s, flag == ISIF_STOP_CHECKPOINT ? "stop\n" : "cancel\n");
			sent = flag;
		}
		struct pollfd pfd = { .fd = from_child, .events = POLLIN };
		int r = poll(&pfd, 1, 100);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			continue;
		ssize_t n = read(from_child, buf + have, sizeof buf - 1 - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		have += (size_t)n;
		buf[have] = '\0';
		char *start = buf, *nl;
		while ((nl = strchr(start, '\n'))) {
			*nl = '\0';
			on_line(s, start);
			start = nl + 1;
		}
		have = strlen(start);
		memmove(buf, start, have + 1);
		if (have == sizeof buf - 1)
			have = 0;   /* a line longer than the buffer: dropped */
	}
}

enum isif_rc jobmpi_run(const struct jobmpi_options *o, struct sched_job *job,
			const struct isif_job_spec *spec, const char *format, const char *path,
			int image_size, const struct isif_train_callbacks *cb, struct isif_error *err)
{
	char isif[PATH_MAX], spec_path[1200], log_path[1200], fmt[32], data[1024];
	if (o->isif && *o->isif)
		snprintf(isif, sizeof isif, "%s", o->isif);
	else
		default_isif(isif, sizeof isif);
	snprintf(fmt, sizeof fmt, "%s", format);
	snprintf(data, sizeof data, "%s", path);
	snprintf(spec_path, sizeof spec_path, "%s/job.json", job->run_dir);
	snprintf(log_path, sizeof log_path, "%s/mpirun.log", job->run_dir);
	struct isif_chunk c = { job->spec_json, strlen(job->spec_json) };
	enum isif_rc rc = isif_write_atomic(spec_path, &c, 1, err);
	if (rc)
		return rc;
	struct argv_buf a = { .n = 0 };
	if (build_argv(&a, o, isif, spec_path, job, spec, fmt, data, image_size))
		return isif_fail(err, ISIF_EINVAL, "--mpirun-args: too many arguments");
	int in[2], out[2];
	int log_fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (log_fd < 0)
		return isif_fail(err, ISIF_EIO, "%s: %s", log_path, strerror(errno));
	if (pipe2(in, O_CLOEXEC) != 0) {
		close(log_fd);
		return isif_fail(err, ISIF_EIO, "pipe: %s", strerror(errno));
	}
	if (pipe2(out, O_CLOEXEC) != 0) {
		close(in[0]);
		close(in[1]);
		close(log_fd);
		return isif_fail(err, ISIF_EIO, "pipe: %s", strerror(errno));
	}
	log_info("job %lld: mpirun -np %d %s train ... (log %s)", (long long)job->id,
		 spec->processes, isif, log_path);
	pid_t pid = fork();
	if (pid == 0)
		exec_child(a.v, in[0], out[1], log_fd);
	close(in[0]);
	close(out[1]);
	close(log_fd);
	if (pid < 0) {
		close(in[1]);
		close(out[0]);
		return isif_fail(err, ISIF_EIO, "fork: %s", strerror(errno));
	}
	struct supervision s = { .job = job, .cb = cb, .to_child = in[1] };
	supervise(&s, out[0]);
	close(out[0]);
	close(in[1]);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return ISIF_OK;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 130)
		return isif_fail(err, ISIF_ECANCELLED, "cancelled");
	char why[512];
	failure_line(log_path, why, sizeof why);
	if (atomic_load(job->cancel))
		return isif_fail(err, ISIF_ECANCELLED, "cancelled (mpirun: %s)", why);
	job->retryable = jobmpi_worth_retrying(log_path);
	return isif_fail(err, ISIF_EIO, "an MPI process of the job failed (mpirun exit status %d): %s",
			 WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), why);
}

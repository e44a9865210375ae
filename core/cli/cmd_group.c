/*
 * core/cli/cmd_group.c — `isif group`: a job group without the daemon. The
 * grid is checked and expanded as POST /groups does (isif/train/group_grid.h),
 * every point's spec is checked before anything runs, then each job trains
 * in this process, one after the other, as `isif train` runs one, into
 * DIR/job-NNN/. The summary (isif/train/group_summary.h, GET /groups/{id}'s
 * "points") is made from the jobs' metrics.csv files and written and
 * printed by group_report.c.
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "isif/base/fileio.h"
#include "isif/base/strbuf.h"
#include "isif/data/dataset.h"
#include "isif/train/group_grid.h"
#include "isif/train/group_summary.h"
#include "isif/train/spec.h"
#include "isif/train/train.h"

#define GROUP_DEFAULT_MAX_JOBS 64

static void group_help(void)
{
	printf("usage: isif group (--group FILE | [--spec BASE.json] --grid GRID) [--dataset D]\n"
	       "                  [--out DIR] [--threads N] [--max-group-jobs N] [--metric M]\n"
	       "                  [--format F] [--image-size N] [--quiet]\n"
	       "       isif group --resume --out DIR\n"
	       "Trains one job per point of a grid over spec fields (seeds among them), one\n"
	       "after the other in this process, and summarises each grid point over its\n"
	       "seeds per epoch: mean, sample std, min, max and n of every metric, as isifd's\n"
	       "GET /groups/{id} does (the grid is expanded and checked as POST /groups does:\n"
	       "itertools.product order, first field slowest; a point is its values without\n"
	       "\"seed\"). Every point's spec is checked before the first job starts.\n"
	       "  --group FILE       the POST /groups body: {\"base\": spec, \"grid\": {...}}\n"
	       "  --spec FILE        the base spec (JSON, as POST /jobs takes)\n"
	       "  --grid G           the grid: a file, or inline JSON ('{\"seed\": [1, 2], ...}')\n"
	       "  --dataset D        sets the base's dataset (fashion-mnist or a directory)\n"
	       "  --threads N        sets the base's threads (default: every online core)\n"
	       "  --out DIR          output directory (default ./isif-group); refused when it\n"
	       "                     holds a group already, unless --resume\n"
	       "  --resume           continue the group in DIR: finished jobs are kept, the\n"
	       "                     interrupted one resumes from its checkpoint\n"
	       "  --max-group-jobs N most jobs the grid may make (default %d, as isifd)\n"
	       "  --metric M         the metric of the printed table (default knn_top1)\n"
	       "  --format F, --image-size N   as isif train\n"
	       "  --quiet            no progress bar\n"
	       "Writes DIR/group.json (the body), DIR/job-NNN/ (spec.json and what isif train\n"
	       "writes: metrics.csv, checkpoint, similarity.jsonl, embeddings) for jobs\n"
	       "1..N, DIR/summary.json ({\"base\", \"grid\", \"jobs\", \"points\"}, points as\n"
	       "GET /groups/{id}) and DIR/summary.csv (a line per point and epoch: for\n"
	       "each metric its _mean, _std, _min, _max, _n). SIGINT/SIGTERM stops after\n"
	       "the current batch with a checkpoint (exit 130); --resume continues. Exit\n"
	       "status 1 when a job failed (the others still run and are summarised).\n",
	       GROUP_DEFAULT_MAX_JOBS);
}

static atomic_int stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	atomic_store(&stop_flag, ISIF_STOP_CHECKPOINT);
}

/* A JSON value from a file, or from text when it starts with '{' or '['. */
static json_t *load_json(const char *what, const char *arg)
{
	json_error_t je;
	const char *p = arg;
	while (*p == ' ' || *p == '\t' || *p == '\n')
		p++;
	bool inline_json = *p == '{' || *p == '[';
	json_t *v = inline_json ? json_loads(arg, JSON_REJECT_DUPLICATES, &je)
				: json_load_file(arg, JSON_REJECT_DUPLICATES, &je);
	if (!v && je.line < 0)   /* the file could not be read */
		fprintf(stderr, "isif group: %s: %s\n", what, je.text);
	else if (!v)
		fprintf(stderr, "isif group: %s %s: invalid JSON at line %d column %d: %s\n", what,
			inline_json ? "(inline)" : arg, je.line, je.column, je.text);
	return v;
}

/* The group body from the options (a new reference), or NULL (printed). */
static json_t *group_body(struct cli_args *a)
{
	const char *group = cli_opt(a, "--group"), *spec = cli_opt(a, "--spec");
	const char *grid = cli_opt(a, "--grid"), *dataset = cli_opt(a, "--dataset");
	const char *threads = cli_opt(a, "--threads");
	long nthreads = 0;
	if (threads && cli_int("--threads", threads, 0, 256, &nthreads))
		return NULL;
	if (group && (spec || grid)) {
		fprintf(stderr, "isif group: --group holds base and grid; leave out --spec and --grid\n");
		return NULL;
	}
	if (!group && !grid) {
		fprintf(stderr, "isif group: give --group FILE or --grid (see isif group --help)\n");
		return NULL;
	}
	json_t *body = group ? load_json("--group", group) : json_object();
	if (body && !group) {
		json_t *b = spec ? load_json("--spec", spec) : json_object();
		json_t *g = load_json("--grid", grid);
		json_object_set_new(body, "base", b ? b : json_null());
		json_object_set_new(body, "grid", g ? g : json_null());
		if (!b || !g) {
			json_decref(body);
			return NULL;
		}
	}
	json_t *base = json_object_get(body, "base");
	if (json_is_object(base) && dataset)
		json_object_set_new(base, "dataset", json_string(dataset));
	if (json_is_object(base) && threads)
		json_object_set_new(base, "threads", json_integer(nthreads));
	return body;
}

/* One expanded job: its spec, place in the grid and output directory. */
struct group_job {
	struct isif_job_spec spec;
	int point;
	char *values;        /* all its grid values, compact JSON */
	char *point_values;  /* without seed */
	char dir[1100];
	bool done, failed;
};

static void jobs_free(struct group_job *jobs, long n)
{
	for (long i = 0; jobs && i < n; i++) {
		free(jobs[i].values);
		free(jobs[i].point_values);
	}
	free(jobs);
}

/* Job i expanded and its spec parsed; refusals are printed with the point
 * before the message, as POST /groups answers them. */
static int expand_job(const struct isif_group_grid *g, long i, const char *out,
		      struct group_job *j)
{
	json_t *obj = NULL, *pv = NULL, *jv = NULL;
	struct isif_error err = {0};
	int rc = -1;
	if (isif_group_grid_job(g, i, &obj, &j->point, &pv, &jv, &err)) {
		fprintf(stderr, "isif group: %s\n", err.msg);
		return -1;
	}
	char *text = json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(15));
	j->values = json_dumps(jv, JSON_COMPACT | JSON_REAL_PRECISION(15));
	j->point_values = json_dumps(pv, JSON_COMPACT | JSON_REAL_PRECISION(15));
	if (!text || !j->values || !j->point_values) {
		fprintf(stderr, "isif group: out of memory\n");
		goto out;
	}
	isif_spec_default(&j->spec);
	if (isif_spec_parse(&j->spec, text, true, &err)) {
		fprintf(stderr, "isif group: grid point %.300s: %s\n", j->values, err.msg);
		goto out;
	}
	snprintf(j->dir, sizeof j->dir, "%s/job-%03ld", out, i + 1);
	rc = 0;
out:
	free(text);
	json_decref(obj);
	json_decref(pv);
	json_decref(jv);
	return rc;
}

/* The dataset a job trains on, loaded when it differs from the last one. */
struct loaded {
	char name[1024];
	struct isif_dataset ds;
	bool ok;
	const char *format, *image_size;
};

static struct isif_dataset *dataset_for(struct loaded *l, const char *name)
{
	if (l->ok && strcmp(l->name, name) == 0)
		return &l->ds;
	if (l->ok)
		isif_dataset_free(&l->ds);
	memset(&l->ds, 0, sizeof l->ds);
	l->ok = cli_load_dataset(name, l->format, l->image_size, &l->ds) == 0;
	snprintf(l->name, sizeof l->name, "%s", name);
	return l->ok ? &l->ds : NULL;
}

/* Every job's spec checked against its dataset before any runs. */
static int check_jobs(struct group_job *jobs, long n, struct loaded *l)
{
	for (long i = 0; i < n; i++) {
		struct isif_dataset *ds = dataset_for(l, jobs[i].spec.dataset);
		struct isif_dataset_shape shape;
		struct isif_error err = {0};
		if (!ds)
			return -1;
		isif_dataset_shape_of(ds, &shape);
		if (isif_spec_check_dataset(&jobs[i].spec, &shape, jobs[i].spec.dataset, &err)) {
			fprintf(stderr, "isif group: grid point %.300s: %s\n", jobs[i].values, err.msg);
			return -1;
		}
	}
	return 0;
}

static int make_dir(const char *dir)
{
	if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "isif group: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	return 0;
}

static int write_text(const char *path, const char *text)
{
	struct isif_error err = {0};
	struct isif_chunk c = { text, strlen(text) };
	if (isif_write_atomic(path, &c, 1, &err)) {
		fprintf(stderr, "isif group: %s\n", err.msg);
		return -1;
	}
	return 0;
}

/* ---- running one job ---------------------------------------------------- */

struct job_run {
	FILE *tty;
	long index, n_jobs;
	const char *dir;
	struct isif_strbuf csv;
	int failed_write;
};

static void on_progress(void *user, const struct isif_progress *p)
{
	struct job_run *r = user;
	if (!r->tty)
		return;
	int pct = (int)(100 * p->images_done / (p->images_total ? p->images_total : 1));
	char eta[32] = "?";
	if (p->eta_seconds >= 0)
		snprintf(eta, sizeof eta, "%.0fs", p->eta_seconds);
	fprintf(r->tty, "\r\033[Kjob %ld/%ld  epoch %d/%d %s %3d%%  loss %.4f  %.0f img/s  "
		"job ETA %s ", r->index + 1, r->n_jobs, p->epoch, p->epochs,
		isif_phase_name(p->phase), pct, p->loss, p->images_per_sec, eta);
	fflush(r->tty);
}

static void on_epoch(void *user, const struct isif_epoch_metrics *m, const char *ckpt,
		     const float *train_emb, int64_t n_train, const float *test_emb,
		     int64_t n_test, int D)
{
	struct job_run *r = user;
	char path[1200];
	(void)ckpt, (void)train_emb, (void)n_train, (void)test_emb, (void)n_test, (void)D;
	if (r->tty)
		fputs("\r\033[K", r->tty);
	printf("  job %ld/%ld epoch %3d  loss %.4f", r->index + 1, r->n_jobs, m->epoch, m->loss);
	if (m->has_knn)
		printf("  knn_top1 %6.2f%%", 100 * m->knn_top1);
	if (m->unseen)
		printf("  R@1 %6.2f%%  NMI %.4f", 100 * m->recall_at[0], m->nmi);
	if (m->has_probe)
		printf("  probe %6.2f%%", 100 * m->probe_top1);
	printf("  lr %.5f  %6.1fs\n", m->lr, m->seconds);
	fflush(stdout);
	isif_metrics_csv_row(&r->csv, m);
	snprintf(path, sizeof path, "%s/metrics.csv", r->dir);
	if (r->csv.failed || write_text(path, r->csv.p))
		r->failed_write = 1;
}

static void on_stop(void *user, int epoch, int step, const char *ckpt)
{
	struct job_run *r = user;
	if (r->tty)
		fputs("\r\033[K", r->tty);
	printf("stopped in job %ld after %d epochs and %d batches; checkpoint %s "
	       "(continue with isif group --resume --out DIR)\n", r->index + 1, epoch, step, ckpt);
	fflush(stdout);
}

/* Trains job j (resuming from its checkpoint when one is there). 0 done,
 * 1 failed, 130 stopped by a signal. */
static int run_job(struct group_job *j, long i, long n, const struct isif_dataset *ds, bool quiet)
{
	struct isif_trainer *t = NULL;
	struct isif_error err = {0};
	struct job_run r = { .index = i, .n_jobs = n, .dir = j->dir };
	char ckpt[1200];
	int rc = 1;
	r.tty = !quiet && isatty(STDERR_FILENO) ? stderr : NULL;
	if (isif_trainer_create(&t, &j->spec, ds, j->dir, cli_threads(), &err))
		goto fail;
	snprintf(ckpt, sizeof ckpt, "%s/checkpoint-latest.safetensors", j->dir);
	if (access(ckpt, F_OK) == 0) {
		if (isif_trainer_resume(t, ckpt, &err))
			goto fail;
		printf("  job %ld/%ld resumed at epoch %d\n", i + 1, n, isif_trainer_epoch(t));
	} else if (j->spec.init_checkpoint[0] && isif_trainer_init(t, j->spec.init_checkpoint, &err)) {
		goto fail;
	}
	cli_metrics_csv_start(&r.csv, r.dir, isif_trainer_epoch(t));
	struct isif_train_callbacks cb = { .user = &r, .on_progress = on_progress,
					   .on_epoch = on_epoch, .on_stop = on_stop };
	int run_rc = isif_trainer_run(t, &cb, &stop_flag, &err);
	if (run_rc == ISIF_ECANCELLED) {
		rc = 130;
	} else if (run_rc == ISIF_OK && !r.failed_write) {
		char done[1200];
		snprintf(done, sizeof done, "%s/done", j->dir);
		rc = write_text(done, "") ? 1 : 0;
	} else if (run_rc) {
		goto fail;
	}
	isif_strbuf_free(&r.csv);
	isif_trainer_free(t);
	return rc;
fail:
	if (r.tty)
		fputs("\r\033[K", r.tty);
	fprintf(stderr, "isif group: job %ld (%s) failed: %s\n", i + 1, j->values, err.msg);
	isif_strbuf_free(&r.csv);
	isif_trainer_free(t);
	return 1;
}

/* ---- the command -------------------------------------------------------- */

/* The body of the group in DIR (--resume), or NULL (printed). */
static json_t *resumed_body(const char *out)
{
	char path[1100];
	snprintf(path, sizeof path, "%s/group.json", out);
	if (access(path, F_OK) != 0) {
		fprintf(stderr, "isif group: --resume: %s has no group (no group.json)\n", out);
		return NULL;
	}
	return load_json("group", path);
}

/* Writes DIR/group.json, or refuses a DIR that has one (without --resume). */
static int claim_dir(const char *out, json_t *body, bool resume)
{
	char path[1100];
	if (make_dir(out))
		return -1;
	snprintf(path, sizeof path, "%s/group.json", out);
	if (resume)
		return 0;
	if (access(path, F_OK) == 0) {
		fprintf(stderr, "isif group: %s holds a group already (group.json): --resume "
			"continues it, or choose another --out\n", out);
		return -1;
	}
	char *text = json_dumps(body, JSON_INDENT(2) | JSON_REAL_PRECISION(15));
	int rc = text ? write_text(path, text) : -1;
	free(text);
	return rc;
}

/* Runs the jobs not done yet; 130 when stopped, else 0. */
static int run_jobs(struct group_job *jobs, long n, struct loaded *l, bool quiet)
{
	for (long i = 0; i < n; i++) {
		char path[1200];
		snprintf(path, sizeof path, "%s/done", jobs[i].dir);
		if (access(path, F_OK) == 0) {
			printf("job %ld/%ld %s: done already\n", i + 1, n, jobs[i].values);
			continue;
		}
		char *spec = isif_spec_to_json(&jobs[i].spec);
		snprintf(path, sizeof path, "%s/spec.json", jobs[i].dir);
		int bad = make_dir(jobs[i].dir) || !spec || write_text(path, spec);
		free(spec);
		const struct isif_dataset *ds = bad ? NULL : dataset_for(l, jobs[i].spec.dataset);
		printf("job %ld/%ld point %d %s -> %s\n", i + 1, n, jobs[i].point, jobs[i].values,
		       jobs[i].dir);
		fflush(stdout);
		int rc = ds ? run_job(&jobs[i], i, n, ds, quiet) : 1;
		if (rc == 130)
			return 130;
		jobs[i].failed = rc != 0;
	}
	return 0;
}

static int group_main(struct cli_args *a)
{
	const char *out = cli_opt(a, "--out"), *max = cli_opt(a, "--max-group-jobs");
	const char *metric = cli_opt(a, "--metric");
	bool resume = cli_flag(a, "--resume"), quiet = cli_flag(a, "--quiet");
	struct loaded l = { .format = cli_opt(a, "--format"), .image_size = cli_opt(a, "--image-size") };
	long max_jobs = GROUP_DEFAULT_MAX_JOBS;
	out = out ? out : "isif-group";
	if (max && cli_int("--max-group-jobs", max, 1, 10000, &max_jobs))
		return 2;
	metric = metric ? metric : "knn_top1";
	bool known = false;
	for (int m = 0; m < isif_group_n_metrics; m++)
		known |= strcmp(metric, isif_group_metrics[m]) == 0;
	if (!known) {
		fprintf(stderr, "isif group: --metric %s: not a summarised metric (one of loss, "
			"knn_top1, knn_top5, lr, seconds, ..., probe_top1: summary.csv's columns)\n",
			metric);
		return 2;
	}
	json_t *body = NULL;
	if (resume && (cli_opt(a, "--group") || cli_opt(a, "--grid") || cli_opt(a, "--spec") ||
		       cli_opt(a, "--dataset") || cli_opt(a, "--threads")))
		fprintf(stderr, "isif group: --resume takes the group from DIR/group.json; leave "
			"out --group, --spec, --grid, --dataset and --threads\n");
	else
		body = resume ? resumed_body(out) : group_body(a);
	if (!body || cli_check_unused(a, "group")) {
		json_decref(body);
		return 2;
	}
	struct isif_group_grid g;
	struct isif_error err = {0};
	struct group_job *jobs = NULL;
	int rc = 2;
	if (isif_group_grid_check(body, max_jobs, &g, &err)) {
		fprintf(stderr, "isif group: %s\n", err.msg);
		goto out;
	}
	jobs = calloc((size_t)(g.n_jobs > 0 ? g.n_jobs : 1), sizeof *jobs);
	for (long i = 0; jobs && i < g.n_jobs; i++)
		if (expand_job(&g, i, out, &jobs[i]))
			goto out;
	if (!jobs || check_jobs(jobs, g.n_jobs, &l) || claim_dir(out, body, resume))
		goto out;
	printf("group: %ld jobs, %ld grid points, into %s/\n", g.n_jobs, g.n_points, out);
	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	rc = run_jobs(jobs, g.n_jobs, &l, quiet);
	if (rc == 0) {
		struct cli_group_job *cj = calloc((size_t)(g.n_jobs > 0 ? g.n_jobs : 1), sizeof *cj);
		for (long i = 0; cj && i < g.n_jobs; i++)
			cj[i] = (struct cli_group_job){ .point = jobs[i].point, .values = jobs[i].values,
							.point_values = jobs[i].point_values,
							.dir = jobs[i].dir, .failed = jobs[i].failed };
		rc = cj ? cli_group_report(out, &g, cj, g.n_jobs, metric) : 1;
		for (long i = 0; rc == 0 && i < g.n_jobs; i++)
			rc = jobs[i].failed;
		free(cj);
	}
out:
	jobs_free(jobs, jobs ? g.n_jobs : 0);
	if (l.ok)
		isif_dataset_free(&l.ds);
	json_decref(body);
	return rc;
}

int cmd_group(int argc, char **argv)
{
	struct cli_args a;
	cli_args_init(&a, argc, argv);
	int rc = 0;
	if (cli_help(&a))
		group_help();
	else
		rc = group_main(&a);
	cli_args_free(&a);
	return rc;
}

/*
 * core/cli/cmd_train.c — `isif train` (a whole training run on a dataset,
 * as the daemon runs a job). `isif knn` is in cmd_knn.c.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "isif/data/dataset.h"
#include "isif/eval/eval.h"
#include "isif/base/fileio.h"
#include "isif/base/npy.h"
#include "isif/base/strbuf.h"
#include "isif/train/dist.h"
#include "isif/train/spec.h"
#include "isif/train/train.h"

/* Sets obj[path] (dotted) to value, creating intermediate objects (and
 * replacing what is not an object on the way, such as "classes": null). */
static int json_set_path(json_t *obj, const char *path, json_t *value)
{
	char key[128];
	const char *dot = strchr(path, '.');
	if (!dot)
		return json_object_set_new(obj, path, value);
	snprintf(key, sizeof key, "%.*s", (int)(dot - path), path);
	json_t *child = json_object_get(obj, key);
	if (!json_is_object(child)) {
		child = json_object();
		json_object_set_new(obj, key, child);
	}
	return json_set_path(child, dot + 1, value);
}

static json_t *parse_list(const char *text, bool ints)
{
	json_t *arr = json_array();
	char *copy = strdup(text), *save = NULL;
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *end;
		double v = strtod(tok, &end);
		if (end == tok || *end) {
			json_decref(arr);
			free(copy);
			return NULL;
		}
		json_array_append_new(arr, ints ? json_integer((json_int_t)v) : json_real(v));
	}
	free(copy);
	return arr;
}

/* The JSON value of a spec flag (v: its text, NULL for a switch). A switch
 * sets its field to the opposite of the default. */
static json_t *flag_value(const struct isif_spec_field *f, const char *v)
{
	char *end;
	switch (f->kind) {
	case ISIF_SPEC_INT: {
		long long x = strtoll(v, &end, 10);
		return end == v || *end ? NULL : json_integer(x);
	}
	case ISIF_SPEC_NUMBER: {
		double x = strtod(v, &end);
		return end == v || *end ? NULL : json_real(x);
	}
	case ISIF_SPEC_STRING:
		return json_string(v);
	case ISIF_SPEC_BOOL:
		return json_boolean(strcmp(f->def, "true") != 0);
	case ISIF_SPEC_PAIR:
	case ISIF_SPEC_NUMBER_LIST:
		return parse_list(v, false);
	case ISIF_SPEC_INT_LIST:
		return parse_list(v, true);
	case ISIF_SPEC_OBJECT:
		break;
	}
	return NULL;
}

/* Builds the spec from --spec FILE and the flags; prints errors. */
static int build_spec(struct cli_args *a, const char *dataset, struct isif_job_spec *spec)
{
	const char *spec_file = cli_opt(a, "--spec");
	json_error_t jerr;
	json_t *obj = spec_file ? json_load_file(spec_file, 0, &jerr) : json_object();
	if (!json_is_object(obj)) {
		fprintf(stderr, "isif train: %s: %s\n", spec_file,
			obj ? "not a JSON object" : jerr.text);
		json_decref(obj);
		return -1;
	}
	if (dataset)
		json_object_set_new(obj, "dataset", json_string(dataset));
	const struct isif_spec_field *f;
	for (int i = 0; (f = isif_spec_field(i)); i++) {
		char flag[64];
		const char *v = NULL;
		if (!f->flag)
			continue;
		snprintf(flag, sizeof flag, "--%s", f->flag);
		if (f->kind == ISIF_SPEC_BOOL) {
			if (!cli_flag(a, flag))
				continue;
		} else if (!(v = cli_opt(a, flag))) {
			continue;
		}
		json_t *value = flag_value(f, v);
		if (!value) {
			fprintf(stderr, "isif train: bad value '%s' for %s\n", v, flag);
			json_decref(obj);
			return -1;
		}
		json_set_path(obj, f->path, value);
	}
	char *text = json_dumps(obj, JSON_COMPACT);
	json_decref(obj);
	struct isif_error err = {0};
	isif_spec_default(spec);
	int rc = text ? isif_spec_parse(spec, text, true, &err) : ISIF_ENOMEM;
	free(text);
	if (rc) {
		fprintf(stderr, "isif train: invalid job spec: %s\n", err.msg);
		return -1;
	}
	return 0;
}

static void train_help(void)
{
	printf("usage: isif train --dataset NAME|PATH [--format F] [--out DIR] [--resume]\n"
	       "                  [--spec job.json] [spec flags...]\n"
	       "Trains a model with the ISIF loss, evaluating with weighted kNN each epoch.\n"
	       "Writes DIR/checkpoint-latest.safetensors (+ optimizer state), DIR/metrics.csv,\n"
	       "DIR/similarity.jsonl (the similarity histograms of each evaluated epoch, one\n"
	       "JSON line each) and DIR/embeddings-{train,test}.npy of the last evaluation.\n"
	       "  --dataset D     fashion-mnist (Debian's package) or a dataset directory\n"
	       "  --format F      idx | cifar10 | cifar100 | stl10 | folder | auto (default auto)\n"
	       "  --image-size N  folder datasets: resize images to N×N (default 32)\n"
	       "  --cache-dir D   folder datasets: keep the decoded images in D and map them on\n"
	       "                  later loads of the same files and size (default\n"
	       "                  $XDG_CACHE_HOME/isif/datasets or ~/.cache/isif/datasets)\n"
	       "  --no-cache      folder datasets: decode every time, write no cache\n"
	       "  --cache-max-mib N  bound on the cache directory's files; older ones are\n"
	       "                  removed to make room (default 16384)\n"
	       "  --out DIR       output directory (default ./isif-run)\n"
	       "  --resume        continue from DIR/checkpoint-latest.safetensors\n"
	       "SIGINT or SIGTERM (Ctrl-C) stops after the current batch with a checkpoint;\n"
	       "--resume then continues exactly where it stopped (exit status 130).\n"
	       "  --spec FILE     a job spec (JSON, as POST /jobs takes); flags override it\n"
	       "  --quiet         no progress bar\n"
	       "  --log-steps     print each training step's loss (\"step E B LOSS\")\n"
	       "  --resume-from F continue from checkpoint F (its optimizer file beside it)\n"
	       "  --supervised    for isifd: \"@\" event lines on stdout; stdin lines \"ack\"\n"
	       "                  (after each @epoch), \"stop\", \"cancel\"; EOF cancels\n"
	       "Data-parallel over MPI: mpirun -np N isif train ... runs N processes (ranks)\n"
	       "of `threads` threads each (default: online cores / ranks on the node); rank 0\n"
	       "writes the checkpoints and prints. The run equals one process with\n"
	       "bn_groups = N (bn_groups 1) and resumes from any checkpoint at any N.\n"
	       "Spec flags (each sets the job-spec field it names; see docs/API.md):\n");
	cli_spec_flags_help(stdout);
}

struct train_state {
	FILE *tty;            /* progress bar target, or NULL */
	char out_dir[1024];
	struct isif_strbuf csv; /* metrics.csv so far */
	struct isif_strbuf sim; /* similarity.jsonl so far: a line per evaluated epoch */
	int failed_write;
	bool log_steps;
	bool supervised;     /* isifd runs this under mpirun: see supervise() */
};

/* SIGINT/SIGTERM, or the supervisor's stop and cancel: the flag
 * isif_trainer_run polls between batches. */
static atomic_int stop_flag;

/* --supervised: the supervisor's acknowledgements of @epoch lines, counted
 * by the thread reading stdin (rank 0's stdin is mpirun's). */
static pthread_mutex_t ack_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ack_cv = PTHREAD_COND_INITIALIZER;
static int acks, stdin_closed;

static void *read_commands(void *arg)
{
	char line[64];
	(void)arg;
	while (fgets(line, sizeof line, stdin)) {
		if (strncmp(line, "stop", 4) == 0)
			atomic_store(&stop_flag, ISIF_STOP_CHECKPOINT);
		else if (strncmp(line, "cancel", 6) == 0)
			atomic_store(&stop_flag, ISIF_CANCEL);
		pthread_mutex_lock(&ack_mu);
		acks += strncmp(line, "ack", 3) == 0;
		pthread_cond_broadcast(&ack_cv);
		pthread_mutex_unlock(&ack_mu);
	}
	/* the supervisor is gone: stop (its next start resumes the job) */
	atomic_store(&stop_flag, ISIF_CANCEL);
	pthread_mutex_lock(&ack_mu);
	stdin_closed = 1;
	pthread_cond_broadcast(&ack_cv);
	pthread_mutex_unlock(&ack_mu);
	return NULL;
}

/* Waits until the supervisor has committed the epoch just announced (it
 * links the checkpoint, which the next epoch would overwrite). */
static void wait_ack(int want)
{
	pthread_mutex_lock(&ack_mu);
	while (acks < want && !stdin_closed)
		pthread_cond_wait(&ack_cv, &ack_mu);
	pthread_mutex_unlock(&ack_mu);
}

/* One progress line, rewritten in place: the phase, a bar for it, and the
 * ETA of the whole run (evaluations included). */
static void on_progress(void *user, const struct isif_progress *p)
{
	struct train_state *st = user;
	if (st->supervised) {
		printf("@progress %d %d %d %lld %lld %.17g %.17g %.17g\n", p->epoch, p->epochs,
		       (int)p->phase, (long long)p->images_done, (long long)p->images_total,
		       p->images_per_sec, p->eta_seconds, p->loss);
		fflush(stdout);
	}
	if (st->log_steps && p->phase == ISIF_PHASE_TRAINING) {
		printf("step %d %lld %.9g\n", p->epoch, (long long)p->images_done, p->step_loss);
		fflush(stdout);
	}
	if (!st->tty)
		return;
	int width = 30, filled = (int)(width * p->images_done / (p->images_total ? p->images_total : 1));
	char eta[32] = "?";
	if (p->eta_seconds >= 0)
		snprintf(eta, sizeof eta, "%.0fs", p->eta_seconds);
	fprintf(st->tty, "\r\033[Kepoch %d/%d %s [%.*s%*s] %lld/%lld  loss %.4f  %.0f img/s  ETA %s ",
		p->epoch, p->epochs, isif_phase_name(p->phase), filled,
		"==============================", width - filled, "", (long long)p->images_done,
		(long long)p->images_total, p->loss, p->images_per_sec, eta);
	fflush(st->tty);
}

static void write_embeddings(struct train_state *st, const char *name, const float *e,
			     int64_t n, int D)
{
	char path[1200];
	struct isif_error err = {0};
	snprintf(path, sizeof path, "%s/embeddings-%s.npy", st->out_dir, name);
	if (n > 0 && isif_npy_write(path, e, 2, (int64_t[]){ n, D }, &err)) {
		fprintf(stderr, "isif train: %s\n", err.msg);
		st->failed_write = 1;
	}
}

static void on_epoch(void *user, const struct isif_epoch_metrics *m, const char *ckpt,
		     const float *train_emb, int64_t n_train, const float *test_emb,
		     int64_t n_test, int D)
{
	struct train_state *st = user;
	char path[1200];
	struct isif_error err = {0};
	if (st->tty)
		fputs("\r\033[K", st->tty);
	if (m->has_knn)
		printf("epoch %3d  loss %.4f  knn_top1 %6.2f%%  top5 %6.2f%%  lr %.5f  %6.1fs  %7.1f img/s  data-wait %4.1f%%\n",
		       m->epoch, m->loss, 100 * m->knn_top1, 100 * m->knn_top5, m->lr, m->seconds,
		       m->images_per_sec, 100 * m->data_wait_frac);
	else if (m->unseen)
		printf("epoch %3d  loss %.4f  R@1 %6.2f%%  R@8 %6.2f%%  NMI %.4f  lr %.5f  %6.1fs  %7.1f img/s  data-wait %4.1f%%\n",
		       m->epoch, m->loss, 100 * m->recall_at[0], 100 * m->recall_at[3], m->nmi,
		       m->lr, m->seconds, m->images_per_sec, 100 * m->data_wait_frac);
	else
		printf("epoch %3d  loss %.4f  lr %.5f  %6.1fs  %7.1f img/s  data-wait %4.1f%%\n",
		       m->epoch, m->loss, m->lr, m->seconds, m->images_per_sec,
		       100 * m->data_wait_frac);
	if (m->has_probe)
		printf("           linear probe top1 %6.2f%% (embedding)  %6.2f%% (backbone)  %5.1fs\n",
		       100 * m->probe_top1, 100 * m->probe_backbone_top1, m->probe_seconds);
	if (m->steps > 0 && m->allgather_seconds + m->allreduce_seconds > 0)
		printf("           per step: allgather %.2f ms, allreduce %.2f ms (%d steps)\n",
		       1e3 * m->allgather_seconds / m->steps, 1e3 * m->allreduce_seconds / m->steps,
		       m->steps);
	fflush(stdout);
	isif_metrics_csv_row(&st->csv, m);
	snprintf(path, sizeof path, "%s/metrics.csv", st->out_dir);
	struct isif_chunk c = { st->csv.p, st->csv.len };
	if (st->csv.failed)
		isif_fail(&err, ISIF_ENOMEM, "%s: out of memory", path);
	if (st->csv.failed || isif_write_atomic(path, &c, 1, &err)) {
		fprintf(stderr, "isif train: %s\n", err.msg);
		st->failed_write = 1;
	}
	if (m->has_simhist) {
		cli_simhist_json(&st->sim, m->epoch, &m->sim);
		snprintf(path, sizeof path, "%s/similarity.jsonl", st->out_dir);
		struct isif_chunk s = { st->sim.p, st->sim.len };
		if (st->sim.failed || isif_write_atomic(path, &s, 1, &err)) {
			fprintf(stderr, "isif train: %s: %s\n", path,
				st->sim.failed ? "out of memory" : err.msg);
			st->failed_write = 1;
		}
	}
	write_embeddings(st, "train", train_emb, n_train, D);
	write_embeddings(st, "test", test_emb, n_test, D);
	if (st->supervised) {
		/* the embeddings of this epoch's evaluation are in the files
		 * written just above when eval is 1 */
		printf("@epoch %d %.17g %d %.17g %.17g %d %.17g %.17g %.17g %.17g %.17g %.17g %.17g "
		       "%.17g %.17g %.17g %d %s\n", m->epoch, m->loss, m->has_knn, m->knn_top1,
		       m->knn_top5, m->unseen, m->recall_at[0], m->recall_at[1], m->recall_at[2],
		       m->recall_at[3], m->nmi, m->lr, m->seconds, m->train_seconds,
		       m->images_per_sec, m->data_wait_frac, train_emb && test_emb, ckpt);
		fflush(stdout);
		wait_ack(m->epoch);
	}
}

/* SIGINT/SIGTERM: finish the current batch, write a checkpoint, stop. */
static void on_signal(int sig)
{
	(void)sig;
	atomic_store(&stop_flag, ISIF_STOP_CHECKPOINT);
}

/* The trainer's one-off lines (precision, a resolved classes.split). */
static void on_log(void *user, const char *line)
{
	struct train_state *st = user;
	if (st->tty)
		fputs("\r\033[K", st->tty);
	printf("%s\n", line);
	fflush(stdout);
}

static void on_stop(void *user, int epoch, int step, const char *ckpt)
{
	struct train_state *st = user;
	if (st->tty)
		fputs("\r\033[K", st->tty);
	printf("stopped after %d epochs and %d batches; checkpoint %s (continue with --resume)\n",
	       epoch, step, ckpt);
	if (st->supervised)
		printf("@stop %d %d %s\n", epoch, step, ckpt);
	fflush(stdout);
}

/* Where folder datasets are cached decoded: --cache-dir, else
 * $XDG_CACHE_HOME/isif/datasets, else $HOME/.cache/isif/datasets; none with
 * --no-cache (or when neither variable is set). */
static const char *cache_dir(struct cli_args *a, char *buf, size_t len)
{
	const char *dir = cli_opt(a, "--cache-dir"), *xdg = getenv("XDG_CACHE_HOME");
	const char *home = getenv("HOME");
	if (cli_flag(a, "--no-cache"))
		return NULL;
	if (dir)
		return dir;
	int n;
	if (xdg && xdg[0] == '/')
		n = snprintf(buf, len, "%s/isif/datasets", xdg);
	else if (home && home[0] == '/')
		n = snprintf(buf, len, "%s/.cache/isif/datasets", home);
	else
		return NULL;
	if (n < 0 || (size_t)n >= len)
		return NULL;
	/* mkdir -p, private; the loader creates the last level */
	for (char *p = buf + 1; (p = strchr(p, '/')) != NULL; p++) {
		*p = '\0';
		int bad = mkdir(buf, 0700) != 0 && errno != EEXIST;
		*p = '/';
		if (bad)
			return NULL;
	}
	return buf;
}

struct load_args {
	const char *name, *format, *image_size, *cache_dir, *cache_max;
	int threads, rank;
};

static int load_dataset(const struct load_args *la, struct isif_dataset *ds)
{
	struct isif_error err = {0};
	struct isif_dataset_options opt;
	isif_dataset_options_default(&opt);
	long size = 0, max_mib = 0;
	if (la->image_size && cli_int("--image-size", la->image_size, 16, 1024, &size))
		return -1;
	if (la->cache_max && cli_int("--cache-max-mib", la->cache_max, 1, 1L << 30, &max_mib))
		return -1;
	if (size)
		opt.image_size = (int)size;
	opt.threads = la->threads;
	opt.cache_dir = la->cache_dir;
	opt.cache_max_bytes = (int64_t)max_mib << 20;
	int fmt = isif_dataset_format_parse(la->format ? la->format : "auto");
	if (fmt < 0) {
		fprintf(stderr, "isif: unknown --format '%s'\n", la->format);
		return -1;
	}
	if (isif_dataset_load(ds, la->name, fmt, &opt, &err)) {
		fprintf(stderr, "isif: %s\n", err.msg);
		return -1;
	}
	/* rank 0 on stdout; the other ranks (stdout closed) say theirs on stderr */
	FILE *to = la->rank == 0 ? stdout : stderr;
	char who[32] = "";
	if (la->rank != 0)
		snprintf(who, sizeof who, "rank %d: ", la->rank);
	if (ds->cache == ISIF_DS_CACHE_HIT)
		fprintf(to, "%sdataset cache: hit %s (mapped, nothing decoded)\n", who,
			ds->cache_note);
	else if (ds->cache == ISIF_DS_CACHE_STORED)
		fprintf(to, "%sdataset cache: stored %s (decoded on %d thread%s)\n", who,
			ds->cache_note, opt.threads, opt.threads == 1 ? "" : "s");
	else if (ds->cache == ISIF_DS_CACHE_UNSTORED)
		fprintf(to, "%sdataset cache: %s\n", who, ds->cache_note);
	return 0;
}

/* Joins the MPI world when mpirun started this process or the spec asks for
 * processes; the spec's count, when given, must be mpirun's. */
static int start_ranks(struct isif_job_spec *spec, int *rank, int *size)
{
	struct isif_error err = { 0 };
	int launched = isif_dist_launched_size();
	*rank = 0;
	*size = 1;
	if (launched == 1 && spec->processes == 1)
		return 0;
	if (!isif_dist_compiled()) {
		fprintf(stderr, "isif train: MPI is unavailable: this isif was built without Open MPI "
			"(install libopenmpi-dev, rebuild), so it runs one process\n");
		return -1;
	}
	if (launched == 1) {
		fprintf(stderr, "isif train: processes: %d needs mpirun -np %d isif train ...\n",
			spec->processes, spec->processes);
		return -1;
	}
	if (isif_dist_init(rank, size, &err)) {
		fprintf(stderr, "isif train: %s\n", err.msg);
		return -1;
	}
	if (spec->processes != 1 && spec->processes != *size) {
		if (*rank == 0)
			fprintf(stderr, "isif train: processes is %d, but mpirun started %d\n",
				spec->processes, *size);
		isif_dist_finalize();
		return -1;
	}
	spec->processes = *size;
	return 0;
}

/* Threads of one rank when the node runs several: its share of the cores. */
static int rank_budget(void)
{
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	const char *local = getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
	long per_node = local ? strtol(local, NULL, 10) : 1;
	if (cores < 1)
		cores = 1;
	if (per_node > 1)
		cores /= per_node;
	return cores > 0 ? (int)cores : 1;
}

/* The threads the run gets and its estimated peak memory (what isifd checks
 * against --max-job-memory). */
static void print_plan(const struct isif_job_spec *spec, const struct isif_dataset *ds, int budget)
{
	struct isif_dataset_shape shape;
	struct isif_memory_estimate m;
	struct isif_error err = {0};
	int threads = isif_train_threads(spec, budget);
	isif_dataset_shape_of(ds, &shape);
	printf("threads: %d compute, %d loader\n", threads, isif_train_loader_threads(threads));
	if (isif_train_memory_estimate(spec, &shape, budget, &m, &err) == ISIF_OK)
		printf("memory: estimated peak %.1f MiB (activations %.1f, model and optimizer %.1f, "
		       "dataset %.1f, evaluation %.1f, loader and loss %.1f)\n", m.total / 1048576.0,
		       m.activations / 1048576.0, (m.model + m.optimizer) / 1048576.0,
		       m.dataset / 1048576.0, m.evaluation / 1048576.0,
		       (m.loader + m.loss) / 1048576.0);
}

void cli_metrics_csv_start(struct isif_strbuf *csv, const char *dir, int upto)
{
	char path[1200];
	void *text = NULL;
	size_t len;
	struct isif_epoch_metrics *rows = NULL;
	int n = 0;
	isif_strbuf_init(csv, 64 << 20);   /* 10000 epochs of rows fit many times over */
	isif_metrics_csv_header(csv);
	snprintf(path, sizeof path, "%s/metrics.csv", dir);
	if (upto > 0 && isif_read_file(path, 64 << 20, &text, &len, NULL) == ISIF_OK &&
	    isif_metrics_csv_parse(text, &rows, &n, NULL) == ISIF_OK)
		for (int i = 0; i < n; i++)
			if (rows[i].epoch <= upto)
				isif_metrics_csv_row(csv, &rows[i]);
	free(rows);
	free(text);
}

/* isif group's loader: the run's share of cores decodes, no cache (cli.h). */
int cli_load_dataset(const char *name, const char *format, const char *image_size,
		     struct isif_dataset *ds)
{
	struct load_args la = {.name = name, .format = format, .image_size = image_size,
			       .threads = rank_budget()};
	return load_dataset(&la, ds);
}

int cmd_train(int argc, char **argv)
{
	struct cli_args a;
	cli_args_init(&a, argc, argv);
	if (cli_help(&a)) {
		train_help();
		cli_args_free(&a);
		return 0;
	}
	const char *dataset = cli_opt(&a, "--dataset"), *format = cli_opt(&a, "--format");
	const char *out = cli_opt(&a, "--out"), *image_size = cli_opt(&a, "--image-size");
	bool resume = cli_flag(&a, "--resume"), quiet = cli_flag(&a, "--quiet");
	struct isif_job_spec spec;
	struct isif_dataset ds = { 0 };
	struct isif_trainer *t = NULL;
	struct train_state st = { 0 };
	char ckpt[1200];
	struct isif_error err = {0};
	int rc = 2;
	int rank = 0, size = 1;
	st.log_steps = cli_flag(&a, "--log-steps");
	st.supervised = cli_flag(&a, "--supervised");
	const char *resume_from = cli_opt(&a, "--resume-from");
	char cache_buf[1100];
	struct load_args la = { .format = format, .image_size = image_size,
				.cache_max = cli_opt(&a, "--cache-max-mib") };
	la.cache_dir = cache_dir(&a, cache_buf, sizeof cache_buf);
	if (build_spec(&a, dataset, &spec) || cli_check_unused(&a, "train"))
		goto out;
	if (start_ranks(&spec, &rank, &size))
		goto out;
	/* rank 0 speaks for the run; the others print errors only */
	if (rank != 0 && !freopen("/dev/null", "w", stdout))
		goto out;
	snprintf(st.out_dir, sizeof st.out_dir, "%s", out ? out : "isif-run");
	if (mkdir(st.out_dir, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "isif train: %s: %s\n", st.out_dir, strerror(errno));
		goto out;
	}
	rc = 1;
	int budget = rank_budget();
	la.name = spec.dataset;
	la.threads = isif_train_threads(&spec, budget);
	la.rank = rank;
	if (load_dataset(&la, &ds))
		goto out;
	printf("dataset %s: %lld train, %lld test images of %d×%d×%d, %d classes\n", spec.dataset,
	       (long long)ds.train.n, (long long)ds.test.n, ds.train.c, ds.train.h, ds.train.w,
	       ds.num_classes);
	print_plan(&spec, &ds, budget);
	if (size > 1)
		printf("processes: %d (MPI), BN as one process with bn_groups %d\n", size,
		       isif_train_bn_groups(&spec, size));
	if (isif_trainer_create_ranked(&t, &spec, &ds, st.out_dir, budget, rank, size, &err))
		goto fail;
	snprintf(ckpt, sizeof ckpt, "%s/checkpoint-latest.safetensors", resume_from ? "" : st.out_dir);
	if (resume_from)
		snprintf(ckpt, sizeof ckpt, "%s", resume_from);
	if (resume_from || (resume && access(ckpt, F_OK) == 0)) {
		if (isif_trainer_resume(t, ckpt, &err))
			goto fail;
		printf("resumed from %s at epoch %d\n", ckpt, isif_trainer_epoch(t));
	} else if (spec.init_checkpoint[0]) {
		if (isif_trainer_init(t, spec.init_checkpoint, &err))
			goto fail;
		printf("backbone from %s\n", spec.init_checkpoint);
	}
	st.tty = !quiet && rank == 0 && isatty(STDERR_FILENO) ? stderr : NULL;
	cli_metrics_csv_start(&st.csv, st.out_dir, isif_trainer_epoch(t));
	isif_strbuf_init(&st.sim, 64 << 20);   /* about 1 KB per evaluated epoch */
	struct isif_train_callbacks cb = { .user = &st, .on_progress = on_progress,
					   .on_epoch = on_epoch, .on_stop = on_stop,
					   .on_log = on_log };
	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	pthread_t reader;
	if (st.supervised && rank == 0) {
		if (pthread_create(&reader, NULL, read_commands, NULL) != 0) {
			isif_fail(&err, ISIF_ENOMEM, "cannot start the command reader");
			goto fail;
		}
		pthread_detach(reader);
		acks = isif_trainer_epoch(t);   /* epochs before this run need none */
	}
	int run_rc = isif_trainer_run(t, rank == 0 ? &cb : NULL, &stop_flag, &err);
	if (run_rc == ISIF_ECANCELLED) {
		rc = 130;
		goto out;
	}
	if (run_rc)
		goto fail;
	rc = st.failed_write;
	goto out;
fail:
	fprintf(stderr, "isif train: %s%s\n", size > 1 ? "rank failed: " : "", err.msg);
	/* the other ranks may wait in a collective: end them all */
	if (size > 1)
		isif_dist_abort(1);
out:
	if (size > 1)
		isif_dist_finalize();
	isif_strbuf_free(&st.csv);
	isif_strbuf_free(&st.sim);
	isif_trainer_free(t);
	isif_dataset_free(&ds);
	cli_args_free(&a);
	return rc;
}

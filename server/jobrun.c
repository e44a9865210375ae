/*
 * server/jobrun.c — runs one job on the isif engine (see jobrun.h).
 *
 * Datasets are loaded once per name while at least one job uses them (a
 * loaded dataset is immutable and may be read by several trainers at
 * once); the last user frees it. The trainer's on_epoch callback hands the
 * checkpoint and the row to the scheduler, which commits them; if that
 * commit fails the job is stopped through its cancel flag and fails with
 * the commit's error.
 */
#include "jobrun.h"
#include "checkpoints.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "isif/data/dataset.h"
#include "isif/train/spec.h"
#include "isif/train/train.h"
#include "dscache.h"
#include "index.h"
#include "jobmpi.h"
#include "log.h"
#include "store_retrieval.h"

struct cached_dataset {
	struct cached_dataset *next;
	char name[ISIF_SPEC_NAME_LEN];
	int users;
	struct isif_dataset ds;
};

struct jobrun {
	struct store *st;
	char state_dir[1024];         /* init.checkpoint names live in STATE/checkpoints */
	pthread_mutex_t mu;           /* guards the cache; held while loading */
	struct cached_dataset *cache;
	struct jobmpi_options mpi;    /* jobs of processes > 1 */
};

void jobrun_set_mpi(struct jobrun *jr, const struct jobmpi_options *o)
{
	jr->mpi = *o;
}

struct jobrun *jobrun_create(struct store *st, const char *state_dir)
{
	struct jobrun *jr = calloc(1, sizeof *jr);
	if (!jr)
		return NULL;
	jr->st = st;
	snprintf(jr->state_dir, sizeof jr->state_dir, "%s", state_dir);
	pthread_mutex_init(&jr->mu, NULL);
	return jr;
}

void jobrun_free(struct jobrun *jr)
{
	if (!jr)
		return;
	while (jr->cache) {
		struct cached_dataset *c = jr->cache;
		jr->cache = c->next;
		isif_dataset_free(&c->ds);
		free(c);
	}
	pthread_mutex_destroy(&jr->mu);
	free(jr);
}

static enum isif_rc dataset_acquire(struct jobrun *jr, const char *name, int threads,
			   struct cached_dataset **out, struct isif_error *err)
{
	char format[32], path[1024];
	enum isif_rc rc = ISIF_OK;
	pthread_mutex_lock(&jr->mu);
	for (struct cached_dataset *c = jr->cache; c; c = c->next)
		if (strcmp(c->name, name) == 0) {
			c->users++;
			*out = c;
			goto out;
		}
	struct isif_error e_db;
	rc = store_dataset_lookup(jr->st, name, format, sizeof format, path, sizeof path, &e_db);
	if (rc == ISIF_ENOTFOUND) {
		rc = isif_fail(err, rc, "dataset \"%s\" is not registered", name);
		goto out;
	}
	if (rc) {
		rc = isif_fail(err, rc, "dataset \"%s\": database: %s", name, e_db.msg);
		goto out;
	}
	int fmt = isif_dataset_format_parse(format);
	if (fmt < 0) {
		rc = isif_fail(err, ISIF_EINVAL, "dataset \"%s\": unknown format \"%s\"", name, format);
		goto out;
	}
	struct cached_dataset *c = calloc(1, sizeof *c);
	if (!c) {
		rc = isif_fail(err, ISIF_ENOMEM, "out of memory");
		goto out;
	}
	log_info("dataset %s: loading %s (%s)", name, path, format);
	struct isif_dataset_options opt;
	isif_dataset_options_default(&opt);
	int size = store_dataset_image_size(jr->st, name);   /* POST /datasets image_size */
	if (size > 0)
		opt.image_size = size;
	opt.threads = threads;   /* the job's budget: its threads are idle until it loads */
	if (jr->mpi.folder_cache && jr->mpi.folder_cache[0] && jr->mpi.folder_cache_mib > 0) {
		opt.cache_dir = jr->mpi.folder_cache;
		opt.cache_max_bytes = (int64_t)jr->mpi.folder_cache_mib << 20;
	}
	rc = isif_dataset_load(&c->ds, path, (enum isif_dataset_format)fmt, &opt, err);
	if (rc) {
		free(c);
		goto out;
	}
	dscache_log_cache(name, &c->ds);
	log_info("dataset %s: %lld train, %lld test images of %dx%dx%d", name,
		 (long long)c->ds.train.n, (long long)c->ds.test.n, c->ds.train.c,
		 c->ds.train.h, c->ds.train.w);
	/* The registry records the shape once loaded: submits check against it. */
	struct dataset_info info;
	char *norm, *names;
	dscache_info_of(&c->ds, &info, &norm, &names);
	store_dataset_set_info(jr->st, name, &info, NULL);   /* logged by the store */
	free(norm);
	free(names);
	snprintf(c->name, sizeof c->name, "%s", name);
	c->users = 1;
	c->next = jr->cache;
	jr->cache = c;
	*out = c;
out:
	pthread_mutex_unlock(&jr->mu);
	return rc;
}

static void dataset_release(struct jobrun *jr, struct cached_dataset *d)
{
	pthread_mutex_lock(&jr->mu);
	if (--d->users == 0) {
		for (struct cached_dataset **p = &jr->cache; *p; p = &(*p)->next)
			if (*p == d) {
				*p = d->next;
				break;
			}
		isif_dataset_free(&d->ds);
		free(d);
	}
	pthread_mutex_unlock(&jr->mu);
}

/* Per-run state the trainer's callbacks see. */
struct run_ctx {
	struct sched_job *job;
	struct store *st;
	const struct isif_job_spec *spec;
	const struct isif_dataset *ds;
	int64_t images_per_epoch;     /* from the last progress report */
	enum isif_rc commit_rc;
	struct isif_error commit_err;
};

static void on_progress(void *user, const struct isif_progress *p)
{
	struct run_ctx *ctx = user;
	struct job_progress jp = {
		.epoch = p->epoch, .epochs = p->epochs, .phase = p->phase,
		.images_done = p->images_done, .images_total = p->images_total,
		.images_per_sec = p->images_per_sec, .eta_seconds = p->eta_seconds, .loss = p->loss,
	};
	if (p->phase == ISIF_PHASE_TRAINING)
		ctx->images_per_epoch = p->images_total;
	sched_job_progress(ctx->job, &jp);
}

/* The evaluation's embeddings become the job's index (before the epoch's
 * row and event, so a client that sees the event finds the index). A
 * failure costs the index, not the job. */
static void publish_index(struct run_ctx *ctx, int epoch, const char *checkpoint_path,
			  const float *train_emb, int64_t n_train, const float *test_emb,
			  int64_t n_test, int D)
{
	struct isif_error err = {0};
	struct index_source src = {
		.job = ctx->job->id, .job_dir = ctx->job->job_dir, .epoch = epoch,
		.checkpoint_path = checkpoint_path, .spec = ctx->spec, .ds = ctx->ds,
		.emb = {train_emb, test_emb}, .n = {n_train, n_test}, .dim = D,
	};
	if (index_publish(ctx->st, &src, &err) != ISIF_OK)
		log_error("job %lld: the embedding index of epoch %d was not stored: %s",
			  (long long)ctx->job->id, epoch, err.msg);
}

static void on_epoch(void *user, const struct isif_epoch_metrics *m,
		     const char *checkpoint_path, const float *train_emb, int64_t n_train,
		     const float *test_emb, int64_t n_test, int D)
{
	struct run_ctx *ctx = user;
	if (ctx->commit_rc)
		return;
	if (train_emb && test_emb)
		publish_index(ctx, m->epoch, checkpoint_path, train_emb, n_train, test_emb, n_test, D);
	struct metrics_row r = {
		.epoch = m->epoch, .loss = m->loss, .has_knn = m->has_knn,
		.knn_top1 = m->knn_top1, .knn_top5 = m->knn_top5, .unseen = m->unseen,
		.nmi = m->nmi, .lr = m->lr, .seconds = m->seconds,
		.images_per_sec = m->images_per_sec, .data_wait = m->data_wait_frac,
		.has_probe = m->has_probe, .probe_top1 = m->probe_top1,
		.probe_backbone_top1 = m->probe_backbone_top1,
		.images = ctx->images_per_epoch > 0 ? ctx->images_per_epoch
			: (int64_t)llround(m->images_per_sec * m->train_seconds),
		.sim = m->has_simhist ? &m->sim : NULL,
	};
	memcpy(r.recall_at, m->recall_at, sizeof r.recall_at);
	ctx->commit_rc = sched_epoch_done(ctx->job, &r, checkpoint_path, &ctx->commit_err);
	if (ctx->commit_rc)
		atomic_store(ctx->job->cancel, 1);
}

static void on_stop(void *user, int epoch, int step, const char *checkpoint_path)
{
	struct run_ctx *ctx = user;
	struct isif_error err = {0};
	/* On failure the job resumes from its last epoch checkpoint instead. */
	if (sched_stop_checkpoint(ctx->job, epoch, step, checkpoint_path, &err))
		log_error("job %lld: %s", (long long)ctx->job->id, err.msg);
}

static void on_log(void *user, const char *line)
{
	struct run_ctx *ctx = user;
	log_info("job %lld: %s", (long long)ctx->job->id, line);
}

/* A job of several processes: mpirun runs isif train, supervised (jobmpi.c);
 * the dataset stays loaded here for the evaluation's index. */
static enum isif_rc run_processes(struct jobrun *jr, struct sched_job *job,
				  const struct isif_job_spec *spec,
				  const struct isif_train_callbacks *cb, struct isif_error *err)
{
	char format[32], path[1024];
	struct isif_error e_db = { 0 };
	if (store_dataset_lookup(jr->st, spec->dataset, format, sizeof format, path, sizeof path,
				 &e_db))
		return isif_fail(err, ISIF_EIO, "dataset \"%s\": %s", spec->dataset, e_db.msg);
	int per_rank = spec->threads > 0 ? spec->threads : job->threads / spec->processes;
	per_rank = per_rank > 0 ? per_rank : 1;
	sched_job_threads(job, per_rank, isif_train_loader_threads(per_rank));
	return jobmpi_run(&jr->mpi, job, spec, format, path,
			  store_dataset_image_size(jr->st, spec->dataset), cb, err);
}

enum isif_rc jobrun_run(void *user, struct sched_job *job, struct isif_error *err)
{
	struct jobrun *jr = user;
	struct isif_job_spec spec;
	struct cached_dataset *ds = NULL;
	struct isif_trainer *t = NULL;
	struct run_ctx ctx = {.job = job, .st = jr->st, .spec = &spec};
	isif_spec_default(&spec);
	int rc = isif_spec_parse(&spec, job->spec_json, true, err);
	if (rc)
		return rc;
	rc = dataset_acquire(jr, spec.dataset, job->threads, &ds, err);
	if (rc)
		return rc;
	ctx.ds = &ds->ds;
	/* the index's rows (index_select_rows) follow the resolved lists too */
	rc = isif_spec_resolve_classes(&spec, ds->ds.num_classes, ds->ds.class_names, err);
	if (rc)
		goto out;
	struct isif_train_callbacks cb = {
		.user = &ctx, .on_progress = on_progress, .on_epoch = on_epoch, .on_log = on_log,
		.on_stop = on_stop,
	};
	if (spec.processes > 1) {
		rc = run_processes(jr, job, &spec, &cb, err);
		if (ctx.commit_rc)
			rc = isif_fail(err, ctx.commit_rc, "%s", ctx.commit_err.msg);
		goto out;
	}
	rc = isif_trainer_create(&t, &spec, &ds->ds, job->run_dir, job->threads, err);
	if (rc)
		goto out;
	sched_job_threads(job, isif_trainer_threads(t),
			  isif_train_loader_threads(isif_trainer_threads(t)));
	if (job->checkpoint) {
		rc = isif_trainer_resume(t, job->checkpoint, err);
		if (rc)
			goto out;
		if (isif_trainer_epoch(t) != job->checkpoint_epoch) {
			rc = isif_fail(err, ISIF_EFORMAT, "%s holds epoch %d, the database says %d",
				       job->checkpoint, isif_trainer_epoch(t), job->checkpoint_epoch);
			goto out;
		}
	} else if (spec.init_checkpoint[0]) {
		/* a fresh start only: a resumed job's checkpoint holds its trained backbone */
		char file[1200];
		checkpoint_file(jr->state_dir, spec.init_checkpoint, file, sizeof file);
		rc = isif_trainer_init(t, file, err);
		if (rc)
			goto out;
	}
	rc = isif_trainer_run(t, &cb, job->cancel, err);
	if (ctx.commit_rc)
		rc = isif_fail(err, ctx.commit_rc, "%s", ctx.commit_err.msg);
out:
	isif_trainer_free(t);
	dataset_release(jr, ds);
	return rc;
}

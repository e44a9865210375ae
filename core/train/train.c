/*
 * core/train/train.c — the training loop of a job (isif/train/train.h): per epoch a
 * seeded shuffle, batches of m images × 2 views from the loader, one
 * forward of the 2m rows, the ISIF loss, backward, SGD at the scheduled lr;
 * then evaluation, an atomic checkpoint and the callbacks.
 *
 * Resume is exact because everything random derives from (seed, epoch) and
 * the checkpoint holds weights, BN statistics, momentum buffers and the
 * epoch: a resumed run replays the same batches with the same state.
 */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/embed_impl.h"
#include "eval/eval_impl.h"
#include "isif/eval/eval.h"
#include "isif/nn/loss.h"
#include "isif/nn/model.h"
#include "isif/nn/optim.h"
#include "isif/base/rng.h"
#include "isif/base/clock.h"
#include "isif/base/safetensors.h"
#include "isif/train/checkpoint.h"
#include "isif/train/dist.h"
#include "isif/train/train.h"
#include "data/loader_impl.h"
#include "nn/model_impl.h"

/* A fixed seed for the train_subset shuffle, so jobs with different seeds
 * train on (and are evaluated against) the same subset. */
#define SUBSET_SEED 20190601u

struct isif_trainer {
	struct isif_job_spec spec;
	const struct isif_dataset *ds;
	char out_dir[1024];
	int threads;
	struct isif_model *model;
	struct isif_sgd opt;
	struct isif_lr_schedule sched;
	struct loader *loader;
	float *loss_ws, *dout;
	int32_t *train_idx, *test_idx, *order;
	int64_t n_train, n_test;
	int n_batches, epochs_done, unseen;
	/* Where a stopped epoch resumes: batches done and their running sums. */
	int start_step;
	double partial_loss, partial_wait, partial_seconds;
	/* This run's pace, for the ETA: training seconds and source images of
	 * its completed epochs, and the last evaluation's seconds (0: none yet). */
	double run_train_seconds, eval_seconds;
	int64_t run_images;
	/* A data-parallel run (isif/train/dist.h): this rank makes rows
	 * [row0, row0 + rows) of every batch's 2m, normalised in local_groups
	 * BN groups; emb_all holds the whole batch's embeddings gathered.
	 * Seconds in the two collectives this epoch. */
	int rank, size, row0, rows, local_groups;
	float *emb_all;
	double gather_seconds, reduce_seconds;
};

const char *isif_phase_name(enum isif_phase phase)
{
	return phase == ISIF_PHASE_EVALUATING ? "evaluating" : "training";
}

int isif_train_threads(const struct isif_job_spec *spec, int budget)
{
	int n = budget > 0 ? budget : 1;
	if (spec->threads > 0 && spec->threads < n)
		n = spec->threads;
	return n > 64 ? 64 : n;
}

int isif_train_loader_threads(int threads)
{
	return threads <= 2 ? 1 : threads / 2;
}

static int label_in(int label, const int *set, int n)
{
	for (int i = 0; i < n; i++)
		if (set[i] == label)
			return 1;
	return 0;
}

/* Indices of a split's images whose label is in set (all when n_set < 0). */
static int64_t filter_split(const struct isif_split *s, const int *set, int n_set,
			    int32_t *out)
{
	int64_t n = 0;
	for (int64_t i = 0; i < s->n; i++)
		if (n_set < 0 || label_in(s->labels[i], set, n_set))
			out[n++] = (int32_t)i;
	return n;
}

static int same_class_sets(const struct isif_job_spec *s)
{
	if (s->n_train_classes != s->n_test_classes)
		return 0;
	for (int i = 0; i < s->n_train_classes; i++)
		if (!label_in(s->train_classes[i], s->test_classes, s->n_test_classes))
			return 0;
	return 1;
}

int64_t isif_train_subset(int32_t *idx, int64_t count, int64_t n)
{
	if (n <= 0 || n >= count)
		return count;
	struct isif_rng rng;
	isif_rng_seed(&rng, SUBSET_SEED, 7);
	isif_rng_shuffle(&rng, idx, count);
	return n;
}

static enum isif_rc select_images(struct isif_trainer *t, struct isif_error *err)
{
	const struct isif_job_spec *sp = &t->spec;
	const struct isif_dataset *ds = t->ds;
	t->train_idx = malloc((size_t)(ds->train.n ? ds->train.n : 1) * sizeof(int32_t));
	t->test_idx = malloc((size_t)(ds->test.n ? ds->test.n : 1) * sizeof(int32_t));
	t->order = malloc((size_t)(ds->train.n ? ds->train.n : 1) * sizeof(int32_t));
	if (!t->train_idx || !t->test_idx || !t->order)
		return isif_fail(err, ISIF_ENOMEM, "cannot allocate image indices");
	t->n_train = filter_split(&ds->train, sp->train_classes,
				  sp->has_classes ? sp->n_train_classes : -1, t->train_idx);
	t->n_test = filter_split(&ds->test, sp->test_classes,
				 sp->has_classes ? sp->n_test_classes : -1, t->test_idx);
	/* The spec runs as written or not at all: a train_subset beyond the
	 * images there are is refused, not quietly cut. */
	struct isif_dataset_shape shape;
	isif_dataset_shape_of(ds, &shape);
	shape.n_train = t->n_train;
	shape.n_test = t->n_test;
	enum isif_rc rc = isif_spec_check_dataset(sp, &shape, sp->dataset, err);
	if (rc)
		return rc;
	t->n_train = isif_train_subset(t->train_idx, t->n_train, sp->train_subset);
	t->unseen = sp->has_classes && !same_class_sets(sp);
	t->n_batches = (int)(t->n_train / sp->batch_size);
	return ISIF_OK;
}

enum isif_rc isif_trainer_create(struct isif_trainer **out, const struct isif_job_spec *spec,
			const struct isif_dataset *ds, const char *out_dir,
			int threads, struct isif_error *err)
{
	return isif_trainer_create_ranked(out, spec, ds, out_dir, threads, 0, 1, err);
}

int isif_train_bn_groups(const struct isif_job_spec *spec, int size)
{
	if (spec->sync_bn)
		return 1;
	return spec->bn_groups == 1 && size > 1 ? size : spec->bn_groups;
}

/* Synchronised BN's sums over the ranks (isif_model_set_bn_sync). */
static int sum_over_ranks(void *user, double *buf, int n)
{
	struct isif_error err = { 0 };
	(void)user;
	return isif_dist_allreduce_sum_f64(buf, n, &err) != ISIF_OK;
}

/* Splits the batch's 2m rows among `size` ranks; BN groups must not straddle
 * two ranks, since each rank normalises only the rows it holds. */
static enum isif_rc split_rows(struct isif_trainer *t, int rank, int size, struct isif_error *err)
{
	int B = 2 * t->spec.batch_size, G = isif_train_bn_groups(&t->spec, size);
	if (size < 1 || rank < 0 || rank >= size || B % size)
		return isif_fail(err, ISIF_EINVAL, "the %d rows of a batch (2 × batch_size) do not "
				 "split among %d processes", B, size);
	if ((!t->spec.sync_bn && G % size) || B % G || B / G < 2 || B / size < 2)
		return isif_fail(err, ISIF_EINVAL, "bn_groups: %d BN groups do not split among %d "
				 "processes (use a multiple of the process count, or 1)",
				 G, size);
	t->rank = rank;
	t->size = size;
	t->rows = B / size;
	t->row0 = rank * t->rows;
	t->local_groups = t->spec.sync_bn ? 1 : G / size;
	return ISIF_OK;
}

enum isif_rc isif_trainer_create_ranked(struct isif_trainer **out, const struct isif_job_spec *spec,
			const struct isif_dataset *ds, const char *out_dir,
			int threads, int rank, int size, struct isif_error *err)
{
	*out = NULL;
	struct isif_trainer *t = calloc(1, sizeof *t);
	if (!t)
		return isif_fail(err, ISIF_ENOMEM, "cannot allocate a trainer");
	t->spec = *spec;
	t->ds = ds;
	snprintf(t->out_dir, sizeof t->out_dir, "%s", out_dir ? out_dir : ".");
	t->threads = isif_train_threads(spec, threads);
	int m = spec->batch_size, B = 2 * m;
	int rc = select_images(t, err);   /* also checks bn_groups against B */
	if (!rc)
		rc = split_rows(t, rank, size, err);
	if (rc)
		goto fail;
	rc = isif_model_create(&t->model, spec->model, ds->train.c, spec->embedding_dim,
			       spec->seed, err);
	if (rc)
		goto fail;
	/* One thread team for the job: the model's ops run on it, and the
	 * evaluation's kNN search and k-means borrow it between epochs. */
	rc = isif_model_set_threads(t->model, t->threads, err);
	if (rc)
		goto fail;
	if (t->size > 1 && spec->sync_bn)
		isif_model_set_bn_sync(t->model, sum_over_ranks, t);
	rc = isif_model_plan(t->model, t->rows, ds->train.h, ds->train.w, err);
	if (rc)
		goto fail;
	rc = isif_sgd_init(&t->opt, isif_model_num_params(t->model), (float)spec->momentum,
			   0.0f, (float)spec->weight_decay, spec->nesterov);
	if (rc) {
		rc = isif_fail(err, rc, "cannot allocate optimizer state");
		goto fail;
	}
	t->sched = spec->lr_schedule;
	t->sched.base_lr = spec->lr;
	if (t->sched.total_epochs <= 0)
		t->sched.total_epochs = spec->epochs;
	t->loss_ws = malloc(isif_loss_workspace(B) * sizeof(float));
	t->dout = malloc((size_t)B * spec->embedding_dim * sizeof(float));
	t->emb_all = malloc((size_t)B * spec->embedding_dim * sizeof(float));
	if (!t->loss_ws || !t->dout || !t->emb_all) {
		rc = isif_fail(err, ISIF_ENOMEM, "cannot allocate loss buffers");
		goto fail;
	}
	struct isif_augment aug;
	isif_spec_augment(spec, ds->train.h, ds->train.w, ds->mean, ds->std, &aug);
	rc = loader_create(&t->loader, &ds->train, m, &aug, spec->seed,
			   isif_train_loader_threads(t->threads));
	if (!rc)
		rc = loader_set_rows(t->loader, t->row0, t->rows);
	if (rc) {
		rc = isif_fail(err, rc, "cannot start the batch loader");
		goto fail;
	}
	*out = t;
	return ISIF_OK;
fail:
	isif_trainer_free(t);
	return rc;
}

void isif_trainer_free(struct isif_trainer *t)
{
	if (!t)
		return;
	loader_free(t->loader);
	isif_model_free(t->model);
	isif_sgd_free(&t->opt);
	free(t->loss_ws);
	free(t->dout);
	free(t->emb_all);
	free(t->train_idx);
	free(t->test_idx);
	free(t->order);
	free(t);
}

int isif_trainer_epoch(const struct isif_trainer *t) { return t->epochs_done; }

int isif_trainer_threads(const struct isif_trainer *t)
{
	return isif_model_threads(t->model);
}

/* Removes every optimizer file of out_dir but `keep` (the one the latest
 * checkpoint names). */
static void remove_stale_optim(const char *dir, const char *keep)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	if (!d)
		return;
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);
		if (strncmp(e->d_name, "optim-", 6) || len < 18 ||
		    strcmp(e->d_name + len - 12, ".safetensors") || strcmp(e->d_name, keep) == 0)
			continue;
		char path[1400];
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		remove(path);
	}
	closedir(d);
}

static int meta_set_double(struct isif_st_meta *meta, const char *key, double v)
{
	char text[40];
	snprintf(text, sizeof text, "%.17g", v);
	return isif_st_meta_set(meta, key, text);
}

/* Writes the optimizer state under a name of its own (epoch, step), then the
 * model checkpoint naming it: a crash between the two leaves the previous
 * pair intact. step > 0 marks a checkpoint inside epoch epochs_done + 1, with
 * the running sums of its first step batches. */
static enum isif_rc save_checkpoint(struct isif_trainer *t, int step, double loss_sum, double wait,
			   double seconds, char *model_path, size_t len, struct isif_error *err)
{
	char optim_name[64], optim_path[1200], text[32];
	snprintf(model_path, len, "%s/checkpoint-latest.safetensors", t->out_dir);
	if (step > 0)
		snprintf(optim_name, sizeof optim_name, "optim-%06d-%06d.safetensors",
			 t->epochs_done, step);
	else
		snprintf(optim_name, sizeof optim_name, "optim-%06d.safetensors", t->epochs_done);
	snprintf(optim_path, sizeof optim_path, "%s/%s", t->out_dir, optim_name);
	int rc = isif_optim_save(&t->opt, t->model, optim_path, err);
	if (rc)
		return rc;
	struct isif_st_meta meta = { 0 };
	char *spec_json = isif_spec_to_json(&t->spec);
	int bad = !spec_json;
	snprintf(text, sizeof text, "%d", t->epochs_done);
	bad = bad || isif_st_meta_set(&meta, "epoch", text) ||
	      isif_st_meta_set(&meta, "optim", optim_name) ||
	      isif_st_meta_set(&meta, "spec", spec_json) ||
	      isif_checkpoint_dataset_meta(&meta, t->ds);
	if (step > 0) {
		snprintf(text, sizeof text, "%d", step);
		bad = bad || isif_st_meta_set(&meta, "step", text) ||
		      meta_set_double(&meta, "step_loss_sum", loss_sum) ||
		      meta_set_double(&meta, "step_wait_seconds", wait) ||
		      meta_set_double(&meta, "step_train_seconds", seconds);
	}
	free(spec_json);
	if (bad) {
		isif_st_meta_free(&meta);
		return isif_fail(err, ISIF_ENOMEM, "cannot build checkpoint metadata");
	}
	rc = isif_checkpoint_save(t->model, model_path, &meta, err);
	isif_st_meta_free(&meta);
	if (rc)
		return rc;
	remove_stale_optim(t->out_dir, optim_name);
	return ISIF_OK;
}

/* A non-negative number from checkpoint metadata (absent: 0). */
static int meta_number(const struct isif_st_meta *meta, const char *key, double max, double *out)
{
	const char *text = isif_st_meta_get(meta, key);
	char *end = NULL;
	*out = 0;
	if (!text)
		return 0;
	*out = strtod(text, &end);
	return (*end || !(*out >= 0 && *out <= max)) ? -1 : 0;
}

enum isif_rc isif_trainer_resume(struct isif_trainer *t, const char *checkpoint_path, struct isif_error *err)
{
	struct isif_st_meta meta = { 0 };
	int rc = isif_checkpoint_load(t->model, checkpoint_path, &meta, err);
	if (rc)
		return rc;
	const char *epoch = isif_st_meta_get(&meta, "epoch");
	const char *optim = isif_st_meta_get(&meta, "optim");
	char *end = NULL;
	long e = epoch ? strtol(epoch, &end, 10) : -1;
	if (!epoch || *end || e < 0 || e > t->spec.epochs || !optim || strchr(optim, '/')) {
		isif_st_meta_free(&meta);
		return isif_fail(err, ISIF_EFORMAT, "%s: missing or bad epoch/optim metadata",
				 checkpoint_path);
	}
	char dir[1024], optim_path[1200];
	snprintf(dir, sizeof dir, "%s", checkpoint_path);
	char *slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	else
		snprintf(dir, sizeof dir, ".");
	snprintf(optim_path, sizeof optim_path, "%s/%s", dir, optim);
	double step, loss_sum, wait, seconds;
	int bad = meta_number(&meta, "step", t->n_batches - 1, &step) ||
		  meta_number(&meta, "step_loss_sum", 1e300, &loss_sum) ||
		  meta_number(&meta, "step_wait_seconds", 1e300, &wait) ||
		  meta_number(&meta, "step_train_seconds", 1e300, &seconds) ||
		  step != (int)step || (step > 0 && e >= t->spec.epochs);
	isif_st_meta_free(&meta);
	if (bad)
		return isif_fail(err, ISIF_EFORMAT, "%s: bad step metadata", checkpoint_path);
	rc = isif_optim_load(&t->opt, t->model, optim_path, err);
	if (rc)
		return rc;
	t->epochs_done = (int)e;
	t->start_step = (int)step;
	t->partial_loss = loss_sum;
	t->partial_wait = wait;
	t->partial_seconds = seconds;
	return ISIF_OK;
}

/* ---- the ranks of a data-parallel run ----------------------------------------------- */

/* The worst of every rank's rc, so all ranks stop at the same point when one
 * fails (a rank that went on would wait in a collective for ever). */
static enum isif_rc agree(const struct isif_trainer *t, enum isif_rc rc, struct isif_error *err)
{
	if (t->size == 1)
		return rc;
	int failed = rc != ISIF_OK;
	struct isif_error ignored = { 0 };
	if (isif_dist_max_int(&failed, &ignored) != ISIF_OK)
		failed = 1;
	if (failed && rc == ISIF_OK)
		rc = isif_fail(err, ISIF_EIO, "another process of the run failed");
	return rc;
}

/* BN running statistics: each rank moved its own toward its rows' statistics;
 * the update is linear, so their mean is what one process with all the
 * groups computes. Before an evaluation and a checkpoint. */
static enum isif_rc average_buffers(struct isif_trainer *t, struct isif_error *err)
{
	struct isif_model *m = t->model;
	if (t->size == 1 || m->n_buffers == 0)
		return ISIF_OK;
	enum isif_rc rc = isif_dist_allreduce_sum(m->buffers, (int64_t)m->n_buffers, err);
	for (size_t i = 0; !rc && i < m->n_buffers; i++)
		m->buffers[i] /= (float)t->size;
	return rc;
}

/* The step's collectives: the batch's embeddings gathered in rank order
 * (rank r holds rows [r·rows, (r+1)·rows), so the gathered block is the
 * batch as one process holds it); returns where the whole batch is. */
static const float *gather_embeddings(struct isif_trainer *t, const float *emb,
				      struct isif_error *err)
{
	if (t->size == 1)
		return emb;
	double c0 = isif_now_s();
	enum isif_rc rc = isif_dist_allgather(emb, (int64_t)t->rows * t->spec.embedding_dim,
					      t->emb_all, err);
	t->gather_seconds += isif_now_s() - c0;
	return rc ? NULL : t->emb_all;
}

/* Every rank's gradient of the batch loss summed, as one contiguous block. */
static enum isif_rc reduce_gradients(struct isif_trainer *t, struct isif_error *err)
{
	if (t->size == 1)
		return ISIF_OK;
	double c0 = isif_now_s();
	enum isif_rc rc = isif_dist_allreduce_sum(isif_model_grads(t->model),
						  (int64_t)isif_model_num_params(t->model), err);
	t->reduce_seconds += isif_now_s() - c0;
	return rc;
}

/* ---- the ETA ---------------------------------------------------------------- */

/* Evaluations in epochs e1..epochs (1-based), as isif_trainer_run runs them. */
static int evals_from(const struct isif_trainer *t, int e1)
{
	const struct isif_job_spec *sp = &t->spec;
	int n = 0;
	for (int e = e1 < 1 ? 1 : e1; sp->eval_every > 0 && e <= sp->epochs; e++)
		n += e % sp->eval_every == 0 || e == sp->epochs;
	return n;
}

/* Seconds one evaluation takes: the last one's, or before the first a
 * guess from the training pace (a training image is two rows forward and
 * backward, about six forward rows; evaluation embeds each image once). */
static double eval_guess(const struct isif_trainer *t, double per_image)
{
	if (t->eval_seconds > 0)
		return t->eval_seconds;
	return (double)(t->n_train + t->n_test) * per_image / 6;
}

/* Seconds left in the run when `left` source images of the training in
 * epoch index `epoch` (0-based) remain: the rest of this epoch's training,
 * the epochs after it, and the evaluations from this epoch's on. */
static double eta_training(const struct isif_trainer *t, double per_image, int epoch,
			   int64_t left)
{
	int64_t per_epoch = (int64_t)t->n_batches * t->spec.batch_size;
	double train = (double)left + (double)(t->spec.epochs - epoch - 1) * (double)per_epoch;
	return per_image * train + evals_from(t, epoch + 1) * eval_guess(t, per_image);
}

/* Seconds per source image trained so far in this run (0: none yet). */
static double run_pace(const struct isif_trainer *t)
{
	return t->run_images > 0 ? t->run_train_seconds / (double)t->run_images : 0;
}

/* ---- evaluation ----------------------------------------------------------------- */

/* The evaluation's progress reports (phase "evaluating"). */
struct eval_report {
	const struct isif_train_callbacks *cb;
	struct isif_trainer *t;
	double start, loss;
	int64_t done, total;
};

static void report_eval(struct eval_report *r)
{
	if (!r->cb || !r->cb->on_progress)
		return;
	const struct isif_trainer *t = r->t;
	double now = isif_now_s(), elapsed = now - r->start, per_image = run_pace(t);
	/* The rest of this evaluation at its own pace once it has one. */
	double left = r->done >= r->total ? 0
		: r->done > 0 ? elapsed * (double)(r->total - r->done) / (double)r->done
		: eval_guess(t, per_image);
	int64_t per_epoch = (int64_t)t->n_batches * t->spec.batch_size;
	struct isif_progress p = {
		.epoch = t->epochs_done, .epochs = t->spec.epochs, .phase = ISIF_PHASE_EVALUATING,
		.images_done = r->done, .images_total = r->total,
		.images_per_sec = elapsed > 0 ? (double)r->done / elapsed : 0, .loss = r->loss,
	};
	p.eta_seconds = per_image > 0
		? left + per_image * (double)(t->spec.epochs - t->epochs_done) * (double)per_epoch +
		  evals_from(t, t->epochs_done + 1) * eval_guess(t, per_image)
		: -1;
	r->cb->on_progress(r->cb->user, &p);
}

/* Embeds images idx[0..n) of split s into out, EMBED_BLOCK at a time,
 * reporting progress after each block. */
#define EMBED_BLOCK 1024
static enum isif_rc embed_reported(struct eval_report *r, const struct isif_split *s,
				   const int32_t *idx, int64_t n, float *out, struct isif_error *err)
{
	const struct isif_dataset *ds = r->t->ds;
	int D = r->t->spec.embedding_dim;
	for (int64_t at = 0; at < n; at += EMBED_BLOCK) {
		int64_t count = n - at < EMBED_BLOCK ? n - at : EMBED_BLOCK;
		enum isif_rc rc = embed_indices(r->t->model, s, idx + at, count, ds->mean, ds->std,
						256, out + at * D, err);
		if (rc)
			return rc;
		r->done += count;
		report_eval(r);
	}
	return ISIF_OK;
}

/* Embeds this rank's share of idx[0..n) into out at its place, then gathers
 * the other ranks' shares, so every rank ends with all n embeddings. */
static enum isif_rc embed_share(struct eval_report *r, const struct isif_split *s,
				const int32_t *idx, int64_t n, float *out, struct isif_error *err)
{
	const struct isif_trainer *t = r->t;
	int D = t->spec.embedding_dim;
	int64_t lo = n * t->rank / t->size, hi = n * (t->rank + 1) / t->size;
	enum isif_rc rc = embed_reported(r, s, idx + lo, hi - lo, out + lo * D, err);
	if (t->size > 1)
		rc = agree(t, rc, err);
	if (rc || t->size == 1)
		return rc;
	int64_t *counts = malloc((size_t)t->size * sizeof(int64_t));
	if (!counts)
		return isif_fail(err, ISIF_ENOMEM, "cannot allocate gather counts");
	for (int k = 0; k < t->size; k++)
		counts[k] = (n * (k + 1) / t->size - n * k / t->size) * D;
	rc = isif_dist_allgatherv(out + lo * D, counts, out, err);
	free(counts);
	return rc;
}

/* Embeds gallery and test images and fills the metrics' evaluation part.
 * The embeddings are returned for the on_epoch callback (caller frees). */
static enum isif_rc evaluate(struct isif_trainer *t, const struct isif_train_callbacks *cb,
			     struct isif_epoch_metrics *mt, float **train_emb, float **test_emb,
			     struct isif_error *err)
{
	const struct isif_dataset *ds = t->ds;
	int D = t->spec.embedding_dim, rc;
	struct eval_report rep = {
		.cb = cb, .t = t, .start = isif_now_s(), .loss = mt->loss,
		.total = (t->n_train + t->n_test) / t->size,
	};
	report_eval(&rep);
	*train_emb = malloc((size_t)t->n_train * D * sizeof(float));
	*test_emb = malloc((size_t)(t->n_test ? t->n_test : 1) * D * sizeof(float));
	int32_t *g_labels = malloc((size_t)t->n_train * sizeof(int32_t));
	int32_t *q_labels = malloc((size_t)(t->n_test ? t->n_test : 1) * sizeof(int32_t));
	if (!*train_emb || !*test_emb || !g_labels || !q_labels) {
		rc = isif_fail(err, ISIF_ENOMEM, "cannot allocate embeddings");
		goto out;
	}
	rc = embed_share(&rep, &ds->train, t->train_idx, t->n_train, *train_emb, err);
	if (!rc)
		rc = embed_share(&rep, &ds->test, t->test_idx, t->n_test, *test_emb, err);
	if (rc || t->rank != 0)   /* rank 0 alone searches and reports */
		goto out;
	for (int64_t i = 0; i < t->n_train; i++)
		g_labels[i] = ds->train.labels[t->train_idx[i]];
	for (int64_t i = 0; i < t->n_test; i++)
		q_labels[i] = ds->test.labels[t->test_idx[i]];
	/* the search and k-means borrow the model's team (idle between passes) */
	const struct isif_knn_exec ex = { .team = model_team(t->model) };
	if (t->unseen) {
		static const int ks[4] = { 1, 2, 4, 8 };
		struct isif_rng rng;
		isif_rng_seed(&rng, t->spec.seed, 31);
		mt->unseen = true;
		rc = isif_recall_at_k_exec(*test_emb, q_labels, t->n_test, D, ks, 4, &ex,
					   mt->recall_at);
		if (!rc)
			rc = isif_nmi_kmeans_team(*test_emb, q_labels, t->n_test, D,
						  t->spec.n_test_classes, 3, 50, &rng, ex.team,
						  &mt->nmi);
	} else {
		struct isif_knn_result knn;
		rc = isif_knn_eval_exec(*train_emb, g_labels, t->n_train, *test_emb, q_labels,
					t->n_test, D, t->spec.knn_k, t->spec.knn_temperature,
					ds->num_classes, NULL, &ex, NULL, &knn);
		mt->has_knn = rc == ISIF_OK;
		mt->knn_top1 = knn.top1;
		mt->knn_top5 = knn.top5;
	}
	if (rc)
		rc = isif_fail(err, rc, "evaluation failed: %s", isif_strerror(rc));
	else
		t->eval_seconds = isif_now_s() - rep.start;
out:
	free(g_labels);
	free(q_labels);
	return rc;
}

/* ---- training -------------------------------------------------------------------- */

/* One epoch of steps; fills loss, lr, timing. */
static enum isif_rc train_epoch(struct isif_trainer *t, const struct isif_train_callbacks *cb,
		       atomic_int *cancel, struct isif_epoch_metrics *mt, struct isif_error *err)
{
	const struct isif_job_spec *sp = &t->spec;
	int epoch = t->epochs_done; /* 0-based index of this epoch */
	int m = sp->batch_size, B = 2 * m, D = sp->embedding_dim;
	const struct isif_split *s = &t->ds->train;
	struct isif_rng rng;
	int rc = ISIF_OK;

	memcpy(t->order, t->train_idx, (size_t)t->n_train * sizeof(int32_t));
	isif_rng_seed(&rng, sp->seed, 1000 + (uint64_t)epoch);
	isif_rng_shuffle(&rng, t->order, t->n_train);
	int first = t->start_step;
	if (loader_begin_epoch(t->loader, epoch, t->order, first, t->n_batches))
		return isif_fail(err, ISIF_ENOMEM, "cannot start loader threads");

	/* A resumed epoch carries on the sums of its first batches; the ETA
	 * counts this run's part only (from `start`, batch `first`). */
	double start = isif_now_s(), t0 = start - t->partial_seconds;
	double waited_total = t->partial_wait, loss_sum = t->partial_loss, lr = 0;
	t->gather_seconds = t->reduce_seconds = 0;
	int b = first;
	t->start_step = 0;
	t->partial_loss = t->partial_wait = t->partial_seconds = 0;
	for (; b < t->n_batches; b++) {
		int flag = cancel ? atomic_load(cancel) : ISIF_RUN;
		/* every rank stops at the same batch: the first flag raised wins */
		if (t->size > 1 && (rc = isif_dist_max_int(&flag, err)))
			break;
		if (flag == ISIF_STOP_CHECKPOINT) {
			char ckpt[1200];
			rc = average_buffers(t, err);
			if (!rc && t->rank == 0)
				rc = save_checkpoint(t, b, loss_sum, waited_total, isif_now_s() - t0,
						     ckpt, sizeof ckpt, err);
			rc = agree(t, rc, err);
			if (!rc && cb && cb->on_stop)
				cb->on_stop(cb->user, t->epochs_done, b, ckpt);
			if (!rc)
				rc = isif_fail(err, ISIF_ECANCELLED, "stopped in epoch %d after %d of %d batches",
					       epoch + 1, b, t->n_batches);
			break;
		}
		if (flag != ISIF_RUN) {
			rc = isif_fail(err, ISIF_ECANCELLED, "cancelled in epoch %d", epoch + 1);
			break;
		}
		double waited;
		const float *x = loader_next(t->loader, b, &waited);
		waited_total += waited;
		const float *emb;
		rc = isif_model_forward(t->model, x, t->rows, s->h, s->w, true, t->local_groups,
					&emb, err);
		const float *all = rc ? NULL : gather_embeddings(t, emb, err);
		if (!all) {
			rc = rc ? rc : ISIF_EIO;
			loader_release(t->loader, b);
			break;
		}
		/* every rank computes the whole batch's loss (B×B similarities are
		 * cheap beside the network) and back-propagates its own rows */
		double loss = isif_loss_forward_backward(t->dout, all, B, D, (float)sp->temperature,
							 sp->gradient, t->loss_ws);
		isif_model_zero_grad(t->model);
		rc = isif_model_backward(t->model, t->dout + (size_t)t->row0 * D, err);
		loader_release(t->loader, b);
		if (!rc)
			rc = reduce_gradients(t, err);
		if (rc)
			break;
		if (!isfinite(loss)) {
			rc = isif_fail(err, ISIF_ERANGE, "loss is not finite at epoch %d step %d "
				       "(learning rate too high?)", epoch + 1, b + 1);
			break;
		}
		lr = isif_lr_at(&t->sched, epoch + (double)b / t->n_batches);
		isif_sgd_step(&t->opt, isif_model_params(t->model), isif_model_grads(t->model),
			      (float)lr);
		loss_sum += loss;
		if (cb && cb->on_progress) {
			double now = isif_now_s();
			int64_t done = (int64_t)(b + 1) * m, total = (int64_t)t->n_batches * m;
			int64_t run_images = t->run_images + done - (int64_t)first * m;
			double per_image = (t->run_train_seconds + now - start) / (double)run_images;
			struct isif_progress p = {
				.epoch = epoch + 1, .epochs = sp->epochs, .phase = ISIF_PHASE_TRAINING,
				.images_done = done, .images_total = total,
				.images_per_sec = done / (now - t0), .loss = loss_sum / (b + 1),
				.step_loss = loss,
				.eta_seconds = eta_training(t, per_image, epoch, total - done),
			};
			cb->on_progress(cb->user, &p);
		}
	}
	loader_end_epoch(t->loader);
	double now = isif_now_s(), seconds = now - t0;
	t->run_train_seconds += now - start;
	t->run_images += (int64_t)(b - first) * m;
	mt->loss = loss_sum / t->n_batches;
	mt->lr = lr;
	mt->train_seconds = seconds;
	mt->images_per_sec = (double)t->n_batches * m / seconds;
	mt->data_wait_frac = seconds > 0 ? waited_total / seconds : 0;
	mt->allgather_seconds = t->gather_seconds;
	mt->allreduce_seconds = t->reduce_seconds;
	mt->steps = b - first;
	return rc;
}

enum isif_rc isif_trainer_run(struct isif_trainer *t, const struct isif_train_callbacks *cb,
		     atomic_int *cancel, struct isif_error *err)
{
	const struct isif_job_spec *sp = &t->spec;
	while (t->epochs_done < sp->epochs) {
		struct isif_epoch_metrics mt = { 0 };
		double t0 = isif_now_s();
		int rc = train_epoch(t, cb, cancel, &mt, err);
		if (rc)
			return rc;
		t->epochs_done++;
		mt.epoch = t->epochs_done;
		float *train_emb = NULL, *test_emb = NULL;
		int eval_now = sp->eval_every > 0 &&
			(t->epochs_done % sp->eval_every == 0 || t->epochs_done == sp->epochs);
		rc = average_buffers(t, err);
		if (!rc && eval_now)
			rc = evaluate(t, cb, &mt, &train_emb, &test_emb, err);
		char ckpt[1200];
		if (!rc && t->rank == 0)   /* rank 0 writes; the others wait for its verdict */
			rc = save_checkpoint(t, 0, 0, 0, 0, ckpt, sizeof ckpt, err);
		rc = agree(t, rc, err);
		mt.seconds = isif_now_s() - t0;
		if (!rc && t->rank == 0 && cb && cb->on_epoch)
			cb->on_epoch(cb->user, &mt, ckpt, train_emb, eval_now ? t->n_train : 0,
				     test_emb, eval_now ? t->n_test : 0, sp->embedding_dim);
		free(train_emb);
		free(test_emb);
		if (rc)
			return rc;
	}
	return ISIF_OK;
}

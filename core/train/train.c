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
#include "isif/base/cpu.h"
#include "isif/base/safetensors.h"
#include "isif/train/checkpoint.h"
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
	if (rc)
		goto fail;
	rc = isif_model_create(&t->model, spec->model, ds->train.c, spec->embedding_dim,
			       spec->seed, err);
	if (rc)
		goto fail;
	/* One thread team for the job: the model's ops run on it, and the
	 * evaluation's kNN search and k-means borrow it between epochs. */
	isif_model_set_precision(t->model, spec->precision);
	rc = isif_model_set_threads(t->model, t->threads, err);
	if (rc)
		goto fail;
	rc = isif_model_plan(t->model, B, ds->train.h, ds->train.w, err);
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
	if (!t->loss_ws || !t->dout) {
		rc = isif_fail(err, ISIF_ENOMEM, "cannot allocate loss buffers");
		goto fail;
	}
	struct isif_augment aug;
	isif_spec_augment(spec, ds->train.h, ds->train.w, ds->mean, ds->std, &aug);
	rc = loader_create(&t->loader, &ds->train, m, &aug, spec->seed,
			   isif_train_loader_threads(t->threads));
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
	free(t->train_idx);
	free(t->test_idx);
	free(t->order);
	free(t);
}

int isif_trainer_epoch(const struct isif_trainer *t) { return t->epochs_done; }

const char *isif_train_precision_line(enum isif_precision asked)
{
	if (asked != ISIF_PREC_BF16)
		return "precision fp32";
	if (isif_cpu_bf16())
		return "precision bf16: AVX512_BF16 dot products (bf16 operands, fp32 sums) in the "
		       "convolutions (forward, both gradients; Winograd only F(2x2)) and the linear layer; "
		       "BN, loss, weights and optimizer stay fp32";
	return "precision bf16 asked for, but this CPU has no AVX512_BF16 (or ISIF_CPU=portable): "
	       "running exact fp32 instead (not emulated)";
}

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
		.total = t->n_train + t->n_test,
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
	rc = embed_reported(&rep, &ds->train, t->train_idx, t->n_train, *train_emb, err);
	if (!rc)
		rc = embed_reported(&rep, &ds->test, t->test_idx, t->n_test, *test_emb, err);
	if (rc)
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
	int b = first;
	t->start_step = 0;
	t->partial_loss = t->partial_wait = t->partial_seconds = 0;
	for (; b < t->n_batches; b++) {
		int flag = cancel ? atomic_load(cancel) : ISIF_RUN;
		if (flag == ISIF_STOP_CHECKPOINT) {
			char ckpt[1200];
			rc = save_checkpoint(t, b, loss_sum, waited_total, isif_now_s() - t0, ckpt,
					     sizeof ckpt, err);
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
		rc = isif_model_forward(t->model, x, B, s->h, s->w, true, sp->bn_groups, &emb, err);
		if (rc) {
			loader_release(t->loader, b);
			break;
		}
		double loss = isif_loss_forward_backward(t->dout, emb, B, D, (float)sp->temperature,
							 sp->gradient, t->loss_ws);
		isif_model_zero_grad(t->model);
		rc = isif_model_backward(t->model, t->dout, err);
		loader_release(t->loader, b);
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
	return rc;
}

enum isif_rc isif_trainer_run(struct isif_trainer *t, const struct isif_train_callbacks *cb,
		     atomic_int *cancel, struct isif_error *err)
{
	const struct isif_job_spec *sp = &t->spec;
	if (cb && cb->on_log)
		cb->on_log(cb->user, isif_train_precision_line(sp->precision));
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
		if (eval_now)
			rc = evaluate(t, cb, &mt, &train_emb, &test_emb, err);
		char ckpt[1200];
		if (!rc)
			rc = save_checkpoint(t, 0, 0, 0, 0, ckpt, sizeof ckpt, err);
		mt.seconds = isif_now_s() - t0;
		if (!rc && cb && cb->on_epoch)
			cb->on_epoch(cb->user, &mt, ckpt, train_emb, eval_now ? t->n_train : 0,
				     test_emb, eval_now ? t->n_test : 0, sp->embedding_dim);
		free(train_emb);
		free(test_emb);
		if (rc)
			return rc;
	}
	return ISIF_OK;
}

/*
 * core/train/train.c — the training loop of a job (isif/train/train.h): per epoch a
 * seeded shuffle, batches of m images × 2 views from the loader, one
 * forward of the 2m rows, the ISIF loss, backward, SGD at the scheduled lr;
 * then evaluation, an atomic checkpoint and the callbacks. With method npid
 * a step is m images × 1 view, NPID's loss against the memory bank and the
 * bank's update (nn/npid_impl.h); the bank is saved beside each checkpoint.
 * eval.linear_probe adds the linear probe (isif/eval/probe.h) to evaluation.
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
#include "isif/eval/probe.h"
#include "isif/nn/loss.h"
#include "isif/nn/model.h"
#include "isif/nn/optim.h"
#include "isif/base/rng.h"
#include "isif/base/clock.h"
#include "isif/base/cpu.h"
#include "isif/base/safetensors.h"
#include "isif/train/checkpoint.h"
#include "isif/train/dist.h"
#include "isif/train/train.h"
#include "data/loader_impl.h"
#include "nn/model_impl.h"
#include "nn/npid_impl.h"

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
	/* method npid: the memory bank, the bank row of each train-split image
	 * (−1: not trained on) and of each row of the step */
	int npid_on;
	struct npid npid;
	int32_t *bank_row, *bank_idx;
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
	/* a classes.split rule becomes the lists of this dataset's classes */
	enum isif_rc rc = isif_spec_resolve_classes(&t->spec, ds->num_classes, ds->class_names, err);
	if (rc)
		return rc;
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
	rc = isif_spec_check_dataset(sp, &shape, sp->dataset, err);
	if (rc)
		return rc;
	t->n_train = isif_train_subset(t->train_idx, t->n_train, sp->train_subset);
	t->unseen = sp->has_classes && !same_class_sets(sp);
	t->n_batches = (int)(t->n_train / sp->batch_size);
	return ISIF_OK;
}

/* The memory bank: one row per image trained on, in train_idx order. */
static enum isif_rc npid_init(struct isif_trainer *t, struct isif_error *err)
{
	const struct isif_job_spec *sp = &t->spec;
	int64_t n_split = t->ds->train.n;
	t->bank_row = malloc((size_t)(n_split ? n_split : 1) * sizeof(int32_t));
	t->bank_idx = malloc((size_t)sp->batch_size * sizeof(int32_t));
	if (!t->bank_row || !t->bank_idx)
		return isif_fail(err, ISIF_ENOMEM, "cannot allocate the memory bank's index");
	for (int64_t i = 0; i < n_split; i++)
		t->bank_row[i] = -1;
	for (int64_t i = 0; i < t->n_train; i++)
		t->bank_row[t->train_idx[i]] = (int32_t)i;
	return npid_create(&t->npid, t->n_train, sp->embedding_dim, sp->batch_size,
			   sp->npid_nce ? sp->npid_negatives : 0, t->threads, sp->seed, err);
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
	int B = (t->npid_on ? 1 : 2) * t->spec.batch_size, G = isif_train_bn_groups(&t->spec, size);
	if (t->npid_on && size > 1)
		return isif_fail(err, ISIF_EINVAL, "method npid runs in one process (its memory "
				 "bank is not shared across processes), not %d", size);
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
	int m = spec->batch_size;
	t->npid_on = spec->method == ISIF_METHOD_NPID;
	int B = t->npid_on ? m : 2 * m;   /* rows of a step: NPID uses one view */
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
	isif_model_set_precision(t->model, spec->precision);
	rc = isif_model_set_threads(t->model, t->threads, err);
	if (rc)
		goto fail;
	if (t->size > 1 && spec->sync_bn)
		isif_model_set_bn_sync(t->model, sum_over_ranks, t);
	int ih, iw;
	isif_spec_input_size(spec, ds->train.h, ds->train.w, &ih, &iw);
	rc = isif_model_plan(t->model, t->rows, ih, iw, err);
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
	if (t->npid_on) {
		rc = npid_init(t, err);
		if (rc)
			goto fail;
	}
	struct isif_augment aug;
	isif_spec_augment(spec, ih, iw, ds->mean, ds->std, &aug);
	rc = loader_create(&t->loader, &ds->train, m, &aug, spec->seed,
			   isif_train_loader_threads(t->threads));
	if (!rc && t->npid_on)
		loader_set_views(t->loader, 1);
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
	npid_free(&t->npid);
	free(t->bank_row);
	free(t->bank_idx);
	free(t->emb_all);
	free(t->train_idx);
	free(t->test_idx);
	free(t->order);
	free(t);
}

int isif_trainer_epoch(const struct isif_trainer *t) { return t->epochs_done; }

const struct isif_model *isif_trainer_model(const struct isif_trainer *t) { return t->model; }

enum isif_rc isif_trainer_init(struct isif_trainer *t, const char *path, struct isif_error *err)
{
	struct isif_error e = {0};
	enum isif_rc rc = isif_checkpoint_init_backbone(t->model, path, &e);
	if (rc)
		return isif_fail(err, rc, "init.checkpoint: %s", e.msg);
	return ISIF_OK;
}

/* Where SGD starts in the parameter block during this epoch: past the
 * backbone (at the embedding layer, registered last) while init.freeze_epochs
 * holds it, else 0. */
static size_t first_trained(const struct isif_trainer *t, int epoch)
{
	if (epoch >= t->spec.freeze_epochs)
		return 0;
	const struct isif_model_tensor *w = isif_model_find(t->model, "linear.weight");
	return (size_t)((const float *)w->data - isif_model_params(t->model));
}

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

/* Removes every PREFIX*.safetensors file of out_dir but `keep` (the one the
 * latest checkpoint names): the optimizer's ("optim-") and the bank's ("npid-"). */
static void remove_stale(const char *dir, const char *prefix, const char *keep)
{
	size_t plen = strlen(prefix);
	DIR *d = opendir(dir);
	struct dirent *e;
	if (!d)
		return;
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);
		if (strncmp(e->d_name, prefix, plen) || len < plen + 12 ||
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

/* The memory bank as NAME (npid-EEEEEE[-SSSSSS].safetensors) in out_dir: tensor
 * "memory" [n_train, D] F32 and metadata "z" (the NCE normaliser, 0 before
 * the first NCE step). */
static enum isif_rc save_bank(struct isif_trainer *t, const char *name, struct isif_error *err)
{
	char path[1200];
	snprintf(path, sizeof path, "%s/%s", t->out_dir, name);
	struct isif_tensor ts = { .name = "memory", .dtype = ISIF_F32, .ndim = 2,
				  .shape = { t->npid.n, t->npid.D }, .data = t->npid.bank };
	struct isif_st_meta meta = { 0 };
	if (meta_set_double(&meta, "z", t->npid.z)) {
		isif_st_meta_free(&meta);
		return isif_fail(err, ISIF_ENOMEM, "cannot build the memory bank's metadata");
	}
	enum isif_rc rc = isif_st_write(path, &ts, 1, &meta, err);
	isif_st_meta_free(&meta);
	return rc;
}

static enum isif_rc load_bank(struct isif_trainer *t, const char *path, struct isif_error *err)
{
	struct isif_st_file f;
	enum isif_rc rc = isif_st_read(path, &f, err);
	if (rc)
		return rc;
	const struct isif_tensor *m = isif_st_find(&f, "memory");
	const char *z = isif_st_meta_get(&f.meta, "z");
	char *end = NULL;
	double zv = z ? strtod(z, &end) : -1;
	if (!m || m->dtype != ISIF_F32 || m->ndim != 2 || m->shape[0] != t->npid.n ||
	    m->shape[1] != t->npid.D || f.n != 1 || !z || *end || !(zv >= 0 && zv < 1e300))
		rc = isif_fail(err, ISIF_EFORMAT, "%s: not a memory bank of %lld × %d with its z",
			       path, (long long)t->npid.n, t->npid.D);
	else {
		memcpy(t->npid.bank, m->data, (size_t)t->npid.n * t->npid.D * sizeof(float));
		t->npid.z = zv;
	}
	isif_st_file_free(&f);
	return rc;
}

/* Writes the optimizer state under a name of its own (epoch, step), then the
 * model checkpoint naming it: a crash between the two leaves the previous
 * pair intact. step > 0 marks a checkpoint inside epoch epochs_done + 1, with
 * the running sums of its first step batches. */
static enum isif_rc save_checkpoint(struct isif_trainer *t, int step, double loss_sum, double wait,
			   double seconds, char *model_path, size_t len, struct isif_error *err)
{
	char optim_name[64], optim_path[1200], text[32], bank_name[64];
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
	/* the bank beside it, named like it: "npid-" for "optim-" */
	snprintf(bank_name, sizeof bank_name, "npid-%s", optim_name + 6);
	if (t->npid_on && (rc = save_bank(t, bank_name, err)))
		return rc;
	struct isif_st_meta meta = { 0 };
	char *spec_json = isif_spec_to_json(&t->spec);
	int bad = !spec_json;
	snprintf(text, sizeof text, "%d", t->epochs_done);
	bad = bad || isif_st_meta_set(&meta, "epoch", text) ||
	      isif_st_meta_set(&meta, "optim", optim_name) ||
	      isif_st_meta_set(&meta, "spec", spec_json) ||
	      isif_checkpoint_dataset_meta(&meta, t->ds, t->spec.random_crop) ||
	      (t->npid_on && isif_st_meta_set(&meta, "npid_bank", bank_name));
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
	remove_stale(t->out_dir, "optim-", optim_name);
	if (t->npid_on)
		remove_stale(t->out_dir, "npid-", bank_name);
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
	const char *bank = isif_st_meta_get(&meta, "npid_bank");
	char bank_path[1200] = "";
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
	if (t->npid_on && (!bank || strchr(bank, '/'))) {
		isif_st_meta_free(&meta);
		return isif_fail(err, ISIF_EFORMAT, "%s: missing or bad npid_bank metadata "
				 "(not a checkpoint of an npid job?)", checkpoint_path);
	}
	if (t->npid_on)
		snprintf(bank_path, sizeof bank_path, "%s/%s", dir, bank);
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
	if (!rc && t->npid_on)
		rc = load_bank(t, bank_path, err);
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
				   const int32_t *idx, int64_t n, float *out, float *feat,
				   struct isif_error *err)
{
	const struct isif_dataset *ds = r->t->ds;
	int D = r->t->spec.embedding_dim, F = isif_model_feature_dim(r->t->model);
	for (int64_t at = 0; at < n; at += EMBED_BLOCK) {
		int64_t count = n - at < EMBED_BLOCK ? n - at : EMBED_BLOCK;
		enum isif_rc rc = embed_indices(r->t->model, s, idx + at, count,
						r->t->spec.random_crop, ds->mean, ds->std, 256,
						out + at * D, feat ? feat + at * F : NULL, err);
		if (rc)
			return rc;
		r->done += count;
		report_eval(r);
	}
	return ISIF_OK;
}

/* eval.linear_probe: the probe on the embedding and on the pooled backbone
 * features (train split → test split), on the model's team. */
static enum isif_rc run_probes(struct isif_trainer *t, const float *train_emb,
			       const float *test_emb, const float *train_feat,
			       const float *test_feat, const int32_t *g_labels,
			       const int32_t *q_labels, struct isif_epoch_metrics *mt,
			       struct isif_error *err)
{
	int D = t->spec.embedding_dim, F = isif_model_feature_dim(t->model);
	int C = t->ds->num_classes;
	struct isif_probe_result pe, pf;
	double t0 = isif_now_s();
	enum isif_rc rc = linear_probe_team(train_emb, g_labels, t->n_train, test_emb, q_labels,
					    t->n_test, D, C, NULL, model_team(t->model), &pe, err);
	if (!rc)
		rc = linear_probe_team(train_feat, g_labels, t->n_train, test_feat, q_labels,
				       t->n_test, F, C, NULL, model_team(t->model), &pf, err);
	if (rc)
		return rc;
	mt->has_probe = true;
	mt->probe_top1 = pe.top1;
	mt->probe_backbone_top1 = pf.top1;
	mt->probe_seconds = isif_now_s() - t0;
	return ISIF_OK;
}

/* Embeds this rank's share of idx[0..n) into out at its place, then gathers
 * the other ranks' shares, so every rank ends with all n embeddings. */
static enum isif_rc embed_share(struct eval_report *r, const struct isif_split *s,
				const int32_t *idx, int64_t n, float *out, float *feat,
				struct isif_error *err)
{
	const struct isif_trainer *t = r->t;
	int D = t->spec.embedding_dim, F = isif_model_feature_dim(t->model);
	int64_t lo = n * t->rank / t->size, hi = n * (t->rank + 1) / t->size;
	enum isif_rc rc = embed_reported(r, s, idx + lo, hi - lo, out + lo * D,
					 feat ? feat + lo * F : NULL, err);
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
	if (!rc && feat) {   /* the linear probe's backbone features too */
		for (int k = 0; k < t->size; k++)
			counts[k] = counts[k] / D * F;
		rc = isif_dist_allgatherv(feat + lo * F, counts, feat, err);
	}
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
	/* the probe needs the pooled features too (not under the unseen protocol:
	 * its test classes are not the train classes) */
	int probe = t->spec.linear_probe && !t->unseen && ds->num_classes >= 2;
	size_t F = (size_t)isif_model_feature_dim(t->model);
	float *train_feat = probe ? malloc((size_t)t->n_train * F * sizeof(float)) : NULL;
	float *test_feat = probe ? malloc((size_t)(t->n_test ? t->n_test : 1) * F * sizeof(float))
				 : NULL;
	if (!*train_emb || !*test_emb || !g_labels || !q_labels ||
	    (probe && (!train_feat || !test_feat))) {
		rc = isif_fail(err, ISIF_ENOMEM, "cannot allocate embeddings");
		goto out;
	}
	rc = embed_share(&rep, &ds->train, t->train_idx, t->n_train, *train_emb, train_feat, err);
	if (!rc)
		rc = embed_share(&rep, &ds->test, t->test_idx, t->n_test, *test_emb, test_feat, err);
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
		if (!rc && probe)
			rc = run_probes(t, *train_emb, *test_emb, train_feat, test_feat, g_labels,
					q_labels, mt, err);
	}
	/* the same pairs every epoch (the job's seed), so epochs compare */
	if (!rc)
		rc = isif_simhist_compute(*test_emb, q_labels, t->n_test, D, ISIF_SIMHIST_MAX_PAIRS,
					  t->spec.seed, &mt->sim);
	mt->has_simhist = rc == ISIF_OK;
	mt->sim_same_mean = mt->sim.same.pairs ? mt->sim.same.sum / (double)mt->sim.same.pairs : NAN;
	mt->sim_diff_mean = mt->sim.diff.pairs ? mt->sim.diff.sum / (double)mt->sim.diff.pairs : NAN;
	if (rc)
		rc = isif_fail(err, rc, "evaluation failed: %s", err && err->msg[0] ? err->msg
			       : isif_strerror(rc));
	else
		t->eval_seconds = isif_now_s() - rep.start;
out:
	free(g_labels);
	free(q_labels);
	free(train_feat);
	free(test_feat);
	return rc;
}

/* ---- training -------------------------------------------------------------------- */

/* NPID's loss of batch b (rows: view 1 of images order[b·m ..]) into
 * t->dout, then the bank update with the batch's features: the loss reads
 * the bank as it was before this step. NCE's noise derives from (seed,
 * epoch, batch), so a resumed run draws the same. */
static double npid_step(struct isif_trainer *t, int epoch, int b, const float *emb)
{
	const struct isif_job_spec *sp = &t->spec;
	int m = sp->batch_size;
	for (int i = 0; i < m; i++)
		t->bank_idx[i] = t->bank_row[t->order[(int64_t)b * m + i]];
	if (sp->npid_nce) {
		struct isif_rng rng;
		isif_rng_seed(&rng, sp->seed, ((uint64_t)1 << 40) + ((uint64_t)epoch << 20) + (uint64_t)b);
		npid_draw_noise(&t->npid, m, &rng);
	}
	double loss = npid_loss(&t->npid, t->dout, emb, t->bank_idx, m, sp->npid_temperature,
				model_team(t->model));
	npid_bank_update(&t->npid, emb, t->bank_idx, m, sp->npid_momentum);
	return loss;
}

/* One epoch of steps; fills loss, lr, timing. */
static enum isif_rc train_epoch(struct isif_trainer *t, const struct isif_train_callbacks *cb,
		       atomic_int *cancel, struct isif_epoch_metrics *mt, struct isif_error *err)
{
	const struct isif_job_spec *sp = &t->spec;
	int epoch = t->epochs_done; /* 0-based index of this epoch */
	int m = sp->batch_size, B = t->npid_on ? m : 2 * m, D = sp->embedding_dim;
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
		int ih, iw;
		isif_spec_input_size(sp, s->h, s->w, &ih, &iw);
		rc = isif_model_forward(t->model, x, t->rows, ih, iw, true, t->local_groups,
					&emb, err);
		const float *all = rc ? NULL : gather_embeddings(t, emb, err);
		if (!all) {
			rc = rc ? rc : ISIF_EIO;
			loader_release(t->loader, b);
			break;
		}
		/* every rank computes the whole batch's loss (B×B similarities are
		 * cheap beside the network) and back-propagates its own rows;
		 * NPID (one process) has the first view only (rows 0..m−1) */
		double loss = t->npid_on ? npid_step(t, epoch, b, all)
			: isif_loss_forward_backward(t->dout, all, B, D, (float)sp->temperature,
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
		isif_sgd_step_from(&t->opt, isif_model_params(t->model), isif_model_grads(t->model),
				   (float)lr, first_trained(t, epoch));
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

/* Appends up to 8 class names (or numbers) of list to buf. */
static void append_classes(char *buf, size_t size, const int *list, int n, char *const *names)
{
	for (int i = 0; i < n && i < 8; i++) {
		size_t used = strlen(buf);
		if (names)
			snprintf(buf + used, size - used, "%s%s", i ? ", " : "", names[list[i]]);
		else
			snprintf(buf + used, size - used, "%s%d", i ? ", " : "", list[i]);
	}
	if (n > 8) {
		size_t used = strlen(buf);
		snprintf(buf + used, size - used, ", ... (%d in all)", n);
	}
}

/* Says which classes a classes.split rule resolved to, so a user can check
 * the held-out half without reading the code. */
static void log_class_split(const struct isif_trainer *t, const struct isif_train_callbacks *cb)
{
	const struct isif_job_spec *sp = &t->spec;
	if (!cb || !cb->on_log || sp->class_split == ISIF_SPLIT_NONE)
		return;
	char line[1024];
	snprintf(line, sizeof line, "classes.split %s: training on %d classes (",
		 sp->class_split == ISIF_SPLIT_FIRST_HALF ? "first_half" : "second_half",
		 sp->n_train_classes);
	append_classes(line, sizeof line, sp->train_classes, sp->n_train_classes,
		       t->ds->class_names);
	size_t used = strlen(line);
	snprintf(line + used, sizeof line - used, "), evaluating on the %d held-out classes (",
		 sp->n_test_classes);
	append_classes(line, sizeof line, sp->test_classes, sp->n_test_classes,
		       t->ds->class_names);
	used = strlen(line);
	snprintf(line + used, sizeof line - used, ")");
	cb->on_log(cb->user, line);
}

enum isif_rc isif_trainer_run(struct isif_trainer *t, const struct isif_train_callbacks *cb,
		     atomic_int *cancel, struct isif_error *err)
{
	const struct isif_job_spec *sp = &t->spec;
	if (cb && cb->on_log)
		cb->on_log(cb->user, isif_train_precision_line(sp->precision));
	log_class_split(t, cb);
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

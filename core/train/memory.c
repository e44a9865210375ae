/*
 * core/train/memory.c — a training job's peak memory, estimated before it
 * runs (isif_train_memory_estimate in isif/train/train.h), so that the
 * daemon can refuse at submit a job that would not fit instead of being
 * killed by the kernel at every restart.
 *
 * Each term is the size of a buffer train.c (or what it calls) allocates,
 * computed by the code that allocates it where it can be: the model's plan
 * by isif_model_memory (the planner's own passes), the loader's slots by
 * loader_memory, the loss workspace by isif_loss_workspace. What is left
 * is arithmetic on the spec and the dataset's shape. It is the memory a
 * run touches (resident, what the OOM killer counts), not what it reserves:
 * see the evaluation's re-plan below.
 *
 * Not here: the process's own baseline (code, libraries, the HTTP side of
 * the daemon) and the page cache; the estimate is what one job adds.
 */
#include <string.h>

#include "isif/nn/loss.h"
#include "isif/nn/model.h"
#include "isif/train/train.h"
#include "data/loader_impl.h"

#define MiB ((int64_t)1 << 20)
#define EMBED_BATCH 256               /* embed_indices' batch in train.c's evaluation */
#define KNN_SCRATCH_MAX (64 * MiB)    /* knn_search.c's block budgets, all together */
#define PROBE_MAX_FEATURES 512        /* widest pooled features of our models (resnet18) */

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* The evaluation: every selected train image and every test image embedded
 * (floats) with their labels, the embedding batch and the search's scratch. */
static int64_t evaluation_bytes(const struct isif_job_spec *sp,
				const struct isif_dataset_shape *shape)
{
	if (sp->eval_every <= 0)
		return 0;
	int64_t gallery = sp->train_subset > 0 ? min64(sp->train_subset, shape->n_train)
					       : shape->n_train;
	int64_t images = gallery + shape->n_test, D = sp->embedding_dim;
	int64_t pixels = (int64_t)shape->c * shape->h * shape->w;
	/* eval.linear_probe: the pooled features of every image (at most 512
	 * wide, resnet18's) and the probe's per-chunk gradients */
	int64_t F = PROBE_MAX_FEATURES, C = shape->num_classes > 0 ? shape->num_classes : 1;
	int64_t probe = sp->linear_probe
		? (images * F + (gallery / 2048 + 1) * C * F) * (int64_t)sizeof(float) : 0;
	return images * (D + 1) * (int64_t)sizeof(float) +
	       EMBED_BATCH * pixels * (int64_t)sizeof(float) +
	       min64(KNN_SCRATCH_MAX, images * D * (int64_t)sizeof(float)) + probe;
}

/* NPID: the bank (a row per image trained on) and the step's similarities
 * to it (exact: m × n; NCE: m × (k + 1) and the noise indices). */
static int64_t npid_bytes(const struct isif_job_spec *sp, const struct isif_dataset_shape *shape)
{
	if (sp->method != ISIF_METHOD_NPID)
		return 0;
	int64_t n = sp->train_subset > 0 ? min64(sp->train_subset, shape->n_train) : shape->n_train;
	int64_t m = sp->batch_size, cols = sp->npid_nce ? 2 * ((int64_t)sp->npid_negatives + 1) : n;
	return (n * sp->embedding_dim + m * cols) * (int64_t)sizeof(float);
}

enum isif_rc isif_train_memory_estimate(const struct isif_job_spec *sp,
					const struct isif_dataset_shape *shape, int threads,
					struct isif_memory_estimate *out, struct isif_error *err)
{
	memset(out, 0, sizeof *out);
	int team = isif_train_threads(sp, threads);
	int B = sp->method == ISIF_METHOD_NPID ? sp->batch_size : 2 * sp->batch_size;
	struct isif_model_memory plan;
	int ih, iw;
	isif_spec_input_size(sp, shape->h, shape->w, &ih, &iw);
	enum isif_rc rc = isif_model_memory(sp->model, shape->c, sp->embedding_dim, B, ih, iw,
					    team, &plan, err);
	if (rc)
		return rc;
	/* Evaluation forwards batches of 256 rows; below that the model
	 * re-plans for 256, but an eval-mode forward runs a few cache-sized rows
	 * at a time through the plan (model_exec.c), so of the larger plan it
	 * touches little, and the training after it B rows: the plan for B is
	 * what stays resident. */
	out->model = 2 * (int64_t)plan.params + (int64_t)plan.buffers;
	out->optimizer = (int64_t)plan.params;
	out->activations = (int64_t)(plan.activations + plan.gradients + plan.workspace);
	out->loss = ((int64_t)isif_loss_workspace(B) + (int64_t)B * sp->embedding_dim) *
		    (int64_t)sizeof(float) + npid_bytes(sp, shape);
	struct isif_augment aug;
	const float none[3] = {0, 0, 0};   /* mean and std do not change sizes */
	isif_spec_augment(sp, ih, iw, none, none, &aug);
	out->loader = (int64_t)loader_memory(shape->c, shape->h, shape->w, sp->batch_size, &aug,
					     isif_train_loader_threads(team));
	int64_t images = shape->n_train + shape->n_test;
	out->dataset = images * ((int64_t)shape->c * shape->h * shape->w + 4) +
		       (3 * shape->n_train + shape->n_test) * (int64_t)sizeof(int32_t);
	out->evaluation = evaluation_bytes(sp, shape);
	out->total = out->model + out->optimizer + out->activations + out->loss + out->loader +
		     out->dataset + out->evaluation;
	return ISIF_OK;
}

/*
 * isif/nn/model.h — the embedding networks: `resnet18`, `resnet20` and
 * `convnet` as DESIGN.md "Models" specifies them, with PyTorch state_dict
 * tensor names. Parameters live in one contiguous block, their gradients in
 * another; BN running statistics are further named tensors (buffers).
 * A model is used by one thread at a time; two models share nothing.
 */
#ifndef ISIF_MODEL_H
#define ISIF_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "isif/base/common.h"

struct isif_model;

/* One entry of the model's state_dict, in PyTorch's order. */
struct isif_model_tensor {
	const char *name;            /* e.g. "layer1.0.bn1.running_mean" */
	enum isif_dtype dtype;       /* F32, or I64 for num_batches_tracked */
	int ndim;
	int64_t shape[ISIF_MAX_DIMS];
	void *data;                  /* inside the model's blocks */
	float *grad;                 /* gradient (NULL for buffers) */
	bool is_param;               /* trainable (in the parameter block) */
};

/* Names accepted by isif_model_create, NULL-terminated. */
extern const char *const isif_model_names[];

/*
 * Builds model `name` for in_channels input channels and an embedding of
 * embed_dim, initialised as PyTorch's defaults from seed. *out is owned by
 * the caller (isif_model_free). ISIF_ENOTFOUND for an unknown name.
 */
enum isif_rc isif_model_create(struct isif_model **out, const char *name,
		      int in_channels, int embed_dim, uint64_t seed, struct isif_error *err);

/* Frees the model and everything it allocated; NULL is fine. */
void isif_model_free(struct isif_model *m);

/* The model's name, input channels and embedding width. */
const char *isif_model_name(const struct isif_model *m);
int isif_model_in_channels(const struct isif_model *m);
int isif_model_embed_dim(const struct isif_model *m);

/* Number of state_dict entries and entry i (0-based, PyTorch order). */
size_t isif_model_num_tensors(const struct isif_model *m);
const struct isif_model_tensor *isif_model_tensor(const struct isif_model *m, size_t i);

/* Entry by name, or NULL. */
const struct isif_model_tensor *isif_model_find(const struct isif_model *m, const char *name);

/* Synchronised BN: in train mode with one BN group, every BN's batch
 * statistics (forward) and its gradient sums (backward) are summed over the
 * processes of a data-parallel run by sum (buf[0..n) in place, returns 0 on
 * success), so each process normalises its rows as one process would the
 * whole batch. NULL turns it off. Forward and backward then take the plain
 * (unfused) BN path. */
void isif_model_set_bn_sync(struct isif_model *m, int (*sum)(void *user, double *buf, int n),
			    void *user);

/* The contiguous parameter and gradient blocks, and their length in floats. */
float *isif_model_params(struct isif_model *m);
float *isif_model_grads(struct isif_model *m);
size_t isif_model_num_params(const struct isif_model *m);

/* Sets every gradient to zero. */
void isif_model_zero_grad(struct isif_model *m);

/*
 * Runs the model's ops on `threads` threads from now on: the caller of
 * forward/backward plus threads − 1 workers of the model's own, started
 * here (at most 64). A new model runs on the calling thread alone. No
 * process-wide setting is read or changed; results at a given thread count
 * do not depend on other models or threads. Re-plans at the next forward.
 */
enum isif_rc isif_model_set_threads(struct isif_model *m, int threads, struct isif_error *err);

/* Threads the model's ops run on (isif_model_set_threads; 1 by default). */
int isif_model_threads(const struct isif_model *m);

/* The operands' precision of the convolutions and the linear layer. */
enum isif_precision { ISIF_PREC_FP32 = 0, ISIF_PREC_BF16 = 1 };

/*
 * ISIF_PREC_BF16: the convolutions' and the linear layer's products
 * (forward, input and weight gradients) round their operands to bfloat16
 * (nearest even) and sum in fp32; weights, gradients, BN and the loss stay
 * fp32, and Winograd runs only with F(2×2) tiles. (A direct-path product over an odd
 * channel count — a 1- or 3-channel input's forward — stays fp32.) Where
 * the CPU has no AVX512_BF16 (or ISIF_CPU=portable) everything runs exact
 * fp32. Returns the precision the products run in (isif_model_precision).
 */
enum isif_precision isif_model_set_precision(struct isif_model *m, enum isif_precision p);

/* ISIF_PREC_BF16 when bf16 was asked for and the CPU runs it, else FP32. */
enum isif_precision isif_model_precision(const struct isif_model *m);

/*
 * Sizes activations and workspace for batches of up to max_n images of
 * C×H×W (H, W ≥ 16). Called once; forward with a larger batch or another
 * size re-plans (allocating). A training step after planning allocates nothing.
 */
enum isif_rc isif_model_plan(struct isif_model *m, int max_n, int H, int W, struct isif_error *err);

/* What a model needs to train, in bytes (isif_model_memory). */
struct isif_model_memory {
	size_t params;       /* the parameter block; the gradient block is as large */
	size_t buffers;      /* BN running statistics and counters */
	size_t activations;  /* activation data: own buffers and shared data slots */
	size_t gradients;    /* the activations' gradient slots */
	size_t workspace;    /* conv/linear scratch, saved BN/L2-norm/max-pool state */
};

/*
 * The memory model `name` with in_channels and embed_dim takes, and what
 * isif_model_plan(max_n, H, W) would allocate for it on `threads` threads,
 * computed by the same planning passes without allocating any of it (only
 * the graph, briefly). Errors as isif_model_create and isif_model_plan.
 */
enum isif_rc isif_model_memory(const char *name, int in_channels, int embed_dim, int max_n,
			       int H, int W, int threads, struct isif_model_memory *out,
			       struct isif_error *err);

/*
 * Forward pass of x[N,C,H,W]. train: BN uses batch statistics (computed in
 * bn_groups equal groups of rows, 1 = the whole batch) and updates running
 * statistics; otherwise running statistics. *out points to the N×embed_dim
 * L2-normalised embeddings, owned by the model, valid until the next forward.
 * x must stay valid until isif_model_backward (the first layer's weight
 * gradient reads it).
 */
enum isif_rc isif_model_forward(struct isif_model *m, const float *x, int N, int H,
		       int W, bool train, int bn_groups, const float **out,
		       struct isif_error *err);

/* Backward of the last train-mode forward given dL/d(out) [N,embed_dim];
 * adds into the gradient block. */
enum isif_rc isif_model_backward(struct isif_model *m, const float *dout, struct isif_error *err);

/* The pooled backbone features of the last forward (the input of the final
 * `linear`, before the embedding layer): [N, *dim] floats owned by the
 * model, valid until the next forward; NULL when no forward ran. */
const float *isif_model_features(const struct isif_model *m, int *dim);

/* Width of the pooled backbone features (the final linear's input). */
int isif_model_feature_dim(const struct isif_model *m);

/* Multiply-adds of one forward pass per image at H×W (for GFLOP/s figures). */
double isif_model_flops_per_image(const struct isif_model *m, int H, int W);

#endif

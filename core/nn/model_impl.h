/*
 * core/nn/model_impl.h — the model's internal graph, shared by the graph
 * executor (model.c) and the architecture builders (model_arch.c).
 *
 * A model is a flat list of nodes in forward order. Each node reads one or
 * two activations and writes one; activation 0 is the caller's input.
 * Parameters are named tensors laid out contiguously in one block (their
 * gradients in a second block of the same layout); BN running statistics
 * live in a buffer block.
 *
 * Planning (model_exec.c) fuses a ReLU into the BN or residual add before it
 * when that node's output feeds only the ReLU: the fused node writes the
 * ReLU's output (`dst`) and the pre-ReLU activation gets no memory. A BN
 * whose output feeds only a residual add is computed by that add (BN, add
 * and ReLU in one pass), so its output gets no memory either. Gradients
 * live in a few shared slots assigned by a liveness pass over the backward
 * order instead of one buffer per activation, and activations backward never
 * reads share data slots by a liveness pass over the forward order.
 */
#ifndef ISIF_MODEL_IMPL_H
#define ISIF_MODEL_IMPL_H

#include "isif/nn/model.h"

enum node_kind {
	NODE_CONV, NODE_BN, NODE_RELU, NODE_MAXPOOL, NODE_AVGPOOL,
	NODE_LINEAR, NODE_L2NORM, NODE_ADD,
	NODE_MAXPOOL3,             /* 3×3, stride 2, padding 1 (pool3.c) */
};

struct node {
	enum node_kind kind;
	int in, in2, out;          /* activation ids (in2: second addend) */
	/* hyper-parameters (conv: K, R, S, stride, pad; linear: K) */
	int K, R, S, stride, pad;
	/* parameter tensor ids into the model's tensor table (−1: none) */
	int w, b;                  /* conv/linear weight & bias; bn gamma & beta */
	int running_mean, running_var, num_batches;
	/* planned shapes, per image: input C×H×W, output K×P×Q */
	int C, H, W, P, Q;
	/* per-step saved state (planned) */
	float *mean, *rstd;        /* bn: C·groups each */
	uint8_t *argmax;           /* maxpool, maxpool3 */
	float *norm;               /* l2norm: per row */
	uint8_t *frozen;           /* relu mask / maxpool winners held fixed (gradient checks) */
	/* planned fusion */
	int relu;                  /* BN/add: index of the ReLU node fused after it, or −1 */
	int absorbed;              /* ReLU: fused into the node before it (runs nothing) */
	int dst;                   /* activation written: out, or the fused ReLU's out */
	int alias_in[2];           /* add: gradient of in/in2 is this node's (masked) dy */
	int defer;                 /* BN: its forward runs inside the add it feeds */
	int bn_in, bn_side;        /* add: that BN node (−1: none), and which input it is */
};

struct activation {
	int C, H, W;               /* per image, after planning */
	float *data;               /* max_n·C·H·W floats (act 0: borrowed; fused away: NULL) */
	int consumers;             /* node inputs that read it */
	int dslot;                 /* data in shared slot dslot (−1: its own buffer) */
	int producer;              /* node writing it, −1 for the input */
	int gslot;                 /* gradient slot (−1: none or an alias) */
	int galias;                /* its gradient is activation galias's, masked by
				    * gmask's data when gmask ≥ 0 (−1: own slot) */
	int gmask;
	/* during backward */
	float *grad;               /* its gradient (a slot, or the aliased one's) */
	int grad_written;          /* gradient already holds a contribution */
};

#define MODEL_MAX_NODES 160
#define MODEL_MAX_TENSORS 512
#define MODEL_MAX_ACTS 160

struct isif_model {
	char name[32];
	int in_channels, embed_dim;

	int n_nodes, n_acts;
	struct node nodes[MODEL_MAX_NODES];
	struct activation acts[MODEL_MAX_ACTS];

	size_t n_tensors;
	struct isif_model_tensor tensors[MODEL_MAX_TENSORS];
	char tensor_names[MODEL_MAX_TENSORS][64];
	size_t tensor_offset[MODEL_MAX_TENSORS]; /* element offset into its block */

	float *params, *grads;     /* n_params floats each */
	size_t n_params;
	float *buffers;            /* BN running statistics */
	size_t n_buffers;
	int64_t *counters;         /* num_batches_tracked */
	size_t n_counters;

	/* plan */
	int plan_n, plan_h, plan_w, plan_groups;
	struct team *team;         /* threads of the ops (NULL: the caller alone),
				    * isif_model_set_threads */
	int plan_threads;          /* team size the workspace serves */
	int prec;                  /* enum gemm_prec asked for (isif_model_set_precision) */
	float *workspace;          /* conv and linear scratch */
	size_t workspace_len;
	float *saved;              /* mean/rstd/norm storage */
	uint8_t *argmax_store;
	int n_slots, n_dslots;
	float *dslot[MODEL_MAX_ACTS]; /* data slots of activations backward never reads */
	float *slot[MODEL_MAX_ACTS]; /* gradient slots */
	size_t slot_len[MODEL_MAX_ACTS];
	size_t planned_bytes;      /* activations + gradient slots + workspace */
	int last_n, last_train, last_groups;
	/* synchronised BN (isif_model_set_bn_sync): sums over processes */
	int (*bn_sync)(void *user, double *buf, int n);
	void *bn_sync_user;
	int bn_sync_failed;
	int last_rows;             /* rows per group of the last forward (eval: ≤ last_n) */
	const float *last_x;
	/* per-node seconds of forward [0] and backward [1], when profiling: CPU
	 * time without a team, wall time with one */
	int profile;
	double prof[MODEL_MAX_NODES][2];
};

/* Builder API used by model_arch.c: each returns the new id or −1 when a
 * table is full. Tensors are registered in PyTorch state_dict order. */
int model_add_act(struct isif_model *m);
int model_add_conv(struct isif_model *m, const char *prefix, int in, int C, int K,
		   int k, int stride, int pad);
int model_add_bn(struct isif_model *m, const char *prefix, int in, int C);
int model_add_simple(struct isif_model *m, enum node_kind kind, int in, int in2);
int model_add_linear(struct isif_model *m, const char *prefix, int in, int C, int K);

/* A BasicBlock reading activation x; returns its output activation. */
int model_add_basic_block(struct isif_model *m, const char *prefix, int x,
			  int in_planes, int planes, int stride);

/* Allocates the blocks of a model whose nodes are registered and initialises
 * its weights from seed (tests build custom graphs with this). */
int model_finish(struct isif_model *m, uint64_t seed);

/* The plan fields of isif_model_memory (activations, gradients, workspace)
 * for m's graph, without allocating; rewrites m's planning bookkeeping, so
 * call it on a graph that is not planned (isif_model_memory's scratch). */
enum isif_rc model_plan_memory(struct isif_model *m, int max_n, int H, int W, int threads,
			       struct isif_model_memory *out, struct isif_error *err);

/*
 * Gradient checks only: with on, every ReLU keeps the on/off pattern and
 * every max-pool the winners of the last forward pass, so the network is a
 * smooth function of its parameters around that point (its gradient there
 * is the true one) and finite differences do not straddle thousands of
 * kinks. With off, the frozen patterns are dropped.
 */
int model_freeze_kinks(struct isif_model *m, int on);

/* Shapes of every node and activation for H×W inputs (model_exec.c). */
enum isif_rc model_infer_shapes(struct isif_model *m, int H, int W, struct isif_error *err);

/* The model's thread team (NULL: the caller alone), which others may borrow
 * between the model's passes (the trainer's evaluation runs on it). */
struct team *model_team(const struct isif_model *m);

/* Frees what isif_model_plan allocated (the thread team too when all is set). */
void model_free_plan(struct isif_model *m, int all);

/* Architecture builders: register nodes and tensors (no memory yet). */
int model_build_convnet(struct isif_model *m);
/* imagenet: torchvision's stem (7×7/2 conv, 3×3/2 max-pool) and `downsample`
 * shortcut names instead of the CIFAR 3×3 stem and `shortcut`. */
int model_build_resnet(struct isif_model *m, const int *widths, const int *blocks,
		       int n_stages, int stem, int imagenet);

#endif

/*
 * core/model.c — the model object: tensor registry (PyTorch state_dict
 * order), parameter/gradient/buffer blocks, PyTorch default initialisation,
 * planning of activation memory, and the forward/backward executor over the
 * node list that model_arch.c builds.
 *
 * Backward walks the nodes in reverse. An activation read by two nodes (a
 * residual block's input) receives two gradient contributions: the first is
 * written straight into its gradient buffer, later ones go through scratch
 * and are added (ops overwrite dx, see isif/ops.h).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "isif/ops.h"
#include "isif/rng.h"
#include "model_impl.h"

#define BN_EPS 1e-5f
#define BN_MOMENTUM 0.1f

const char *const isif_model_names[] = { "resnet18", "resnet20", "convnet", NULL };

enum tensor_kind { KIND_PARAM, KIND_BUFFER, KIND_COUNTER };

static int add_tensor(struct isif_model *m, const char *prefix, const char *suffix,
		      enum tensor_kind kind, int ndim, const int64_t *shape)
{
	if (m->n_tensors >= MODEL_MAX_TENSORS)
		return -1;
	int id = (int)m->n_tensors++;
	struct isif_model_tensor *t = &m->tensors[id];
	snprintf(m->tensor_names[id], sizeof m->tensor_names[id], "%s.%s", prefix, suffix);
	t->name = m->tensor_names[id];
	t->dtype = kind == KIND_COUNTER ? ISIF_I64 : ISIF_F32;
	t->ndim = ndim;
	size_t numel = 1;
	for (int i = 0; i < ndim; i++) {
		t->shape[i] = shape[i];
		numel *= (size_t)shape[i];
	}
	t->is_param = kind == KIND_PARAM;
	/* Offsets now; pointers once the blocks exist (model_finish). */
	if (kind == KIND_PARAM) {
		m->tensor_offset[id] = m->n_params;
		m->n_params += numel;
	} else if (kind == KIND_BUFFER) {
		m->tensor_offset[id] = m->n_buffers;
		m->n_buffers += numel;
	} else {
		m->tensor_offset[id] = m->n_counters;
		m->n_counters += numel;
	}
	return id;
}

int model_add_act(struct isif_model *m)
{
	if (m->n_acts >= MODEL_MAX_ACTS)
		return -1;
	return m->n_acts++;
}

static struct node *new_node(struct isif_model *m, enum node_kind kind, int in)
{
	if (m->n_nodes >= MODEL_MAX_NODES)
		return NULL;
	int out = model_add_act(m);
	if (out < 0)
		return NULL;
	struct node *n = &m->nodes[m->n_nodes++];
	memset(n, 0, sizeof *n);
	n->kind = kind;
	n->in = in;
	n->in2 = -1;
	n->out = out;
	n->w = n->b = n->running_mean = n->running_var = n->num_batches = -1;
	return n;
}

int model_add_conv(struct isif_model *m, const char *prefix, int in, int C, int K,
		   int k, int stride, int pad)
{
	struct node *n = new_node(m, NODE_CONV, in);
	if (!n)
		return -1;
	n->C = C;
	n->K = K;
	n->R = n->S = k;
	n->stride = stride;
	n->pad = pad;
	int64_t shape[4] = { K, C, k, k };
	if ((n->w = add_tensor(m, prefix, "weight", KIND_PARAM, 4, shape)) < 0)
		return -1;
	return n->out;
}

int model_add_bn(struct isif_model *m, const char *prefix, int in, int C)
{
	struct node *n = new_node(m, NODE_BN, in);
	if (!n)
		return -1;
	n->C = n->K = C;
	int64_t shape[1] = { C };
	n->w = add_tensor(m, prefix, "weight", KIND_PARAM, 1, shape);
	n->b = add_tensor(m, prefix, "bias", KIND_PARAM, 1, shape);
	n->running_mean = add_tensor(m, prefix, "running_mean", KIND_BUFFER, 1, shape);
	n->running_var = add_tensor(m, prefix, "running_var", KIND_BUFFER, 1, shape);
	n->num_batches = add_tensor(m, prefix, "num_batches_tracked", KIND_COUNTER, 0, NULL);
	if (n->num_batches < 0)
		return -1;
	return n->out;
}

int model_add_simple(struct isif_model *m, enum node_kind kind, int in, int in2)
{
	struct node *n = new_node(m, kind, in);
	if (!n)
		return -1;
	n->in2 = in2;
	return n->out;
}

int model_add_linear(struct isif_model *m, const char *prefix, int in, int C, int K)
{
	struct node *n = new_node(m, NODE_LINEAR, in);
	if (!n)
		return -1;
	n->C = C;
	n->K = K;
	int64_t wshape[2] = { K, C }, bshape[1] = { K };
	n->w = add_tensor(m, prefix, "weight", KIND_PARAM, 2, wshape);
	n->b = add_tensor(m, prefix, "bias", KIND_PARAM, 1, bshape);
	if (n->b < 0)
		return -1;
	return n->out;
}

static float *param(struct isif_model *m, int id)
{
	return (float *)m->tensors[id].data;
}

static float *grad(struct isif_model *m, int id)
{
	return m->tensors[id].grad;
}

/* PyTorch defaults: kaiming_uniform(a=√5) gives U(±1/√fan_in) for conv and
 * linear weights, linear bias U(±1/√fan_in); BN weight 1, bias 0, running
 * mean 0, var 1, num_batches_tracked 0. */
static void init_weights(struct isif_model *m, uint64_t seed)
{
	struct isif_rng rng;
	isif_rng_seed(&rng, seed, 0x1417);
	for (int i = 0; i < m->n_nodes; i++) {
		struct node *n = &m->nodes[i];
		if (n->kind == NODE_CONV || n->kind == NODE_LINEAR) {
			const struct isif_model_tensor *t = &m->tensors[n->w];
			size_t numel = 1;
			for (int d = 0; d < t->ndim; d++)
				numel *= (size_t)t->shape[d];
			double fan_in = (double)numel / (double)t->shape[0];
			float bound = (float)(1.0 / sqrt(fan_in));
			float *w = param(m, n->w);
			for (size_t j = 0; j < numel; j++)
				w[j] = (float)isif_rng_range(&rng, -bound, bound);
			if (n->b >= 0)
				for (int j = 0; j < n->K; j++)
					param(m, n->b)[j] = (float)isif_rng_range(&rng, -bound, bound);
		} else if (n->kind == NODE_BN) {
			for (int j = 0; j < n->C; j++) {
				param(m, n->w)[j] = 1;
				param(m, n->b)[j] = 0;
				param(m, n->running_mean)[j] = 0;
				param(m, n->running_var)[j] = 1;
			}
		}
	}
}

int model_finish(struct isif_model *m, uint64_t seed)
{
	m->params = calloc(m->n_params ? m->n_params : 1, sizeof(float));
	m->grads = calloc(m->n_params ? m->n_params : 1, sizeof(float));
	m->buffers = calloc(m->n_buffers ? m->n_buffers : 1, sizeof(float));
	m->counters = calloc(m->n_counters ? m->n_counters : 1, sizeof(int64_t));
	if (!m->params || !m->grads || !m->buffers || !m->counters)
		return -1;
	for (size_t i = 0; i < m->n_tensors; i++) {
		struct isif_model_tensor *t = &m->tensors[i];
		size_t off = m->tensor_offset[i];
		if (t->is_param) {
			t->data = m->params + off;
			t->grad = m->grads + off;
		} else if (t->dtype == ISIF_F32) {
			t->data = m->buffers + off;
		} else {
			t->data = m->counters + off;
		}
	}
	init_weights(m, seed);
	return 0;
}

int isif_model_create(struct isif_model **out, const char *name, int in_channels,
		      int embed_dim, uint64_t seed, char *err)
{
	static const int r18_widths[] = { 64, 128, 256, 512 }, r18_blocks[] = { 2, 2, 2, 2 };
	static const int r20_widths[] = { 16, 32, 64 }, r20_blocks[] = { 3, 3, 3 };
	*out = NULL;
	if (in_channels < 1 || in_channels > 64)
		return isif_fail(err, ISIF_EINVAL, "in_channels %d out of range 1..64", in_channels);
	if (embed_dim < 1 || embed_dim > 65536)
		return isif_fail(err, ISIF_EINVAL, "embedding_dim %d out of range", embed_dim);
	struct isif_model *m = calloc(1, sizeof *m);
	if (!m)
		return isif_fail(err, ISIF_ENOMEM, "cannot allocate the model");
	snprintf(m->name, sizeof m->name, "%s", name);
	m->in_channels = in_channels;
	m->embed_dim = embed_dim;
	m->n_acts = 1; /* activation 0: the input */
	int rc;
	if (strcmp(name, "convnet") == 0)
		rc = model_build_convnet(m);
	else if (strcmp(name, "resnet18") == 0)
		rc = model_build_resnet(m, r18_widths, r18_blocks, 4, 64);
	else if (strcmp(name, "resnet20") == 0)
		rc = model_build_resnet(m, r20_widths, r20_blocks, 3, 16);
	else {
		free(m);
		return isif_fail(err, ISIF_ENOTFOUND,
				 "unknown model '%s' (resnet18, resnet20, convnet)", name);
	}
	if (rc < 0 || model_finish(m, seed) < 0) {
		isif_model_free(m);
		return isif_fail(err, ISIF_ENOMEM, "cannot build model %s", name);
	}
	*out = m;
	return ISIF_OK;
}

static void free_plan(struct isif_model *m)
{
	for (int i = 1; i < m->n_acts; i++) {
		free(m->acts[i].data);
		free(m->acts[i].grad);
		m->acts[i].data = m->acts[i].grad = NULL;
	}
	free(m->acts[0].grad);
	m->acts[0].grad = NULL;
	free(m->workspace);
	free(m->saved);
	free(m->argmax_store);
	m->workspace = m->saved = NULL;
	m->argmax_store = NULL;
	m->plan_n = 0;
}

void isif_model_free(struct isif_model *m)
{
	if (!m)
		return;
	model_freeze_kinks(m, 0);
	free_plan(m);
	free(m->params);
	free(m->grads);
	free(m->buffers);
	free(m->counters);
	free(m);
}

const char *isif_model_name(const struct isif_model *m) { return m->name; }
int isif_model_in_channels(const struct isif_model *m) { return m->in_channels; }
int isif_model_embed_dim(const struct isif_model *m) { return m->embed_dim; }
size_t isif_model_num_tensors(const struct isif_model *m) { return m->n_tensors; }
float *isif_model_params(struct isif_model *m) { return m->params; }
float *isif_model_grads(struct isif_model *m) { return m->grads; }
size_t isif_model_num_params(const struct isif_model *m) { return m->n_params; }

const struct isif_model_tensor *isif_model_tensor(const struct isif_model *m, size_t i)
{
	return i < m->n_tensors ? &m->tensors[i] : NULL;
}

const struct isif_model_tensor *isif_model_find(const struct isif_model *m, const char *name)
{
	for (size_t i = 0; i < m->n_tensors; i++)
		if (strcmp(m->tensors[i].name, name) == 0)
			return &m->tensors[i];
	return NULL;
}

void isif_model_zero_grad(struct isif_model *m)
{
	memset(m->grads, 0, m->n_params * sizeof(float));
}

static size_t act_size(const struct activation *a)
{
	return (size_t)a->C * a->H * a->W;
}

/* Propagates per-image shapes from the input through every node; fails when
 * a spatial size collapses below 1. */
static int infer_shapes(struct isif_model *m, int H, int W, char *err)
{
	m->acts[0].C = m->in_channels;
	m->acts[0].H = H;
	m->acts[0].W = W;
	for (int i = 0; i < m->n_nodes; i++) {
		struct node *n = &m->nodes[i];
		const struct activation *in = &m->acts[n->in];
		struct activation *out = &m->acts[n->out];
		n->C = in->C;
		n->H = in->H;
		n->W = in->W;
		int K = in->C, P = in->H, Q = in->W;
		switch (n->kind) {
		case NODE_CONV:
			K = n->K;
			P = isif_conv_out(in->H, n->R, n->stride, n->pad);
			Q = isif_conv_out(in->W, n->S, n->stride, n->pad);
			break;
		case NODE_MAXPOOL:
			P = in->H / 2;
			Q = in->W / 2;
			break;
		case NODE_AVGPOOL:
			P = Q = 1;
			break;
		case NODE_LINEAR:
			if (in->C * in->H * in->W != n->C)
				return isif_fail(err, ISIF_ESHAPE, "linear input size mismatch");
			K = n->K;
			P = Q = 1;
			break;
		default:
			break;
		}
		if (P < 1 || Q < 1)
			return isif_fail(err, ISIF_EINVAL, "input %dx%d too small for %s", H, W, m->name);
		n->P = P;
		n->Q = Q;
		if (n->kind != NODE_CONV && n->kind != NODE_LINEAR)
			n->K = K;
		out->C = K;
		out->H = P;
		out->W = Q;
	}
	return ISIF_OK;
}

int isif_model_plan(struct isif_model *m, int max_n, int H, int W, char *err)
{
	if (max_n < 1 || H < 1 || W < 1)
		return isif_fail(err, ISIF_EINVAL, "bad plan %d×%d×%d", max_n, H, W);
	if (H < 16 || W < 16)
		return isif_fail(err, ISIF_EINVAL, "input %dx%d is below the minimum 16x16", H, W);
	free_plan(m);
	int rc = infer_shapes(m, H, W, err);
	if (rc)
		return rc;
	size_t ws = 0, saved = 0, argmax = 0, biggest = act_size(&m->acts[0]);
	for (int i = 0; i < m->n_nodes; i++) {
		const struct node *n = &m->nodes[i];
		if (n->kind == NODE_CONV) {
			size_t need = isif_conv2d_workspace(max_n, n->C, n->H, n->W, n->K,
							    n->R, n->S, n->stride, n->pad);
			ws = need > ws ? need : ws;
		} else if (n->kind == NODE_BN) {
			saved += 2 * (size_t)n->C * (size_t)max_n; /* up to max_n groups */
		} else if (n->kind == NODE_L2NORM) {
			saved += (size_t)max_n;
		} else if (n->kind == NODE_MAXPOOL) {
			argmax += (size_t)max_n * n->C * n->P * n->Q;
		}
	}
	for (int i = 1; i < m->n_acts; i++) {
		struct activation *a = &m->acts[i];
		size_t len = (size_t)max_n * act_size(a);
		biggest = act_size(a) > biggest ? act_size(a) : biggest;
		a->data = malloc(len * sizeof(float));
		a->grad = malloc(len * sizeof(float));
		if (!a->data || !a->grad)
			goto nomem;
	}
	/* Scratch for summing a second gradient contribution, beside conv's. */
	size_t sum_scratch = (size_t)max_n * biggest;
	m->workspace_len = ws + sum_scratch;
	m->workspace = malloc(m->workspace_len * sizeof(float));
	m->saved = malloc((saved ? saved : 1) * sizeof(float));
	m->argmax_store = malloc(argmax ? argmax : 1);
	if (!m->workspace || !m->saved || !m->argmax_store)
		goto nomem;
	m->sum_scratch = m->workspace + ws;
	float *s = m->saved;
	uint8_t *am = m->argmax_store;
	for (int i = 0; i < m->n_nodes; i++) {
		struct node *n = &m->nodes[i];
		if (n->kind == NODE_BN) {
			n->mean = s;
			n->rstd = s + (size_t)n->C * max_n;
			s += 2 * (size_t)n->C * max_n;
		} else if (n->kind == NODE_L2NORM) {
			n->norm = s;
			s += max_n;
		} else if (n->kind == NODE_MAXPOOL) {
			n->argmax = am;
			am += (size_t)max_n * n->C * n->P * n->Q;
		}
	}
	m->plan_n = max_n;
	m->plan_h = H;
	m->plan_w = W;
	return ISIF_OK;
nomem:
	free_plan(m);
	return isif_fail(err, ISIF_ENOMEM, "cannot allocate activations for %d images of %dx%d",
			 max_n, H, W);
}

/* BN over `groups` equal groups of rows. With one group the running
 * statistics update inside the op; with several, each group is normalised
 * by its own statistics and the running statistics move once, toward the
 * mean over groups of the batch mean and unbiased variance. */
static void bn_forward(struct isif_model *m, struct node *n, const float *x,
		       float *y, int N, int train, int groups)
{
	float *gamma = param(m, n->w), *beta = param(m, n->b);
	float *rm = param(m, n->running_mean), *rv = param(m, n->running_var);
	int HW = n->H * n->W;
	if (!train) {
		isif_bn_forward_eval(y, x, gamma, beta, rm, rv, BN_EPS, N, n->C, HW);
		return;
	}
	*(int64_t *)m->tensors[n->num_batches].data += 1;
	if (groups == 1) {
		isif_bn_forward_train(y, n->mean, n->rstd, x, gamma, beta, rm, rv,
				      BN_MOMENTUM, BN_EPS, N, n->C, HW);
		return;
	}
	int rows = N / groups;
	size_t stride = (size_t)rows * n->C * HW;
	double count = (double)rows * HW;
	for (int g = 0; g < groups; g++)
		isif_bn_forward_train(y + g * stride, n->mean + g * n->C, n->rstd + g * n->C,
				      x + g * stride, gamma, beta, NULL, NULL,
				      BN_MOMENTUM, BN_EPS, rows, n->C, HW);
	for (int c = 0; c < n->C; c++) {
		double mean = 0, var = 0;
		for (int g = 0; g < groups; g++) {
			double r = n->rstd[g * n->C + c];
			mean += n->mean[g * n->C + c];
			var += (1.0 / (r * r) - BN_EPS) * count / (count > 1 ? count - 1 : 1);
		}
		rm[c] = (float)((1 - BN_MOMENTUM) * rm[c] + BN_MOMENTUM * mean / groups);
		rv[c] = (float)((1 - BN_MOMENTUM) * rv[c] + BN_MOMENTUM * var / groups);
	}
}

static void frozen_relu(float *y, const float *x, const uint8_t *on, size_t n)
{
	for (size_t i = 0; i < n; i++)
		y[i] = on[i] ? x[i] : 0.0f;
}

/* Max-pool that takes each window's frozen winner instead of its maximum. */
static void frozen_maxpool(float *y, const float *x, const struct node *n, int N)
{
	size_t planes = (size_t)N * n->C;
	for (size_t p = 0; p < planes; p++) {
		const float *xp = x + p * n->H * n->W;
		for (int i = 0; i < n->P; i++)
			for (int j = 0; j < n->Q; j++) {
				size_t o = (p * n->P + i) * n->Q + j;
				int k = n->frozen[o];
				y[o] = xp[(2 * i + k / 2) * n->W + 2 * j + k % 2];
				n->argmax[o] = (uint8_t)k;
			}
	}
}

int model_freeze_kinks(struct isif_model *m, int on)
{
	for (int i = 0; i < m->n_nodes; i++) {
		struct node *n = &m->nodes[i];
		free(n->frozen);
		n->frozen = NULL;
		if (!on || !m->last_n || (n->kind != NODE_RELU && n->kind != NODE_MAXPOOL))
			continue;
		size_t len = (size_t)m->last_n * n->K * n->P * n->Q;
		n->frozen = malloc(len);
		if (!n->frozen)
			return -1;
		const float *y = m->acts[n->out].data;
		for (size_t j = 0; j < len; j++)
			n->frozen[j] = n->kind == NODE_RELU ? y[j] > 0 : n->argmax[j];
	}
	return 0;
}

static void run_node(struct isif_model *m, struct node *n, int N, int train, int groups)
{
	const float *x = m->acts[n->in].data;
	float *y = m->acts[n->out].data;
	size_t out_len = (size_t)N * n->K * n->P * n->Q;
	switch (n->kind) {
	case NODE_CONV:
		isif_conv2d_forward(y, x, param(m, n->w), N, n->C, n->H, n->W, n->K,
				    n->R, n->S, n->stride, n->pad, m->workspace);
		break;
	case NODE_BN:
		bn_forward(m, n, x, y, N, train, groups);
		break;
	case NODE_RELU:
		if (n->frozen)
			frozen_relu(y, x, n->frozen, out_len);
		else
			isif_relu_forward(y, x, out_len);
		break;
	case NODE_MAXPOOL:
		if (n->frozen)
			frozen_maxpool(y, x, n, N);
		else
			isif_maxpool2_forward(y, n->argmax, x, N, n->C, n->H, n->W);
		break;
	case NODE_AVGPOOL:
		isif_avgpool_forward(y, x, N, n->C, n->H * n->W);
		break;
	case NODE_LINEAR:
		isif_linear_forward(y, x, param(m, n->w), param(m, n->b), N, n->C, n->K);
		break;
	case NODE_L2NORM:
		isif_l2norm_forward(y, n->norm, x, N, n->K * n->P * n->Q);
		break;
	case NODE_ADD:
		isif_add_forward(y, x, m->acts[n->in2].data, out_len);
		break;
	}
}

int isif_model_forward(struct isif_model *m, const float *x, int N, int H, int W,
		       bool train, int bn_groups, const float **out, char *err)
{
	if (N < 1)
		return isif_fail(err, ISIF_EINVAL, "empty batch");
	if (bn_groups < 1 || N % bn_groups != 0)
		return isif_fail(err, ISIF_EINVAL, "batch of %d rows does not split into %d BN groups",
				 N, bn_groups);
	if (train && N / bn_groups < 2)
		return isif_fail(err, ISIF_EINVAL, "train-mode BN needs at least 2 rows per group");
	if (N > m->plan_n || H != m->plan_h || W != m->plan_w) {
		int rc = isif_model_plan(m, N > m->plan_n ? N : m->plan_n, H, W, err);
		if (rc)
			return rc;
	}
	m->acts[0].data = (float *)x;
	for (int i = 0; i < m->n_nodes; i++)
		run_node(m, &m->nodes[i], N, train, bn_groups);
	m->last_n = N;
	m->last_train = train;
	m->last_groups = bn_groups;
	m->last_x = x;
	*out = m->acts[m->nodes[m->n_nodes - 1].out].data;
	return ISIF_OK;
}

/* Where a node writes the gradient for activation id: straight into its
 * buffer the first time, else into scratch that finish_grad() adds in.
 * Activation 0 (the input) gets no gradient. */
static float *grad_target(struct isif_model *m, int id)
{
	if (id == 0)
		return NULL;
	return m->acts[id].grad_written ? m->sum_scratch : m->acts[id].grad;
}

static void finish_grad(struct isif_model *m, int id, size_t len)
{
	if (id == 0)
		return;
	struct activation *a = &m->acts[id];
	if (a->grad_written) {
		for (size_t i = 0; i < len; i++)
			a->grad[i] += m->sum_scratch[i];
	}
	a->grad_written = 1;
}

static void bn_backward(struct isif_model *m, struct node *n, float *dx,
			const float *dy, const float *x, int N, int groups)
{
	int rows = N / groups, HW = n->H * n->W;
	size_t stride = (size_t)rows * n->C * HW;
	for (int g = 0; g < groups; g++)
		isif_bn_backward(dx ? dx + g * stride : NULL, grad(m, n->w), grad(m, n->b),
				 dy + g * stride, x + g * stride, n->mean + g * n->C,
				 n->rstd + g * n->C, param(m, n->w), rows, n->C, HW);
}

static void back_node(struct isif_model *m, struct node *n, int N)
{
	const float *x = m->acts[n->in].data;
	const float *y = m->acts[n->out].data;
	const float *dy = m->acts[n->out].grad;
	size_t in_len = (size_t)N * n->C * n->H * n->W;
	size_t out_len = (size_t)N * n->K * n->P * n->Q;
	float *dx = grad_target(m, n->in);
	switch (n->kind) {
	case NODE_CONV:
		isif_conv2d_backward(dx, grad(m, n->w), dy, x, param(m, n->w), N, n->C,
				     n->H, n->W, n->K, n->R, n->S, n->stride, n->pad,
				     m->workspace);
		break;
	case NODE_BN:
		bn_backward(m, n, dx, dy, x, N, m->last_groups);
		break;
	case NODE_RELU:
		if (dx)
			isif_relu_backward(dx, dy, y, out_len);
		break;
	case NODE_MAXPOOL:
		if (dx)
			isif_maxpool2_backward(dx, dy, n->argmax, N, n->C, n->H, n->W);
		break;
	case NODE_AVGPOOL:
		if (dx)
			isif_avgpool_backward(dx, dy, N, n->C, n->H * n->W);
		break;
	case NODE_LINEAR:
		isif_linear_backward(dx, grad(m, n->w), grad(m, n->b), dy, x,
				     param(m, n->w), N, n->C, n->K);
		break;
	case NODE_L2NORM:
		if (dx)
			isif_l2norm_backward(dx, dy, y, n->norm, N, n->K);
		break;
	case NODE_ADD:
		/* d(a + b) = dy for both addends. */
		if (dx)
			memcpy(dx, dy, out_len * sizeof(float));
		finish_grad(m, n->in, in_len);
		dx = grad_target(m, n->in2);
		if (dx)
			memcpy(dx, dy, out_len * sizeof(float));
		finish_grad(m, n->in2, out_len);
		return;
	}
	finish_grad(m, n->in, in_len);
}

int isif_model_backward(struct isif_model *m, const float *dout, char *err)
{
	if (!m->last_train || !m->last_n)
		return isif_fail(err, ISIF_EINVAL, "backward needs a train-mode forward first");
	int N = m->last_n;
	m->acts[0].data = (float *)m->last_x;
	for (int i = 0; i < m->n_acts; i++)
		m->acts[i].grad_written = 0;
	struct activation *last = &m->acts[m->nodes[m->n_nodes - 1].out];
	memcpy(last->grad, dout, (size_t)N * act_size(last) * sizeof(float));
	for (int i = m->n_nodes - 1; i >= 0; i--)
		back_node(m, &m->nodes[i], N);
	m->last_train = 0; /* saved state is consumed */
	return ISIF_OK;
}

double isif_model_flops_per_image(const struct isif_model *m, int H, int W)
{
	/* Shapes depend on H×W: infer them on a scratch copy of the model. */
	struct isif_model *copy = malloc(sizeof *copy);
	double macs = 0;
	if (!copy)
		return 0;
	memcpy(copy, m, sizeof *copy);
	if (infer_shapes(copy, H, W, NULL)) {
		free(copy);
		return 0;
	}
	for (int i = 0; i < copy->n_nodes; i++) {
		const struct node *n = &copy->nodes[i];
		if (n->kind == NODE_CONV)
			macs += (double)n->K * n->C * n->R * n->S * n->P * n->Q;
		else if (n->kind == NODE_LINEAR)
			macs += (double)n->K * n->C;
	}
	free(copy);
	return macs;
}

/*
 * core/nn/model.c — the model object: tensor registry (PyTorch state_dict
 * order), parameter/gradient/buffer blocks, PyTorch default initialisation
 * and the node builders model_arch.c uses. Planning and the forward/backward
 * executor are in model_exec.c.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "isif/nn/ops.h"
#include "isif/base/rng.h"
#include "nn/model_impl.h"

const char *const isif_model_names[] = { "resnet18", "resnet20", "convnet", "resnet18_imagenet",
					 NULL };

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

/* The graph of model `name` (nodes, activations, tensor offsets), without
 * its parameter blocks: model_finish allocates those. */
static enum isif_rc model_build(struct isif_model **out, const char *name, int in_channels,
				int embed_dim, struct isif_error *err)
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
		rc = model_build_resnet(m, r18_widths, r18_blocks, 4, 64, 0);
	else if (strcmp(name, "resnet18_imagenet") == 0)
		rc = model_build_resnet(m, r18_widths, r18_blocks, 4, 64, 1);
	else if (strcmp(name, "resnet20") == 0)
		rc = model_build_resnet(m, r20_widths, r20_blocks, 3, 16, 0);
	else {
		free(m);
		return isif_fail(err, ISIF_ENOTFOUND,
				 "unknown model '%s' (resnet18, resnet20, convnet, resnet18_imagenet)", name);
	}
	if (rc < 0) {
		free(m);
		return isif_fail(err, ISIF_ENOMEM, "cannot build model %s", name);
	}
	*out = m;
	return ISIF_OK;
}

enum isif_rc isif_model_create(struct isif_model **out, const char *name, int in_channels,
		      int embed_dim, uint64_t seed, struct isif_error *err)
{
	struct isif_model *m;
	*out = NULL; /* callers free *out on every path */
	enum isif_rc rc = model_build(&m, name, in_channels, embed_dim, err);
	if (rc)
		return rc;
	if (model_finish(m, seed) < 0) {
		isif_model_free(m);
		return isif_fail(err, ISIF_ENOMEM, "cannot build model %s", name);
	}
	*out = m;
	return ISIF_OK;
}

enum isif_rc isif_model_memory(const char *name, int in_channels, int embed_dim, int max_n,
			       int H, int W, int threads, struct isif_model_memory *out,
			       struct isif_error *err)
{
	struct isif_model *m;
	memset(out, 0, sizeof *out);
	enum isif_rc rc = model_build(&m, name, in_channels, embed_dim, err);
	if (rc)
		return rc;
	out->params = m->n_params * sizeof(float);
	out->buffers = m->n_buffers * sizeof(float) + m->n_counters * sizeof(int64_t);
	rc = model_plan_memory(m, max_n, H, W, threads, out, err);
	free(m);   /* a graph only: nothing else was allocated */
	return rc;
}

void isif_model_free(struct isif_model *m)
{
	if (!m)
		return;
	model_freeze_kinks(m, 0);
	model_free_plan(m, 1);
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

/* The last linear node: its input is the pooled backbone features. */
static const struct node *final_linear(const struct isif_model *m)
{
	for (int i = m->n_nodes - 1; i >= 0; i--)
		if (m->nodes[i].kind == NODE_LINEAR)
			return &m->nodes[i];
	return NULL;
}

int isif_model_feature_dim(const struct isif_model *m)
{
	const struct node *n = final_linear(m);
	return n ? n->C : 0;
}

const float *isif_model_features(const struct isif_model *m, int *dim)
{
	const struct node *n = final_linear(m);
	*dim = isif_model_feature_dim(m);
	return n && m->last_n > 0 ? m->acts[n->in].data : NULL;
}

double isif_model_flops_per_image(const struct isif_model *m, int H, int W)
{
	/* Shapes depend on H×W: infer them on a scratch copy of the model. */
	struct isif_model *copy = malloc(sizeof *copy);
	double macs = 0;
	if (!copy)
		return 0;
	memcpy(copy, m, sizeof *copy);
	if (model_infer_shapes(copy, H, W, NULL)) {
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

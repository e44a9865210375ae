/*
 * core/nn/model_exec.c — planning and running a model's node list: shape
 * inference, ReLU fusion, memory (activations, gradient slots, workspace,
 * saved statistics), the thread team, and the forward and backward passes.
 *
 * Fusion: a BN or residual add whose output feeds only the ReLU right after
 * it writes max(·, 0) straight into the ReLU's output; backward reads the
 * ReLU's output as the mask. The pre-ReLU tensor never exists. A BN whose
 * output feeds only a residual add is run by the add (when the other addend
 * is ready): relu(bn(x) + other) in one pass, and its output never exists.
 *
 * Gradients: backward walks the nodes in reverse; the gradient of an
 * activation is born when its last reader (in forward order) writes it and
 * dies once its producer has read it. Planning replays that order once and
 * gives each gradient one of a few shared slots (smallest free slot that
 * fits, else the largest free one grown, else a new one). Later
 * contributions to a gradient are added by the ops themselves (the *_ex
 * variants' accumulate flag), so no scratch is needed. The residual add
 * passes its gradient on without a copy where it can: an addend produced by
 * a BN and read by nothing else takes the add's own gradient slot, with the
 * fused ReLU's output as its mask, which BN backward applies on the fly.
 *
 * A BN whose input comes from the convolution right before it (and feeds
 * nothing else), when the layer is on the direct path and BN runs as one
 * group (core/nn/conv_bn_impl.h): in a train forward the convolution leaves
 * its output's per-run statistics in the BN's mean and rstd storage, so BN
 * reads its input once; in backward BN makes only its sums pass and hands
 * the convolution its input gradient as a map, which the convolution
 * evaluates while copying its dY. The BN's output gradient is then read
 * during the convolution's backward, so planning keeps its slot alive until
 * that node.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "isif/nn/ops.h"
#include "isif/base/clock.h"
#include "nn/conv_bn_impl.h"
#include "nn/model_impl.h"
#include "nn/ops_impl.h"
#include "base/cpu_impl.h"
#include "base/gemm_impl.h"
#include "base/team_impl.h"

#define BN_EPS 1e-5f
#define BN_MOMENTUM 0.1f
#define MAX_TEAM 64

static float *param(struct isif_model *m, int id)
{
	return (float *)m->tensors[id].data;
}

static float *grad(struct isif_model *m, int id)
{
	return m->tensors[id].grad;
}

/* The shapes of convolution or BN node n for a batch of N. */
static struct conv_shape conv_shape_of(const struct node *n, int N)
{
	struct conv_shape s = { N, n->C, n->H, n->W, n->K, n->R, n->S, n->stride, n->pad, 0 };
	return s;
}

static struct bn_shape bn_shape_of(const struct node *n, int N)
{
	struct bn_shape s = { N, n->C, n->H * n->W };
	return s;
}

static size_t act_size(const struct activation *a)
{
	return (size_t)a->C * a->H * a->W;
}

void model_free_plan(struct isif_model *m, int all)
{
	for (int i = 1; i < m->n_acts; i++) {
		if (m->acts[i].dslot < 0)
			free(m->acts[i].data);
		m->acts[i].data = NULL;
	}
	for (int s = 0; s < m->n_dslots; s++) {
		free(m->dslot[s]);
		m->dslot[s] = NULL;
	}
	m->n_dslots = 0;
	for (int s = 0; s < m->n_slots; s++) {
		free(m->slot[s]);
		m->slot[s] = NULL;
	}
	m->n_slots = 0;
	free(m->workspace);
	free(m->saved);
	free(m->argmax_store);
	m->workspace = m->saved = NULL;
	m->argmax_store = NULL;
	m->plan_n = 0;
	m->plan_threads = 0;
	if (all) {
		team_free(m->team);
		m->team = NULL;
	}
}

/* Propagates per-image shapes from the input through every node; fails when
 * a spatial size collapses below 1. */
enum isif_rc model_infer_shapes(struct isif_model *m, int H, int W, struct isif_error *err)
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
		case NODE_MAXPOOL3:
			P = isif_conv_out(in->H, 3, 2, 1);
			Q = isif_conv_out(in->W, 3, 2, 1);
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

/* Readers and producers of every activation, and the BN/add + ReLU pairs. */
static void plan_fusion(struct isif_model *m)
{
	for (int a = 0; a < m->n_acts; a++) {
		m->acts[a].consumers = 0;
		m->acts[a].producer = -1;
	}
	for (int i = 0; i < m->n_nodes; i++) {
		struct node *n = &m->nodes[i];
		m->acts[n->in].consumers++;
		if (n->in2 >= 0)
			m->acts[n->in2].consumers++;
		m->acts[n->out].producer = i;
		n->relu = -1;
		n->absorbed = 0;
		n->dst = n->out;
		n->alias_in[0] = n->alias_in[1] = 0;
		n->defer = 0;
		n->bn_in = -1;
		n->bn_side = 0;
	}
	for (int i = 0; i + 1 < m->n_nodes; i++) {
		struct node *n = &m->nodes[i], *next = &m->nodes[i + 1];
		if ((n->kind == NODE_BN || n->kind == NODE_ADD) && next->kind == NODE_RELU &&
		    next->in == n->out && m->acts[n->out].consumers == 1) {
			n->relu = i + 1;
			n->dst = next->out;
			next->absorbed = 1;
		}
	}
	/* a BN feeding only a residual add runs inside the add */
	for (int i = 0; i < m->n_nodes; i++) {
		struct node *n = &m->nodes[i];
		for (int k = 0; n->kind == NODE_ADD && k < 2 && n->bn_in < 0; k++) {
			int a = k ? n->in2 : n->in, p = m->acts[a].producer;
			if (p >= 0 && m->nodes[p].kind == NODE_BN && m->nodes[p].relu < 0 &&
			    m->acts[a].consumers == 1) {
				m->nodes[p].defer = 1;
				n->bn_in = p;
				n->bn_side = k;
			}
		}
	}
}

/* An activation that a fused node never materialises. */
static int fused_away(const struct isif_model *m, int a)
{
	int p = m->acts[a].producer;
	return p >= 0 && (m->nodes[p].relu >= 0 || m->nodes[p].defer);
}

/* Slot bookkeeping of the planning replay. */
struct slot_plan {
	int n, in_use[MODEL_MAX_ACTS], refs[MODEL_MAX_ACTS];
	size_t len[MODEL_MAX_ACTS];
};

static int slot_alloc(struct slot_plan *sp, size_t len)
{
	int best = -1, grow = -1;
	for (int s = 0; s < sp->n; s++) {
		if (sp->in_use[s])
			continue;
		if (sp->len[s] >= len && (best < 0 || sp->len[s] < sp->len[best]))
			best = s;
		if (grow < 0 || sp->len[s] > sp->len[grow])
			grow = s;
	}
	int s = best >= 0 ? best : grow >= 0 ? grow : sp->n++;
	if (sp->len[s] < len)
		sp->len[s] = len;
	sp->in_use[s] = 1;
	sp->refs[s] = 1;
	return s;
}

static int slot_of(const struct isif_model *m, int a)
{
	const struct activation *act = &m->acts[a];
	return act->galias >= 0 ? m->acts[act->galias].gslot : act->gslot;
}

static void slot_release(struct slot_plan *sp, int s)
{
	if (s >= 0 && --sp->refs[s] == 0)
		sp->in_use[s] = 0;
}

/* An addend whose gradient can be the add's own (see the file comment). */
static int can_alias(const struct isif_model *m, const struct node *add, int a, const int *born)
{
	int p = m->acts[a].producer;
	return !born[a] && m->acts[a].consumers == 1 && p >= 0 &&
	       m->nodes[p].kind == NODE_BN && m->nodes[p].relu < 0 &&
	       m->acts[add->dst].galias < 0;
}

/* Node i is a BN that can hand its input gradient to the convolution
 * before it as a map (see the file comment). */
static int bn_maps_into_conv(const struct isif_model *m, int i)
{
	const struct node *n = &m->nodes[i];
	if (i < 1 || n->kind != NODE_BN || m->acts[n->in].producer != i - 1 ||
	    m->acts[n->in].consumers != 1)
		return 0;
	const struct node *c = &m->nodes[i - 1];
	struct conv_shape s = conv_shape_of(c, 1);
	return c->kind == NODE_CONV && conv2d_takes_dy_map(&s);
}

/* The backward replay that assigns gradient slots (sizes for max_n rows). */
static void plan_grads(struct isif_model *m, int max_n, struct slot_plan *sp)
{
	int born[MODEL_MAX_ACTS] = { 0 };
	memset(sp, 0, sizeof *sp);
	for (int a = 0; a < m->n_acts; a++) {
		m->acts[a].gslot = -1;
		m->acts[a].galias = -1;
		m->acts[a].gmask = -1;
	}
	int held = -1; /* a slot a mapping BN keeps alive through the conv before it */
	for (int i = m->n_nodes - 1; i >= 0; i--) {
		struct node *n = &m->nodes[i];
		if (n->absorbed)
			continue;
		int d = n->dst;
		if (!born[d]) { /* the model output, or an output nobody reads */
			m->acts[d].gslot = slot_alloc(sp, (size_t)max_n * act_size(&m->acts[d]));
			born[d] = 1;
		}
		for (int k = 0; k < (n->kind == NODE_ADD ? 2 : 1); k++) {
			int a = k ? n->in2 : n->in;
			if (a == 0)
				continue;
			if (n->kind == NODE_ADD && can_alias(m, n, a, born)) {
				m->acts[a].galias = d;
				m->acts[a].gmask = n->relu >= 0 ? d : -1;
				n->alias_in[k] = 1;
				sp->refs[slot_of(m, d)]++;
			} else if (!born[a]) {
				m->acts[a].gslot = slot_alloc(sp, (size_t)max_n * act_size(&m->acts[a]));
			}
			born[a] = 1;
		}
		slot_release(sp, held);
		held = -1;
		if (bn_maps_into_conv(m, i))
			held = slot_of(m, d);
		else
			slot_release(sp, slot_of(m, d));
	}
}

/* Activations that backward reads: inputs of conv, BN and linear layers,
 * outputs of ReLUs (fused or not) and of the L2 norm, and the model output. */
static void mark_saved(const struct isif_model *m, int *saved)
{
	memset(saved, 0, sizeof(int) * MODEL_MAX_ACTS);
	for (int i = 0; i < m->n_nodes; i++) {
		const struct node *n = &m->nodes[i];
		if (n->absorbed)
			continue;
		if (n->kind == NODE_CONV || n->kind == NODE_BN || n->kind == NODE_LINEAR)
			saved[n->in] = 1;
		if (n->kind == NODE_RELU || n->kind == NODE_L2NORM || n->relu >= 0)
			saved[n->dst] = 1;
	}
	saved[m->nodes[m->n_nodes - 1].dst] = 1;
}

/*
 * The forward replay that gives every activation backward does not read
 * (a BN output feeding a residual add, the linear output) a shared data
 * slot, live from its producer to its last reader; the others get their
 * own buffer (dslot −1).
 */
static void plan_data(struct isif_model *m, int max_n, struct slot_plan *sp)
{
	int saved[MODEL_MAX_ACTS], left[MODEL_MAX_ACTS];
	mark_saved(m, saved);
	memset(sp, 0, sizeof *sp);
	for (int a = 0; a < m->n_acts; a++) {
		m->acts[a].dslot = -1;
		left[a] = m->acts[a].consumers;
	}
	for (int i = 0; i < m->n_nodes; i++) {
		struct node *n = &m->nodes[i];
		if (n->absorbed || n->defer)
			continue;
		if (!saved[n->dst])
			m->acts[n->dst].dslot = slot_alloc(sp, (size_t)max_n * act_size(&m->acts[n->dst]));
		for (int k = 0; k < 2; k++) {
			int a = k ? n->in2 : n->in;
			if (a > 0 && --left[a] == 0 && m->acts[a].dslot >= 0)
				slot_release(sp, m->acts[a].dslot);
		}
	}
}

enum isif_rc isif_model_set_threads(struct isif_model *m, int threads, struct isif_error *err)
{
	if (threads < 1)
		return isif_fail(err, ISIF_EINVAL, "threads %d is below 1", threads);
	threads = threads > MAX_TEAM ? MAX_TEAM : threads;
	if (team_size(m->team) == threads)
		return ISIF_OK;
	struct team *t = NULL;
	if (threads > 1 && !(t = team_create(threads)))
		return isif_fail(err, ISIF_ENOMEM, "cannot start %d threads", threads);
	team_free(m->team);
	m->team = t; /* the workspace is re-planned at the next forward */
	return ISIF_OK;
}

/* The per-node timers' clock: the process's CPU time on one thread (on a
 * shared machine the wall time also counts other processes' turns), the
 * wall time on a team. */
static double prof_now(const struct isif_model *m)
{
	if (m->team)
		return isif_now_s();
	struct timespec t;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

enum isif_precision isif_model_set_precision(struct isif_model *m, enum isif_precision p)
{
	m->prec = p == ISIF_PREC_BF16 ? GEMM_BF16 : GEMM_FP32;
	return isif_model_precision(m);
}

enum isif_precision isif_model_precision(const struct isif_model *m)
{
	return m->prec == GEMM_BF16 && cpu_bf16() ? ISIF_PREC_BF16 : ISIF_PREC_FP32;
}

int isif_model_threads(const struct isif_model *m)
{
	return team_size(m->team);
}

struct team *model_team(const struct isif_model *m)
{
	return m->team;
}

/* Sizes of everything a plan for max_n rows allocates, in floats (argmax:
 * bytes), and where each buffer goes (sp, dp); allocates nothing. */
struct plan_sizes {
	size_t data, grads, ws, saved, argmax;
};

static enum isif_rc plan_layout(struct isif_model *m, int max_n, int H, int W, int threads,
				struct slot_plan *sp, struct slot_plan *dp, struct plan_sizes *z,
				struct isif_error *err)
{
	if (max_n < 1 || H < 1 || W < 1)
		return isif_fail(err, ISIF_EINVAL, "bad plan %d×%d×%d", max_n, H, W);
	if (H < 16 || W < 16)
		return isif_fail(err, ISIF_EINVAL, "input %dx%d is below the minimum 16x16", H, W);
	int rc = model_infer_shapes(m, H, W, err);
	if (rc)
		return rc;
	plan_fusion(m);
	plan_grads(m, max_n, sp);
	plan_data(m, max_n, dp);
	memset(z, 0, sizeof *z);
	for (int i = 0; i < m->n_nodes; i++) {
		const struct node *n = &m->nodes[i];
		if (n->kind == NODE_CONV) {
			struct conv_shape s = conv_shape_of(n, max_n);
			size_t need = conv2d_workspace_team(&s, threads);
			z->ws = need > z->ws ? need : z->ws;
		} else if (n->kind == NODE_LINEAR) {
			size_t need = linear_workspace(max_n, n->C, n->K);
			z->ws = need > z->ws ? need : z->ws;
		} else if (n->kind == NODE_BN) {
			/* mean and rstd for up to max_n groups, the dx map's k, a, b */
			z->saved += 2 * (size_t)n->C * (size_t)max_n + 3 * (size_t)n->C;
		} else if (n->kind == NODE_L2NORM) {
			z->saved += (size_t)max_n;
		} else if (n->kind == NODE_MAXPOOL || n->kind == NODE_MAXPOOL3) {
			z->argmax += (size_t)max_n * n->C * n->P * n->Q;
		}
	}
	for (int d = 0; d < dp->n; d++)
		z->data += dp->len[d];
	for (int i = 1; i < m->n_acts; i++)
		if (!fused_away(m, i) && m->acts[i].dslot < 0)
			z->data += (size_t)max_n * act_size(&m->acts[i]);
	for (int s = 0; s < sp->n; s++)
		z->grads += sp->len[s];
	return ISIF_OK;
}

enum isif_rc isif_model_plan(struct isif_model *m, int max_n, int H, int W, struct isif_error *err)
{
	model_free_plan(m, 0);
	int threads = team_size(m->team);
	struct slot_plan sp, dp;
	struct plan_sizes z;
	int rc = plan_layout(m, max_n, H, W, threads, &sp, &dp, &z, err);
	if (rc)
		return rc;
	m->n_dslots = dp.n;
	for (int d = 0; d < dp.n; d++)
		if (!(m->dslot[d] = malloc(dp.len[d] * sizeof(float))))
			goto nomem;
	for (int i = 1; i < m->n_acts; i++) {
		struct activation *a = &m->acts[i];
		if (fused_away(m, i))
			continue;
		if (a->dslot >= 0) {
			a->data = m->dslot[a->dslot];
			continue;
		}
		if (!(a->data = malloc((size_t)max_n * act_size(a) * sizeof(float))))
			goto nomem;
	}
	m->n_slots = sp.n;
	for (int s = 0; s < sp.n; s++) {
		m->slot_len[s] = sp.len[s];
		if (!(m->slot[s] = malloc(sp.len[s] * sizeof(float))))
			goto nomem;
	}
	m->workspace_len = z.ws;
	m->workspace = malloc((z.ws ? z.ws : 1) * sizeof(float));
	m->saved = malloc((z.saved ? z.saved : 1) * sizeof(float));
	m->argmax_store = malloc(z.argmax ? z.argmax : 1);
	if (!m->workspace || !m->saved || !m->argmax_store)
		goto nomem;
	m->planned_bytes = (z.data + z.grads + z.ws + z.saved) * sizeof(float) + z.argmax;
	float *s = m->saved;
	uint8_t *am = m->argmax_store;
	for (int i = 0; i < m->n_nodes; i++) {
		struct node *n = &m->nodes[i];
		if (n->kind == NODE_BN) {
			n->mean = s;
			n->rstd = s + (size_t)n->C * max_n;
			s += 2 * (size_t)n->C * max_n + 3 * (size_t)n->C; /* coef: bn_coef() */
		} else if (n->kind == NODE_L2NORM) {
			n->norm = s;
			s += max_n;
		} else if (n->kind == NODE_MAXPOOL || n->kind == NODE_MAXPOOL3) {
			n->argmax = am;
			am += (size_t)max_n * n->C * n->P * n->Q;
		}
	}
	m->plan_n = max_n;
	m->plan_threads = threads;
	m->plan_h = H;
	m->plan_w = W;
	return ISIF_OK;
nomem:
	model_free_plan(m, 0);
	return isif_fail(err, ISIF_ENOMEM, "cannot allocate activations for %d images of %dx%d",
			 max_n, H, W);
}

enum isif_rc model_plan_memory(struct isif_model *m, int max_n, int H, int W, int threads,
			       struct isif_model_memory *out, struct isif_error *err)
{
	struct slot_plan sp, dp;
	struct plan_sizes z;
	threads = threads < 1 ? 1 : threads > MAX_TEAM ? MAX_TEAM : threads;
	int rc = plan_layout(m, max_n, H, W, threads, &sp, &dp, &z, err);
	if (rc)
		return rc;
	out->activations = z.data * sizeof(float);
	out->gradients = z.grads * sizeof(float);
	out->workspace = (z.ws + z.saved) * sizeof(float) + z.argmax;
	return ISIF_OK;
}

/* ---- forward ------------------------------------------------------------ */

void isif_model_set_bn_sync(struct isif_model *m, int (*sum)(void *user, double *buf, int n),
			    void *user)
{
	m->bn_sync = sum;
	m->bn_sync_user = user;
	m->bn_sync_failed = 0;
}

/* Synchronised BN's forward: this process's per-channel sums of x and x²
 * and its count, summed over processes, give the whole batch's mean and
 * biased variance; its rows are normalised by them (the eval kernel does
 * the affine part), and mean/rstd are kept for the backward pass. */
static void bn_forward_sync(struct isif_model *m, struct node *n, const float *x, float *y,
			    int N, int relu, const float *add)
{
	int C = n->C, HW = n->H * n->W;
	double *buf = calloc((size_t)2 * C + 1, sizeof(double));
	float *gvar = malloc((size_t)C * sizeof(float));
	if (!buf || !gvar) {
		m->bn_sync_failed = 1;
		free(buf);
		free(gvar);
		return;
	}
	for (int i = 0; i < N; i++)
		for (int c = 0; c < C; c++) {
			const float *r = x + ((size_t)i * C + c) * HW;
			double s1 = 0, s2 = 0;
			for (int j = 0; j < HW; j++) {
				s1 += r[j];
				s2 += (double)r[j] * r[j];
			}
			buf[c] += s1;
			buf[C + c] += s2;
		}
	buf[2 * C] = (double)N * HW;
	if (m->bn_sync(m->bn_sync_user, buf, 2 * C + 1))
		m->bn_sync_failed = 1;
	float *gamma = param(m, n->w), *beta = param(m, n->b);
	float *rm = param(m, n->running_mean), *rv = param(m, n->running_var);
	double count = buf[2 * C];
	for (int c = 0; c < C; c++) {
		double mean = buf[c] / count, var = buf[C + c] / count - mean * mean;
		var = var > 0 ? var : 0;
		n->mean[c] = (float)mean;
		gvar[c] = (float)var;
		n->rstd[c] = (float)(1.0 / sqrt(var + BN_EPS));
		rm[c] = (float)((1 - BN_MOMENTUM) * rm[c] + BN_MOMENTUM * mean);
		rv[c] = (float)((1 - BN_MOMENTUM) * rv[c] +
				BN_MOMENTUM * var * count / (count > 1 ? count - 1 : 1));
	}
	struct bn_shape s = bn_shape_of(n, N);
	bn_forward_eval_ex(y, x, gamma, beta, n->mean, gvar, BN_EPS, &s, relu, add, m->team);
	free(buf);
	free(gvar);
}

/* BN over `groups` equal groups of rows. With one group the running
 * statistics update inside the op; with several, each group is normalised
 * by its own statistics and the running statistics move once, toward the
 * mean over groups of the batch mean and unbiased variance. */
static void bn_forward(struct isif_model *m, struct node *n, const float *x,
		       float *y, int N, int train, int groups, int relu, const float *add)
{
	float *gamma = param(m, n->w), *beta = param(m, n->b);
	float *rm = param(m, n->running_mean), *rv = param(m, n->running_var);
	int HW = n->H * n->W;
	struct bn_shape s = bn_shape_of(n, N);
	if (!train) {
		bn_forward_eval_ex(y, x, gamma, beta, rm, rv, BN_EPS, &s, relu, add, m->team);
		return;
	}
	*(int64_t *)m->tensors[n->num_batches].data += 1;
	if (m->bn_sync && groups == 1) {
		bn_forward_sync(m, n, x, y, N, relu, add);
		return;
	}
	if (groups == 1 && bn_maps_into_conv(m, (int)(n - m->nodes))) {
		/* the conv before left its output's per-run statistics in mean
		 * and rstd ([N][C] each, see run_node); BN overwrites their
		 * first C entries with its own only after reading them */
		bn_forward_train_runs(y, n->mean, n->rstd, x, gamma, beta, rm, rv, BN_MOMENTUM,
				      BN_EPS, &s, relu, add, n->mean, n->rstd, m->team);
		return;
	}
	if (groups == 1) {
		bn_forward_train_ex(y, n->mean, n->rstd, x, gamma, beta, rm, rv,
				    BN_MOMENTUM, BN_EPS, &s, relu, add, m->team);
		return;
	}
	int rows = N / groups;
	size_t stride = (size_t)rows * n->C * HW;
	double count = (double)rows * HW;
	struct bn_shape gs = bn_shape_of(n, rows);
	for (int g = 0; g < groups; g++)
		bn_forward_train_ex(y + g * stride, n->mean + g * n->C, n->rstd + g * n->C,
				    x + g * stride, gamma, beta, NULL, NULL,
				    BN_MOMENTUM, BN_EPS, &gs, relu,
				    add ? add + g * stride : NULL, m->team);
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
	if (on && m->last_rows != m->last_n)
		return -1; /* the last forward ran in row groups: no whole pattern */
	for (int i = 0; i < m->n_nodes; i++) {
		struct node *n = &m->nodes[i];
		free(n->frozen);
		n->frozen = NULL;
		if (!on || !m->last_n ||
		    (n->kind != NODE_RELU && n->kind != NODE_MAXPOOL && n->kind != NODE_MAXPOOL3))
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

/* Rows an eval-mode forward runs at a time: its largest activation within
 * about 4 MiB (cache-resident), at least EVAL_MIN_ROWS and two per team member. */
#define EVAL_MIN_ROWS 16
static int eval_rows(const struct isif_model *m)
{
	size_t biggest = 1;
	for (int a = 1; a < m->n_acts; a++)
		if (act_size(&m->acts[a]) > biggest)
			biggest = act_size(&m->acts[a]);
	size_t rows = ((size_t)4 << 20) / (biggest * sizeof(float));
	/* at least EVAL_MIN_ROWS: rows too big for the cache budget gain nothing
	 * from tiny groups, which starve the GEMMs of the deep layers (224×224:
	 * 4 rows a group embedded at 29 img/s, 16 rows at 46 on 2 threads) */
	size_t least = 2 * (size_t)team_size(m->team);
	if (least < EVAL_MIN_ROWS)
		least = EVAL_MIN_ROWS;
	return (int)(rows < least ? least : rows);
}

static void run_node(struct isif_model *m, struct node *n, int N, int train, int groups)
{
	const float *x = m->acts[n->in].data;
	float *y = m->acts[n->dst].data;
	size_t out_len = (size_t)N * n->K * n->P * n->Q;
	/* a fused ReLU whose on/off pattern is frozen applies that pattern after */
	const uint8_t *frozen = n->relu >= 0 ? m->nodes[n->relu].frozen : NULL;
	int relu = n->relu >= 0 && !frozen;
	int at = (int)(n - m->nodes);
	switch (n->kind) {
	case NODE_CONV: {
		struct conv_shape s = conv_shape_of(n, N);
		s.prec = m->prec;
		/* the BN after it, in train mode as one group, takes the per-run
		 * statistics of y (conv_bn_impl.h) in its mean and rstd storage */
		if (train && groups == 1 && !m->bn_sync && at + 1 < m->n_nodes &&
		    bn_maps_into_conv(m, at + 1)) {
			struct node *b = &m->nodes[at + 1];
			conv2d_forward_runs_team(y, b->mean, b->rstd, x, param(m, n->w), &s,
						 m->workspace, m->team);
			break;
		}
		conv2d_forward_team(y, x, param(m, n->w), &s, m->workspace, m->team);
		break;
	}
	case NODE_BN:
		bn_forward(m, n, x, y, N, train, groups, relu, NULL);
		break;
	case NODE_RELU:
		relu_forward_ex(y, x, n->frozen, out_len, m->team);
		break;
	case NODE_MAXPOOL:
		if (n->frozen)
			frozen_maxpool(y, x, n, N);
		else
			maxpool2_forward_ex(y, n->argmax, x, N, n->C, n->H, n->W, m->team);
		break;
	case NODE_MAXPOOL3:
		if (n->frozen)
			maxpool3s2_frozen(y, n->argmax, x, n->frozen, N, n->C, n->H, n->W);
		else
			maxpool3s2_forward_ex(y, n->argmax, x, N, n->C, n->H, n->W, m->team);
		break;
	case NODE_AVGPOOL:
		isif_avgpool_forward(y, x, N, n->C, n->H * n->W);
		break;
	case NODE_LINEAR:
		linear_forward_ws(y, x, param(m, n->w), param(m, n->b), N, n->C, n->K,
				  m->workspace, m->prec);
		break;
	case NODE_L2NORM:
		isif_l2norm_forward(y, n->norm, x, N, n->K * n->P * n->Q);
		break;
	case NODE_ADD:
		if (n->bn_in >= 0) { /* BN of one addend, + the other, (+ ReLU) */
			struct node *b = &m->nodes[n->bn_in];
			const float *other = m->acts[n->bn_side ? n->in : n->in2].data;
			bn_forward(m, b, m->acts[b->in].data, y, N, train, groups, relu, other);
		} else {
			add_relu_forward(y, x, m->acts[n->in2].data, out_len, relu, m->team);
		}
		break;
	}
	if (frozen)
		relu_forward_ex(y, y, frozen, out_len, m->team);
}

enum isif_rc isif_model_forward(struct isif_model *m, const float *x, int N, int H, int W,
		       bool train, int bn_groups, const float **out, struct isif_error *err)
{
	if (N < 1)
		return isif_fail(err, ISIF_EINVAL, "empty batch");
	if (bn_groups < 1 || N % bn_groups != 0)
		return isif_fail(err, ISIF_EINVAL, "batch of %d rows does not split into %d BN groups",
				 N, bn_groups);
	if (train && N / bn_groups < 2)
		return isif_fail(err, ISIF_EINVAL, "train-mode BN needs at least 2 rows per group");
	if (N > m->plan_n || H != m->plan_h || W != m->plan_w ||
	    team_size(m->team) != m->plan_threads) {
		int rc = isif_model_plan(m, N > m->plan_n ? N : m->plan_n, H, W, err);
		if (rc)
			return rc;
	}
	int sb = train ? N : eval_rows(m);
	float *y = m->acts[m->nodes[m->n_nodes - 1].dst].data;
	/* the pooled features (the last linear's input) move to their place
	 * too, for isif_model_features */
	int fa = -1;
	for (int i = m->n_nodes - 1; i >= 0 && fa < 0; i--)
		if (m->nodes[i].kind == NODE_LINEAR)
			fa = m->nodes[i].in;
	size_t f_len = fa >= 0 ? act_size(&m->acts[fa]) : 0;
	size_t in_len = act_size(&m->acts[0]), out_len = act_size(&m->acts[m->nodes[m->n_nodes - 1].dst]);
	/* Eval mode treats rows independently: run sb rows at a time through the
	 * whole network, last group first, so the intermediate tensors stay in
	 * cache; each group's output moves to its place (group 0 is in place). */
	for (int s0 = (N - 1) / sb * sb; s0 >= 0; s0 -= sb) {
		int rows = N - s0 < sb ? N - s0 : sb;
		m->acts[0].data = (float *)x + (size_t)s0 * in_len;
		for (int i = 0; i < m->n_nodes; i++) {
			struct node *n = &m->nodes[i];
			if (n->absorbed || n->defer)
				continue;
			double t0 = m->profile ? prof_now(m) : 0;
			run_node(m, n, rows, train, bn_groups);
			if (m->profile)
				m->prof[i][0] += prof_now(m) - t0;
		}
		if (s0)
			memcpy(y + (size_t)s0 * out_len, y, (size_t)rows * out_len * sizeof(float));
		if (s0 && fa >= 0)
			memcpy(m->acts[fa].data + (size_t)s0 * f_len, m->acts[fa].data,
			       (size_t)rows * f_len * sizeof(float));
	}
	m->acts[0].data = (float *)x;
	m->last_rows = sb < N ? sb : N;
	m->last_n = N;
	m->last_train = train;
	m->last_groups = bn_groups;
	m->last_x = x;
	*out = m->acts[m->nodes[m->n_nodes - 1].dst].data;
	if (m->bn_sync_failed) {
		m->bn_sync_failed = 0;
		return isif_fail(err, ISIF_EIO, "synchronised BN: the sum over processes failed");
	}
	return ISIF_OK;
}

/* ---- backward ----------------------------------------------------------- */

/* Synchronised BN's backward: this process's Σg and Σg·x̂ go into dβ and dγ
 * (the gradient allreduce sums those over processes), and their sums over
 * processes give every process's dx as one process computes it. */
static void bn_backward_sync(struct isif_model *m, struct node *n, float *dx, int acc,
			     const float *dy, const float *mask, const float *x, int N)
{
	int C = n->C, HW = n->H * n->W;
	float *sums = calloc((size_t)2 * C, sizeof(float)), *ab = malloc((size_t)2 * C * sizeof(float));
	double *buf = malloc(((size_t)2 * C + 1) * sizeof(double));
	if (!sums || !ab || !buf) {
		m->bn_sync_failed = 1;
		goto out;
	}
	struct bn_shape s = bn_shape_of(n, N);
	/* sums[0..C) = Σg·x̂ (as dγ), sums[C..2C) = Σg (as dβ) */
	bn_backward_ex(NULL, 0, sums, sums + C, dy, mask, x, n->mean, n->rstd, param(m, n->w),
		       &s, m->team);
	float *dg = grad(m, n->w), *db = grad(m, n->b);
	for (int c = 0; c < C; c++) {
		dg[c] += sums[c];
		db[c] += sums[C + c];
		buf[c] = sums[C + c];
		buf[C + c] = sums[c];
	}
	buf[2 * C] = (double)N * HW;
	if (m->bn_sync(m->bn_sync_user, buf, 2 * C + 1))
		m->bn_sync_failed = 1;
	for (int c = 0; c < 2 * C; c++)
		ab[c] = (float)(buf[c] / buf[2 * C]);
	if (dx)
		bn_backward_dx_ex(dx, acc, dy, mask, x, n->mean, n->rstd, param(m, n->w), ab, &s,
				  m->team);
out:
	free(sums);
	free(ab);
	free(buf);
}

static void bn_backward(struct isif_model *m, struct node *n, float *dx, int acc,
			const float *dy, const float *mask, const float *x, int N, int groups)
{
	int rows = N / groups, HW = n->H * n->W;
	size_t stride = (size_t)rows * n->C * HW;
	struct bn_shape s = bn_shape_of(n, rows);
	if (m->bn_sync && groups == 1) {
		bn_backward_sync(m, n, dx, acc, dy, mask, x, N);
		return;
	}
	for (int g = 0; g < groups; g++)
		bn_backward_ex(dx ? dx + g * stride : NULL, acc, grad(m, n->w), grad(m, n->b),
			       dy + g * stride, mask ? mask + g * stride : NULL, x + g * stride,
			       n->mean + g * n->C, n->rstd + g * n->C, param(m, n->w), &s,
			       m->team);
}

/* A BN's input gradient handed to the convolution before it as a map. */
struct pending_map {
	int set;
	struct bn_dx_map map;
};

static void back_node(struct isif_model *m, struct node *n, int N, struct pending_map *pm)
{
	const float *x = m->acts[n->in].data;
	struct activation *out = &m->acts[n->dst], *in = &m->acts[n->in];
	size_t out_len = (size_t)N * act_size(out);
	float *dy = out->grad;
	if (!out->grad_written) /* nothing reads this output: zero gradient */
		memset(dy, 0, out_len * sizeof(float));
	/* the fused ReLU's output, or the one of the add this gradient came through */
	const float *mask = n->relu >= 0 ? out->data
			  : out->gmask >= 0 ? m->acts[out->gmask].data : NULL;
	float *dx = n->in ? in->grad : NULL;
	int acc = in->grad_written;
	switch (n->kind) {
	case NODE_CONV: {
		struct conv_shape s = conv_shape_of(n, N);
		s.prec = m->prec;
		if (pm->set && conv2d_backward_bn_team(dx, acc, grad(m, n->w), &pm->map, x,
						       param(m, n->w), &s, m->workspace,
						       m->team) == 0) {
			pm->set = 0;
			break;
		}
		conv2d_backward_team(dx, acc, grad(m, n->w), dy, x, param(m, n->w), &s,
				     m->workspace, m->team);
		break;
	}
	case NODE_BN:
		if (dx && !acc && m->last_groups == 1 && !m->bn_sync &&
		    bn_maps_into_conv(m, (int)(n - m->nodes))) {
			/* k, a, b live after the node's rstd (isif_model_plan) */
			float *coef = n->rstd + (size_t)n->C * m->plan_n;
			struct bn_shape s = bn_shape_of(n, N);
			bn_backward_map(&pm->map, coef, grad(m, n->w), grad(m, n->b), dy, mask, x,
					n->mean, n->rstd, param(m, n->w), &s, m->team);
			pm->set = 1;
			break;
		}
		bn_backward(m, n, dx, acc, dy, mask, x, N, m->last_groups);
		break;
	case NODE_RELU:
		if (dx)
			relu_backward_ex(dx, acc, dy, out->data, out_len, m->team);
		break;
	case NODE_MAXPOOL:
		if (dx)
			maxpool2_backward_ex(dx, acc, dy, n->argmax, N, n->C, n->H, n->W, m->team);
		break;
	case NODE_MAXPOOL3:
		if (dx)
			maxpool3s2_backward_ex(dx, acc, dy, n->argmax, N, n->C, n->H, n->W, m->team);
		break;
	case NODE_AVGPOOL:
		if (dx)
			avgpool_backward_ex(dx, acc, dy, N, n->C, n->H * n->W);
		break;
	case NODE_LINEAR:
		linear_backward_ex(dx, acc, grad(m, n->w), grad(m, n->b), dy, x,
				   param(m, n->w), N, n->C, n->K, m->workspace, m->prec);
		break;
	case NODE_L2NORM:
		if (dx)
			l2norm_backward_ex(dx, acc, dy, out->data, n->norm, N, n->K);
		break;
	case NODE_ADD:
		/* d(a + b) = dy (masked by the fused ReLU) for both addends */
		for (int k = 0; k < 2; k++) {
			int a = k ? n->in2 : n->in;
			struct activation *t = &m->acts[a];
			if (a == 0)
				continue;
			if (!n->alias_in[k]) {
				if (mask)
					relu_backward_ex(t->grad, t->grad_written, dy, mask, out_len, m->team);
				else
					grad_add(t->grad, t->grad_written, dy, out_len, m->team);
			}
			t->grad_written = 1;
		}
		return;
	}
	in->grad_written = 1;
}

enum isif_rc isif_model_backward(struct isif_model *m, const float *dout, struct isif_error *err)
{
	if (!m->last_train || !m->last_n)
		return isif_fail(err, ISIF_EINVAL, "backward needs a train-mode forward first");
	int N = m->last_n;
	m->acts[0].data = (float *)m->last_x;
	for (int i = 0; i < m->n_acts; i++) {
		struct activation *a = &m->acts[i];
		int s = slot_of(m, i);
		a->grad = s >= 0 ? m->slot[s] : NULL;
		a->grad_written = 0;
	}
	struct activation *last = &m->acts[m->nodes[m->n_nodes - 1].dst];
	memcpy(last->grad, dout, (size_t)N * act_size(last) * sizeof(float));
	last->grad_written = 1;
	struct pending_map pm = { 0 };
	for (int i = m->n_nodes - 1; i >= 0; i--) {
		struct node *n = &m->nodes[i];
		if (n->absorbed)
			continue;
		double t0 = m->profile ? prof_now(m) : 0;
		back_node(m, n, N, &pm);
		if (m->profile)
			m->prof[i][1] += prof_now(m) - t0;
	}
	m->last_train = 0; /* saved state is consumed */
	if (m->bn_sync_failed) {
		m->bn_sync_failed = 0;
		return isif_fail(err, ISIF_EIO, "synchronised BN: the sum over processes failed");
	}
	return ISIF_OK;
}

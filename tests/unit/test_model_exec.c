/*
 * tests/unit/test_model_exec.c — the executor's planning (core/nn/model_exec.c)
 * beyond what the gradient checks cover: an eval-mode forward of many rows,
 * which runs in cache-sized row groups, gives every row what a forward of
 * that row alone gives; the kinks of a grouped forward cannot be
 * frozen; and the memory plan materialises no pre-ReLU tensor and no BN
 * output that only feeds a residual add, and shares gradient slots.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/model_impl.h"
#include "check.h"
#include "gradcheck.h"

TEST(model_exec_eval_row_groups_match_single_rows)
{
	struct isif_model *m;
	struct isif_error err = {0};
	CHECK(isif_model_create(&m, "convnet", 1, 128, 3, &err) == ISIF_OK);
	/* 16×16 convnet: largest activation 32·256 floats, 128 rows per group */
	int N = 300, H = 16, W = 16, D = 128;
	float *x = malloc(sizeof(float) * N * H * W), *all = malloc(sizeof(float) * N * D);
	gc_fill_uniform(x, (size_t)N * H * W, -1, 1, 5);
	const float *out;
	/* one train step first so the running statistics are not the defaults */
	CHECK(isif_model_forward(m, x, 64, H, W, true, 1, &out, &err) == ISIF_OK);
	CHECK(isif_model_forward(m, x, N, H, W, false, 1, &out, &err) == ISIF_OK);
	CHECK(m->last_rows < N); /* it did run in groups */
	CHECK(model_freeze_kinks(m, 1) != 0);
	memcpy(all, out, sizeof(float) * N * D);
	int bad = 0;
	for (int i = 0; i < N; i += 7) {
		CHECK(isif_model_forward(m, x + (size_t)i * H * W, 1, H, W, false, 1, &out, &err) == ISIF_OK);
		/* equal up to the linear layer's BLAS rounding, which may sum a
		 * one-row product in another order; a misplaced row is off by O(1) */
		for (int d = 0; d < D; d++)
			if (fabsf(out[d] - all[(size_t)i * D + d]) > 1e-5f) {
				bad++;
				break;
			}
	}
	CHECK_MSG(bad == 0, "%d rows differ from their single-row forward", bad);
	free(x);
	free(all);
	isif_model_free(m);
}

TEST(model_exec_plan_fuses_and_shares)
{
	struct isif_model *m;
	struct isif_error err = {0};
	CHECK(isif_model_create(&m, "resnet20", 1, 128, 3, &err) == ISIF_OK);
	CHECK(isif_model_plan(m, 8, 16, 16, &err) == ISIF_OK);
	int fused = 0, materialised_pre_relu = 0, grads = 0, deferred = 0;
	for (int i = 0; i < m->n_nodes; i++) {
		const struct node *n = &m->nodes[i];
		if (n->relu >= 0) {
			fused++;
			if (m->acts[n->out].data)
				materialised_pre_relu++;
		}
		if (n->defer) {
			deferred++;
			CHECK(m->acts[n->out].data == NULL);
		}
	}
	for (int a = 1; a < m->n_acts; a++)
		if (m->acts[a].gslot >= 0 || m->acts[a].galias >= 0)
			grads++;
	/* resnet20: stem BN, two BNs and one add per block (9 blocks) feed ReLUs */
	CHECK_EQ(fused, 1 + 9 * 2);
	CHECK_EQ(materialised_pre_relu, 0);
	CHECK_EQ(deferred, 9); /* each block's bn2 runs inside its add */
	CHECK(m->n_slots >= 2 && m->n_slots < 6);
	CHECK(grads > 3 * m->n_slots); /* many gradients, few buffers */
	isif_model_free(m);
}

/* Synchronised BN's sum over processes, for a world of one process: the
 * sums stay as they are; calls counts how often the model asked. */
static int sync_calls;
static int sum_alone(void *user, double *buf, int n)
{
	(void)user;
	(void)buf;
	(void)n;
	sync_calls++;
	return 0;
}

/* Synchronised BN on one process (its own code path: statistics from sums,
 * the eval kernel for the affine part, dx from given sums) gives the plain
 * BN's outputs, parameter gradients and running statistics. resnet20 has BN
 * after convolutions and inside residual adds. */
TEST(model_exec_sync_bn_alone_matches_plain_bn)
{
	struct isif_model *a, *b;
	struct isif_error err = {0};
	CHECK(isif_model_create(&a, "resnet20", 3, 16, 7, &err) == ISIF_OK);
	CHECK(isif_model_create(&b, "resnet20", 3, 16, 7, &err) == ISIF_OK);
	isif_model_set_bn_sync(b, sum_alone, NULL);
	int N = 4, H = 16, W = 16, D = 16;
	float *x = malloc(sizeof(float) * N * 3 * H * W), *dout = malloc(sizeof(float) * N * D);
	float *ya = malloc(sizeof(float) * N * D);
	gc_fill_uniform(x, (size_t)N * 3 * H * W, -1, 1, 11);
	gc_fill_uniform(dout, (size_t)N * D, -1, 1, 12);
	const float *out;
	CHECK(isif_model_forward(a, x, N, H, W, true, 1, &out, &err) == ISIF_OK);
	memcpy(ya, out, sizeof(float) * N * D);
	isif_model_zero_grad(a);
	CHECK(isif_model_backward(a, dout, &err) == ISIF_OK);
	CHECK(isif_model_forward(b, x, N, H, W, true, 1, &out, &err) == ISIF_OK);
	isif_model_zero_grad(b);
	CHECK(isif_model_backward(b, dout, &err) == ISIF_OK);
	int bns = 0;   /* every BN asks once forward and once backward */
	for (size_t i = 0; i < isif_model_num_tensors(a); i++)
		bns += strstr(isif_model_tensor(a, i)->name, "running_mean") != NULL;
	CHECK_MSG(bns > 10 && sync_calls == 2 * bns, "%d calls for %d BNs", sync_calls, bns);
	float worst = 0;
	for (int i = 0; i < N * D; i++)
		worst = fmaxf(worst, fabsf(out[i] - ya[i]));
	CHECK_MSG(worst < 1e-5f, "outputs differ by %g", worst);
	const float *ga = isif_model_grads(a), *gb = isif_model_grads(b);
	float gmax = 0, gdiff = 0;
	for (size_t i = 0; i < isif_model_num_params(a); i++) {
		gmax = fmaxf(gmax, fabsf(ga[i]));
		gdiff = fmaxf(gdiff, fabsf(ga[i] - gb[i]));
	}
	CHECK_MSG(gdiff <= 1e-4f * gmax, "gradients differ by %g (largest %g)", gdiff, gmax);
	for (size_t i = 0; i < a->n_buffers; i++)
		CHECK_NEAR(a->buffers[i], b->buffers[i], 1e-5);
	free(x);
	free(dout);
	free(ya);
	isif_model_free(a);
	isif_model_free(b);
}

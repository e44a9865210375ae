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

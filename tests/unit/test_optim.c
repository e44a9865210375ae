/*
 * tests/unit/test_optim.c — SGD (core/nn/sgd.c) against updates worked out by
 * hand from PyTorch's documented rule, and the learning-rate schedules
 * (core/nn/lr_schedule.c) against hand values. The SGD hand values were also
 * checked once against torch 1.13's torch.optim.SGD (same numbers to float
 * precision); make test never calls torch.
 */
#include <math.h>
#include <stdlib.h>

#include "check.h"
#include "gradcheck.h"
#include "isif/base/common.h"
#include "isif/nn/optim.h"

/* ---- SGD -------------------------------------------------------------- */

TEST(optim_sgd_momentum_hand)
{
	/* lr 0.1, μ 0.9: step 1 buf = g; then buf = 0.9·buf + g; p −= 0.1·buf.
	 * p0: buf 0.5 → p 0.95; buf 0.45+0.25 = 0.7 → 0.88; buf 0.63 → 0.817.
	 * p1: buf 1 → −2.1; buf 0.9−1 = −0.1 → −2.09; buf −0.09 → −2.081. */
	struct isif_sgd opt;
	float p[2] = { 1.0f, -2.0f };
	const float g[3][2] = { { 0.5f, 1.0f }, { 0.25f, -1.0f }, { 0, 0 } };
	const double want[3][2] = { { 0.95, -2.1 }, { 0.88, -2.09 }, { 0.817, -2.081 } };
	CHECK_EQ(isif_sgd_init(&opt, 2, 0.9f, 0, 0, false), ISIF_OK);
	CHECK(!opt.has_buf);
	for (int s = 0; s < 3; s++) {
		isif_sgd_step(&opt, p, g[s], 0.1f);
		CHECK_NEAR(p[0], want[s][0], 1e-6);
		CHECK_NEAR(p[1], want[s][1], 1e-6);
	}
	CHECK(opt.has_buf);
	CHECK_EQ(opt.steps, 3);
	CHECK_NEAR(opt.buf[0], 0.63, 1e-6);
	isif_sgd_free(&opt);
	CHECK(opt.buf == NULL);
}

TEST(optim_sgd_dampening_weight_decay_first_step)
{
	/* lr 0.5, μ 0.5, dampening 0.5, wd 0.25, grad 1 every step, p = 2.
	 * All values are dyadic, so float is exact:
	 * 1: g = 1 + 0.25·2 = 1.5; buf = g = 1.5 (no dampening on the first
	 *    step); p = 2 − 0.75 = 1.25
	 * 2: g = 1 + 0.3125 = 1.3125; buf = 0.75 + 0.5·1.3125 = 1.40625;
	 *    p = 1.25 − 0.703125 = 0.546875
	 * 3: g = 1.13671875; buf = 0.703125 + 0.568359375 = 1.271484375;
	 *    p = 0.546875 − 0.6357421875 = −0.0888671875 */
	struct isif_sgd opt;
	float p = 2.0f, g = 1.0f;
	const double want[3] = { 1.25, 0.546875, -0.0888671875 };
	CHECK_EQ(isif_sgd_init(&opt, 1, 0.5f, 0.5f, 0.25f, false), ISIF_OK);
	for (int s = 0; s < 3; s++) {
		isif_sgd_step(&opt, &p, &g, 0.5f);
		CHECK_NEAR(p, want[s], 0);
	}
	CHECK_NEAR(opt.buf[0], 1.271484375, 0);
	isif_sgd_free(&opt);
}

TEST(optim_sgd_nesterov_hand)
{
	/* lr 0.5, μ 0.5, nesterov, p = 1, grads 1, 2, 0:
	 * 1: buf = 1;             g = 1 + 0.5·1 = 1.5;    p = 1 − 0.75 = 0.25
	 * 2: buf = 0.5 + 2 = 2.5; g = 2 + 1.25 = 3.25;    p = 0.25 − 1.625 = −1.375
	 * 3: buf = 1.25;          g = 0 + 0.625 = 0.625;  p = −1.375 − 0.3125 = −1.6875 */
	struct isif_sgd opt;
	float p = 1.0f;
	const float g[3] = { 1, 2, 0 };
	const double want[3] = { 0.25, -1.375, -1.6875 };
	CHECK_EQ(isif_sgd_init(&opt, 1, 0.5f, 0, 0, true), ISIF_OK);
	for (int s = 0; s < 3; s++) {
		isif_sgd_step(&opt, &p, &g[s], 0.5f);
		CHECK_NEAR(p, want[s], 0);
	}
	isif_sgd_free(&opt);
}

TEST(optim_sgd_no_momentum_ignores_dampening)
{
	/* PyTorch keeps no buffer when μ = 0, so dampening does nothing:
	 * p = 1 − 0.5·1 = 0.5, then 0.5 − 0.5·1 = 0. */
	struct isif_sgd opt;
	float p = 1.0f, g = 1.0f;
	CHECK_EQ(isif_sgd_init(&opt, 1, 0, 0.5f, 0, false), ISIF_OK);
	isif_sgd_step(&opt, &p, &g, 0.5f);
	CHECK_NEAR(p, 0.5, 0);
	isif_sgd_step(&opt, &p, &g, 0.5f);
	CHECK_NEAR(p, 0.0, 0);
	CHECK(!opt.has_buf);
	isif_sgd_free(&opt);
}

TEST(optim_sgd_matches_naive_double_loop)
{
	/* The training defaults (μ 0.9, wd 5e-4) over a block of 1000, against
	 * the rule re-written here in double with its own buffer. */
	enum { N = 1000, STEPS = 5 };
	struct isif_sgd opt;
	float *p = malloc(N * sizeof *p), *g = malloc(N * sizeof *g);
	double *pd = malloc(N * sizeof *pd), *bd = malloc(N * sizeof *bd);
	gc_fill_uniform(p, N, -1, 1, 21);
	for (int i = 0; i < N; i++)
		pd[i] = p[i];
	CHECK_EQ(isif_sgd_init(&opt, N, 0.9f, 0, 5e-4f, false), ISIF_OK);
	for (int s = 0; s < STEPS; s++) {
		gc_fill_uniform(g, N, -1, 1, 100 + s);
		isif_sgd_step(&opt, p, g, 0.03f);
		for (int i = 0; i < N; i++) {
			double gd = g[i] + 5e-4 * pd[i];
			bd[i] = s == 0 ? gd : 0.9 * bd[i] + gd;
			pd[i] -= 0.03 * bd[i];
		}
	}
	double worst = 0;
	for (int i = 0; i < N; i++)
		worst = fmax(worst, fabs(p[i] - pd[i]));
	CHECK_MSG(worst < 1e-6, "max |p − p_double| = %g", worst);
	isif_sgd_free(&opt);
	free(p);
	free(g);
	free(pd);
	free(bd);
}

TEST(optim_sgd_empty_block)
{
	struct isif_sgd opt;
	CHECK_EQ(isif_sgd_init(&opt, 0, 0.9f, 0, 0, false), ISIF_OK);
	isif_sgd_step(&opt, NULL, NULL, 0.1f);
	CHECK_EQ(opt.steps, 1);
	isif_sgd_free(&opt);
	CHECK_EQ(isif_sgd_init(&opt, SIZE_MAX, 0.9f, 0, 0, false), ISIF_ENOMEM);
	isif_sgd_free(&opt);
}

/* ---- learning-rate schedules ------------------------------------------ */

TEST(optim_lr_constant)
{
	struct isif_lr_schedule s = { .type = ISIF_LR_CONSTANT, .base_lr = 0.03 };
	CHECK_NEAR(isif_lr_at(&s, 0), 0.03, 1e-15);
	CHECK_NEAR(isif_lr_at(&s, 7.5), 0.03, 1e-15);
	CHECK_NEAR(isif_lr_at(&s, 1000), 0.03, 1e-15);
}

TEST(optim_lr_step_paper)
{
	/* The paper's CIFAR schedule: 0.03, ×0.1 from 120, ×0.05 from 160,
	 * ×0.01 from 200, each factor applied to the base (not cumulative). */
	struct isif_lr_schedule s = { .type = ISIF_LR_STEP, .base_lr = 0.03,
		.n_milestones = 3, .milestones = { 120, 160, 200 },
		.factors = { 0.1, 0.05, 0.01 } };
	const double ep[] = { 0, 119.999, 120, 120.5, 159.99, 160, 199.5, 200, 1000 };
	const double want[] = { 0.03, 0.03, 0.003, 0.003, 0.003, 0.0015, 0.0015, 0.0003, 0.0003 };
	for (int i = 0; i < 9; i++)
		CHECK_MSG(fabs(isif_lr_at(&s, ep[i]) - want[i]) < 1e-15,
			  "epoch %g: lr %.17g want %g", ep[i], isif_lr_at(&s, ep[i]), want[i]);
	/* No milestones: the base throughout. */
	s.n_milestones = 0;
	CHECK_NEAR(isif_lr_at(&s, 500), 0.03, 1e-15);
}

TEST(optim_lr_cosine)
{
	/* lr = min + (base − min)(1 + cos(π t/T))/2, values from python3's math:
	 * base 0.1, min 0, T 100: t 25 → 0.08535533905932738,
	 * t 12.5 → 0.09619397662556434; min 0.001: t 50 → 0.0505,
	 * t 75 → 0.0154982143312659. */
	struct isif_lr_schedule s = { .type = ISIF_LR_COSINE, .base_lr = 0.1,
				      .total_epochs = 100, .min_lr = 0 };
	CHECK_NEAR(isif_lr_at(&s, 0), 0.1, 1e-15);
	CHECK_NEAR(isif_lr_at(&s, 25), 0.08535533905932738, 1e-15);
	CHECK_NEAR(isif_lr_at(&s, 12.5), 0.09619397662556434, 1e-15);
	CHECK_NEAR(isif_lr_at(&s, 50), 0.05, 1e-15);
	CHECK_NEAR(isif_lr_at(&s, 100), 0, 1e-15);
	CHECK_NEAR(isif_lr_at(&s, 150), 0, 1e-15); /* stays at min past T */
	s.min_lr = 0.001;
	CHECK_NEAR(isif_lr_at(&s, 50), 0.0505, 1e-15);
	CHECK_NEAR(isif_lr_at(&s, 75), 0.0154982143312659, 1e-15);
	CHECK_NEAR(isif_lr_at(&s, 100), 0.001, 1e-15);
}

TEST(optim_lr_warmup)
{
	/* Linear from 0 over 5 epochs: lr·epoch/5 while epoch < 5. */
	struct isif_lr_schedule s = { .type = ISIF_LR_CONSTANT, .base_lr = 0.1,
				      .warmup_epochs = 5 };
	CHECK_NEAR(isif_lr_at(&s, 0), 0, 1e-15);
	CHECK_NEAR(isif_lr_at(&s, 1), 0.02, 1e-15);
	CHECK_NEAR(isif_lr_at(&s, 2.5), 0.05, 1e-15);
	CHECK_NEAR(isif_lr_at(&s, 4.99), 0.0998, 1e-15);
	CHECK_NEAR(isif_lr_at(&s, 5), 0.1, 1e-15);
	CHECK_NEAR(isif_lr_at(&s, 9), 0.1, 1e-15);

	/* On top of step: base 0.03, ×0.1 from epoch 1, warm-up 2:
	 * epoch 1.5 → 0.003·1.5/2 = 0.00225; epoch 0.5 → 0.03·0.25 = 0.0075. */
	struct isif_lr_schedule st = { .type = ISIF_LR_STEP, .base_lr = 0.03,
		.n_milestones = 1, .milestones = { 1 }, .factors = { 0.1 },
		.warmup_epochs = 2 };
	CHECK_NEAR(isif_lr_at(&st, 1.5), 0.00225, 1e-15);
	CHECK_NEAR(isif_lr_at(&st, 0.5), 0.0075, 1e-15);

	/* On top of cosine: base 0.1, min 0, T 100, warm-up 10, epoch 5:
	 * 0.1(1 + cos(π/20))/2 · 0.5 = 0.04969220851487845 (python3 math). */
	struct isif_lr_schedule c = { .type = ISIF_LR_COSINE, .base_lr = 0.1,
				      .total_epochs = 100, .warmup_epochs = 10 };
	CHECK_NEAR(isif_lr_at(&c, 5), 0.04969220851487845, 1e-15);
}

/*
 * tests/unit/test_ops_bn.c — batch normalisation: running statistics after
 * one train step on hand-derivable inputs, train and eval forward against a
 * double-precision reference written here, gradient checks of dx, dgamma and
 * dbeta, and the += / overwrite conventions of backward.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "gradcheck.h"
#include "isif/nn/ops.h"
#include "ops_testutil.h"

/*
 * x[N=2, C=2, HW=3]: channel 0 holds 0,1,2 | 3,4,5, channel 1 is constant 3.
 * Channel 0: mean 2.5, biased var Σ(x−2.5)²/6 = 17.5/6 = 35/12, unbiased
 * 17.5/5 = 3.5; channel 1: mean 3, var 0. With momentum 0.1 from PyTorch's
 * initial running stats (mean 0, var 1):
 *   running_mean = 0.9·0 + 0.1·(2.5, 3) = (0.25, 0.3)
 *   running_var  = 0.9·1 + 0.1·(3.5, 0) = (1.25, 0.9)
 * y = γ·(x − mean)/√(var + eps) + β; the constant channel maps to β.
 * (torch 1.13 BatchNorm2d(2, momentum=0.1) in train mode gives the same
 * running stats and y[0,0,:] = −2.6777, −1.5066, −0.3355.)
 */
TEST(bn_train_running_stats_by_hand)
{
	float x[12] = { 0, 1, 2, 3, 3, 3, 3, 4, 5, 3, 3, 3 };
	float gamma[2] = { 2.0f, 0.5f }, beta[2] = { 0.25f, -1.0f };
	float rm[2] = { 0, 0 }, rv[2] = { 1, 1 }, mean[2], rstd[2], y[12];
	const float eps = 1e-5f;

	isif_bn_forward_train(y, mean, rstd, x, gamma, beta, rm, rv, 0.1f, eps, 2, 2, 3);
	CHECK_NEAR(mean[0], 2.5, 1e-6);
	CHECK_NEAR(mean[1], 3.0, 1e-6);
	CHECK_NEAR(rstd[0], 1.0 / sqrt(35.0 / 12.0 + 1e-5), 1e-6);
	CHECK_NEAR(rstd[1], 1.0 / sqrt((double)eps), 1e-6 / sqrt((double)eps));
	CHECK_NEAR(rm[0], 0.25, 1e-7);
	CHECK_NEAR(rm[1], 0.3, 1e-7);
	CHECK_NEAR(rv[0], 1.25, 1e-6);
	CHECK_NEAR(rv[1], 0.9, 1e-7);
	CHECK_NEAR(y[0], -2.6777, 1e-4); /* the PyTorch values quoted above */
	CHECK_NEAR(y[1], -1.5066, 1e-4);
	CHECK_NEAR(y[2], -0.3355, 1e-4);
	for (int i = 0; i < 3; i++) {
		CHECK_NEAR(y[6 + i], 2.0 * (x[6 + i] - 2.5) / sqrt(35.0 / 12.0 + 1e-5) + 0.25, 1e-5);
		CHECK_NEAR(y[3 + i], -1.0, 1e-6);
		CHECK_NEAR(y[9 + i], -1.0, 1e-6);
	}

	/* a second step on the same batch: running = 0.9·running + 0.1·stat */
	isif_bn_forward_train(y, mean, rstd, x, gamma, beta, rm, rv, 0.1f, eps, 2, 2, 3);
	CHECK_NEAR(rm[0], 0.9 * 0.25 + 0.25, 1e-6);
	CHECK_NEAR(rv[0], 0.9 * 1.25 + 0.35, 1e-6);
	CHECK_NEAR(rv[1], 0.81, 1e-6);

	/* NULL running stats are allowed */
	isif_bn_forward_train(y, mean, rstd, x, gamma, beta, NULL, NULL, 0.1f, eps, 2, 2, 3);
	CHECK_NEAR(y[0], -2.6777, 1e-4);
}

/* Random batch: every output against statistics computed here in double. */
TEST(bn_train_forward_matches_double_reference)
{
	enum { N = 3, C = 4, HW = 10 };
	const size_t n = (size_t)N * C * HW;
	const float eps = 1e-5f, mom = 0.3f;
	float *x = tu_rand(n, 1), *gamma = tu_rand(C, 2), *beta = tu_rand(C, 3);
	float *rm = tu_rand(C, 4), *rv = tu_const(C, 0.7f), *y = tu_const(n, NAN);
	float mean[C], rstd[C], rm0[C], rv0[C];
	double *ref = malloc(sizeof(double) * n);

	for (int i = 0; i < N * C * HW; i++)
		x[i] = 3.0f * x[i] + 1.5f; /* a mean far from 0 */
	memcpy(rm0, rm, sizeof rm0);
	memcpy(rv0, rv, sizeof rv0);
	isif_bn_forward_train(y, mean, rstd, x, gamma, beta, rm, rv, mom, eps, N, C, HW);
	for (int c = 0; c < C; c++) {
		double s = 0, ss = 0, m = N * HW;
		for (int i = 0; i < N; i++)
			for (int j = 0; j < HW; j++)
				s += x[(i * C + c) * HW + j];
		double mu = s / m;
		for (int i = 0; i < N; i++)
			for (int j = 0; j < HW; j++) {
				double d = x[(i * C + c) * HW + j] - mu;
				ss += d * d;
			}
		double var = ss / m, rs = 1.0 / sqrt(var + eps);
		CHECK_NEAR(mean[c], mu, 1e-6 * (1 + fabs(mu)));
		CHECK_NEAR(rstd[c], rs, 1e-6 * rs);
		CHECK_NEAR(rm[c], (1 - mom) * rm0[c] + mom * mu, 1e-6);
		CHECK_NEAR(rv[c], (1 - mom) * rv0[c] + mom * ss / (m - 1), 1e-5);
		for (int i = 0; i < N; i++)
			for (int j = 0; j < HW; j++) {
				int k = (i * C + c) * HW + j;
				ref[k] = gamma[c] * (x[k] - mu) * rs + beta[c];
			}
	}
	TU_CHECK_ALL("bn train y", y, ref, n, 1e-5);
	free(x), free(gamma), free(beta), free(rm), free(rv), free(y), free(ref);
}

/* Eval mode uses the running statistics only, not the batch. */
TEST(bn_eval_uses_running_stats)
{
	enum { N = 2, C = 3, HW = 5 };
	const size_t n = (size_t)N * C * HW;
	float *x = tu_rand(n, 11), *gamma = tu_rand(C, 12), *beta = tu_rand(C, 13);
	float rm[C] = { 0.5f, -0.25f, 2.0f }, rv[C] = { 0.25f, 4.0f, 1.0f };
	float *y = tu_const(n, NAN);
	double *ref = malloc(sizeof(double) * n);

	isif_bn_forward_eval(y, x, gamma, beta, rm, rv, 1e-5f, N, C, HW);
	for (int i = 0; i < N; i++)
		for (int c = 0; c < C; c++)
			for (int j = 0; j < HW; j++) {
				int k = (i * C + c) * HW + j;
				ref[k] = gamma[c] * (x[k] - rm[c]) / sqrt(rv[c] + 1e-5) + beta[c];
			}
	TU_CHECK_ALL("bn eval y", y, ref, n, 1e-5);
	/* hand value: x = 0.5 in channel 0 is at the running mean, so y = β */
	x[0] = 0.5f;
	isif_bn_forward_eval(y, x, gamma, beta, rm, rv, 1e-5f, N, C, HW);
	CHECK_NEAR(y[0], beta[0], 1e-6);
	free(x), free(gamma), free(beta), free(y), free(ref);
}

/* Objective Σ r·bn_train(x; γ, β) for the gradient checker. */
struct bn_gc {
	int N, C, HW;
	float *x, *gamma, *beta, *y, *r, *mean, *rstd;
};

static double bn_objective(void *ctx)
{
	struct bn_gc *g = ctx;
	isif_bn_forward_train(g->y, g->mean, g->rstd, g->x, g->gamma, g->beta, NULL,
			      NULL, 0.1f, 1e-5f, g->N, g->C, g->HW);
	return gc_dot(g->r, g->y, (size_t)g->N * g->C * g->HW);
}

TEST(bn_gradcheck_dx_dgamma_dbeta)
{
	static const int shapes[][3] = { { 4, 3, 5 }, { 2, 2, 9 }, { 8, 3, 1 } };
	for (int t = 0; t < 3; t++) {
		int N = shapes[t][0], C = shapes[t][1], HW = shapes[t][2];
		size_t n = (size_t)N * C * HW;
		struct bn_gc g = { N, C, HW, tu_rand(n, 21 + t), tu_rand(C, 22 + t),
				   tu_rand(C, 23 + t), tu_const(n, 0), tu_rand(n, 24 + t),
				   tu_const(C, 0), tu_const(C, 0) };
		float *dx = tu_const(n, NAN), *dgamma = tu_const(C, 0), *dbeta = tu_const(C, 0);

		bn_objective(&g); /* saves mean and rstd */
		isif_bn_backward(dx, dgamma, dbeta, g.r, g.x, g.mean, g.rstd, g.gamma, N, C, HW);
		CHECK_MSG(tu_gradcheck("bn dx", g.x, dx, n, bn_objective, &g, NULL) == 0,
			  "shape %d: dx gradcheck", t);
		CHECK_MSG(tu_gradcheck("bn dgamma", g.gamma, dgamma, C, bn_objective, &g, NULL) == 0,
			  "shape %d: dgamma gradcheck", t);
		CHECK_MSG(tu_gradcheck("bn dbeta", g.beta, dbeta, C, bn_objective, &g, NULL) == 0,
			  "shape %d: dbeta gradcheck", t);
		free(g.x), free(g.gamma), free(g.beta), free(g.y), free(g.r), free(g.mean);
		free(g.rstd), free(dx), free(dgamma), free(dbeta);
	}
}

/* dgamma, dbeta +=; dx overwritten; dx NULL allowed. */
TEST(bn_backward_accumulates_params_overwrites_dx)
{
	enum { N = 3, C = 2, HW = 4 };
	const size_t n = (size_t)N * C * HW;
	float *x = tu_rand(n, 31), *gamma = tu_rand(C, 32), *beta = tu_rand(C, 33);
	float *dy = tu_rand(n, 34), *y = tu_const(n, 0), *dx = tu_const(n, NAN);
	float mean[C], rstd[C], dgamma[C] = { 0.5f, -2.0f }, dbeta[C] = { 1.0f, 3.0f };
	double *ref = malloc(sizeof(double) * n), sg[C] = { 0 }, sgx[C] = { 0 };

	isif_bn_forward_train(y, mean, rstd, x, gamma, beta, NULL, NULL, 0.1f, 1e-5f, N, C, HW);
	isif_bn_backward(dx, dgamma, dbeta, dy, x, mean, rstd, gamma, N, C, HW);
	isif_bn_backward(NULL, dgamma, dbeta, dy, x, mean, rstd, gamma, N, C, HW);
	/* the formula of the header, evaluated here in double */
	for (int c = 0; c < C; c++)
		for (int i = 0; i < N; i++)
			for (int j = 0; j < HW; j++) {
				int k = (i * C + c) * HW + j;
				double xh = (x[k] - mean[c]) * (double)rstd[c];
				sg[c] += dy[k];
				sgx[c] += dy[k] * xh;
			}
	for (int c = 0; c < C; c++) {
		CHECK_NEAR(dgamma[c], (c ? -2.0 : 0.5) + 2 * sgx[c], 1e-5);
		CHECK_NEAR(dbeta[c], (c ? 3.0 : 1.0) + 2 * sg[c], 1e-5);
		for (int i = 0; i < N; i++)
			for (int j = 0; j < HW; j++) {
				int k = (i * C + c) * HW + j;
				double xh = (x[k] - mean[c]) * (double)rstd[c], m = N * HW;
				ref[k] = gamma[c] * rstd[c] / m * (m * dy[k] - sg[c] - xh * sgx[c]);
			}
	}
	TU_CHECK_ALL("bn dx", dx, ref, n, 1e-5);
	free(x), free(gamma), free(beta), free(dy), free(y), free(dx), free(ref);
}

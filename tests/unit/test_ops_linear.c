/*
 * tests/unit/test_ops_linear.c — nn.Linear (y = x·wᵀ + b) and row-wise L2
 * normalisation: forward against naive double loops, gradient checks of dx,
 * dW and db, the += / overwrite conventions, NULL bias, and the zero-row guard.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "gradcheck.h"
#include "isif/nn/ops.h"
#include "nn/ops_impl.h"
#include "ops_testutil.h"

enum { LN = 5, LC = 7, LK = 4 };

TEST(linear_forward_matches_naive)
{
	float *x = tu_rand(LN * LC, 1), *w = tu_rand(LK * LC, 2), *b = tu_rand(LK, 3);
	float y[LN * LK];
	double ref[LN * LK], refnb[LN * LK];

	for (int i = 0; i < LN; i++)
		for (int k = 0; k < LK; k++) {
			double s = 0;
			for (int c = 0; c < LC; c++)
				s += (double)x[i * LC + c] * w[k * LC + c];
			refnb[i * LK + k] = s;
			ref[i * LK + k] = s + b[k];
		}
	for (int i = 0; i < LN * LK; i++)
		y[i] = NAN;
	isif_linear_forward(y, x, w, b, LN, LC, LK);
	TU_CHECK_ALL("linear y", y, ref, LN * LK, 1e-6);
	for (int i = 0; i < LN * LK; i++)
		y[i] = NAN;
	isif_linear_forward(y, x, w, NULL, LN, LC, LK);
	TU_CHECK_ALL("linear y without bias", y, refnb, LN * LK, 1e-6);
	free(x), free(w), free(b);
}

struct linear_gc {
	float *x, *w, *b, *y, *r;
};

static double linear_objective(void *ctx)
{
	struct linear_gc *g = ctx;
	isif_linear_forward(g->y, g->x, g->w, g->b, LN, LC, LK);
	return gc_dot(g->r, g->y, LN * LK);
}

TEST(linear_gradcheck_dx_dw_db)
{
	struct linear_gc g = { tu_rand(LN * LC, 11), tu_rand(LK * LC, 12), tu_rand(LK, 13),
			       tu_const(LN * LK, 0), tu_rand(LN * LK, 14) };
	float *dx = tu_const(LN * LC, NAN), *dw = tu_const(LK * LC, 0), *db = tu_const(LK, 0);

	isif_linear_backward(dx, dw, db, g.r, g.x, g.w, LN, LC, LK);
	CHECK(tu_gradcheck("linear dx", g.x, dx, LN * LC, linear_objective, &g, NULL) == 0);
	CHECK(tu_gradcheck("linear dw", g.w, dw, LK * LC, linear_objective, &g, NULL) == 0);
	CHECK(tu_gradcheck("linear db", g.b, db, LK, linear_objective, &g, NULL) == 0);
	free(g.x), free(g.w), free(g.b), free(g.y), free(g.r), free(dx), free(dw), free(db);
}

/* dw, db +=; dx overwritten; dx and db may be NULL. */
TEST(linear_backward_accumulates_params_overwrites_dx)
{
	float *x = tu_rand(LN * LC, 21), *w = tu_rand(LK * LC, 22), *dy = tu_rand(LN * LK, 23);
	float *dw0 = tu_rand(LK * LC, 24), *db0 = tu_rand(LK, 25);
	float dx[LN * LC], dw[LK * LC], db[LK];
	double rdx[LN * LC], rdw[LK * LC], rdb[LK];

	/* dx = dy·w, dW = dyᵀ·x, db = Σ_rows dy, computed here */
	for (int i = 0; i < LN; i++)
		for (int c = 0; c < LC; c++) {
			double s = 0;
			for (int k = 0; k < LK; k++)
				s += (double)dy[i * LK + k] * w[k * LC + c];
			rdx[i * LC + c] = s;
		}
	for (int k = 0; k < LK; k++) {
		double sb = 0;
		for (int i = 0; i < LN; i++)
			sb += dy[i * LK + k];
		rdb[k] = db0[k] + 2 * sb;
		for (int c = 0; c < LC; c++) {
			double s = 0;
			for (int i = 0; i < LN; i++)
				s += (double)dy[i * LK + k] * x[i * LC + c];
			rdw[k * LC + c] = dw0[k * LC + c] + 2 * s;
		}
	}
	for (int i = 0; i < LN * LC; i++)
		dx[i] = NAN;
	memcpy(dw, dw0, sizeof dw);
	memcpy(db, db0, sizeof db);
	isif_linear_backward(dx, dw, db, dy, x, w, LN, LC, LK);
	isif_linear_backward(NULL, dw, db, dy, x, w, LN, LC, LK);
	TU_CHECK_ALL("linear dx", dx, rdx, LN * LC, 1e-6);
	TU_CHECK_ALL("linear dw twice", dw, rdw, LK * LC, 1e-6);
	TU_CHECK_ALL("linear db twice", db, rdb, LK, 1e-6);
	/* db NULL leaves everything else as before */
	memcpy(dw, dw0, sizeof dw);
	isif_linear_backward(dx, dw, NULL, dy, x, w, LN, LC, LK);
	isif_linear_backward(dx, dw, NULL, dy, x, w, LN, LC, LK);
	TU_CHECK_ALL("linear dx (db NULL)", dx, rdx, LN * LC, 1e-6);
	TU_CHECK_ALL("linear dw (db NULL)", dw, rdw, LK * LC, 1e-6);
	free(x), free(w), free(dy), free(dw0), free(db0);
}

/* The public ops run the GEMM in small output tiles with stack scratch, the
 * model in one product with its workspace: the same bits, on shapes with
 * ragged tiles and a depth past one GEMM depth block (256); and both near
 * the naive sums. */
TEST(linear_tiles_match_one_product)
{
	enum { N = 37, C = 300, K = 53 };
	float *x = tu_rand(N * C, 41), *w = tu_rand(K * C, 42), *b = tu_rand(K, 43);
	float *dy = tu_rand(N * K, 44), *ws = malloc(sizeof(float) * linear_workspace(N, C, K));
	float *y1 = malloc(sizeof(float) * N * K), *y2 = malloc(sizeof(float) * N * K);
	float *dx1 = malloc(sizeof(float) * N * C), *dx2 = malloc(sizeof(float) * N * C);
	float *dw1 = tu_const(K * C, 0.5f), *dw2 = tu_const(K * C, 0.5f);
	double *ref = malloc(sizeof(double) * N * K);

	isif_linear_forward(y1, x, w, b, N, C, K);
	linear_forward_ws(y2, x, w, b, N, C, K, ws, 0);
	CHECK(memcmp(y1, y2, sizeof(float) * N * K) == 0);
	for (int i = 0; i < N; i++)
		for (int k = 0; k < K; k++) {
			double t = b[k];
			for (int c = 0; c < C; c++)
				t += (double)x[i * C + c] * w[k * C + c];
			ref[i * K + k] = t;
		}
	TU_CHECK_ALL("linear y (N 37, C 300, K 53)", y1, ref, N * K, 1e-5);
	linear_backward_ex(dx1, 0, dw1, NULL, dy, x, w, N, C, K, NULL, 0);
	linear_backward_ex(dx2, 0, dw2, NULL, dy, x, w, N, C, K, ws, 0);
	CHECK(memcmp(dx1, dx2, sizeof(float) * N * C) == 0);
	CHECK(memcmp(dw1, dw2, sizeof(float) * K * C) == 0);
	free(x), free(w), free(b), free(dy), free(ws), free(y1), free(y2), free(dx1), free(dx2);
	free(dw1), free(dw2), free(ref);
}

enum { L2N = 4, L2D = 9 };

TEST(l2norm_forward_matches_naive_and_guards_zero)
{
	float *x = tu_rand(L2N * L2D, 31), y[L2N * L2D], norm[L2N];
	double ref[L2N * L2D], rnorm[L2N];

	for (int j = 0; j < L2D; j++)
		x[2 * L2D + j] = 0.0f; /* row 2 is zero: y must be 0, norm 1e-12 */
	for (int i = 0; i < L2N; i++) {
		double ss = 0;
		for (int j = 0; j < L2D; j++)
			ss += (double)x[i * L2D + j] * x[i * L2D + j];
		rnorm[i] = fmax(sqrt(ss), 1e-12);
		for (int j = 0; j < L2D; j++)
			ref[i * L2D + j] = x[i * L2D + j] / rnorm[i];
	}
	isif_l2norm_forward(y, norm, x, L2N, L2D);
	TU_CHECK_ALL("l2norm y", y, ref, L2N * L2D, 1e-6);
	TU_CHECK_ALL("l2norm norm", norm, rnorm, L2N, 1e-6);
	CHECK_NEAR(norm[2], 1e-12, 1e-18);
	/* a hand row: (3, 4, 0, ...) has norm 5 and maps to (0.6, 0.8, 0, ...) */
	for (int j = 0; j < L2D; j++)
		x[j] = j == 0 ? 3.0f : j == 1 ? 4.0f : 0.0f;
	isif_l2norm_forward(y, norm, x, L2N, L2D);
	CHECK_NEAR(norm[0], 5.0, 1e-6);
	CHECK_NEAR(y[0], 0.6, 1e-7);
	CHECK_NEAR(y[1], 0.8, 1e-7);
	float dx[L2N * L2D], dy[L2N * L2D];
	for (int i = 0; i < L2N * L2D; i++)
		dy[i] = 1.0f, dx[i] = NAN;
	isif_l2norm_backward(dx, dy, y, norm, L2N, L2D);
	for (int j = 0; j < L2D; j++)
		CHECK(isfinite(dx[2 * L2D + j])); /* zero row: finite gradient */
	/* hand row: dx = (1 − y·(0.6 + 0.8))/5 = (1 − 1.4·y)/5 */
	CHECK_NEAR(dx[0], (1 - 1.4 * 0.6) / 5, 1e-6);
	CHECK_NEAR(dx[1], (1 - 1.4 * 0.8) / 5, 1e-6);
	CHECK_NEAR(dx[2], 1.0 / 5, 1e-6);
	free(x);
}

struct l2norm_gc {
	float *x, *y, *norm, *r;
};

static double l2norm_objective(void *ctx)
{
	struct l2norm_gc *g = ctx;
	isif_l2norm_forward(g->y, g->norm, g->x, L2N, L2D);
	return gc_dot(g->r, g->y, L2N * L2D);
}

TEST(l2norm_gradcheck_dx)
{
	struct l2norm_gc g = { tu_rand(L2N * L2D, 41), tu_const(L2N * L2D, 0),
			       tu_const(L2N, 0), tu_rand(L2N * L2D, 42) };
	float *dx = tu_const(L2N * L2D, NAN);

	l2norm_objective(&g);
	isif_l2norm_backward(dx, g.r, g.y, g.norm, L2N, L2D);
	CHECK(tu_gradcheck("l2norm dx", g.x, dx, L2N * L2D, l2norm_objective, &g, NULL) == 0);
	free(g.x), free(g.y), free(g.norm), free(g.r), free(dx);
}

/*
 * tests/unit/test_ops_pool.c — 2×2 max-pool (floor mode, first-maximum ties,
 * as PyTorch), the 3×3/2 pad-1 max-pool and global average pool: forward against naive loops written
 * here on odd and non-square sizes, hand-made tie cases, gradient checks of
 * dx, and dx overwritten (NaN-prefilled) by backward.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "gradcheck.h"
#include "isif/nn/ops.h"
#include "ops_testutil.h"

static const int pool_shapes[][4] = { { 2, 3, 5, 7 }, { 1, 2, 4, 6 }, { 2, 1, 7, 2 }, { 1, 1, 3, 3 } };

/* y[n,c,p,q] = max over x[n,c,2p+i,2q+j], i,j ∈ {0,1}, first max winning. */
static void naive_maxpool(double *y, int *arg, const float *x, int N, int C, int H, int W)
{
	int P = H / 2, Q = W / 2;
	for (int nc = 0; nc < N * C; nc++)
		for (int p = 0; p < P; p++)
			for (int q = 0; q < Q; q++) {
				double best = -INFINITY;
				int a = -1;
				for (int i = 0; i < 2; i++)
					for (int j = 0; j < 2; j++) {
						double v = x[((size_t)nc * H + 2 * p + i) * W + 2 * q + j];
						if (a < 0 || v > best) {
							best = v;
							a = 2 * i + j;
						}
					}
				y[((size_t)nc * P + p) * Q + q] = best;
				arg[((size_t)nc * P + p) * Q + q] = a;
			}
}

TEST(maxpool2_forward_matches_naive_floor)
{
	for (int t = 0; t < 4; t++) {
		int N = pool_shapes[t][0], C = pool_shapes[t][1], H = pool_shapes[t][2],
		    W = pool_shapes[t][3], P = H / 2, Q = W / 2;
		size_t nx = (size_t)N * C * H * W, ny = (size_t)N * C * P * Q;
		float *x = tu_rand(nx, 10 + t), *y = tu_const(ny, NAN);
		uint8_t *arg = malloc(ny);
		double *ref = malloc(sizeof(double) * ny);
		int *rarg = malloc(sizeof(int) * ny);

		/* make the dropped last row/column the largest values: floor mode
		 * must ignore them */
		for (int nc = 0; nc < N * C; nc++)
			for (int i = 0; i < H; i++)
				for (int j = 0; j < W; j++)
					if (i >= 2 * P || j >= 2 * Q)
						x[((size_t)nc * H + i) * W + j] = 10.0f;
		isif_maxpool2_forward(y, arg, x, N, C, H, W);
		naive_maxpool(ref, rarg, x, N, C, H, W);
		TU_CHECK_ALL("maxpool y", y, ref, ny, 0.0);
		for (size_t i = 0; i < ny; i++)
			CHECK_MSG(arg[i] == rarg[i], "shape %d argmax[%zu] %d want %d", t, i, arg[i], rarg[i]);
		free(x), free(y), free(arg), free(ref), free(rarg);
	}
}

/* Ties: the first maximum in row-major window order wins, and backward
 * routes the whole gradient to it. */
TEST(maxpool2_ties_first_wins)
{
	/* x[1,1,2,8]: four windows, written row 0 then row 1 */
	float x[16] = { 1, 3,   2, 2,   5, 0,   0, -1,
			3, 2,   2, 2,   5, 5,   0, -1 };
	/* windows: {1,3,3,2} → offset 1 (3 at (0,1) before (1,0));
	 * {2,2,2,2} → 0; {5,0,5,5} → 0; {0,−1,0,−1} → 0 */
	const int want_arg[4] = { 1, 0, 0, 0 };
	const float want_y[4] = { 3, 2, 5, 0 };
	float y[4], dy[4] = { 10, 20, 30, 40 }, dx[16];
	uint8_t arg[4];

	isif_maxpool2_forward(y, arg, x, 1, 1, 2, 8);
	for (int i = 0; i < 4; i++) {
		CHECK_EQ(arg[i], want_arg[i]);
		CHECK(y[i] == want_y[i]);
	}
	for (int i = 0; i < 16; i++)
		dx[i] = NAN;
	isif_maxpool2_backward(dx, dy, arg, 1, 1, 2, 8);
	const float want_dx[16] = { 0, 10, 20, 0, 30, 0, 40, 0,
				    0, 0,  0,  0, 0,  0, 0,  0 };
	for (int i = 0; i < 16; i++)
		CHECK_MSG(dx[i] == want_dx[i], "dx[%d] = %g want %g", i, dx[i], want_dx[i]);
}

struct maxpool_gc {
	int N, C, H, W;
	float *x, *y, *r;
	uint8_t *arg;
};

static double maxpool_objective(void *ctx)
{
	struct maxpool_gc *g = ctx;
	isif_maxpool2_forward(g->y, g->arg, g->x, g->N, g->C, g->H, g->W);
	return gc_dot(g->r, g->y, (size_t)g->N * g->C * (g->H / 2) * (g->W / 2));
}

TEST(maxpool2_gradcheck_dx)
{
	for (int t = 0; t < 4; t++) {
		int N = pool_shapes[t][0], C = pool_shapes[t][1], H = pool_shapes[t][2],
		    W = pool_shapes[t][3];
		size_t nx = (size_t)N * C * H * W, ny = (size_t)N * C * (H / 2) * (W / 2);
		struct maxpool_gc g = { N, C, H, W, tu_rand(nx, 20 + t), tu_const(ny, 0),
					tu_rand(ny, 30 + t), malloc(ny) };
		float *dx = tu_const(nx, NAN); /* the trailing odd row/column must become 0 */

		maxpool_objective(&g);
		isif_maxpool2_backward(dx, g.r, g.arg, N, C, H, W);
		CHECK_MSG(tu_gradcheck("maxpool dx", g.x, dx, nx, maxpool_objective, &g, NULL) == 0,
			  "shape %d", t);
		free(g.x), free(g.y), free(g.r), free(g.arg), free(dx);
	}
}

TEST(avgpool_forward_backward_by_definition)
{
	enum { N = 2, C = 3, HW = 7 };
	float *x = tu_rand(N * C * HW, 40), y[N * C], dy[N * C], dx[N * C * HW];
	double ref[N * C], rdx[N * C * HW];

	isif_avgpool_forward(y, x, N, C, HW);
	for (int nc = 0; nc < N * C; nc++) {
		double s = 0;
		for (int j = 0; j < HW; j++)
			s += x[nc * HW + j];
		ref[nc] = s / HW;
		dy[nc] = (float)(nc + 1);
		for (int j = 0; j < HW; j++) {
			rdx[nc * HW + j] = (nc + 1) / (double)HW;
			dx[nc * HW + j] = NAN;
		}
	}
	TU_CHECK_ALL("avgpool y", y, ref, N * C, 1e-6);
	isif_avgpool_backward(dx, dy, N, C, HW);
	TU_CHECK_ALL("avgpool dx", dx, rdx, N * C * HW, 1e-6);
	free(x);
}

struct avgpool_gc {
	int N, C, HW;
	float *x, *y, *r;
};

static double avgpool_objective(void *ctx)
{
	struct avgpool_gc *g = ctx;
	isif_avgpool_forward(g->y, g->x, g->N, g->C, g->HW);
	return gc_dot(g->r, g->y, (size_t)g->N * g->C);
}

TEST(avgpool_gradcheck_dx)
{
	enum { N = 3, C = 4, HW = 9 };
	struct avgpool_gc g = { N, C, HW, tu_rand(N * C * HW, 50), tu_const(N * C, 0),
				tu_rand(N * C, 51) };
	float *dx = tu_const(N * C * HW, NAN);

	isif_avgpool_backward(dx, g.r, N, C, HW);
	CHECK(tu_gradcheck("avgpool dx", g.x, dx, N * C * HW, avgpool_objective, &g, NULL) == 0);
	free(g.x), free(g.y), free(g.r), free(dx);
}

/* ---- 3×3 max-pool, stride 2, padding 1 (the ImageNet stem's) ------------ */

/* y[n,c,p,q] = max over x[n,c,2p−1+i,2q−1+j], i,j ∈ 0..2 inside the image,
 * the first maximum winning. */
static void naive_maxpool3(double *y, int *arg, const float *x, int N, int C, int H, int W)
{
	int P = (H - 1) / 2 + 1, Q = (W - 1) / 2 + 1;
	for (int nc = 0; nc < N * C; nc++)
		for (int p = 0; p < P; p++)
			for (int q = 0; q < Q; q++) {
				double best = -INFINITY;
				int a = -1;
				for (int i = 0; i < 3; i++)
					for (int j = 0; j < 3; j++) {
						int h = 2 * p - 1 + i, w = 2 * q - 1 + j;
						if (h < 0 || h >= H || w < 0 || w >= W)
							continue;
						double v = x[((size_t)nc * H + h) * W + w];
						if (a < 0 || v > best) {
							best = v;
							a = 3 * i + j;
						}
					}
				y[((size_t)nc * P + p) * Q + q] = best;
				arg[((size_t)nc * P + p) * Q + q] = a;
			}
}

TEST(maxpool3s2_forward_matches_naive)
{
	for (int t = 0; t < 4; t++) {
		int N = pool_shapes[t][0], C = pool_shapes[t][1], H = pool_shapes[t][2],
		    W = pool_shapes[t][3], P = (H - 1) / 2 + 1, Q = (W - 1) / 2 + 1;
		size_t nx = (size_t)N * C * H * W, ny = (size_t)N * C * P * Q;
		float *x = tu_rand(nx, 50 + t), *y = tu_const(ny, NAN);
		double *ref = malloc(sizeof(double) * ny);
		int *rarg = malloc(sizeof(int) * ny);
		uint8_t *arg = malloc(ny);
		isif_maxpool3s2_forward(y, arg, x, N, C, H, W);
		naive_maxpool3(ref, rarg, x, N, C, H, W);
		TU_CHECK_ALL("maxpool3 y", y, ref, ny, 0.0);
		for (size_t i = 0; i < ny; i++)
			CHECK_MSG(arg[i] == rarg[i], "shape %d arg[%zu] %d want %d", t, i, arg[i], rarg[i]);
		free(x), free(y), free(ref), free(rarg), free(arg);
	}
}

/* Overlapping windows: a pixel that wins two windows gets both gradients. */
TEST(maxpool3s2_overlap_sums_gradients)
{
	float x[9] = { 0, 0, 0, 0, 9, 0, 0, 0, 0 }; /* 3×3, the centre is in all 4 windows */
	float y[4], dy[4] = { 1, 2, 3, 4 }, dx[9];
	uint8_t arg[4];
	isif_maxpool3s2_forward(y, arg, x, 1, 1, 3, 3);
	for (int i = 0; i < 4; i++)
		CHECK(y[i] == 9);
	isif_maxpool3s2_backward(dx, dy, arg, 1, 1, 3, 3);
	for (int i = 0; i < 9; i++)
		CHECK_MSG(dx[i] == (i == 4 ? 10 : 0), "dx[%d] = %g", i, dx[i]);
}

struct maxpool3_gc {
	int N, C, H, W;
	float *x, *y, *r;
	uint8_t *arg;
};

static double maxpool3_objective(void *ctx)
{
	struct maxpool3_gc *g = ctx;
	isif_maxpool3s2_forward(g->y, g->arg, g->x, g->N, g->C, g->H, g->W);
	return gc_dot(g->r, g->y, (size_t)g->N * g->C * ((g->H - 1) / 2 + 1) * ((g->W - 1) / 2 + 1));
}

TEST(maxpool3s2_gradcheck_dx)
{
	for (int t = 0; t < 4; t++) {
		int N = pool_shapes[t][0], C = pool_shapes[t][1], H = pool_shapes[t][2],
		    W = pool_shapes[t][3];
		size_t nx = (size_t)N * C * H * W, ny = (size_t)N * C * ((H - 1) / 2 + 1) * ((W - 1) / 2 + 1);
		struct maxpool3_gc g = { N, C, H, W, tu_rand(nx, 60 + t), tu_const(ny, 0),
					 tu_rand(ny, 70 + t), malloc(ny) };
		float *dx = tu_const(nx, NAN); /* pixels no window picks must become 0 */
		maxpool3_objective(&g);
		isif_maxpool3s2_backward(dx, g.r, g.arg, N, C, H, W);
		CHECK_MSG(tu_gradcheck("maxpool3 dx", g.x, dx, nx, maxpool3_objective, &g, NULL) == 0,
			  "shape %d", t);
		free(g.x), free(g.y), free(g.r), free(g.arg), free(dx);
	}
}

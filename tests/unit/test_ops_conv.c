/*
 * tests/unit/test_ops_conv.c — conv2d forward and backward against a direct
 * 7-loop convolution in double, central-difference gradient checks of dx and
 * dw, the += / overwrite conventions, and the workspace size (the tests
 * allocate exactly what isif_conv2d_workspace() asks, so ASan catches any
 * overrun). Shapes cover stride 1/2/3, padding 0/1/2, 1×1 (the no-im2col
 * path and the im2col path), 3×3, non-square kernels, C ≠ K and H ≠ W.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "gradcheck.h"
#include "isif/nn/ops.h"
#include "ops_testutil.h"

struct conv_shape {
	int N, C, H, W, K, R, S, stride, pad;
};

static const struct conv_shape conv_shapes[] = {
	{ 2, 3, 5, 7, 4, 3, 3, 1, 1 },  /* 3×3 same padding, H ≠ W, C ≠ K */
	{ 2, 3, 7, 6, 5, 3, 3, 2, 1 },  /* 3×3 stride 2 pad 1 */
	{ 1, 4, 6, 5, 3, 3, 3, 2, 0 },  /* 3×3 stride 2 pad 0 */
	{ 2, 5, 4, 6, 3, 1, 1, 1, 0 },  /* 1×1 stride 1: skips im2col */
	{ 2, 4, 7, 5, 6, 1, 1, 2, 0 },  /* 1×1 stride 2 (ResNet shortcut) */
	{ 1, 2, 5, 4, 3, 1, 1, 1, 1 },  /* 1×1 with padding */
	{ 1, 3, 8, 6, 2, 5, 3, 1, 2 },  /* non-square 5×3 kernel, pad 2 */
	{ 2, 2, 9, 7, 3, 3, 2, 3, 1 },  /* stride 3, 3×2 kernel */
	{ 1, 2, 2, 3, 2, 3, 3, 1, 1 },  /* kernel larger than the image */
	/* wide layers (C + K > 192 planes, core/nn/conv2d.c): */
	{ 2, 16, 5, 4, 180, 3, 3, 1, 1 },/* 3×3 same stride 1, ≤ 8×8: Winograd F(4×4, 3×3), odd H */
	{ 1, 20, 6, 5, 176, 3, 3, 2, 1 },/* 3×3 stride 2: implicit GEMM */
	{ 1, 16, 10, 9, 180, 3, 3, 1, 1 },/* 3×3 same stride 1, > 8×8: Winograd F(2×2, 3×3) */
};

/* Relative error allowed on a sum of `terms` products: 1e-5, growing with
 * the sum's length past 64 (as in test_conv_team.c; the wide shapes' dx
 * sums K·R·S = 1620 products). */
static double sum_tol(int terms)
{
	return 1e-5 * (terms > 64 ? terms / 64.0 : 1.0);
}

/* Shape 9 takes the F(4×4, 3×3) Winograd path, whose transforms round
 * about 10× more than a direct sum (worst here 4.1e-5 on y, where 1e-5
 * would hold a direct sum; test_conv_winograd.c bounds that path closer):
 * 4× the bound. */
static double shape_tol(size_t i, int terms)
{
	return sum_tol(terms) * (i == 9 ? 4.0 : 1.0);
}

#define N_CONV_SHAPES (sizeof conv_shapes / sizeof conv_shapes[0])

static size_t xsize(const struct conv_shape *s) { return (size_t)s->N * s->C * s->H * s->W; }
static size_t wsize(const struct conv_shape *s) { return (size_t)s->K * s->C * s->R * s->S; }
static int outP(const struct conv_shape *s) { return isif_conv_out(s->H, s->R, s->stride, s->pad); }
static int outQ(const struct conv_shape *s) { return isif_conv_out(s->W, s->S, s->stride, s->pad); }
static size_t ysize(const struct conv_shape *s) { return (size_t)s->N * s->K * outP(s) * outQ(s); }

/* Exactly the workspace the op asks for; NULL when it needs none. */
static float *alloc_ws(const struct conv_shape *s)
{
	size_t n = isif_conv2d_workspace(s->N, s->C, s->H, s->W, s->K, s->R, s->S,
					 s->stride, s->pad);
	return n ? malloc(sizeof(float) * n) : NULL;
}

/* Input value at (n, c, ih, iw), 0 in the padding. */
static double x_at(const float *x, const struct conv_shape *s, int n, int c, int ih, int iw)
{
	if (ih < 0 || ih >= s->H || iw < 0 || iw >= s->W)
		return 0.0;
	return x[(((size_t)n * s->C + c) * s->H + ih) * s->W + iw];
}

/* y[n,k,p,q] = Σ_{c,r,s} w[k,c,r,s]·x[n,c,p·stride−pad+r,q·stride−pad+s] */
static void naive_forward(double *y, const float *x, const float *w, const struct conv_shape *s)
{
	int P = outP(s), Q = outQ(s);
	for (int n = 0; n < s->N; n++)
		for (int k = 0; k < s->K; k++)
			for (int p = 0; p < P; p++)
				for (int q = 0; q < Q; q++) {
					double acc = 0;
					for (int c = 0; c < s->C; c++)
						for (int r = 0; r < s->R; r++)
							for (int t = 0; t < s->S; t++)
								acc += w[((k * s->C + c) * s->R + r) * s->S + t] *
								       x_at(x, s, n, c, p * s->stride - s->pad + r,
									    q * s->stride - s->pad + t);
					y[((n * s->K + k) * P + p) * Q + q] = acc;
				}
}

/* The transpose of naive_forward: each dy element scatters into dx and dw. */
static void naive_backward(double *dx, double *dw, const float *dy, const float *x,
			   const float *w, const struct conv_shape *s)
{
	int P = outP(s), Q = outQ(s);
	memset(dx, 0, sizeof(double) * xsize(s));
	memset(dw, 0, sizeof(double) * wsize(s));
	for (int n = 0; n < s->N; n++)
		for (int k = 0; k < s->K; k++)
			for (int p = 0; p < P; p++)
				for (int q = 0; q < Q; q++) {
					double g = dy[((n * s->K + k) * P + p) * Q + q];
					for (int c = 0; c < s->C; c++)
						for (int r = 0; r < s->R; r++)
							for (int t = 0; t < s->S; t++) {
								int ih = p * s->stride - s->pad + r;
								int iw = q * s->stride - s->pad + t;
								size_t wi = ((size_t)(k * s->C + c) * s->R + r) * s->S + t;
								dw[wi] += g * x_at(x, s, n, c, ih, iw);
								if (ih >= 0 && ih < s->H && iw >= 0 && iw < s->W)
									dx[(((size_t)n * s->C + c) * s->H + ih) * s->W + iw] +=
										g * w[wi];
							}
				}
}

TEST(conv2d_forward_matches_naive)
{
	for (size_t i = 0; i < N_CONV_SHAPES; i++) {
		const struct conv_shape *s = &conv_shapes[i];
		float *x = tu_rand(xsize(s), 10 + i), *w = tu_rand(wsize(s), 20 + i);
		float *y = tu_const(ysize(s), NAN), *ws = alloc_ws(s);
		double *ref = malloc(sizeof(double) * ysize(s));

		isif_conv2d_forward(y, x, w, s->N, s->C, s->H, s->W, s->K, s->R, s->S,
				    s->stride, s->pad, ws);
		naive_forward(ref, x, w, s);
		char what[64];
		snprintf(what, sizeof what, "shape %zu y", i);
		TU_CHECK_ALL(what, y, ref, ysize(s), shape_tol(i, s->C * s->R * s->S));
		free(x), free(w), free(y), free(ws), free(ref);
	}
}

TEST(conv2d_backward_matches_naive)
{
	for (size_t i = 0; i < N_CONV_SHAPES; i++) {
		const struct conv_shape *s = &conv_shapes[i];
		float *x = tu_rand(xsize(s), 30 + i), *w = tu_rand(wsize(s), 40 + i);
		float *dy = tu_rand(ysize(s), 50 + i), *ws = alloc_ws(s);
		float *dx = tu_const(xsize(s), NAN), *dw = tu_const(wsize(s), 0.0f);
		double *rdx = malloc(sizeof(double) * xsize(s));
		double *rdw = malloc(sizeof(double) * wsize(s));

		isif_conv2d_backward(dx, dw, dy, x, w, s->N, s->C, s->H, s->W, s->K,
				     s->R, s->S, s->stride, s->pad, ws);
		naive_backward(rdx, rdw, dy, x, w, s);
		char what[64];
		snprintf(what, sizeof what, "shape %zu dx", i);
		TU_CHECK_ALL(what, dx, rdx, xsize(s), shape_tol(i, s->K * s->R * s->S));
		snprintf(what, sizeof what, "shape %zu dw", i);
		TU_CHECK_ALL(what, dw, rdw, wsize(s), shape_tol(i, s->N * outP(s) * outQ(s)));
		free(x), free(w), free(dy), free(ws), free(dx), free(dw), free(rdx), free(rdw);
	}
}

/* Objective Σ r·conv(x, w) for the gradient checker. */
struct conv_gc {
	const struct conv_shape *s;
	float *x, *w, *y, *r, *ws;
};

static double conv_objective(void *ctx)
{
	struct conv_gc *g = ctx;
	const struct conv_shape *s = g->s;
	isif_conv2d_forward(g->y, g->x, g->w, s->N, s->C, s->H, s->W, s->K, s->R,
			    s->S, s->stride, s->pad, g->ws);
	return gc_dot(g->r, g->y, ysize(s));
}

TEST(conv2d_gradcheck_dx_dw)
{
	for (size_t i = 0; i < N_CONV_SHAPES; i++) {
		const struct conv_shape *s = &conv_shapes[i];
		struct conv_gc g = { .s = s, .x = tu_rand(xsize(s), 60 + i),
				     .w = tu_rand(wsize(s), 70 + i),
				     .y = tu_const(ysize(s), 0), .r = tu_rand(ysize(s), 80 + i),
				     .ws = alloc_ws(s) };
		float *dx = tu_const(xsize(s), NAN), *dw = tu_const(wsize(s), 0.0f);

		/* d(Σ r·y)/dy = r */
		isif_conv2d_backward(dx, dw, g.r, g.x, g.w, s->N, s->C, s->H, s->W, s->K,
				     s->R, s->S, s->stride, s->pad, g.ws);
		CHECK_MSG(tu_gradcheck("conv dx", g.x, dx, xsize(s), conv_objective, &g, NULL) == 0,
			  "shape %zu: dx gradcheck", i);
		CHECK_MSG(tu_gradcheck("conv dw", g.w, dw, wsize(s), conv_objective, &g, NULL) == 0,
			  "shape %zu: dw gradcheck", i);
		free(g.x), free(g.w), free(g.y), free(g.r), free(g.ws), free(dx), free(dw);
	}
}

/* dw += (twice in a row gives base + 2·grad); dx overwritten; dx NULL allowed. */
TEST(conv2d_backward_accumulates_dw_overwrites_dx)
{
	static const size_t pick[] = { 1, 3 }; /* im2col path and 1×1 path */
	for (size_t j = 0; j < 2; j++) {
		const struct conv_shape *s = &conv_shapes[pick[j]];
		size_t nx = xsize(s), nw = wsize(s);
		float *x = tu_rand(nx, 91), *w = tu_rand(nw, 92);
		float *dy = tu_rand(ysize(s), 93), *ws = alloc_ws(s);
		float *base = tu_rand(nw, 94), *dw = malloc(sizeof(float) * nw);
		float *dx = tu_const(nx, NAN);
		double *rdx = malloc(sizeof(double) * nx), *rdw = malloc(sizeof(double) * nw);
		double *want = malloc(sizeof(double) * nw);

		naive_backward(rdx, rdw, dy, x, w, s);
		memcpy(dw, base, sizeof(float) * nw);
		isif_conv2d_backward(dx, dw, dy, x, w, s->N, s->C, s->H, s->W, s->K,
				     s->R, s->S, s->stride, s->pad, ws);
		TU_CHECK_ALL("dx after NaN prefill", dx, rdx, nx, 1e-5);
		isif_conv2d_backward(NULL, dw, dy, x, w, s->N, s->C, s->H, s->W, s->K,
				     s->R, s->S, s->stride, s->pad, ws);
		for (size_t i = 0; i < nw; i++)
			want[i] = base[i] + 2 * rdw[i];
		TU_CHECK_ALL("dw = base + 2 grad", dw, want, nw, 1e-5);

		/* dx again, starting from garbage that is not NaN, and dw NULL */
		for (size_t i = 0; i < nx; i++)
			dx[i] = 1e30f;
		isif_conv2d_backward(dx, NULL, dy, x, w, s->N, s->C, s->H, s->W, s->K,
				     s->R, s->S, s->stride, s->pad, ws);
		TU_CHECK_ALL("dx after 1e30 prefill", dx, rdx, nx, 1e-5);
		free(x), free(w), free(dy), free(ws), free(base), free(dw), free(dx);
		free(rdx), free(rdw), free(want);
	}
}

TEST(conv2d_workspace_size)
{
	/* The workspace holds at least one sample's column matrix C·R·S·P·Q (the
	 * im2col paths; the exact-size allocations above let ASan catch an op
	 * that uses more); a 1×1/stride 1/pad 0 convolution copies no columns and
	 * needs only GEMM packing space, less than its input. */
	CHECK(isif_conv2d_workspace(8, 3, 32, 32, 16, 3, 3, 1, 1) >= 3 * 9 * 32 * 32);
	CHECK(isif_conv2d_workspace(8, 16, 32, 32, 32, 3, 3, 2, 1) >= 16 * 9 * 16 * 16);
	CHECK(isif_conv2d_workspace(8, 16, 32, 32, 32, 1, 1, 2, 0) >= 16 * 16 * 16);
	CHECK(isif_conv2d_workspace(8, 16, 32, 32, 32, 1, 1, 1, 0) < 8 * 16 * 32 * 32);
}

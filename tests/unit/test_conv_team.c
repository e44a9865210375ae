/*
 * tests/unit/test_conv_team.c — the multi-threaded convolution
 * (conv2d_*_team, core/nn/ops_impl.h) against a direct 7-loop convolution in
 * double, on teams of 1, 2 and 3 threads (core/base/team.c), on images large
 * enough that each thread works through several chunks (GEMM paths: 2048
 * output pixels a chunk, so 40×40 images give chunks of 2 samples; direct
 * path: 128 Ki floats of copies, so 16 + 16 planes of 28×28 give 5), for
 * the direct paths (3×3 stride 1 and 2, 1×1 stride 2; core/nn/conv_direct.c),
 * the implicit GEMM path (over 192 planes a sample), the Winograd path
 * (core/nn/conv_winograd.c: 3×3 same stride 1, both channel counts ≥ 16) and
 * the 1×1 stride-1 path. Checks dx overwritten and then added
 * to (dx_accumulate), dw accumulated (from a non-zero start, so the
 * per-thread shares must be added, not stored) and the workspace allocated
 * to exactly the size the op asks for.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/ops_impl.h"
#include "base/team_impl.h"
#include "check.h"
#include "isif/nn/ops.h"
#include "ops_testutil.h"

struct team_shape {
	int N, C, H, W, K, R, S, stride, pad;
};

static const struct team_shape team_shapes[] = {
	{ 5, 3, 40, 40, 4, 3, 3, 1, 1 },  /* 3×3 same: chunks of 2 samples */
	{ 7, 2, 41, 38, 5, 3, 3, 2, 1 },  /* stride 2 */
	{ 5, 4, 40, 40, 3, 1, 1, 1, 0 },  /* 1×1: no im2col */
	{ 5, 4, 20, 18, 6, 1, 1, 2, 0 },  /* 1×1 stride 2 (direct, polyphase) */
	{ 13, 16, 28, 28, 16, 3, 3, 1, 1 },/* direct, 2 chunks a member at 2 threads */
	{ 13, 16, 28, 28, 32, 3, 3, 2, 1 },/* the same at stride 2 */
	{ 3, 3, 15, 17, 200, 3, 3, 1, 1 }, /* 3 + 200 planes a sample: the GEMM path */
	{ 5, 24, 7, 9, 176, 3, 3, 1, 1 }, /* 24 + 176 planes, both ≥ 16: Winograd (forward, dx) */
};

static double x_at(const float *x, const struct team_shape *s, int n, int c, int h, int w)
{
	if (h < 0 || h >= s->H || w < 0 || w >= s->W)
		return 0.0;
	return x[(((size_t)n * s->C + c) * s->H + h) * s->W + w];
}

/* y, and the gradients of Σ dy·y: dx, dw (double, overwritten). */
static void naive(double *y, double *dx, double *dw, const float *x, const float *w,
		  const float *dy, const struct team_shape *s)
{
	int P = isif_conv_out(s->H, s->R, s->stride, s->pad);
	int Q = isif_conv_out(s->W, s->S, s->stride, s->pad);
	memset(dx, 0, sizeof(double) * s->N * s->C * s->H * s->W);
	memset(dw, 0, sizeof(double) * s->K * s->C * s->R * s->S);
	for (int n = 0; n < s->N; n++)
		for (int k = 0; k < s->K; k++)
			for (int p = 0; p < P; p++)
				for (int q = 0; q < Q; q++) {
					size_t o = (((size_t)n * s->K + k) * P + p) * Q + q;
					double acc = 0, g = dy[o];
					for (int c = 0; c < s->C; c++)
						for (int r = 0; r < s->R; r++)
							for (int t = 0; t < s->S; t++) {
								int h = p * s->stride - s->pad + r;
								int v = q * s->stride - s->pad + t;
								size_t wi = ((size_t)(k * s->C + c) * s->R + r) * s->S + t;
								acc += w[wi] * x_at(x, s, n, c, h, v);
								dw[wi] += g * x_at(x, s, n, c, h, v);
								if (h >= 0 && h < s->H && v >= 0 && v < s->W)
									dx[(((size_t)n * s->C + c) * s->H + h) * s->W + v] += g * w[wi];
							}
					y[o] = acc;
				}
}

TEST(conv2d_team_matches_naive_for_1_2_3_threads)
{
	for (size_t i = 0; i < sizeof team_shapes / sizeof team_shapes[0]; i++) {
		const struct team_shape *s = &team_shapes[i];
		int P = isif_conv_out(s->H, s->R, s->stride, s->pad);
		int Q = isif_conv_out(s->W, s->S, s->stride, s->pad);
		size_t nx = (size_t)s->N * s->C * s->H * s->W, nw = (size_t)s->K * s->C * s->R * s->S;
		size_t ny = (size_t)s->N * s->K * P * Q;
		float *x = tu_rand(nx, 100 + i), *w = tu_rand(nw, 110 + i), *dy = tu_rand(ny, 120 + i);
		float *base = tu_rand(nw, 130 + i);
		double *ry = malloc(sizeof(double) * ny), *rdx = malloc(sizeof(double) * nx);
		double *rdw = malloc(sizeof(double) * nw), *want = malloc(sizeof(double) * nw);
		double *want2 = malloc(sizeof(double) * (nw > nx ? nw : nx));
		naive(ry, rdx, rdw, x, w, dy, s);
		/* a dx element sums K·R·S float products: the error grows with it */
		double dx_tol = 1e-5 * fmax(1.0, s->K * s->R * s->S / 64.0);
		for (size_t j = 0; j < nw; j++)
			want[j] = base[j] + rdw[j];
		for (int threads = 1; threads <= 3; threads++) {
			struct team *tm = team_create(threads);
			CHECK(tm != NULL && team_size(tm) == threads);
			const struct conv_shape cs = { s->N, s->C, s->H, s->W, s->K, s->R, s->S,
						       s->stride, s->pad, 0 };
			size_t len = conv2d_workspace_team(&cs, threads);
			float *ws = malloc(sizeof(float) * len);
			float *y = tu_const(ny, NAN), *dx = tu_const(nx, NAN), *dw = malloc(sizeof(float) * nw);
			memcpy(dw, base, sizeof(float) * nw);
			conv2d_forward_team(y, x, w, &cs, ws, tm);
			conv2d_backward_team(dx, 0, dw, dy, x, w, &cs, ws, tm);
			char what[64];
			snprintf(what, sizeof what, "shape %zu threads %d y", i, threads);
			TU_CHECK_ALL(what, y, ry, ny, 1e-5);
			snprintf(what, sizeof what, "shape %zu threads %d dx", i, threads);
			TU_CHECK_ALL(what, dx, rdx, nx, dx_tol);
			snprintf(what, sizeof what, "shape %zu threads %d dw", i, threads);
			TU_CHECK_ALL(what, dw, want, nw, 1e-4);
			/* a second contribution: dx += its gradient, dw += again */
			conv2d_backward_team(dx, 1, dw, dy, x, w, &cs, ws, tm);
			for (size_t j = 0; j < nx; j++)
				want2[j] = 2 * rdx[j];
			snprintf(what, sizeof what, "shape %zu threads %d dx accumulated", i, threads);
			TU_CHECK_ALL(what, dx, want2, nx, dx_tol);
			for (size_t j = 0; j < nw; j++)
				want2[j] = base[j] + 2 * rdw[j];
			snprintf(what, sizeof what, "shape %zu threads %d dw twice", i, threads);
			TU_CHECK_ALL(what, dw, want2, nw, 1e-4);
			team_free(tm);
			free(ws), free(y), free(dx), free(dw);
		}
		free(x), free(w), free(dy), free(base), free(ry), free(rdx), free(rdw), free(want);
		free(want2);
	}
}

/* The team is never larger than the batch: more threads than samples asks
 * for no more workspace than one thread per sample. */
TEST(conv2d_team_workspace_caps_at_batch)
{
	const struct conv_shape cs = { 2, 8, 20, 20, 8, 3, 3, 1, 1, 0 };
	size_t two = conv2d_workspace_team(&cs, 2);
	CHECK(conv2d_workspace_team(&cs, 8) == two);
	CHECK(conv2d_workspace_team(&cs, 1) < two);
}

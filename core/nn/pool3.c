/*
 * core/nn/pool3.c — the ImageNet ResNet stem's max-pool: 3×3 windows,
 * stride 2, padding 1 (PyTorch's MaxPool2d(3, 2, 1), floor mode) on NCHW
 * float32. Padding never wins (it is −∞), so every window holds at least
 * one real pixel. The winner's offset 0..8 in the window (row-major) is kept
 * for backward; the first maximum wins ties, a NaN wins over numbers (the
 * 2×2 pool's rule, pool.c). Planes (n, c) are split over a thread team.
 * A scalar loop: the pool runs once per image on the stem's output and
 * costs well under 1% of the network (bench/imagenet_bench.py).
 */
#include "isif/nn/ops.h"
#include "nn/ops_impl.h"
#include "base/par_impl.h"
#include "base/team_impl.h"

#include <math.h>
#include <string.h>

struct pool3_job {
	float *y, *dx;
	uint8_t *argmax;
	const float *x, *dy;
	const uint8_t *amax;
	int H, W, P, Q, accumulate;
};

/* One output whose window lies inside the image: nine taps, no bounds. */
static inline void pool3_inner(float *y, uint8_t *am, const float *x, int W)
{
	float best = x[0];
	int win = 0;
	for (int k = 1; k < 9; k++) {
		float v = x[(k / 3) * W + k % 3];
		if (v > best || isnan(v)) {
			best = v;
			win = k;
		}
	}
	*y = best;
	*am = (uint8_t)win;
}

/* Outputs whose window is inside (rows and columns 1..) take pool3_inner;
 * the border ones (first row and column, a last one reaching past the
 * image) check every tap. */
static void pool3_plane(float *y, uint8_t *am, const float *x, int H, int W, int P, int Q)
{
	for (int p = 0; p < P; p++) {
		int inner_row = p >= 1 && 2 * p + 1 < H;
		for (int q = 0; q < Q; q++) {
			if (inner_row && q >= 1 && 2 * q + 1 < W) {
				pool3_inner(y + (size_t)p * Q + q, am + (size_t)p * Q + q,
					    x + (size_t)(2 * p - 1) * W + 2 * q - 1, W);
				continue;
			}
			float best = -INFINITY;
			int win = -1;
			for (int k = 0; k < 9; k++) {
				int h = 2 * p - 1 + k / 3, w = 2 * q - 1 + k % 3;
				if (h < 0 || h >= H || w < 0 || w >= W)
					continue;
				float v = x[(size_t)h * W + w];
				if (win < 0 || v > best || isnan(v)) {
					best = v;
					win = k;
				}
			}
			y[(size_t)p * Q + q] = best;
			am[(size_t)p * Q + q] = (uint8_t)win;
		}
	}
}

static void pool3_planes(void *job, size_t lo, size_t hi)
{
	const struct pool3_job *j = job;
	size_t in = (size_t)j->H * j->W, out = (size_t)j->P * j->Q;
	for (size_t nc = lo; nc < hi; nc++)
		pool3_plane(j->y + nc * out, j->argmax + nc * out, j->x + nc * in, j->H, j->W,
			    j->P, j->Q);
}

void maxpool3s2_forward_ex(float *y, uint8_t *argmax, const float *x,
			   int N, int C, int H, int W, struct team *tm)
{
	struct pool3_job j = { .y = y, .argmax = argmax, .x = x, .H = H, .W = W,
			       .P = isif_conv_out(H, 3, 2, 1), .Q = isif_conv_out(W, 3, 2, 1) };
	size_t planes = (size_t)N * C;
	team_for(tm, planes, 1, planes * H * W >= PAR_MIN ? 2 : planes + 1, pool3_planes, &j);
}

void isif_maxpool3s2_forward(float *y, uint8_t *argmax, const float *x, int N, int C, int H, int W)
{
	maxpool3s2_forward_ex(y, argmax, x, N, C, H, W, NULL);
}

/* The input pixel that output o's winner k came from (always inside). */
static size_t pool3_source(int p, int q, int k, int W)
{
	return (size_t)(2 * p - 1 + k / 3) * W + (size_t)(2 * q - 1 + k % 3);
}

static void pool3_back_planes(void *job, size_t lo, size_t hi)
{
	const struct pool3_job *j = job;
	size_t in = (size_t)j->H * j->W, out = (size_t)j->P * j->Q;
	for (size_t nc = lo; nc < hi; nc++) {
		float *dxp = j->dx + nc * in;
		if (!j->accumulate)
			memset(dxp, 0, sizeof(float) * in);
		const float *dyp = j->dy + nc * out;
		const uint8_t *ap = j->amax + nc * out;
		for (int p = 0; p < j->P; p++)
			for (int q = 0; q < j->Q; q++)
				dxp[pool3_source(p, q, ap[p * j->Q + q], j->W)] += dyp[p * j->Q + q];
	}
}

void maxpool3s2_backward_ex(float *dx, int accumulate, const float *dy, const uint8_t *argmax,
			    int N, int C, int H, int W, struct team *tm)
{
	struct pool3_job j = { .dx = dx, .dy = dy, .amax = argmax, .H = H, .W = W,
			       .P = isif_conv_out(H, 3, 2, 1), .Q = isif_conv_out(W, 3, 2, 1),
			       .accumulate = accumulate };
	size_t planes = (size_t)N * C;
	team_for(tm, planes, 1, planes * H * W >= PAR_MIN ? 2 : planes + 1, pool3_back_planes, &j);
}

void isif_maxpool3s2_backward(float *dx, const float *dy, const uint8_t *argmax,
			      int N, int C, int H, int W)
{
	maxpool3s2_backward_ex(dx, 0, dy, argmax, N, C, H, W, NULL);
}

void maxpool3s2_frozen(float *y, uint8_t *argmax, const float *x, const uint8_t *winners,
		       int N, int C, int H, int W)
{
	int P = isif_conv_out(H, 3, 2, 1), Q = isif_conv_out(W, 3, 2, 1);
	for (size_t nc = 0; nc < (size_t)N * C; nc++)
		for (int p = 0; p < P; p++)
			for (int q = 0; q < Q; q++) {
				size_t o = (nc * P + p) * Q + q;
				y[o] = x[nc * H * W + pool3_source(p, q, winners[o], W)];
				argmax[o] = winners[o];
			}
}

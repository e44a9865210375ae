/*
 * tests/unit/test_conv_bf16.c — convolutions at precision bf16 (conv_shape
 * prec = GEMM_BF16) on every path the planner picks: direct (stride 1
 * and 2, odd channel counts, a 1×1 kernel), implicit GEMM and F(2×2, 3×3)
 * Winograd, which bf16 also takes for F(4×4)'s shapes (maps ≤ 8×8; their dw
 * by the implicit GEMM). Forward, input and weight gradients round
 * exactly their operands (x or dY, and w; dY and x) to bf16 by
 * round-to-nearest-even and sum in fp32, so they are held to a double
 * reference on the rounded operands within the fp32 summation bound
 * (terms + 2)·2^-24·Σ|products|, which a truncating conversion or a
 * dropped channel pair exceeds by far (test_gemm_bf16.c shows the
 * argument). Winograd rounds its transformed tiles instead: it is held to
 * the unrounded reference within the worst case of rounding both operands
 * of every product, 2^-8·Σ|products| (F(2×2) measured ≤ 0.7 of it forward
 * and dx, its dw 0.96 on 10×10, 0.33 on 16×16, but up to 2.2 on 4×4 maps, so dw there is
 * the GEMM's; F(4×4) exceeded it, so bf16 does not use F(4×4)). Under ISIF_CPU=portable (or
 * without AVX512_BF16) bf16 gives the fp32 result bit for bit.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/cpu_impl.h"
#include "base/gemm_impl.h"
#include "nn/ops_impl.h"
#include "nn/conv_bn_impl.h"
#include "base/team_impl.h"
#include "isif/nn/ops.h"
#include "check.h"
#include "ops_testutil.h"

static double rne(float x)
{
	uint32_t u;
	memcpy(&u, &x, 4);
	u = (u + 0x7fffu + (u >> 16 & 1)) & 0xffff0000u;
	memcpy(&x, &u, 4);
	return x;
}

static double val(const float *p, size_t i, int round)
{
	return round ? rne(p[i]) : p[i];
}

struct refs {
	double *y, *ya, *dx, *dxa, *dw, *dwa; /* values and Σ|products| */
};

/* Double reference of forward, dx, dw; `round` rounds x, w, dy to bf16. */
static void reference(struct refs *r, const float *x, const float *w, const float *dy,
		      const struct conv_shape *s, int round)
{
	int P = isif_conv_out(s->H, s->R, s->stride, s->pad), Q = isif_conv_out(s->W, s->S, s->stride, s->pad);
	for (int n = 0; n < s->N; n++)
		for (int k = 0; k < s->K; k++)
			for (int p = 0; p < P; p++)
				for (int q = 0; q < Q; q++) {
					size_t yi = (((size_t)n * s->K + k) * P + p) * Q + q;
					for (int c = 0; c < s->C; c++)
						for (int i = 0; i < s->R; i++)
							for (int j = 0; j < s->S; j++) {
								int h = p * s->stride - s->pad + i, v = q * s->stride - s->pad + j;
								if (h < 0 || h >= s->H || v < 0 || v >= s->W)
									continue;
								size_t xi = (((size_t)n * s->C + c) * s->H + h) * s->W + v;
								size_t wi = (((size_t)k * s->C + c) * s->R + i) * s->S + j;
								double a = val(x, xi, round) * val(w, wi, round);
								r->y[yi] += a, r->ya[yi] += fabs(a);
								double b = val(dy, yi, round) * val(w, wi, round);
								r->dx[xi] += b, r->dxa[xi] += fabs(b);
								double d = val(dy, yi, round) * val(x, xi, round);
								r->dw[wi] += d, r->dwa[wi] += fabs(d);
							}
				}
}

/* Largest |got − want| / (scale·abs + tiny) over n values. */
static double worst(const float *got, const double *want, const double *abs, size_t n, double scale)
{
	double m = 0;
	for (size_t i = 0; i < n; i++) {
		double r = fabs(got[i] - want[i]) / (scale * abs[i] + 1e-30);
		m = r > m ? r : m;
	}
	return m;
}

static double *zeros(size_t n)
{
	return calloc(n, sizeof(double));
}

TEST(conv_bf16_matches_rounded_reference)
{
	if (!cpu_bf16()) {
		printf("  (no AVX512_BF16 here: bf16 convolutions run fp32)\n");
		return;
	}
	/* direct s1, direct s2; F(4×4) Winograd's shapes in fp32 (C·1 + K >
	 * 192, images ≤ 8×8), which bf16 runs by F(2×2): 6×6, 8×8, 4×4; F(2×2)
	 * in both; implicit GEMM (C·1 + K > 192, a channel count below 16) */
	const struct conv_shape shapes[] = {
		{ 3, 8, 10, 10, 16, 3, 3, 1, 1, GEMM_BF16 },
		{ 2, 6, 11, 9, 10, 3, 3, 2, 1, GEMM_BF16 },
		{ 2, 200, 6, 6, 18, 3, 3, 1, 1, GEMM_BF16 },
		{ 2, 130, 8, 8, 130, 3, 3, 1, 1, GEMM_BF16 },
		{ 1, 96, 10, 10, 112, 3, 3, 1, 1, GEMM_BF16 },
		{ 3, 130, 4, 4, 132, 3, 3, 1, 1, GEMM_BF16 },
		{ 2, 12, 6, 6, 200, 3, 3, 1, 1, GEMM_BF16 },
		{ 2, 200, 8, 8, 12, 3, 3, 1, 1, GEMM_BF16 },
		{ 2, 3, 9, 9, 6, 3, 3, 1, 1, GEMM_BF16 },
		{ 2, 7, 10, 10, 10, 1, 1, 2, 0, GEMM_BF16 },
		{ 2, 64, 16, 16, 200, 3, 3, 1, 1, GEMM_BF16 },
		/* Winograd with odd channel counts both ways: U's last pair of
		 * input channels completed with 0 (forward and dx), a last block
		 * of output channels with 1 or 3 live rows */
		{ 2, 131, 8, 8, 129, 3, 3, 1, 1, GEMM_BF16 },
		{ 1, 97, 10, 10, 115, 3, 3, 1, 1, GEMM_BF16 },
		/* 3×3 stride 2 with 192 < 4·C + K ≤ 384: direct in bf16 only
		 * (fp32 takes the im2col GEMM), even and odd C */
		{ 2, 40, 12, 12, 48, 3, 3, 2, 1, GEMM_BF16 },
		{ 2, 41, 9, 9, 30, 3, 3, 2, 1, GEMM_BF16 },
	};
	/* 1: forward and dx by Winograd, dw by the implicit GEMM; 2: all three */
	const int wino_shape[] = { 0, 0, 1, 1, 2, 1, 0, 0, 0, 0, 2, 1, 2, 0, 0 };
	/* direct path, odd C (a last dw tile of 3 columns of a kernel row, or 1
	 * of a 1×1 kernel's 6): the forward pairs no channels, stays fp32 */
	const int fp32_fwd[] = { 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 1 };
	const int direct_s2[] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1 };
	for (unsigned t = 0; t < sizeof shapes / sizeof shapes[0]; t++) {
		const struct conv_shape *s = &shapes[t];
		int P = isif_conv_out(s->H, s->R, s->stride, s->pad), Q = isif_conv_out(s->W, s->S, s->stride, s->pad);
		size_t nx = (size_t)s->N * s->C * s->H * s->W, nw = (size_t)s->K * s->C * s->R * s->S;
		size_t ny = (size_t)s->N * s->K * P * Q;
		if (direct_s2[t]) {
			/* the planner's choice: direct in bf16, not in fp32 */
			struct conv_shape s32 = *s;
			s32.prec = GEMM_FP32;
			CHECK_MSG(conv2d_takes_dy_map(s) && !conv2d_takes_dy_map(&s32), "shape %u", t);

		}
		float *x = tu_rand(nx, 3 + t), *w = tu_rand(nw, 5 + t), *dy = tu_rand(ny, 7 + t);
		float *y = malloc(ny * sizeof(float)), *dx = malloc(nx * sizeof(float));
		float *dw = calloc(nw, sizeof(float));
		float *ws = malloc(conv2d_workspace_team(s, 1) * sizeof(float));
		struct refs r = { zeros(ny), zeros(ny), zeros(nx), zeros(nx), zeros(nw), zeros(nw) };
		struct refs u = { zeros(ny), zeros(ny), zeros(nx), zeros(nx), zeros(nw), zeros(nw) };
		reference(&r, x, w, dy, s, 1);
		reference(&u, x, w, dy, s, 0);
		conv2d_forward_team(y, x, w, s, ws, NULL);
		conv2d_backward_team(dx, 0, dw, dy, x, w, s, ws, NULL);
		int wino = wino_shape[t], CRS = s->C * s->R * s->S, KRS = s->K * s->R * s->S;
		/* Winograd rounds transformed tiles: held to the worst case of
		 * rounding both operands of every product, (2u + u²)·Σ|p| ≤ 2^-8·Σ|p|
		 * with u = 2^-9, plus the fp32 sums */
		int NPQ = s->N * P * Q;
		double fy = wino ? worst(y, u.y, u.ya, ny, 0x1p-8 + (CRS + 2) * 0x1p-24)
			  : fp32_fwd[t] ? worst(y, u.y, u.ya, ny, (CRS + 2) * 0x1p-24)
				 : worst(y, r.y, r.ya, ny, (CRS + 2) * 0x1p-24);
		double fdx = wino ? worst(dx, u.dx, u.dxa, nx, 0x1p-8 + (KRS + 2) * 0x1p-24)
				  : worst(dx, r.dx, r.dxa, nx, (KRS + 2) * 0x1p-24);
		double fdw = wino == 2 ? worst(dw, u.dw, u.dwa, nw, 0x1p-8 + (NPQ + 2) * 0x1p-24)
				  : worst(dw, r.dw, r.dwa, nw, (NPQ + 2) * 0x1p-24);
		CHECK_MSG(fy <= 1 && fdx <= 1 && fdw <= 1,
			  "shape %u: forward %.3g, dx %.3g, dw %.3g of their bounds", t, fy, fdx, fdw);
		/* the rounding really happened: bf16 is not the fp32 result */
		double fy32 = fp32_fwd[t] ? worst(dw, u.dw, u.dwa, nw, (NPQ + 2) * 0x1p-24)
				       : worst(y, u.y, u.ya, ny, (CRS + 2) * 0x1p-24);
		CHECK_MSG(fy32 > 1, "shape %u: %s within fp32 accuracy (%.3g): not bf16?", t,
			  fp32_fwd[t] ? "dw" : "forward", fy32);
		free(x), free(w), free(dy), free(y), free(dx), free(dw), free(ws);
		free(r.y), free(r.ya), free(r.dx), free(r.dxa), free(r.dw), free(r.dwa);
		free(u.y), free(u.ya), free(u.dx), free(u.dxa), free(u.dw), free(u.dwa);
	}
}

/* A model sizes its workspace with fp32 shapes before its precision is
 * set: that size must hold the bf16 path's where bf16 takes another path
 * (3×3 stride-2 layers it runs direct; a small map makes the direct path's
 * packed weights the larger workspace). */
TEST(conv_bf16_workspace_covers_bf16_path)
{
	const struct conv_shape shapes[] = {
		{ 1, 64, 4, 4, 128, 3, 3, 2, 1, GEMM_BF16 },
		{ 2, 40, 12, 12, 48, 3, 3, 2, 1, GEMM_BF16 },
		{ 64, 64, 32, 32, 128, 3, 3, 2, 1, GEMM_BF16 },
	};
	for (unsigned t = 0; t < sizeof shapes / sizeof shapes[0]; t++) {
		struct conv_shape s32 = shapes[t];
		s32.prec = GEMM_FP32;
		for (int th = 1; th <= 3; th++)
			CHECK_MSG(conv2d_workspace_team(&s32, th) >= conv2d_workspace_team(&shapes[t], th),
				  "shape %u, %d threads", t, th);
	}
}

TEST(conv_bf16_portable_is_exact_fp32)
{
	const struct conv_shape shapes[] = {
		{ 2, 8, 10, 10, 16, 3, 3, 1, 1, 0 },
		{ 2, 200, 6, 6, 18, 3, 3, 1, 1, 0 },
	};
	cpu_force(CPU_PORTABLE);
	for (unsigned t = 0; t < 2; t++) {
		struct conv_shape s32 = shapes[t], s16 = shapes[t];
		s16.prec = GEMM_BF16;
		size_t nx = (size_t)s32.N * s32.C * s32.H * s32.W, nw = (size_t)s32.K * s32.C * 9;
		size_t ny = (size_t)s32.N * s32.K * s32.H * s32.W;
		float *x = tu_rand(nx, 1), *w = tu_rand(nw, 2), *dy = tu_rand(ny, 3);
		float *a = malloc(ny * 4), *b = malloc(ny * 4), *da = malloc(nx * 4), *db = malloc(nx * 4);
		float *ga = calloc(nw, 4), *gb = calloc(nw, 4);
		float *ws = malloc(conv2d_workspace_team(&s32, 1) * sizeof(float));
		conv2d_forward_team(a, x, w, &s32, ws, NULL);
		conv2d_backward_team(da, 0, ga, dy, x, w, &s32, ws, NULL);
		conv2d_forward_team(b, x, w, &s16, ws, NULL);
		conv2d_backward_team(db, 0, gb, dy, x, w, &s16, ws, NULL);
		CHECK(memcmp(a, b, ny * 4) == 0 && memcmp(da, db, nx * 4) == 0 &&
		      memcmp(ga, gb, nw * 4) == 0);
		free(x), free(w), free(dy), free(a), free(b), free(da), free(db), free(ga), free(gb);
		free(ws);
	}
	cpu_force(CPU_AUTO);
}

/* A team of 3 splits the batch by samples, each member with its own pair
 * buffers: forward and dx equal the one-thread result bit for bit, dw (one
 * sum per member, added in rank order) within fp32 rounding. */
TEST(conv_bf16_team_matches_one_thread)
{
	const struct conv_shape shapes[] = {
		{ 5, 8, 10, 10, 16, 3, 3, 1, 1, GEMM_BF16 },
		{ 5, 6, 11, 9, 10, 3, 3, 2, 1, GEMM_BF16 },
		{ 5, 200, 6, 6, 18, 3, 3, 1, 1, GEMM_BF16 },
	};
	struct team *tm = team_create(3);
	CHECK(tm != NULL);
	for (unsigned t = 0; t < sizeof shapes / sizeof shapes[0]; t++) {
		const struct conv_shape *s = &shapes[t];
		int P = isif_conv_out(s->H, 3, s->stride, 1), Q = isif_conv_out(s->W, 3, s->stride, 1);
		size_t nx = (size_t)s->N * s->C * s->H * s->W, nw = (size_t)s->K * s->C * 9;
		size_t ny = (size_t)s->N * s->K * P * Q;
		float *x = tu_rand(nx, 1), *w = tu_rand(nw, 2), *dy = tu_rand(ny, 3);
		float *y1 = malloc(ny * 4), *y3 = malloc(ny * 4), *d1 = malloc(nx * 4), *d3 = malloc(nx * 4);
		float *g1 = calloc(nw, 4), *g3 = calloc(nw, 4);
		size_t len = conv2d_workspace_team(s, 3);
		float *ws = malloc(len * sizeof(float));
		conv2d_forward_team(y1, x, w, s, ws, NULL);
		conv2d_backward_team(d1, 0, g1, dy, x, w, s, ws, NULL);
		conv2d_forward_team(y3, x, w, s, ws, tm);
		conv2d_backward_team(d3, 0, g3, dy, x, w, s, ws, tm);
		CHECK_MSG(memcmp(y1, y3, ny * 4) == 0 && memcmp(d1, d3, nx * 4) == 0, "shape %u", t);
		for (size_t i = 0; i < nw; i++)
			CHECK_MSG(fabsf(g1[i] - g3[i]) <= 1e-4f * (1 + fabsf(g1[i])), "shape %u dw[%zu]", t, i);
		free(x), free(w), free(dy), free(y1), free(y3), free(d1), free(d3), free(g1), free(g3);
		free(ws);
	}
	team_free(tm);
}

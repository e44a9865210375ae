/*
 * tests/unit/test_conv_bn.c — a BN fused with the convolution before it
 * (core/nn/conv_bn_impl.h) against the two ops run one after the other (each
 * tested against naive loops in test_ops_bn.c and test_ops_conv.c):
 * forward, the conv's per-run statistics handed to BN; backward, BN's dx
 * handed to the conv as a map. The fused paths evaluate the same float
 * operations in the same order, so every output must match exactly.
 * Stride 1 and 2, with and without a ReLU mask, teams of 1 and 2, dx
 * overwritten and added.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/conv_bn_impl.h"
#include "nn/ops_impl.h"
#include "base/team_impl.h"
#include "check.h"
#include "isif/nn/ops.h"
#include "ops_testutil.h"

struct cb_shape {
	int N, C, H, W, K, R, stride, pad;
};

static const struct cb_shape cb_shapes[] = {
	{ 6, 3, 10, 9, 5, 3, 1, 1 },
	{ 5, 4, 12, 11, 6, 3, 2, 1 },
	{ 4, 2, 9, 10, 7, 1, 2, 0 },
};

static struct conv_shape conv_of(const struct cb_shape *s)
{
	struct conv_shape c = { s->N, s->C, s->H, s->W, s->K, s->R, s->R, s->stride, s->pad, 0 };
	return c;
}

/* Bits that differ between two float arrays. */
static size_t differ(const float *a, const float *b, size_t n)
{
	size_t bad = 0;
	for (size_t i = 0; i < n; i++)
		bad += memcmp(&a[i], &b[i], sizeof(float)) != 0;
	return bad;
}

static void check_shape(const struct cb_shape *s, int threads, int masked, int acc)
{
	int P = isif_conv_out(s->H, s->R, s->stride, s->pad), Q = isif_conv_out(s->W, s->R, s->stride, s->pad);
	size_t nx = (size_t)s->N * s->C * s->H * s->W, ny = (size_t)s->N * s->K * P * Q;
	size_t nw = (size_t)s->K * s->C * s->R * s->R;
	const struct conv_shape cs = conv_of(s);
	const struct bn_shape bs = { s->N, s->K, P * Q };
	CHECK(conv2d_takes_dy_map(&cs));
	struct team *tm = team_create(threads);
	size_t nws = conv2d_workspace_team(&cs, threads);
	float *ws = malloc(sizeof(float) * nws);
	float *x = tu_rand(nx, 11), *w = tu_rand(nw, 12), *dy = tu_rand(ny, 13);
	float *mask = masked ? tu_rand(ny, 14) : NULL, *gamma = tu_rand(s->K, 15);
	float *beta = tu_rand(s->K, 16), *y = malloc(sizeof(float) * ny);
	float *z = malloc(sizeof(float) * ny), mean[8], rstd[8], coef[24];
	/* y = conv(x), z = BN(y): the saved tensors of a forward pass */
	conv2d_forward_team(y, x, w, &cs, ws, tm);
	isif_bn_forward_train(z, mean, rstd, y, gamma, beta, NULL, NULL, 0.1f, 1e-5f, s->N, s->K,
			      P * Q);

	/* one after the other */
	float *dyc = malloc(sizeof(float) * ny), *dx1 = tu_rand(nx, 17), *dw1 = tu_rand(nw, 18);
	float *dg1 = tu_rand(s->K, 19), *db1 = tu_rand(s->K, 20);
	float *dx2 = malloc(sizeof(float) * nx), *dw2 = malloc(sizeof(float) * nw);
	float *dg2 = malloc(sizeof(float) * s->K), *db2 = malloc(sizeof(float) * s->K);
	memcpy(dx2, dx1, sizeof(float) * nx);
	memcpy(dw2, dw1, sizeof(float) * nw);
	memcpy(dg2, dg1, sizeof(float) * s->K);
	memcpy(db2, db1, sizeof(float) * s->K);
	bn_backward_ex(dyc, 0, dg1, db1, dy, mask, y, mean, rstd, gamma, &bs, tm);
	conv2d_backward_team(dx1, acc, dw1, dyc, x, w, &cs, ws, tm);

	/* fused */
	struct bn_dx_map map;
	bn_backward_map(&map, coef, dg2, db2, dy, mask, y, mean, rstd, gamma, &bs, tm);
	int rc = conv2d_backward_bn_team(dx2, acc, dw2, &map, x, w, &cs, ws, tm);
	CHECK(rc == 0);
	CHECK_MSG(differ(dx1, dx2, nx) == 0, "stride %d threads %d mask %d acc %d: %zu dx differ",
		  s->stride, threads, masked, acc, differ(dx1, dx2, nx));
	CHECK_MSG(differ(dw1, dw2, nw) == 0, "stride %d threads %d: %zu dw differ", s->stride,
		  threads, differ(dw1, dw2, nw));
	CHECK(differ(dg1, dg2, s->K) == 0 && differ(db1, db2, s->K) == 0);
	team_free(tm);
	free(ws), free(x), free(w), free(dy), free(mask), free(gamma), free(beta), free(y), free(z);
	free(dyc), free(dx1), free(dw1), free(dg1), free(db1), free(dx2), free(dw2), free(dg2);
	free(db2);
}

TEST(conv_bn_fused_backward_matches_separate_ops)
{
	for (size_t i = 0; i < sizeof cb_shapes / sizeof cb_shapes[0]; i++)
		for (int threads = 1; threads <= 2; threads++)
			for (int masked = 0; masked < 2; masked++)
				for (int acc = 0; acc < 2; acc++)
					check_shape(&cb_shapes[i], threads, masked, acc);
}

/* Forward: the conv's per-run statistics handed to BN give the same y,
 * mean, rstd and running statistics as BN computing them itself. */
TEST(conv_bn_fused_forward_matches_separate_ops)
{
	for (size_t i = 0; i < sizeof cb_shapes / sizeof cb_shapes[0]; i++)
		for (int threads = 1; threads <= 2; threads++) {
			const struct cb_shape *s = &cb_shapes[i];
			int P = isif_conv_out(s->H, s->R, s->stride, s->pad);
			int Q = isif_conv_out(s->W, s->R, s->stride, s->pad), HW = P * Q;
			size_t nx = (size_t)s->N * s->C * s->H * s->W, ny = (size_t)s->N * s->K * HW;
			const struct conv_shape cs = conv_of(s);
			const struct bn_shape bs = { s->N, s->K, HW };
			struct team *tm = team_create(threads);
			float *ws = malloc(sizeof(float) * conv2d_workspace_team(&cs, threads));
			float *x = tu_rand(nx, 31), *w = tu_rand((size_t)s->K * s->C * s->R * s->R, 32);
			float *gamma = tu_rand(s->K, 33), *beta = tu_rand(s->K, 34);
			float *add = tu_rand(ny, 35);
			float *y1 = malloc(sizeof(float) * ny), *y2 = malloc(sizeof(float) * ny);
			float *z1 = malloc(sizeof(float) * ny), *z2 = malloc(sizeof(float) * ny);
			float m1[8], r1[8], rm1[8], rv1[8], rm2[8], rv2[8];
			/* run statistics [N][K], then mean and rstd in their first K */
			float *m2 = malloc(sizeof(float) * s->N * s->K), *r2 = malloc(sizeof(float) * s->N * s->K);
			for (int k = 0; k < s->K; k++)
				rm1[k] = rm2[k] = 0.1f * k, rv1[k] = rv2[k] = 1.0f + 0.1f * k;
			conv2d_forward_team(y1, x, w, &cs, ws, tm);
			bn_forward_train_ex(z1, m1, r1, y1, gamma, beta, rm1, rv1, 0.1f, 1e-5f, &bs, 1,
					    add, tm);
			int rc = conv2d_forward_runs_team(y2, m2, r2, x, w, &cs, ws, tm);
			CHECK(rc == 0);
			bn_forward_train_runs(z2, m2, r2, y2, gamma, beta, rm2, rv2, 0.1f, 1e-5f, &bs, 1,
					      add, m2, r2, tm);
			CHECK_MSG(differ(y1, y2, ny) == 0 && differ(z1, z2, ny) == 0,
				  "shape %zu threads %d: y %zu, z %zu differ", i, threads,
				  differ(y1, y2, ny), differ(z1, z2, ny));
			CHECK(differ(m1, m2, s->K) == 0 && differ(r1, r2, s->K) == 0);
			CHECK(differ(rm1, rm2, s->K) == 0 && differ(rv1, rv2, s->K) == 0);
			team_free(tm);
			free(ws), free(x), free(w), free(gamma), free(beta), free(add), free(y1);
			free(y2), free(z1), free(z2), free(m2), free(r2);
		}
}

/* A layer off the direct path refuses a map and leaves everything alone. */
TEST(conv_bn_map_refused_off_the_direct_path)
{
	/* 3 + 200 planes per sample: above the direct path's limit */
	const struct conv_shape cs = { 1, 3, 12, 12, 200, 3, 3, 1, 1, 0 };
	CHECK(!conv2d_takes_dy_map(&cs));
	struct bn_dx_map map = { 0 };
	float dx = 1.0f;
	CHECK(conv2d_backward_bn_team(&dx, 0, NULL, &map, NULL, NULL, &cs, NULL, NULL) == -1);
	CHECK(dx == 1.0f);
}

/*
 * tests/unit/test_cpu.c — the CPU-feature switch (core/base/cpu.c) and the
 * two versions of every SIMD kernel: ISIF_CPU's values, cpu_force(), and
 * each op run once with the portable kernels and once with the AVX-512
 * ones, outputs compared (NaN must meet NaN, argmax and masks bit for bit).
 * Where the CPU lacks AVX-512 both runs are portable and agree trivially;
 * the kernels' accuracy against references is the other tests' job, which
 * run_all.sh also runs under ISIF_CPU=portable.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "isif/base/cpu.h"
#include "isif/nn/ops.h"
#include "base/cpu_impl.h"
#include "base/gemm_impl.h"
#include "ops_testutil.h"

TEST(cpu_isif_cpu_values)
{
	CHECK_EQ(cpu_parse("portable"), CPU_PORTABLE);
	CHECK_EQ(cpu_parse("avx512"), CPU_AVX512);
	CHECK_EQ(cpu_parse("auto"), CPU_AUTO);
	CHECK_EQ(cpu_parse(""), CPU_AUTO);
	CHECK_EQ(cpu_parse("AVX512"), CPU_AUTO);
	CHECK_EQ(cpu_parse(NULL), CPU_AUTO);
}

TEST(cpu_force_switches_the_kernels)
{
	cpu_force(CPU_PORTABLE);
	CHECK_EQ(cpu_avx512(), 0);
	CHECK(strcmp(isif_cpu_kernels(), "portable") == 0);
	cpu_force(CPU_AVX512);
	int have = cpu_avx512();
	CHECK(strcmp(isif_cpu_kernels(), have ? "avx512" : "portable") == 0);
#if !CPU_HAVE_AVX512
	CHECK_EQ(have, 0);
#endif
	/* back to the automatic choice: AVX-512 where there is one, unless
	 * this run's ISIF_CPU says portable */
	cpu_force(CPU_AUTO);
	const char *env = getenv("ISIF_CPU");
	CHECK_EQ(cpu_avx512(), have && cpu_parse(env) != CPU_PORTABLE);
}

/* ---- both kernels, same outputs ---- */

/* An op's outputs with the kernels in use: a malloc'd array of *n floats
 * (integer outputs converted exactly). arg: the op's shape. */
typedef float *op_fn(size_t *n, const int *arg);

/* Conv shapes {N, C, H, W, K, R, S, stride, pad}: the direct path (3×3
 * stride 1 and 2, with the stride-2 phase split and merge), Winograd (wide
 * 3×3), the implicit GEMM (R ≠ S), the explicit column matrix (stride 2,
 * R ≠ S) and 1×1. */
static const int conv_shapes[][9] = {
	{ 2, 3, 9, 9, 5, 3, 3, 1, 1 },    { 2, 4, 11, 13, 6, 3, 3, 2, 1 },
	{ 2, 100, 6, 6, 100, 3, 3, 1, 1 }, { 2, 5, 10, 9, 7, 3, 2, 1, 1 },
	{ 2, 5, 10, 9, 7, 3, 2, 2, 1 },   { 2, 6, 7, 7, 9, 1, 1, 1, 0 },
};

/* y, then dx, then dw. */
static float *op_conv(size_t *n, const int *a)
{
	int N = a[0], C = a[1], H = a[2], W = a[3], K = a[4], R = a[5], S = a[6], st = a[7];
	int pad = a[8], P = isif_conv_out(H, R, st, pad), Q = isif_conv_out(W, S, st, pad);
	size_t nx = (size_t)N * C * H * W, ny = (size_t)N * K * P * Q, nw = (size_t)K * C * R * S;
	float *x = tu_rand(nx, 1), *w = tu_rand(nw, 2), *dy = tu_rand(ny, 3);
	float *ws = malloc(sizeof(float) * isif_conv2d_workspace(N, C, H, W, K, R, S, st, pad));
	float *out = calloc(ny + nx + nw, sizeof(float));
	isif_conv2d_forward(out, x, w, N, C, H, W, K, R, S, st, pad, ws);
	isif_conv2d_backward(out + ny, out + ny + nx, dy, x, w, N, C, H, W, K, R, S, st, pad, ws);
	free(x), free(w), free(dy), free(ws);
	*n = ny + nx + nw;
	return out;
}

/* BN train forward (y, mean, rstd, running stats) and backward (dx, dγ, dβ)
 * on {N, C, HW}: runs of whole vectors, a tail, and shorter than one. */
static float *op_bn(size_t *n, const int *a)
{
	int N = a[0], C = a[1], HW = a[2];
	size_t nx = (size_t)N * C * HW;
	float *x = tu_rand(nx, 4), *dy = tu_rand(nx, 5), *gamma = tu_rand(C, 6), *beta = tu_rand(C, 7);
	float *out = calloc(2 * nx + 6 * (size_t)C, sizeof(float));
	float *y = out, *dx = y + nx, *mean = dx + nx, *rstd = mean + C, *rm = rstd + C;
	float *rv = rm + C, *dg = rv + C, *db = dg + C;
	for (int c = 0; c < C; c++)
		rv[c] = 1.0f;
	isif_bn_forward_train(y, mean, rstd, x, gamma, beta, rm, rv, 0.1f, 1e-5f, N, C, HW);
	isif_bn_backward(dx, dg, db, dy, x, mean, rstd, gamma, N, C, HW);
	free(x), free(dy), free(gamma), free(beta);
	*n = 2 * nx + 6 * (size_t)C;
	return out;
}

/* 2×2 max-pool {N, C, H, W} forward (y, argmax) with ties and NaNs, and its
 * backward. */
static float *op_pool(size_t *n, const int *a)
{
	int N = a[0], C = a[1], H = a[2], W = a[3];
	size_t nx = (size_t)N * C * H * W, ny = (size_t)N * C * (H / 2) * (W / 2);
	float *x = tu_rand(nx, 8), *dy = tu_rand(ny, 9);
	for (size_t i = 0; i < nx; i += 7)
		x[i] = i % 3 ? x[i + 1 < nx ? i + 1 : i] : NAN;
	uint8_t *am = malloc(ny);
	float *out = malloc(sizeof(float) * (2 * ny + nx));
	isif_maxpool2_forward(out, am, x, N, C, H, W);
	for (size_t i = 0; i < ny; i++)
		out[ny + i] = am[i];
	isif_maxpool2_backward(out + 2 * ny, dy, am, N, C, H, W);
	free(x), free(dy), free(am);
	*n = 2 * ny + nx;
	return out;
}

/* ReLU backward over {n} values, zeros and NaNs among the outputs y. */
static float *op_relu_back(size_t *n, const int *a)
{
	size_t len = (size_t)a[0];
	float *y = tu_rand(len, 10), *dy = tu_rand(len, 11), *out = malloc(sizeof(float) * len);
	for (size_t i = 0; i < len; i += 5)
		y[i] = i % 2 ? 0.0f : NAN;
	isif_relu_backward(out, dy, y, len);
	free(y), free(dy);
	*n = len;
	return out;
}

/* C = A·B and C += Aᵀ·B on {M, N, K}: contiguous and transposing packs. */
static float *op_gemm(size_t *n, const int *a)
{
	int M = a[0], N = a[1], K = a[2];
	float *A = tu_rand((size_t)M * K, 12), *B = tu_rand((size_t)K * N, 13);
	float *out = calloc(2 * (size_t)M * N, sizeof(float));
	float *ws = malloc(sizeof(float) * gemm_workspace(M, N, K));
	struct gemm_view va = gemm_dense(A, K), vat = gemm_dense_t(A, M), vb = gemm_dense(B, N);
	struct gemm_view c0 = gemm_dense(out, N), c1 = gemm_dense(out + (size_t)M * N, N);
	gemm(M, N, K, &va, &vb, &c0, 0, ws);
	gemm(M, N, K, &vat, &vb, &c1, 1, ws); /* A read as its own transpose, K × M */
	free(A), free(B), free(ws);
	*n = 2 * (size_t)M * N;
	return out;
}

/* Floats equal within tol·(1 + |b|), or both NaN. */
static size_t differ(const float *a, const float *b, size_t n, double tol, size_t *first)
{
	size_t bad = 0;
	for (size_t i = 0; i < n; i++) {
		int same = isnan(a[i]) ? isnan(b[i]) : fabs((double)a[i] - b[i]) <= tol * (1 + fabs(b[i]));
		if (!same && !bad++)
			*first = i;
	}
	return bad;
}

static void both_kernels(const char *what, op_fn *op, const int *arg, double tol)
{
	size_t np = 0, nv = 0, first = 0;
	cpu_force(CPU_PORTABLE);
	float *p = op(&np, arg);
	cpu_force(CPU_AVX512);
	float *v = op(&nv, arg);
	cpu_force(CPU_AUTO);
	CHECK_EQ(np, nv);
	size_t bad = differ(v, p, np, tol, &first);
	CHECK_MSG(bad == 0, "%s: %zu of %zu differ, first [%zu] avx512 %.9g portable %.9g", what,
		  bad, np, first, (double)v[first], (double)p[first]);
	free(p), free(v);
}

TEST(cpu_kernels_agree_conv)
{
	char what[64];
	for (size_t i = 0; i < sizeof conv_shapes / sizeof conv_shapes[0]; i++) {
		snprintf(what, sizeof what, "conv shape %zu", i);
		/* sums of up to 900 products of terms below 1, in another order */
		both_kernels(what, op_conv, conv_shapes[i], 1e-4);
	}
}

TEST(cpu_kernels_agree_bn_pool_relu_gemm)
{
	static const int bn[][3] = { { 3, 5, 49 }, { 2, 3, 64 }, { 4, 2, 3 } };
	static const int pool[][4] = { { 2, 3, 9, 38 }, { 1, 2, 6, 10 }, { 1, 1, 5, 64 } };
	static const int relu[][1] = { { 1037 }, { 5 } };
	static const int mm[][3] = { { 13, 100, 70 }, { 8, 48, 16 }, { 3, 5, 300 } };
	for (size_t i = 0; i < 3; i++)
		both_kernels("bn", op_bn, bn[i], 1e-5);
	for (size_t i = 0; i < 3; i++)
		both_kernels("maxpool", op_pool, pool[i], 0);
	for (size_t i = 0; i < 2; i++)
		both_kernels("relu backward", op_relu_back, relu[i], 0);
	for (size_t i = 0; i < 3; i++)
		both_kernels("gemm", op_gemm, mm[i], 1e-5);
}

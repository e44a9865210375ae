/*
 * tests/unit/test_gemm_bf16.c — the bf16 GEMM (gemm_prec(GEMM_BF16),
 * core/base/gemm.c) against a double-precision reference of the same
 * product on operands rounded to bfloat16 by round-to-nearest-even.
 *
 * The bounds are chosen to fail on the two faults a bf16 kernel can hide:
 * rounding by truncation (on positive operands it shrinks every product
 * by about 2^-9 on average, K·2^-9·E[ab] in all, while the fp32 sums
 * allowed here stay within (K + 2)·2^-24·Σ|ab|: 30× smaller at K = 600),
 * and a dropped pair or element of the k loop (an error of at least one
 * product, ≥ 0.25 on operands in [0.5, 1]). Without AVX512_BF16 (or
 * under ISIF_CPU=portable) GEMM_BF16 must give the fp32 product bit for bit.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/cpu_impl.h"
#include "base/gemm_impl.h"
#include "check.h"
#include "ops_testutil.h"

/* x rounded to bfloat16, round to nearest even (finite x). */
static double bf16_rne(float x)
{
	uint32_t u;
	memcpy(&u, &x, 4);
	u = (u + 0x7fffu + (u >> 16 & 1)) & 0xffff0000u;
	memcpy(&x, &u, 4);
	return x;
}

/* C = A·B (dense M×K, K×N) in bf16 and its reference; returns the largest
 * |C − ref| / bound over C, bound = (K + 2)·2^-24·Σ_k |a b| + 1e-30. */
static double worst_ratio(int M, int N, int K, const float *a, const float *b)
{
	float *c = calloc((size_t)M * N, sizeof *c);
	float *ws = malloc(gemm_workspace(M, N, K) * sizeof *ws);
	struct gemm_view A = gemm_dense(a, K), B = gemm_dense(b, N), C = gemm_dense(c, N);
	gemm_prec(M, N, K, &A, &B, &C, 0, GEMM_BF16, ws);
	double worst = 0;
	for (int i = 0; i < M; i++)
		for (int j = 0; j < N; j++) {
			double s = 0, abs_sum = 0;
			for (int k = 0; k < K; k++) {
				double p = bf16_rne(a[(size_t)i * K + k]) * bf16_rne(b[(size_t)k * N + j]);
				s += p;
				abs_sum += fabs(p);
			}
			double bound = (K + 2) * ldexp(1.0, -24) * abs_sum + 1e-30;
			double r = fabs(c[(size_t)i * N + j] - s) / bound;
			worst = r > worst ? r : worst;
		}
	free(c);
	free(ws);
	return worst;
}

static float *positive(size_t n, unsigned seed)
{
	float *x = tu_rand(n, seed);
	for (size_t i = 0; i < n; i++)
		x[i] = 0.75f + 0.25f * x[i];   /* [0.5, 1) */
	return x;
}

TEST(gemm_bf16_matches_rne_reference)
{
	if (!cpu_bf16()) {
		printf("  (no AVX512_BF16 here: the bf16 kernel is not run)\n");
		return;
	}
	/* odd K, K past KC = 256, M past MR, N past NR; positive operands
	 * (truncation would bias every product the same way) and signed ones */
	static const int shapes[][3] = { { 1, 1, 1 }, { 8, 48, 2 }, { 9, 49, 7 }, { 17, 100, 600 },
					 { 130, 60, 257 }, { 3, 5, 513 } };
	for (unsigned t = 0; t < sizeof shapes / sizeof shapes[0]; t++) {
		int M = shapes[t][0], N = shapes[t][1], K = shapes[t][2];
		for (int sign = 0; sign < 2; sign++) {
			float *a = sign ? tu_rand((size_t)M * K, 11 + t) : positive((size_t)M * K, 11 + t);
			float *b = sign ? tu_rand((size_t)K * N, 97 + t) : positive((size_t)K * N, 97 + t);
			double r = worst_ratio(M, N, K, a, b);
			CHECK_MSG(r <= 1.0, "%dx%dx%d %s: error %.3g of the bound", M, N, K,
				  sign ? "signed" : "positive", r);
			free(a);
			free(b);
		}
	}
}

TEST(gemm_bf16_rounds_ties_to_even)
{
	if (!cpu_bf16())
		return;
	/* 1 + 2^-8 lies halfway between bf16 1 and 1 + 2^-7: even gives 1;
	 * 1 + 3·2^-8 halfway between 1 + 2^-7 and 1 + 2^-6: even gives
	 * 1 + 2^-6; 1 + 2^-8 + 2^-20 is above halfway: up to 1 + 2^-7.
	 * Truncation gives 1, 1 + 2^-7, 1; round-half-up 1 + 2^-7 for the first. */
	float a[3] = { 1.0f + 0x1p-8f, 1.0f + 3 * 0x1p-8f, 1.0f + 0x1p-8f + 0x1p-20f };
	float want[3] = { 1.0f, 1.0f + 0x1p-6f, 1.0f + 0x1p-7f };
	for (int t = 0; t < 3; t++) {
		float one = 1.0f, c = -1.0f;
		float ws_buf[4096];
		CHECK(gemm_workspace(1, 1, 1) <= 4096);
		struct gemm_view A = gemm_dense(&a[t], 1), B = gemm_dense(&one, 1), C = gemm_dense(&c, 1);
		gemm_prec(1, 1, 1, &A, &B, &C, 0, GEMM_BF16, ws_buf);
		CHECK_MSG(c == want[t], "case %d: %.9g, want %.9g", t, c, want[t]);
	}
}

TEST(gemm_bf16_portable_is_exact_fp32)
{
	int M = 19, N = 70, K = 300;
	float *a = tu_rand((size_t)M * K, 5), *b = tu_rand((size_t)K * N, 6);
	float *c32 = calloc((size_t)M * N, sizeof(float)), *c16 = calloc((size_t)M * N, sizeof(float));
	float *ws = malloc(gemm_workspace(M, N, K) * sizeof *ws);
	struct gemm_view A = gemm_dense(a, K), B = gemm_dense(b, N);
	struct gemm_view C32 = gemm_dense(c32, N), C16 = gemm_dense(c16, N);
	cpu_force(CPU_PORTABLE);
	CHECK(!cpu_bf16());
	gemm_prec(M, N, K, &A, &B, &C32, 0, GEMM_FP32, ws);
	gemm_prec(M, N, K, &A, &B, &C16, 0, GEMM_BF16, ws);
	cpu_force(CPU_AUTO);
	CHECK(memcmp(c32, c16, (size_t)M * N * sizeof(float)) == 0);
	free(a);
	free(b);
	free(c32);
	free(c16);
	free(ws);
}

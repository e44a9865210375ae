/*
 * core/eval/knn_tile_bf16.c — the similarity tile of the exact search in
 * bfloat16: queries and gallery rows normalised, rounded to bf16 and packed
 * in pairs, so one AVX512_BF16 vdpbf16ps does the work of two fp32 FMAs and
 * a packed gallery is half the bytes. Its similarities are NOT the fp32
 * ones; the gallery (gallery.c) uses this tile only to find candidates and
 * ranks them again with the fp32 tile, which knn_bf16_slack makes exact.
 *
 * Layout: a packed row holds Dw = ⌈D/2⌉ 32-bit words, word d' carrying
 * element 2d' in its low half and 2d' + 1 (0 past D) in its high half; a
 * query panel is [Dw][MR] words, a gallery panel [Dw][NR], exactly the fp32
 * panels' shapes with D replaced by Dw, so knn_search.c runs both alike.
 */
#include "eval/knn_impl.h"
#include "eval/knn_tile_avx512.h"
#include "base/cpu_impl.h"

#include <math.h>
#include <string.h>

#define MR KNN_MR
#define NR KNN_NR

uint16_t knn_bf16(float x)
{
	uint32_t u;
	memcpy(&u, &x, sizeof u);
	if ((u & 0x7fffffffu) > 0x7f800000u)
		return (uint16_t)((u >> 16) | 0x40);          /* quiet NaN */
	u += 0x7fffu + ((u >> 16) & 1u);                   /* to nearest, ties to even */
	return (uint16_t)(u >> 16);
}

static float word(uint16_t lo, uint16_t hi)
{
	uint32_t w = (uint32_t)lo | (uint32_t)hi << 16;
	float f;
	memcpy(&f, &w, sizeof f);
	return f;
}

/* Element d of row x scaled by inv, as bf16; 0 past D. */
static uint16_t scaled(const float *x, int d, int D, float inv)
{
	return d < D ? knn_bf16(x[d] * inv) : 0;
}

void knn_pack_queries_bf16(float *a, const float *q, int64_t nq, int D)
{
	const int Dw = (D + 1) / 2;
	for (int64_t p = 0; p * MR < nq; p++) {
		float *panel = a + p * MR * Dw;
		for (int i = 0; i < MR; i++) {
			int64_t row = p * MR + i;
			const float *src = row < nq ? q + row * D : NULL;
			float inv = src ? knn_inv_norm(src, D) : 0;
			for (int w = 0; w < Dw; w++)
				panel[w * MR + i] = src ? word(scaled(src, 2 * w, D, inv),
							       scaled(src, 2 * w + 1, D, inv))
							: 0;
		}
	}
}

void knn_pack_gallery_bf16(float *b, float *ginv, const float *g, const int32_t *labels, int n,
			   int D)
{
	const int Dw = (D + 1) / 2;
	for (int j = 0; j < NR; j++) {
		int valid = j < n && !(labels && labels[j] < 0);
		const float *row = valid ? g + (int64_t)j * D : NULL;
		float inv = valid ? knn_inv_norm(row, D) : 0;
		for (int w = 0; w < Dw; w++)
			b[w * NR + j] = valid ? word(scaled(row, 2 * w, D, inv),
						     scaled(row, 2 * w + 1, D, inv))
					      : 0;
		ginv[j] = valid ? 1.0f : NAN;
	}
}

/*
 * Why |s_bf16 − s_fp32| ≤ knn_bf16_slack(D) for every query q and row g
 * (u = 2^-8, bf16's unit roundoff; a = q̂ and b = ĝ the fp32 unit vectors,
 * ‖a‖, ‖b‖ ≤ 1 + 2^-20 after their float roundings):
 *  - rounding a and b to bf16 moves each product a_d·b_d by at most
 *    (2u + u²)·|a_d·b_d|, so the exact sum of the bf16 products is within
 *    (2u + u²)·‖a‖·‖b‖ ≤ 2^-7·(1 + 2^-6) of a·b (Cauchy–Schwarz);
 *  - a product of two bf16 is exact in float; summing D of them in float
 *    (two roundings per vdpbf16ps, or per pair here) errs by at most
 *    γ_D·Σ|a_d·b_d| ≤ (D + 1)·2^-24·(1 + 2^-6);
 *  - the fp32 tile's own sum (one FMA or a multiply and an add per d) and
 *    its scaling by 1/‖g‖ err from the same a·b by at most
 *    (2D + 2)·2^-24·(1 + 2^-6);
 *  - flushing denormal products or sums to zero costs < D·2^-125.
 * (D + 8)·2^-21 bounds the three float terms together with room to spare.
 */
double knn_bf16_slack(int D)
{
	return 0x1p-7 * (1 + 0x1p-6) + (double)(D + 8) * 0x1p-21;
}

static float lo_half(float w)
{
	uint32_t u;
	memcpy(&u, &w, sizeof u);
	u <<= 16;
	float f;
	memcpy(&f, &u, sizeof f);
	return f;
}

static float hi_half(float w)
{
	uint32_t u;
	memcpy(&u, &w, sizeof u);
	u &= 0xffff0000u;
	float f;
	memcpy(&f, &u, sizeof f);
	return f;
}

/* vdpbf16ps's arithmetic in C: per word, the high pair's product added
 * first, then the low pair's (each product exact in float). */
static uint32_t tile_portable_bf16(int Dw, const float *a, const float *b, const float *ginv,
				   const float *thr, const struct knn_sink *sink, float *s,
				   uint64_t *hits)
{
	float acc[MR][NR];

	memset(acc, 0, sizeof acc);
	for (int w = 0; w < Dw; w++, a += MR, b += NR)
		for (int i = 0; i < MR; i++) {
			const float ah = hi_half(a[i]), al = lo_half(a[i]);
			for (int j = 0; j < NR; j++) {
				acc[i][j] += ah * hi_half(b[j]);
				acc[i][j] += al * lo_half(b[j]);
			}
		}
	return knn_tile_finish(&acc[0][0], ginv, thr, sink, s, hits);
}

#if CPU_HAVE_AVX512
/* 8×48 as the fp32 tile, each step a pair of d: per word three loads of b
 * and eight broadcasts of a feed 24 vdpbf16ps. */
CPU_BF16_TARGET
static uint32_t tile_avx512_bf16(int Dw, const float *a, const float *b, const float *ginv,
				 const float *thr, const struct knn_sink *sink, float *s,
				 uint64_t *hits)
{
	__m512 acc[MR][KNN_NV];
	const int32_t *aw = (const int32_t *)(const void *)a;

#pragma GCC unroll 8
	for (int i = 0; i < MR; i++)
#pragma GCC unroll 3
		for (int v = 0; v < KNN_NV; v++)
			acc[i][v] = _mm512_setzero_ps();
	for (int w = 0; w < Dw; w++, aw += MR, b += NR) {
		__m512bh bv[KNN_NV];
#pragma GCC unroll 3
		for (int v = 0; v < KNN_NV; v++)
			bv[v] = (__m512bh)_mm512_loadu_si512(b + 16 * v);
#pragma GCC unroll 8
		for (int i = 0; i < MR; i++) {
			__m512bh ai = (__m512bh)_mm512_set1_epi32(aw[i]);
#pragma GCC unroll 3
			for (int v = 0; v < KNN_NV; v++)
				acc[i][v] = _mm512_dpbf16_ps(acc[i][v], ai, bv[v]);
		}
	}
	return knn_tile_finish_avx512(acc, ginv, thr, sink, s, hits);
}
#endif

knn_tile_fn *knn_tile_kernel_bf16(void)
{
#if CPU_HAVE_AVX512
	if (cpu_bf16())
		return tile_avx512_bf16;
#endif
	return tile_portable_bf16;
}

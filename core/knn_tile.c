/*
 * core/knn_tile.c — the inner loop of the exact top-k search: one tile of
 * cosine similarities between KNN_MR queries and KNN_NR gallery rows,
 * computed and filtered against each query's current threshold without
 * leaving registers, plus the packing that lays queries and gallery rows out
 * for it (knn_impl.h). Not the thread split nor the candidate lists.
 *
 * Why a kernel of its own rather than gemm() + a scan: the product here is
 * thin (K = D = 128) and every similarity is looked at once, so storing the
 * tile and reading it back costs as much as the filter itself. Fused, each
 * element costs one FMA per d plus, at the end, one multiply by 1/‖g‖ and
 * one compare; only the rare hits leave the kernel as a bit mask.
 *
 * Packed layouts (as in gemm.c): a query panel is [D][MR], a gallery panel
 * [D][NR], so step d of the product is a broadcast of each query's d-th
 * value times NR/16 vectors of gallery values: MR·NR/16 = 24 independent
 * accumulators on AVX-512.
 */
#include "knn_impl.h"

#include <math.h>

#define MR KNN_MR
#define NR KNN_NR

static int force_portable;

void knn_force_portable(int on)
{
	force_portable = on;
}

int knn_portable_forced(void)
{
	return force_portable;
}

/* ---- packing ----------------------------------------------------------- */

float knn_inv_norm(const float *x, int D)
{
	double ss = 0;
	for (int d = 0; d < D; d++)
		ss += (double)x[d] * x[d];
	return ss > 0 ? (float)(1.0 / sqrt(ss)) : 0.0f;
}

void knn_pack_queries(float *a, const float *q, int64_t nq, int D)
{
	for (int64_t p = 0; p * MR < nq; p++) {
		float *panel = a + p * MR * D;
		for (int i = 0; i < MR; i++) {
			int64_t row = p * MR + i;
			if (row >= nq) {
				for (int d = 0; d < D; d++)
					panel[d * MR + i] = 0;
				continue;
			}
			const float *src = q + row * D;
			float inv = knn_inv_norm(src, D);
			for (int d = 0; d < D; d++)
				panel[d * MR + i] = src[d] * inv;
		}
	}
}

void knn_pack_gallery(float *b, const float *g, int n, int D)
{
	for (int j = 0; j < NR; j++) {
		if (j >= n) {
			for (int d = 0; d < D; d++)
				b[d * NR + j] = 0;
			continue;
		}
		const float *row = g + (int64_t)j * D;
		for (int d = 0; d < D; d++)
			b[d * NR + j] = row[d];
	}
}

/* ---- kernels ------------------------------------------------------------ */

static uint64_t tile_portable(int D, const float *a, const float *b, const float *ginv,
			      const float *thr, float *s, uint64_t *hits)
{
	float acc[MR][NR];
	uint64_t any = 0;

	memset(acc, 0, sizeof acc);
	for (int d = 0; d < D; d++, a += MR, b += NR)
		for (int i = 0; i < MR; i++)
			for (int j = 0; j < NR; j++)
				acc[i][j] += a[i] * b[j];
	for (int i = 0; i < MR; i++) {
		uint64_t h = 0;
		for (int j = 0; j < NR; j++) {
			float v = acc[i][j] * ginv[j];
			s[i * NR + j] = v;
			if (v > thr[i])
				h |= (uint64_t)1 << j;
		}
		hits[i] = h;
		any |= h;
	}
	return any;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_AVX512 1
#define NV (NR / 16)

/* 8×48: 24 zmm accumulators; per d three loads of b and eight broadcasts of
 * a feed 24 FMAs. The epilogue scales by ginv and compares with
 * _CMP_GT_OQ (ordered: false for NaN). */
__attribute__((target("avx512f")))
static uint64_t tile_avx512(int D, const float *a, const float *b, const float *ginv,
			    const float *thr, float *s, uint64_t *hits)
{
	__m512 acc[MR][NV];
	uint64_t any = 0;

#pragma GCC unroll 8
	for (int i = 0; i < MR; i++)
#pragma GCC unroll 3
		for (int v = 0; v < NV; v++)
			acc[i][v] = _mm512_setzero_ps();
	for (int d = 0; d < D; d++, a += MR, b += NR) {
		__m512 bv[NV];
#pragma GCC unroll 3
		for (int v = 0; v < NV; v++)
			bv[v] = _mm512_loadu_ps(b + 16 * v);
#pragma GCC unroll 8
		for (int i = 0; i < MR; i++) {
			__m512 ai = _mm512_set1_ps(a[i]);
#pragma GCC unroll 3
			for (int v = 0; v < NV; v++)
				acc[i][v] = _mm512_fmadd_ps(ai, bv[v], acc[i][v]);
		}
	}
	__m512 gv[NV];
#pragma GCC unroll 3
	for (int v = 0; v < NV; v++)
		gv[v] = _mm512_loadu_ps(ginv + 16 * v);
#pragma GCC unroll 8
	for (int i = 0; i < MR; i++) {
		__m512 t = _mm512_set1_ps(thr[i]);
		uint64_t h = 0;
#pragma GCC unroll 3
		for (int v = 0; v < NV; v++) {
			__m512 sv = _mm512_mul_ps(acc[i][v], gv[v]);
			_mm512_storeu_ps(s + i * NR + 16 * v, sv);
			h |= (uint64_t)_mm512_cmp_ps_mask(sv, t, _CMP_GT_OQ) << (16 * v);
		}
		hits[i] = h;
		any |= h;
	}
	return any;
}
#endif

knn_tile_fn *knn_tile_kernel(void)
{
#ifdef HAVE_AVX512
	if (!force_portable && __builtin_cpu_supports("avx512f"))
		return tile_avx512;
#endif
	return tile_portable;
}

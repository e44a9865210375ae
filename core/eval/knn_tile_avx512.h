/*
 * core/eval/knn_tile_avx512.h — the part of the AVX-512 similarity tiles that
 * the fp32 kernel (knn_tile.c) and the bf16 one (knn_tile_bf16.c) share: from
 * the MR×NR accumulators to candidate keys. Internal to core/eval.
 */
#ifndef ISIF_KNN_TILE_AVX512_H
#define ISIF_KNN_TILE_AVX512_H

#include "eval/knn_impl.h"
#include "base/cpu_impl.h"

#if CPU_HAVE_AVX512
#define KNN_NV (KNN_NR / 16)

/* knn_key on sixteen lanes (similarities sv of rows j0 .. j0 + 15; s + 0
 * turns −0 into +0), widened to 64 bits eight lanes at a time, the lanes
 * in m compressed to keys[0..); returns how many. */
CPU_AVX512_TARGET
static inline int knn_append16(uint64_t *keys, __m512 sv, __mmask16 m, int64_t j0)
{
	const __m512i lane = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
	const __m512i sign = _mm512_set1_epi32((int)0x80000000u);
	if (!m)
		return 0;
	__m512i u = _mm512_castps_si512(_mm512_add_ps(sv, _mm512_setzero_ps()));
	/* negative: flip all bits; else set the sign bit */
	__m512i ord = _mm512_xor_si512(u, _mm512_or_si512(_mm512_srai_epi32(u, 31), sign));
	__m512i row = _mm512_add_epi32(_mm512_set1_epi32((int)(uint32_t)j0), lane);
	__m512i low = _mm512_xor_si512(row, _mm512_set1_epi32(-1));
	int n = 0;
	for (int half = 0; half < 2; half++) {
		__mmask8 mh = (__mmask8)(m >> (8 * half));
		if (!mh)
			continue;
		__m256i o = half ? _mm512_extracti64x4_epi64(ord, 1) : _mm512_castsi512_si256(ord);
		__m256i l = half ? _mm512_extracti64x4_epi64(low, 1) : _mm512_castsi512_si256(low);
		__m512i key = _mm512_or_si512(_mm512_slli_epi64(_mm512_cvtepu32_epi64(o), 32),
					      _mm512_cvtepu32_epi64(l));
		int c = __builtin_popcount(mh);
		_mm512_mask_storeu_epi64(keys + n, (__mmask8)((1u << c) - 1),
					 _mm512_maskz_compress_epi64(mh, key));
		n += c;
	}
	return n;
}

/* The epilogue of a tile: scales row i's accumulators by ginv, compares with
 * thr[i] (_CMP_GT_OQ: false for NaN) and turns the row's hits into keys
 * straight from the registers, or leaves the row to the caller as
 * knn_tile_fn says. Always inlined: a run-time row index would send acc to
 * memory. */
CPU_AVX512_TARGET
static inline __attribute__((always_inline)) uint32_t
knn_tile_finish_avx512(__m512 acc[KNN_MR][KNN_NV], const float *ginv, const float *thr,
		       const struct knn_sink *sink, float *s, uint64_t *hits)
{
	enum { MR = KNN_MR, NR = KNN_NR, NV = KNN_NV };
	uint32_t left = 0;
	__m512 gv[NV];
#pragma GCC unroll 3
	for (int v = 0; v < NV; v++)
		gv[v] = _mm512_loadu_ps(ginv + 16 * v);
	/* unrolled: a run-time row index would send acc to memory */
#pragma GCC unroll 8
	for (int i = 0; i < MR; i++) {
		__m512 t = _mm512_set1_ps(thr[i]), sv[NV];
		uint64_t h = 0;
#pragma GCC unroll 3
		for (int v = 0; v < NV; v++) {
			sv[v] = _mm512_mul_ps(acc[i][v], gv[v]);
			h |= (uint64_t)_mm512_cmp_ps_mask(sv[v], t, _CMP_GT_OQ) << (16 * v);
		}
		h &= sink->valid;
		if (!h)
			continue;
		if (sink->keys && sink->fill[i] + __builtin_popcountll(h) <= sink->cap) {
			uint64_t *keys = sink->keys + (size_t)i * sink->cap + sink->fill[i];
			int n = 0;
#pragma GCC unroll 3
			for (int v = 0; v < NV; v++)
				n += knn_append16(keys + n, sv[v], (__mmask16)(h >> (16 * v)),
					      sink->j0 + 16 * v);
			sink->fill[i] += n;
		} else {
#pragma GCC unroll 3
			for (int v = 0; v < NV; v++)
				_mm512_storeu_ps(s + i * NR + 16 * v, sv[v]);
			hits[i] = h;
			left |= 1u << i;
		}
	}
	return left;
}
#endif
#endif

/*
 * core/eval/knn_tile.c — the inner loop of the exact top-k search: one tile of
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
#include "eval/knn_impl.h"
#include "eval/knn_tile_avx512.h"
#include "base/cpu_impl.h"

#include <float.h>
#include <math.h>

#define MR KNN_MR
#define NR KNN_NR

#define NV (NR / 16)

/* ---- packing ----------------------------------------------------------- */

/* ‖x‖² in double over eight interleaved partial sums, added in a fixed
 * tree: the products are exact in double, the order of the additions is
 * the same on every machine, and eight chains (or one vector) hide the add
 * latency that a single running sum would wait on. */
float knn_inv_norm(const float *x, int D)
{
	double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
	int d = 0;
	for (; d + 8 <= D; d += 8)
		for (int l = 0; l < 8; l++)
			acc[l] += (double)x[d + l] * x[d + l];
	for (int l = 0; d + l < D; l++)
		acc[l] += (double)x[d + l] * x[d + l];
	double ss = ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
	/* a row whose 1/norm overflows a float (denormal values) is a zero row,
	 * as one of norm 0: else its similarities are inf in the fp32 kernel */
	double inv = ss > 0 ? 1.0 / sqrt(ss) : 0.0;
	return inv <= FLT_MAX ? (float)inv : 0.0f;
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

static void transpose_portable(float *b, const float *g, int n, int D)
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

#if CPU_HAVE_AVX512
/*
 * Sixteen rows r[i] of sixteen floats to sixteen columns, in registers:
 * interleave pairs of rows (32-bit), then pairs of pairs (64-bit), which
 * leaves in each 128-bit lane L of u[4m + e] element 4L + e of rows
 * 4m..4m+3; two rounds of 128-bit lane shuffles then gather lane L of
 * u[e], u[4 + e], u[8 + e], u[12 + e] into column 4L + e.
 */
CPU_AVX512_TARGET
static inline void transpose16(__m512 c[16], const __m512 r[16])
{
	__m512 t[16], u[16];
#pragma GCC unroll 8
	for (int m = 0; m < 16; m += 2) {
		t[m] = _mm512_unpacklo_ps(r[m], r[m + 1]);
		t[m + 1] = _mm512_unpackhi_ps(r[m], r[m + 1]);
	}
#pragma GCC unroll 4
	for (int m = 0; m < 16; m += 4) {
		u[m] = _mm512_shuffle_ps(t[m], t[m + 2], 0x44);
		u[m + 1] = _mm512_shuffle_ps(t[m], t[m + 2], 0xee);
		u[m + 2] = _mm512_shuffle_ps(t[m + 1], t[m + 3], 0x44);
		u[m + 3] = _mm512_shuffle_ps(t[m + 1], t[m + 3], 0xee);
	}
#pragma GCC unroll 4
	for (int e = 0; e < 4; e++) {
		__m512 y0 = _mm512_shuffle_f32x4(u[e], u[4 + e], 0x88);
		__m512 y1 = _mm512_shuffle_f32x4(u[e], u[4 + e], 0xdd);
		__m512 y2 = _mm512_shuffle_f32x4(u[8 + e], u[12 + e], 0x88);
		__m512 y3 = _mm512_shuffle_f32x4(u[8 + e], u[12 + e], 0xdd);
		c[e] = _mm512_shuffle_f32x4(y0, y2, 0x88);
		c[8 + e] = _mm512_shuffle_f32x4(y0, y2, 0xdd);
		c[4 + e] = _mm512_shuffle_f32x4(y1, y3, 0x88);
		c[12 + e] = _mm512_shuffle_f32x4(y1, y3, 0xdd);
	}
}

/* The panel in blocks of sixteen rows × sixteen d; rows past n are zero,
 * the last block of d is loaded under a mask and stored for its d only. */
CPU_AVX512_TARGET
static void transpose_avx512(float *b, const float *g, int n, int D)
{
	for (int j0 = 0; j0 < NR; j0 += 16) {
		for (int d0 = 0; d0 < D; d0 += 16) {
			int w = D - d0 < 16 ? D - d0 : 16;
			__mmask16 m = (__mmask16)((1u << w) - 1);
			__m512 r[16], c[16];
#pragma GCC unroll 16
			for (int i = 0; i < 16; i++)
				r[i] = j0 + i < n ? _mm512_maskz_loadu_ps(m, g + (int64_t)(j0 + i) * D + d0)
						  : _mm512_setzero_ps();
			transpose16(c, r);
#pragma GCC unroll 16
			for (int k = 0; k < 16; k++)
				if (k < w)
					_mm512_storeu_ps(b + (d0 + k) * NR + j0, c[k]);
		}
	}
}
#endif

void knn_pack_gallery(float *b, float *ginv, const float *g, const int32_t *labels, int n, int D)
{
#if CPU_HAVE_AVX512
	if (cpu_avx512())
		transpose_avx512(b, g, n, D);
	else
#endif
		transpose_portable(b, g, n, D);
	for (int j = 0; j < NR; j++)
		ginv[j] = j >= n || (labels && labels[j] < 0) ? NAN : knn_inv_norm(g + (int64_t)j * D, D);
}

/* ---- keys from similarities --------------------------------------------- */

static int append_portable(uint64_t *keys, const float *s, uint64_t h, int64_t j0)
{
	int n = 0;
	for (; h; h &= h - 1) {
		int c = __builtin_ctzll(h);
		keys[n++] = knn_key(s[c], j0 + c);
	}
	return n;
}

#if CPU_HAVE_AVX512
CPU_AVX512_TARGET
static int append_avx512(uint64_t *keys, const float *s, uint64_t h, int64_t j0)
{
	int n = 0;
	for (int v = 0; v < NV; v++)
		n += knn_append16(keys + n, _mm512_loadu_ps(s + 16 * v), (__mmask16)(h >> (16 * v)),
			      j0 + 16 * v);
	return n;
}
#endif

int knn_append_hits(uint64_t *keys, const float *s, uint64_t h, int64_t j0)
{
#if CPU_HAVE_AVX512
	if (cpu_avx512())
		return append_avx512(keys, s, h, j0);
#endif
	return append_portable(keys, s, h, j0);
}

/* ---- kernels ------------------------------------------------------------ */

uint32_t knn_tile_finish(const float *acc, const float *ginv, const float *thr,
			 const struct knn_sink *sink, float *s, uint64_t *hits)
{
	uint32_t left = 0;
	for (int i = 0; i < MR; i++) {
		uint64_t h = 0;
		for (int j = 0; j < NR; j++) {
			float v = acc[i * NR + j] * ginv[j];
			s[i * NR + j] = v;
			if (v > thr[i])
				h |= (uint64_t)1 << j;
		}
		h &= sink->valid;
		if (!h)
			continue;
		if (sink->keys && sink->fill[i] + __builtin_popcountll(h) <= sink->cap) {
			uint64_t *keys = sink->keys + (size_t)i * sink->cap + sink->fill[i];
			sink->fill[i] += append_portable(keys, s + i * NR, h, sink->j0);
		} else {
			hits[i] = h;
			left |= 1u << i;
		}
	}
	return left;
}

static uint32_t tile_portable(int D, const float *a, const float *b, const float *ginv,
			      const float *thr, const struct knn_sink *sink, float *s,
			      uint64_t *hits)
{
	float acc[MR][NR];

	memset(acc, 0, sizeof acc);
	for (int d = 0; d < D; d++, a += MR, b += NR)
		for (int i = 0; i < MR; i++)
			for (int j = 0; j < NR; j++)
				acc[i][j] += a[i] * b[j];
	return knn_tile_finish(&acc[0][0], ginv, thr, sink, s, hits);
}

#if CPU_HAVE_AVX512
/* 8×48: 24 zmm accumulators; per d three loads of b and eight broadcasts of
 * a feed 24 FMAs; the epilogue is knn_tile_finish_avx512. */
CPU_AVX512_TARGET
static uint32_t tile_avx512(int D, const float *a, const float *b, const float *ginv,
			    const float *thr, const struct knn_sink *sink, float *s,
			    uint64_t *hits)
{
	__m512 acc[MR][NV];

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
	return knn_tile_finish_avx512(acc, ginv, thr, sink, s, hits);
}
#endif

knn_tile_fn *knn_tile_kernel(void)
{
#if CPU_HAVE_AVX512
	if (cpu_avx512())
		return tile_avx512;
#endif
	return tile_portable;
}

/*
 * core/conv_direct.c — the direct stride-1 "same" convolution kernels on
 * the gapped layout (see conv_direct_impl.h for the layout and the math):
 * the gapped copy, the forward / input-gradient product and the weight
 * gradient. Serial; core/conv2d.c splits samples over threads.
 *
 * Forward and dx: an MR×TN = 8×48 register tile of outputs Y[m][u0 + j],
 * one rank-1 update per tap k from 8 packed weights (broadcast) and the 48
 * contiguous values in[lead + u0 + off[k] + j], read where they lie: the
 * "B panel" is the gapped plane itself, so nothing is packed per product.
 * The tile's valid outputs (those not on a gap) are compressed out of the
 * lanes and stored as runs: valid positions of one sample are consecutive
 * in NCHW (row p's last column is followed by row p + 1's first), so each
 * 16-lane vector stores as one run per sample it touches.
 *
 * dw: each weight-gradient entry is a dot product of two unit-stride rows
 * over u, dYg[m] and the tap row of xg; a 4×6 tile of such dot products
 * keeps 24 vector accumulators, loads 4 + 6 vectors per 16 u for 24 FMAs,
 * and reduces the lanes once per chunk.
 */
#include "conv_direct_impl.h"
#include "gemm_impl.h"
#include "simd_impl.h"

#include <string.h>

#define MR 8            /* output rows per tile */
#define TN 48           /* output positions per tile */
#define DM 4            /* dw tile: rows of dY */
#define DK 6            /* dw tile: taps */

static size_t round16(size_t x)
{
	return (x + 15) / 16 * 16;
}

/* One cache line toward L2. GCC deletes a loop of nothing but
 * __builtin_prefetch as side-effect free, hence the asm on x86-64. */
static inline void prefetch_line(const char *p)
{
#if defined(__x86_64__) && defined(__GNUC__)
	__asm__ volatile("prefetcht1 %0" : : "m"(*p));
#else
	__builtin_prefetch(p, 0, 2);
#endif
}

/* The share of pf for one of `steps` steps: cache lines from step·len/steps. */
static void prefetch_step(const struct prefetch *pf, size_t step, size_t steps)
{
	const char *p = pf->p;
	size_t lo = step * pf->len / steps & ~(size_t)63, hi = (step + 1) * pf->len / steps;
	for (size_t b = lo; b < hi; b += 64)
		prefetch_line(p + b);
}

struct gap_geom gap_geom_make(int H, int W, int g, int nb)
{
	struct gap_geom gg = { H, W, g, W + g, H + g, 0, 0 };
	gg.lead = round16((size_t)g * gg.Wg + g);
	/* reads reach TN − 1 past the domain plus the bottom-right tap */
	gg.plane = round16(gg.lead + (size_t)nb * gg.Hg * gg.Wg + TN + g);
	return gg;
}

int gap_span(const struct gap_geom *gg, int nb)
{
	return (nb * gg->Hg - gg->g) * gg->Wg;
}

void gap_fill(float *dst, const float *src, int C, ptrdiff_t sample, int nb,
	      const struct gap_geom *gg)
{
	int H = gg->H, W = gg->W, g = gg->g;
	size_t hw = (size_t)H * W, pitch = (size_t)gg->Hg * gg->Wg, end = gg->lead + nb * pitch;
	for (int c = 0; c < C; c++) {
		float *pl = dst + (size_t)c * gg->plane;
		memset(pl, 0, gg->lead * sizeof(float));
		memset(pl + end, 0, (gg->plane - end) * sizeof(float));
	}
	/* sample by sample: the source is read in one sequential sweep */
	for (int n = 0; n < nb; n++)
		for (int c = 0; c < C; c++) {
			const float *xc = src + n * sample + c * hw;
			float *row = dst + (size_t)c * gg->plane + gg->lead + n * pitch;
			for (int h = 0; h < H; h++, row += gg->Wg) {
				copy_run(row, xc + (size_t)h * W, W);
				zero_run(row + W, g);
			}
			memset(row, 0, (size_t)g * gg->Wg * sizeof(float));
		}
}

void gap_offsets(int32_t *off, int C, int R, const struct gap_geom *gg)
{
	int g = gg->g;
	for (int c = 0; c < C; c++)
		for (int r = 0; r < R; r++)
			for (int s = 0; s < R; s++)
				off[(c * R + r) * R + s] =
					(int32_t)((ptrdiff_t)c * (ptrdiff_t)gg->plane +
						  (ptrdiff_t)(r - g) * gg->Wg + (s - g));
}

size_t direct_pack_len(int M, int kc)
{
	return (size_t)(M + MR - 1) / MR * MR * kc;
}

/* Panels of MR rows as [k][MR], rows ≥ M zero. */
void direct_pack(float *apk, const float *w, int M, int Cin, int RR, int flip)
{
	int kc = Cin * RR;
	for (int m0 = 0; m0 < M; m0 += MR)
		for (int k = 0; k < kc; k++)
			for (int i = 0; i < MR; i++) {
				int m = m0 + i, ci = k / RR, t = k % RR;
				float v = 0.0f;
				if (m < M)
					v = flip ? w[((size_t)ci * M + m) * RR + RR - 1 - t]
						 : w[(size_t)m * kc + k];
				apk[(size_t)m0 * kc + (size_t)k * MR + i] = v;
			}
}

/* ---- storing a tile ---------------------------------------------------- */

/* Lanes `mask` of one 16-lane vector, compressed, go to out + dst (+ the
 * row's offset): one run of consecutive valid positions. */
struct seg {
	uint16_t mask;
	int dst;
};

/* The runs of the TN lanes of a tile, per vector. */
struct tile_segs {
	int n[TN / 16];
	struct seg seg[TN / 16][16];
};

/* The position (n, p, q) of u, walked lane by lane. */
struct walker {
	int u, n, p, q;
};

/* Adds lanes [l, l + cnt) of the tile, valid and going to dst.., to ts. */
static void add_lanes(struct tile_segs *ts, int *end, int l, int cnt, int dst)
{
	while (cnt > 0) {
		int v = l / 16, at = l % 16, take = 16 - at < cnt ? 16 - at : cnt;
		if (!ts->n[v] || end[v] != dst) {
			ts->seg[v][ts->n[v]].mask = 0;
			ts->seg[v][ts->n[v]].dst = dst;
			ts->n[v]++;
		}
		ts->seg[v][ts->n[v] - 1].mask |= (uint16_t)(((1u << take) - 1) << at);
		end[v] = dst + take;
		l += take;
		dst += take;
		cnt -= take;
	}
}

/* Fills ts for the TN lanes from w->u (leaving w at the next tile), one
 * gapped row at a time. */
static void tile_runs(struct tile_segs *ts, struct walker *w, const struct gap_geom *gg,
		      int U, ptrdiff_t out_sample)
{
	int end[TN / 16];
	for (int v = 0; v < TN / 16; v++)
		ts->n[v] = 0;
	for (int l = 0; l < TN;) {
		int span = gg->Wg - w->q < TN - l ? gg->Wg - w->q : TN - l;
		if (w->p < gg->H && w->q < gg->W && w->u < U) {
			int valid = gg->W - w->q < span ? gg->W - w->q : span;
			if (valid > U - w->u)
				valid = U - w->u;
			add_lanes(ts, end, l, valid, (int)(w->n * out_sample) + w->p * gg->W + w->q);
		}
		l += span;
		w->u += span;
		w->q += span;
		if (w->q == gg->Wg) {
			w->q = 0;
			if (++w->p == gg->Hg) {
				w->p = 0;
				w->n++;
			}
		}
	}
}

/* ---- forward / dx tile ------------------------------------------------- */

typedef void tile_fn(int kc, const float *a, const float *b, const int32_t *off, float *out,
		     ptrdiff_t hw, int m, const struct tile_segs *ts, int accumulate);

static void tile_portable(int kc, const float *a, const float *b, const int32_t *off,
			  float *out, ptrdiff_t hw, int m, const struct tile_segs *ts,
			  int accumulate)
{
	float acc[MR][TN];
	memset(acc, 0, sizeof acc);
	for (int k = 0; k < kc; k++, a += MR) {
		const float *bk = b + off[k];
		for (int i = 0; i < MR; i++)
			for (int j = 0; j < TN; j++)
				acc[i][j] += a[i] * bk[j];
	}
	for (int i = 0; i < m; i++)
		for (int v = 0; v < TN / 16; v++)
			for (int s = 0; s < ts->n[v]; s++) {
				float *d = out + i * hw + ts->seg[v][s].dst;
				for (int l = 0; l < 16; l++)
					if (ts->seg[v][s].mask >> l & 1) {
						*d = accumulate ? *d + acc[i][16 * v + l] : acc[i][16 * v + l];
						d++;
					}
			}
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_AVX512 1
#define NV (TN / 16)

__attribute__((target("avx512f")))
static void tile_avx512(int kc, const float *a, const float *b, const int32_t *off,
			float *out, ptrdiff_t hw, int m, const struct tile_segs *ts, int accumulate)
{
	__m512 acc[MR][NV];
#pragma GCC unroll 8
	for (int i = 0; i < MR; i++)
#pragma GCC unroll 3
		for (int v = 0; v < NV; v++)
			acc[i][v] = _mm512_setzero_ps();
	for (int k = 0; k < kc; k++, a += MR) {
		const float *bk = b + off[k];
		__m512 bv[NV];
#pragma GCC unroll 3
		for (int v = 0; v < NV; v++)
			bv[v] = _mm512_loadu_ps(bk + 16 * v);
#pragma GCC unroll 8
		for (int i = 0; i < MR; i++) {
			__m512 ai = _mm512_set1_ps(a[i]);
#pragma GCC unroll 3
			for (int v = 0; v < NV; v++)
				acc[i][v] = _mm512_fmadd_ps(ai, bv[v], acc[i][v]);
		}
	}
#pragma GCC unroll 8
	for (int i = 0; i < MR; i++) {
		if (i >= m)
			break;
		float *row = out + i * hw;
#pragma GCC unroll 3
		for (int v = 0; v < NV; v++)
			for (int s = 0; s < ts->n[v]; s++) {
				__mmask16 lanes = ts->seg[v][s].mask;
				__mmask16 run = (__mmask16)((1u << __builtin_popcount(lanes)) - 1);
				float *d = row + ts->seg[v][s].dst;
				__m512 r = _mm512_maskz_compress_ps(lanes, acc[i][v]);
				if (accumulate)
					r = _mm512_add_ps(r, _mm512_maskz_loadu_ps(run, d));
				_mm512_mask_storeu_ps(d, run, r);
			}
	}
}
#endif

void direct_conv(float *out, ptrdiff_t out_sample, int accumulate, const float *apk, int M,
		 int kc, const float *in, const int32_t *off, const struct gap_geom *gg, int nb,
		 struct prefetch pf)
{
	tile_fn *tile = tile_portable;
#ifdef HAVE_AVX512
	if (gemm_simd())
		tile = tile_avx512;
#endif
	int U = gap_span(gg, nb);
	ptrdiff_t hw = (ptrdiff_t)gg->H * gg->W;
	const float *b = in + gg->lead;
	struct walker w = { 0, 0, 0, 0 };
	struct tile_segs ts;
	size_t tiles = (size_t)(U + TN - 1) / TN;
	for (int u0 = 0; u0 < U; u0 += TN) {
		prefetch_step(&pf, (size_t)u0 / TN, tiles);
		tile_runs(&ts, &w, gg, U, out_sample);
		for (int m0 = 0; m0 < M; m0 += MR)
			tile(kc, apk + (size_t)m0 * kc, b + u0, off, out + m0 * hw, hw,
			     M - m0 < MR ? M - m0 : MR, &ts, accumulate);
	}
}

/* ---- weight gradient --------------------------------------------------- */

/* sums[i·DK + j] = Σ_{t < len} a[i][t]·b[j][t]; len a multiple of 16. */
typedef void dot_fn(int len, const float *const *a, const float *const *b, float *sums);

static void dot_portable(int len, const float *const *a, const float *const *b, float *sums)
{
	for (int i = 0; i < DM; i++)
		for (int j = 0; j < DK; j++) {
			float lane[16] = { 0 };
			for (int t = 0; t < len; t++)
				lane[t % 16] += a[i][t] * b[j][t];
			float s = 0.0f;
			for (int l = 0; l < 16; l++)
				s += lane[l];
			sums[i * DK + j] = s;
		}
}

#ifdef HAVE_AVX512
__attribute__((target("avx512f")))
static void dot_avx512(int len, const float *const *a, const float *const *b, float *sums)
{
	const float *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3];
	const float *b0 = b[0], *b1 = b[1], *b2 = b[2], *b3 = b[3], *b4 = b[4], *b5 = b[5];
	__m512 acc[DM][DK];
#pragma GCC unroll 4
	for (int i = 0; i < DM; i++)
#pragma GCC unroll 6
		for (int j = 0; j < DK; j++)
			acc[i][j] = _mm512_setzero_ps();
	for (int t = 0; t < len; t += 16) {
		__m512 x[DM] = { _mm512_loadu_ps(a0 + t), _mm512_loadu_ps(a1 + t),
				 _mm512_loadu_ps(a2 + t), _mm512_loadu_ps(a3 + t) };
		__m512 y;
/* the empty asm keeps y in a register: otherwise GCC folds the load into
 * each of the four FMAs, four unaligned loads instead of one */
#define DOT_COL(j, bj)                                                   \
		y = _mm512_loadu_ps(bj + t);                             \
		__asm__("" : "+v"(y));                                   \
		acc[0][j] = _mm512_fmadd_ps(x[0], y, acc[0][j]);         \
		acc[1][j] = _mm512_fmadd_ps(x[1], y, acc[1][j]);         \
		acc[2][j] = _mm512_fmadd_ps(x[2], y, acc[2][j]);         \
		acc[3][j] = _mm512_fmadd_ps(x[3], y, acc[3][j]);
		DOT_COL(0, b0)
		DOT_COL(1, b1)
		DOT_COL(2, b2)
		DOT_COL(3, b3)
		DOT_COL(4, b4)
		DOT_COL(5, b5)
#undef DOT_COL
	}
#pragma GCC unroll 4
	for (int i = 0; i < DM; i++)
#pragma GCC unroll 6
		for (int j = 0; j < DK; j++)
			sums[i * DK + j] = _mm512_reduce_add_ps(acc[i][j]);
}
#endif

void direct_dw(float *dw, int fresh, const float *dyg, int M, const float *xg,
	       const int32_t *off, int kc, const struct gap_geom *gg, int nb, struct prefetch pf)
{
	dot_fn *dot = dot_portable;
#ifdef HAVE_AVX512
	if (gemm_simd())
		dot = dot_avx512;
#endif
	/* dyg is 0 from U to the end of its plane: run whole vectors */
	int len = (int)round16((size_t)gap_span(gg, nb));
	const float *x0 = xg + gg->lead;
	for (int m0 = 0; m0 < M; m0 += DM) {
		const float *a[DM], *b[DK];
		int mi = M - m0 < DM ? M - m0 : DM;
		/* missing rows and taps repeat the first; their sums are dropped */
		for (int i = 0; i < DM; i++)
			a[i] = dyg + (size_t)(m0 + (i < mi ? i : 0)) * gg->plane + gg->lead;
		for (int k0 = 0; k0 < kc; k0 += DK) {
			int kj = kc - k0 < DK ? kc - k0 : DK;
			float sums[DM * DK];
			size_t steps = (size_t)((M + DM - 1) / DM) * ((kc + DK - 1) / DK);
			prefetch_step(&pf, (size_t)(m0 / DM) * ((kc + DK - 1) / DK) + k0 / DK, steps);
			for (int j = 0; j < DK; j++)
				b[j] = x0 + off[k0 + (j < kj ? j : 0)];
			dot(len, a, b, sums);
			for (int i = 0; i < mi; i++)
				for (int j = 0; j < kj; j++) {
					float *d = dw + (size_t)(m0 + i) * kc + k0 + j;
					*d = fresh ? sums[i * DK + j] : *d + sums[i * DK + j];
				}
		}
	}
}

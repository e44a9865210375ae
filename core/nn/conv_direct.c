/*
 * core/nn/conv_direct.c — the direct convolution kernels on the chunk layout
 * (see conv_direct_impl.h for the layout and the math): the chunk copy
 * (with the polyphase split of a stride-2 input), the tap lists and their
 * mask tables, the forward / input-gradient product, the interleave of a
 * stride-2 input gradient's phases, and the weight gradient. Serial;
 * core/nn/conv2d.c splits samples over threads.
 *
 * Forward and dx: an MR×TN = 8×48 register tile of outputs Y[m][u0 + j],
 * one rank-1 update per tap k from 8 packed weights (broadcast) and the 48
 * values in[u0 + off[k] + j] read where they lie under the tap's lane masks
 * (zero where the tap falls into the padding): the "B panel" is the chunk
 * plane itself, so nothing is packed per product. Output u of sample n is
 * y[n][m][u − n·P·Q], so each 16-lane vector stores with at most two
 * masked stores (one per sample it touches).
 *
 * dw: each weight-gradient entry is a dot product over u of the row dY[m]
 * and the masked tap row of x; a 4×6 tile of such dot products keeps 24
 * vector accumulators, loads 4 + 6 vectors per 16 u for 24 FMAs, and
 * reduces the lanes once per chunk.
 */
#include "nn/conv_direct_impl.h"
#include "base/gemm_impl.h"
#include "base/simd_impl.h"
#include "base/cpu_impl.h"

#include <string.h>

#define MR 8            /* output rows per tile */
#define TN 48           /* output positions per tile */
#define DM 4            /* dw tile: rows of dY */
#define DK 6            /* dw tile: taps */

static size_t round_to(size_t x, size_t m)
{
	return (x + m - 1) / m * m;
}

/* x mod m in [0, m), and the matching floor(x / m). */
static int mod_floor(int x, int m, int *quot)
{
	int r = ((x % m) + m) % m;
	*quot = (x - r) / m;
	return r;
}

int direct_geom_make(struct direct_geom *dg, int H, int W, int R, int stride, int pad, int nb)
{
	if (R != 2 * pad + 1 || R > DIRECT_MAX_R || (stride != 1 && stride != 2) || nb < 1 ||
	    H < 1 || W < 1)
		return 0;
	struct direct_geom d = { H, W, (H - 1) / stride + 1, (W - 1) / stride + 1, 0, stride, pad,
				 R, nb, 0, 0, 0, 0 };
	d.PQ = d.P * d.Q;
	if (d.PQ < 16)
		return 0;
	size_t reach = (size_t)pad * d.Q + pad; /* farthest tap offset */
	/* masked-off lanes of a tile may point up to TN − 1 past the domain plus
	 * one reach; dw's unused tile columns two reaches from a valid lane */
	d.lead = round_to(2 * reach + TN, 16);
	d.plane = round_to((size_t)nb * d.PQ, 16);
	d.nvec = (int)(round_to((size_t)nb * d.PQ, TN) / 16);
	d.ms = (int)round_to((size_t)R * R, 8);
	*dg = d;
	return 1;
}

int direct_forward_taps(struct direct_tap *taps, const struct direct_geom *dg)
{
	int n = 0, st = dg->st;
	for (int r = 0; r < dg->R; r++)
		for (int s = 0; s < dg->R; s++) {
			int dp, dq, a = mod_floor(r - dg->g, st, &dp), b = mod_floor(s - dg->g, st, &dq);
			struct direct_tap t = { r * dg->R + s, a * st + b, dp, dq,
						st, r - dg->g, dg->H, s - dg->g, dg->W };
			taps[n++] = t;
		}
	return n;
}

int direct_dx_taps(struct direct_tap *taps, const struct direct_geom *dg, int a, int b)
{
	int n = 0, st = dg->st;
	for (int r = 0; r < dg->R; r++)
		for (int s = 0; s < dg->R; s++) {
			int dp, dq;
			if (mod_floor(r - dg->g, st, &dp) != a || mod_floor(s - dg->g, st, &dq) != b)
				continue;
			/* input (st·i + a, st·j + b) takes output (i − dp, j − dq) */
			struct direct_tap t = { r * dg->R + s, 0, -dp, -dq, 1, -dp, dg->P, -dq, dg->Q };
			taps[n++] = t;
		}
	return n;
}

size_t direct_buffer_len(const struct direct_geom *dg, int C, int input)
{
	return 2 * dg->lead + (size_t)C * (input ? dg->st * dg->st : 1) * dg->plane;
}

size_t direct_table_len(const struct direct_geom *dg)
{
	return (size_t)dg->nvec * dg->ms;
}

/* Row v, entry t: bit l set when u = 16·v + l is an output of the chunk
 * (u < nb·P·Q) at which tap t reads inside its image. */
void direct_table(uint16_t *tab, const struct direct_geom *dg, const struct direct_tap *taps,
		  int nt)
{
	size_t U = (size_t)dg->nb * dg->PQ;
	int p = 0, q = 0;
	memset(tab, 0, direct_table_len(dg) * sizeof *tab);
	for (size_t u = 0; u < U; u++) {
		uint16_t *row = tab + (u / 16) * dg->ms, bit = (uint16_t)(1u << (u % 16));
		for (int t = 0; t < nt; t++) {
			const struct direct_tap *k = &taps[t];
			int h = k->step * p + k->h0, w = k->step * q + k->w0;
			if (h >= 0 && h < k->hl && w >= 0 && w < k->wl)
				row[t] |= bit;
		}
		if (++q == dg->Q) {
			q = 0;
			if (++p == dg->P)
				p = 0;
		}
	}
}

void direct_offsets(int32_t *off, int C, int chan_planes, const struct direct_tap *taps, int nt,
		    const struct direct_geom *dg)
{
	for (int c = 0; c < C; c++)
		for (int t = 0; t < nt; t++)
			off[c * nt + t] = (int32_t)((ptrdiff_t)(c * chan_planes + taps[t].plane) *
							    (ptrdiff_t)dg->plane +
						    (ptrdiff_t)taps[t].dp * dg->Q + taps[t].dq);
}

/* even[j] = src[2j], odd[j] = src[2j + 1] for 2j (+1) < W, 0 past W; j < (W + 1)/2. */
static void split_row_portable(float *even, float *odd, const float *src, int W)
{
	for (int j = 0; j < (W + 1) / 2; j++) {
		even[j] = src[2 * j];
		odd[j] = 2 * j + 1 < W ? src[2 * j + 1] : 0.0f;
	}
}

#if CPU_HAVE_AVX512
CPU_AVX512_TARGET static void split_row_avx512(float *even, float *odd, const float *src, int W)
{
	int Q = (W + 1) / 2;
	const __m512i ie = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
	const __m512i io = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
	for (int j = 0; j < Q; j += 16) {
		int left = W - 2 * j, take = Q - j < 16 ? Q - j : 16;
		__mmask16 m0 = left >= 16 ? 0xffff : (__mmask16)((1u << left) - 1);
		__mmask16 m1 = left >= 32 ? 0xffff : left <= 16 ? 0 : (__mmask16)((1u << (left - 16)) - 1);
		__m512 lo = _mm512_maskz_loadu_ps(m0, src + 2 * j);
		__m512 hi = _mm512_maskz_loadu_ps(m1, src + 2 * j + 16);
		__mmask16 out = (__mmask16)((1u << take) - 1);
		_mm512_mask_storeu_ps(even + j, out, _mm512_permutex2var_ps(lo, ie, hi));
		_mm512_mask_storeu_ps(odd + j, out, _mm512_permutex2var_ps(lo, io, hi));
	}
}
#endif

static void split_row(float *even, float *odd, const float *src, int W)
{
#if CPU_HAVE_AVX512
	if (cpu_avx512()) {
		split_row_avx512(even, odd, src, W);
		return;
	}
#endif
	split_row_portable(even, odd, src, W);
}

/* Whether a tap reads input rows (or columns) of parity a under stride 2:
 * a 1×1 kernel reads only the even ones, so the odd phases are never read
 * (and never written). */
static int parity_used(const struct direct_geom *dg, int a)
{
	return dg->R > 1 || a == 0;
}

void direct_fill(float *buf, const float *src, int C, ptrdiff_t sample, int nb, int input,
		 const struct direct_geom *dg)
{
	int st = input ? dg->st : 1, planes = C * st * st, pq = dg->PQ;
	float *pl = buf + dg->lead;
	memset(buf, 0, dg->lead * sizeof(float));
	memset(pl + (size_t)planes * dg->plane, 0, dg->lead * sizeof(float));
	/* sample by sample: the source is read in one sequential sweep */
	for (int n = 0; n < nb; n++)
		for (int c = 0; c < C; c++) {
			if (st == 1) {
				copy_run(pl + (size_t)c * dg->plane + (size_t)n * pq,
					 src + n * sample + (size_t)c * pq, pq);
				continue;
			}
			const float *xc = src + n * sample + (size_t)c * dg->H * dg->W;
			float *ph = pl + (size_t)c * 4 * dg->plane + (size_t)n * pq;
			for (int i = 0; i < dg->P; i++)
				for (int a = 0; a < 2; a++) {
					float *even = ph + (size_t)(2 * a) * dg->plane + (size_t)i * dg->Q;
					float *odd = even + dg->plane;
					if (!parity_used(dg, a))
						continue;
					if (2 * i + a < dg->H) {
						split_row(even, odd, xc + (size_t)(2 * i + a) * dg->W, dg->W);
					} else {
						zero_run(even, dg->Q);
						zero_run(odd, dg->Q);
					}
				}
		}
	size_t used = (size_t)nb * pq;
	for (int c = 0; c < planes; c++)
		if (st == 1 || parity_used(dg, c % 4 / 2))
			memset(pl + (size_t)c * dg->plane + used, 0, (dg->plane - used) * sizeof(float));
}

void direct_fill_runs(float *buf, int C, int nb, const struct direct_geom *dg,
		      direct_run_fn *run, void *ctx)
{
	float *pl = buf + dg->lead;
	size_t used = (size_t)nb * dg->PQ;
	memset(buf, 0, dg->lead * sizeof(float));
	memset(pl + (size_t)C * dg->plane, 0, dg->lead * sizeof(float));
	for (int n = 0; n < nb; n++)
		for (int c = 0; c < C; c++)
			run(ctx, pl + (size_t)c * dg->plane + (size_t)n * dg->PQ, n, c, dg->PQ);
	for (int c = 0; c < C; c++)
		memset(pl + (size_t)c * dg->plane + used, 0, (dg->plane - used) * sizeof(float));
}

/* dst[w] (+)= (w even ? even : odd)[w / 2] for w < W; a NULL source is 0. */
static void merge_row_portable(float *dst, const float *even, const float *odd, int W,
			       int accumulate)
{
	for (int w = 0; w < W; w++) {
		const float *s = w % 2 ? odd : even;
		float v = s ? s[w / 2] : 0.0f;
		dst[w] = accumulate ? dst[w] + v : v;
	}
}

#if CPU_HAVE_AVX512
CPU_AVX512_TARGET static void merge_row_avx512(float *dst, const float *even, const float *odd,
					       int W, int accumulate)
{
	const __m512i il = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
	const __m512i ih = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9,
					    24, 8);
	for (int w = 0; w < W; w += 32) {
		int left = W - w, half = (left + 1) / 2 < 16 ? (left + 1) / 2 : 16;
		__mmask16 hm = (__mmask16)((1u << half) - 1);
		__m512 e = even ? _mm512_maskz_loadu_ps(hm, even + w / 2) : _mm512_setzero_ps();
		__m512 o = odd ? _mm512_maskz_loadu_ps(hm, odd + w / 2) : _mm512_setzero_ps();
		__mmask16 m0 = left >= 16 ? 0xffff : (__mmask16)((1u << left) - 1);
		__mmask16 m1 = left >= 32 ? 0xffff : left <= 16 ? 0 : (__mmask16)((1u << (left - 16)) - 1);
		__m512 lo = _mm512_permutex2var_ps(e, il, o), hi = _mm512_permutex2var_ps(e, ih, o);
		if (accumulate) {
			lo = _mm512_add_ps(lo, _mm512_maskz_loadu_ps(m0, dst + w));
			hi = _mm512_add_ps(hi, _mm512_maskz_loadu_ps(m1, dst + w + 16));
		}
		_mm512_mask_storeu_ps(dst + w, m0, lo);
		_mm512_mask_storeu_ps(dst + w + 16, m1, hi);
	}
}
#endif

static void merge_row(float *dst, const float *even, const float *odd, int W, int accumulate)
{
#if CPU_HAVE_AVX512
	if (cpu_avx512()) {
		merge_row_avx512(dst, even, odd, W, accumulate);
		return;
	}
#endif
	merge_row_portable(dst, even, odd, W, accumulate);
}

void direct_interleave(float *dx, int accumulate, const float *buf, int C, int nb,
		       unsigned present, const struct direct_geom *dg)
{
	const float *pl = buf + dg->lead;
	size_t hw = (size_t)dg->H * dg->W;
	for (int n = 0; n < nb; n++)
		for (int c = 0; c < C; c++)
			for (int h = 0; h < dg->H; h++) {
				int a = h % 2, i = h / 2;
				const float *src[2];
				if (accumulate && !(present >> (2 * a) & 3))
					continue; /* nothing to add to this row */
				for (int b = 0; b < 2; b++)
					src[b] = present >> (2 * a + b) & 1
						? pl + (size_t)(c * 4 + 2 * a + b) * dg->plane +
							  (size_t)n * dg->PQ + (size_t)i * dg->Q
						: NULL;
				merge_row(dx + ((size_t)n * C + c) * hw + (size_t)h * dg->W, src[0],
					  src[1], dg->W, accumulate);
			}
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

/* A prefetch spread over `steps` steps: each step takes the next `per`
 * bytes (whole lines) of every range, so a step costs no division. */
struct prefetch_walk {
	const struct prefetch *pf;
	size_t per[PREFETCH_RANGES], at[PREFETCH_RANGES];
};

static struct prefetch_walk prefetch_plan(const struct prefetch *pf, size_t steps)
{
	struct prefetch_walk w = { pf, { 0 }, { 0 } };
	for (int i = 0; i < pf->n; i++)
		w.per[i] = (pf->r[i].len / (steps ? steps : 1) + 64) & ~(size_t)63;
	return w;
}

static void prefetch_step(struct prefetch_walk *w)
{
	for (int i = 0; i < w->pf->n; i++) {
		const char *p = w->pf->r[i].p;
		size_t lo = w->at[i], len = w->pf->r[i].len;
		size_t hi = lo + w->per[i] < len ? lo + w->per[i] : len;
		for (size_t b = lo; b < hi; b += 64)
			prefetch_line(p + b);
		w->at[i] = hi;
	}
}

size_t direct_pack_len(int M, int kc)
{
	return (size_t)(M + MR - 1) / MR * MR * kc;
}

/* Panels of MR rows as [k][MR], rows ≥ M zero. */
void direct_pack(float *apk, const float *w, int M, int Cin, int RR,
		 const struct direct_tap *taps, int nt, int transpose)
{
	int kc = Cin * nt;
	for (int m0 = 0; m0 < M; m0 += MR)
		for (int k = 0; k < kc; k++)
			for (int i = 0; i < MR; i++) {
				int m = m0 + i, ci = k / nt, rs = taps[k % nt].rs;
				float v = 0.0f;
				if (m < M)
					v = transpose ? w[((size_t)ci * M + m) * RR + rs]
						      : w[((size_t)m * Cin + ci) * RR + rs];
				apk[(size_t)m0 * kc + (size_t)k * MR + i] = v;
			}
}

/* ---- forward / dx tile ------------------------------------------------- */

/* Where the 16 lanes of one vector of a tile go: lanes `lo` (sample n0) to
 * out + d0 + lane, lanes `hi` (sample n0 + 1) to out + d1 + lane, for
 * output row 0 (row i adds i·H·W); outputs past the chunk in neither. */
struct vec_out {
	ptrdiff_t d0, d1;
	uint16_t lo, hi;
};

static void tile_out(struct vec_out *vo, int u0, int U, int hw, ptrdiff_t out_sample)
{
	for (int v = 0; v < TN / 16; v++) {
		int u = u0 + 16 * v;
		if (u >= U) {
			vo[v].lo = vo[v].hi = 0;
			vo[v].d0 = vo[v].d1 = 0;
			continue;
		}
		int n0 = u / hw, first = (n0 + 1) * hw - u, clip = U - u;
		uint32_t all = clip >= 16 ? 0xffffu : (1u << clip) - 1;
		uint32_t lo = first >= 16 ? 0xffffu : (1u << first) - 1;
		vo[v].lo = (uint16_t)(lo & all);
		vo[v].hi = (uint16_t)(~lo & all);
		vo[v].d0 = n0 * out_sample + (u - (ptrdiff_t)n0 * hw);
		vo[v].d1 = vo[v].d0 + out_sample - hw;
	}
}

/*
 * Y[0..m)[u0 .. u0 + TN) (+)= Σ_k a[k][·] ⊗ masked b[off[k] .. + TN): a the
 * packed panel, b the chunk plane at u0, mt the mask table at u0's row
 * (tap k's masks at mt[t], mt[ms + t], mt[2·ms + t], t = k mod nt).
 */
typedef void tile_fn(int kc, int nt, const float *a, const float *b, const int32_t *off,
		     const uint16_t *mt, int ms, float *out, ptrdiff_t hw, int m,
		     const struct vec_out *vo, int accumulate);

static void tile_portable(int kc, int nt, const float *a, const float *b, const int32_t *off,
			  const uint16_t *mt, int ms, float *out, ptrdiff_t hw, int m,
			  const struct vec_out *vo, int accumulate)
{
	float acc[MR][TN];
	memset(acc, 0, sizeof acc);
	for (int k = 0; k < kc; k++, a += MR) {
		const float *bk = b + off[k];
		int t = k % nt;
		for (int j = 0; j < TN; j++) {
			if (!(mt[(j / 16) * ms + t] >> (j % 16) & 1))
				continue;
			for (int i = 0; i < MR; i++)
				acc[i][j] += a[i] * bk[j];
		}
	}
	for (int i = 0; i < m; i++)
		for (int j = 0; j < TN; j++) {
			const struct vec_out *o = &vo[j / 16];
			int l = j % 16;
			float *d;
			if (o->lo >> l & 1)
				d = out + i * hw + o->d0 + l;
			else if (o->hi >> l & 1)
				d = out + i * hw + o->d1 + l;
			else
				continue;
			*d = accumulate ? *d + acc[i][j] : acc[i][j];
		}
}

#if CPU_HAVE_AVX512
#define NV (TN / 16)

/* A tile's accumulators to its first m output rows (tile_fn). */
CPU_AVX512_TARGET __attribute__((always_inline))
static inline void tile_store(__m512 acc[MR][NV], float *out, ptrdiff_t hw, int m,
			      const struct vec_out *vo, int accumulate)
{
#pragma GCC unroll 8
	for (int i = 0; i < MR; i++) {
		if (i >= m)
			break;
		float *row = out + i * hw;
#pragma GCC unroll 3
		for (int v = 0; v < NV; v++) {
			__mmask16 lo = vo[v].lo, hi = vo[v].hi;
			__m512 r = acc[i][v];
			if (accumulate)
				r = _mm512_add_ps(r, _mm512_maskz_loadu_ps(lo, row + vo[v].d0));
			_mm512_mask_storeu_ps(row + vo[v].d0, lo, r);
			if (hi) {
				r = acc[i][v];
				if (accumulate)
					r = _mm512_add_ps(r, _mm512_maskz_loadu_ps(hi, row + vo[v].d1));
				_mm512_mask_storeu_ps(row + vo[v].d1, hi, r);
			}
		}
	}
}

CPU_AVX512_TARGET
static void tile_avx512(int kc, int nt, const float *a, const float *b, const int32_t *off,
			const uint16_t *mt, int ms, float *out, ptrdiff_t hw, int m,
			const struct vec_out *vo, int accumulate)
{
	__m512 acc[MR][NV];
#pragma GCC unroll 8
	for (int i = 0; i < MR; i++)
#pragma GCC unroll 3
		for (int v = 0; v < NV; v++)
			acc[i][v] = _mm512_setzero_ps();
	const uint16_t *m0 = mt, *m1 = mt + ms, *m2 = mt + 2 * ms;
	for (int k = 0, t = 0; k < kc; k++, a += MR) {
		const float *bk = b + off[k];
		__m512 bv[NV] = { _mm512_maskz_loadu_ps(m0[t], bk), _mm512_maskz_loadu_ps(m1[t], bk + 16),
				  _mm512_maskz_loadu_ps(m2[t], bk + 32) };
		if (++t == nt)
			t = 0;
#pragma GCC unroll 8
		for (int i = 0; i < MR; i++) {
			__m512 ai = _mm512_set1_ps(a[i]);
#pragma GCC unroll 3
			for (int v = 0; v < NV; v++)
				acc[i][v] = _mm512_fmadd_ps(ai, bv[v], acc[i][v]);
		}
	}
	tile_store(acc, out, hw, m, vo, accumulate);
}

/*
 * The bf16 tile (pairs of channels, conv_direct_impl.h): per pair step,
 * three masked loads of 16 words and 24 vdpbf16ps, each adding both
 * channels' products to the fp32 accumulators.
 */
CPU_BF16_TARGET
static void tile_bf16(int kc, int nt, const float *ap, const float *bp, const int32_t *off,
		      const uint16_t *mt, int ms, float *out, ptrdiff_t hw, int m,
		      const struct vec_out *vo, int accumulate)
{
	const int32_t *a = (const int32_t *)ap, *b = (const int32_t *)bp;
	__m512 acc[MR][NV];
#pragma GCC unroll 8
	for (int i = 0; i < MR; i++)
#pragma GCC unroll 3
		for (int v = 0; v < NV; v++)
			acc[i][v] = _mm512_setzero_ps();
	const uint16_t *m0 = mt, *m1 = mt + ms, *m2 = mt + 2 * ms;
	for (int k = 0, t = 0; k < kc; k++, a += MR) {
		const int32_t *bk = b + off[k];
		__m512bh bv[NV] = { (__m512bh)_mm512_maskz_loadu_epi32(m0[t], bk),
				    (__m512bh)_mm512_maskz_loadu_epi32(m1[t], bk + 16),
				    (__m512bh)_mm512_maskz_loadu_epi32(m2[t], bk + 32) };
		if (++t == nt)
			t = 0;
#pragma GCC unroll 8
		for (int i = 0; i < MR; i++) {
			__m512bh ai = (__m512bh)_mm512_set1_epi32(a[i]);
#pragma GCC unroll 3
			for (int v = 0; v < NV; v++)
				acc[i][v] = _mm512_dpbf16_ps(acc[i][v], ai, bv[v]);
		}
	}
	tile_store(acc, out, hw, m, vo, accumulate);
}

/* The 16-bit lanes of vcvtne2ps2bf16(b, a) (a's 16 values, then b's)
 * interleaved: lane 2t ← a[t], lane 2t + 1 ← b[t]. */
CPU_AVX512_TARGET
static inline __m512i pair_mix(void)
{
	return _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7,
				22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
}

CPU_BF16_TARGET
void direct_pairs(uint32_t *dst, const float *buf, int C, int input,
		  const struct direct_geom *dg)
{
	int chp = input ? dg->st * dg->st : 1, np = (C + 1) / 2;
	const __m512i mix = pair_mix();
	memset(dst, 0, dg->lead * sizeof *dst);
	memset(dst + dg->lead + (size_t)np * chp * dg->plane, 0, dg->lead * sizeof *dst);
	for (int p = 0; p < np; p++)
		for (int q = 0; q < chp; q++) {
			const float *x0 = buf + dg->lead + ((size_t)2 * p * chp + q) * dg->plane;
			const float *x1 = 2 * p + 1 < C ? x0 + (size_t)chp * dg->plane : NULL;
			uint32_t *d = dst + dg->lead + ((size_t)p * chp + q) * dg->plane;
			for (size_t u = 0; u < dg->plane; u += 16) {
				__m512 lo = _mm512_loadu_ps(x0 + u);
				__m512 hi = x1 ? _mm512_loadu_ps(x1 + u) : _mm512_setzero_ps();
				__m512i h = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
				_mm512_storeu_si512(d + u, _mm512_permutexvar_epi16(mix, h));
			}
		}
}
#endif

/* x as bfloat16 bits, round to nearest even (NaN stays NaN). */
static uint32_t bf16_bits(float x)
{
	uint32_t u;
	memcpy(&u, &x, sizeof u);
	if ((u & 0x7fffffffu) > 0x7f800000u)
		return (u >> 16) | 0x40u;
	return (u + 0x7fffu + (u >> 16 & 1u)) >> 16;
}

size_t direct_pairs_len(const struct direct_geom *dg, int C, int input)
{
	return direct_buffer_len(dg, (C + 1) / 2, input);
}

/* In place: pair step k2 = p·nt + t of a panel is written at or before
 * where its first source row (k = 2p·nt + t ≥ k2) was, and after every row
 * an earlier step read, so each row is read before it is overwritten. */
void direct_pack_pairs(float *apk, int M, int Cin, int nt)
{
	int kc = Cin * nt, np = (Cin + 1) / 2, kc2 = np * nt;
	for (int m0 = 0; m0 < M; m0 += MR) {
		const float *src = apk + (size_t)m0 * kc;
		char *dst = (char *)(apk + (size_t)m0 * kc2);
		for (int p = 0; p < np; p++)
			for (int t = 0; t < nt; t++) {
				uint32_t w[MR];
				const float *r0 = src + (size_t)(2 * p * nt + t) * MR;
				const float *r1 = src + (size_t)((2 * p + 1) * nt + t) * MR;
				for (int i = 0; i < MR; i++)
					w[i] = bf16_bits(r0[i]) |
					       (2 * p + 1 < Cin ? bf16_bits(r1[i]) << 16 : 0u);
				memcpy(dst + (size_t)(p * nt + t) * MR * sizeof w[0], w, sizeof w);
			}
	}
}

static void conv_tiles(tile_fn *tile, float *out, ptrdiff_t out_sample, ptrdiff_t out_row,
		       int accumulate, const float *apk, int M, int kc, int nt, const float *in,
		       const int32_t *off, const uint16_t *tab, const struct direct_geom *dg, int nb,
		       struct prefetch pf);

void direct_conv(float *out, ptrdiff_t out_sample, ptrdiff_t out_row, int accumulate,
		 const float *apk, int M, int kc, int nt, const float *in, const int32_t *off,
		 const uint16_t *tab, const struct direct_geom *dg, int nb, struct prefetch pf)
{
	tile_fn *tile = tile_portable;
#if CPU_HAVE_AVX512
	if (cpu_avx512())
		tile = tile_avx512;
#endif
	conv_tiles(tile, out, out_sample, out_row, accumulate, apk, M, kc, nt, in, off, tab, dg,
		   nb, pf);
}

void direct_conv_bf16(float *out, ptrdiff_t out_sample, ptrdiff_t out_row, int accumulate,
		      const float *apk, int M, int kc, int nt, const uint32_t *in,
		      const int32_t *off, const uint16_t *tab, const struct direct_geom *dg,
		      int nb, struct prefetch pf)
{
#if CPU_HAVE_AVX512
	/* the word buffer goes through the tiles' float pointer untouched:
	 * only tile_bf16 reads it, as 32-bit words */
	conv_tiles(tile_bf16, out, out_sample, out_row, accumulate, apk, M, kc, nt,
		   (const float *)(const void *)in, off, tab, dg, nb, pf);
#endif
}

static void conv_tiles(tile_fn *tile, float *out, ptrdiff_t out_sample, ptrdiff_t out_row,
		       int accumulate, const float *apk, int M, int kc, int nt, const float *in,
		       const int32_t *off, const uint16_t *tab, const struct direct_geom *dg, int nb,
		       struct prefetch pf)
{
	int U = nb * dg->PQ;
	const float *b = in + dg->lead;
	struct prefetch_walk pw = prefetch_plan(&pf, (size_t)(U + TN - 1) / TN);
	struct vec_out vo[TN / 16];
	for (int u0 = 0; u0 < U; u0 += TN) {
		prefetch_step(&pw);
		tile_out(vo, u0, U, dg->PQ, out_sample);
		const uint16_t *mt = tab + (size_t)(u0 / 16) * dg->ms;
		for (int m0 = 0; m0 < M; m0 += MR)
			tile(kc, nt, apk + (size_t)m0 * kc, b + u0, off, mt, dg->ms, out + m0 * out_row,
			     out_row, M - m0 < MR ? M - m0 : MR, vo, accumulate);
	}
}

/* ---- weight gradient --------------------------------------------------- */

/*
 * A dw tile: DM rows of dY (a) against DK columns, column j reading x at
 * b[j] under the mask of table entry mask[j] and summing into o[j] of each
 * dw row. Columns from kj on repeat a valid column (same pointer and mask);
 * their sums are dropped. Which columns share a mask decides the kernel:
 * 1×1 kernels take one tap of DK channels (one mask), 3×3 ones the three
 * taps of one kernel row in DK/3 channels (three masks: x rows of nearby
 * columns, all in L1 with a's rows), others DK consecutive taps.
 */
struct dw_cols {
	const float *b[DK];
	int mask[DK], kj;
	ptrdiff_t o[DK];
};

/* d[i·ld + o[j]] (= when fresh, else +=) Σ_{v < nvec} Σ_l a[i][16v + l]·
 * [tab[v·ms + mask[j]] bit l]·b[j][16v + l], for i < mi, j < kj. */
typedef void dot_fn(int nvec, const float *const *a, const struct dw_cols *c,
		    const uint16_t *tab, int ms, float *d, ptrdiff_t ld, int mi, int fresh);

static void dot_portable(int nvec, const float *const *a, const struct dw_cols *c,
			 const uint16_t *tab, int ms, float *d, ptrdiff_t ld, int mi, int fresh)
{
	for (int i = 0; i < mi; i++)
		for (int j = 0; j < c->kj; j++) {
			float lane[16] = { 0 };
			for (int v = 0; v < nvec; v++)
				for (int l = 0; l < 16; l++)
					if (tab[(size_t)v * ms + c->mask[j]] >> l & 1)
						lane[l] += a[i][16 * v + l] * c->b[j][16 * v + l];
			float s = 0.0f;
			for (int l = 0; l < 16; l++)
				s += lane[l];
			float *o = d + i * ld + c->o[j];
			*o = fresh ? s : *o + s;
		}
}

#if CPU_HAVE_AVX512
/*
 * The lane sums of 16 vectors in one: halves of 256 bits, then of 128 bits
 * (block shuffles), then of 64 and 32 bits (in-block shuffles), each level
 * pairing vectors so that every add serves two of them: 45 operations
 * instead of 16 separate reductions. Lane 4·b + l holds the sum of a[4·l + b].
 */
CPU_AVX512_TARGET
static inline __m512 reduce16(const __m512 *a)
{
	__m512 t[8], u[4], w[2];
	for (int i = 0; i < 8; i++)
		t[i] = _mm512_add_ps(_mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], 0x44),
				     _mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], 0xee));
	for (int j = 0; j < 4; j++)
		u[j] = _mm512_add_ps(_mm512_shuffle_f32x4(t[2 * j], t[2 * j + 1], 0x88),
				     _mm512_shuffle_f32x4(t[2 * j], t[2 * j + 1], 0xdd));
	for (int k = 0; k < 2; k++)
		w[k] = _mm512_add_ps(_mm512_shuffle_ps(u[2 * k], u[2 * k + 1], 0x44),
				     _mm512_shuffle_ps(u[2 * k], u[2 * k + 1], 0xee));
	return _mm512_add_ps(_mm512_shuffle_ps(w[0], w[1], 0x88), _mm512_shuffle_ps(w[0], w[1], 0xdd));
}

/*
 * The AVX-512 tile for columns whose masks repeat with period nm (column j
 * uses the mask of column j mod nm): nm mask loads per 16 u. Inlined into
 * one function per period, so that nm and every index are constants and the
 * 24 accumulators live in registers. The empty asm keeps each loaded x
 * vector in a register; otherwise GCC folds the load into each of the four
 * FMAs, four unaligned loads instead of one.
 */
CPU_AVX512_TARGET __attribute__((always_inline))
static inline void dot_body(int nvec, const float *const *a, const struct dw_cols *c,
			    const uint16_t *mp, int ms, float *d, ptrdiff_t ld, int mi, int fresh,
			    const int nm)
{
	const float *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3];
	const float *b0 = c->b[0], *b1 = c->b[1], *b2 = c->b[2], *b3 = c->b[3];
	const float *b4 = c->b[4], *b5 = c->b[5];
	int m0 = c->mask[0], m1 = c->mask[nm > 1], m2 = c->mask[nm > 2 ? 2 : 0];
	int m3 = c->mask[nm > 3 ? 3 : 0], m4 = c->mask[nm > 4 ? 4 : 0], m5 = c->mask[nm > 5 ? 5 : 0];
	__m512 acc[DM][DK];
#pragma GCC unroll 4
	for (int i = 0; i < DM; i++)
#pragma GCC unroll 6
		for (int j = 0; j < DK; j++)
			acc[i][j] = _mm512_setzero_ps();
	for (int t = 0; t < 16 * nvec; t += 16, mp += ms) {
		__mmask16 k0 = mp[m0], k1 = nm > 1 ? mp[m1] : k0, k2 = nm > 2 ? mp[m2] : k0;
		__mmask16 k3 = nm == 6 ? mp[m3] : nm == 3 ? k0 : k0;
		__mmask16 k4 = nm == 6 ? mp[m4] : nm == 3 ? k1 : k0;
		__mmask16 k5 = nm == 6 ? mp[m5] : nm == 3 ? k2 : k0;
		__m512 x0 = _mm512_loadu_ps(a0 + t), x1 = _mm512_loadu_ps(a1 + t);
		__m512 x2 = _mm512_loadu_ps(a2 + t), x3 = _mm512_loadu_ps(a3 + t);
		__m512 y;
#define DOT_COL(j, bj, kj)                                                   \
		y = _mm512_maskz_loadu_ps(kj, bj + t);                       \
		__asm__("" : "+v"(y));                                       \
		acc[0][j] = _mm512_fmadd_ps(x0, y, acc[0][j]);               \
		acc[1][j] = _mm512_fmadd_ps(x1, y, acc[1][j]);               \
		acc[2][j] = _mm512_fmadd_ps(x2, y, acc[2][j]);               \
		acc[3][j] = _mm512_fmadd_ps(x3, y, acc[3][j]);
		DOT_COL(0, b0, k0)
		DOT_COL(1, b1, k1)
		DOT_COL(2, b2, k2)
		DOT_COL(3, b3, k3)
		DOT_COL(4, b4, k4)
		DOT_COL(5, b5, k5)
#undef DOT_COL
	}
	__m512 v[32];
#pragma GCC unroll 4
	for (int i = 0; i < DM; i++)
#pragma GCC unroll 6
		for (int j = 0; j < DK; j++)
			v[i * DK + j] = acc[i][j];
#pragma GCC unroll 8
	for (int i = DM * DK; i < 32; i++)
		v[i] = _mm512_setzero_ps();
	/* lane 4·b + l of a reduce16 holds vector 4·l + b: permute back, so
	 * that out[i·DK + j] is the sum of acc[i][j] */
	const __m512i back = _mm512_set_epi32(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0);
	float out[32];
	_mm512_storeu_ps(out, _mm512_permutexvar_ps(back, reduce16(v)));
	_mm512_storeu_ps(out + 16, _mm512_permutexvar_ps(back, reduce16(v + 16)));
	for (int i = 0; i < mi; i++)
		for (int j = 0; j < c->kj; j++) {
			float *o = d + i * ld + c->o[j];
			*o = fresh ? out[i * DK + j] : *o + out[i * DK + j];
		}
}

CPU_AVX512_TARGET
static void dot_avx512_1(int nvec, const float *const *a, const struct dw_cols *c,
			 const uint16_t *tab, int ms, float *d, ptrdiff_t ld, int mi, int fresh)
{
	dot_body(nvec, a, c, tab, ms, d, ld, mi, fresh, 1);
}

CPU_AVX512_TARGET
static void dot_avx512_3(int nvec, const float *const *a, const struct dw_cols *c,
			 const uint16_t *tab, int ms, float *d, ptrdiff_t ld, int mi, int fresh)
{
	dot_body(nvec, a, c, tab, ms, d, ld, mi, fresh, 3);
}

CPU_AVX512_TARGET
static void dot_avx512_6(int nvec, const float *const *a, const struct dw_cols *c,
			 const uint16_t *tab, int ms, float *d, ptrdiff_t ld, int mi, int fresh)
{
	dot_body(nvec, a, c, tab, ms, d, ld, mi, fresh, 6);
}
#endif

#if CPU_HAVE_AVX512
CPU_BF16_TARGET
void direct_halves(uint16_t *dst, const float *buf, size_t n)
{
	size_t i = 0;
	/* vcvtne2ps2bf16(b, a) holds a's 16 values, then b's: in order */
	for (; i + 32 <= n; i += 32)
		_mm512_storeu_si512(dst + i, (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(buf + i + 16),
									  _mm512_loadu_ps(buf + i)));
	for (; i < n; i++) {
		uint32_t h = bf16_bits(buf[i]);
		dst[i] = (uint16_t)h;
	}
}

/*
 * dot_body on bf16 copies: 32 u per step, each vdpbf16ps adding the
 * products of two neighbouring u to one fp32 lane; an odd last vector runs
 * with its upper 16 lanes off. m32[s·nm + j]: the 32-bit mask of step s for
 * columns j, j + nm, … (both mask rows of the step, built once per column
 * tile by dw_masks: every row tile of dY reuses them).
 */
CPU_BF16_TARGET __attribute__((always_inline))
static inline void dotb_body(int nvec, const uint16_t *const *a, const uint16_t *const *b,
			     const struct dw_cols *c, const uint32_t *m32, float *d,
			     ptrdiff_t ld, int mi, int fresh, const int nm)
{
	const uint16_t *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3];
	__m512 acc[DM][DK];
#pragma GCC unroll 4
	for (int i = 0; i < DM; i++)
#pragma GCC unroll 6
		for (int j = 0; j < DK; j++)
			acc[i][j] = _mm512_setzero_ps();
	/* whole steps of 32 u: plain loads of dY, then an odd last vector */
	int full = 16 * (nvec & ~1);
	for (int t = 0; t < 16 * nvec; t += 32, m32 += nm) {
		__m512bh x[DM];
		if (t < full) {
			x[0] = (__m512bh)_mm512_loadu_si512(a0 + t);
			x[1] = (__m512bh)_mm512_loadu_si512(a1 + t);
			x[2] = (__m512bh)_mm512_loadu_si512(a2 + t);
			x[3] = (__m512bh)_mm512_loadu_si512(a3 + t);
		} else {
			x[0] = (__m512bh)_mm512_maskz_loadu_epi16(0xffffu, a0 + t);
			x[1] = (__m512bh)_mm512_maskz_loadu_epi16(0xffffu, a1 + t);
			x[2] = (__m512bh)_mm512_maskz_loadu_epi16(0xffffu, a2 + t);
			x[3] = (__m512bh)_mm512_maskz_loadu_epi16(0xffffu, a3 + t);
		}
#pragma GCC unroll 6
		for (int j = 0; j < DK; j++) {
			__m512i yi = _mm512_maskz_loadu_epi16(m32[j % nm], b[j] + t);
			__asm__("" : "+v"(yi));
			__m512bh y = (__m512bh)yi;
#pragma GCC unroll 4
			for (int i = 0; i < DM; i++)
				acc[i][j] = _mm512_dpbf16_ps(acc[i][j], x[i], y);
		}
	}
	__m512 v[32];
#pragma GCC unroll 4
	for (int i = 0; i < DM; i++)
#pragma GCC unroll 6
		for (int j = 0; j < DK; j++)
			v[i * DK + j] = acc[i][j];
#pragma GCC unroll 8
	for (int i = DM * DK; i < 32; i++)
		v[i] = _mm512_setzero_ps();
	const __m512i back = _mm512_set_epi32(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0);
	float out[32];
	_mm512_storeu_ps(out, _mm512_permutexvar_ps(back, reduce16(v)));
	_mm512_storeu_ps(out + 16, _mm512_permutexvar_ps(back, reduce16(v + 16)));
	for (int i = 0; i < mi; i++)
		for (int j = 0; j < c->kj; j++) {
			float *o = d + i * ld + c->o[j];
			*o = fresh ? out[i * DK + j] : *o + out[i * DK + j];
		}
}

typedef void dotb_fn(int nvec, const uint16_t *const *a, const uint16_t *const *b,
		     const struct dw_cols *c, const uint32_t *m32, float *d, ptrdiff_t ld,
		     int mi, int fresh);

CPU_BF16_TARGET
static void dotb_1(int nvec, const uint16_t *const *a, const uint16_t *const *b,
		   const struct dw_cols *c, const uint32_t *m32, float *d, ptrdiff_t ld,
		   int mi, int fresh)
{
	dotb_body(nvec, a, b, c, m32, d, ld, mi, fresh, 1);
}

CPU_BF16_TARGET
static void dotb_3(int nvec, const uint16_t *const *a, const uint16_t *const *b,
		   const struct dw_cols *c, const uint32_t *m32, float *d, ptrdiff_t ld,
		   int mi, int fresh)
{
	dotb_body(nvec, a, b, c, m32, d, ld, mi, fresh, 3);
}

CPU_BF16_TARGET
static void dotb_6(int nvec, const uint16_t *const *a, const uint16_t *const *b,
		   const struct dw_cols *c, const uint32_t *m32, float *d, ptrdiff_t ld,
		   int mi, int fresh)
{
	dotb_body(nvec, a, b, c, m32, d, ld, mi, fresh, 6);
}
#endif

/* Steps (32 u) of one dw_masks table: a column tile's vectors run in
 * blocks of twice this many. */
#define DW_STEPS 256

/* m32[s·nm + j] = the masks of vectors 2s and 2s + 1 (< nv) of column j,
 * from the table rows at mp (ms entries a vector). */
static void dw_masks(uint32_t *m32, const uint16_t *mp, int ms, int nv, const int *mask, int nm)
{
	for (int v = 0; v < nv; v += 2, mp += 2 * ms, m32 += nm)
		for (int j = 0; j < nm; j++)
			m32[j] = mp[mask[j]] | (v + 1 < nv ? (uint32_t)mp[ms + mask[j]] << 16 : 0u);
}

/* The columns of the tile at channel c, kernel row r (R = 3), channel c
 * (R = 1) or flat tap k (others), and the period of their masks. */
static int dw_columns(struct dw_cols *c, const float *x0, const int32_t *off, int Cin, int nt,
		      int R, int c0, int r, int k0)
{
	int per;
	if (nt == 1) { /* DK channels, one tap */
		per = 1;
		c->kj = Cin - c0 < DK ? Cin - c0 : DK;
		for (int j = 0; j < DK; j++) {
			int cj = j < c->kj ? j : 0;
			c->b[j] = x0 + off[c0 + cj];
			c->mask[j] = 0;
			c->o[j] = cj;
		}
	} else if (R == 3) { /* DK/3 channels, taps (r, 0..2) */
		per = 3;
		int nc = Cin - c0 < DK / 3 ? Cin - c0 : DK / 3;
		c->kj = 3 * nc;
		for (int j = 0; j < DK; j++) {
			int cj = j < c->kj ? j / 3 : 0, t = 3 * r + j % 3;
			c->b[j] = x0 + off[(c0 + cj) * nt + t];
			c->mask[j] = t;
			c->o[j] = (ptrdiff_t)cj * nt + t;
		}
	} else { /* DK consecutive taps k0.. of the flat (channel, tap) index */
		per = DK;
		int kc = Cin * nt;
		c->kj = kc - k0 < DK ? kc - k0 : DK;
		for (int j = 0; j < DK; j++) {
			int k = k0 + (j < c->kj ? j : 0);
			c->b[j] = x0 + off[k];
			c->mask[j] = k % nt;
			c->o[j] = k;
		}
	}
	return per;
}

void direct_dw(float *dw, int fresh, const float *dy, int M, const float *x,
	       const int32_t *off, int kc, int nt, const uint16_t *tab,
	       const struct direct_geom *dg, int nb, struct prefetch pf)
{
	/* dy is 0 from nb·P·Q to the end of its plane: run whole vectors */
	int nvec = (int)(round_to((size_t)nb * dg->PQ, 16) / 16), Cin = kc / nt, R = dg->R;
	const float *x0 = x + dg->lead;
	/* the column tiles: (channel group, kernel row) or flat tap groups */
	int step = nt == 1 ? DK : R == 3 ? DK / 3 : 0;
	int tiles = step ? (Cin + step - 1) / step * (R == 3 ? 3 : 1) : (kc + DK - 1) / DK;
	struct prefetch_walk pw = prefetch_plan(&pf, (size_t)tiles);
	for (int q = 0; q < tiles; q++) {
		struct dw_cols c;
		int c0 = R == 3 && nt > 1 ? q / 3 * step : q * step, r = R == 3 && nt > 1 ? q % 3 : 0;
		int per = dw_columns(&c, x0, off, Cin, nt, R, c0, r, q * DK);
		dot_fn *dot = dot_portable;
#if CPU_HAVE_AVX512
		if (cpu_avx512())
			dot = per == 1 ? dot_avx512_1 : per == 3 ? dot_avx512_3 : dot_avx512_6;
#endif
		float *d = dw + (per == DK ? 0 : (ptrdiff_t)c0 * nt);
		prefetch_step(&pw);
		/* the columns' x rows stay in L1 over all rows of dY */
		for (int m0 = 0; m0 < M; m0 += DM) {
			const float *a[DM];
			int mi = M - m0 < DM ? M - m0 : DM;
			/* missing rows repeat the first; their sums are dropped */
			for (int i = 0; i < DM; i++)
				a[i] = dy + dg->lead + (size_t)(m0 + (i < mi ? i : 0)) * dg->plane;
			dot(nvec, a, &c, tab, dg->ms, d + (size_t)m0 * kc, kc, mi, fresh);
		}
	}
}

void direct_dw_bf16(float *dw, int fresh, const uint16_t *dy, int M, const uint16_t *x,
		    const float *xf, const int32_t *off, int kc, int nt, const uint16_t *tab,
		    const struct direct_geom *dg, int nb, struct prefetch pf)
{
#if CPU_HAVE_AVX512
	/* as direct_dw; the columns' addresses are found in the fp32 copy xf
	 * and taken at the same index of x */
	int nvec = (int)(round_to((size_t)nb * dg->PQ, 16) / 16), Cin = kc / nt, R = dg->R;
	const float *x0 = xf + dg->lead;
	int step = nt == 1 ? DK : R == 3 ? DK / 3 : 0;
	int tiles = step ? (Cin + step - 1) / step * (R == 3 ? 3 : 1) : (kc + DK - 1) / DK;
	struct prefetch_walk pw = prefetch_plan(&pf, (size_t)tiles);
	uint32_t m32[DW_STEPS * DK];
	for (int q = 0; q < tiles; q++) {
		struct dw_cols c;
		int c0 = R == 3 && nt > 1 ? q / 3 * step : q * step, r = R == 3 && nt > 1 ? q % 3 : 0;
		int per = dw_columns(&c, x0, off, Cin, nt, R, c0, r, q * DK);
		dotb_fn *dot = per == 1 ? dotb_1 : per == 3 ? dotb_3 : dotb_6;
		float *d = dw + (per == DK ? 0 : (ptrdiff_t)c0 * nt);
		prefetch_step(&pw);
		for (int v0 = 0; v0 < nvec; v0 += 2 * DW_STEPS) {
			int nv = nvec - v0 < 2 * DW_STEPS ? nvec - v0 : 2 * DW_STEPS;
			dw_masks(m32, tab + (size_t)v0 * dg->ms, dg->ms, nv, c.mask, per);
			const uint16_t *b[DK];
			for (int j = 0; j < DK; j++)
				b[j] = x + (c.b[j] - xf) + 16 * v0;
			for (int m0 = 0; m0 < M; m0 += DM) {
				const uint16_t *a[DM];
				int mi = M - m0 < DM ? M - m0 : DM;
				for (int i = 0; i < DM; i++)
					a[i] = dy + dg->lead + 16 * v0 +
					       (size_t)(m0 + (i < mi ? i : 0)) * dg->plane;
				dot(nv, a, b, &c, m32, d + (size_t)m0 * kc, kc, mi, fresh && v0 == 0);
			}
		}
	}
#endif
}

/*
 * core/base/gemm.c — C = A·B (or C += A·B) on strided views (gemm_impl.h), the
 * GEMM under the convolution and linear layers. Serial: the layers split
 * their work (samples) over threads and call this once per thread, so no
 * thread ever waits inside a product.
 *
 * The classic blocked scheme (Goto; BLIS's loop names):
 *   for jc over N in NC columns            B block KC×NC, packed
 *     for pc over K in KC                  A block M×KC, packed
 *       for ic over M in MC rows           A rows MC×KC stay in L2
 *         for jr, ir: MR×NR tiles          B micro-panel KC×NR stays in L1
 *           micro-kernel: MR×NR accumulators, one rank-1 update per k.
 * Packed A holds MR-row panels as [k][MR]; packed B holds NR-column panels
 * as [k][NR]; edges are padded with zeros so the kernel always runs a full
 * tile and only its store is masked. An operand whose packed axis is not
 * the contiguous one (a transposed operand, e.g. both operands of a weight
 * gradient) is packed by 16×16 register transposes.
 */
#include "base/gemm_impl.h"
#include "base/simd_impl.h"
#include "base/cpu_impl.h"

#include <stdint.h>
#include <string.h>

#define MR GEMM_MR
#define NR GEMM_NR
#define KC GEMM_KC
#define MC 128
#define NC GEMM_NC

static int round_up(int x, int m)
{
	return (x + m - 1) / m * m;
}

static int min_int(int a, int b)
{
	return a < b ? a : b;
}

size_t gemm_workspace(int M, int N, int K)
{
	size_t kc = (size_t)min_int(K > 0 ? K : 1, KC);
	size_t a = (size_t)round_up(min_int(M > 0 ? M : 1, MC), MR) * kc;
	size_t b = (size_t)round_up(min_int(N > 0 ? N : 1, NC), NR) * kc;
	/* + the bf16 copies of both blocks (k rounded up to pairs: half a
	 * float per element), + room to align all four to 64 bytes */
	size_t a2 = (size_t)round_up(min_int(M > 0 ? M : 1, MC), MR) * (kc + 1) / 2;
	size_t b2 = (size_t)round_up(min_int(N > 0 ? N : 1, NC), NR) * (kc + 1) / 2;
	return a + b + a2 + b2 + 64;
}

static ptrdiff_t axis_off(const struct gemm_axis *a, int t)
{
	return (ptrdiff_t)(t / a->blk) * a->outer + (ptrdiff_t)(t % a->blk) * a->inner;
}

/* Length of the run of indices from t that stay inside one block (≤ n). */
static int axis_run(const struct gemm_axis *a, int t, int n)
{
	int left = a->blk - t % a->blk;
	return left < n ? left : n;
}

/* ---- packing ----------------------------------------------------------- */

#if CPU_HAVE_AVX512
/*
 * dst[k·w + r] = src[r][k] for r < rows (≤ 16), k < 16: sixteen lanes of
 * sixteen contiguous k each, transposed in registers (unpack, then 64-bit,
 * 128-bit and 256-bit lane shuffles) and stored as sixteen rows of `rows`.
 */
CPU_AVX512_TARGET
static void transpose16(float *dst, int w, const float *const *src, int rows)
{
	__m512 r[16], t[16];
	for (int i = 0; i < 16; i++)
		r[i] = i < rows ? _mm512_loadu_ps(src[i]) : _mm512_setzero_ps();
	for (int i = 0; i < 16; i += 2) {
		t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
		t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
	}
	for (int i = 0; i < 16; i += 4) {
		r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
		r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xee);
		r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
		r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xee);
	}
	for (int i = 0; i < 16; i += 8) {
		for (int j = 0; j < 4; j++) {
			t[i + j] = _mm512_shuffle_f32x4(r[i + j], r[i + j + 4], 0x88);
			t[i + j + 4] = _mm512_shuffle_f32x4(r[i + j], r[i + j + 4], 0xdd);
		}
	}
	for (int j = 0; j < 8; j++) {
		r[j] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0x88);
		r[j + 8] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0xdd);
	}
	__mmask16 m = (__mmask16)((1u << rows) - 1);
	for (int k = 0; k < 16; k++)
		_mm512_mask_storeu_ps(dst + (size_t)k * w, m, r[k]);
}
#endif

/*
 * Transposing pack: lanes r < rows each walk k from their own base; depth
 * runs of 16 contiguous k go through transpose16, the rest element-wise.
 */
static void pack_transposed(float *dst, int w, const float *p, const struct gemm_axis *lane,
			    int l0, int rows, const struct gemm_axis *depth, int k0, int kc)
{
#if CPU_HAVE_AVX512
	int fast = cpu_avx512() && depth->inner == 1;
#endif
	for (int r0 = 0; r0 < rows; r0 += 16) {
		int nr = min_int(16, rows - r0);
		const float *base[16];
		for (int r = 0; r < nr; r++)
			base[r] = p + axis_off(lane, l0 + r0 + r);
		for (int k = 0; k < kc;) {
			int len = axis_run(depth, k0 + k, kc - k);
			ptrdiff_t off = axis_off(depth, k0 + k);
			float *dk = dst + (size_t)k * w + r0;
			int t = 0;
#if CPU_HAVE_AVX512
			for (; fast && t + 16 <= len; t += 16) {
				const float *src[16];
				for (int r = 0; r < nr; r++) {
					src[r] = base[r] + off + t;
					/* each lane streams on: fetch 4 lines ahead */
					__builtin_prefetch(src[r] + 64);
				}
				transpose16(dk + (size_t)t * w, w, src, nr);
			}
#endif
			for (; t < len; t++)
				for (int r = 0; r < nr; r++)
					dk[(size_t)t * w + r] = base[r][off + t * depth->inner];
			k += len;
		}
	}
}

/*
 * dst[k·w + r] = src(lane l0 + r, depth k0 + k) for r < rows, k < kc, zero
 * for rows ≤ r < w: the shared shape of both packings (A: lanes are rows,
 * w = MR; B: lanes are columns, w = NR). When the lane axis has unit stride
 * each k copies a contiguous run; otherwise the operand is transposed.
 */
static void pack_panel(float *dst, int w, const float *p, const struct gemm_axis *lane,
		       int l0, int rows, const struct gemm_axis *depth, int k0, int kc)
{
	if (rows < w)
		for (int k = 0; k < kc; k++)
			zero_run(dst + (size_t)k * w + rows, w - rows);
	if (lane->inner != 1) {
		pack_transposed(dst, w, p, lane, l0, rows, depth, k0, kc);
		return;
	}
	/* runs of the lane axis: one for plain strides, several where a batched
	 * axis crosses a sample inside the panel */
	int nrun = 0, run_at[NR + 1];
	ptrdiff_t run_off[NR];
	for (int r = 0; r < rows; nrun++) {
		run_at[nrun] = r;
		run_off[nrun] = axis_off(lane, l0 + r);
		r += axis_run(lane, l0 + r, rows - r);
	}
	run_at[nrun] = rows;
	for (int k = 0; k < kc;) {
		int len = axis_run(depth, k0 + k, kc - k);
		ptrdiff_t off = axis_off(depth, k0 + k);
		for (int t = 0; t < len; t++, k++) {
			const float *s = p + off + t * depth->inner;
			float *d = dst + (size_t)k * w;
			for (int u = 0; u < nrun; u++)
				copy_run(d + run_at[u], s + run_off[u], run_at[u + 1] - run_at[u]);
		}
	}
}

void gemm_pack_b(const struct gemm_view *B, float *dst, int j0, int nj, int k0, int kc)
{
	for (int j = 0; j < nj; j += NR)
		pack_panel(dst + (size_t)j * kc, NR, B->p, &B->col, j0 + j, min_int(NR, nj - j),
			   &B->row, k0, kc);
}

/* ---- micro-kernels ----------------------------------------------------- */

#define NV (NR / 16)

/*
 * Where a tile's columns go in a C row: the 16 lanes of vector v in up to
 * two runs, lanes lane[v][0] to c + off[v][0] + lane and lanes lane[v][1]
 * to c + off[v][1] + lane (a batched pixel axis crossing from one sample's
 * plane into the next inside the vector).
 */
struct col_split {
	ptrdiff_t off[NV][2];
	unsigned lane[NV][2];
};

/*
 * tile = Σ_k a[k][0..MR) ⊗ b[k][0..NR) over kc packed steps, then C (+)=
 * tile on its first m rows. c != NULL: C rows are ldc apart, columns as cs
 * says, stored in place; otherwise the tile goes to `out` (MR×NR,
 * row-major) for the caller to scatter.
 */
typedef void kernel_fn(int kc, const void *a, const void *b, float *c, ptrdiff_t ldc,
		       int m, const struct col_split *cs, int accumulate, float *out);

static void kernel_portable(int kc, const void *av, const void *bv, float *c,
			    ptrdiff_t ldc, int m, const struct col_split *cs, int accumulate,
			    float *out)
{
	const float *a = av, *b = bv;
	float acc[MR][NR];
	memset(acc, 0, sizeof acc);
	for (int k = 0; k < kc; k++, a += MR, b += NR)
		for (int i = 0; i < MR; i++)
			for (int j = 0; j < NR; j++)
				acc[i][j] += a[i] * b[j];
	if (!c) {
		memcpy(out, acc, sizeof acc);
		return;
	}
	for (int i = 0; i < m; i++)
		for (int j = 0; j < NR; j++) {
			int v = j / 16, l = j % 16;
			for (int r = 0; r < 2; r++) {
				if (!(cs->lane[v][r] >> l & 1))
					continue;
				float *d = c + i * ldc + cs->off[v][r] + l;
				*d = accumulate ? *d + acc[i][j] : acc[i][j];
			}
		}
}

#if CPU_HAVE_AVX512
/* MR×NR = 8×48: 24 zmm accumulators, 3 loads of b and 8 broadcasts of a
 * per k for 24 FMAs. */
CPU_AVX512_TARGET __attribute__((always_inline))
static inline void store_acc(__m512 acc[MR][NV], float *c, ptrdiff_t ldc, int m,
			     const struct col_split *cs, int accumulate, float *out);

CPU_AVX512_TARGET
static void kernel_avx512(int kc, const void *av, const void *bp, float *c,
			  ptrdiff_t ldc, int m, const struct col_split *cs, int accumulate,
			  float *out)
{
	const float *a = av, *b = bp;
	__m512 acc[MR][NV];
#pragma GCC unroll 8
	for (int i = 0; i < MR; i++)
#pragma GCC unroll 4
		for (int v = 0; v < NV; v++)
			acc[i][v] = _mm512_setzero_ps();
	for (int k = 0; k < kc; k++, a += MR, b += NR) {
		__m512 bv[NV];
#pragma GCC unroll 4
		for (int v = 0; v < NV; v++)
			bv[v] = _mm512_load_ps(b + 16 * v);
#pragma GCC unroll 8
		for (int i = 0; i < MR; i++) {
			__m512 ai = _mm512_set1_ps(a[i]);
#pragma GCC unroll 4
			for (int v = 0; v < NV; v++)
				acc[i][v] = _mm512_fmadd_ps(ai, bv[v], acc[i][v]);
		}
	}
	store_acc(acc, c, ldc, m, cs, accumulate, out);
}

/* The tile's accumulators to C (c != NULL) or to `out` (kernel_fn). */
CPU_AVX512_TARGET __attribute__((always_inline))
static inline void store_acc(__m512 acc[MR][NV], float *c, ptrdiff_t ldc, int m,
			     const struct col_split *cs, int accumulate, float *out)
{
	if (!c) {
#pragma GCC unroll 8
		for (int i = 0; i < MR; i++)
#pragma GCC unroll 4
			for (int v = 0; v < NV; v++)
				_mm512_storeu_ps(out + i * NR + 16 * v, acc[i][v]);
		return;
	}
#pragma GCC unroll 8
	for (int i = 0; i < MR; i++) {
		if (i < m) {
			float *ci = c + i * ldc;
#pragma GCC unroll 4
			for (int v = 0; v < NV; v++) {
				for (int r = 0; r < 2; r++) {
					__mmask16 lanes = (__mmask16)cs->lane[v][r];
					float *d = ci + cs->off[v][r];
					__m512 t = acc[i][v];
					if (!lanes)
						continue;
					if (accumulate)
						t = _mm512_add_ps(t, _mm512_maskz_loadu_ps(lanes, d));
					_mm512_mask_storeu_ps(d, lanes, t);
				}
			}
		}
	}
}

/*
 * The bf16 kernel: a and b hold pairs of k (a: [k/2][MR][2], b: [k/2][NR][2]
 * bfloat16, from to_pairs), kp pairs; one vdpbf16ps adds both products of a
 * pair to each fp32 accumulator: 24 instructions per two k instead of 48
 * FMAs. A product of two bf16 is exact in fp32; the sums round as FMAs do.
 */
CPU_BF16_TARGET
static void kernel_bf16(int kp, const void *av, const void *bp, float *c, ptrdiff_t ldc, int m,
			const struct col_split *cs, int accumulate, float *out)
{
	const int32_t *a = av;
	const __m512i *b = bp;
	__m512 acc[MR][NV];
#pragma GCC unroll 8
	for (int i = 0; i < MR; i++)
#pragma GCC unroll 4
		for (int v = 0; v < NV; v++)
			acc[i][v] = _mm512_setzero_ps();
	for (int k = 0; k < kp; k++, a += MR, b += NV) {
		__m512bh bv[NV];
#pragma GCC unroll 4
		for (int v = 0; v < NV; v++)
			bv[v] = (__m512bh)_mm512_load_si512(b + v);
#pragma GCC unroll 8
		for (int i = 0; i < MR; i++) {
			__m512bh ai = (__m512bh)_mm512_set1_epi32(a[i]);
#pragma GCC unroll 4
			for (int v = 0; v < NV; v++)
				acc[i][v] = _mm512_dpbf16_ps(acc[i][v], ai, bv[v]);
		}
	}
	store_acc(acc, c, ldc, m, cs, accumulate, out);
}

/*
 * A packed fp32 panel [kc][w] (w = MR or NR) as bf16 pairs [kc/2][w][2],
 * rounded to nearest even (vcvtne2ps2bf16); an odd kc's last pair is
 * completed with 0.
 */
CPU_BF16_TARGET
static void to_pairs(uint16_t *dst, const float *src, int w, int kc)
{
	/* lane 2t takes t (row k), lane 2t + 1 takes 16 + t (row k + 1) */
	const __m512i mix = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9,
					     24, 8, 23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1,
					     16, 0);
	int k = 0;
	if (w == 8) {
		/* four rows (32 floats) at a time: two pairs of 8 lanes */
		const __m512i mix8 = _mm512_set_epi16(31, 23, 30, 22, 29, 21, 28, 20, 27, 19, 26, 18,
						      25, 17, 24, 16, 15, 7, 14, 6, 13, 5, 12, 4,
						      11, 3, 10, 2, 9, 1, 8, 0);
		for (; k + 4 <= kc; k += 4, dst += 4 * w) {
			const float *r = src + (size_t)k * w;
			__m512i h = (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(r + 16),
								 _mm512_loadu_ps(r));
			_mm512_storeu_si512(dst, _mm512_permutexvar_epi16(mix8, h));
		}
	}
	for (; k < kc; k += 2, dst += 2 * w) {
		const float *r0 = src + (size_t)k * w, *r1 = r0 + w;
		for (int j = 0; j < w; j += 16) {
			int n = min_int(16, w - j);
			__mmask16 mk = (__mmask16)((1u << n) - 1);
			__m512 x0 = _mm512_maskz_loadu_ps(mk, r0 + j);
			__m512 x1 = k + 1 < kc ? _mm512_maskz_loadu_ps(mk, r1 + j) : _mm512_setzero_ps();
			__m512i h = (__m512i)_mm512_cvtne2ps_pbh(x1, x0);
			__mmask32 m2 = n == 16 ? 0xffffffffu : (1u << 2 * n) - 1;
			_mm512_mask_storeu_epi16(dst + 2 * j, m2, _mm512_permutexvar_epi16(mix, h));
		}
	}
}
#endif

/* ---- the blocked product ----------------------------------------------- */

/* C(i0.., j0..) (+)= tile on an m×n corner, through the view (tile NULL:
 * zeros); runs of unit stride are copied or added whole. */
static void scatter_tile(const struct gemm_view *C, int i0, int j0, int m, int n,
			 const float *tile, int accumulate)
{
	static const float zeros[NR];
	for (int i = 0; i < m; i++) {
		float *row = C->p + axis_off(&C->row, i0 + i);
		for (int j = 0; j < n;) {
			int len = axis_run(&C->col, j0 + j, n - j);
			float *c = row + axis_off(&C->col, j0 + j);
			const float *v = tile ? tile + i * NR + j : zeros;
			if (C->col.inner == 1 && accumulate) {
				add_run(c, v, len);
			} else if (C->col.inner == 1) {
				copy_run(c, v, len);
			} else {
				for (int t = 0; t < len; t++) {
					ptrdiff_t o = t * C->col.inner;
					c[o] = accumulate ? c[o] + v[t] : v[t];
				}
			}
			j += len;
		}
	}
}

static unsigned lanes_below(int n)
{
	return n >= 16 ? 0xffffu : n <= 0 ? 0u : (1u << n) - 1;
}

/*
 * The split of columns j0 .. j0 + n of a unit-stride column axis into each
 * vector's runs, offsets from column j0; 0 when some vector needs more than
 * two (samples of fewer than 16 pixels).
 */
static int col_split(struct col_split *cs, const struct gemm_axis *col, int j0, int n)
{
	ptrdiff_t base = axis_off(col, j0);
	for (int v = 0; v < NV; v++) {
		int t = j0 + 16 * v, cnt = n - 16 * v < 16 ? n - 16 * v : 16;
		cs->lane[v][0] = cs->lane[v][1] = 0;
		cs->off[v][0] = cs->off[v][1] = 0;
		if (cnt <= 0)
			continue;
		int first = axis_run(col, t, cnt);
		cs->off[v][0] = axis_off(col, t) - base;
		cs->lane[v][0] = lanes_below(first);
		if (first == cnt)
			continue;
		if (axis_run(col, t + first, cnt - first) != cnt - first)
			return 0;
		/* lane l ≥ first goes to the next run's start + (l − first) */
		cs->off[v][1] = axis_off(col, t + first) - base - first;
		cs->lane[v][1] = lanes_below(cnt) & ~lanes_below(first);
	}
	return 1;
}

/* One MR×NR tile at (i0, j0) of an M×N product from packed panels: stored
 * by the kernel where the rows are plain and each vector's columns form at
 * most two unit-stride runs, else scattered from a temporary tile. */
static void run_tile(kernel_fn *kernel, const struct gemm_view *C, int M, int N, int kc,
		     const void *a, const void *b, int i0, int j0, int accumulate)
{
	int m = min_int(MR, M - i0), n = min_int(NR, N - j0);
	struct col_split cs;
	if (axis_run(&C->row, i0, m) == m && C->col.inner == 1 && col_split(&cs, &C->col, j0, n)) {
		float *c = C->p + axis_off(&C->row, i0) + axis_off(&C->col, j0);
		kernel(kc, a, b, c, C->row.inner, m, &cs, accumulate, NULL);
		return;
	}
	float tile[MR * NR];
	kernel(kc, a, b, NULL, 0, m, NULL, 0, tile);
	scatter_tile(C, i0, j0, m, n, tile, accumulate);
}

static float *align64(float *p)
{
	uintptr_t u = (uintptr_t)p;
	return (float *)((u + 63) & ~(uintptr_t)63);
}

/* The packed panel of A rows ic + i.., columns pc..: from the operand
 * itself when it comes packed, else from the block just packed at ap. */
static const float *panel_a(const struct gemm_view *A, const float *ap, int ic, int i, int pc,
			    int kc)
{
	if (A->packed)
		return A->packed + (size_t)((ic + i) / MR) * A->panel + (size_t)pc * MR;
	return ap + (size_t)i * kc;
}

/* The same for the B panel of columns jc + j.. (bp: the block packed). */
static const float *panel_b(const struct gemm_view *B, const float *bp, int jc, int j, int pc,
			    int kc)
{
	if (B->packed)
		return B->packed + (size_t)((jc + j) / NR) * B->panel + (size_t)pc * NR;
	return bp + (size_t)j * kc;
}

/* The bf16 pairs of B's columns jc.. jc + nc, rows pc.. pc + kc, into b2
 * (panel j at b2 + j·2·ceil(kc/2)): packed one NR panel at a time into bp
 * and converted at once, while the panel is in L1 (packing all of a block
 * first left it in L3 for the conversion: a third pass from memory). */
static void pack_pairs_b(const struct gemm_view *B, float *bp, uint16_t *b2, int jc, int nc,
			 int pc, int kc)
{
#if CPU_HAVE_AVX512
	int kp = (kc + 1) / 2;
	for (int j = 0; j < nc; j += NR) {
		const float *src = bp;
		if (B->packed)
			src = panel_b(B, bp, jc, j, pc, kc);
		else if (B->pack)
			B->pack(B->ctx, bp, jc + j, min_int(NR, nc - j), pc, kc);
		else
			gemm_pack_b(B, bp, jc + j, min_int(NR, nc - j), pc, kc);
		to_pairs(b2 + (size_t)j * 2 * kp, src, NR, kc);
	}
#else
	(void)B, (void)bp, (void)b2, (void)jc, (void)nc, (void)pc, (void)kc;
#endif
}

/* The bf16 pairs of A rows ic + i.., from column pc (even) on, where A
 * comes converted (the view's pairs). */
static const uint16_t *pairs_a(const struct gemm_view *A, int ic, int i, int pc)
{
	return (const uint16_t *)(A->packed + (size_t)((ic + i) / MR) * A->panel) + (size_t)pc * MR;
}

void gemm(int M, int N, int K, const struct gemm_view *A, const struct gemm_view *B,
	  const struct gemm_view *C, int accumulate, float *ws)
{
	gemm_prec(M, N, K, A, B, C, accumulate, GEMM_FP32, ws);
}

void gemm_prec(int M, int N, int K, const struct gemm_view *A, const struct gemm_view *B,
	       const struct gemm_view *C, int accumulate, enum gemm_prec prec, float *ws)
{
	if (M <= 0 || N <= 0)
		return;
	if (K <= 0) {
		if (!accumulate)
			for (int i = 0; i < M; i++)
				for (int j = 0; j < N; j += NR)
					scatter_tile(C, i, j, 1, min_int(NR, N - j), NULL, 0);
		return;
	}
	kernel_fn *kernel = kernel_portable;
	int bf16 = 0;
#if CPU_HAVE_AVX512
	if (cpu_avx512())
		kernel = kernel_avx512;
	if (prec == GEMM_BF16 && cpu_bf16()) {
		kernel = kernel_bf16;
		bf16 = 1;
	}
#endif
	int mcap = round_up(min_int(M, MC), MR), ncap = round_up(min_int(N, NC), NR);
	int kcap = min_int(K, KC);
	float *ap = align64(ws);
	float *bp = align64(ap + (size_t)mcap * kcap);
	/* the bf16 pairs of both blocks, after them (bf16 only: an fp32
	 * product uses the first (M + N)·KC + 32 floats of ws alone) */
	uint16_t *a2 = NULL, *b2 = NULL;
	if (bf16) {
		a2 = (uint16_t *)align64(bp + (size_t)ncap * kcap);
		b2 = (uint16_t *)align64((float *)a2 + (size_t)mcap * ((kcap + 1) / 2));
	}
	for (int jc = 0; jc < N; jc += NC) {
		int nc = min_int(NC, N - jc);
		for (int pc = 0; pc < K; pc += KC) {
			int kc = min_int(KC, K - pc), acc = accumulate || pc > 0;
			int kp = (kc + 1) / 2;  /* pairs of k (bf16) */
			if (bf16)
				pack_pairs_b(B, bp, b2, jc, nc, pc, kc);
			else if (B->packed)
				;
			else if (B->pack)
				B->pack(B->ctx, bp, jc, nc, pc, kc);
			else
				gemm_pack_b(B, bp, jc, nc, pc, kc);
			for (int ic = 0; ic < M; ic += MC) {
				int mc = min_int(MC, M - ic);
				for (int i = 0; i < mc && !A->packed; i += MR) {
					/* bf16: each panel converted while in cache */
					float *dst = bf16 ? ap : ap + (size_t)i * kc;
					if (A->pack)
						A->pack(A->ctx, dst, ic + i, min_int(MR, mc - i), pc, kc);
					else
						pack_panel(dst, MR, A->p, &A->row, ic + i,
							   min_int(MR, mc - i), &A->col, pc, kc);
#if CPU_HAVE_AVX512
					if (bf16)
						to_pairs(a2 + (size_t)i * 2 * kp, dst, MR, kc);
#endif
				}
#if CPU_HAVE_AVX512
				for (int i = 0; bf16 && A->packed && !A->pairs && i < mc; i += MR)
					to_pairs(a2 + (size_t)i * 2 * kp, panel_a(A, ap, ic, i, pc, kc),
						 MR, kc);
#endif
				for (int j = 0; j < nc; j += NR)
					for (int i = 0; i < mc; i += MR) {
						if (bf16)
							run_tile(kernel, C, M, N, kp,
								 A->pairs ? pairs_a(A, ic, i, pc) :
								 a2 + (size_t)i * 2 * kp,
								 b2 + (size_t)j * 2 * kp, ic + i, jc + j, acc);
						else
							run_tile(kernel, C, M, N, kc,
								 panel_a(A, ap, ic, i, pc, kc),
								 panel_b(B, bp, jc, j, pc, kc), ic + i, jc + j,
								 acc);
					}
			}
		}
	}
}

/*
 * core/conv_winograd.c — 3×3 stride-1 pad-1 convolution by Winograd's
 * F(2×2, 3×3) (conv_winograd_impl.h).
 *
 * The output is cut into 2×2 tiles; tile (ti, tj) reads the 4×4 input patch
 * d from row 2·ti − 1, column 2·tj − 1 (zeros outside the image) and
 *   Y = Aᵀ [ Σ_c U_c ⊙ V_c ] A,   U = G g Gᵀ (per (k, c)),  V = Bᵀ d B,
 * with
 *   Bᵀ = [[1,0,-1,0],[0,1,1,0],[0,-1,1,0],[0,1,0,-1]],
 *   G  = [[1,0,0],[½,½,½],[½,-½,½],[0,0,1]],
 *   Aᵀ = [[1,1,1,0],[0,1,-1,-1]].
 * The sum over c is, for each of the 16 positions ξ of the 4×4 transforms,
 * a GEMM M[ξ] (Cout × T) = U[ξ] (Cout × Cin) · V[ξ] (Cin × T) over a chunk of
 * T tiles (core/gemm.c), 16 products of Cout·Cin·T multiplications instead
 * of the direct 36 per tile: 2.25× fewer (less at odd sizes, whose last
 * tile row and column are half outside the image and clipped).
 *
 * Threads: U is computed by all members (split by (k, c) pairs), then, after
 * one barrier, each member runs its contiguous range of samples in chunks of
 * T tiles with its own V, M and GEMM workspace. The transforms run over 16
 * tiles at a time: AVX-512 gathers of the patches (masked at the border) and
 * scatters of the outputs (masked where a tile is clipped), chosen at run
 * time (gemm_simd()); a portable scalar path otherwise.
 *
 * The weight gradient (wino_dw, at the end of the file) is the adjoint of
 * the same computation: 16 GEMMs dU[ξ] += Ŷ[ξ]·V[ξ]ᵀ, then dw = Gᵀ dU G.
 */
#include "conv_winograd_impl.h"
#include "gemm_impl.h"
#include "team_impl.h"

#include <stdint.h>
#include <string.h>

/* Tiles a chunk aims at: a multiple of GEMM_NR (the GEMM's panel width)
 * and of 16 (the transforms' vectors). */
#define WINO_T 192

int wino_applies(int R, int S, int stride, int pad)
{
	return R == 3 && S == 3 && stride == 1 && pad == 1;
}

/* Members that get samples: the team, at most one per sample. */
static int members(int N, int team)
{
	return team < 1 ? 1 : team > N ? (N < 1 ? 1 : N) : team;
}

/* Tiles per chunk for members of ceil(N / team) samples. */
static int chunk_tiles(int N, int H, int W, int team)
{
	int per = (N + team - 1) / team;
	long tiles = (long)per * ((H + 1) / 2) * ((W + 1) / 2);
	long t = (tiles + 15) / 16 * 16;
	return t < WINO_T ? (int)t : WINO_T;
}

/*
 * Floats from one position ξ's matrix to the next (U, V, M hold 16 each):
 * one cache line more than the matrix, so that the 16 streams a transform
 * reads or writes do not all fall into the same cache sets (the matrices'
 * sizes are multiples of 4 KiB).
 */
static size_t xi_stride(int rows, int cols)
{
	return (size_t)rows * cols + 16;
}

/* Rows of U[ξ] rounded up to whole GEMM A panels. */
static int u_rows(int Cout)
{
	return (Cout + GEMM_MR - 1) / GEMM_MR * GEMM_MR;
}

/* Per-member slot: V, M, tile tables (3·T floats), GEMM workspace. */
static size_t slot_len(int Cin, int Cout, int T)
{
	return 16 * (xi_stride(Cin, T) + xi_stride(Cout, T)) + (size_t)3 * T +
	       gemm_workspace(Cout, T, Cin);
}

size_t wino_workspace(int N, int Cin, int H, int W, int Cout, int team)
{
	team = members(N, team);
	int T = chunk_tiles(N, H, W, team);
	return 16 * xi_stride(u_rows(Cout), Cin) + (size_t)team * slot_len(Cin, Cout, T);
}

struct wino_job {
	float *y;
	const float *x, *w;
	int accumulate, flip, N, Cin, H, W, Cout, T, TW, TT;
	float *ws;
	size_t slot;
	struct team *tm;
	float *dw;              /* wino_dw: the weight gradient, from dy */
	const float *dy;
};

/* ---- U = G g Gᵀ ---------------------------------------------------------- */

/*
 * U[ξ] (Cout × Cin) for pairs p = co·Cin + ci in [lo, hi) of u_rows(Cout)·Cin,
 * stored as the GEMM packs its A operand: panels of GEMM_MR rows, each
 * [ci][GEMM_MR] over all of Cin, so (co, ci) at
 * (co / MR)·Cin·MR + ci·MR + co mod MR; rows past Cout are zero.
 */
static void weights_transform(float *U, const struct wino_job *j, size_t lo, size_t hi)
{
	size_t us = xi_stride(u_rows(j->Cout), j->Cin);
	for (size_t p = lo; p < hi; p++) {
		size_t co = p / j->Cin, ci = p % j->Cin;
		float g[9], t[4][3];
		if (co >= (size_t)j->Cout) {
			memset(g, 0, sizeof g);
		} else if (!j->flip) {
			memcpy(g, j->w + p * 9, sizeof g);
		} else {
			/* w'[co][ci][r][s] = w[ci][co][2 − r][2 − s] */
			const float *src = j->w + (ci * j->Cout + co) * 9;
			for (int i = 0; i < 9; i++)
				g[i] = src[8 - i];
		}
		/* t = G g (4×3) */
		for (int s = 0; s < 3; s++) {
			float g0 = g[s], g1 = g[3 + s], g2 = g[6 + s];
			t[0][s] = g0;
			t[1][s] = 0.5f * (g0 + g1 + g2);
			t[2][s] = 0.5f * (g0 - g1 + g2);
			t[3][s] = g2;
		}
		/* U = t Gᵀ (4×4) */
		float *u = U + (co / GEMM_MR * j->Cin + ci) * GEMM_MR + co % GEMM_MR;
		for (int i = 0; i < 4; i++) {
			float t0 = t[i][0], t1 = t[i][1], t2 = t[i][2];
			u[(size_t)(4 * i + 0) * us] = t0;
			u[(size_t)(4 * i + 1) * us] = 0.5f * (t0 + t1 + t2);
			u[(size_t)(4 * i + 2) * us] = 0.5f * (t0 - t1 + t2);
			u[(size_t)(4 * i + 3) * us] = t2;
		}
	}
}

/* The GEMM's A packer over a pre-packed U[ξ]: panels are copied whole. */
struct packed_u {
	const float *u;
	int cin;
};

static void pack_u(void *ctx, float *dst, int i0, int mi, int k0, int kc)
{
	const struct packed_u *pu = ctx;
	(void)mi; /* the rows past Cout are zeros in U already */
	memcpy(dst, pu->u + ((size_t)(i0 / GEMM_MR) * pu->cin + k0) * GEMM_MR,
	       sizeof(float) * GEMM_MR * kc);
}

/* ---- tile tables --------------------------------------------------------- */

/*
 * For tiles u0 + t (t < nt) of a member's samples: ioff[t] = the patch's
 * origin in x relative to the member's first sample and channel 0, ooff[t]
 * the output tile's origin in y; imask[g·16 + r·4 + s] has lane t − 16g set
 * when patch pixel (r, s) lies in the image, omask[g·4 + a·2 + b] when
 * output (a, b) does. Lanes up to the next multiple of 16 are off.
 */
struct tiles {
	int32_t *ioff, *ooff;
	uint16_t *imask, *omask;
};

static struct tiles tile_tables(float *at, int T)
{
	struct tiles tb;
	tb.ioff = (int32_t *)at;
	tb.ooff = (int32_t *)(at + T);
	tb.imask = (uint16_t *)(at + 2 * T);
	tb.omask = tb.imask + T; /* T/16 groups × 16 input masks */
	return tb;
}

static void fill_tiles(const struct tiles *tb, const struct wino_job *j, long u0, int nt)
{
	int H = j->H, W = j->W, groups = (nt + 15) / 16;
	memset(tb->imask, 0, sizeof(uint16_t) * 16 * groups);
	memset(tb->omask, 0, sizeof(uint16_t) * 4 * groups);
	for (int t = 0; t < groups * 16; t++) {
		tb->ioff[t] = tb->ooff[t] = 0;
		if (t >= nt)
			continue;
		long u = u0 + t;
		int n = (int)(u / j->TT), rem = (int)(u % j->TT);
		int h0 = 2 * (rem / j->TW), w0 = 2 * (rem % j->TW);
		tb->ioff[t] = (int32_t)((long)n * j->Cin * H * W + (long)(h0 - 1) * W + (w0 - 1));
		tb->ooff[t] = (int32_t)((long)n * j->Cout * H * W + (long)h0 * W + w0);
		uint16_t bit = (uint16_t)(1u << (t % 16));
		for (int r = 0; r < 4; r++)
			for (int s = 0; s < 4; s++) {
				int h = h0 - 1 + r, w = w0 - 1 + s;
				if (h >= 0 && h < H && w >= 0 && w < W)
					tb->imask[(t / 16) * 16 + r * 4 + s] |= bit;
			}
		for (int a = 0; a < 2; a++)
			for (int b = 0; b < 2; b++)
				if (h0 + a < H && w0 + b < W)
					tb->omask[(t / 16) * 4 + a * 2 + b] |= bit;
	}
}

/* ---- portable transforms ------------------------------------------------- */

/* v[ξ·vs] = (Bᵀ d B)[ξ] for tile t's 4×4 patch d of one channel plane xc
 * (zero where the tile's mask says the patch leaves the image). */
static void input_tile(float *v, size_t vs, const float *xc, const struct tiles *tb, int t,
		       const struct wino_job *j)
{
	float d[4][4], b[4][4];
	uint16_t bit = (uint16_t)(1u << (t % 16));
	for (int r = 0; r < 4; r++)
		for (int s = 0; s < 4; s++)
			d[r][s] = tb->imask[(t / 16) * 16 + r * 4 + s] & bit ?
				xc[tb->ioff[t] + r * j->W + s] : 0.0f;
	/* b = Bᵀ d (rows), then V = b B (columns) */
	for (int s = 0; s < 4; s++) {
		b[0][s] = d[0][s] - d[2][s];
		b[1][s] = d[1][s] + d[2][s];
		b[2][s] = d[2][s] - d[1][s];
		b[3][s] = d[1][s] - d[3][s];
	}
	for (int r = 0; r < 4; r++) {
		v[(4 * r + 0) * vs] = b[r][0] - b[r][2];
		v[(4 * r + 1) * vs] = b[r][1] + b[r][2];
		v[(4 * r + 2) * vs] = b[r][2] - b[r][1];
		v[(4 * r + 3) * vs] = b[r][1] - b[r][3];
	}
}

/* V[ξ][c·T + t] = (Bᵀ d B)[ξ] for the chunk's tiles t < nt. */
static void input_portable(float *V, const float *x, const struct tiles *tb, int nt,
			   const struct wino_job *j)
{
	size_t HW = (size_t)j->H * j->W, vs = xi_stride(j->Cin, j->T);
	for (int c = 0; c < j->Cin; c++)
		for (int t = 0; t < nt; t++)
			input_tile(V + (size_t)c * j->T + t, vs, x + c * HW, tb, t, j);
}

/* y tile (+)= Aᵀ M A for the chunk's tiles, clipped to the image. */
static void output_portable(float *y, const float *M, const struct tiles *tb, int nt,
			    const struct wino_job *j)
{
	size_t HW = (size_t)j->H * j->W, ms = xi_stride(j->Cout, j->T);
	for (int k = 0; k < j->Cout; k++)
		for (int t = 0; t < nt; t++) {
			const float *m = M + (size_t)k * j->T + t;
			float a[2][4], o[2][2];
			/* a = Aᵀ M (rows), o = a A (columns) */
			for (int s = 0; s < 4; s++) {
				a[0][s] = m[s * ms] + m[(4 + s) * ms] + m[(8 + s) * ms];
				a[1][s] = m[(4 + s) * ms] - m[(8 + s) * ms] - m[(12 + s) * ms];
			}
			for (int r = 0; r < 2; r++) {
				o[r][0] = a[r][0] + a[r][1] + a[r][2];
				o[r][1] = a[r][1] - a[r][2] - a[r][3];
			}
			uint16_t bit = (uint16_t)(1u << (t % 16));
			for (int r = 0; r < 2; r++)
				for (int s = 0; s < 2; s++) {
					if (!(tb->omask[(t / 16) * 4 + r * 2 + s] & bit))
						continue;
					float *d = y + k * HW + tb->ooff[t] + r * j->W + s;
					*d = j->accumulate ? *d + o[r][s] : o[r][s];
				}
		}
}

/* ---- AVX-512 transforms -------------------------------------------------- */

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_AVX512 1

__attribute__((target("avx512f")))
static void input_avx512(float *V, const float *x, const struct tiles *tb, int nt,
			 const struct wino_job *j)
{
	size_t HW = (size_t)j->H * j->W, vs = xi_stride(j->Cin, j->T);
	int W = j->W;
	for (int g = 0; g < (nt + 15) / 16; g++) {
		__m512i idx = _mm512_loadu_si512(tb->ioff + 16 * g);
		__m512i ix[4][4];
		__mmask16 mk[4][4];
		for (int r = 0; r < 4; r++)
			for (int s = 0; s < 4; s++) {
				ix[r][s] = _mm512_add_epi32(idx, _mm512_set1_epi32(r * W + s));
				mk[r][s] = tb->imask[16 * g + r * 4 + s];
			}
		for (int c = 0; c < j->Cin; c++) {
			const float *xc = x + c * HW;
			__m512 d[4][4], b[4][4];
			for (int r = 0; r < 4; r++)
				for (int s = 0; s < 4; s++)
					d[r][s] = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), mk[r][s],
									   ix[r][s], xc, 4);
			for (int s = 0; s < 4; s++) {
				b[0][s] = _mm512_sub_ps(d[0][s], d[2][s]);
				b[1][s] = _mm512_add_ps(d[1][s], d[2][s]);
				b[2][s] = _mm512_sub_ps(d[2][s], d[1][s]);
				b[3][s] = _mm512_sub_ps(d[1][s], d[3][s]);
			}
			float *v = V + (size_t)c * j->T + 16 * g;
			for (int r = 0; r < 4; r++) {
				_mm512_storeu_ps(v + (4 * r + 0) * vs, _mm512_sub_ps(b[r][0], b[r][2]));
				_mm512_storeu_ps(v + (4 * r + 1) * vs, _mm512_add_ps(b[r][1], b[r][2]));
				_mm512_storeu_ps(v + (4 * r + 2) * vs, _mm512_sub_ps(b[r][2], b[r][1]));
				_mm512_storeu_ps(v + (4 * r + 3) * vs, _mm512_sub_ps(b[r][1], b[r][3]));
			}
		}
	}
}

__attribute__((target("avx512f")))
static void output_avx512(float *y, const float *M, const struct tiles *tb, int nt,
			  const struct wino_job *j)
{
	size_t HW = (size_t)j->H * j->W, ms = xi_stride(j->Cout, j->T);
	int W = j->W;
	for (int g = 0; g < (nt + 15) / 16; g++) {
		__m512i idx = _mm512_loadu_si512(tb->ooff + 16 * g);
		__m512i ix[2][2];
		__mmask16 mk[2][2];
		for (int r = 0; r < 2; r++)
			for (int s = 0; s < 2; s++) {
				ix[r][s] = _mm512_add_epi32(idx, _mm512_set1_epi32(r * W + s));
				mk[r][s] = tb->omask[4 * g + r * 2 + s];
			}
		for (int k = 0; k < j->Cout; k++) {
			const float *m = M + (size_t)k * j->T + 16 * g;
			float *yk = y + k * HW;
			__m512 a[2][4];
			for (int s = 0; s < 4; s++) {
				__m512 m0 = _mm512_loadu_ps(m + s * ms), m1 = _mm512_loadu_ps(m + (4 + s) * ms);
				__m512 m2 = _mm512_loadu_ps(m + (8 + s) * ms);
				__m512 m3 = _mm512_loadu_ps(m + (12 + s) * ms);
				a[0][s] = _mm512_add_ps(_mm512_add_ps(m0, m1), m2);
				a[1][s] = _mm512_sub_ps(_mm512_sub_ps(m1, m2), m3);
			}
			for (int r = 0; r < 2; r++) {
				__m512 o[2];
				o[0] = _mm512_add_ps(_mm512_add_ps(a[r][0], a[r][1]), a[r][2]);
				o[1] = _mm512_sub_ps(_mm512_sub_ps(a[r][1], a[r][2]), a[r][3]);
				for (int s = 0; s < 2; s++) {
					if (j->accumulate)
						o[s] = _mm512_add_ps(o[s], _mm512_mask_i32gather_ps(
							_mm512_setzero_ps(), mk[r][s], ix[r][s], yk, 4));
					_mm512_mask_i32scatter_ps(yk, mk[r][s], ix[r][s], o[s], 4);
				}
			}
		}
	}
}
#endif

/* ---- one member ---------------------------------------------------------- */

static void chunk(const struct wino_job *j, const float *U, const float *x, float *y, long u0,
		  int nt, float *slot)
{
	int T = j->T, simd = gemm_simd();
	size_t vs = xi_stride(j->Cin, T), ms = xi_stride(j->Cout, T);
	float *V = slot, *M = V + 16 * vs;
	struct tiles tb = tile_tables(M + 16 * ms, T);
	float *gws = M + 16 * ms + (size_t)3 * T;
	fill_tiles(&tb, j, u0, nt);
#ifdef HAVE_AVX512
	if (simd)
		input_avx512(V, x, &tb, nt, j);
	else
#endif
		input_portable(V, x, &tb, nt, j);
	size_t us = xi_stride(u_rows(j->Cout), j->Cin);
	for (int xi = 0; xi < 16; xi++) {
		/* M[ξ] (Cout × nt) = U[ξ] (Cout × Cin) · V[ξ] (Cin × nt) */
		struct packed_u pu = { U + xi * us, j->Cin };
		struct gemm_view A = gemm_dense(NULL, 0);
		A.pack = pack_u;
		A.ctx = &pu;
		struct gemm_view B = gemm_dense(V + xi * vs, T);
		struct gemm_view C = gemm_dense(M + xi * ms, T);
		gemm(j->Cout, nt, j->Cin, &A, &B, &C, 0, gws);
	}
#ifdef HAVE_AVX512
	if (simd)
		output_avx512(y, M, &tb, nt, j);
	else
#endif
		output_portable(y, M, &tb, nt, j);
	(void)simd;
}

static void member(void *p, int rank, int size)
{
	struct wino_job *j = p;
	float *U = j->ws;
	size_t pairs = (size_t)u_rows(j->Cout) * j->Cin, lo, hi;
	team_share(pairs, 16, rank, size, &lo, &hi);
	weights_transform(U, j, lo, hi);
	team_barrier(size > 1 ? j->tm : NULL);
	int nm = members(j->N, size);
	if (rank >= nm)
		return;
	int n0 = (int)((long)j->N * rank / nm), n1 = (int)((long)j->N * (rank + 1) / nm);
	float *slot = j->ws + 16 * xi_stride(u_rows(j->Cout), j->Cin) + (size_t)rank * j->slot;
	const float *x = j->x + (size_t)n0 * j->Cin * j->H * j->W;
	float *y = j->y + (size_t)n0 * j->Cout * j->H * j->W;
	long tiles = (long)(n1 - n0) * j->TT;
	for (long u = 0; u < tiles; u += j->T) {
		int nt = tiles - u < j->T ? (int)(tiles - u) : j->T;
		chunk(j, U, x, y, u, nt, slot);
	}
}

void wino_conv(float *y, int accumulate, const float *x, const float *w, int flip, int N,
	       int Cin, int H, int W, int Cout, float *ws, struct team *tm)
{
	int team = team_size(tm);
	struct wino_job j = { y, x, w, accumulate, flip, N, Cin, H, W, Cout, 0,
			      (W + 1) / 2, ((H + 1) / 2) * ((W + 1) / 2), ws, 0, tm, NULL, NULL };
	j.T = chunk_tiles(N, H, W, members(N, team));
	j.slot = slot_len(Cin, Cout, j.T);
	team_run(team > 1 ? tm : NULL, member, &j);
}

/* ---- the weight gradient -------------------------------------------------
 *
 * The forward is linear in U: y = Aᵀ [Σ_c U_c ⊙ V_c] A per tile, so with
 * Ŷ = A dY Aᵀ (the 2×2 output gradient of a tile spread over 4×4, zero
 * where the tile is clipped)
 *   dU[ξ][k][c] = Σ_t Ŷ[ξ][k][t] · V[ξ][c][t],   dw[k][c] = Gᵀ dU[k][c] G,
 * 16 GEMMs dU[ξ] (Cout × Cin) += Ŷ[ξ] (Cout × T) · V[ξ]ᵀ (T × Cin) per chunk.
 * Here the transforms run over 16 channels of one tile (gathers across the
 * channel planes), so that V is written tile-major (T × Cin, the GEMM's B
 * rows) and Ŷ straight into the GEMM's A panels ([t][GEMM_MR] per 8 rows).
 * Each member sums its own dU; after a barrier the members add the dU of
 * every member for their share of (k, c) and transform it into dw.
 */

/* Per-member slot of the weight gradient: dU, V (T × Cin), Ŷ panels, tile
 * tables, GEMM workspace. */
static size_t dw_slot_len(int Cin, int Cout, int T)
{
	return 16 * (xi_stride(Cout, Cin) + xi_stride(T, Cin) + xi_stride(u_rows(Cout), T)) +
	       (size_t)3 * T + gemm_workspace(Cout, Cin, T);
}

size_t wino_dw_workspace(int N, int Cin, int H, int W, int Cout, int team)
{
	team = members(N, team);
	return (size_t)team * dw_slot_len(Cin, Cout, chunk_tiles(N, H, W, team));
}

/* Vt[ξ][t·Cin + c] = (Bᵀ d B)[ξ] of tile t, channel c. */
static void dw_input_portable(float *Vt, const float *x, const struct tiles *tb, int nt,
			      const struct wino_job *j)
{
	size_t HW = (size_t)j->H * j->W, vs = xi_stride(j->T, j->Cin);
	for (int t = 0; t < nt; t++)
		for (int c = 0; c < j->Cin; c++)
			input_tile(Vt + (size_t)t * j->Cin + c, vs, x + c * HW, tb, t, j);
}

/* Ŷ[ξ] of tile t, row k at panel k / MR, [t][MR] (rows past Cout zero). */
static void dw_grad_portable(float *Yh, const float *dy, const struct tiles *tb, int nt,
			     const struct wino_job *j)
{
	size_t HW = (size_t)j->H * j->W, ys = xi_stride(u_rows(j->Cout), j->T);
	for (int t = 0; t < nt; t++)
		for (int k = 0; k < u_rows(j->Cout); k++) {
			float e[2][2], f[4][2];
			uint16_t bit = (uint16_t)(1u << (t % 16));
			for (int a = 0; a < 2; a++)
				for (int b = 0; b < 2; b++)
					e[a][b] = k < j->Cout && tb->omask[(t / 16) * 4 + a * 2 + b] & bit ?
						dy[k * HW + tb->ooff[t] + a * j->W + b] : 0.0f;
			/* f = A e (4×2), Ŷ = f Aᵀ, A = [[1,0],[1,1],[1,-1],[0,-1]] */
			for (int b = 0; b < 2; b++) {
				f[0][b] = e[0][b];
				f[1][b] = e[0][b] + e[1][b];
				f[2][b] = e[0][b] - e[1][b];
				f[3][b] = -e[1][b];
			}
			float *o = Yh + ((size_t)(k / GEMM_MR) * j->T + t) * GEMM_MR + k % GEMM_MR;
			for (int i = 0; i < 4; i++) {
				o[(4 * i + 0) * ys] = f[i][0];
				o[(4 * i + 1) * ys] = f[i][0] + f[i][1];
				o[(4 * i + 2) * ys] = f[i][0] - f[i][1];
				o[(4 * i + 3) * ys] = -f[i][1];
			}
		}
}

#ifdef HAVE_AVX512
__attribute__((target("avx512f")))
static void dw_input_avx512(float *Vt, const float *x, const struct tiles *tb, int nt,
			    const struct wino_job *j)
{
	size_t HW = (size_t)j->H * j->W, vs = xi_stride(j->T, j->Cin);
	__m512i lane = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5,
							      4, 3, 2, 1, 0),
					  _mm512_set1_epi32((int)HW));
	for (int t = 0; t < nt; t++) {
		uint16_t bit = (uint16_t)(1u << (t % 16));
		for (int c0 = 0; c0 < j->Cin; c0 += 16) {
			__mmask16 cm = j->Cin - c0 >= 16 ? 0xffff : (__mmask16)((1u << (j->Cin - c0)) - 1);
			const float *xc = x + c0 * HW;
			__m512 d[4][4], b[4][4];
			for (int r = 0; r < 4; r++)
				for (int s = 0; s < 4; s++) {
					__mmask16 m = tb->imask[(t / 16) * 16 + r * 4 + s] & bit ? cm : 0;
					__m512i ix = _mm512_add_epi32(lane, _mm512_set1_epi32(
						tb->ioff[t] + r * j->W + s));
					d[r][s] = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, ix, xc, 4);
				}
			for (int s = 0; s < 4; s++) {
				b[0][s] = _mm512_sub_ps(d[0][s], d[2][s]);
				b[1][s] = _mm512_add_ps(d[1][s], d[2][s]);
				b[2][s] = _mm512_sub_ps(d[2][s], d[1][s]);
				b[3][s] = _mm512_sub_ps(d[1][s], d[3][s]);
			}
			float *v = Vt + (size_t)t * j->Cin + c0;
			__m512 o[4];
			for (int r = 0; r < 4; r++) {
				o[0] = _mm512_sub_ps(b[r][0], b[r][2]);
				o[1] = _mm512_add_ps(b[r][1], b[r][2]);
				o[2] = _mm512_sub_ps(b[r][2], b[r][1]);
				o[3] = _mm512_sub_ps(b[r][1], b[r][3]);
				for (int q = 0; q < 4; q++) {
					if (cm == 0xffff)
						_mm512_storeu_ps(v + (4 * r + q) * vs, o[q]);
					else
						_mm512_mask_storeu_ps(v + (4 * r + q) * vs, cm, o[q]);
				}
			}
		}
	}
}

__attribute__((target("avx512f")))
static void dw_grad_avx512(float *Yh, const float *dy, const struct tiles *tb, int nt,
			   const struct wino_job *j)
{
	size_t HW = (size_t)j->H * j->W, ys = xi_stride(u_rows(j->Cout), j->T);
	int rows = u_rows(j->Cout);
	__m512i lane = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5,
							      4, 3, 2, 1, 0),
					  _mm512_set1_epi32((int)HW));
	for (int t = 0; t < nt; t++) {
		uint16_t bit = (uint16_t)(1u << (t % 16));
		for (int k0 = 0; k0 < rows; k0 += 16) {
			int left = j->Cout - k0;
			__mmask16 km = left >= 16 ? 0xffff : (__mmask16)((1u << left) - 1);
			const float *dk = dy + k0 * HW;
			__m512 e[2][2], f[4][2];
			for (int a = 0; a < 2; a++)
				for (int b = 0; b < 2; b++) {
					__mmask16 m = tb->omask[(t / 16) * 4 + a * 2 + b] & bit ? km : 0;
					__m512i ix = _mm512_add_epi32(lane, _mm512_set1_epi32(
						tb->ooff[t] + a * j->W + b));
					e[a][b] = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, ix, dk, 4);
				}
			for (int b = 0; b < 2; b++) {
				f[0][b] = e[0][b];
				f[1][b] = _mm512_add_ps(e[0][b], e[1][b]);
				f[2][b] = _mm512_sub_ps(e[0][b], e[1][b]);
				f[3][b] = _mm512_sub_ps(_mm512_setzero_ps(), e[1][b]);
			}
			/* lanes 0–7 to panel k0 / MR, lanes 8–15 to the next (if any) */
			float *o = Yh + ((size_t)(k0 / GEMM_MR) * j->T + t) * GEMM_MR;
			size_t next = (size_t)j->T * GEMM_MR;
			int two = k0 + 8 < rows;
			for (int i = 0; i < 4; i++) {
				__m512 q[4];
				q[0] = f[i][0];
				q[1] = _mm512_add_ps(f[i][0], f[i][1]);
				q[2] = _mm512_sub_ps(f[i][0], f[i][1]);
				q[3] = _mm512_sub_ps(_mm512_setzero_ps(), f[i][1]);
				for (int u = 0; u < 4; u++) {
					float *dst = o + (4 * i + u) * ys;
					_mm256_storeu_ps(dst, _mm512_castps512_ps256(q[u]));
					if (two)
						_mm256_storeu_ps(dst + next, _mm256_castpd_ps(
							_mm512_extractf64x4_pd(_mm512_castps_pd(q[u]), 1)));
				}
			}
		}
	}
}
#endif

static void dw_chunk(const struct wino_job *j, const float *x, const float *dy, float *dU,
		     int first, long u0, int nt, float *slot)
{
	int T = j->T, simd = gemm_simd();
	size_t us = xi_stride(j->Cout, j->Cin), vs = xi_stride(T, j->Cin);
	size_t ys = xi_stride(u_rows(j->Cout), T);
	float *Vt = dU + 16 * us, *Yh = Vt + 16 * vs;
	struct tiles tb = tile_tables(Yh + 16 * ys, T);
	float *gws = Yh + 16 * ys + (size_t)3 * T;
	fill_tiles(&tb, j, u0, nt);
#ifdef HAVE_AVX512
	if (simd) {
		dw_input_avx512(Vt, x, &tb, nt, j);
		dw_grad_avx512(Yh, dy, &tb, nt, j);
	} else
#endif
	{
		dw_input_portable(Vt, x, &tb, nt, j);
		dw_grad_portable(Yh, dy, &tb, nt, j);
	}
	(void)simd;
	(void)slot;
	for (int xi = 0; xi < 16; xi++) {
		/* dU[ξ] (Cout × Cin) (+)= Ŷ[ξ] (Cout × nt) · Vt[ξ] (nt × Cin) */
		struct packed_u pu = { Yh + xi * ys, T };
		struct gemm_view A = gemm_dense(NULL, 0);
		A.pack = pack_u;
		A.ctx = &pu;
		struct gemm_view B = gemm_dense(Vt + xi * vs, j->Cin);
		struct gemm_view C = gemm_dense(dU + xi * us, j->Cin);
		gemm(j->Cout, j->Cin, nt, &A, &B, &C, !first, gws);
	}
}

/* dw[k][c] += Gᵀ (Σ over members of dU[k][c]) G for pairs [lo, hi). */
static void dw_finish(const struct wino_job *j, int nm, size_t lo, size_t hi)
{
	size_t us = xi_stride(j->Cout, j->Cin);
	for (size_t p = lo; p < hi; p++) {
		float u[4][4], t[3][4];
		for (int xi = 0; xi < 16; xi++) {
			float sum = 0;
			for (int m = 0; m < nm; m++)
				sum += j->ws[(size_t)m * j->slot + xi * us + p];
			u[xi / 4][xi % 4] = sum;
		}
		/* t = Gᵀ u (3×4), Gᵀ = [[1,½,½,0],[0,½,-½,0],[0,½,½,1]] */
		for (int q = 0; q < 4; q++) {
			t[0][q] = u[0][q] + 0.5f * (u[1][q] + u[2][q]);
			t[1][q] = 0.5f * (u[1][q] - u[2][q]);
			t[2][q] = 0.5f * (u[1][q] + u[2][q]) + u[3][q];
		}
		float *d = j->dw + p * 9;
		for (int r = 0; r < 3; r++) {
			d[r * 3 + 0] += t[r][0] + 0.5f * (t[r][1] + t[r][2]);
			d[r * 3 + 1] += 0.5f * (t[r][1] - t[r][2]);
			d[r * 3 + 2] += 0.5f * (t[r][1] + t[r][2]) + t[r][3];
		}
	}
}

static void dw_member(void *p, int rank, int size)
{
	struct wino_job *j = p;
	int nm = members(j->N, size);
	if (rank < nm) {
		int n0 = (int)((long)j->N * rank / nm), n1 = (int)((long)j->N * (rank + 1) / nm);
		float *slot = j->ws + (size_t)rank * j->slot;
		const float *x = j->x + (size_t)n0 * j->Cin * j->H * j->W;
		const float *dy = j->dy + (size_t)n0 * j->Cout * j->H * j->W;
		long tiles = (long)(n1 - n0) * j->TT;
		for (long u = 0; u < tiles; u += j->T) {
			int nt = tiles - u < j->T ? (int)(tiles - u) : j->T;
			dw_chunk(j, x, dy, slot, u == 0, u, nt, slot);
		}
	}
	team_barrier(size > 1 ? j->tm : NULL);
	size_t lo, hi;
	team_share((size_t)j->Cout * j->Cin, 16, rank, size, &lo, &hi);
	dw_finish(j, nm, lo, hi);
}

void wino_dw(float *dw, const float *dy, const float *x, int N, int Cin, int H, int W, int Cout,
	     float *ws, struct team *tm)
{
	int team = team_size(tm);
	struct wino_job j = { NULL, x, NULL, 0, 0, N, Cin, H, W, Cout, 0,
			      (W + 1) / 2, ((H + 1) / 2) * ((W + 1) / 2), ws, 0, tm, dw, dy };
	j.T = chunk_tiles(N, H, W, members(N, team));
	j.slot = dw_slot_len(Cin, Cout, j.T);
	team_run(team > 1 ? tm : NULL, dw_member, &j);
}

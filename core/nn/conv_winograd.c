/*
 * core/nn/conv_winograd.c — 3×3 stride-1 pad-1 convolution by Winograd's
 * F(m×m, 3×3), m = 2 or 4 (conv_winograd_impl.h).
 *
 * The output is cut into m×m tiles; tile (ti, tj) reads the α×α input patch
 * d (α = m + 2) from row m·ti − 1, column m·tj − 1 (zeros outside the image)
 * and
 *   Y = Aᵀ [ Σ_c U_c ⊙ V_c ] A,   U = G g Gᵀ (per (k, c)),  V = Bᵀ d B,
 * with, for F(2×2, 3×3),
 *   Bᵀ = [[1,0,-1,0],[0,1,1,0],[0,-1,1,0],[0,1,0,-1]],
 *   G  = [[1,0,0],[½,½,½],[½,-½,½],[0,0,1]],
 *   Aᵀ = [[1,1,1,0],[0,1,-1,-1]],
 * and for F(4×4, 3×3) (interpolation points 0, ±1, ±2, ∞)
 *   Bᵀ = [[4,0,-5,0,1,0],[0,-4,-4,1,1,0],[0,4,-4,-1,1,0],
 *         [0,-2,-1,2,1,0],[0,2,-1,-2,1,0],[0,4,0,-5,0,1]],
 *   G  = [[¼,0,0],[-⅙,-⅙,-⅙],[-⅙,⅙,-⅙],[1/24,1/12,⅙],[1/24,-1/12,⅙],[0,0,1]],
 *   Aᵀ = [[1,1,1,1,1,0],[0,1,-1,2,-2,0],[0,1,1,4,4,0],[0,1,-1,8,-8,1]].
 * The sum over c is, for each of the α² positions ξ of the transforms, a
 * GEMM M[ξ] (Cout × T) = U[ξ] (Cout × Cin) · V[ξ] (Cin × T) over a chunk of
 * T tiles (core/base/gemm.c): α² multiplications per tile and channel pair
 * instead of the direct 9·m², 2.25× fewer for m = 2 and 4× for m = 4 (less
 * where the last tile row and column are partly outside the image and
 * clipped). F(4×4) rounds more (its transforms hold 8 and 1/24), so
 * wino_tile() takes it only where it pays.
 *
 * Threads: U is computed by all members (split by 16 rows of one column at
 * a time), then, after one barrier, each member runs its contiguous range of
 * samples in chunks of T tiles with its own V, M and GEMM workspace. U and V
 * are written in the GEMM's packed panel layouts and read in place. The
 * transforms run over 16 tiles at a time as 16-lane vectors: AVX-512
 * gathers of the patches (masked at the border) and scatters of the outputs
 * (masked where a tile is clipped), chosen at run time (cpu_avx512()); scalar
 * loads and stores otherwise. The arithmetic of the transforms is written
 * once, on GCC vectors, for both. They walk plane by plane and prefetch the
 * planes ahead: a gather that misses the cache stalls the core.
 *
 * The weight gradient (wino_dw, at the end of the file) is the adjoint of
 * the same computation: α² GEMMs dU[ξ] += Ŷ[ξ]·V[ξ]ᵀ, then dw = Gᵀ dU G.
 */
#include "nn/conv_winograd_impl.h"
#include "base/cpu_impl.h"
#include "base/gemm_impl.h"
#include "base/team_impl.h"

#include <stdint.h>
#include <string.h>

/* Tiles a chunk aims at: a multiple of GEMM_NR (the GEMM's panel width,
 * itself a multiple of the transforms' 16 lanes). */
#define WINO_T 192

/* Largest α² (F(4×4, 3×3)) and m². */
#define POS_MAX 36
#define OUT_MAX 16

int wino_applies(int R, int S, int stride, int pad)
{
	return R == 3 && S == 3 && stride == 1 && pad == 1;
}

/*
 * F(4×4) on images of at most 8×8 (one or two tiles a side), F(2×2) above.
 * Measured on resnet18's layers (N = 256, 2 threads, forward + backward):
 * F(4×4) is 1.38× faster at 4×4 and 1.31× at 7×7, but only 1.15× at 14×14,
 * where it also raised the crosscheck's step error against PyTorch 4.6×:
 * it rounds about 10× more (max error 5.7e-6 of max |y| at 512 channels,
 * against 5.4e-7).
 */
int wino_tile(int H, int W)
{
	return H <= 8 && W <= 8 ? 4 : 2;
}

/* Members that get samples: the team, at most one per sample. */
static int members(int N, int team)
{
	return team < 1 ? 1 : team > N ? (N < 1 ? 1 : N) : team;
}

static int tiles_across(int n, int m)
{
	return (n + m - 1) / m;
}

static long round_up(long n, long to)
{
	return (n + to - 1) / to * to;
}

/* Tiles per chunk for members of ceil(N / team) samples: whole GEMM_NR
 * panels, at most WINO_T, the chunks of a member about equal. */
static int chunk_tiles(int N, int H, int W, int m, int team)
{
	int per = (N + team - 1) / team;
	long tiles = (long)per * tiles_across(H, m) * tiles_across(W, m);
	long chunks = (tiles + WINO_T - 1) / WINO_T;
	long t = round_up((tiles + chunks - 1) / chunks, GEMM_NR);
	return t < WINO_T ? (int)t : WINO_T;
}

/* Lanes (16 tiles each) the input transform writes for nt tiles: whole
 * GEMM_NR panels, zeros past nt. */
static int input_groups(int nt)
{
	return (int)round_up(nt, GEMM_NR) / 16;
}

/*
 * Floats from one position ξ's matrix to the next (U, V, M hold α² each):
 * whole cache lines (the GEMM reads packed panels in place, 64-byte
 * aligned), plus one, so that the streams a transform reads or writes do
 * not all fall into the same cache sets (the matrices' sizes are often
 * multiples of 4 KiB).
 */
static size_t xi_stride(int rows, int cols)
{
	return (size_t)round_up((long)rows * cols, 16) + 16;
}

/* The workspace's first cache line (sizes below add one line for it). */
static float *align64(float *p)
{
	return (float *)(((uintptr_t)p + 63) & ~(uintptr_t)63);
}

/* Rows of U[ξ] rounded up to whole GEMM A panels. */
static int u_rows(int Cout)
{
	return (Cout + GEMM_MR - 1) / GEMM_MR * GEMM_MR;
}

/* Floats of the tile tables of T tiles (see struct tiles), whole lines. */
static size_t tables_len(int T, int m)
{
	int a = m + 2;
	return (size_t)round_up(2L * T + (long)(T / 16) * (a * a + m * m) / 2 + 1, 16);
}

/* Per-member slot: V (packed B panels), M, tile tables, GEMM workspace. */
static size_t slot_len(int Cin, int Cout, int T, int m)
{
	size_t pos = (size_t)(m + 2) * (m + 2);
	return pos * (xi_stride(Cin, T) + xi_stride(Cout, T)) + tables_len(T, m) +
	       (size_t)round_up((long)gemm_workspace(Cout, T, Cin), 16);
}

size_t wino_workspace(int N, int Cin, int H, int W, int Cout, int m, int team)
{
	team = members(N, team);
	int T = chunk_tiles(N, H, W, m, team);
	size_t pos = (size_t)(m + 2) * (m + 2);
	return 16 + pos * xi_stride(u_rows(Cout), Cin) + (size_t)team * slot_len(Cin, Cout, T, m);
}

struct wino_job {
	float *y;
	const float *x, *w;
	int accumulate, flip, N, Cin, H, W, Cout;
	int m, a, pos;          /* output tile m×m, input patch α×α, α² */
	int T, TW, TT;          /* tiles a chunk, across, per sample */
	float *ws;
	size_t slot;
	struct team *tm;
	float *dw;              /* wino_dw: the weight gradient, from dy */
	const float *dy;
	int prec;               /* enum gemm_prec of the GEMMs */
};

static struct wino_job make_job(int N, int Cin, int H, int W, int Cout, int m, float *ws,
				struct team *tm)
{
	struct wino_job j;
	memset(&j, 0, sizeof j);
	j.N = N, j.Cin = Cin, j.H = H, j.W = W, j.Cout = Cout;
	j.m = m, j.a = m + 2, j.pos = (m + 2) * (m + 2);
	j.TW = tiles_across(W, m);
	j.TT = tiles_across(H, m) * j.TW;
	j.T = chunk_tiles(N, H, W, m, members(N, team_size(tm)));
	j.ws = align64(ws), j.tm = tm;
	return j;
}

/* ---- the transforms, on 16 lanes ----------------------------------------- */

typedef float v16 __attribute__((vector_size(64)));

/* o[i·os] = (Bᵀ d)[i], i < α, for d[k·ds]. */
static inline void bt_1d(v16 *o, int os, const v16 *d, int ds, int a)
{
	v16 d0 = d[0], d1 = d[ds], d2 = d[2 * ds], d3 = d[3 * ds];
	if (a == 4) {
		o[0] = d0 - d2;
		o[os] = d1 + d2;
		o[2 * os] = d2 - d1;
		o[3 * os] = d1 - d3;
		return;
	}
	v16 d4 = d[4 * ds], d5 = d[5 * ds];
	v16 t0 = d4 - 4.0f * d2, t1 = d3 - 4.0f * d1, t2 = d4 - d2, t3 = 2.0f * (d3 - d1);
	o[0] = 4.0f * d0 - 5.0f * d2 + d4;
	o[os] = t0 + t1;
	o[2 * os] = t0 - t1;
	o[3 * os] = t2 + t3;
	o[4 * os] = t2 - t3;
	o[5 * os] = 4.0f * d1 - 5.0f * d3 + d5;
}

/* v = Bᵀ d B for α×α row-major d. */
static inline void bt_2d(v16 *v, const v16 *d, int a)
{
	v16 t[POS_MAX];
	for (int s = 0; s < a; s++)
		bt_1d(t + s, a, d + s, a, a);
	for (int r = 0; r < a; r++)
		bt_1d(v + r * a, 1, t + r * a, 1, a);
}

/* vo[ξ·vs..] (16 floats each) = (Bᵀ d B)[ξ]: the input transform's result
 * stored where a GEMM operand wants it. */
static inline void bt_store(float *vo, size_t vs, const v16 *d, int a)
{
	v16 v[POS_MAX];
	bt_2d(v, d, a);
	for (int p = 0; p < a * a; p++)
		memcpy(vo + p * vs, &v[p], sizeof v[p]);
}

/* o[i·os] = (Aᵀ x)[i], i < m, for x[k·xs], k < α. */
static inline void at_1d(v16 *o, int os, const v16 *x, int xs, int a)
{
	v16 x0 = x[0], x1 = x[xs], x2 = x[2 * xs], x3 = x[3 * xs];
	if (a == 4) {
		o[0] = x0 + x1 + x2;
		o[os] = x1 - x2 - x3;
		return;
	}
	v16 x4 = x[4 * xs], x5 = x[5 * xs];
	v16 s12 = x1 + x2, d12 = x1 - x2, s34 = x3 + x4, d34 = x3 - x4;
	o[0] = x0 + s12 + s34;
	o[os] = d12 + 2.0f * d34;
	o[2 * os] = s12 + 4.0f * s34;
	o[3 * os] = d12 + 8.0f * d34 + x5;
}

/* o = Aᵀ x A (m×m) for α×α row-major x. */
static inline void at_2d(v16 *o, const v16 *x, int a)
{
	int m = a - 2;
	v16 t[OUT_MAX + 8];
	for (int s = 0; s < a; s++)
		at_1d(t + s, a, x + s, a, a);
	for (int i = 0; i < m; i++)
		at_1d(o + i * m, 1, t + i * a, 1, a);
}

/* f[i·fs] = (A e)[i], i < α, for e[k·es], k < m (the adjoint of at_1d). */
static inline void a_1d(v16 *f, int fs, const v16 *e, int es, int a)
{
	v16 e0 = e[0], e1 = e[es];
	if (a == 4) {
		f[0] = e0;
		f[fs] = e0 + e1;
		f[2 * fs] = e0 - e1;
		f[3 * fs] = -e1;
		return;
	}
	v16 e2 = e[2 * es], e3 = e[3 * es];
	v16 se = e0 + e2, so = e1 + e3, se4 = e0 + 4.0f * e2, so2 = 2.0f * e1 + 8.0f * e3;
	f[0] = e0;
	f[fs] = se + so;
	f[2 * fs] = se - so;
	f[3 * fs] = se4 + so2;
	f[4 * fs] = se4 - so2;
	f[5 * fs] = e3;
}

/* f = A e Aᵀ (α×α) for m×m row-major e. */
static inline void a_2d(v16 *f, const v16 *e, int a)
{
	int m = a - 2;
	v16 t[POS_MAX];
	for (int j = 0; j < m; j++)
		a_1d(t + j, m, e + j, m, a);
	for (int i = 0; i < a; i++)
		a_1d(f + i * a, 1, t + i * m, 1, a);
}

/* o[i·os] = (G g)[i], i < α, for g[k·gs], k < 3. */
static inline void g_1d(v16 *o, int os, const v16 *g, int gs, int a)
{
	v16 g0 = g[0], g1 = g[gs], g2 = g[2 * gs];
	if (a == 4) {
		o[0] = g0;
		o[os] = 0.5f * (g0 + g1 + g2);
		o[2 * os] = 0.5f * (g0 - g1 + g2);
		o[3 * os] = g2;
		return;
	}
	const float r6 = 1.0f / 6, r24 = 1.0f / 24;
	o[0] = 0.25f * g0;
	o[os] = -(g0 + g1 + g2) * r6;
	o[2 * os] = -(g0 - g1 + g2) * r6;
	o[3 * os] = (g0 + 2.0f * g1 + 4.0f * g2) * r24;
	o[4 * os] = (g0 - 2.0f * g1 + 4.0f * g2) * r24;
	o[5 * os] = g2;
}

/* o[i·os] = (Gᵀ u)[i], i < 3, for u[k·us], k < α (the adjoint of g_1d). */
static inline void gt_1d(v16 *o, int os, const v16 *u, int us, int a)
{
	v16 u1 = u[us], u2 = u[2 * us], u3 = u[3 * us];
	if (a == 4) {
		o[0] = u[0] + 0.5f * (u1 + u2);
		o[os] = 0.5f * (u1 - u2);
		o[2 * os] = 0.5f * (u1 + u2) + u3;
		return;
	}
	const float r6 = 1.0f / 6, r12 = 1.0f / 12, r24 = 1.0f / 24;
	v16 u4 = u[4 * us];
	o[0] = 0.25f * u[0] - (u1 + u2) * r6 + (u3 + u4) * r24;
	o[os] = (u2 - u1) * r6 + (u3 - u4) * r12;
	o[2 * os] = (u3 + u4 - u1 - u2) * r6 + u[5 * us];
}

/* ---- U = G g Gᵀ ---------------------------------------------------------- */

/*
 * U[ξ] (Cout × Cin) for units q in [lo, hi) of ceil(u_rows(Cout) / 16)·Cin,
 * unit q = the 16 rows from 16·(q / Cin) at column ci = q mod Cin (lanes),
 * stored as the GEMM packs its A operand: panels of GEMM_MR rows, each
 * [ci][GEMM_MR] over all of Cin, so (co, ci) at
 * (co / MR)·Cin·MR + ci·MR + co mod MR; rows past Cout are zero.
 */
/* u[ξ] = (G g Gᵀ)[ξ], ξ < α², for the 9 taps g of 16 lanes. */
__attribute__((always_inline)) static inline void weights_tile(v16 *u, const v16 *g, int a)
{
	v16 t[6 * 3];
	for (int c = 0; c < 3; c++)
		g_1d(t + c, 3, g + c, 3, a);
	for (int i = 0; i < a; i++)
		g_1d(u + i * a, 1, t + 3 * i, 1, a);
}

/* Unit (co0, ci)'s u into U's fp32 panels: lanes 0–7 to panel co0 / MR,
 * lanes 8–15 to the next (if any). */
static inline void weights_store(float *U, const struct wino_job *j, const v16 *u, int co0, int ci)
{
	size_t us = xi_stride(u_rows(j->Cout), j->Cin), next = (size_t)j->Cin * GEMM_MR;
	float *dst = U + ((size_t)(co0 / GEMM_MR) * j->Cin + ci) * GEMM_MR;
	for (int xi = 0; xi < j->a * j->a; xi++) {
		memcpy(dst + xi * us, &u[xi], sizeof(float) * GEMM_MR);
		if (co0 + GEMM_MR < u_rows(j->Cout))
			memcpy(dst + xi * us + next, (const float *)&u[xi] + GEMM_MR,
			       sizeof(float) * GEMM_MR);
	}
}

static void weights_transform(float *U, const struct wino_job *j, size_t lo, size_t hi)
{
	for (size_t q = lo; q < hi; q++) {
		int co0 = (int)(q / j->Cin) * 16, ci = (int)(q % j->Cin);
		v16 g[9], u[POS_MAX];
		for (int l = 0; l < 16; l++) {
			int co = co0 + l;
			if (co >= j->Cout) {
				for (int i = 0; i < 9; i++)
					g[i][l] = 0.0f;
				continue;
			}
			/* flipped: w'[co][ci][r][s] = w[ci][co][2 − r][2 − s] */
			const float *src = j->flip ? j->w + ((size_t)ci * j->Cout + co) * 9 :
						     j->w + ((size_t)co * j->Cin + ci) * 9;
			for (int i = 0; i < 9; i++)
				g[i][l] = src[j->flip ? 8 - i : i];
		}
		weights_tile(u, g, j->a);
		weights_store(U, j, u, co0, ci);
	}
}

/* ---- tile tables --------------------------------------------------------- */

/*
 * For tiles u0 + t (t < nt) of a member's samples: ioff[t] = the patch's
 * origin in x relative to the member's first sample and channel 0, ooff[t]
 * the output tile's origin in y; imask[g·α² + r·α + s] has lane t − 16g set
 * when patch pixel (r, s) lies in the image, omask[g·m² + a·m + b] when
 * output (a, b) does. Lanes up to the end of the last GEMM_NR panel are off.
 */
struct tiles {
	int32_t *ioff, *ooff;
	uint16_t *imask, *omask;
	int n0, n1;             /* the first and last sample the tiles touch */
};

static struct tiles tile_tables(float *at, const struct wino_job *j)
{
	struct tiles tb;
	tb.ioff = (int32_t *)at;
	tb.ooff = (int32_t *)(at + j->T);
	tb.imask = (uint16_t *)(at + 2 * j->T);
	tb.omask = tb.imask + (size_t)(j->T / 16) * j->pos;
	return tb;
}

static void fill_tiles(struct tiles *tb, const struct wino_job *j, long u0, int nt)
{
	tb->n0 = (int)(u0 / j->TT);
	tb->n1 = (int)((u0 + (nt > 0 ? nt - 1 : 0)) / j->TT);
	int H = j->H, W = j->W, m = j->m, a = j->a, groups = input_groups(nt);
	memset(tb->imask, 0, sizeof(uint16_t) * j->pos * groups);
	memset(tb->omask, 0, sizeof(uint16_t) * m * m * groups);
	for (int t = 0; t < groups * 16; t++) {
		tb->ioff[t] = tb->ooff[t] = 0;
		if (t >= nt)
			continue;
		long u = u0 + t;
		int n = (int)(u / j->TT), rem = (int)(u % j->TT);
		int h0 = m * (rem / j->TW), w0 = m * (rem % j->TW);
		tb->ioff[t] = (int32_t)((long)n * j->Cin * H * W + (long)(h0 - 1) * W + (w0 - 1));
		tb->ooff[t] = (int32_t)((long)n * j->Cout * H * W + (long)h0 * W + w0);
		uint16_t bit = (uint16_t)(1u << (t % 16));
		for (int r = 0; r < a; r++)
			for (int s = 0; s < a; s++) {
				int h = h0 - 1 + r, w = w0 - 1 + s;
				if (h >= 0 && h < H && w >= 0 && w < W)
					tb->imask[(t / 16) * j->pos + r * a + s] |= bit;
			}
		for (int r = 0; r < m; r++)
			for (int s = 0; s < m; s++)
				if (h0 + r < H && w0 + s < W)
					tb->omask[(t / 16) * m * m + r * m + s] |= bit;
	}
}

/* ---- portable loads and stores -------------------------------------------- */

/*
 * The scalar counterparts of the AVX-512 versions below: lanes are the 16
 * tiles of a group (forward) or 16 channels of one tile (weight gradient).
 */

/*
 * Where (Bᵀ d B)[ξ] of channel c, tiles 16g.. goes in V: V[ξ] is the GEMM's
 * B operand (Cin × T) packed in place, GEMM_NR-tile panels [c][GEMM_NR].
 */
static float *v_lanes(float *V, const struct wino_job *j, int g, int c)
{
	return V + ((size_t)(16 * g / GEMM_NR) * j->Cin + c) * GEMM_NR + 16 * g % GEMM_NR;
}

/* V[ξ] = (Bᵀ d B)[ξ] for the chunk's tiles t < nt (zeros up to the panel's end). */
static void input_portable(float *V, const float *x, const struct tiles *tb, int nt,
			   const struct wino_job *j)
{
	size_t HW = (size_t)j->H * j->W, vs = xi_stride(j->Cin, j->T);
	int a = j->a, pos = j->pos;
	for (int g = 0; g < input_groups(nt); g++)
		for (int c = 0; c < j->Cin; c++) {
			const float *xc = x + c * HW;
			v16 d[POS_MAX];
			for (int p = 0; p < pos; p++) {
				int off = (p / a) * j->W + p % a;
				uint16_t mk = tb->imask[g * pos + p];
				for (int l = 0; l < 16; l++)
					d[p][l] = mk >> l & 1 ? xc[tb->ioff[16 * g + l] + off] : 0.0f;
			}
			bt_store(v_lanes(V, j, g, c), vs, d, a);
		}
}

/* y tile (+)= Aᵀ M A for the chunk's tiles, clipped to the image. */
static void output_portable(float *y, const float *M, const struct tiles *tb, int nt,
			    const struct wino_job *j)
{
	size_t HW = (size_t)j->H * j->W, ms = xi_stride(j->Cout, j->T);
	int a = j->a, m = j->m;
	for (int g = 0; g < (nt + 15) / 16; g++)
		for (int k = 0; k < j->Cout; k++) {
			v16 x[POS_MAX], o[OUT_MAX];
			for (int p = 0; p < j->pos; p++)
				memcpy(&x[p], M + (size_t)k * j->T + 16 * g + p * ms, sizeof x[p]);
			at_2d(o, x, a);
			for (int q = 0; q < m * m; q++) {
				uint16_t mk = tb->omask[g * m * m + q];
				for (int l = 0; l < 16; l++) {
					if (!(mk >> l & 1))
						continue;
					float *d = y + k * HW + tb->ooff[16 * g + l] + (q / m) * j->W + q % m;
					*d = j->accumulate ? *d + o[q][l] : o[q][l];
				}
			}
		}
}

/*
 * Where (Bᵀ d B)[ξ] of tile t, channels c0.. goes in Vt: Vt[ξ] is the
 * weight gradient GEMM's B operand (T × Cin) packed in place, GEMM_NR-channel
 * panels [t][GEMM_NR] (channels up to the panel's end zero).
 */
static float *vt_lanes(float *Vt, const struct wino_job *j, int t, int c0)
{
	return Vt + ((size_t)(c0 / GEMM_NR) * j->T + t) * GEMM_NR + c0 % GEMM_NR;
}

/* Channels the packed Vt holds: whole GEMM_NR panels. */
static int vt_channels(int Cin)
{
	return (int)round_up(Cin, GEMM_NR);
}

/* Vt[ξ] = (Bᵀ d B)[ξ] of tile t, channel c, for t < nt. */
static void dw_input_portable(float *Vt, const float *x, const struct tiles *tb, int nt,
			      const struct wino_job *j)
{
	size_t HW = (size_t)j->H * j->W, vs = xi_stride(j->T, vt_channels(j->Cin));
	int a = j->a, pos = j->pos;
	for (int t = 0; t < nt; t++)
		for (int c0 = 0; c0 < vt_channels(j->Cin); c0 += 16) {
			int lanes = j->Cin - c0 < 16 ? j->Cin - c0 : 16;
			v16 d[POS_MAX];
			for (int p = 0; p < pos; p++) {
				int in = tb->imask[(t / 16) * pos + p] >> (t % 16) & 1;
				const float *src = x + c0 * HW + tb->ioff[t] + (p / a) * j->W + p % a;
				for (int l = 0; l < 16; l++)
					d[p][l] = in && l < lanes ? src[l * HW] : 0.0f;
			}
			bt_store(vt_lanes(Vt, j, t, c0), vs, d, a);
		}
}

/* Ŷ[ξ] of tile t, row k at panel k / MR, [t][MR] (rows past Cout zero). */
static void dw_grad_portable(float *Yh, const float *dy, const struct tiles *tb, int nt,
			     const struct wino_job *j)
{
	size_t HW = (size_t)j->H * j->W, ys = xi_stride(u_rows(j->Cout), j->T);
	int a = j->a, m = j->m, rows = u_rows(j->Cout);
	for (int t = 0; t < nt; t++)
		for (int k0 = 0; k0 < rows; k0 += 16) {
			int lanes = j->Cout - k0 < 16 ? j->Cout - k0 : 16;
			v16 e[OUT_MAX], f[POS_MAX];
			for (int q = 0; q < m * m; q++) {
				int in = tb->omask[(t / 16) * m * m + q] >> (t % 16) & 1;
				const float *src = dy + k0 * HW + tb->ooff[t] + (q / m) * j->W + q % m;
				for (int l = 0; l < 16; l++)
					e[q][l] = in && l < lanes ? src[l * HW] : 0.0f;
			}
			a_2d(f, e, a);
			for (int l = 0; l < 16 && k0 + l < rows; l++) {
				int k = k0 + l;
				float *o = Yh + ((size_t)(k / GEMM_MR) * j->T + t) * GEMM_MR + k % GEMM_MR;
				for (int p = 0; p < j->pos; p++)
					o[p * ys] = f[p][l];
			}
		}
}

/* ---- AVX-512 loads and stores --------------------------------------------- */

#if CPU_HAVE_AVX512
#define AVX512 CPU_AVX512_TARGET __attribute__((always_inline)) static inline

/* Lane l holds l·stride. */
AVX512 __m512i lane_offsets(int stride)
{
	return _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3,
						   2, 1, 0),
				  _mm512_set1_epi32(stride));
}

/* Prefetch planes c..c + nc − 1 (those below C) of samples n0..n1 (planes
 * of HW floats, C a sample). */
static inline void prefetch_planes(const float *x, int n0, int n1, int C, int c, int nc,
				   size_t HW)
{
	if (c + nc > C)
		nc = C - c;
	for (int n = n0; n <= n1 && nc > 0; n++) {
		const char *pl = (const char *)(x + ((size_t)n * C + c) * HW);
		for (size_t b = 0; b < nc * HW * sizeof(float); b += 64)
			__builtin_prefetch(pl + b);
	}
}

AVX512 void input_avx512_a(float *V, const float *x, const struct tiles *tb, int nt,
			   const struct wino_job *j, int a)
{
	size_t HW = (size_t)j->H * j->W, vs = xi_stride(j->Cin, j->T);
	int pos = a * a;
	/* channel by channel: a channel's planes of the chunk's samples stay in
	 * cache while all groups of tiles gather from them, and the planes two
	 * channels ahead are prefetched (gathers that miss stall the core) */
	for (int c = 0; c < j->Cin; c++) {
		prefetch_planes(x, tb->n0, tb->n1, j->Cin, c + 2, 1, HW);
		for (int g = 0; g < input_groups(nt); g++) {
			__m512i idx = _mm512_loadu_si512(tb->ioff + 16 * g);
			const uint16_t *mk = tb->imask + g * pos;
			const float *xc = x + c * HW;
			v16 d[POS_MAX];
			for (int p = 0; p < pos; p++) {
				__m512i ix = _mm512_add_epi32(idx, _mm512_set1_epi32((p / a) * j->W + p % a));
				d[p] = (v16)_mm512_mask_i32gather_ps(_mm512_setzero_ps(), mk[p], ix, xc, 4);
			}
			bt_store(v_lanes(V, j, g, c), vs, d, a);
		}
	}
}

AVX512 void output_avx512_a(float *y, const float *M, const struct tiles *tb, int nt,
			    const struct wino_job *j, int a)
{
	size_t HW = (size_t)j->H * j->W, ms = xi_stride(j->Cout, j->T);
	int m = a - 2, pos = a * a;
	/* plane by plane, two ahead prefetched, as in the input transform */
	for (int k = 0; k < j->Cout; k++) {
		prefetch_planes(y, tb->n0, tb->n1, j->Cout, k + 2, 1, HW);
		for (int g = 0; g < (nt + 15) / 16; g++) {
			__m512i idx = _mm512_loadu_si512(tb->ooff + 16 * g);
			const uint16_t *mk = tb->omask + g * m * m;
			const float *mm = M + (size_t)k * j->T + 16 * g;
			float *yk = y + k * HW;
			v16 x[POS_MAX], o[OUT_MAX];
			for (int p = 0; p < pos; p++)
				x[p] = (v16)_mm512_loadu_ps(mm + p * ms);
			at_2d(o, x, a);
			for (int q = 0; q < m * m; q++) {
				__m512i ix = _mm512_add_epi32(idx, _mm512_set1_epi32((q / m) * j->W + q % m));
				__m512 val = (__m512)o[q];
				if (j->accumulate)
					val = _mm512_add_ps(val, _mm512_mask_i32gather_ps(
						_mm512_setzero_ps(), mk[q], ix, yk, 4));
				_mm512_mask_i32scatter_ps(yk, mk[q], ix, val, 4);
			}
		}
	}
}

AVX512 void dw_input_avx512_a(float *Vt, const float *x, const struct tiles *tb, int nt,
			      const struct wino_job *j, int a)
{
	size_t HW = (size_t)j->H * j->W, vs = xi_stride(j->T, vt_channels(j->Cin));
	int pos = a * a;
	__m512i lane = lane_offsets((int)HW);
	/* 16 planes at a time, the next 16 prefetched */
	for (int c0 = 0; c0 < vt_channels(j->Cin); c0 += 16) {
		int left = j->Cin - c0;
		__mmask16 cm = left >= 16 ? 0xffff : left <= 0 ? 0 : (__mmask16)((1u << left) - 1);
		const float *xc = x + c0 * HW;
		prefetch_planes(x, tb->n0, tb->n1, j->Cin, c0 + 16, 16, HW);
		for (int t = 0; t < nt; t++) {
			const uint16_t *mk = tb->imask + (t / 16) * pos;
			uint16_t bit = (uint16_t)(1u << (t % 16));
			v16 d[POS_MAX];
			for (int p = 0; p < pos; p++) {
				__mmask16 k = mk[p] & bit ? cm : 0;
				__m512i ix = _mm512_add_epi32(lane, _mm512_set1_epi32(
					tb->ioff[t] + (p / a) * j->W + p % a));
				d[p] = (v16)_mm512_mask_i32gather_ps(_mm512_setzero_ps(), k, ix, xc, 4);
			}
			bt_store(vt_lanes(Vt, j, t, c0), vs, d, a);
		}
	}
}

AVX512 void dw_grad_avx512_a(float *Yh, const float *dy, const struct tiles *tb, int nt,
			     const struct wino_job *j, int a)
{
	size_t HW = (size_t)j->H * j->W, ys = xi_stride(u_rows(j->Cout), j->T);
	int m = a - 2, pos = a * a, rows = u_rows(j->Cout);
	__m512i lane = lane_offsets((int)HW);
	/* 16 planes at a time, the next 16 prefetched */
	for (int k0 = 0; k0 < rows; k0 += 16) {
		int left = j->Cout - k0;
		__mmask16 km = left >= 16 ? 0xffff : (__mmask16)((1u << left) - 1);
		const float *dk = dy + k0 * HW;
		prefetch_planes(dy, tb->n0, tb->n1, j->Cout, k0 + 16, 16, HW);
		for (int t = 0; t < nt; t++) {
			const uint16_t *mk = tb->omask + (t / 16) * m * m;
			uint16_t bit = (uint16_t)(1u << (t % 16));
			v16 e[OUT_MAX], f[POS_MAX];
			for (int q = 0; q < m * m; q++) {
				__mmask16 k = mk[q] & bit ? km : 0;
				__m512i ix = _mm512_add_epi32(lane, _mm512_set1_epi32(
					tb->ooff[t] + (q / m) * j->W + q % m));
				e[q] = (v16)_mm512_mask_i32gather_ps(_mm512_setzero_ps(), k, ix, dk, 4);
			}
			a_2d(f, e, a);
			/* lanes 0–7 to panel k0 / MR, lanes 8–15 to the next (if any) */
			float *o = Yh + ((size_t)(k0 / GEMM_MR) * j->T + t) * GEMM_MR;
			size_t next = (size_t)j->T * GEMM_MR;
			int two = k0 + 8 < rows;
			for (int p = 0; p < pos; p++) {
				__m512 q = (__m512)f[p];
				_mm256_storeu_ps(o + p * ys, _mm512_castps512_ps256(q));
				if (two)
					_mm256_storeu_ps(o + p * ys + next, _mm256_castpd_ps(
						_mm512_extractf64x4_pd(_mm512_castps_pd(q), 1)));
			}
		}
	}
}

/* r[k] lane l = r[l] lane k before (k, l < 16), in registers: unpack, then
 * 64-bit, 128-bit and 256-bit lane shuffles. */
AVX512 void transpose16_regs(__m512 r[16])
{
	__m512 t[16];
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
	for (int i = 0; i < 16; i += 8)
		for (int k = 0; k < 4; k++) {
			t[i + k] = _mm512_shuffle_f32x4(r[i + k], r[i + k + 4], 0x88);
			t[i + k + 4] = _mm512_shuffle_f32x4(r[i + k], r[i + k + 4], 0xdd);
		}
	for (int k = 0; k < 8; k++) {
		r[k] = _mm512_shuffle_f32x4(t[k], t[k + 8], 0x88);
		r[k + 8] = _mm512_shuffle_f32x4(t[k], t[k + 8], 0xdd);
	}
}

/* The 9 taps of output channels co0..co0 + 15 at input channel ci (lanes;
 * 0 past Cout): each channel's 9 contiguous taps loaded at once, then
 * transposed in registers. Loading them lane by lane went through the
 * stack and took most of U's time; 9 gathers (16 cache lines each) were
 * hardly faster. */
/* weights_gather prefetches this many input channels ahead (4, 8 and 16
 * measured alike; without it the loads of w took 1.5× as long). */
#define WG_AHEAD 8
AVX512 void weights_gather(v16 *g, const struct wino_job *j, int co0, int ci)
{
	__m512 r[16];
	/* the same taps WG_AHEAD channels on: w's rows are read from memory */
	ptrdiff_t ahead = (ptrdiff_t)WG_AHEAD * 9 * (j->flip ? j->Cout : 1);
	for (int l = 0; l < 16; l++) {
		int co = co0 + l;
		/* flipped: w'[co][ci][r][s] = w[ci][co][2 − r][2 − s] */
		const float *src = j->flip ? j->w + ((size_t)ci * j->Cout + co) * 9 :
					     j->w + ((size_t)co * j->Cin + ci) * 9;
		r[l] = co >= j->Cout ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(0x1ff, src);
		if (co < j->Cout && ci + WG_AHEAD < j->Cin)
			_mm_prefetch((const char *)(src + ahead), _MM_HINT_T0);
	}
	transpose16_regs(r);
	for (int i = 0; i < 9; i++)
		g[i] = (v16)r[j->flip ? 8 - i : i];
}

/* weights_transform on AVX-512 (the same arithmetic, so the same U). */
CPU_AVX512_TARGET static void weights_transform_avx512(float *U, const struct wino_job *j,
							size_t lo, size_t hi)
{
	for (size_t q = lo; q < hi; q++) {
		int co0 = (int)(q / j->Cin) * 16, ci = (int)(q % j->Cin);
		v16 g[9], u[POS_MAX];
		weights_gather(g, j, co0, ci);
		weights_tile(u, g, j->a);
		weights_store(U, j, u, co0, ci);
	}
}

/*
 * U straight as the bf16 pairs the GEMM reads (gemm_view.pairs'
 * layout: panel [Cin/2][MR][2], an odd Cin's last pair completed with 0),
 * for units q in [lo, hi) of ceil(u_rows(Cout) / 16)·ceil(Cin / 2): 16
 * rows from 16·(q / ⌈Cin/2⌉) at channels ci, ci + 1, ci = 2·(q mod ⌈Cin/2⌉).
 * The same fp32 u and the same rounding (vcvtne2ps2bf16) as converting
 * weights_transform's panels, without writing and rereading them in fp32.
 */
CPU_BF16_TARGET static void weights_pairs(float *U, const struct wino_job *j, size_t lo,
					  size_t hi)
{
	const __m512i mix = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9,
					     24, 8, 23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1,
					     16, 0);
	size_t us = xi_stride(u_rows(j->Cout), j->Cin), cp = (size_t)(j->Cin + 1) / 2;
	for (size_t q = lo; q < hi; q++) {
		int co0 = (int)(q / cp) * 16, ci = 2 * (int)(q % cp);
		v16 g[9], u0[POS_MAX], u1[POS_MAX];
		weights_gather(g, j, co0, ci);
		weights_tile(u0, g, j->a);
		if (ci + 1 < j->Cin) {
			weights_gather(g, j, co0, ci + 1);
			weights_tile(u1, g, j->a);
		} else {
			for (int xi = 0; xi < j->a * j->a; xi++)
				u1[xi] = (v16)_mm512_setzero_ps();
		}
		/* words 2t, 2t + 1 = row co0 + t at ci, ci + 1 */
		uint16_t *dst = (uint16_t *)(U + (size_t)(co0 / GEMM_MR) * j->Cin * GEMM_MR) +
				(size_t)ci * GEMM_MR;
		size_t next = (size_t)2 * j->Cin * GEMM_MR; /* the next panel, in words */
		int two = co0 + GEMM_MR < u_rows(j->Cout);
		for (int xi = 0; xi < j->a * j->a; xi++) {
			__m512i h = _mm512_permutexvar_epi16(
				mix, (__m512i)_mm512_cvtne2ps_pbh((__m512)u1[xi], (__m512)u0[xi]));
			uint16_t *d = (uint16_t *)(void *)(U + xi * us) + (dst - (uint16_t *)U);
			_mm256_storeu_si256((__m256i *)d, _mm512_castsi512_si256(h));
			if (two)
				_mm256_storeu_si256((__m256i *)(d + next),
						    _mm512_extracti64x4_epi64(h, 1));
		}
	}
}

/* Each transform compiled twice, with α a constant (4 or 6): name_avx512
 * (dst, src, tiles, nt, job) picks the one for the job's α. */
#define BY_ALPHA(name)                                                              \
	CPU_AVX512_TARGET static void name##_avx512(                                    \
		float *dst, const float *src, const struct tiles *tb, int nt,           \
		const struct wino_job *j)                                               \
	{                                                                               \
		if (j->a == 4)                                                          \
			name##_avx512_a(dst, src, tb, nt, j, 4);                        \
		else                                                                    \
			name##_avx512_a(dst, src, tb, nt, j, 6);                        \
	}

BY_ALPHA(input)
BY_ALPHA(output)
BY_ALPHA(dw_input)
BY_ALPHA(dw_grad)

/* name_avx512 or name_portable, whichever cpu_avx512() says runs. */
#define TRANSFORM(name, ...) \
	(cpu_avx512() ? name##_avx512(__VA_ARGS__) : name##_portable(__VA_ARGS__))
#else
#define TRANSFORM(name, ...) name##_portable(__VA_ARGS__)
#endif

/* ---- one member ---------------------------------------------------------- */

/* Whether U is written as bf16 pairs once (weights_pairs) for products in
 * bf16. */
static int pairs_u(const struct wino_job *j)
{
	return j->prec == GEMM_BF16 && cpu_bf16();
}

static void chunk(const struct wino_job *j, const float *U, const float *x, float *y, long u0,
		  int nt, float *slot)
{
	int T = j->T;
	size_t vs = xi_stride(j->Cin, T), ms = xi_stride(j->Cout, T);
	float *V = slot, *M = V + j->pos * vs;
	struct tiles tb = tile_tables(M + j->pos * ms, j);
	float *gws = M + j->pos * ms + tables_len(T, j->m);
	fill_tiles(&tb, j, u0, nt);
	TRANSFORM(input, V, x, &tb, nt, j);
	size_t us = xi_stride(u_rows(j->Cout), j->Cin);
	for (int xi = 0; xi < j->pos; xi++) {
		/* M[ξ] (Cout × nt) = U[ξ] (Cout × Cin) · V[ξ] (Cin × nt), both packed */
		struct gemm_view A = gemm_packed(U + xi * us, (ptrdiff_t)j->Cin * GEMM_MR);
		struct gemm_view B = gemm_packed(V + xi * vs, (ptrdiff_t)j->Cin * GEMM_NR);
		A.pairs = pairs_u(j);
		struct gemm_view C = gemm_dense(M + xi * ms, T);
		gemm_prec(j->Cout, nt, j->Cin, &A, &B, &C, 0, (enum gemm_prec)j->prec, gws);
	}
	TRANSFORM(output, y, M, &tb, nt, j);
}

static void member(void *p, int rank, int size)
{
	struct wino_job *j = p;
	float *U = j->ws;
	size_t blocks = (size_t)(u_rows(j->Cout) + 15) / 16, lo, hi;
#if CPU_HAVE_AVX512
	if (pairs_u(j)) {
		/* U as bf16 pairs, once: every chunk's products read it as is */
		team_share(blocks * (size_t)((j->Cin + 1) / 2), 1, rank, size, &lo, &hi);
		weights_pairs(U, j, lo, hi);
	} else {
		team_share(blocks * (size_t)j->Cin, 1, rank, size, &lo, &hi);
		if (cpu_avx512())
			weights_transform_avx512(U, j, lo, hi);
		else
			weights_transform(U, j, lo, hi);
	}
#else
	team_share(blocks * (size_t)j->Cin, 1, rank, size, &lo, &hi);
	weights_transform(U, j, lo, hi);
#endif
	team_barrier(size > 1 ? j->tm : NULL);
	int nm = members(j->N, size);
	if (rank >= nm)
		return;
	int n0 = (int)((long)j->N * rank / nm), n1 = (int)((long)j->N * (rank + 1) / nm);
	float *slot = j->ws + j->pos * xi_stride(u_rows(j->Cout), j->Cin) + (size_t)rank * j->slot;
	const float *x = j->x + (size_t)n0 * j->Cin * j->H * j->W;
	float *y = j->y + (size_t)n0 * j->Cout * j->H * j->W;
	long tiles = (long)(n1 - n0) * j->TT;
	for (long u = 0; u < tiles; u += j->T) {
		int nt = tiles - u < j->T ? (int)(tiles - u) : j->T;
		chunk(j, U, x, y, u, nt, slot);
	}
}

void wino_conv(float *y, int accumulate, const float *x, const float *w, int flip, int N,
	       int Cin, int H, int W, int Cout, int m, float *ws, struct team *tm, int prec)
{
	struct wino_job j = make_job(N, Cin, H, W, Cout, m, ws, tm);
	j.y = y, j.x = x, j.w = w, j.accumulate = accumulate, j.flip = flip, j.prec = prec;
	j.slot = slot_len(Cin, Cout, j.T, m);
	int team = team_size(tm);
	team_run(team > 1 ? tm : NULL, member, &j);
}

/* ---- the weight gradient -------------------------------------------------
 *
 * The forward is linear in U: y = Aᵀ [Σ_c U_c ⊙ V_c] A per tile, so with
 * Ŷ = A dY Aᵀ (the m×m output gradient of a tile spread over α×α, zero
 * where the tile is clipped)
 *   dU[ξ][k][c] = Σ_t Ŷ[ξ][k][t] · V[ξ][c][t],   dw[k][c] = Gᵀ dU[k][c] G,
 * α² GEMMs dU[ξ] (Cout × Cin) += Ŷ[ξ] (Cout × T) · V[ξ]ᵀ (T × Cin) per chunk.
 * Here the transforms run over 16 channels of one tile (gathers across the
 * channel planes), so that V is written tile-major (T × Cin, the GEMM's B
 * rows) and Ŷ straight into the GEMM's A panels ([t][GEMM_MR] per 8 rows).
 * Each member sums its own dU; after a barrier the members add the dU of
 * every member for their share of (k, c) and transform it into dw.
 */

/* Per-member slot of the weight gradient: dU, V (T × Cin), Ŷ panels, tile
 * tables, GEMM workspace. */
static size_t dw_slot_len(int Cin, int Cout, int T, int m)
{
	size_t pos = (size_t)(m + 2) * (m + 2);
	return pos * (xi_stride(Cout, Cin) + xi_stride(T, vt_channels(Cin)) +
		      xi_stride(u_rows(Cout), T)) +
	       tables_len(T, m) + (size_t)round_up((long)gemm_workspace(Cout, Cin, T), 16);
}

size_t wino_dw_workspace(int N, int Cin, int H, int W, int Cout, int m, int team)
{
	team = members(N, team);
	return 16 + (size_t)team * dw_slot_len(Cin, Cout, chunk_tiles(N, H, W, m, team), m);
}

static void dw_chunk(const struct wino_job *j, const float *x, const float *dy, float *dU,
		     int first, long u0, int nt)
{
	int T = j->T;
	size_t us = xi_stride(j->Cout, j->Cin), vs = xi_stride(T, vt_channels(j->Cin));
	size_t ys = xi_stride(u_rows(j->Cout), T);
	float *Vt = dU + j->pos * us, *Yh = Vt + j->pos * vs;
	struct tiles tb = tile_tables(Yh + j->pos * ys, j);
	float *gws = Yh + j->pos * ys + tables_len(T, j->m);
	fill_tiles(&tb, j, u0, nt);
	TRANSFORM(dw_input, Vt, x, &tb, nt, j);
	TRANSFORM(dw_grad, Yh, dy, &tb, nt, j);
	for (int xi = 0; xi < j->pos; xi++) {
		/* dU[ξ] (Cout × Cin) (+)= Ŷ[ξ] (Cout × nt) · Vt[ξ] (nt × Cin), both packed */
		struct gemm_view A = gemm_packed(Yh + xi * ys, (ptrdiff_t)T * GEMM_MR);
		struct gemm_view B = gemm_packed(Vt + xi * vs, (ptrdiff_t)T * GEMM_NR);
		struct gemm_view C = gemm_dense(dU + xi * us, j->Cin);
		gemm_prec(j->Cout, j->Cin, nt, &A, &B, &C, !first, (enum gemm_prec)j->prec, gws);
	}
}

/* dw[k][c] += Gᵀ (Σ over members of dU[k][c]) G for pairs p = k·Cin + c in
 * [lo, hi), 16 at a time (lanes). */
static void dw_finish(const struct wino_job *j, int nm, size_t lo, size_t hi)
{
	size_t us = xi_stride(j->Cout, j->Cin);
	int a = j->a;
	for (size_t p = lo; p < hi; p += 16) {
		int lanes = hi - p < 16 ? (int)(hi - p) : 16;
		v16 u[POS_MAX], t[3 * 6], d[9];
		for (int xi = 0; xi < j->pos; xi++) {
			v16 sum = { 0 };
			for (int m = 0; m < nm; m++) {
				v16 part = { 0 };
				memcpy(&part, j->ws + (size_t)m * j->slot + xi * us + p,
				       sizeof(float) * lanes);
				sum += part;
			}
			u[xi] = sum;
		}
		for (int q = 0; q < a; q++)
			gt_1d(t + q, a, u + q, a, a);
		for (int r = 0; r < 3; r++)
			gt_1d(d + 3 * r, 1, t + r * a, 1, a);
		for (int l = 0; l < lanes; l++)
			for (int i = 0; i < 9; i++)
				j->dw[(p + l) * 9 + i] += d[i][l];
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
			dw_chunk(j, x, dy, slot, u == 0, u, nt);
		}
	}
	team_barrier(size > 1 ? j->tm : NULL);
	size_t lo, hi;
	team_share((size_t)j->Cout * j->Cin, 16, rank, size, &lo, &hi);
	dw_finish(j, nm, lo, hi);
}

void wino_dw(float *dw, const float *dy, const float *x, int N, int Cin, int H, int W, int Cout,
	     int m, float *ws, struct team *tm, int prec)
{
	struct wino_job j = make_job(N, Cin, H, W, Cout, m, ws, tm);
	j.x = x, j.dw = dw, j.dy = dy, j.prec = prec;
	j.slot = dw_slot_len(Cin, Cout, j.T, m);
	int team = team_size(tm);
	team_run(team > 1 ? tm : NULL, dw_member, &j);
}

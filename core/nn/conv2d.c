/*
 * core/nn/conv2d.c — 2-D convolution (no bias, zero padding, any kernel R×S,
 * stride and padding) forward and backward on NCHW float32, as GEMMs over
 * chunks of several samples (core/base/gemm.c). Not for pooling.
 *
 * Letters: x[N,C,H,W], w[K,C,R,S], y[N,K,P,Q], P = (H+2·pad−R)/stride+1.
 * A chunk of nb samples has the column matrix col[C·R·S, L], L = nb·P·Q,
 *   col[(c·R + r)·S + s, n·PQ + p·Q + q] = x[n, c, p·stride − pad + r, q·stride − pad + s]
 * (0 outside the image), so that with dY[K, L] the chunk's output gradient
 * (sample n's K×PQ block at columns n·PQ..):
 *   forward:  Y[K, L]    = w[K, CRS] · col[CRS, L]
 *   dw:       dw[K, CRS] += dY[K, L] · colᵀ[L, CRS]
 *   dx:       dcol[CRS, L] = wᵀ[CRS, K] · dY[K, L], then col2im sums every
 *             column entry back into the input pixel it was copied from.
 * Y and dY are read and written in place in NCHW through the GEMM's views
 * (gemm_impl.h). A 1×1, stride-1, pad-0 convolution has col = the chunk's x
 * already, so it skips im2col/col2im.
 *
 * Stride 1 (the common case) never writes col out: the chunk's samples are
 * copied once with a zero border ("planes"), and the GEMM's B panels are
 * packed straight from them (col[(c, r, s), (n, p, q)] = plane_n[c][p + r][q + s],
 * a contiguous run per output row). Its input gradient is then the forward
 * convolution of dY (padded by R − 1 − pad) with the flipped, transposed
 * weights w'[c, (k, r', s')] = w[k, c, R−1−r', S−1−s'], written into dx by
 * the GEMM, so neither dcol nor col2im exist either. Its weight gradient
 * packs colᵀ a panel of 48 (c, r, s) lanes at a time through a small staging
 * block and 16×16 register transposes. Other strides use col explicitly.
 *
 * Narrow layers ("same" padding, stride 1 or 2, at most DIRECT_MAX_PLANES
 * chunk planes a sample: all of resnet20 and convnet; in bf16 also 3×3
 * stride-2 layers up to DIRECT_MAX_PLANES_BF16_S2) skip the GEMM: with
 * 16–64 output channels its packed B panels were amortised over too few
 * rows and packing took longer than the product. They run the direct
 * kernels of core/nn/conv_direct.c on a channel-major copy of each chunk, where
 * every tap is a unit-stride shift of a plane read under a padding mask;
 * the input gradient is the same product over dY (per input phase under
 * stride 2), the weight gradient dot products of such rows. That path can
 * also take a following BN's per-run statistics and input-gradient map
 * (core/nn/conv_bn_impl.h).
 *
 * Wide 3×3 "same" stride-1 layers (both channel counts ≥ WINO_MIN_CHANNELS
 * and too many planes for the direct path: resnet18's layers 2–4) run
 * forward, weight gradient and input gradient by Winograd's F(m×m, 3×3)
 * (core/nn/conv_winograd.c; m = 4 on images up to 8×8, else 2: wino_tile()),
 * GEMMs over transformed tiles with 4× or 2.25× fewer multiplications; the
 * input gradient is there the forward convolution of dY with the flipped,
 * transposed weights. In bf16, m = 2 everywhere, and up to 8×8 the weight
 * gradient is the implicit GEMM's (make_geom says why).
 *
 * Threads (ops_impl.h, team_impl.h): the batch is split into one contiguous
 * range of samples per team member; each member works through its range in
 * chunks with its own slice of the workspace (col or planes, GEMM packing),
 * so members never wait on each other inside a product. The weight gradient
 * is summed per member (member 0 straight into dw, the others into their
 * slices), and after one barrier the slices are added to dw in rank order.
 */
#include "isif/nn/ops.h"
#include "nn/ops_impl.h"
#include "nn/conv_bn_impl.h"
#include "nn/conv_direct_impl.h"
#include "nn/conv_winograd_impl.h"
#include "base/gemm_impl.h"
#include "base/simd_impl.h"
#include "base/team_impl.h"

#include <string.h>

/* A chunk aims at this many output pixels (the GEMMs' N); an explicit
 * column matrix holds at most COL_CAP floats. */
#define CHUNK_PIXELS 2048
#define COL_CAP (2u << 20)

/* The direct path: layers whose chunk copies hold at most this many planes
 * per sample (C·stride² of x, K of dY), in chunks of about this many floats
 * (the copies, the next chunk's sources being prefetched and the tiles'
 * working set share the 1 MiB L2). More planes would leave too few outputs
 * per chunk for the weight gradient's dot products (each reduced once per
 * chunk), and wide layers amortise the GEMM's packing well anyway. */
#define DIRECT_MAX_PLANES 192
/* In bf16 the direct kernels run at twice fp32's rate while the GEMM
 * path's fp32 im2col, packing and conversion do not shrink: a 3×3 stride-2
 * layer with up to this many planes (resnet18's 64 → 128 one: 4·64 + 128)
 * took 0.7× the CPU time of its im2col GEMM there. Wider ones (128 → 256)
 * and 1×1 stride-2 ones measured slower on the direct path. */
#define DIRECT_MAX_PLANES_BF16_S2 384
#define DIRECT_CHUNK_FLOATS (128u << 10)

/* The Winograd path (core/nn/conv_winograd.c) takes 3×3 pad-1 stride-1 layers
 * off the GEMM path when both channel counts reach this (its 16 products
 * have depth Cin and Cout rows: too few leave the GEMM inefficient). */
#define WINO_MIN_CHANNELS 16

struct geom {
	int N, C, H, W, K, R, S, stride, pad;
	int P, Q, CRS, PQ, pointwise, implicit, direct, wino;
	int wm;                /* Winograd's output tile m of F(m×m, 3×3), when wino */
	int wino_dw;           /* wino: dw by Winograd too (else by the implicit GEMM) */
	enum gemm_prec prec;   /* of the GEMMs (conv_shape) */
	int bf_x, bf_dy;       /* direct path in bf16 pairs: forward (over C), dx (over K) */
	int bf_dw;             /* direct path: dw on bf16 copies */
};

/* The direct path's data for one tap list (the forward's, or one input
 * phase's for dx) in the shared slot: packed weights, tap offsets (int32)
 * and the mask table (uint16), as float offsets into the slot. */
struct direct_set {
	int nt;
	size_t pack, off, tab;
};

/* Per-member workspace layout for a team of `team` members, then the
 * members' weight-gradient shares, then data every member reads. */
struct layout {
	int team, nb;           /* members used, samples per chunk */
	size_t col, gemm, part; /* floats per member: col or planes + staging, packing, dw share */
	size_t shared;          /* flipped weights (implicit path); the sets (direct path) */
	struct direct_geom dg;  /* direct path: the chunk layout, */
	struct direct_set f, d[4]; /* the forward (and dw) set, the dx phases' sets */
};

static struct geom make_geom(const struct conv_shape *sh)
{
	const int C = sh->C, H = sh->H, W = sh->W, K = sh->K, R = sh->R, S = sh->S;
	const int stride = sh->stride, pad = sh->pad;
	struct geom g = { sh->N, C, H, W, K, R, S, stride, pad, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
			  (enum gemm_prec)sh->prec, 0, 0, 0 };
	g.P = isif_conv_out(H, R, stride, pad);
	g.Q = isif_conv_out(W, S, stride, pad);
	g.CRS = C * R * S;
	g.PQ = g.P * g.Q;
	g.pointwise = R == 1 && S == 1 && stride == 1 && pad == 0;
	/* the flipped convolution of dx needs a padding R − 1 − pad ≥ 0 */
	g.implicit = stride == 1 && !g.pointwise && pad <= R - 1 && pad <= S - 1;
	/* "same"-padded convolutions of stride 1 or 2 on few channels skip the
	 * GEMM (a 1×1 stride-1 one needs no copy there either) */
	struct direct_geom dg;
	int bf16 = g.prec == GEMM_BF16 && cpu_bf16();
	int max_planes = bf16 && stride == 2 && R == 3 ? DIRECT_MAX_PLANES_BF16_S2 : DIRECT_MAX_PLANES;
	g.direct = R == S && !g.pointwise && C * stride * stride + K <= max_planes &&
		   direct_geom_make(&dg, H, W, R, stride, pad, 1);
	/* wide 3×3 "same" stride-1 layers: forward and dx by Winograd */
	g.wino = !g.direct && wino_applies(R, S, stride, pad) && C >= WINO_MIN_CHANNELS &&
		 K >= WINO_MIN_CHANNELS;
	/* F(4×4) not in bf16: rounding its transformed tiles (it amplifies by
	 * up to 8 each way) errs by up to 2^-6·Σ|x·w|, far beyond rounding x
	 * and w. F(2×2)'s forward and dx stay within that worst case
	 * (2^-8·Σ|x·w|; measured ≤ 0.7 of it) and, with 2.25× fewer products,
	 * beat the implicit GEMM on the maps fp32 takes F(4×4) for; its dw
	 * there (few tiles a map) exceeded it (up to 2.2×): the implicit GEMM
	 * takes dw, within rounding x and dY */
	g.wm = wino_tile(H, W);
	g.wino_dw = 1;
	if (bf16 && g.wm == 4)
		g.wm = 2, g.wino_dw = 0;
	/* bf16 on the direct path pairs channels: even counts only (a 1- or
	 * 3-channel input would multiply by as many zeros as values) */
	int bf = g.direct && bf16;
	g.bf_x = bf && C % 2 == 0;
	g.bf_dy = bf && K % 2 == 0;
	g.bf_dw = bf;
	return g;
}

static size_t max_size(size_t a, size_t b)
{
	return a > b ? a : b;
}

/* Floats of nb samples of x padded by pad, and of dY padded by R−1−pad. */
static size_t planes_len(const struct geom *g, int nb)
{
	size_t xp = (size_t)g->C * (g->H + 2 * g->pad) * (g->W + 2 * g->pad);
	size_t dp = (size_t)g->K * (g->P + 2 * (g->R - 1 - g->pad)) * (g->Q + 2 * (g->S - 1 - g->pad));
	return (size_t)nb * max_size(xp, dp);
}

/* Places a set of nt taps over Cin channels for M output rows at *at. */
static struct direct_set direct_place(size_t *at, int nt, int M, int Cin,
				      const struct direct_geom *dg)
{
	struct direct_set d = { nt, *at, 0, 0 };
	if (!nt)
		return d;
	d.off = d.pack + direct_pack_len(M, Cin * nt);
	d.tab = d.off + (size_t)Cin * nt;
	*at = d.tab + (direct_table_len(dg) + 1) / 2;
	return d;
}

/* The direct path's layout: chunk copies of x and dY (conv_direct_impl.h);
 * shared: the forward set, then one set per dx phase. */
static void direct_layout(struct layout *l, const struct geom *g, int per_thread)
{
	struct direct_tap taps[DIRECT_MAX_TAPS];
	size_t sample = (size_t)(g->C * g->stride * g->stride + g->K) * g->PQ;
	int nb = (int)(DIRECT_CHUNK_FLOATS / sample);
	l->nb = nb < 1 ? 1 : nb > per_thread ? per_thread : nb;
	direct_geom_make(&l->dg, g->H, g->W, g->R, g->stride, g->pad, l->nb);
	/* x's copy, dY's copy, then the bf16 pairs of either, or bf16 copies of
	 * both (dw) */
	size_t lx = direct_buffer_len(&l->dg, g->C, 1), ly = direct_buffer_len(&l->dg, g->K, 0);
	l->col = lx + ly + max_size((lx + ly + 1) / 2 + 16,
				    max_size(direct_pairs_len(&l->dg, g->C, 1),
					     direct_pairs_len(&l->dg, g->K, 0)));
	l->gemm = 0;
	l->part = (size_t)g->K * g->CRS;
	size_t at = 0;
	l->f = direct_place(&at, direct_forward_taps(taps, &l->dg), g->K, g->C, &l->dg);
	for (int ph = 0; ph < 4; ph++) {
		int st = l->dg.st, nt = ph < st * st ? direct_dx_taps(taps, &l->dg, ph / st, ph % st) : 0;
		l->d[ph] = direct_place(&at, nt, g->C, g->K, &l->dg);
	}
	l->shared = at;
}

static struct layout make_layout(const struct geom *g, int threads)
{
	struct layout l;
	l.team = threads < 1 ? 1 : threads > g->N ? g->N : threads;
	if (l.team < 1)
		l.team = 1;
	int per_thread = (g->N + l.team - 1) / l.team;
	if (g->direct) {
		direct_layout(&l, g, per_thread);
		return l;
	}
	int nb = (CHUNK_PIXELS + g->PQ - 1) / g->PQ;
	while (!g->implicit && nb > 1 && (size_t)g->CRS * nb * g->PQ > COL_CAP)
		nb--;
	l.nb = nb > per_thread ? per_thread : nb;
	if (l.nb < 1)
		l.nb = 1;
	int L = l.nb * g->PQ;
	if (g->implicit)
		l.col = planes_len(g, l.nb) + (size_t)GEMM_NR * GEMM_KC;
	else
		l.col = g->pointwise ? 0 : (size_t)g->CRS * L;
	l.gemm = max_size(gemm_workspace(g->K, L, g->CRS),
			  max_size(gemm_workspace(g->K, g->CRS, L), gemm_workspace(g->CRS, L, g->K)));
	if (g->implicit)
		l.gemm = max_size(l.gemm, gemm_workspace(g->C, L, g->K * g->R * g->S));
	l.part = (size_t)g->K * g->CRS;
	l.shared = g->implicit ? (size_t)g->K * g->CRS : 0;
	return l;
}

static size_t layout_total(const struct layout *l)
{
	return (size_t)l->team * (l->col + l->gemm) + (size_t)(l->team - 1) * l->part + l->shared;
}

size_t conv2d_workspace_team(const struct conv_shape *s, int threads)
{
	struct geom g = make_geom(s);
	struct layout l = make_layout(&g, threads);
	size_t len = layout_total(&l);
	/* a model plans its workspace before its precision is set: cover the
	 * bf16 path too where it differs (3×3 stride-2 layers that bf16 runs
	 * direct, DIRECT_MAX_PLANES_BF16_S2) */
	struct conv_shape sb = *s;
	sb.prec = GEMM_BF16;
	struct geom gb = make_geom(&sb);
	if (gb.direct != g.direct) {
		struct layout lb = make_layout(&gb, threads);
		len = max_size(len, layout_total(&lb));
	}
	if (g.wino) {
		/* the forward, dw and dx (one after the other, in the same space),
		 * for the tile of either precision: a model plans its workspace
		 * before its precision is set */
		for (int m = 2; m <= wino_tile(g.H, g.W); m += 2) {
			len = max_size(len, wino_workspace(g.N, g.C, g.H, g.W, g.K, m, threads));
			len = max_size(len, wino_dw_workspace(g.N, g.C, g.H, g.W, g.K, m, threads));
			len = max_size(len, wino_workspace(g.N, g.K, g.H, g.W, g.C, m, threads));
		}
	}
	return len;
}

size_t isif_conv2d_workspace(int N, int C, int H, int W, int K, int R, int S,
			     int stride, int pad)
{
	struct conv_shape s = { N, C, H, W, K, R, S, stride, pad, 0 };
	return conv2d_workspace_team(&s, 1);
}

/* ---- the implicit column matrix (stride 1) ----------------------------- */

/* Zero-padded copies of nb samples: planes[n][c][h + pad_h][w + pad_w] = x. */
static void make_planes(float *planes, const float *x, int nb, int C, int H, int W,
			int pad_h, int pad_w)
{
	int Hp = H + 2 * pad_h, Wp = W + 2 * pad_w;
	for (int n = 0; n < nb; n++)
		for (int c = 0; c < C; c++) {
			float *pc = planes + ((size_t)n * C + c) * Hp * Wp;
			const float *xc = x + ((size_t)n * C + c) * H * W;
			zero_run(pc, pad_h * Wp);
			for (int h = 0; h < H; h++) {
				float *row = pc + (size_t)(h + pad_h) * Wp;
				zero_run(row, pad_w);
				copy_run(row + pad_w, xc + (size_t)h * W, W);
				zero_run(row + pad_w + W, pad_w);
			}
			zero_run(pc + (size_t)(H + pad_h) * Wp, pad_h * Wp);
		}
}

/*
 * The column matrix of a stride-1 convolution over padded planes, for a
 * packer: row k = (c, r, s) of Cin·R·S, column j = (n, p, q) of an output of
 * Po×Qo per sample, value plane_n[c][p + r][q + s].
 */
struct implicit_col {
	const float *planes;
	int Cin, Hp, Wp, R, S, Po, Qo;
	float *stage;           /* GEMM_NR × GEMM_KC floats (weight gradient) */
};

/* A run of columns inside one output row: where it goes and comes from. */
struct segment {
	int at, len;
	const float *src;       /* plane_n row p, column q (add the k offset) */
};

/* Splits columns [j0, j0 + nj) into runs within one output row. */
static int segments(const struct implicit_col *ic, int j0, int nj, struct segment *seg)
{
	int PQ = ic->Po * ic->Qo, n = 0;
	size_t plane = (size_t)ic->Cin * ic->Hp * ic->Wp;
	for (int j = j0; j < j0 + nj;) {
		int s = j / PQ, rem = j % PQ, p = rem / ic->Qo, q = rem % ic->Qo;
		int len = ic->Qo - q < j0 + nj - j ? ic->Qo - q : j0 + nj - j;
		seg[n].at = j - j0;
		seg[n].len = len;
		seg[n].src = ic->planes + s * plane + (size_t)p * ic->Wp + q;
		n++;
		j += len;
	}
	return n;
}

/* Offset of row k = (c, r, s) inside a sample's planes. */
static ptrdiff_t row_offset(const struct implicit_col *ic, int k)
{
	int rs = ic->R * ic->S, c = k / rs, r = k % rs / ic->S, s = k % ic->S;
	return ((ptrdiff_t)c * ic->Hp + r) * ic->Wp + s;
}

/* gemm_pack_fn: B = col, lanes are output pixels (forward, dx). */
static void pack_pixels(void *ctx, float *dst, int j0, int nj, int k0, int kc)
{
	const struct implicit_col *ic = ctx;
	ptrdiff_t off[GEMM_KC];
	struct segment seg[GEMM_NR + 1];
	for (int t = 0; t < kc; t++)
		off[t] = row_offset(ic, k0 + t);
	for (int j = 0; j < nj; j += GEMM_NR) {
		int w = nj - j < GEMM_NR ? nj - j : GEMM_NR;
		int ns = segments(ic, j0 + j, w, seg);
		float *panel = dst + (size_t)j * kc;
		for (int t = 0; t < kc; t++) {
			float *d = panel + (size_t)t * GEMM_NR;
			for (int u = 0; u < ns; u++)
				copy_run(d + seg[u].at, seg[u].src + off[t], seg[u].len);
			if (w < GEMM_NR)
				zero_run(d + w, GEMM_NR - w);
		}
	}
}

/* gemm_pack_fn: B = colᵀ, lanes are rows (c, r, s), depth the pixels (dw):
 * each panel's lanes are staged as rows of kc pixels, then transposed. */
static void pack_rows(void *ctx, float *dst, int j0, int nj, int k0, int kc)
{
	const struct implicit_col *ic = ctx;
	struct segment seg[GEMM_KC + 1];
	int ns = segments(ic, k0, kc, seg);
	for (int j = 0; j < nj; j += GEMM_NR) {
		int w = nj - j < GEMM_NR ? nj - j : GEMM_NR;
		for (int l = 0; l < w; l++) {
			ptrdiff_t off = row_offset(ic, j0 + j + l);
			float *row = ic->stage + (size_t)l * kc;
			for (int u = 0; u < ns; u++)
				copy_run(row + seg[u].at, seg[u].src + off, seg[u].len);
		}
		/* B(k, lane) = stage[lane][k] */
		struct gemm_view st = gemm_dense_t(ic->stage, kc);
		gemm_pack_b(&st, dst + (size_t)j * kc, 0, w, 0, kc);
	}
}

/* ---- the explicit column matrix (other strides) ------------------------- */

/*
 * Output columns q whose input column q·stride − pad + s lies inside
 * [0, W): q in [*lo, *hi). Computed once per kernel column s so the inner
 * loops carry no bounds tests.
 */
static void valid_range(int *lo, int *hi, int s, int stride, int pad, int W, int Q)
{
	int a = pad - s; /* need q·stride ≥ pad − s */
	int l = a <= 0 ? 0 : (a + stride - 1) / stride;
	int b = W - 1 + pad - s; /* need q·stride ≤ W − 1 + pad − s */
	int h = b < 0 ? 0 : b / stride + 1;
	if (h > Q)
		h = Q;
	if (l > h)
		l = h;
	*lo = l;
	*hi = h;
}

/* One sample's block of col: rows of PQ values, ld apart, from x[C, H, W]. */
static void im2col(float *col, size_t ld, const float *x, const struct geom *g)
{
	int H = g->H, W = g->W, P = g->P, Q = g->Q, stride = g->stride, pad = g->pad;
	for (int c = 0; c < g->C; c++) {
		const float *xc = x + (size_t)c * H * W;
		for (int r = 0; r < g->R; r++) {
			for (int s = 0; s < g->S; s++) {
				float *row = col + ((size_t)(c * g->R + r) * g->S + s) * ld;
				int lo, hi;
				valid_range(&lo, &hi, s, stride, pad, W, Q);
				for (int p = 0; p < P; p++) {
					float *out = row + (size_t)p * Q;
					int ih = p * stride - pad + r;
					if (ih < 0 || ih >= H) {
						zero_run(out, Q);
						continue;
					}
					/* input column of q is q·stride + off, ≥ 0 for q ≥ lo */
					const float *in = xc + (size_t)ih * W;
					int off = s - pad;
					zero_run(out, lo);
					if (stride == 1) {
						copy_run(out + lo, in + off + lo, hi - lo);
					} else {
						for (int q = lo; q < hi; q++)
							out[q] = in[q * stride + off];
					}
					zero_run(out + hi, Q - hi);
				}
			}
		}
	}
}

/* dx[C, H, W] (+)= Σ over every column entry copied from that pixel
 * (overwrites unless accumulate). */
static void col2im(float *dx, int accumulate, const float *col, size_t ld, const struct geom *g)
{
	int H = g->H, W = g->W, P = g->P, Q = g->Q, stride = g->stride, pad = g->pad;
	if (!accumulate)
		memset(dx, 0, sizeof(float) * (size_t)g->C * H * W);
	for (int c = 0; c < g->C; c++) {
		float *dxc = dx + (size_t)c * H * W;
		for (int r = 0; r < g->R; r++) {
			for (int s = 0; s < g->S; s++) {
				const float *row = col + ((size_t)(c * g->R + r) * g->S + s) * ld;
				int lo, hi;
				valid_range(&lo, &hi, s, stride, pad, W, Q);
				for (int p = 0; p < P; p++) {
					int ih = p * stride - pad + r;
					if (ih < 0 || ih >= H)
						continue;
					const float *in = row + (size_t)p * Q;
					float *out = dxc + (size_t)ih * W;
					int off = s - pad;
					if (stride == 1) {
						add_run(out + off + lo, in + lo, hi - lo);
					} else {
						for (int q = lo; q < hi; q++)
							out[q * stride + off] += in[q];
					}
				}
			}
		}
	}
}

/* ---- one member's share ------------------------------------------------ */

/* Member t's slices of the workspace. */
static float *slot_col(float *ws, const struct layout *l, int t)
{
	return ws + (size_t)t * (l->col + l->gemm);
}

static float *slot_gemm(float *ws, const struct layout *l, int t)
{
	return slot_col(ws, l, t) + l->col;
}

static float *slot_part(float *ws, const struct layout *l, int t)
{
	return ws + (size_t)l->team * (l->col + l->gemm) + (size_t)(t - 1) * l->part;
}

static float *slot_shared(float *ws, const struct layout *l)
{
	return ws + (size_t)l->team * (l->col + l->gemm) + (size_t)(l->team - 1) * l->part;
}

/* Samples [*n0, *n1) of member t in a team of nt. */
static void share(int N, int nt, int t, int *n0, int *n1)
{
	*n0 = (int)((long)N * t / nt);
	*n1 = (int)((long)N * (t + 1) / nt);
}

/* The padded planes of x for samples [n, n + nb), as an implicit col. */
static struct implicit_col x_col(const struct geom *g, const float *x, int nb, float *col)
{
	make_planes(col, x, nb, g->C, g->H, g->W, g->pad, g->pad);
	struct implicit_col ic = { col, g->C, g->H + 2 * g->pad, g->W + 2 * g->pad, g->R, g->S,
				   g->P, g->Q, col + planes_len(g, nb) };
	return ic;
}

/* ---- the direct path (conv_direct_impl.h) ------------------------------ */

static const int32_t *set_off(const float *shared, const struct direct_set *d)
{
	return (const int32_t *)(shared + d->off);
}

static const uint16_t *set_tab(const float *shared, const struct direct_set *d)
{
	return (const uint16_t *)(shared + d->tab);
}

/* Fills a set's offsets and table (and packed weights unless w is NULL). */
static void fill_set(float *shared, const struct direct_set *d, const struct direct_tap *taps,
		     const float *w, int M, int Cin, int chan_planes, int transpose,
		     const struct geom *g, const struct layout *l)
{
	if (!d->nt)
		return;
	if (w)
		direct_pack(shared + d->pack, w, M, Cin, g->R * g->S, taps, d->nt, transpose);
	direct_offsets((int32_t *)(shared + d->off), Cin, chan_planes, taps, d->nt, &l->dg);
	direct_table((uint16_t *)(shared + d->tab), &l->dg, taps, d->nt);
}

/* Before the members run: the forward set (with w packed for forward,
 * without for backward, where dw reads only its offsets and table), and
 * for backward with dx the phases' sets. */
static void direct_prepare(float *shared, const float *w, int backward, int dx,
			   const struct geom *g, const struct layout *l)
{
	struct direct_tap taps[DIRECT_MAX_TAPS];
	int st = l->dg.st;
	direct_forward_taps(taps, &l->dg);
	fill_set(shared, &l->f, taps, backward ? NULL : w, g->K, g->C, st * st, 0, g, l);
	if (!backward && g->bf_x)
		direct_pack_pairs(shared + l->f.pack, g->K, g->C, l->f.nt);
	for (int ph = 0; backward && dx && ph < st * st; ph++) {
		direct_dx_taps(taps, &l->dg, ph / st, ph % st);
		fill_set(shared, &l->d[ph], taps, w, g->C, g->K, 1, 1, g, l);
		if (g->bf_dy && l->d[ph].nt)
			direct_pack_pairs(shared + l->d[ph].pack, g->C, g->K, l->d[ph].nt);
	}
}

/* The bf16 pair buffer of a member's chunk slice (after x's and dY's copies). */
static uint32_t *slot_pairs(float *col, const struct geom *g, const struct layout *l)
{
	return (uint32_t *)(void *)(col + direct_buffer_len(&l->dg, g->C, 1) +
				    direct_buffer_len(&l->dg, g->K, 0));
}

/* One direct product over Cin channels: fp32 from the chunk copy `in`, or
 * (bf) from its bf16 pairs, already converted into `pairs`. */
static void direct_product(int bf, float *out, ptrdiff_t out_sample, ptrdiff_t out_row,
			   int accumulate, const float *apk, int M, int Cin, int nt, const float *in,
			   uint32_t *pairs, const int32_t *off, const uint16_t *tab,
			   const struct direct_geom *dg, int nb, struct prefetch pf)
{
	if (!bf) {
		direct_conv(out, out_sample, out_row, accumulate, apk, M, Cin * nt, nt, in, off, tab,
			    dg, nb, pf);
		return;
	}
	direct_conv_bf16(out, out_sample, out_row, accumulate, apk, M, (Cin + 1) / 2 * nt, nt,
			 pairs, off, tab, dg, nb, pf);
}

/* Adds samples [n, min(n + nb, n1)) of a tensor of `per` floats per sample. */
static void next_chunk(struct prefetch *pf, const float *t, size_t per, int n, int n1, int nb)
{
	int cnt = n1 - n < nb ? n1 - n : nb;
	if (!t || cnt <= 0 || pf->n == PREFETCH_RANGES)
		return;
	pf->r[pf->n].p = t + (size_t)n * per;
	pf->r[pf->n].len = (size_t)cnt * per * sizeof(float);
	pf->n++;
}

/* y of samples [n0, n1): Y = w·col straight from chunk copies of x; with
 * run_mean, each chunk's per-run statistics (conv_bn_impl.h) while it is
 * in cache. */
static void direct_forward(float *y, float *run_mean, float *run_m2, const float *x,
			   const float *shared, const struct geom *g, const struct layout *l,
			   int n0, int n1, float *xg)
{
	size_t xs = (size_t)g->C * g->H * g->W, ys = (size_t)g->K * g->PQ;
	const struct direct_set *f = &l->f;
	for (int n = n0; n < n1; n += l->nb) {
		int nb = n1 - n < l->nb ? n1 - n : l->nb;
		struct prefetch pf = { 0 };
		next_chunk(&pf, x, xs, n + nb, n1, l->nb);
		direct_fill(xg, x + n * xs, g->C, (ptrdiff_t)xs, nb, 1, &l->dg);
		uint32_t *pairs = slot_pairs(xg, g, l);
		if (g->bf_x)
			direct_pairs(pairs, xg, g->C, 1, &l->dg);
		direct_product(g->bf_x, y + n * ys, (ptrdiff_t)ys, g->PQ, 0, shared + f->pack, g->K,
			       g->C, f->nt, xg, pairs, set_off(shared, f), set_tab(shared, f),
			       &l->dg, nb, pf);
		for (int i = n; run_mean && i < n + nb; i++)
			for (int k = 0; k < g->K; k++)
				bn_run_stats(&run_mean[(size_t)i * g->K + k], &run_m2[(size_t)i * g->K + k],
					     y + i * ys + (size_t)k * g->PQ, g->PQ);
	}
}

/* dx of a chunk from its dY copy: stride 1 straight into dx; stride 2 one
 * product per input phase into the phase planes of `ph` (the x copy, no
 * longer needed), then interleaved into dx. */
static void direct_dx(float *dx, int dx_acc, const float *dyg, const float *shared,
		      const struct geom *g, const struct layout *l, int nb, float *ph,
		      struct prefetch pf)
{
	size_t xs = (size_t)g->C * g->H * g->W;
	int st = l->dg.st;
	uint32_t *pairs = slot_pairs(ph, g, l);   /* ph is the member's col slice */
	if (g->bf_dy)
		direct_pairs(pairs, dyg, g->K, 0, &l->dg);
	if (st == 1) {
		const struct direct_set *d = &l->d[0];
		direct_product(g->bf_dy, dx, (ptrdiff_t)xs, g->PQ, dx_acc, shared + d->pack, g->C,
			       g->K, d->nt, dyg, pairs, set_off(shared, d), set_tab(shared, d),
			       &l->dg, nb, pf);
		return;
	}
	unsigned present = 0;
	for (int p = 0; p < st * st; p++) {
		const struct direct_set *d = &l->d[p];
		if (!d->nt)
			continue;
		present |= 1u << p;
		/* plane (c, p) of the phase buffer: rows c are st² planes apart */
		direct_product(g->bf_dy, ph + l->dg.lead + (size_t)p * l->dg.plane, g->PQ,
			       (ptrdiff_t)(st * st * l->dg.plane), 0, shared + d->pack, g->C, g->K,
			       d->nt, dyg, pairs, set_off(shared, d), set_tab(shared, d),
			       &l->dg, nb, pf);
		pf.n = 0;
	}
	direct_interleave(dx, dx_acc, ph, g->C, nb, present, &l->dg);
}

/* direct_run_fn: a BN's dx map evaluated for the chunk from sample n0. */
struct map_chunk {
	const struct bn_dx_map *map;
	int n0;
};

static void map_run(void *ctx, float *dst, int n, int c, int len)
{
	const struct map_chunk *mc = ctx;
	bn_dx_map_run(dst, mc->map, mc->n0 + n, c, 0, len);
}

/* dw_t (+)= the weight gradient of samples [n0, n1) (overwritten first when
 * fresh), dx (+)= their input gradient: dY copied once per chunk serves
 * both, x copied for dw. dY is dy, or evaluated from a BN's map. */
static void direct_backward(float *dx, int dx_acc, float *dw_t, int fresh, const float *dy,
			    const struct bn_dx_map *map, const float *x, const float *shared,
			    const struct geom *g, const struct layout *l, int n0, int n1, float *col)
{
	size_t xs = (size_t)g->C * g->H * g->W, ys = (size_t)g->K * g->PQ;
	const struct direct_set *f = &l->f;
	float *xg = col, *dyg = col + direct_buffer_len(&l->dg, g->C, 1);
	for (int n = n0; n < n1; n += l->nb) {
		int nb = n1 - n < l->nb ? n1 - n : l->nb;
		if (map) {
			struct map_chunk mc = { map, n };
			direct_fill_runs(dyg, g->K, nb, &l->dg, map_run, &mc);
		} else {
			direct_fill(dyg, dy + n * ys, g->K, (ptrdiff_t)ys, nb, 0, &l->dg);
		}
		/* the next chunk's dY sources stream in during dw, its x during dx */
		struct prefetch pdy = { 0 }, px = { 0 };
		next_chunk(&pdy, map ? map->dy : dy, ys, n + nb, n1, l->nb);
		if (map) {
			next_chunk(&pdy, map->mask, ys, n + nb, n1, l->nb);
			next_chunk(&pdy, map->x, ys, n + nb, n1, l->nb);
		}
		next_chunk(&px, x, xs, n + nb, n1, l->nb);
		if (dw_t) {
			direct_fill(xg, x + n * xs, g->C, (ptrdiff_t)xs, nb, 1, &l->dg);
			if (g->bf_dw) {
				size_t lx = direct_buffer_len(&l->dg, g->C, 1);
				size_t ly = direct_buffer_len(&l->dg, g->K, 0);
				uint16_t *xh = (uint16_t *)slot_pairs(col, g, l), *dyh = xh + lx;
				direct_halves(xh, xg, lx);
				direct_halves(dyh, dyg, ly);
				direct_dw_bf16(dw_t, fresh && n == n0, dyh, g->K, xh, xg,
					       set_off(shared, f), g->C * f->nt, f->nt,
					       set_tab(shared, f), &l->dg, nb, pdy);
			} else {
				direct_dw(dw_t, fresh && n == n0, dyg, g->K, xg, set_off(shared, f),
					  g->C * f->nt, f->nt, set_tab(shared, f), &l->dg, nb, pdy);
			}
		}
		if (dx)
			direct_dx(dx + n * xs, dx_acc, dyg, shared, g, l, nb, xg, dw_t ? px : pdy);
	}
}

/* Forward of samples [n0, n1) with one member's workspace slices. */
static void forward_range(float *y, const float *x, const float *w, const struct geom *g,
			  const struct layout *l, int n0, int n1, float *col, float *gws)
{
	size_t xs = (size_t)g->C * g->H * g->W, ys = (size_t)g->K * g->PQ;
	struct gemm_view A = gemm_dense(w, g->CRS);
	for (int n = n0; n < n1; n += l->nb) {
		int nb = n1 - n < l->nb ? n1 - n : l->nb, L = nb * g->PQ;
		struct gemm_view B;
		struct implicit_col ic;
		if (g->pointwise) {
			B = gemm_nchw(x + n * xs, g->PQ, (ptrdiff_t)xs);
		} else if (g->implicit) {
			ic = x_col(g, x + n * xs, nb, col);
			B = gemm_dense(NULL, 0);
			B.pack = pack_pixels;
			B.ctx = &ic;
		} else {
			for (int i = 0; i < nb; i++)
				im2col(col + (size_t)i * g->PQ, (size_t)L, x + (n + i) * xs, g);
			B = gemm_dense(col, L);
		}
		/* Y[K, L] = w[K, CRS] · col[CRS, L], written as nb NCHW samples */
		struct gemm_view C = gemm_nchw(y + n * ys, g->PQ, (ptrdiff_t)ys);
		gemm_prec(g->K, L, g->CRS, &A, &B, &C, 0, g->prec, gws);
	}
}

struct conv_job {
	float *y, *dx, *dw;
	float *run_mean, *run_m2; /* forward: per-run statistics of y (direct path), or NULL */
	const float *x, *w, *dy;
	const struct bn_dx_map *dymap; /* dY as a BN's map (direct path), or NULL */
	int dx_accumulate;
	struct geom g;
	struct layout l;
	float *ws;
	struct team *tm;
};

/* Members beyond the layout's team (a batch smaller than the team) idle. */
static void forward_member(void *p, int rank, int size)
{
	struct conv_job *j = p;
	int nt = size < j->l.team ? size : j->l.team, n0, n1;
	if (rank >= nt)
		return;
	share(j->g.N, nt, rank, &n0, &n1);
	if (j->g.direct)
		direct_forward(j->y, j->run_mean, j->run_m2, j->x, slot_shared(j->ws, &j->l), &j->g,
			       &j->l, n0, n1,
			       slot_col(j->ws, &j->l, rank));
	else
		forward_range(j->y, j->x, j->w, &j->g, &j->l, n0, n1,
			      slot_col(j->ws, &j->l, rank), slot_gemm(j->ws, &j->l, rank));
}

static void forward_job(float *y, float *run_mean, float *run_m2, const float *x,
			const float *w, const struct geom *g, float *ws, struct team *tm)
{
	struct conv_job j = { y, NULL, NULL, run_mean, run_m2, x, w, NULL, NULL, 0, *g, { 0 },
			      ws, tm };
	if (g->wino) {
		wino_conv(y, 0, x, w, 0, g->N, g->C, g->H, g->W, g->K, g->wm,
			  ws, tm, g->prec);
		return;
	}
	j.l = make_layout(&j.g, team_size(tm));
	if (j.g.direct)
		direct_prepare(slot_shared(ws, &j.l), w, 0, 0, &j.g, &j.l);
	team_run(j.l.team > 1 ? tm : NULL, forward_member, &j);
}

void conv2d_forward_team(float *y, const float *x, const float *w,
			 const struct conv_shape *s, float *ws, struct team *tm)
{
	struct geom g = make_geom(s);
	forward_job(y, NULL, NULL, x, w, &g, ws, tm);
}

int conv2d_forward_runs_team(float *y, float *run_mean, float *run_m2, const float *x,
			     const float *w, const struct conv_shape *s, float *ws,
			     struct team *tm)
{
	struct geom g = make_geom(s);
	if (!g.direct)
		return -1;
	forward_job(y, run_mean, run_m2, x, w, &g, ws, tm);
	return 0;
}

void isif_conv2d_forward(float *y, const float *x, const float *w,
			 int N, int C, int H, int W, int K, int R, int S,
			 int stride, int pad, float *ws)
{
	struct conv_shape s = { N, C, H, W, K, R, S, stride, pad, 0 };
	conv2d_forward_team(y, x, w, &s, ws, NULL);
}

/* dx of samples [n, n + nb) on the implicit path: the convolution of dY
 * (padded by R − 1 − pad) with the flipped weights wf[C, K·R·S]. */
static void implicit_dx(float *dx, int dx_acc, const float *dy, const float *wf,
			const struct geom *g, int nb, float *col, float *gws)
{
	int ph = g->R - 1 - g->pad, pw = g->S - 1 - g->pad;
	make_planes(col, dy, nb, g->K, g->P, g->Q, ph, pw);
	struct implicit_col ic = { col, g->K, g->P + 2 * ph, g->Q + 2 * pw, g->R, g->S,
				   g->H, g->W, NULL };
	struct gemm_view A = gemm_dense(wf, (ptrdiff_t)g->K * g->R * g->S), B = gemm_dense(NULL, 0);
	B.pack = pack_pixels;
	B.ctx = &ic;
	struct gemm_view D = gemm_nchw(dx, g->H * g->W, (ptrdiff_t)g->C * g->H * g->W);
	gemm_prec(g->C, nb * g->H * g->W, g->K * g->R * g->S, &A, &B, &D, dx_acc, g->prec,
		  gws);
}

/*
 * Backward of samples [n0, n1): dw_t (+)= this range's weight gradient
 * (overwritten first when `fresh`), dx of the range (+)= its gradient.
 */
static void backward_range(float *dx, int dx_acc, float *dw_t, int fresh, const float *dy,
			   const float *x, const float *w, const float *wf, const struct geom *g,
			   const struct layout *l, int n0, int n1, float *col, float *gws)
{
	size_t xs = (size_t)g->C * g->H * g->W, ys = (size_t)g->K * g->PQ;
	struct gemm_view Wt = gemm_dense_t(w, g->CRS);
	for (int n = n0; n < n1; n += l->nb) {
		int nb = n1 - n < l->nb ? n1 - n : l->nb, L = nb * g->PQ;
		struct gemm_view dY = gemm_nchw(dy + n * ys, g->PQ, (ptrdiff_t)ys);
		if (dw_t) {
			struct gemm_view colT;
			struct implicit_col ic;
			if (g->pointwise) {
				colT = gemm_nchw_t(x + n * xs, g->PQ, (ptrdiff_t)xs);
			} else if (g->implicit) {
				ic = x_col(g, x + n * xs, nb, col);
				colT = gemm_dense(NULL, 0);
				colT.pack = pack_rows;
				colT.ctx = &ic;
			} else {
				for (int i = 0; i < nb; i++)
					im2col(col + (size_t)i * g->PQ, (size_t)L, x + (n + i) * xs, g);
				colT = gemm_dense_t(col, L);
			}
			/* dw[K, CRS] += dY[K, L] · colᵀ[L, CRS] */
			struct gemm_view D = gemm_dense(dw_t, g->CRS);
			gemm_prec(g->K, g->CRS, L, &dY, &colT, &D, !(fresh && n == n0), g->prec,
				  gws);
		}
		if (!dx)
			continue;
		if (g->implicit) {
			implicit_dx(dx + n * xs, dx_acc, dy + n * ys, wf, g, nb, col, gws);
			continue;
		}
		/* dcol[CRS, L] = wᵀ[CRS, K] · dY[K, L]; pointwise: dcol is dx itself */
		if (g->pointwise) {
			struct gemm_view D = gemm_nchw(dx + n * xs, g->PQ, (ptrdiff_t)xs);
			gemm_prec(g->CRS, L, g->K, &Wt, &dY, &D, dx_acc, g->prec, gws);
			continue;
		}
		struct gemm_view D = gemm_dense(col, L);
		gemm_prec(g->CRS, L, g->K, &Wt, &dY, &D, 0, g->prec, gws);
		for (int i = 0; i < nb; i++)
			col2im(dx + (n + i) * xs, dx_acc, col + (size_t)i * g->PQ, (size_t)L, g);
	}
}

static void backward_member(void *p, int rank, int size)
{
	struct conv_job *j = p;
	const struct layout *l = &j->l;
	int nt = size < l->team ? size : l->team, n0, n1;
	if (rank < nt) {
		share(j->g.N, nt, rank, &n0, &n1);
		float *dw_t = !j->dw ? NULL : rank == 0 ? j->dw : slot_part(j->ws, l, rank);
		if (j->g.direct)
			direct_backward(j->dx, j->dx_accumulate, dw_t, rank > 0, j->dy, j->dymap,
					j->x, slot_shared(j->ws, l), &j->g, l, n0, n1,
					slot_col(j->ws, l, rank));
		else
			backward_range(j->dx, j->dx_accumulate, dw_t, rank > 0, j->dy, j->x, j->w,
			       slot_shared(j->ws, l), &j->g, l, n0, n1, slot_col(j->ws, l, rank),
			       slot_gemm(j->ws, l, rank));
	}
	if (!j->dw || nt < 2)
		return;
	/* dw += the other members' shares, in rank order, split by elements */
	team_barrier(j->tm);
	size_t lo, hi;
	team_share(l->part, 16, rank, size, &lo, &hi);
	for (size_t i = lo; i < hi; i++) {
		float s = j->dw[i];
		for (int u = 1; u < nt; u++)
			s += slot_part(j->ws, l, u)[i];
		j->dw[i] = s;
	}
}

/* wf[c, (k, r', s')] = w[k, c, R−1−r', S−1−s']: the dx convolution's weights. */
static void flip_weights(float *wf, const float *w, const struct geom *g)
{
	int R = g->R, S = g->S;
	for (int k = 0; k < g->K; k++)
		for (int c = 0; c < g->C; c++)
			for (int r = 0; r < R; r++)
				for (int s = 0; s < S; s++)
					wf[(((size_t)c * g->K + k) * R + r) * S + s] =
						w[(((size_t)k * g->C + c) * R + (R - 1 - r)) * S + (S - 1 - s)];
}

/* Backward with dY given as dy or as a BN's map (the direct path only). */
static void backward_job(float *dx, int dx_accumulate, float *dw, const float *dy,
			 const struct bn_dx_map *map, const float *x, const float *w,
			 const struct geom *g, float *ws, struct team *tm)
{
	struct conv_job j = { NULL, dx, dw, NULL, NULL, x, w, dy, map, dx_accumulate, *g, { 0 },
			      ws, tm };
	if (g->wino) {
		/* dw, then dx = the Winograd convolution of dY with the flipped,
		 * transposed weights, one after the other in the same space */
		if (dw && g->wino_dw)
			wino_dw(dw, dy, x, g->N, g->C, g->H, g->W, g->K, g->wm, ws,
				tm, g->prec);
		if (dx)
			wino_conv(dx, dx_accumulate, dy, w, 1, g->N, g->K, g->H, g->W, g->C,
				  g->wm, ws, tm, g->prec);
		if (!dw || g->wino_dw)
			return;
		j.dx = NULL; /* dw by the implicit GEMM, below */
	}
	j.l = make_layout(&j.g, team_size(tm));
	if (j.g.direct)
		direct_prepare(slot_shared(ws, &j.l), w, 1, j.dx != NULL, &j.g, &j.l);
	else if (j.dx && j.g.implicit)
		flip_weights(slot_shared(ws, &j.l), w, &j.g);
	team_run(j.l.team > 1 ? tm : NULL, backward_member, &j);
}

void conv2d_backward_team(float *dx, int dx_accumulate, float *dw, const float *dy,
			  const float *x, const float *w, const struct conv_shape *s,
			  float *ws, struct team *tm)
{
	struct geom g = make_geom(s);
	backward_job(dx, dx_accumulate, dw, dy, NULL, x, w, &g, ws, tm);
}

int conv2d_takes_dy_map(const struct conv_shape *s)
{
	return make_geom(s).direct;
}

int conv2d_backward_bn_team(float *dx, int dx_accumulate, float *dw, const struct bn_dx_map *dy,
			    const float *x, const float *w, const struct conv_shape *s,
			    float *ws, struct team *tm)
{
	struct geom g = make_geom(s);
	if (!g.direct)
		return -1;
	backward_job(dx, dx_accumulate, dw, NULL, dy, x, w, &g, ws, tm);
	return 0;
}

void isif_conv2d_backward(float *dx, float *dw, const float *dy,
			  const float *x, const float *w,
			  int N, int C, int H, int W, int K, int R, int S,
			  int stride, int pad, float *ws)
{
	struct conv_shape s = { N, C, H, W, K, R, S, stride, pad, 0 };
	conv2d_backward_team(dx, 0, dw, dy, x, w, &s, ws, NULL);
}

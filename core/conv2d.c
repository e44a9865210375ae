/*
 * core/conv2d.c — 2-D convolution (no bias, zero padding, any kernel R×S,
 * stride and padding) forward and backward on NCHW float32, as GEMMs over
 * chunks of several samples (core/gemm.c). Not for pooling.
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
 * (gemm_impl.h); only col is a copy. A 1×1, stride-1, pad-0 convolution has
 * col = the chunk's x already, so it skips im2col/col2im.
 *
 * Threads (ops_impl.h, team_impl.h): the batch is split into one contiguous
 * range of samples per team member; each member works through its range in
 * chunks with its own slice of the workspace (col, GEMM packing), so members
 * never wait on each other inside a product. The weight gradient is summed
 * per member (member 0 straight into dw, the others into their slices), and
 * after one barrier the slices are added to dw in rank order.
 */
#include "isif/ops.h"
#include "ops_impl.h"
#include "gemm_impl.h"
#include "par_impl.h"
#include "simd_impl.h"
#include "team_impl.h"

#include <string.h>

/* A chunk aims at this many output pixels (the GEMMs' N), with a column
 * matrix of at most COL_CAP floats. */
#define CHUNK_PIXELS 2048
#define COL_CAP (2u << 20)

struct geom {
	int N, C, H, W, K, R, S, stride, pad;
	int P, Q, CRS, PQ, pointwise;
};

/* Per-thread workspace layout for a team of `team` threads. */
struct layout {
	int team, nb;          /* threads used, samples per chunk */
	size_t col, gemm, part; /* floats per thread: column matrix, GEMM packing, dw share */
};

static struct geom make_geom(int N, int C, int H, int W, int K, int R, int S,
			     int stride, int pad)
{
	struct geom g = { N, C, H, W, K, R, S, stride, pad, 0, 0, 0, 0, 0 };
	g.P = isif_conv_out(H, R, stride, pad);
	g.Q = isif_conv_out(W, S, stride, pad);
	g.CRS = C * R * S;
	g.PQ = g.P * g.Q;
	g.pointwise = R == 1 && S == 1 && stride == 1 && pad == 0;
	return g;
}

static size_t max_size(size_t a, size_t b)
{
	return a > b ? a : b;
}

/* Floats of one sample's zero-padded copy (stride-1 im2col reads it). */
static size_t pad_len(const struct geom *g)
{
	if (g->stride != 1 || g->pad == 0 || g->pointwise)
		return 0;
	return (size_t)g->C * (g->H + 2 * g->pad) * (g->W + 2 * g->pad);
}

static struct layout make_layout(const struct geom *g, int threads)
{
	struct layout l;
	l.team = threads < 1 ? 1 : threads > g->N ? g->N : threads;
	if (l.team < 1)
		l.team = 1;
	int per_thread = (g->N + l.team - 1) / l.team;
	int nb = (CHUNK_PIXELS + g->PQ - 1) / g->PQ;
	while (nb > 1 && (size_t)g->CRS * nb * g->PQ > COL_CAP)
		nb--;
	l.nb = nb > per_thread ? per_thread : nb;
	if (l.nb < 1)
		l.nb = 1;
	int L = l.nb * g->PQ;
	l.col = g->pointwise ? 0 : (size_t)g->CRS * L + pad_len(g);
	l.gemm = max_size(gemm_workspace(g->K, L, g->CRS),
			  max_size(gemm_workspace(g->K, g->CRS, L), gemm_workspace(g->CRS, L, g->K)));
	l.part = (size_t)g->K * g->CRS;
	return l;
}

static size_t layout_total(const struct layout *l)
{
	return (size_t)l->team * (l->col + l->gemm) + (size_t)(l->team - 1) * l->part;
}

size_t conv2d_workspace_team(int N, int C, int H, int W, int K, int R, int S,
			     int stride, int pad, int threads)
{
	struct geom g = make_geom(N, C, H, W, K, R, S, stride, pad);
	struct layout l = make_layout(&g, threads);
	return layout_total(&l);
}

size_t isif_conv2d_workspace(int N, int C, int H, int W, int K, int R, int S,
			     int stride, int pad)
{
	return conv2d_workspace_team(N, C, H, W, K, R, S, stride, pad, 1);
}

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

/* xp[C, H + 2·pad, W + 2·pad] = x with a border of zeros. */
static void pad_sample(float *xp, const float *x, const struct geom *g)
{
	int Hp = g->H + 2 * g->pad, Wp = g->W + 2 * g->pad;
	for (int c = 0; c < g->C; c++) {
		float *pc = xp + (size_t)c * Hp * Wp;
		const float *xc = x + (size_t)c * g->H * g->W;
		zero_run(pc, g->pad * Wp);
		for (int h = 0; h < g->H; h++) {
			float *row = pc + (size_t)(h + g->pad) * Wp;
			const float *src = xc + (size_t)h * g->W;
			zero_run(row, g->pad);
			copy_run(row + g->pad, src, g->W);
			zero_run(row + g->pad + g->W, g->pad);
		}
		zero_run(pc + (size_t)(g->H + g->pad) * Wp, g->pad * Wp);
	}
}

/*
 * Stride 1 from a padded copy: row (c, r, s) of col is the window of
 * plane c shifted by (r, s), one contiguous run of Q per output row, with
 * no bounds to test.
 */
static void im2col_padded(float *col, size_t ld, const float *xp, const struct geom *g)
{
	int Hp = g->H + 2 * g->pad, Wp = g->W + 2 * g->pad, P = g->P, Q = g->Q;
	for (int c = 0; c < g->C; c++) {
		const float *pc = xp + (size_t)c * Hp * Wp;
		for (int r = 0; r < g->R; r++) {
			for (int s = 0; s < g->S; s++) {
				float *row = col + ((size_t)(c * g->R + r) * g->S + s) * ld;
				for (int p = 0; p < P; p++) {
					copy_run(row + (size_t)p * Q, pc + (size_t)(p + r) * Wp + s, Q);
				}
			}
		}
	}
}

/* One sample's block of col: rows of PQ values, ld apart, from x[C, H, W]
 * (scratch: pad_len(g) floats for the stride-1 path). */
static void im2col(float *col, size_t ld, const float *x, const struct geom *g, float *scratch)
{
	if (pad_len(g)) {
		pad_sample(scratch, x, g);
		im2col_padded(col, ld, scratch, g);
		return;
	}
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

/* Thread t's slices of the workspace. */
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

/* Samples [*n0, *n1) of thread t in a team of nt. */
static void share(int N, int nt, int t, int *n0, int *n1)
{
	*n0 = (int)((long)N * t / nt);
	*n1 = (int)((long)N * (t + 1) / nt);
}

/* Forward of samples [n0, n1) with one thread's workspace slices. */
static void forward_range(float *y, const float *x, const float *w, const struct geom *g,
			  const struct layout *l, int n0, int n1, float *col, float *gws)
{
	size_t xs = (size_t)g->C * g->H * g->W, ys = (size_t)g->K * g->PQ;
	struct gemm_view A = gemm_dense(w, g->CRS);
	for (int n = n0; n < n1; n += l->nb) {
		int nb = n1 - n < l->nb ? n1 - n : l->nb, L = nb * g->PQ;
		struct gemm_view B;
		if (g->pointwise) {
			B = gemm_nchw(x + n * xs, g->PQ, (ptrdiff_t)xs);
		} else {
			for (int i = 0; i < nb; i++)
				im2col(col + (size_t)i * g->PQ, (size_t)L, x + (n + i) * xs, g,
				       col + (size_t)g->CRS * L);
			B = gemm_dense(col, L);
		}
		/* Y[K, L] = w[K, CRS] · col[CRS, L], written as nb NCHW samples */
		struct gemm_view C = gemm_nchw(y + n * ys, g->PQ, (ptrdiff_t)ys);
		gemm(g->K, L, g->CRS, &A, &B, &C, 0, gws);
	}
}

struct conv_job {
	float *y, *dx, *dw;
	const float *x, *w, *dy;
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
	forward_range(j->y, j->x, j->w, &j->g, &j->l, n0, n1, slot_col(j->ws, &j->l, rank),
		      slot_gemm(j->ws, &j->l, rank));
}

void conv2d_forward_team(float *y, const float *x, const float *w,
			 int N, int C, int H, int W, int K, int R, int S,
			 int stride, int pad, float *ws, struct team *tm)
{
	struct conv_job j = { y, NULL, NULL, x, w, NULL, 0,
			      make_geom(N, C, H, W, K, R, S, stride, pad), { 0 }, ws, tm };
	j.l = make_layout(&j.g, team_size(tm));
	team_run(j.l.team > 1 ? tm : NULL, forward_member, &j);
}

void isif_conv2d_forward(float *y, const float *x, const float *w,
			 int N, int C, int H, int W, int K, int R, int S,
			 int stride, int pad, float *ws)
{
	conv2d_forward_team(y, x, w, N, C, H, W, K, R, S, stride, pad, ws, NULL);
}

/*
 * Backward of samples [n0, n1): dw_t (+)= this range's weight gradient
 * (overwritten first when `fresh`), dx of the range (+)= its gradient.
 */
static void backward_range(float *dx, int dx_acc, float *dw_t, int fresh, const float *dy,
			   const float *x, const float *w, const struct geom *g,
			   const struct layout *l, int n0, int n1, float *col, float *gws)
{
	size_t xs = (size_t)g->C * g->H * g->W, ys = (size_t)g->K * g->PQ;
	struct gemm_view Wt = gemm_dense_t(w, g->CRS);
	for (int n = n0; n < n1; n += l->nb) {
		int nb = n1 - n < l->nb ? n1 - n : l->nb, L = nb * g->PQ;
		struct gemm_view dY = gemm_nchw(dy + n * ys, g->PQ, (ptrdiff_t)ys);
		if (dw_t) {
			struct gemm_view colT;
			if (g->pointwise) {
				colT = gemm_nchw_t(x + n * xs, g->PQ, (ptrdiff_t)xs);
			} else {
				for (int i = 0; i < nb; i++)
					im2col(col + (size_t)i * g->PQ, (size_t)L, x + (n + i) * xs, g,
				       col + (size_t)g->CRS * L);
				colT = gemm_dense_t(col, L);
			}
			/* dw[K, CRS] += dY[K, L] · colᵀ[L, CRS] */
			struct gemm_view D = gemm_dense(dw_t, g->CRS);
			gemm(g->K, g->CRS, L, &dY, &colT, &D, !(fresh && n == n0), gws);
		}
		if (!dx)
			continue;
		/* dcol[CRS, L] = wᵀ[CRS, K] · dY[K, L]; pointwise: dcol is dx itself */
		if (g->pointwise) {
			struct gemm_view D = gemm_nchw(dx + n * xs, g->PQ, (ptrdiff_t)xs);
			gemm(g->CRS, L, g->K, &Wt, &dY, &D, dx_acc, gws);
			continue;
		}
		struct gemm_view D = gemm_dense(col, L);
		gemm(g->CRS, L, g->K, &Wt, &dY, &D, 0, gws);
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
		backward_range(j->dx, j->dx_accumulate, dw_t, rank > 0, j->dy, j->x, j->w, &j->g,
			       l, n0, n1, slot_col(j->ws, l, rank), slot_gemm(j->ws, l, rank));
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

void conv2d_backward_team(float *dx, int dx_accumulate, float *dw, const float *dy,
			  const float *x, const float *w,
			  int N, int C, int H, int W, int K, int R, int S,
			  int stride, int pad, float *ws, struct team *tm)
{
	struct conv_job j = { NULL, dx, dw, x, w, dy, dx_accumulate,
			      make_geom(N, C, H, W, K, R, S, stride, pad), { 0 }, ws, tm };
	j.l = make_layout(&j.g, team_size(tm));
	team_run(j.l.team > 1 ? tm : NULL, backward_member, &j);
}

void isif_conv2d_backward(float *dx, float *dw, const float *dy,
			  const float *x, const float *w,
			  int N, int C, int H, int W, int K, int R, int S,
			  int stride, int pad, float *ws)
{
	conv2d_backward_team(dx, 0, dw, dy, x, w, N, C, H, W, K, R, S, stride, pad, ws, NULL);
}

/*
 * tests/unit/test_conv_direct.c — the direct convolution kernels
 * (core/nn/conv_direct.c) on their own: the chunk copy (and the polyphase split
 * of a stride-2 input) and the tap-mask tables against the layout and the
 * padding rule written out by hand, and the forward, input-gradient and
 * weight-gradient products against 7-loop convolutions in double, with the
 * AVX-512 kernels (when the CPU has them) and the portable ones. Shapes:
 * stride 1 and 2; kernels 1×1, 3×3 and 5×5; odd image sides under stride 2
 * (phases of unequal size); images of 16 and 20 output pixels (16-lane
 * vectors that straddle samples); row counts that are not multiples of the
 * 8-row and 4-row tiles; tap counts that are not multiples of 6; chunks of
 * several samples, laid out for one sample more (a range's short last
 * chunk); output overwrite and accumulate. Buffers are allocated to exactly
 * the sizes the layout gives, so ASan sees any read or write past them.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/conv_direct_impl.h"
#include "base/cpu_impl.h"
#include "base/gemm_impl.h"
#include "check.h"
#include "ops_testutil.h"

struct dshape {
	int nb, C, H, W, K, R, st;
};

static const struct dshape dshapes[] = {
	{ 3, 3, 5, 7, 4, 3, 1 },    /* K < 8, C·9 = 27 taps (not a multiple of 6) */
	{ 2, 5, 6, 6, 11, 5, 1 },   /* 5×5, padding 2, K = 8 + 3 */
	{ 5, 2, 4, 5, 9, 3, 1 },    /* 20-pixel samples: vectors straddle samples */
	{ 7, 3, 4, 4, 5, 3, 1 },    /* 16 pixels, the smallest image allowed */
	{ 4, 16, 9, 11, 16, 3, 1 },
	{ 1, 1, 16, 16, 16, 3, 1 }, /* one input channel, like a stem */
	{ 3, 3, 9, 10, 5, 3, 2 },   /* stride 2, odd height: 5×5 outputs */
	{ 2, 4, 8, 8, 9, 1, 2 },    /* 1×1 stride 2 (a ResNet shortcut) */
	{ 2, 3, 11, 9, 6, 5, 2 },   /* 5×5 stride 2 */
	{ 3, 6, 14, 14, 12, 3, 2 }, /* like resnet20's downsampling 3×3 */
};
#define N_DSHAPES (sizeof dshapes / sizeof dshapes[0])

static const struct prefetch nopf = { 0, { { NULL, 0 } } };

static int pad_of(const struct dshape *s) { return (s->R - 1) / 2; }
static int outP(const struct dshape *s) { return (s->H - 1) / s->st + 1; }
static int outQ(const struct dshape *s) { return (s->W - 1) / s->st + 1; }

static double xv(const float *x, const struct dshape *s, int n, int c, int h, int w)
{
	if (h < 0 || h >= s->H || w < 0 || w >= s->W)
		return 0.0;
	return x[(((size_t)n * s->C + c) * s->H + h) * s->W + w];
}

/*
 * y[n][k][p][q] = Σ_{c,r,t} w[k][c][r][t]·x[n][c][st·p + r − g][st·q + t − g],
 * and for the output gradient dy the gradients of Σ dy·y: dx and dw.
 */
static void naive(double *y, double *dx, double *dw, const float *x, const float *w,
		  const float *dy, const struct dshape *s)
{
	int P = outP(s), Q = outQ(s), g = pad_of(s), R = s->R;
	memset(dx, 0, sizeof(double) * s->nb * s->C * s->H * s->W);
	memset(dw, 0, sizeof(double) * s->K * s->C * R * R);
	for (int n = 0; n < s->nb; n++)
		for (int k = 0; k < s->K; k++)
			for (int p = 0; p < P; p++)
				for (int q = 0; q < Q; q++) {
					size_t o = (((size_t)n * s->K + k) * P + p) * Q + q;
					double acc = 0;
					for (int c = 0; c < s->C; c++)
						for (int r = 0; r < R; r++)
							for (int t = 0; t < R; t++) {
								int h = s->st * p + r - g, v = s->st * q + t - g;
								size_t wi = ((size_t)(k * s->C + c) * R + r) * R + t;
								double xx = xv(x, s, n, c, h, v);
								acc += w[wi] * xx;
								dw[wi] += dy[o] * xx;
								if (h >= 0 && h < s->H && v >= 0 && v < s->W)
									dx[(((size_t)n * s->C + c) * s->H + h) * s->W + v] +=
										dy[o] * w[wi];
							}
					y[o] = acc;
				}
}

static struct direct_geom geom(const struct dshape *s)
{
	struct direct_geom dg;
	/* laid out for one sample more: the chunk is a range's short last one */
	int ok = direct_geom_make(&dg, s->H, s->W, s->R, s->st, pad_of(s), s->nb + 1);
	CHECK(ok);
	return dg;
}

/* The polyphase chunk copy and the forward table, element by element. */
TEST(conv_direct_fill_and_table)
{
	for (size_t i = 0; i < N_DSHAPES; i++) {
		const struct dshape *s = &dshapes[i];
		struct direct_geom dg = geom(s);
		int st = s->st, P = outP(s), Q = outQ(s), g = pad_of(s), R = s->R;
		size_t len = direct_buffer_len(&dg, s->C, 1), hw = (size_t)s->H * s->W;
		float *x = tu_rand((size_t)s->nb * s->C * hw, 40 + i), *buf = tu_const(len, NAN);
		double *want = malloc(sizeof(double) * len);
		for (size_t j = 0; j < len; j++)
			want[j] = 0.0;
		/* plane (c, a, b) at u = n·PQ + p·Q + q holds x[n][c][st·p + a][st·q + b] */
		for (int c = 0; c < s->C; c++)
			for (int ph = 0; ph < st * st; ph++)
				for (int n = 0; n < s->nb; n++)
					for (int p = 0; p < P; p++)
						for (int q = 0; q < Q; q++)
							want[dg.lead + (size_t)(c * st * st + ph) * dg.plane +
							     ((size_t)n * P + p) * Q + q] =
								xv(x, s, n, c, st * p + ph / st, st * q + ph % st);
		CHECK(dg.plane % 16 == 0 && dg.plane >= (size_t)(s->nb + 1) * P * Q);
		direct_fill(buf, x, s->C, (ptrdiff_t)(s->C * hw), s->nb, 1, &dg);
		/* a 1×1 stride-2 kernel never reads the odd-row phases: left alone */
		int touched = 0;
		for (int c = 0; R == 1 && st == 2 && c < s->C; c++)
			for (size_t j = 0; j < 2 * dg.plane; j++) {
				float *b = buf + dg.lead + (size_t)(c * 4 + 2) * dg.plane + j;
				touched += !isnan(*b);
				*b = 0.0f;
				want[b - buf] = 0.0;
			}
		CHECK_MSG(touched == 0, "shape %zu: %d unread phase values written", i, touched);
		char what[64];
		snprintf(what, sizeof what, "shape %zu chunk copy", i);
		TU_CHECK_ALL(what, buf, want, len, 0.0);

		/* forward tap t = (r, s') of lane u: inside the chunk and the image */
		struct direct_tap taps[DIRECT_MAX_TAPS];
		int nt = direct_forward_taps(taps, &dg), bad = 0;
		CHECK(nt == R * R && dg.ms >= nt);
		uint16_t *tab = malloc(sizeof(uint16_t) * direct_table_len(&dg));
		direct_table(tab, &dg, taps, nt);
		for (int v = 0; v < dg.nvec; v++)
			for (int t = 0; t < nt; t++)
				for (int l = 0; l < 16; l++) {
					int u = 16 * v + l, tap = t;
					int h = st * (u % (P * Q) / Q) + tap / R - g;
					int w = st * (u % Q) + tap % R - g;
					int on = u < (s->nb + 1) * P * Q && h >= 0 && h < s->H && w >= 0 &&
						 w < s->W;
					bad += on != (tab[v * dg.ms + t] >> l & 1);
				}
		CHECK_MSG(bad == 0, "shape %zu: %d mask bits wrong", i, bad);
		free(x), free(buf), free(want), free(tab);
	}
}

/* Everything a product needs for one tap list. */
struct set {
	int nt;
	struct direct_tap taps[DIRECT_MAX_TAPS];
	int32_t *off;
	uint16_t *tab;
	float *apk;
};

static void set_make(struct set *t, const struct direct_geom *dg, const float *w, int M,
		     int Cin, int chan_planes, int transpose, int RR)
{
	t->off = malloc(sizeof(int32_t) * (Cin * t->nt + 1));
	t->tab = malloc(sizeof(uint16_t) * direct_table_len(dg));
	t->apk = malloc(sizeof(float) * (direct_pack_len(M, Cin * t->nt) + 1));
	direct_offsets(t->off, Cin, chan_planes, t->taps, t->nt, dg);
	direct_table(t->tab, dg, t->taps, t->nt);
	direct_pack(t->apk, w, M, Cin, RR, t->taps, t->nt, transpose);
}

static void set_free(struct set *t)
{
	free(t->off), free(t->tab), free(t->apk);
}

/* Forward, dw and dx (overwrite, then accumulate) against naive(). */
static void check_shape(size_t i, int portable)
{
	const struct dshape *s = &dshapes[i];
	struct direct_geom dg = geom(s);
	int P = outP(s), Q = outQ(s), RR = s->R * s->R, st = s->st;
	size_t hw = (size_t)s->H * s->W, pq = (size_t)P * Q;
	size_t nx = s->nb * s->C * hw, ny = s->nb * s->K * pq, nw = (size_t)s->K * s->C * RR;
	float *x = tu_rand(nx, 60 + i), *w = tu_rand(nw, 70 + i), *dy = tu_rand(ny, 80 + i);
	double *ry = malloc(sizeof(double) * ny), *rdx = malloc(sizeof(double) * nx);
	double *rdw = malloc(sizeof(double) * nw);
	naive(ry, rdx, rdw, x, w, dy, s);
	float *xg = malloc(sizeof(float) * direct_buffer_len(&dg, s->C, 1));
	float *dyg = malloc(sizeof(float) * direct_buffer_len(&dg, s->K, 0));
	direct_fill(xg, x, s->C, (ptrdiff_t)(s->C * hw), s->nb, 1, &dg);
	direct_fill(dyg, dy, s->K, (ptrdiff_t)(s->K * pq), s->nb, 0, &dg);
	struct set f, d[4];
	f.nt = direct_forward_taps(f.taps, &dg);
	set_make(&f, &dg, w, s->K, s->C, st * st, 0, RR);
	cpu_force(portable ? CPU_PORTABLE : CPU_AUTO);
	char what[96];

	float *y = tu_const(ny, NAN);
	direct_conv(y, (ptrdiff_t)(s->K * pq), (ptrdiff_t)pq, 0, f.apk, s->K, s->C * f.nt, f.nt, xg,
		    f.off, f.tab, &dg, s->nb, nopf);
	snprintf(what, sizeof what, "shape %zu y (%s)", i, portable ? "portable" : "auto");
	TU_CHECK_ALL(what, y, ry, ny, 1e-5);

	float *dw = tu_const(nw, NAN);
	double *want = malloc(sizeof(double) * (nw > nx ? nw : nx));
	direct_dw(dw, 1, dyg, s->K, xg, f.off, s->C * f.nt, f.nt, f.tab, &dg, s->nb, nopf);
	snprintf(what, sizeof what, "shape %zu dw (%s)", i, portable ? "portable" : "auto");
	TU_CHECK_ALL(what, dw, rdw, nw, 1e-5 * s->nb * pq);
	direct_dw(dw, 0, dyg, s->K, xg, f.off, s->C * f.nt, f.nt, f.tab, &dg, s->nb, nopf);
	for (size_t j = 0; j < nw; j++)
		want[j] = 2 * rdw[j];
	TU_CHECK_ALL(what, dw, want, nw, 1e-5 * s->nb * pq);

	/* dx: stride 1 straight into dx, stride 2 per phase, then interleaved */
	float *dx = tu_const(nx, NAN);
	for (int acc = 0; acc < 2; acc++) {
		unsigned present = 0;
		for (int ph = 0; ph < st * st; ph++) {
			d[ph].nt = direct_dx_taps(d[ph].taps, &dg, ph / st, ph % st);
			if (!d[ph].nt)
				continue;
			present |= 1u << ph;
			set_make(&d[ph], &dg, w, s->C, s->K, 1, 1, RR);
			if (st == 1)
				direct_conv(dx, (ptrdiff_t)(s->C * hw), (ptrdiff_t)hw, acc, d[ph].apk, s->C,
					    s->K * d[ph].nt, d[ph].nt, dyg, d[ph].off, d[ph].tab, &dg,
					    s->nb, nopf);
			else
				direct_conv(xg + dg.lead + ph * dg.plane, (ptrdiff_t)pq,
					    (ptrdiff_t)(4 * dg.plane), 0, d[ph].apk, s->C, s->K * d[ph].nt,
					    d[ph].nt, dyg, d[ph].off, d[ph].tab, &dg, s->nb, nopf);
			set_free(&d[ph]);
		}
		if (st == 2)
			direct_interleave(dx, acc, xg, s->C, s->nb, present, &dg);
		for (size_t j = 0; j < nx; j++)
			want[j] = (1 + acc) * rdx[j];
		snprintf(what, sizeof what, "shape %zu dx acc %d (%s)", i, acc,
			 portable ? "portable" : "auto");
		TU_CHECK_ALL(what, dx, want, nx, 1e-5);
	}
	cpu_force(CPU_AUTO);
	set_free(&f);
	free(x), free(w), free(dy), free(ry), free(rdx), free(rdw), free(xg), free(dyg);
	free(y), free(dw), free(want), free(dx);
}

TEST(conv_direct_products_match_naive)
{
	for (size_t i = 0; i < N_DSHAPES; i++)
		for (int portable = 0; portable < 2; portable++)
			check_shape(i, portable);
}

/* The shapes the path refuses. */
TEST(conv_direct_geometry_limits)
{
	struct direct_geom dg;
	CHECK(!direct_geom_make(&dg, 8, 8, 3, 1, 0, 1));  /* not "same" padding */
	CHECK(!direct_geom_make(&dg, 8, 8, 3, 3, 1, 1));  /* stride 3 */
	CHECK(!direct_geom_make(&dg, 8, 8, 7, 1, 3, 1));  /* 7×7: above DIRECT_MAX_R */
	CHECK(!direct_geom_make(&dg, 3, 5, 3, 1, 1, 1));  /* 15 outputs per sample */
	CHECK(direct_geom_make(&dg, 7, 7, 3, 2, 1, 1));   /* 4×4 = 16 outputs: taken */
}

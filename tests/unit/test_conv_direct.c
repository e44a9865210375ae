/*
 * tests/unit/test_conv_direct.c — the direct stride-1 convolution kernels
 * (core/conv_direct.c) on their own: the chunk copy and the tap-mask table
 * against the layout and the padding rule written out by hand, and the
 * forward, input-gradient and weight-gradient products against 7-loop
 * convolutions in double, with the AVX-512 kernels (when the CPU has them)
 * and the portable ones. Shapes: padding 1 and 2 (3×3 and 5×5), images of
 * 16 and 20 pixels (16-lane vectors that straddle samples), row counts that
 * are not multiples of the 8-row and 4-row tiles, tap counts that are not
 * multiples of 6, chunks of several samples and a chunk shorter than the
 * layout's (the last chunk of a range), output overwrite and accumulate.
 * Buffers are allocated to exactly the sizes the layout gives, so ASan sees
 * any read or write past them.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/conv_direct_impl.h"
#include "../../core/gemm_impl.h"
#include "check.h"
#include "ops_testutil.h"

struct dshape {
	int nb, C, H, W, M, g;
};

static const struct dshape dshapes[] = {
	{ 3, 3, 5, 7, 4, 1 },   /* M < 8, C·9 = 27 taps (not a multiple of 6) */
	{ 2, 5, 6, 6, 11, 2 },  /* 5×5 taps, padding 2, M = 8 + 3 */
	{ 5, 2, 4, 5, 9, 1 },   /* 20-pixel samples: vectors straddle samples */
	{ 7, 3, 4, 4, 5, 1 },   /* 16 pixels, the smallest image allowed */
	{ 4, 16, 9, 11, 16, 1 },
	{ 1, 1, 16, 16, 16, 1 },/* one input channel, like a stem */
};
#define N_DSHAPES (sizeof dshapes / sizeof dshapes[0])

static const struct prefetch nopf = { NULL, 0 };

static double xv(const float *x, const struct dshape *s, int C, int n, int c, int h, int w)
{
	if (h < 0 || h >= s->H || w < 0 || w >= s->W)
		return 0.0;
	return x[(((size_t)n * C + c) * s->H + h) * s->W + w];
}

/* y[n][m][h][w] = Σ_{c,r,t} a[m][c][r][t]·x[n][c][h + r − g][w + t − g]
 * over Cin input channels and Cout = M outputs (a: [M][Cin][R][R]). */
static void naive_same(double *y, const float *x, const float *a, const struct dshape *s,
		       int Cin, int M)
{
	int R = 2 * s->g + 1;
	for (int n = 0; n < s->nb; n++)
		for (int m = 0; m < M; m++)
			for (int h = 0; h < s->H; h++)
				for (int w = 0; w < s->W; w++) {
					double acc = 0;
					for (int c = 0; c < Cin; c++)
						for (int r = 0; r < R; r++)
							for (int t = 0; t < R; t++)
								acc += a[((m * Cin + c) * R + r) * R + t] *
								       xv(x, s, Cin, n, c, h + r - s->g, w + t - s->g);
					y[(((size_t)n * M + m) * s->H + h) * s->W + w] = acc;
				}
}

/* The chunk copy and the mask table, element by element as the header
 * describes them, for a chunk one sample shorter than the layout's. */
TEST(conv_direct_fill_and_table)
{
	for (size_t i = 0; i < N_DSHAPES; i++) {
		const struct dshape *s = &dshapes[i];
		struct direct_geom dg = direct_geom_make(s->H, s->W, s->g, s->nb + 1);
		size_t len = direct_buffer_len(&dg, s->C), hw = (size_t)s->H * s->W;
		float *x = tu_rand((size_t)s->nb * s->C * hw, 40 + i), *buf = tu_const(len, NAN);
		double *want = malloc(sizeof(double) * len);
		for (size_t j = 0; j < len; j++)
			want[j] = 0.0;
		for (int c = 0; c < s->C; c++)
			for (int n = 0; n < s->nb; n++)
				for (size_t j = 0; j < hw; j++)
					want[dg.lead + c * dg.plane + n * hw + j] =
						x[((size_t)n * s->C + c) * hw + j];
		CHECK(dg.plane % 16 == 0 && dg.plane >= (size_t)(s->nb + 1) * hw);
		CHECK(len == 2 * dg.lead + s->C * dg.plane);
		direct_fill(buf, x, s->C, (ptrdiff_t)(s->C * hw), s->nb, &dg);
		char what[64];
		snprintf(what, sizeof what, "shape %zu chunk copy", i);
		TU_CHECK_ALL(what, buf, want, len, 0.0);

		/* tap t = (r, s) of lane u: inside the chunk and the image */
		int R = 2 * s->g + 1, RR = R * R, bad = 0;
		uint16_t *tab = malloc(sizeof(uint16_t) * direct_table_len(&dg));
		direct_table(tab, &dg);
		CHECK(dg.ms >= RR + 6 && (size_t)dg.nvec * 16 >= (size_t)(s->nb + 1) * hw);
		for (int v = 0; v < dg.nvec; v++)
			for (int t = 0; t < RR + 6; t++)
				for (int l = 0; l < 16; l++) {
					int u = 16 * v + l, tap = t % RR;
					int p = u % (int)hw / s->W + tap / R - s->g;
					int q = u % s->W + tap % R - s->g;
					int on = u < (s->nb + 1) * (int)hw && p >= 0 && p < s->H &&
						 q >= 0 && q < s->W;
					bad += on != (tab[v * dg.ms + t] >> l & 1);
				}
		CHECK_MSG(bad == 0, "shape %zu: %d mask bits wrong", i, bad);
		free(x), free(buf), free(want), free(tab);
	}
}

/* Forward (flip 0) or input gradient (flip 1) through direct_conv, out
 * overwritten and then accumulated, against naive_same. */
static void check_conv(const struct dshape *s, int flip, int portable, unsigned seed)
{
	int R = 2 * s->g + 1, RR = R * R;
	/* forward: C inputs → M outputs; dx: M gradient channels → C inputs */
	int Cin = flip ? s->M : s->C, Cout = flip ? s->C : s->M;
	size_t hw = (size_t)s->H * s->W, nin = (size_t)s->nb * Cin * hw;
	size_t nout = (size_t)s->nb * Cout * hw, nw = (size_t)s->M * s->C * RR;
	float *in = tu_rand(nin, seed), *w = tu_rand(nw, seed + 1), *out = tu_const(nout, NAN);
	/* the equivalent forward weights a[Cout][Cin][R][R] */
	float *a = malloc(sizeof(float) * nw);
	for (int o = 0; o < Cout; o++)
		for (int c = 0; c < Cin; c++)
			for (int t = 0; t < RR; t++)
				a[((size_t)o * Cin + c) * RR + t] =
					flip ? w[((size_t)c * s->C + o) * RR + RR - 1 - t]
					     : w[((size_t)o * s->C + c) * RR + t];
	double *want = malloc(sizeof(double) * nout);
	naive_same(want, in, a, s, Cin, Cout);

	/* a layout for one sample more: this chunk is a range's short last one */
	struct direct_geom dg = direct_geom_make(s->H, s->W, s->g, s->nb + 1);
	float *ing = malloc(sizeof(float) * direct_buffer_len(&dg, Cin));
	int32_t *off = malloc(sizeof(int32_t) * Cin * RR);
	uint16_t *tab = malloc(sizeof(uint16_t) * direct_table_len(&dg));
	float *apk = malloc(sizeof(float) * direct_pack_len(Cout, Cin * RR));
	direct_fill(ing, in, Cin, (ptrdiff_t)(Cin * hw), s->nb, &dg);
	direct_offsets(off, Cin, &dg);
	direct_table(tab, &dg);
	direct_pack(apk, w, Cout, Cin, RR, flip);
	gemm_force_portable(portable);
	direct_conv(out, (ptrdiff_t)(Cout * hw), 0, apk, Cout, Cin * RR, ing, off, tab, &dg, s->nb, nopf);
	char what[96];
	snprintf(what, sizeof what, "nb%d C%d %dx%d M%d g%d %s %s", s->nb, s->C, s->H, s->W, s->M,
		 s->g, flip ? "dx" : "forward", portable ? "portable" : "auto");
	TU_CHECK_ALL(what, out, want, nout, 1e-5);
	direct_conv(out, (ptrdiff_t)(Cout * hw), 1, apk, Cout, Cin * RR, ing, off, tab, &dg, s->nb, nopf);
	gemm_force_portable(0);
	for (size_t j = 0; j < nout; j++)
		want[j] *= 2;
	TU_CHECK_ALL(what, out, want, nout, 1e-5);
	free(in), free(w), free(out), free(a), free(want), free(ing), free(off), free(apk);
	free(tab);
}

TEST(conv_direct_forward_and_dx_match_naive)
{
	for (size_t i = 0; i < N_DSHAPES; i++)
		for (int flip = 0; flip < 2; flip++)
			for (int portable = 0; portable < 2; portable++)
				check_conv(&dshapes[i], flip, portable, 60 + 4 * i);
}

TEST(conv_direct_dw_matches_naive)
{
	for (size_t i = 0; i < N_DSHAPES; i++) {
		const struct dshape *s = &dshapes[i];
		int R = 2 * s->g + 1, RR = R * R, kc = s->C * RR;
		size_t hw = (size_t)s->H * s->W, nw = (size_t)s->M * kc;
		float *x = tu_rand((size_t)s->nb * s->C * hw, 80 + i);
		float *dy = tu_rand((size_t)s->nb * s->M * hw, 90 + i);
		/* dw[m][c][r][t] = Σ_{n,h,w} dy[n][m][h][w]·x[n][c][h + r − g][w + t − g] */
		double *want = malloc(sizeof(double) * nw);
		for (int m = 0; m < s->M; m++)
			for (int c = 0; c < s->C; c++)
				for (int t = 0; t < RR; t++) {
					double acc = 0;
					for (int n = 0; n < s->nb; n++)
						for (int h = 0; h < s->H; h++)
							for (int w = 0; w < s->W; w++)
								acc += dy[(((size_t)n * s->M + m) * s->H + h) * s->W + w] *
								       xv(x, s, s->C, n, c, h + t / R - s->g,
									  w + t % R - s->g);
					want[(size_t)m * kc + c * RR + t] = acc;
				}
		struct direct_geom dg = direct_geom_make(s->H, s->W, s->g, s->nb + 1);
		float *xg = malloc(sizeof(float) * direct_buffer_len(&dg, s->C));
		float *dyg = malloc(sizeof(float) * direct_buffer_len(&dg, s->M));
		int32_t *off = malloc(sizeof(int32_t) * kc);
		uint16_t *tab = malloc(sizeof(uint16_t) * direct_table_len(&dg));
		direct_fill(xg, x, s->C, (ptrdiff_t)(s->C * hw), s->nb, &dg);
		direct_fill(dyg, dy, s->M, (ptrdiff_t)(s->M * hw), s->nb, &dg);
		direct_offsets(off, s->C, &dg);
		direct_table(tab, &dg);
		for (int portable = 0; portable < 2; portable++) {
			float *dw = tu_const(nw, NAN);
			gemm_force_portable(portable);
			direct_dw(dw, 1, dyg, s->M, xg, off, kc, tab, &dg, s->nb, nopf);
			char what[96];
			snprintf(what, sizeof what, "shape %zu dw %s", i, portable ? "portable" : "auto");
			TU_CHECK_ALL(what, dw, want, nw, 1e-5 * s->nb * hw);
			/* fresh = 0 adds */
			direct_dw(dw, 0, dyg, s->M, xg, off, kc, tab, &dg, s->nb, nopf);
			gemm_force_portable(0);
			double *twice = malloc(sizeof(double) * nw);
			for (size_t j = 0; j < nw; j++)
				twice[j] = 2 * want[j];
			TU_CHECK_ALL(what, dw, twice, nw, 1e-5 * s->nb * hw);
			free(twice), free(dw);
		}
		free(x), free(dy), free(want), free(xg), free(dyg), free(off), free(tab);
	}
}

/*
 * tests/unit/test_conv_winograd.c — the F(2×2, 3×3) and F(4×4, 3×3)
 * Winograd convolutions (core/nn/conv_winograd.c) against a naive 3×3 pad-1
 * convolution in double: image sizes whose last tile row and column are
 * clipped (7×7, 5×5, 3×3, 6×8 and 1×1 for 4×4 tiles) or not (4×4, 8×8),
 * several channel counts, the flipped weights of
 * an input gradient (flip 1, referenced by the explicit formula
 * w'[co][ci][r][s] = w[ci][co][2 − r][2 − s]), accumulate (y starts at
 * known values), the weight gradient (wino_dw, added to known values),
 * teams of 1, 2 and 3 members, chunks that cross sample
 * boundaries, and both the AVX-512 and the portable transforms.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/conv_winograd_impl.h"
#include "base/cpu_impl.h"
#include "base/gemm_impl.h"
#include "base/team_impl.h"
#include "check.h"
#include "ops_testutil.h"

struct wino_shape {
	int N, Cin, H, W, Cout;
};

static const struct wino_shape wino_shapes[] = {
	{ 3, 5, 7, 7, 6 },
	{ 4, 8, 5, 5, 3 },
	{ 5, 3, 4, 4, 17 },
	{ 2, 20, 6, 8, 9 },
	{ 3, 2, 3, 3, 2 },
	{ 9, 33, 7, 7, 40 },  /* 144 tiles: several groups of 16, chunk crosses samples */
	{ 1, 1, 1, 1, 1 },
	{ 2, 24, 8, 8, 16 },  /* whole 4×4 tiles */
};

/*
 * Relative error allowed per 16 summed terms. F(4×4) rounds more than
 * F(2×2): its transforms scale by up to 5 (Bᵀ) and 8 (Aᵀ) and then cancel.
 * The worst cases measured here are below 0.25 of the F(2×2) bound and
 * 0.43 of the F(4×4) one (8.5e-6 per 16 terms, on 3 input channels);
 * TOL_SCALE=x multiplies both bounds, to see that margin.
 */
static double wino_eps(int m)
{
	const char *sc = getenv("TOL_SCALE");
	return (m == 2 ? 2e-6 : 2e-5) * (sc ? atof(sc) : 1.0);
}

/* y[n][co][p][q] = Σ w'[co][ci][r][s] · x[n][ci][p + r − 1][q + s − 1] */
static void wino_naive(double *y, const float *x, const float *w, int flip,
		       const struct wino_shape *s)
{
	int H = s->H, W = s->W;
	for (int n = 0; n < s->N; n++)
		for (int co = 0; co < s->Cout; co++)
			for (int p = 0; p < H; p++)
				for (int q = 0; q < W; q++) {
					double acc = 0;
					for (int ci = 0; ci < s->Cin; ci++)
						for (int r = 0; r < 3; r++)
							for (int t = 0; t < 3; t++) {
								int h = p + r - 1, v = q + t - 1;
								if (h < 0 || h >= H || v < 0 || v >= W)
									continue;
								double wv = flip ?
									w[((size_t)ci * s->Cout + co) * 9 + (2 - r) * 3 + (2 - t)] :
									w[((size_t)co * s->Cin + ci) * 9 + r * 3 + t];
								acc += wv * x[(((size_t)n * s->Cin + ci) * H + h) * W + v];
							}
					y[(((size_t)n * s->Cout + co) * H + p) * W + q] = acc;
				}
}

/* dw[co][ci][r][s] = Σ_n,p,q dy[n][co][p][q] · x[n][ci][p + r − 1][q + s − 1] */
static void wino_naive_dw(double *dw, const float *x, const float *dy, const struct wino_shape *s)
{
	int H = s->H, W = s->W;
	for (int co = 0; co < s->Cout; co++)
		for (int ci = 0; ci < s->Cin; ci++)
			for (int r = 0; r < 3; r++)
				for (int t = 0; t < 3; t++) {
					double acc = 0;
					for (int n = 0; n < s->N; n++)
						for (int p = 0; p < H; p++)
							for (int q = 0; q < W; q++) {
								int h = p + r - 1, v = q + t - 1;
								if (h < 0 || h >= H || v < 0 || v >= W)
									continue;
								acc += (double)dy[(((size_t)n * s->Cout + co) * H + p) * W + q] *
								       x[(((size_t)n * s->Cin + ci) * H + h) * W + v];
							}
					dw[(((size_t)co * s->Cin + ci) * 3 + r) * 3 + t] = acc;
				}
}

/* dw starts at known values and must gain exactly the gradient. */
static void wino_dw_case(const struct wino_shape *s, int m, int threads, unsigned seed)
{
	size_t nx = (size_t)s->N * s->Cin * s->H * s->W, ny = (size_t)s->N * s->Cout * s->H * s->W;
	size_t nw = (size_t)s->Cout * s->Cin * 9;
	float *x = tu_rand(nx, seed), *dy = tu_rand(ny, seed + 1), *dw = tu_rand(nw, seed + 2);
	double *want = malloc(sizeof(double) * nw);
	wino_naive_dw(want, x, dy, s);
	for (size_t i = 0; i < nw; i++)
		want[i] += dw[i];
	struct team *tm = team_create(threads);
	CHECK(tm != NULL);
	float *ws = malloc(sizeof(float) *
			   wino_dw_workspace(s->N, s->Cin, s->H, s->W, s->Cout, m, threads));
	wino_dw(dw, dy, x, s->N, s->Cin, s->H, s->W, s->Cout, m, ws, tm, 0);
	/* each entry sums N·H·W products of terms up to 1 */
	double tol = wino_eps(m) * fmax(1.0, s->N * s->H * s->W / 16.0);
	char what[96];
	snprintf(what, sizeof what, "dw F(%d) %dx%d N %d Cin %d Cout %d threads %d simd %d", m,
		 s->H, s->W, s->N, s->Cin, s->Cout, threads, cpu_avx512());
	TU_CHECK_ALL(what, dw, want, nw, tol);
	team_free(tm);
	free(x), free(dy), free(dw), free(want), free(ws);
}

static void wino_case(const struct wino_shape *s, int m, int flip, int threads, unsigned seed)
{
	size_t nx = (size_t)s->N * s->Cin * s->H * s->W, ny = (size_t)s->N * s->Cout * s->H * s->W;
	size_t nw = (size_t)s->Cout * s->Cin * 9;
	float *x = tu_rand(nx, seed), *w = tu_rand(nw, seed + 1), *base = tu_rand(ny, seed + 2);
	double *ref = malloc(sizeof(double) * ny), *want = malloc(sizeof(double) * ny);
	wino_naive(ref, x, w, flip, s);
	for (size_t i = 0; i < ny; i++)
		want[i] = base[i] + ref[i];
	struct team *tm = team_create(threads);
	CHECK(tm != NULL);
	float *ws = malloc(sizeof(float) *
			   wino_workspace(s->N, s->Cin, s->H, s->W, s->Cout, m, threads));
	float *y = tu_const(ny, NAN);
	/* each output sums 9·Cin products of terms up to 1 */
	double tol = wino_eps(m) * fmax(1.0, 9.0 * s->Cin / 16.0);
	char what[96];
	wino_conv(y, 0, x, w, flip, s->N, s->Cin, s->H, s->W, s->Cout, m, ws, tm, 0);
	snprintf(what, sizeof what, "F(%d) %dx%d Cin %d Cout %d flip %d threads %d simd %d", m,
		 s->H, s->W, s->Cin, s->Cout, flip, threads, cpu_avx512());
	TU_CHECK_ALL(what, y, ref, ny, tol);
	memcpy(y, base, sizeof(float) * ny);
	wino_conv(y, 1, x, w, flip, s->N, s->Cin, s->H, s->W, s->Cout, m, ws, tm, 0);
	TU_CHECK_ALL(what, y, want, ny, tol);
	team_free(tm);
	free(x), free(w), free(base), free(ref), free(want), free(ws), free(y);
}

TEST(conv_winograd_matches_naive)
{
	for (int portable = 0; portable < 2; portable++) {
		cpu_force(portable ? CPU_PORTABLE : CPU_AUTO);
		for (int m = 2; m <= 4; m += 2)
			for (size_t i = 0; i < sizeof wino_shapes / sizeof wino_shapes[0]; i++)
				for (int flip = 0; flip < 2; flip++)
					for (int threads = 1; threads <= 3; threads++)
						wino_case(&wino_shapes[i], m, flip, threads,
							  (unsigned)(700 + 10 * i + 3 * flip + threads));
	}
	cpu_force(CPU_AUTO);
}

TEST(conv_winograd_dw_matches_naive)
{
	for (int portable = 0; portable < 2; portable++) {
		cpu_force(portable ? CPU_PORTABLE : CPU_AUTO);
		for (int m = 2; m <= 4; m += 2)
			for (size_t i = 0; i < sizeof wino_shapes / sizeof wino_shapes[0]; i++)
				for (int threads = 1; threads <= 3; threads++)
					wino_dw_case(&wino_shapes[i], m, threads,
						     (unsigned)(900 + 10 * i + threads));
	}
	cpu_force(CPU_AUTO);
}

TEST(conv_winograd_applies_to_3x3_same_stride_1_only)
{
	CHECK(wino_applies(3, 3, 1, 1));
	CHECK(!wino_applies(3, 3, 2, 1));
	CHECK(!wino_applies(3, 3, 1, 0));
	CHECK(!wino_applies(5, 5, 1, 2));
	CHECK(!wino_applies(1, 1, 1, 0));
}

/* F(4×4) only where both sides are at most 8 (core/nn/conv_winograd.c says why). */
TEST(conv_winograd_tile_by_image_size)
{
	CHECK(wino_tile(4, 4) == 4);
	CHECK(wino_tile(7, 7) == 4);
	CHECK(wino_tile(8, 8) == 4);
	CHECK(wino_tile(8, 9) == 2);
	CHECK(wino_tile(9, 8) == 2);
	CHECK(wino_tile(14, 14) == 2);
	CHECK(wino_tile(28, 28) == 2);
}

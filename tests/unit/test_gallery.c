/*
 * tests/unit/test_gallery.c — the bf16 candidate scan of the retrieval
 * gallery (core/eval/knn_tile_bf16.c, gallery.c): bf16 rounding, the bf16
 * tile against a double sum of the rounded values, the slack bound against
 * the fp32 tile, and whole gallery searches in bf16 equal — row for row and
 * bit for bit — to the fp32 scan on data full of near-ties, with both
 * kernels (AVX512_BF16 where the CPU has it, and portable C).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "isif/base/common.h"
#include "isif/base/rng.h"
#include "isif/eval/gallery.h"
#include "base/cpu_impl.h"
#include "eval/knn_impl.h"

static float bits_to_float(uint32_t u)
{
	float f;
	memcpy(&f, &u, sizeof f);
	return f;
}

static float bf16_to_float(uint16_t h)
{
	return bits_to_float((uint32_t)h << 16);
}

static double gauss(struct isif_rng *rng)
{
	double u1 = 1.0 - isif_rng_uniform(rng), u2 = isif_rng_uniform(rng);
	return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* n rows in `clusters` tight groups: a Gaussian centre plus noise of
 * `spread` per entry, so many similarities inside one group differ by less
 * than bf16 can tell apart; spread 0 gives exact duplicates. */
static float *clustered_rows(struct isif_rng *rng, int64_t n, int D, int clusters, double spread)
{
	float *c = malloc((size_t)clusters * (size_t)D * sizeof *c);
	float *x = malloc((size_t)(n * D) * sizeof *x);
	for (int64_t i = 0; i < (int64_t)clusters * D; i++)
		c[i] = (float)gauss(rng);
	for (int64_t i = 0; i < n; i++) {
		int64_t m = isif_rng_below(rng, (uint32_t)clusters);
		for (int d = 0; d < D; d++)
			x[i * D + d] = c[m * D + d] + (float)(spread * gauss(rng));
	}
	free(c);
	return x;
}

/* ---- rounding ---- */

TEST(knn_bf16_rounds_to_nearest_even)
{
	/* 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties go to even (1) */
	CHECK(knn_bf16(1.0f + 0x1p-8f) == 0x3f80);
	/* 1 + 3·2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: to 1 + 2^-6 */
	CHECK(knn_bf16(1.0f + 3 * 0x1p-8f) == 0x3f82);
	/* just above a half rounds up, just below rounds down */
	CHECK(knn_bf16(1.0f + 0x1p-8f + 0x1p-20f) == 0x3f81);
	CHECK(knn_bf16(1.0f + 0x1p-8f - 0x1p-20f) == 0x3f80);
	CHECK(knn_bf16(-1.0f - 0x1p-8f - 0x1p-20f) == 0xbf81);
	CHECK(knn_bf16(0.0f) == 0 && knn_bf16(-0.0f) == 0x8000);
	CHECK(knn_bf16(INFINITY) == 0x7f80);
	uint16_t n = knn_bf16(NAN);
	CHECK((n & 0x7f80) == 0x7f80 && (n & 0x7f) != 0);
	/* the largest float rounds up to infinity, as RNE says */
	CHECK(knn_bf16(bits_to_float(0x7f7fffffu)) == 0x7f80);
	/* relative error ≤ 2^-9 over many random values */
	struct isif_rng rng;
	isif_rng_seed(&rng, 5, 0);
	double worst = 0;
	for (int i = 0; i < 100000; i++) {
		float x = (float)gauss(&rng);
		double e = fabs(bf16_to_float(knn_bf16(x)) - (double)x) / fabs((double)x);
		worst = e > worst ? e : worst;
	}
	CHECK(worst <= 0x1p-8);
	CHECK(worst > 0x1p-9);
}

/* ---- the tile ---- */

/* s_ij of a tile kernel on rows q[MR] × g[n], packed by pack_q/pack_g into
 * Dw words a row (the bf16 tile: ⌈D/2⌉ pairs; the fp32 one: D). */
static void tile_sims(knn_tile_fn *tile, knn_pack_queries_fn *pack_q, knn_pack_gallery_fn *pack_g,
		      int Dw, const float *q, const float *g, int n, int D, float *s)
{
	float *a = malloc((size_t)(KNN_MR * Dw) * sizeof *a);
	float *b = malloc((size_t)(KNN_NR * Dw) * sizeof *b);
	float ginv[KNN_NR], thr[KNN_MR];
	uint64_t hits[KNN_MR];
	int32_t fill[KNN_MR] = {0};
	for (int i = 0; i < KNN_MR; i++)
		thr[i] = -INFINITY;
	pack_q(a, q, KNN_MR, D);
	pack_g(b, ginv, g, NULL, n, D);
	const struct knn_sink sink = {.fill = fill, .valid = ((uint64_t)1 << n) - 1};
	uint32_t left = tile(Dw, a, b, ginv, thr, &sink, s, hits);
	CHECK(left == (1u << KNN_MR) - 1);
	free(a);
	free(b);
}

/* Σ_d bf16(q̂_d)·bf16(ĝ_d) in double: what the bf16 tile computes, without
 * its float roundings. */
static double bf16_dot_ref(const float *q, const float *g, int D)
{
	float iq = knn_inv_norm(q, D), ig = knn_inv_norm(g, D);
	double s = 0;
	for (int d = 0; d < D; d++)
		s += (double)bf16_to_float(knn_bf16(q[d] * iq)) * bf16_to_float(knn_bf16(g[d] * ig));
	return s;
}

/*
 * Both bf16 kernels against the double sum of the bf16-rounded values (only
 * float summation apart: ≤ (D + 1)·2^-24 per unit of Σ|products|, which a
 * dropped pair or a wrong rounding of an operand exceeds by far), and the
 * bf16 similarity within knn_bf16_slack of the fp32 tile's, on odd and even
 * widths.
 */
TEST(knn_bf16_tile_against_double_and_slack)
{
	static const int widths[] = {1, 2, 7, 16, 33, 128, 130};
	struct isif_rng rng;
	isif_rng_seed(&rng, 11, 0);
	for (int kernel = 0; kernel < 2; kernel++) {
		cpu_force(kernel ? CPU_AVX512 : CPU_PORTABLE);
		knn_tile_fn *tile = knn_tile_kernel_bf16();
		for (size_t w = 0; w < sizeof widths / sizeof *widths; w++) {
			const int D = widths[w], n = KNN_NR - 3;
			float *q = clustered_rows(&rng, KNN_MR, D, 2, 0.3);
			float *g = clustered_rows(&rng, n, D, 2, 0.3);
			float s[KNN_MR * KNN_NR], f[KNN_MR * KNN_NR];
			tile_sims(tile, knn_pack_queries_bf16, knn_pack_gallery_bf16, (D + 1) / 2, q, g, n, D, s);
			tile_sims(knn_tile_kernel(), knn_pack_queries, knn_pack_gallery, D, q, g, n, D, f);
			double worst_sum = 0, worst_slack = 0;
			for (int i = 0; i < KNN_MR; i++)
				for (int j = 0; j < n; j++) {
					double r = bf16_dot_ref(q + i * D, g + j * D, D);
					double e = fabs(s[i * KNN_NR + j] - r);
					double e2 = fabs((double)s[i * KNN_NR + j] - f[i * KNN_NR + j]);
					worst_sum = e > worst_sum ? e : worst_sum;
					worst_slack = e2 > worst_slack ? e2 : worst_slack;
				}
			CHECK(worst_sum <= (D + 1) * 0x1p-24 * 1.1);
			CHECK(worst_slack <= knn_bf16_slack(D));
			free(q);
			free(g);
		}
	}
	cpu_force(CPU_AUTO);
}

/* ---- whole searches ---- */

/* Searches q[nq] in gallery g[ng] with both scans; returns the slots that
 * differ (row, or similarity bits) and adds the bf16 scan's counters. */
static int64_t scans_differ(const float *g, int64_t ng, const float *q, int64_t nq, int D, int k,
			    int threads, struct isif_gallery_stats *st)
{
	struct isif_gallery *gf, *gb;
	struct isif_error err = {0};
	int64_t *i1 = malloc((size_t)(nq * k) * sizeof *i1), *i2 = malloc((size_t)(nq * k) * sizeof *i2);
	float *s1 = malloc((size_t)(nq * k) * sizeof *s1), *s2 = malloc((size_t)(nq * k) * sizeof *s2);
	CHECK(isif_gallery_create_scan(&gf, g, ng, D, k, threads, 16, ISIF_SCAN_FP32, &err) == 0);
	CHECK(isif_gallery_create_scan(&gb, g, ng, D, k, threads, 16, ISIF_SCAN_BF16, &err) == 0);
	isif_gallery_search(gf, q, nq, i1, s1);
	isif_gallery_search(gb, q, nq, i2, s2);
	int64_t bad = 0;
	for (int64_t t = 0; t < nq * k; t++)
		bad += i1[t] != i2[t] || memcmp(&s1[t], &s2[t], sizeof s1[t]) != 0;
	struct isif_gallery_stats a, b;
	isif_gallery_stats(gf, &a);
	isif_gallery_stats(gb, &b);
	CHECK(a.bf16 == 0 && b.bf16 == 1);
	CHECK(b.bf16_queries == nq);
	st->bf16_queries += b.bf16_queries;
	st->fallbacks += b.fallbacks;
	isif_gallery_free(gf);
	isif_gallery_free(gb);
	free(i1);
	free(i2);
	free(s1);
	free(s2);
	return bad;
}

/*
 * Tight clusters (near-ties that bf16 cannot order), exact duplicates
 * (ties the fp32 order breaks by row) and plain Gaussian rows, k from 1 to
 * 128, galleries shorter than k, on one and two threads, both kernels: the
 * bf16 scan gives the fp32 scan's rows and similarity bits in every slot.
 * Most queries are settled by their candidates (the scan is really used)
 * and the clusters and duplicates make some fall back (that path is
 * exercised too).
 */
TEST(gallery_bf16_scan_equals_fp32)
{
	static const struct {
		int64_t ng;
		int D, k, clusters;
		double spread;
	} cases[] = {
		{300, 16, 10, 3, 0.002}, {2000, 128, 10, 20, 0.05}, {2000, 128, 16, 20, 0.01},
		{500, 33, 1, 4, 0.001},  {90, 128, 128, 3, 0.02},   {5, 8, 16, 2, 0.1},
		{600, 128, 10, 2, 0.0},  {1500, 64, 128, 30, 0.3},  {1, 4, 3, 1, 0.0},
	};
	struct isif_rng rng;
	isif_rng_seed(&rng, 3, 0);
	struct isif_gallery_stats st = {0};
	for (int kernel = 0; kernel < 2; kernel++) {
		cpu_force(kernel ? CPU_AVX512 : CPU_PORTABLE);
		for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
			const int D = cases[c].D;
			float *g = clustered_rows(&rng, cases[c].ng, D, cases[c].clusters, cases[c].spread);
			float *q = clustered_rows(&rng, 40, D, cases[c].clusters, cases[c].spread);
			/* a few queries equal to gallery rows, one zero query */
			memcpy(q, g, (size_t)D * sizeof *q);
			memset(q + D, 0, (size_t)D * sizeof *q);
			for (int threads = 1; threads <= 2; threads++) {
				int64_t bad = scans_differ(g, cases[c].ng, q, 40, D, cases[c].k, threads, &st);
				if (bad)
					test_fail_at(__FILE__, __LINE__, "case %zu kernel %d threads %d: %lld slots differ",
						     c, kernel, threads, (long long)bad);
			}
			free(g);
			free(q);
		}
	}
	cpu_force(CPU_AUTO);
	CHECK(st.fallbacks > 0);
	CHECK(2 * st.fallbacks < st.bf16_queries);
}

/* AUTO follows the process default and the CPU; k above 128 stays fp32. */
TEST(gallery_scan_choice)
{
	float g[4 * 8];
	for (int i = 0; i < 32; i++)
		g[i] = (float)(i % 7) - 3;
	struct isif_gallery *gal;
	struct isif_gallery_stats st;
	struct isif_error err = {0};
	CHECK(isif_gallery_create_scan(&gal, g, 4, 8, 129, 1, 4, ISIF_SCAN_BF16, &err) == 0);
	isif_gallery_stats(gal, &st);
	CHECK(st.bf16 == 0);
	isif_gallery_free(gal);
	isif_gallery_set_default_scan(ISIF_SCAN_FP32);
	CHECK(isif_gallery_create(&gal, g, 4, 8, 2, 1, 4, &err) == 0);
	isif_gallery_stats(gal, &st);
	CHECK(st.bf16 == 0);
	isif_gallery_free(gal);
	isif_gallery_set_default_scan(ISIF_SCAN_AUTO);
	CHECK(isif_gallery_create(&gal, g, 4, 8, 2, 1, 4, &err) == 0);
	isif_gallery_stats(gal, &st);
	CHECK(st.bf16 == cpu_bf16());
	isif_gallery_free(gal);
}

/*
 * Rows (and a query) so small that 1/‖x‖ overflows a float (‖x‖ < ~3e-39:
 * denormal values) are zero rows to both scans: the fp32 scan used to give
 * them similarity inf (a denormal dot product times an infinite 1/‖g‖)
 * while the bf16 scan dropped them, so the answers differed.
 */
TEST(gallery_denormal_rows_are_zero_rows)
{
	enum { NG = 300, D = 16, K = 10, NQ = 4 };
	struct isif_rng rng;
	isif_rng_seed(&rng, 5, 0);
	float *g = clustered_rows(&rng, NG, D, 3, 0.3);
	float *q = clustered_rows(&rng, NQ, D, 3, 0.3);
	for (int r = 0; r < NG; r += 7)
		for (int d = 0; d < D; d++)
			g[r * D + d] *= 1e-41f;
	for (int d = 0; d < D; d++)
		q[D + d] *= 1e-41f;
	struct isif_gallery_stats st = {0};
	CHECK(scans_differ(g, NG, q, NQ, D, K, 1, &st) == 0);
	struct isif_gallery *gal;
	struct isif_error err = {0};
	int64_t idx[NQ * K];
	float sim[NQ * K];
	CHECK(isif_gallery_create_scan(&gal, g, NG, D, K, 1, 16, ISIF_SCAN_FP32, &err) == 0);
	isif_gallery_search(gal, q, NQ, idx, sim);
	for (int t = 0; t < NQ * K; t++)
		CHECK_MSG(isfinite(sim[t]) && sim[t] <= 1.001f, "slot %d: row %lld similarity %g", t,
			  (long long)idx[t], sim[t]);
	isif_gallery_free(gal);
	free(g);
	free(q);
}

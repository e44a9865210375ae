/*
 * tests/unit/test_knn_search.c — the exact top-k search engine below
 * isif_topk / isif_knn_eval / isif_recall_at_k (core/eval/knn_search.c,
 * knn_tile.c, knn_cand.c): candidate keys, selection and sorting against
 * qsort, the fused tile against double sums, and whole searches against a
 * naive double-precision brute force under every block size, work item
 * size, packing mode, thread count and kernel (AVX-512 and portable).
 *
 * Exact ties: most searches here run on quantised rows whose norms are
 * powers of two (1, 2 or 4 entries of ±1, or 16 of them, or none), so every
 * normalised entry, dot product and similarity is exact in float and many
 * similarities are equal; the brute force in double then gives the very
 * same values, and the order (higher similarity, then lower row) must match
 * slot for slot.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "isif/base/common.h"
#include "isif/base/rng.h"
#include "base/cpu_impl.h"
#include "eval/eval_impl.h"
#include "eval/knn_impl.h"
#include "base/team_impl.h"

/* ---- data and the brute-force reference ---- */

/* n rows of width D (D ≥ 16), each with 0, 1, 4 or 16 entries of ±1 at
 * distinct random places: norms 0, 1, 2, 4. */
static float *quantised_rows(struct isif_rng *rng, int64_t n, int D)
{
	static const int counts[4] = {1, 4, 4, 16};
	float *x = calloc((size_t)(n * D), sizeof *x);
	for (int64_t i = 0; i < n; i++) {
		int m = isif_rng_below(rng, 40) == 0 ? 0 : counts[isif_rng_below(rng, 4)];
		for (int t = 0; t < m;) {
			int d = (int)isif_rng_below(rng, (uint32_t)D);
			if (x[i * D + d] != 0)
				continue;
			x[i * D + d] = isif_rng_below(rng, 2) ? 1.0f : -1.0f;
			t++;
		}
	}
	return x;
}

static double gauss(struct isif_rng *rng)
{
	double u1 = 1.0 - isif_rng_uniform(rng), u2 = isif_rng_uniform(rng);
	return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static float *gauss_rows(struct isif_rng *rng, int64_t n, int D)
{
	float *x = malloc((size_t)(n * D) * sizeof *x);
	for (int64_t i = 0; i < n * D; i++)
		x[i] = (float)gauss(rng);
	return x;
}

struct ranked { double s; int64_t i; };

static int best_first(const void *pa, const void *pb)
{
	const struct ranked *a = pa, *b = pb;
	if (a->s != b->s)
		return a->s > b->s ? -1 : 1;
	return (a->i > b->i) - (a->i < b->i);
}

/* Cosine in double; 0 when either row is zero (the engine's convention). */
static double cosine0(const float *a, const float *b, int D)
{
	double ab = 0, aa = 0, bb = 0;
	for (int d = 0; d < D; d++) {
		ab += (double)a[d] * b[d];
		aa += (double)a[d] * a[d];
		bb += (double)b[d] * b[d];
	}
	return aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : 0;
}

/* Brute force: for query i every gallery row but those labelled < 0 (when
 * labels) and, when self, row i; sorted best first; k slots, (−1, −∞)
 * past the rows available. */
static void ref_topk(const float *g, const int32_t *gl, int64_t ng, const float *q,
		     int64_t nq, int D, int k, int self, int64_t *idx, double *sim)
{
	struct ranked *r = malloc((size_t)(ng > 0 ? ng : 1) * sizeof *r);
	for (int64_t i = 0; i < nq; i++) {
		int64_t m = 0;
		for (int64_t j = 0; j < ng; j++) {
			if ((gl && gl[j] < 0) || (self && j == i))
				continue;
			r[m].s = cosine0(q + i * D, g + j * D, D);
			r[m].i = j;
			m++;
		}
		qsort(r, (size_t)m, sizeof *r, best_first);
		for (int t = 0; t < k; t++) {
			idx[i * k + t] = t < m ? r[t].i : -1;
			sim[i * k + t] = t < m ? r[t].s : -INFINITY;
		}
	}
	free(r);
}

/* The engine through its index, queries in blocks as knn.c drives it. */
static int run_search(const float *g, const int32_t *gl, int64_t ng, const float *q,
		      int64_t nq, int D, int k, int self,
		      const struct isif_knn_blocks *blk, const struct isif_knn_exec *ex,
		      int64_t *idx, float *sim)
{
	struct isif_knn_index ix;
	int rc = isif_knn_index_init(&ix, g, gl, ng, D, k, nq, blk, ex);
	if (rc)
		return rc;
	for (int64_t q0 = 0; q0 < nq; q0 += ix.qblock) {
		int64_t nb = nq - q0 < ix.qblock ? nq - q0 : ix.qblock;
		isif_knn_index_search(&ix, q + q0 * D, nb, self ? q0 : -1, idx + q0 * k,
				      sim + q0 * k);
	}
	isif_knn_index_free(&ix);
	return ISIF_OK;
}

/* Slots whose row or similarity differs from the reference (similarities
 * within tol; tol 0: equal). */
static int64_t count_diffs(const int64_t *idx, const float *sim, const int64_t *ridx,
			   const double *rsim, int64_t n, double tol)
{
	int64_t bad = 0;
	for (int64_t t = 0; t < n; t++) {
		if (idx[t] != ridx[t])
			bad++;
		else if (ridx[t] < 0 ? sim[t] != -INFINITY : !(fabs(sim[t] - rsim[t]) <= tol))
			bad++;
	}
	return bad;
}

/* ---- candidate keys ---- */

/* knn_key orders (s, j) as the search does, and gives both back. */
TEST(knn_key_order_and_round_trip)
{
	const float s[] = {-INFINITY, -2.5f, -1.0f, -1e-30f, -0.0f, 0.0f, 1e-30f, 0.5f,
			   0.50000006f, 1.0f, 3e38f, INFINITY};
	const int64_t j[] = {0, 1, 7, 1000, INT32_MAX};
	const int ns = sizeof s / sizeof s[0], nj = sizeof j / sizeof j[0];
	for (int a = 0; a < ns; a++)
		for (int b = 0; b < ns; b++)
			for (int x = 0; x < nj; x++)
				for (int y = 0; y < nj; y++) {
					/* "better": higher s, then lower j; −0 == +0 */
					int better = s[a] > s[b] || (s[a] == s[b] && j[x] < j[y]);
					uint64_t ka = knn_key(s[a], j[x]), kb = knn_key(s[b], j[y]);
					CHECK_MSG((ka > kb) == better, "(%g, %lld) vs (%g, %lld)",
						  s[a], (long long)j[x], s[b], (long long)j[y]);
				}
	for (int a = 0; a < ns; a++) {
		uint64_t key = knn_key(s[a], 12345);
		CHECK(knn_key_sim(key) == s[a]);
		CHECK_EQ(knn_key_row(key), 12345);
	}
	CHECK(!signbit(knn_key_sim(knn_key(-0.0f, 3))));  /* −0 comes back as +0 */
}

static int desc_u64(const void *pa, const void *pb)
{
	uint64_t a = *(const uint64_t *)pa, b = *(const uint64_t *)pb;
	return (a < b) - (a > b);
}

/* keep_best and sort_desc against qsort, on both code paths, for sizes
 * around the vector width and the small-range cut-offs, and for keys
 * already sorted either way (the quickselect's pivots must cope). */
TEST(knn_keep_best_and_sort_match_qsort)
{
	static const int sizes[] = {1, 2, 3, 7, 8, 9, 16, 17, 31, 64, 100, 401, 1000};
	struct isif_rng rng;
	isif_rng_seed(&rng, 17, 5);
	uint64_t *a = malloc(1000 * sizeof *a), *ref = malloc(1000 * sizeof *ref);
	uint64_t *tmp = malloc(1000 * sizeof *tmp);
	int64_t bad = 0;
	for (int portable = 0; portable < 2; portable++) {
		cpu_force(portable ? CPU_PORTABLE : CPU_AUTO);
		for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
			int n = sizes[si];
			for (int shape = 0; shape < 3; shape++) {
				for (int t = 0; t < n; t++) {
					/* distinct: a random high half, the position low */
					uint64_t hi = isif_rng_below(&rng, 50);
					ref[t] = hi << 32 | (uint32_t)t;
				}
				if (shape > 0)
					qsort(ref, (size_t)n, sizeof *ref, desc_u64);
				if (shape == 2)
					for (int t = 0; t < n / 2; t++) {
						uint64_t x = ref[t];
						ref[t] = ref[n - 1 - t];
						ref[n - 1 - t] = x;
					}
				for (int k = 1; k <= n; k += (n > 20 ? n / 7 : 1)) {
					memcpy(a, ref, (size_t)n * sizeof *a);
					uint64_t kth = knn_keep_best(a, n, k, tmp);
					knn_sort_desc(a, k, tmp);
					uint64_t *sorted = malloc((size_t)n * sizeof *sorted);
					memcpy(sorted, ref, (size_t)n * sizeof *sorted);
					qsort(sorted, (size_t)n, sizeof *sorted, desc_u64);
					bad += kth != sorted[k - 1];
					bad += memcmp(a, sorted, (size_t)k * sizeof *a) != 0;
					free(sorted);
				}
				memcpy(a, ref, (size_t)n * sizeof *a);
				knn_sort_desc(a, n, tmp);
				for (int t = 1; t < n; t++)
					bad += a[t - 1] <= a[t];
			}
		}
	}
	cpu_force(CPU_AUTO);
	CHECK_MSG(bad == 0, "%lld selections or sorts differ from qsort", (long long)bad);
	free(a);
	free(ref);
	free(tmp);
}

/* ---- packing ---- */

/* Gallery panels on both code paths, for widths around the 16-float
 * blocks and partial panels: every element where the layout says, zeros
 * past n, ginv from a double norm, NaN past n and for negative labels. */
TEST(knn_pack_gallery_layout)
{
	static const int widths[] = {1, 15, 16, 17, 37, 128};
	static const int rows[] = {1, 16, 33, KNN_NR};
	struct isif_rng rng;
	isif_rng_seed(&rng, 12, 9);
	float *g = gauss_rows(&rng, KNN_NR, 128), *b = malloc(sizeof(float) * KNN_NR * 128);
	int32_t lab[KNN_NR];
	float ginv[KNN_NR];
	for (int j = 0; j < KNN_NR; j++)
		lab[j] = j % 5 == 2 ? -1 : j;
	for (int portable = 0; portable < 2; portable++) {
		cpu_force(portable ? CPU_PORTABLE : CPU_AUTO);
		for (size_t w = 0; w < sizeof widths / sizeof widths[0]; w++)
			for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
				int D = widths[w], n = rows[r], bad = 0;
				knn_pack_gallery(b, ginv, g, r % 2 ? lab : NULL, n, D);
				for (int j = 0; j < KNN_NR; j++) {
					double ss = 0;
					for (int d = 0; d < D; d++) {
						float want = j < n ? g[j * D + d] : 0;
						bad += b[d * KNN_NR + j] != want;
						ss += (double)g[j * D + d] * g[j * D + d];
					}
					if (j >= n || (r % 2 && lab[j] < 0))
						bad += !isnan(ginv[j]);
					else
						bad += !(fabs(ginv[j] - 1 / sqrt(ss)) <= 1e-7 / sqrt(ss));
				}
				CHECK_MSG(bad == 0, "%s D %d n %d: %d wrong", portable ? "portable" : "auto",
					  D, n, bad);
			}
	}
	cpu_force(CPU_AUTO);
	float zero[3] = {0, 0, 0}, one[3] = {0, 3, 4};
	CHECK(knn_inv_norm(zero, 3) == 0);
	CHECK(knn_inv_norm(one, 3) == 0.2f);
	free(g);
	free(b);
}

/* ---- the fused tile ---- */

/*
 * Both kernels. (A) every threshold −∞ and no lists: every row is left to
 * the caller with all its similarities, which must match a double sum
 * (relative 1e-5), NaN for NaN ginv, and never hit in an invalid column.
 * (B) thresholds from −∞ to +∞: a row is left exactly when one of its valid
 * columns beats its threshold, with exactly those hits. (C) with lists:
 * rows with room get the keys of their hits appended in column order, the
 * full one is left to the caller.
 */
TEST(knn_tile_matches_double_sums)
{
	const int D = 37, cap = 64;
	const int64_t j0 = 1000;
	const uint64_t valid = ((uint64_t)1 << (KNN_NR - 1)) - 1;  /* last column: padding */
	struct isif_rng rng;
	isif_rng_seed(&rng, 23, 1);
	float *q = gauss_rows(&rng, KNN_MR, D), *g = gauss_rows(&rng, KNN_NR, D);
	float *a = malloc(sizeof(float) * KNN_MR * D), *b = malloc(sizeof(float) * KNN_NR * D);
	float ginv[KNN_NR], thr[KNN_MR], ninf[KNN_MR], s[KNN_MR * KNN_NR], sa[KNN_MR * KNN_NR];
	uint64_t hits[KNN_MR], *keys = malloc(sizeof(uint64_t) * KNN_MR * cap);
	int32_t fill[KNN_MR];

	knn_pack_queries(a, q, KNN_MR, D);
	knn_pack_gallery(b, ginv, g, NULL, KNN_NR - 1, D);
	for (int j = 0; j < KNN_NR; j++)
		ginv[j] = j % 11 == 5 ? NAN : (float)(0.5 + j / 64.0);
	for (int i = 0; i < KNN_MR; i++) {
		ninf[i] = -INFINITY;
		thr[i] = i == 0 ? -INFINITY : i == 1 ? INFINITY : (float)(0.3 * (i - 4));
	}
	for (int portable = 0; portable < 2; portable++) {
		cpu_force(portable ? CPU_PORTABLE : CPU_AUTO);
		knn_tile_fn *tile = knn_tile_kernel();
		int bad = 0;

		struct knn_sink none = {NULL, fill, cap, j0, valid};
		CHECK_EQ(tile(D, a, b, ginv, ninf, &none, sa, hits), 0xff);
		for (int i = 0; i < KNN_MR; i++) {
			double qq = 0;
			for (int d = 0; d < D; d++)
				qq += (double)q[i * D + d] * q[i * D + d];
			for (int j = 0; j < KNN_NR; j++) {
				double dot = 0;
				for (int d = 0; d < D && j < KNN_NR - 1; d++)
					dot += (double)q[i * D + d] * g[j * D + d];
				double want = dot / sqrt(qq) * ginv[j];
				float got = sa[i * KNN_NR + j];
				int hit = (int)(hits[i] >> j & 1);
				if (isnan(ginv[j]))
					bad += !isnan(got) || hit;
				else
					bad += !(fabs(got - want) <= 1e-5 * (1 + fabs(want))) ||
					       hit != (j < KNN_NR - 1);
			}
		}
		CHECK_MSG(bad == 0, "%s kernel (A): %d elements wrong", portable ? "portable" : "auto", bad);

		uint32_t left = tile(D, a, b, ginv, thr, &none, s, hits);
		for (int i = 0; i < KNN_MR; i++) {
			uint64_t want = 0;
			for (int j = 0; j < KNN_NR; j++)
				if (sa[i * KNN_NR + j] > thr[i])
					want |= (uint64_t)1 << j;
			want &= valid;
			bad += (int)(left >> i & 1) != (want != 0);
			bad += want && hits[i] != want;
		}
		CHECK_MSG(bad == 0, "%s kernel (B): %d rows wrong", portable ? "portable" : "auto", bad);
		CHECK(left & 1);
		CHECK(!(left & 2));

		struct knn_sink lists = {keys, fill, cap, j0, valid};
		for (int i = 0; i < KNN_MR; i++)
			fill[i] = i == 0 ? cap - 1 : i;   /* row 0: no room for its hits */
		left = tile(D, a, b, ginv, thr, &lists, s, hits);
		CHECK_EQ(left, 1);
		for (int i = 1; i < KNN_MR; i++) {
			int n = i;
			for (int j = 0; j < KNN_NR - 1; j++)
				if (sa[i * KNN_NR + j] > thr[i])
					bad += keys[i * cap + n++] != knn_key(sa[i * KNN_NR + j], j0 + j);
			bad += fill[i] != n;
		}
		CHECK_MSG(bad == 0, "%s kernel (C): %d keys wrong", portable ? "portable" : "auto", bad);
	}
	cpu_force(CPU_AUTO);
	free(q);
	free(g);
	free(a);
	free(b);
	free(keys);
}

/* ---- whole searches ---- */

struct config {
	struct isif_knn_blocks blk;
	struct isif_knn_exec ex;
};

/* Every mode of the engine on small sizes: one query per call, blocks that
 * split the gallery mid-panel, chunks shorter than a panel, items of one
 * panel, threads above the number of items. */
static const struct config configs[] = {
	{{0, 0}, {0, 0, 0, 0, NULL, 0}},
	{{0, 0}, {1, 0, -1, 0, NULL, 0}},
	{{0, 0}, {1, 0, 1, 0, NULL, 0}},
	{{1, 0}, {2, 0, 0, 0, NULL, 0}},
	{{50, 13}, {2, 8, 1, 0, NULL, 0}},
	{{5, 0}, {2, 0, 0, 0, NULL, 0}},
	{{0, 7}, {2, 8, 1, 0, NULL, 0}},
	{{64, 47}, {2, 16, 1, 0, NULL, 0}},
	{{64, 48}, {2, 8, 1, 0, NULL, 0}},
	{{0, 0}, {4, 8, 1, 0, NULL, 0}},
	{{100, 49}, {2, 24, 1, 0, NULL, 0}},
	{{0, 100}, {2, 8, 1, 0, NULL, 0}},
	{{0, 0}, {2, 8, -1, 0, NULL, 0}},
	{{37, 0}, {3, 0, -1, 0, NULL, 0}},
};
#define NCONFIG (sizeof configs / sizeof configs[0])

/* Runs every configuration with both kernels on (g, gl, q) and compares
 * with the brute force; returns the number of configurations that differ. */
static int check_all_configs(const float *g, const int32_t *gl, int64_t ng, const float *q,
			     int64_t nq, int D, int k, int self, double tol)
{
	int64_t *ridx = malloc((size_t)(nq * k) * sizeof *ridx);
	double *rsim = malloc((size_t)(nq * k) * sizeof *rsim);
	int64_t *idx = malloc((size_t)(nq * k) * sizeof *idx);
	float *sim = malloc((size_t)(nq * k) * sizeof *sim);
	int failed = 0;

	ref_topk(g, gl, ng, q, nq, D, k, self, ridx, rsim);
	for (int portable = 0; portable < 2; portable++) {
		cpu_force(portable ? CPU_PORTABLE : CPU_AUTO);
		for (size_t c = 0; c < NCONFIG; c++) {
			memset(idx, 0x5a, (size_t)(nq * k) * sizeof *idx);
			int rc = run_search(g, gl, ng, q, nq, D, k, self, &configs[c].blk,
					    &configs[c].ex, idx, sim);
			int64_t bad = rc ? -1 : count_diffs(idx, sim, ridx, rsim, nq * k, tol);
			CHECK_MSG(bad == 0, "k %d self %d %s, config %zu: %lld slots differ (rc %d)",
				  k, self, portable ? "portable" : "auto", c, (long long)bad, rc);
			failed += bad != 0;
		}
	}
	cpu_force(CPU_AUTO);
	free(ridx);
	free(rsim);
	free(idx);
	free(sim);
	return failed;
}

/* Quantised rows (exact similarities, many ties), a few rows labelled −1
 * (never returned), k from 1 (the list overflows at every second
 * candidate) to beyond the gallery (padding), with and without the query's
 * own row. */
TEST(knn_search_exact_ties_every_mode)
{
	const int64_t n = 300;
	const int D = 20;
	const int ks[] = {1, 3, 48, 299, 330};
	struct isif_rng rng;
	isif_rng_seed(&rng, 5, 77);
	float *x = quantised_rows(&rng, n, D);
	int32_t *lab = malloc((size_t)n * sizeof *lab);
	for (int64_t j = 0; j < n; j++)
		lab[j] = j % 29 == 3 ? -1 : 0;

	/* the data has ties at the boundaries that matter */
	int64_t ridx[3];
	double rsim[3];
	ref_topk(x, NULL, n, x + 7 * D, 1, D, 3, 0, ridx, rsim);
	CHECK(rsim[0] == rsim[1] || rsim[1] == rsim[2]);

	for (size_t t = 0; t < sizeof ks / sizeof ks[0]; t++) {
		check_all_configs(x, lab, n, x, n, D, ks[t], 1, 0);
		check_all_configs(x, NULL, n, x, n, D, ks[t], 0, 0);
	}
	free(x);
	free(lab);
}

/* Queries apart from the gallery, and an empty gallery. */
TEST(knn_search_separate_queries_and_empty_gallery)
{
	const int64_t ng = 410, nq = 130;
	const int D = 16, k = 25;
	struct isif_rng rng;
	isif_rng_seed(&rng, 8, 2);
	float *g = quantised_rows(&rng, ng, D), *q = quantised_rows(&rng, nq, D);
	check_all_configs(g, NULL, ng, q, nq, D, k, 0, 0);

	/* single-row chunks on three threads (a barrier pair per row) */
	int64_t *ridx = malloc((size_t)(nq * k) * sizeof *ridx), *sidx = malloc((size_t)(nq * k) * sizeof *sidx);
	double *rsim = malloc((size_t)(nq * k) * sizeof *rsim);
	float *ssim = malloc((size_t)(nq * k) * sizeof *ssim);
	const struct isif_knn_blocks rows1 = {0, 1};
	const struct isif_knn_exec three = {3, 8, 1, 0, NULL, 0};
	ref_topk(g, NULL, ng, q, nq, D, k, 0, ridx, rsim);
	CHECK_EQ(run_search(g, NULL, ng, q, nq, D, k, 0, &rows1, &three, sidx, ssim), ISIF_OK);
	CHECK_EQ(count_diffs(sidx, ssim, ridx, rsim, nq * k, 0), 0);
	free(ridx);
	free(sidx);
	free(rsim);
	free(ssim);

	int64_t idx[2 * 4];
	float sim[2 * 4];
	CHECK_EQ(run_search(g, NULL, 0, q, 2, D, 4, 0, NULL, NULL, idx, sim), ISIF_OK);
	for (int t = 0; t < 8; t++)
		CHECK(idx[t] == -1 && sim[t] == -INFINITY);
	free(g);
	free(q);
}

/* Gaussian rows at D = 128 (the evaluation's width): similarities within
 * 1e-5 of double and each returned row's own double cosine within 1e-5 of
 * the reference at its slot (a near-tie may swap two rows, never let a
 * worse one in). Sizes past the default blocks: two calls of 1024
 * queries on two threads sharing a packed gallery, with a team of the
 * search's own, at most two threads of its own, or a borrowed team. */
TEST(knn_search_gaussian_default_blocks)
{
	const int64_t ng = 2000, nq = 1100;
	const int D = 128, k = 40;
	struct isif_rng rng;
	isif_rng_seed(&rng, 31, 3);
	float *g = gauss_rows(&rng, ng, D), *q = gauss_rows(&rng, nq, D);
	int64_t *ridx = malloc((size_t)(nq * k) * sizeof *ridx);
	double *rsim = malloc((size_t)(nq * k) * sizeof *rsim);
	int64_t *idx = malloc((size_t)(nq * k) * sizeof *idx);
	float *sim = malloc((size_t)(nq * k) * sizeof *sim);
	struct team *lent = team_create(2);
	const struct isif_knn_exec two = {2, 0, 0, 0, NULL, 0}, one_fly = {1, 0, -1, 0, NULL, 0};
	const struct isif_knn_exec upto2 = {0, 0, 0, 2, NULL, 0}, borrowed = {0, 0, 0, 0, lent, 0};
	const struct isif_knn_exec *exs[5] = {NULL, &two, &one_fly, &upto2, &borrowed};

	CHECK(lent != NULL);
	ref_topk(g, NULL, ng, q, nq, D, k, 0, ridx, rsim);
	for (int e = 0; e < 5; e++) {
		CHECK_EQ(run_search(g, NULL, ng, q, nq, D, k, 0, NULL, exs[e], idx, sim), ISIF_OK);
		int64_t bad = 0;
		for (int64_t i = 0; i < nq; i++)
			for (int t = 0; t < k; t++) {
				int64_t j = idx[i * k + t];
				double own = j >= 0 && j < ng ? cosine0(q + i * D, g + j * D, D) : 9;
				bad += !(fabs(sim[i * k + t] - rsim[i * k + t]) <= 1e-5) ||
				       !(fabs(own - rsim[i * k + t]) <= 1e-5);
			}
		CHECK_MSG(bad == 0, "exec %d: %lld slots off", e, (long long)bad);
	}
	team_free(lent);
	free(g);
	free(q);
	free(ridx);
	free(rsim);
	free(idx);
	free(sim);
}

/* Argument checks of the index. */
TEST(knn_index_rejects_bad_arguments)
{
	struct isif_knn_index ix;
	float g[4] = {1, 0, 0, 1};
	CHECK_EQ(isif_knn_index_init(&ix, g, NULL, 2, 2, 0, 1, NULL, NULL), ISIF_EINVAL);
	CHECK_EQ(isif_knn_index_init(&ix, g, NULL, 2, 0, 1, 1, NULL, NULL), ISIF_EINVAL);
	CHECK_EQ(isif_knn_index_init(&ix, NULL, NULL, 2, 2, 1, 1, NULL, NULL), ISIF_EINVAL);
	CHECK_EQ(isif_knn_index_init(&ix, g, NULL, (int64_t)INT32_MAX + 1, 2, 1, 1, NULL, NULL),
		 ISIF_EINVAL);
	CHECK_EQ(isif_knn_index_init(&ix, g, NULL, 2, 2, 1, 1, NULL, NULL), ISIF_OK);
	isif_knn_index_free(&ix);
}

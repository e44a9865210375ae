/*
 * tests/unit/test_eval.c — weighted kNN, exact top-k, Recall@K, NMI and
 * k-means (include/isif/eval/eval.h, core/eval/eval_impl.h). Expected values are
 * worked out by hand (the arithmetic is in the comments, checked with plain
 * python3 math) or come from naive double-precision references written
 * here, never from the code under test.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "isif/base/common.h"
#include "isif/eval/eval.h"
#include "isif/base/rng.h"
#include "eval/eval_impl.h"
#include "base/team_impl.h"

#define PI 3.14159265358979323846

/* A 2-D unit vector at `deg` degrees into v[0..1]. */
static void at_angle(float *v, double deg)
{
	v[0] = (float)cos(deg * PI / 180.0);
	v[1] = (float)sin(deg * PI / 180.0);
}

static double gauss(struct isif_rng *rng)
{
	double u1 = 1.0 - isif_rng_uniform(rng), u2 = isif_rng_uniform(rng);
	return sqrt(-2.0 * log(u1)) * cos(2.0 * PI * u2);
}

/* n random rows of width D, Gaussian entries (not normalised: the code under
 * test must normalise itself). */
static float *random_rows(struct isif_rng *rng, int64_t n, int D)
{
	float *x = malloc((size_t)(n * D) * sizeof *x);
	for (int64_t i = 0; i < n * D; i++)
		x[i] = (float)gauss(rng);
	return x;
}

/* ---- naive references, in double ---- */

struct scored { double s; int64_t i; };

/* Best first: higher similarity, then lower index. */
static int by_score(const void *pa, const void *pb)
{
	const struct scored *a = pa, *b = pb;
	if (a->s != b->s)
		return a->s > b->s ? -1 : 1;
	return (a->i > b->i) - (a->i < b->i);
}

static double cosine(const float *a, const float *b, int D)
{
	double ab = 0, aa = 0, bb = 0;
	for (int d = 0; d < D; d++) {
		ab += (double)a[d] * b[d];
		aa += (double)a[d] * a[d];
		bb += (double)b[d] * b[d];
	}
	return ab / sqrt(aa * bb);
}

/* All gallery rows (minus `skip`, minus label < 0 when labels given)
 * sorted best first into out; returns how many. */
static int64_t ref_ranking(const float *g, const int32_t *gl, int64_t ng,
			   const float *qi, int D, int64_t skip,
			   struct scored *out)
{
	int64_t m = 0;
	for (int64_t j = 0; j < ng; j++) {
		if (j == skip || (gl && gl[j] < 0))
			continue;
		out[m].s = cosine(qi, g + j * D, D);
		out[m].i = j;
		m++;
	}
	qsort(out, (size_t)m, sizeof *out, by_score);
	return m;
}

/* Weighted kNN by the book: exp(s/τ) summed per class over the k best,
 * prediction = argmax (lower class on ties), top-5 = fewer than five
 * classes ranked above the label. */
static void ref_knn(const float *g, const int32_t *gl, int64_t ng,
		    const float *q, const int32_t *ql, int64_t nq, int D, int k,
		    double tau, int C, int32_t *pred, double *top1, double *top5)
{
	struct scored *r = malloc((size_t)ng * sizeof *r);
	double *votes = malloc((size_t)C * sizeof *votes);
	int64_t counted = 0, h1 = 0, h5 = 0;
	for (int64_t i = 0; i < nq; i++) {
		int64_t m = ref_ranking(g, gl, ng, q + i * D, D, -1, r);
		for (int c = 0; c < C; c++)
			votes[c] = 0;
		for (int64_t j = 0; j < m && j < k; j++)
			votes[gl[r[j].i]] += exp(r[j].s / tau);
		int best = 0;
		for (int c = 1; c < C; c++)
			if (votes[c] > votes[best])
				best = c;
		pred[i] = ql[i] < 0 ? -1 : best;
		if (ql[i] < 0)
			continue;
		int above = 0;
		for (int c = 0; c < C; c++)
			above += votes[c] > votes[ql[i]] ||
				 (votes[c] == votes[ql[i]] && c < ql[i]);
		counted++;
		h1 += above == 0;
		h5 += above < 5;
	}
	*top1 = (double)h1 / counted;
	*top5 = (double)h5 / counted;
	free(r);
	free(votes);
}

/* ---- weighted kNN ---- */

/*
 * Query at 0° with k = 3, τ = 0.1. Gallery (angle, label):
 *   g0 10° 0,  g1 40° 1,  g2 45° 1,  g3 90° 0,  g4 5° −1 (no vote, no place).
 * The three nearest labelled rows are g0, g1, g2:
 *   class 0: exp(10·cos10°) = 18921.94
 *   class 1: exp(10·cos40°) + exp(10·cos45°) = 3300.11
 * so the weighted vote says 0 while the plain majority says 1. With τ = 1:
 *   class 0: exp(cos10°) = 2.677 < class 1: exp(cos40°) + exp(cos45°) = 4.179.
 * Query at 60° (label 1), nearest g2 (15°), g1 (20°), g3 (30°):
 *   τ = 0.1: class 0: exp(10·cos30°) = 5769.0 < class 1: 27717.4 → 1
 *   τ = 1:   class 0: 2.377 < class 1: 5.186 → 1
 * Queries: q0 0° label 0, q1 60° label 1, q2 0° label −1 (skipped),
 * q3 0° label 1. τ = 0.1: predictions 0, 1, −, 0 → top-1 = 2/3;
 * τ = 1: 1, 1, −, 1 → top-1 = 2/3. Two classes, so top-5 = 1.
 */
TEST(knn_hand_weighted_beats_majority)
{
	float g[5 * 2], q[4 * 2];
	const int32_t gl[5] = {0, 1, 1, 0, -1}, ql[4] = {0, 1, -1, 1};
	const double ga[5] = {10, 40, 45, 90, 5}, qa[4] = {0, 60, 0, 0};
	struct isif_knn_result res;
	int32_t pred[4];

	for (int i = 0; i < 5; i++)
		at_angle(g + 2 * i, ga[i]);
	for (int i = 0; i < 4; i++)
		at_angle(q + 2 * i, qa[i]);

	CHECK_EQ(isif_knn_eval_blocked(g, gl, 5, q, ql, 4, 2, 3, 0.1, 2, NULL,
				       pred, &res), ISIF_OK);
	CHECK_EQ(pred[0], 0);
	CHECK_EQ(pred[1], 1);
	CHECK_EQ(pred[2], -1);
	CHECK_EQ(pred[3], 0);
	CHECK_NEAR(res.top1, 2.0 / 3.0, 1e-12);
	CHECK_NEAR(res.top5, 1.0, 1e-12);

	CHECK_EQ(isif_knn_eval_blocked(g, gl, 5, q, ql, 4, 2, 3, 1.0, 2, NULL,
				       pred, &res), ISIF_OK);
	CHECK_EQ(pred[0], 1);
	CHECK_EQ(pred[1], 1);
	CHECK_EQ(pred[3], 1);
	CHECK_NEAR(res.top1, 2.0 / 3.0, 1e-12);

	/* the public entry point agrees */
	CHECK_EQ(isif_knn_eval(g, gl, 5, q, ql, 4, 2, 3, 0.1, 2, 1, &res), ISIF_OK);
	CHECK_NEAR(res.top1, 2.0 / 3.0, 1e-12);
}

/*
 * Top-5 semantics. Gallery at 5°, 10°, …, 35° with classes 0..6, eight
 * classes (7 gets no vote), k = 7, queries at 0°: the votes fall strictly
 * with the angle, so classes rank 0,1,…,6,7. Labels 0, 4, 5:
 *   label 0 rank 0: top-1 and top-5; label 4 rank 4: top-5 only;
 *   label 5 rank 5: neither → top-1 = 1/3, top-5 = 2/3.
 * Zero-vote ties: gallery 5°, 10°, 15° with classes 5, 6, 7, k = 3: ranks
 *   5→0, 6→1, 7→2, then the unvoted by index 0→3, 1→4, 2→5; labels 1, 2 →
 *   top-5 = 1/2, top-1 = 0.
 * Equal votes: two identical rows (1, 0) of classes 3 and 1, query (1, 0):
 *   both weights exp(0) — the tie goes to class 1.
 */
TEST(knn_top5_ranks_and_ties)
{
	float g[7 * 2], q[3 * 2];
	int32_t gl[7] = {0, 1, 2, 3, 4, 5, 6}, ql[3] = {0, 4, 5}, pred[3];
	struct isif_knn_result res;

	for (int i = 0; i < 7; i++)
		at_angle(g + 2 * i, 5.0 * (i + 1));
	for (int i = 0; i < 3; i++)
		at_angle(q + 2 * i, 0);
	CHECK_EQ(isif_knn_eval(g, gl, 7, q, ql, 3, 2, 7, 0.1, 8, 1, &res), ISIF_OK);
	CHECK_NEAR(res.top1, 1.0 / 3.0, 1e-12);
	CHECK_NEAR(res.top5, 2.0 / 3.0, 1e-12);

	int32_t gl2[3] = {5, 6, 7}, ql2[2] = {1, 2};
	CHECK_EQ(isif_knn_eval(g, gl2, 3, q, ql2, 2, 2, 3, 0.1, 8, 1, &res), ISIF_OK);
	CHECK_NEAR(res.top1, 0.0, 1e-12);
	CHECK_NEAR(res.top5, 0.5, 1e-12);

	float gt[4] = {1, 0, 1, 0}, qt[4] = {1, 0, 1, 0};
	int32_t glt[2] = {3, 1}, qlt[2] = {1, 3};
	CHECK_EQ(isif_knn_eval_blocked(gt, glt, 2, qt, qlt, 2, 2, 2, 0.1, 4,
				       NULL, pred, &res), ISIF_OK);
	CHECK_EQ(pred[0], 1);
	CHECK_EQ(pred[1], 1);
	CHECK_NEAR(res.top1, 0.5, 1e-12);
	CHECK_NEAR(res.top5, 1.0, 1e-12);
}

/* k larger than the gallery uses all of it: the first three rows of the
 * hand case with k = 50 give the same votes as k = 3 (prediction 0 for the
 * query at 0°, see knn_hand_weighted_beats_majority). An empty gallery
 * counts every query wrong. */
TEST(knn_k_larger_than_gallery)
{
	float g[3 * 2], q[2];
	const int32_t gl[3] = {0, 1, 1}, ql[1] = {0};
	struct isif_knn_result res;
	int32_t pred[1];

	at_angle(g, 10);
	at_angle(g + 2, 40);
	at_angle(g + 4, 45);
	at_angle(q, 0);
	CHECK_EQ(isif_knn_eval_blocked(g, gl, 3, q, ql, 1, 2, 50, 0.1, 2, NULL,
				       pred, &res), ISIF_OK);
	CHECK_EQ(pred[0], 0);
	CHECK_NEAR(res.top1, 1.0, 1e-12);
	CHECK_EQ(isif_knn_eval_blocked(g, gl, 3, q, ql, 1, 2, 50, 1.0, 2, NULL,
				       pred, &res), ISIF_OK);
	CHECK_EQ(pred[0], 1);   /* τ = 1: 2.677 < 4.179 */
	CHECK_NEAR(res.top1, 0.0, 1e-12);

	CHECK_EQ(isif_knn_eval(g, gl, 0, q, ql, 1, 2, 5, 0.1, 2, 1, &res), ISIF_OK);
	CHECK_NEAR(res.top1, 0.0, 1e-12);
	CHECK_NEAR(res.top5, 0.0, 1e-12);
}

TEST(knn_rejects_bad_arguments)
{
	float g[2] = {1, 0}, q[2] = {1, 0};
	int32_t gl[1] = {0}, bad[1] = {2}, ql[1] = {0};
	struct isif_knn_result res;

	CHECK_EQ(isif_knn_eval(g, gl, 1, q, ql, 1, 2, 0, 0.1, 2, 1, &res), ISIF_EINVAL);
	CHECK_EQ(isif_knn_eval(g, gl, 1, q, ql, 1, 2, 1, 0.0, 2, 1, &res), ISIF_EINVAL);
	CHECK_EQ(isif_knn_eval(g, gl, 1, q, ql, 1, 0, 1, 0.1, 2, 1, &res), ISIF_EINVAL);
	CHECK_EQ(isif_knn_eval(g, bad, 1, q, ql, 1, 2, 1, 0.1, 2, 1, &res), ISIF_EINVAL);
	CHECK_EQ(isif_knn_eval(g, gl, 1, q, bad, 1, 2, 1, 0.1, 2, 1, &res), ISIF_EINVAL);
	CHECK_EQ(isif_knn_eval(g, gl, 1, q, ql, 1, 2, 1, 0.1, 2, 1, NULL), ISIF_EINVAL);
}

/* Random data, 3000 × 700 × 16, 10 classes, some gallery labels −1 and some
 * queries skipped: tiny and odd block sizes, one-row tiles and the defaults
 * all give exactly the naive double-precision predictions. */
TEST(knn_blocked_matches_naive)
{
	const int64_t ng = 3000, nq = 700;
	const int D = 16, k = 20, C = 10;
	const double tau = 0.1;
	const struct isif_knn_blocks blocks[] = {
		{7, 13}, {1, 257}, {256, 1}, {0, 0}, {700, 3000}};
	struct isif_rng rng;
	isif_rng_seed(&rng, 42, 7);
	float *g = random_rows(&rng, ng, D), *q = random_rows(&rng, nq, D);
	int32_t *gl = malloc(ng * sizeof *gl), *ql = malloc(nq * sizeof *ql);
	int32_t *ref = malloc(nq * sizeof *ref), *pred = malloc(nq * sizeof *pred);
	double r1, r5;

	for (int64_t j = 0; j < ng; j++)
		gl[j] = j % 97 == 0 ? -1 : (int32_t)isif_rng_below(&rng, C);
	for (int64_t i = 0; i < nq; i++)
		ql[i] = i % 53 == 0 ? -1 : (int32_t)isif_rng_below(&rng, C);
	ref_knn(g, gl, ng, q, ql, nq, D, k, tau, C, ref, &r1, &r5);
	CHECK(r1 > 0.05 && r5 > r1);  /* the reference is not degenerate */

	for (size_t b = 0; b < sizeof blocks / sizeof blocks[0]; b++) {
		struct isif_knn_result res;
		int64_t diff = 0;
		CHECK_EQ(isif_knn_eval_blocked(g, gl, ng, q, ql, nq, D, k, tau,
					       C, &blocks[b], pred, &res), ISIF_OK);
		for (int64_t i = 0; i < nq; i++)
			diff += pred[i] != ref[i];
		CHECK_MSG(diff == 0, "blocks %lld×%lld: %lld predictions differ",
			  (long long)blocks[b].qblock,
			  (long long)blocks[b].gblock, (long long)diff);
		CHECK_NEAR(res.top1, r1, 1e-12);
		CHECK_NEAR(res.top5, r5, 1e-12);
	}
	free(g);
	free(q);
	free(gl);
	free(ql);
	free(ref);
	free(pred);
}

/* ---- exact top-k ---- */

/* Checks one top-k answer against the naive ranking of every query. */
static void check_topk(const float *g, int64_t ng, const float *q, int64_t nq,
		       int D, int k, int exclude_self, const int64_t *idx,
		       const float *sim)
{
	struct scored *r = malloc((size_t)ng * sizeof *r);
	int64_t bad = 0;
	for (int64_t i = 0; i < nq; i++) {
		int64_t m = ref_ranking(g, NULL, ng, q + i * D, D,
					exclude_self ? i : -1, r);
		for (int j = 0; j < k; j++) {
			int64_t want = j < m ? r[j].i : -1;
			const int64_t got = idx[i * k + j];
			if (got != want ||
			    (want >= 0 && fabs(sim[i * k + j] - r[j].s) > 1e-5) ||
			    (want < 0 && sim[i * k + j] != -INFINITY))
				bad++;
		}
	}
	CHECK_MSG(bad == 0, "%lld top-k slots differ from the naive sort",
		  (long long)bad);
	free(r);
}

TEST(topk_matches_naive_sort)
{
	const int64_t ng = 500, nq = 60;
	const int D = 8, k = 17;
	struct isif_rng rng;
	isif_rng_seed(&rng, 3, 1);
	float *g = random_rows(&rng, ng, D), *q = random_rows(&rng, nq, D);
	int64_t *idx = malloc(nq * k * sizeof *idx);
	float *sim = malloc(nq * k * sizeof *sim);
	const struct isif_knn_blocks tiny = {5, 11};

	CHECK_EQ(isif_topk(g, ng, q, nq, D, k, 0, 1, idx, sim), ISIF_OK);
	check_topk(g, ng, q, nq, D, k, 0, idx, sim);
	CHECK_EQ(isif_topk_blocked(g, ng, q, nq, D, k, 0, &tiny, idx, sim), ISIF_OK);
	check_topk(g, ng, q, nq, D, k, 0, idx, sim);
	free(g);
	free(q);
	free(idx);
	free(sim);
}

/* Queries are the gallery: no row finds itself, and with k > ng − 1 the
 * last slots are (−1, −∞). */
TEST(topk_exclude_self)
{
	const int64_t n = 40;
	const int D = 5;
	struct isif_rng rng;
	isif_rng_seed(&rng, 9, 2);
	float *x = random_rows(&rng, n, D);
	int64_t idx[40 * 41];
	float sim[40 * 41];
	const struct isif_knn_blocks tiny = {3, 7};

	CHECK_EQ(isif_topk_blocked(x, n, x, n, D, 6, 1, &tiny, idx, sim), ISIF_OK);
	check_topk(x, n, x, n, D, 6, 1, idx, sim);
	for (int64_t i = 0; i < n; i++)
		for (int j = 0; j < 6; j++)
			CHECK(idx[i * 6 + j] != i);
	CHECK_EQ(isif_topk(x, n, x, n, D, 41, 1, 1, idx, sim), ISIF_OK);
	check_topk(x, n, x, n, D, 41, 1, idx, sim);
	CHECK_EQ(idx[39], -1);          /* row 0: 39 others, then two empty */
	CHECK_EQ(idx[40], -1);
	CHECK(sim[40] == -INFINITY);
	CHECK(idx[38] >= 0);
	/* without exclusion a row is its own best match (cosine 1) */
	CHECK_EQ(isif_topk(x, n, x, n, D, 1, 0, 1, idx, sim), ISIF_OK);
	for (int64_t i = 0; i < n; i++)
		CHECK_EQ(idx[i], i);
	free(x);
}

/* Exact ties: rows 3 and 7 equal the query (1,0,0,0) (dot exactly 1), the
 * others are (½,½,½,½) (dot exactly ½): best first is 3, 7, then 0, 1, 2. */
TEST(topk_ties_lower_index_first)
{
	float g[8 * 4], q[4] = {1, 0, 0, 0};
	int64_t idx[5];
	float sim[5];
	for (int j = 0; j < 8; j++)
		for (int d = 0; d < 4; d++)
			g[j * 4 + d] = (j == 3 || j == 7) ? (d == 0) : 0.5f;
	const struct isif_knn_blocks blocks[] = {{1, 1}, {1, 3}, {0, 0}};
	for (int b = 0; b < 3; b++) {
		CHECK_EQ(isif_topk_blocked(g, 8, q, 1, 4, 5, 0, &blocks[b], idx,
					   sim), ISIF_OK);
		CHECK_EQ(idx[0], 3);
		CHECK_EQ(idx[1], 7);
		CHECK_EQ(idx[2], 0);
		CHECK_EQ(idx[3], 1);
		CHECK_EQ(idx[4], 2);
		CHECK_NEAR(sim[0], 1.0, 1e-7);
		CHECK_NEAR(sim[4], 0.5, 1e-7);
	}
}

/* ---- Recall@K ---- */

/*
 * Six unit vectors at angles 0, 10, 25, 45, 70, 100 degrees (gaps 10, 15,
 * 20, 25, 30: every neighbour order is strict), labels 0 1 0 0 1 1.
 * Cosine falls with the angle gap, so neighbours by gap:
 *   p0: p1 p2 p3 …   p1: p0(10) p2(15) p3(35) p4(60)   p2: p1(15) p3(20)
 *   p3: p2(20) p4(25)   p4: p3(25) p5(30)   p5: p4(30)
 * K=1: hits p3 (p2 is 0), p5 (p4 is 1)                   → 2/6
 * K=2: + p0 (p2 is 0), p2 (p3 is 0), p4 (p5 is 1)        → 5/6
 * K=3: p1's three nearest p0 p2 p3 are all 0             → 5/6
 * K=4: p1 reaches p4 (label 1)                           → 6/6
 * K=8: more than n − 1 = 5, all others                   → 6/6
 */
TEST(recall_hand_line)
{
	const double ang[6] = {0, 10, 25, 45, 70, 100};
	const int32_t lab[6] = {0, 1, 0, 0, 1, 1};
	const int ks[5] = {1, 2, 3, 4, 8};
	const double want[5] = {2.0 / 6, 5.0 / 6, 5.0 / 6, 1, 1};
	float x[12];
	double rec[5];

	for (int i = 0; i < 6; i++)
		at_angle(x + 2 * i, ang[i]);
	CHECK_EQ(isif_recall_at_k(x, lab, 6, 2, ks, 5, 1, rec), ISIF_OK);
	for (int i = 0; i < 5; i++)
		CHECK_NEAR(rec[i], want[i], 1e-12);

	CHECK_EQ(isif_recall_at_k(x, lab, 1, 2, ks, 5, 1, rec), ISIF_OK);
	CHECK_NEAR(rec[0], 0.0, 0);
	const int zero[1] = {0};
	CHECK_EQ(isif_recall_at_k(x, lab, 6, 2, zero, 1, 1, rec), ISIF_EINVAL);
}

/* Random rows against a naive Recall@K: each row's other rows sorted by
 * double-precision cosine, hit when a same-label row is among the first K. */
TEST(recall_matches_naive)
{
	const int64_t n = 300;
	const int D = 6, ks[4] = {1, 2, 4, 8};
	struct isif_rng rng;
	isif_rng_seed(&rng, 21, 4);
	float *x = random_rows(&rng, n, D);
	int32_t lab[300];
	struct scored r[300];
	double rec[4], want[4] = {0, 0, 0, 0};

	for (int64_t i = 0; i < n; i++)
		lab[i] = (int32_t)isif_rng_below(&rng, 5);
	for (int64_t i = 0; i < n; i++) {
		int64_t m = ref_ranking(x, NULL, n, x + i * D, D, i, r);
		for (int t = 0; t < 4; t++)
			for (int64_t j = 0; j < m && j < ks[t]; j++)
				if (lab[r[j].i] == lab[i]) {
					want[t] += 1.0 / n;
					break;
				}
	}
	CHECK_EQ(isif_recall_at_k(x, lab, n, D, ks, 4, 2, rec), ISIF_OK);
	for (int t = 0; t < 4; t++)
		CHECK_NEAR(rec[t], want[t], 1e-9);
	CHECK(want[0] < want[3]);
	free(x);
}

/* ---- NMI ---- */

/*
 * a = 0 0 0 1 1 1, b = 0 0 1 1 2 2 (natural logs):
 *   H(a) = ln 2 = 0.693147, H(b) = ln 3 = 1.098612,
 *   pairs (0,0)×2 (0,1) (1,1) (1,2)×2: H(a,b) = ⅔ ln 3 + ⅓ ln 6 = 1.329661
 *   I = H(a) + H(b) − H(a,b) = 0.462098
 *   NMI = 2I/(H(a)+H(b)) = 0.5158037429793887   (python3, math.log)
 */
TEST(nmi_hand_examples)
{
	const int32_t a[6] = {0, 0, 0, 1, 1, 1}, b[6] = {0, 0, 1, 1, 2, 2};
	CHECK_NEAR(isif_nmi(a, b, 6), 0.5158037429793887, 1e-12);
	CHECK_NEAR(isif_nmi(b, a, 6), 0.5158037429793887, 1e-12);

	const int32_t same[5] = {3, 3, 7, 7, 1};
	CHECK_NEAR(isif_nmi(same, same, 5), 1.0, 1e-12);

	/* independent: every (a, b) pair once, I = ln2 + ln2 − ln4 = 0 */
	const int32_t ia[4] = {0, 0, 1, 1}, ib[4] = {0, 1, 0, 1};
	CHECK_NEAR(isif_nmi(ia, ib, 4), 0.0, 1e-12);

	/* conventions: both single-cluster → 1; only one → 0 */
	const int32_t one[4] = {5, 5, 5, 5}, other[4] = {9, 9, 9, 9};
	CHECK_NEAR(isif_nmi(one, other, 4), 1.0, 0);
	CHECK_NEAR(isif_nmi(one, ib, 4), 0.0, 0);
}

/* Renaming clusters (large and arbitrary values) and permuting the rows of
 * both labelings alike change nothing. */
TEST(nmi_permutation_invariance)
{
	const int32_t a[6] = {0, 0, 0, 1, 1, 1}, b[6] = {0, 0, 1, 1, 2, 2};
	const int32_t rename[3] = {2147483647, 12, 400000};
	const int perm[6] = {4, 0, 5, 2, 1, 3};
	int32_t pa[6], pb[6];

	for (int i = 0; i < 6; i++) {
		pa[i] = a[perm[i]] ? 77 : 1000000;
		pb[i] = rename[b[perm[i]]];
	}
	CHECK_NEAR(isif_nmi(pa, pb, 6), 0.5158037429793887, 1e-12);
}

/* Four well separated Gaussian blobs in 8-D (centres 5·e_j, σ = 0.3, 50
 * points each, rows in interleaved order, labels 10/20/30/40): k-means
 * recovers them, NMI ≈ 1. */
TEST(nmi_kmeans_separated_blobs)
{
	const int n = 200, D = 8;
	float *x = malloc(n * D * sizeof *x);
	int32_t lab[200];
	struct isif_rng rng, krng;
	double nmi = 0;

	isif_rng_seed(&rng, 5, 3);
	for (int i = 0; i < n; i++) {
		int blob = i % 4;
		lab[i] = 10 * (blob + 1);
		for (int d = 0; d < D; d++)
			x[i * D + d] = (float)((d == blob ? 5.0 : 0.0) + 0.3 * gauss(&rng));
	}
	isif_rng_seed(&krng, 1, 0);
	CHECK_EQ(isif_nmi_kmeans(x, lab, n, D, 4, 3, 50, &krng, 2, &nmi), ISIF_OK);
	CHECK_MSG(nmi > 0.999, "nmi %.6f", nmi);
	CHECK_EQ(isif_nmi_kmeans(x, lab, n, D, 0, 3, 50, &krng, 1, &nmi), ISIF_EINVAL);
	CHECK_EQ(isif_nmi_kmeans(x, lab, 3, D, 4, 3, 50, &krng, 1, &nmi), ISIF_EINVAL);
	free(x);
}

/* 1-D points 0, 1, 10, 11 into two clusters: {0,1} and {10,11}, inertia
 * 4 · 0.5² = 1. Duplicated points with k above the number of distinct
 * values force empty clusters: the run still ends with identical points
 * together. */
TEST(kmeans_hand_and_empty_clusters)
{
	const float x[4] = {0, 1, 10, 11};
	int32_t a[6];
	double inertia = 0;
	struct isif_rng rng;

	isif_rng_seed(&rng, 11, 0);
	CHECK_EQ(isif_kmeans(x, 4, 1, 2, 2, 20, &rng, NULL, a, &inertia), ISIF_OK);
	CHECK(a[0] == a[1] && a[2] == a[3] && a[0] != a[2]);
	CHECK_NEAR(inertia, 1.0, 1e-9);

	const float dup[6] = {2, 2, 2, 2, 2, 7};
	const int32_t lab[6] = {0, 0, 0, 0, 0, 1};
	CHECK_EQ(isif_kmeans(dup, 6, 1, 3, 2, 10, &rng, NULL, a, &inertia), ISIF_OK);
	CHECK(a[0] == a[1] && a[1] == a[2] && a[2] == a[3] && a[3] == a[4]);
	CHECK(a[5] != a[0]);
	CHECK_NEAR(inertia, 0.0, 1e-12);
	CHECK_NEAR(isif_nmi(lab, a, 6), 1.0, 1e-12);
}

/* The assignment steps split rows over a team (each block of 4096 rows × 8
 * centres × 32 dimensions is large enough to use it): the clustering is
 * bit for bit the one of the caller alone, whatever the team's size. */
TEST(kmeans_same_on_any_team)
{
	enum { N = 4096, D = 32, K = 8 };
	float *x = malloc(sizeof(float) * N * D);
	int32_t *a = malloc(sizeof(int32_t) * N), *b = malloc(sizeof(int32_t) * N);
	struct isif_rng rng;
	isif_rng_seed(&rng, 5, 1);
	for (int i = 0; i < N; i++)   /* K blobs: centre i mod K, plus noise */
		for (int d = 0; d < D; d++)
			x[i * D + d] = (float)((i % K) == d % K) + 0.3f * isif_rng_uniform(&rng);
	double alone = 0, on_team = 0;
	isif_rng_seed(&rng, 9, 2);
	CHECK_EQ(isif_kmeans(x, N, D, K, 2, 20, &rng, NULL, a, &alone), ISIF_OK);
	for (int threads = 2; threads <= 3; threads++) {
		struct team *tm = team_create(threads);
		CHECK(tm != NULL);
		isif_rng_seed(&rng, 9, 2);
		CHECK_EQ(isif_kmeans(x, N, D, K, 2, 20, &rng, tm, b, &on_team), ISIF_OK);
		CHECK_MSG(memcmp(a, b, sizeof(int32_t) * N) == 0 &&
			  memcmp(&alone, &on_team, sizeof alone) == 0,
			  "team of %d: assignment or inertia (%.17g vs %.17g) differs", threads,
			  on_team, alone);
		team_free(tm);
	}
	free(x);
	free(a);
	free(b);
}

/*
 * Empty-cluster re-seeding from a known start. 1-D points 0, 1, 2, 10 and
 * centres 1 and 100: every point goes to c0 = 1, c1 is empty.
 *   update: c0 = mean(0, 1, 2, 10) = 3.25; c1 re-seeded at the point
 *           farthest from its centre (distances to 1: 1, 0, 1, 81) → 10
 *   assign: 0, 1, 2 → c0 (3.25), 10 → c1;   update: c0 = 1, c1 = 10
 *   assign: no change → stop. Inertia 1 + 0 + 1 + 0 = 2.
 * (Re-seeding at the nearest point, 1, would end with {0, 1, 2} against
 * {10} split differently.)
 */
TEST(kmeans_empty_cluster_takes_farthest_point)
{
	const float x[4] = {0, 1, 2, 10};
	float c[2] = {1, 100};
	int32_t a[4];
	double inertia = -1;

	CHECK_EQ(isif_kmeans_from(x, 4, 1, 2, c, 10, NULL, a, &inertia), ISIF_OK);
	CHECK_EQ(a[0], 0);
	CHECK_EQ(a[1], 0);
	CHECK_EQ(a[2], 0);
	CHECK_EQ(a[3], 1);
	CHECK_NEAR(c[0], 1.0, 1e-6);
	CHECK_NEAR(c[1], 10.0, 1e-6);
	CHECK_NEAR(inertia, 2.0, 1e-9);

	/* iters = 0: only the assignment to the starting centres */
	float c0[2] = {1, 100};
	CHECK_EQ(isif_kmeans_from(x, 4, 1, 2, c0, 0, NULL, a, &inertia), ISIF_OK);
	CHECK(a[0] == 0 && a[3] == 0);
	CHECK_NEAR(inertia, 1.0 + 0 + 1 + 81, 1e-9);
}

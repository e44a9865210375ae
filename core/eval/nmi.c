/*
 * core/eval/nmi.c — normalised mutual information between two labelings, and
 * the NMI of a k-means clustering (kmeans.c) against ground-truth labels,
 * as in the unseen-category protocol.
 *
 *     NMI(A, B) = 2·I(A;B) / (H(A) + H(B)),   I = H(A) + H(B) − H(A,B)
 *     H(X) = −Σ_x p(x) ln p(x),  p(x) = n_x / n     (natural logs)
 *
 * Label values are arbitrary (only equality matters): the counts n_a, n_b
 * and n_ab come from sorting the values (and the (a, b) pairs) and counting
 * runs, which is remapping to 0..K−1 without a K_A × K_B table.
 *
 * Convention: when both labelings have a single cluster, H(A) + H(B) = 0
 * and NMI is defined as 1 (they agree perfectly); when only one has, NMI is
 * 0 (I = 0). The result is clamped to [0, 1] against rounding.
 */
#include <math.h>
#include <stdlib.h>

#include "eval/eval_impl.h"
#include "base/team_impl.h"
#include "isif/base/common.h"

static int cmp_u64(const void *pa, const void *pb)
{
	uint64_t a = *(const uint64_t *)pa, b = *(const uint64_t *)pb;
	return (a > b) - (a < b);
}

/* Entropy of the multiset keys[0..n) (sorted here): −Σ (c/n) ln(c/n) over
 * the run lengths c. */
static double entropy_sorted(uint64_t *keys, int64_t n)
{
	double h = 0;
	qsort(keys, (size_t)n, sizeof *keys, cmp_u64);
	for (int64_t i = 0; i < n;) {
		int64_t j = i;
		while (j < n && keys[j] == keys[i])
			j++;
		double p = (double)(j - i) / (double)n;
		h -= p * log(p);
		i = j;
	}
	return h;
}

double isif_nmi(const int32_t *a, const int32_t *b, int64_t n)
{
	uint64_t *keys;
	double ha, hb, hab, nmi;

	if (!a || !b || n <= 0)
		return NAN;
	keys = malloc((size_t)n * sizeof *keys);
	if (!keys)
		return NAN;
	for (int64_t i = 0; i < n; i++)
		keys[i] = (uint32_t)a[i];
	ha = entropy_sorted(keys, n);
	for (int64_t i = 0; i < n; i++)
		keys[i] = (uint32_t)b[i];
	hb = entropy_sorted(keys, n);
	for (int64_t i = 0; i < n; i++)
		keys[i] = ((uint64_t)(uint32_t)a[i] << 32) | (uint32_t)b[i];
	hab = entropy_sorted(keys, n);
	free(keys);

	if (ha + hb == 0)
		return 1.0;
	nmi = 2.0 * (ha + hb - hab) / (ha + hb);
	return nmi < 0 ? 0 : (nmi > 1 ? 1 : nmi);
}

enum isif_rc isif_nmi_kmeans_team(const float *x, const int32_t *labels, int64_t n, int D,
			 int k, int restarts, int iters, struct isif_rng *rng,
			 struct team *tm, double *nmi)
{
	int32_t *assign;
	int rc;

	if (!labels || !nmi)
		return ISIF_EINVAL;
	*nmi = 0;
	if (n < 1 || n > INT32_MAX)
		return ISIF_EINVAL;
	assign = malloc((size_t)n * sizeof *assign);
	if (!assign)
		return ISIF_ENOMEM;
	rc = isif_kmeans(x, n, D, k, restarts, iters, rng, tm, assign, NULL);
	if (rc == ISIF_OK) {
		*nmi = isif_nmi(labels, assign, n);
		if (isnan(*nmi))
			rc = ISIF_ENOMEM;
	}
	free(assign);
	return rc;
}

enum isif_rc isif_nmi_kmeans(const float *x, const int32_t *labels, int64_t n, int D,
		    int k, int restarts, int iters, struct isif_rng *rng,
		    int threads, double *nmi)
{
	struct team *tm = NULL;
	if (threads > 1 && !(tm = team_create(threads)))
		return ISIF_ENOMEM;
	int rc = isif_nmi_kmeans_team(x, labels, n, D, k, restarts, iters, rng, tm, nmi);
	team_free(tm);
	return rc;
}

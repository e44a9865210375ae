/*
 * core/eval/recall.c — Recall@K for the unseen-category protocol: every row of a
 * set is a query against all the other rows (itself excluded) by cosine
 * similarity; Recall@K is the fraction of rows whose K nearest other rows
 * include one of the same label. One top-k search with the largest K
 * serves every K: a row's hit rank r (position of its first same-label
 * neighbour) counts for every K > r.
 *
 * Conventions: K larger than n − 1 means all other rows; with n ≤ 1 every
 * recall is 0. Labels are compared for equality only (any int32 values).
 * Ties in similarity go to the lower row index, as in isif_topk.
 */
#include <stdlib.h>

#include "eval/eval_impl.h"
#include "isif/base/common.h"

/* Position of the first neighbour with label y among idx[0..kk), or kk. */
static int first_hit(const int64_t *idx, int kk, const int32_t *labels,
		     int32_t y)
{
	for (int j = 0; j < kk && idx[j] >= 0; j++)
		if (labels[idx[j]] == y)
			return j;
	return kk;
}

enum isif_rc isif_recall_at_k_exec(const float *x, const int32_t *labels, int64_t n, int D,
			  const int *ks, int nks, const struct isif_knn_exec *ex,
			  double *recall)
{
	struct isif_knn_index ix;
	int64_t *idx = NULL, *hits = NULL;
	float *sim = NULL;
	int kmax = 0, rc;

	if (n < 0 || D < 1 || nks < 1 || !ks || !recall ||
	    (n > 0 && (!x || !labels)))
		return ISIF_EINVAL;
	for (int i = 0; i < nks; i++) {
		if (ks[i] < 1)
			return ISIF_EINVAL;
		kmax = ks[i] > kmax ? ks[i] : kmax;
		recall[i] = 0;
	}
	if (n <= 1)
		return ISIF_OK;
	int kk = (int64_t)kmax < n - 1 ? kmax : (int)(n - 1);

	rc = isif_knn_index_init(&ix, x, NULL, n, D, kk, n, NULL, ex);
	if (rc)
		return rc;
	idx = malloc((size_t)(ix.qblock * kk) * sizeof *idx);
	sim = malloc((size_t)(ix.qblock * kk) * sizeof *sim);
	hits = calloc((size_t)kk + 1, sizeof *hits);  /* hits[r]: rows with hit rank r */
	if (!idx || !sim || !hits) {
		rc = ISIF_ENOMEM;
		goto out;
	}
	for (int64_t q0 = 0; q0 < n; q0 += ix.qblock) {
		int64_t nb = n - q0 < ix.qblock ? n - q0 : ix.qblock;
		isif_knn_index_search(&ix, x + q0 * D, nb, q0, idx, sim);
		for (int64_t i = 0; i < nb; i++)
			hits[first_hit(idx + i * kk, kk, labels, labels[q0 + i])]++;
	}
	/* Recall@K = #{rows with hit rank r < K} / n */
	for (int i = 0; i < nks; i++) {
		int64_t found = 0;
		for (int r = 0; r < kk && r < ks[i]; r++)
			found += hits[r];
		recall[i] = (double)found / (double)n;
	}
out:
	free(idx);
	free(sim);
	free(hits);
	isif_knn_index_free(&ix);
	return rc;
}

enum isif_rc isif_recall_at_k(const float *x, const int32_t *labels, int64_t n, int D,
		     const int *ks, int nks, int threads, double *recall)
{
	const struct isif_knn_exec ex = { .max_threads = threads };
	return isif_recall_at_k_exec(x, labels, n, D, ks, nks, &ex, recall);
}

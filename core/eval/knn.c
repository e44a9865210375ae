/*
 * core/eval/knn.c — weighted kNN classification accuracy (Wu et al. 2018, the
 * protocol of the ISIF paper) and the public exact top-k search. The search
 * itself lives in knn_search.c; this file drives it over blocks of queries
 * and counts votes.
 *
 * Conventions (not fixed by the paper, fixed here):
 * - similarity is cosine similarity (rows are normalised internally, so
 *   already-normalised rows give their dot products);
 * - gallery rows with a negative label are not part of the gallery: they
 *   neither vote nor take one of the k places; queries with a negative
 *   label are skipped and not counted in the denominator;
 * - k larger than the gallery uses the whole gallery;
 * - classes are ranked by total vote, ties broken by the lower class index,
 *   over all num_classes classes (classes without a vote rank after every
 *   voted class, in index order, as a sort of the full vote vector does);
 *   top-1 is correct when the label ranks first, top-5 when it ranks in the
 *   first five;
 * - a query whose gallery is empty (no voter) is counted wrong.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/eval_impl.h"
#include "isif/base/common.h"

enum isif_rc isif_topk_exec(const float *g, int64_t ng, const float *q, int64_t nq,
		   int D, int k, int exclude_self,
		   const struct isif_knn_blocks *blk,
		   const struct isif_knn_exec *ex, int64_t *idx, float *sim)
{
	struct isif_knn_index ix;
	int rc;

	if (nq < 0 || (nq > 0 && (!q || !idx || !sim)))
		return ISIF_EINVAL;
	rc = isif_knn_index_init(&ix, g, NULL, ng, D, k, nq, blk, ex);
	if (rc)
		return rc;
	for (int64_t q0 = 0; q0 < nq; q0 += ix.qblock) {
		int64_t nb = nq - q0 < ix.qblock ? nq - q0 : ix.qblock;
		isif_knn_index_search(&ix, q + q0 * D, nb, exclude_self ? q0 : -1,
				      idx + q0 * k, sim + q0 * k);
	}
	isif_knn_index_free(&ix);
	return ISIF_OK;
}

enum isif_rc isif_topk_blocked(const float *g, int64_t ng, const float *q, int64_t nq,
		      int D, int k, int exclude_self,
		      const struct isif_knn_blocks *blk, int64_t *idx,
		      float *sim)
{
	return isif_topk_exec(g, ng, q, nq, D, k, exclude_self, blk, NULL, idx,
			      sim);
}

enum isif_rc isif_topk(const float *g, int64_t ng, const float *q, int64_t nq, int D,
	      int k, int exclude_self, int threads, int64_t *idx, float *sim)
{
	const struct isif_knn_exec ex = { .max_threads = threads };
	return isif_topk_exec(g, ng, q, nq, D, k, exclude_self, NULL, &ex, idx,
			      sim);
}

/*
 * Votes of one query's neighbours (idx, sim)[0..k), best first:
 *     votes[c] = Σ_{j : label(j) = c} exp((s_j − s_0)/τ)
 * — the protocol's exp(s_j/τ) scaled by the common factor exp(−s_0/τ), which
 * changes no ranking and keeps every weight in (0, 1] whatever τ.
 * Returns the number of voters.
 */
static int cast_votes(const int64_t *idx, const float *sim, int k,
		      const int32_t *g_labels, double tau, double *votes,
		      int num_classes)
{
	int voters = 0;
	memset(votes, 0, (size_t)num_classes * sizeof *votes);
	for (int j = 0; j < k && idx[j] >= 0; j++) {
		votes[g_labels[idx[j]]] += exp(((double)sim[j] - sim[0]) / tau);
		voters++;
	}
	return voters;
}

/* Rank of class y among all classes: how many have more votes, or as many
 * votes and a lower index. */
static int class_rank(const double *votes, int num_classes, int y)
{
	int rank = 0;
	for (int c = 0; c < num_classes; c++)
		if (votes[c] > votes[y] || (votes[c] == votes[y] && c < y))
			rank++;
	return rank;
}

static int argmax_class(const double *votes, int num_classes)
{
	int best = 0;
	for (int c = 1; c < num_classes; c++)
		if (votes[c] > votes[best])
			best = c;
	return best;
}

static int check_knn_args(const float *g, const int32_t *g_labels,
			  int64_t ng, const float *q, const int32_t *q_labels,
			  int64_t nq, int D, int k, double knn_tau,
			  int num_classes, const struct isif_knn_result *out)
{
	if (!out || ng < 0 || nq < 0 || D < 1 || k < 1 || num_classes < 1 ||
	    !(knn_tau > 0) || !isfinite(knn_tau))
		return ISIF_EINVAL;
	if ((ng > 0 && (!g || !g_labels)) || (nq > 0 && (!q || !q_labels)))
		return ISIF_EINVAL;
	for (int64_t j = 0; j < ng; j++)
		if (g_labels[j] >= num_classes)
			return ISIF_EINVAL;
	for (int64_t i = 0; i < nq; i++)
		if (q_labels[i] >= num_classes)
			return ISIF_EINVAL;
	return ISIF_OK;
}

enum isif_rc isif_knn_eval_exec(const float *g, const int32_t *g_labels,
		       int64_t ng, const float *q, const int32_t *q_labels,
		       int64_t nq, int D, int k, double knn_tau, int num_classes,
		       const struct isif_knn_blocks *blk, const struct isif_knn_exec *ex,
		       int32_t *pred, struct isif_knn_result *out)
{
	struct isif_knn_index ix;
	int64_t *idx = NULL;
	float *sim = NULL;
	double *votes = NULL;
	int64_t counted = 0, hit1 = 0, hit5 = 0;
	int rc;

	rc = check_knn_args(g, g_labels, ng, q, q_labels, nq, D, k, knn_tau,
			    num_classes, out);
	if (rc)
		return rc;
	out->top1 = out->top5 = 0;
	if (k > ng)
		k = ng > 0 ? (int)ng : 1;
	rc = isif_knn_index_init(&ix, g, g_labels, ng, D, k, nq, blk, ex);
	if (rc)
		return rc;
	idx = malloc((size_t)(ix.qblock * k) * sizeof *idx);
	sim = malloc((size_t)(ix.qblock * k) * sizeof *sim);
	votes = malloc((size_t)num_classes * sizeof *votes);
	if (!idx || !sim || !votes) {
		rc = ISIF_ENOMEM;
		goto out;
	}
	for (int64_t q0 = 0; q0 < nq; q0 += ix.qblock) {
		int64_t nb = nq - q0 < ix.qblock ? nq - q0 : ix.qblock;
		isif_knn_index_search(&ix, q + q0 * D, nb, -1, idx, sim);
		for (int64_t i = 0; i < nb; i++) {
			int y = q_labels[q0 + i];
			int voters = cast_votes(idx + i * k, sim + i * k, k,
						g_labels, knn_tau, votes,
						num_classes);
			if (pred)
				pred[q0 + i] = (y >= 0 && voters > 0)
					? argmax_class(votes, num_classes) : -1;
			if (y < 0)
				continue;
			counted++;
			if (voters == 0)
				continue;
			int rank = class_rank(votes, num_classes, y);
			hit1 += rank == 0;
			hit5 += rank < 5;
		}
	}
	if (counted > 0) {
		out->top1 = (double)hit1 / (double)counted;
		out->top5 = (double)hit5 / (double)counted;
	}
out:
	free(idx);
	free(sim);
	free(votes);
	isif_knn_index_free(&ix);
	return rc;
}

enum isif_rc isif_knn_eval_blocked(const float *g, const int32_t *g_labels,
			  int64_t ng, const float *q, const int32_t *q_labels,
			  int64_t nq, int D, int k, double knn_tau,
			  int num_classes, const struct isif_knn_blocks *blk,
			  int32_t *pred, struct isif_knn_result *out)
{
	return isif_knn_eval_exec(g, g_labels, ng, q, q_labels, nq, D, k, knn_tau,
				  num_classes, blk, NULL, pred, out);
}

enum isif_rc isif_knn_eval(const float *g, const int32_t *g_labels, int64_t ng,
		  const float *q, const int32_t *q_labels, int64_t nq, int D,
		  int k, double knn_tau, int num_classes, int threads,
		  struct isif_knn_result *out)
{
	const struct isif_knn_exec ex = { .max_threads = threads };
	return isif_knn_eval_exec(g, g_labels, ng, q, q_labels, nq, D, k,
				  knn_tau, num_classes, NULL, &ex, NULL, out);
}

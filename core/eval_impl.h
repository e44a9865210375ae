/*
 * core/eval_impl.h — internals of the evaluation code (include/isif/eval.h)
 * shared by knn.c, recall.c, nmi.c and the unit tests: the blocked top-k
 * search engine with its block sizes exposed, kNN evaluation with
 * per-query predictions, and k-means. Not a public header: the server uses
 * include/isif/eval.h only.
 */
#ifndef ISIF_EVAL_IMPL_H
#define ISIF_EVAL_IMPL_H

#include <stdint.h>

#include "isif/eval.h"

#ifdef _OPENMP
#include <cblas.h>
/* Threads for the OpenMP loops beside the BLAS calls: no more than the
 * BLAS itself was allowed. */
static inline int isif_eval_threads(void)
{
	int nt = openblas_get_num_threads();
	return nt > 0 ? nt : 1;
}
#endif

/* Block sizes of the search; 0 picks the defaults, which keep the scratch
 * under 56 MiB (32 MiB tile, 16 MiB of results, 8 MiB of queries) plus 4
 * bytes per gallery row. Tests force tiny blocks to exercise the tiling. */
struct isif_knn_blocks {
	int64_t qblock;  /* queries per GEMM */
	int64_t gblock;  /* gallery rows per GEMM tile */
};

/*
 * A gallery prepared for exact top-k search by cosine similarity.
 * sim(q, g_j) = (q·g_j)/(‖q‖‖g_j‖), the dot products from cblas_sgemm over
 * a [qblock × gblock] tile at a time, so memory never holds a full
 * queries × gallery matrix. Rows of zero norm have similarity 0 to
 * everything. Not thread-safe per index (it owns its scratch); the search
 * itself runs its per-query selection on OpenMP threads when built with it.
 */
struct isif_knn_index {
	const float *g;      /* [ng, D], the caller's */
	int64_t ng;
	int D, k;            /* k: results per query */
	int64_t qblock, gblock;
	float *ginv;         /* [ng] 1/‖g_j‖, NaN for rows never to be selected */
	float *qbuf;         /* [qblock, D] the current queries, normalised */
	float *tile;         /* [qblock, gblock] similarities */
	int64_t *fill;       /* [qblock] heap size per query */
};

/* Prepares ix over g[ng, D] for k results per query and at most nq_hint
 * queries per search call (bounds the scratch). g_labels may be NULL;
 * otherwise rows with a negative label are never returned. blk may be NULL
 * (defaults). Returns ISIF_OK, ISIF_EINVAL or ISIF_ENOMEM; on failure ix
 * holds nothing to free. */
int isif_knn_index_init(struct isif_knn_index *ix, const float *g,
			const int32_t *g_labels, int64_t ng, int D, int k,
			int64_t nq_hint, const struct isif_knn_blocks *blk);

/* Top-k for nq ≤ ix->qblock queries q[nq, D]: idx[nq·k], sim[nq·k], best
 * first, ties by lower gallery index. self0 ≥ 0: query i is gallery row
 * self0 + i and is skipped; self0 < 0: nothing skipped. Slots beyond the
 * rows available get idx −1 and sim −∞. NaN similarities are never
 * selected. */
void isif_knn_index_search(struct isif_knn_index *ix, const float *q,
			   int64_t nq, int64_t self0, int64_t *idx, float *sim);

void isif_knn_index_free(struct isif_knn_index *ix);

/* isif_topk with explicit block sizes (blk NULL: defaults). */
int isif_topk_blocked(const float *g, int64_t ng, const float *q, int64_t nq,
		      int D, int k, int exclude_self,
		      const struct isif_knn_blocks *blk, int64_t *idx,
		      float *sim);

/* isif_knn_eval with explicit block sizes (blk NULL: defaults) and, when
 * pred is not NULL, the top-1 voted class of every query in pred[nq]
 * (−1 for a skipped query or one with no voter). */
int isif_knn_eval_blocked(const float *g, const int32_t *g_labels,
			  int64_t ng, const float *q, const int32_t *q_labels,
			  int64_t nq, int D, int k, double knn_tau,
			  int num_classes, const struct isif_knn_blocks *blk,
			  int32_t *pred, struct isif_knn_result *out);

/* k-means++ seeding and Lloyd steps on x[n, D] (squared Euclidean
 * distance), best of `restarts` runs by inertia; assign[n] gets the cluster
 * of each row of the best run, *inertia its Σ‖x − c‖². Draws from rng only.
 * Returns ISIF_OK, ISIF_EINVAL or ISIF_ENOMEM. */
int isif_kmeans(const float *x, int64_t n, int D, int k, int restarts,
		int iters, struct isif_rng *rng, int32_t *assign,
		double *inertia);

/* Lloyd steps only, from the caller's initial centres[k, D] (updated in
 * place to the final ones): for tests that need a known start. */
int isif_kmeans_from(const float *x, int64_t n, int D, int k, float *centres,
		     int iters, int32_t *assign, double *inertia);

#endif

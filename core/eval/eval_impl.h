/*
 * core/eval/eval_impl.h — internals of the evaluation code (include/isif/eval/eval.h)
 * shared by knn.c, recall.c, nmi.c and the unit tests: the blocked top-k
 * search engine with its block sizes exposed, kNN evaluation with
 * per-query predictions, and k-means. Not a public header: the server uses
 * include/isif/eval/eval.h only.
 */
#ifndef ISIF_EVAL_IMPL_H
#define ISIF_EVAL_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "isif/eval/eval.h"

/* Block sizes of the search; 0 picks the defaults, which keep the scratch
 * under about 64 MiB (a 32 MiB packed gallery chunk, 16 MiB of results,
 * 8 MiB of candidate lists, 4 MiB of packed queries). Tests force tiny
 * blocks to exercise the tiling; the results never depend on them. */
struct isif_knn_blocks {
	int64_t qblock;  /* queries per search call */
	int64_t gblock;  /* gallery rows per packed chunk */
};

struct team;

/* How the search runs; 0 (or a NULL pointer) picks the defaults: the
 * calling thread alone. Tests force thread counts, tiny work items and both
 * packing modes; the results never depend on them. */
struct isif_knn_exec {
	int threads;     /* exactly this many members in the search's own team */
	int sub;         /* queries per work item (rounded up to KNN_MR) */
	int pack;        /* 1: pack the gallery in chunks of gblock rows shared
			  * by all work items; −1: each work item packs each
			  * gallery panel as it goes; 0: choose */
	int max_threads; /* without `threads`: at most this many in a team of
			  * the search's own, fewer (down to the caller alone)
			  * where the work is too small to pay for them */
	struct team *team; /* without `threads`: the caller's team (borrowed,
			    * not used by anyone else during the call), all
			    * of it, or the caller alone for small work */
	int bf16;        /* 1: queries and gallery rounded to bf16 and scanned
			  * with bf16 products (knn_tile_bf16.c): similarities
			  * within knn_bf16_slack(D) of the fp32 ones, not equal */
};

/*
 * A gallery prepared for exact top-k search by cosine similarity,
 *     s(q, g_j) = (q̂ · g_j) · (1/‖g_j‖),   q̂ = q · (1/‖q‖),
 * both inverse norms taken in double and rounded to float, the dot product
 * in float (knn_tile.c). Each query keeps a list of candidates that beat its
 * threshold (the k-th best so far); "better" is higher similarity, then
 * lower gallery row, a total order, so the result is exact and does not
 * depend on block sizes or threads. Memory never holds a queries × gallery
 * matrix. Queries are split over a thread team (its own, or one the caller
 * lends) in work items of `sub` queries; every item visits the gallery in
 * ascending row order. Not thread-safe per index (it owns its scratch).
 */
struct isif_knn_index {
	const float *g;      /* [ng, D], the caller's */
	int Dw;              /* 32-bit words per packed row: D, or ⌈D/2⌉ bf16 pairs */
	int bf16;            /* panels hold bf16 pairs (isif_knn_exec.bf16) */
	const int32_t *labels; /* [ng] or NULL, the caller's: rows < 0 never selected */
	int64_t ng;
	int D, k;            /* k: results per query */
	int64_t qblock, gblock;
	int sub, cap;        /* cap: candidate list length per query */
	int prepack;         /* gallery packed in chunks (else per panel) */
	float *gpack;        /* [gblock rows in KNN_NR-wide panels, D] or NULL */
	float *ginv;         /* [gpack's rows] 1/‖g_j‖; NaN: never selected, and the padding */
	int64_t packed_g0;   /* first row of the chunk in gpack; −1: none */
	float *qpack;        /* [qblock rounded up to KNN_MR, D] queries, packed */
	float *thr;          /* [qblock rounded up] threshold per query */
	int32_t *fill;       /* [qblock rounded up] candidates held per query */
	uint64_t *keys;      /* [qblock, cap] candidates (knn_key) */
	float *work;         /* per member: one gallery panel and its ginv */
	size_t work_per;
	uint64_t *ktmp;      /* per member: cap keys of selection scratch */
	struct team *team;   /* NULL: the caller alone */
	int own_team;        /* team is the index's own (freed with it) */
};

/* Prepares ix over g[ng, D] for k results per query and at most nq_hint
 * queries per search call (bounds the scratch). g_labels may be NULL;
 * otherwise rows with a negative label are never returned. g and g_labels
 * stay the caller's and must outlive ix. blk and ex may be NULL
 * (defaults). Returns ISIF_OK, ISIF_EINVAL (also for ng > INT32_MAX: a row
 * index must fit a candidate key) or ISIF_ENOMEM; on failure ix holds
 * nothing to free. */
enum isif_rc isif_knn_index_init(struct isif_knn_index *ix, const float *g,
			const int32_t *g_labels, int64_t ng, int D, int k,
			int64_t nq_hint, const struct isif_knn_blocks *blk,
			const struct isif_knn_exec *ex);

/* Top-k for nq ≤ ix->qblock queries q[nq, D]: idx[nq·k], sim[nq·k], best
 * first, ties by lower gallery index. self0 ≥ 0: query i is gallery row
 * self0 + i and is skipped; self0 < 0: nothing skipped. Slots beyond the
 * rows available get idx −1 and sim −∞. NaN similarities are never
 * selected. */
void isif_knn_index_search(struct isif_knn_index *ix, const float *q,
			   int64_t nq, int64_t self0, int64_t *idx, float *sim);

void isif_knn_index_free(struct isif_knn_index *ix);

/* isif_topk with explicit block sizes (blk NULL: defaults). */
enum isif_rc isif_topk_blocked(const float *g, int64_t ng, const float *q, int64_t nq,
		      int D, int k, int exclude_self,
		      const struct isif_knn_blocks *blk, int64_t *idx,
		      float *sim);

/* isif_topk_blocked with explicit execution settings (ex NULL: defaults). */
enum isif_rc isif_topk_exec(const float *g, int64_t ng, const float *q, int64_t nq,
		   int D, int k, int exclude_self,
		   const struct isif_knn_blocks *blk,
		   const struct isif_knn_exec *ex, int64_t *idx, float *sim);

/* isif_knn_eval with explicit block sizes (blk NULL: defaults) and, when
 * pred is not NULL, the top-1 voted class of every query in pred[nq]
 * (−1 for a skipped query or one with no voter); on the calling thread. */
enum isif_rc isif_knn_eval_blocked(const float *g, const int32_t *g_labels,
			  int64_t ng, const float *q, const int32_t *q_labels,
			  int64_t nq, int D, int k, double knn_tau,
			  int num_classes, const struct isif_knn_blocks *blk,
			  int32_t *pred, struct isif_knn_result *out);

/* isif_knn_eval_blocked with explicit execution settings (ex NULL: the
 * calling thread alone). */
enum isif_rc isif_knn_eval_exec(const float *g, const int32_t *g_labels,
		       int64_t ng, const float *q, const int32_t *q_labels,
		       int64_t nq, int D, int k, double knn_tau, int num_classes,
		       const struct isif_knn_blocks *blk, const struct isif_knn_exec *ex,
		       int32_t *pred, struct isif_knn_result *out);

/* isif_recall_at_k with explicit execution settings (ex NULL: the calling
 * thread alone). */
enum isif_rc isif_recall_at_k_exec(const float *x, const int32_t *labels, int64_t n, int D,
			  const int *ks, int nks, const struct isif_knn_exec *ex,
			  double *recall);

/* isif_nmi_kmeans on the caller's team tm (borrowed; NULL: the calling
 * thread alone). */
enum isif_rc isif_nmi_kmeans_team(const float *x, const int32_t *labels, int64_t n, int D,
			 int k, int restarts, int iters, struct isif_rng *rng,
			 struct team *tm, double *nmi);

/* k-means++ seeding and Lloyd steps on x[n, D] (squared Euclidean
 * distance), best of `restarts` runs by inertia; assign[n] gets the cluster
 * of each row of the best run, *inertia its Σ‖x − c‖². Draws from rng only.
 * The assignment steps split rows over tm (borrowed; NULL: the calling
 * thread alone); the result does not depend on it. Returns ISIF_OK,
 * ISIF_EINVAL or ISIF_ENOMEM. */
enum isif_rc isif_kmeans(const float *x, int64_t n, int D, int k, int restarts,
		int iters, struct isif_rng *rng, struct team *tm, int32_t *assign,
		double *inertia);

/* Lloyd steps only, from the caller's initial centres[k, D] (updated in
 * place to the final ones): for tests that need a known start. */
enum isif_rc isif_kmeans_from(const float *x, int64_t n, int D, int k, float *centres,
		     int iters, struct team *tm, int32_t *assign, double *inertia);

/* isif_linear_probe (isif/eval/probe.h) on the caller's team tm (borrowed;
 * NULL: the calling thread alone); opt->threads is not read. */
struct isif_error;
struct isif_probe_options;
struct isif_probe_result;
enum isif_rc linear_probe_team(const float *x, const int32_t *y, int64_t n, const float *xt,
			       const int32_t *yt, int64_t nt, int d, int num_classes,
			       const struct isif_probe_options *opt, struct team *tm,
			       struct isif_probe_result *out, struct isif_error *err);

#endif

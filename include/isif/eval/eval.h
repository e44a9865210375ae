/*
 * isif/eval/eval.h — what the learned embeddings are worth: weighted kNN top-1/5
 * (Wu et al. 2018 protocol as in the ISIF paper), Recall@K and NMI of k-means
 * for unseen categories. All work on L2-normalised float32 rows; similarity
 * is the dot product. Memory stays bounded: similarities are computed by
 * blocked GEMM, never as a full queries×gallery matrix.
 *
 * Threads: each function takes `threads`, the most threads it may run on
 * (the calling thread and up to threads − 1 workers started for the call;
 * ≤ 1: the calling thread alone); small problems use fewer. Nothing
 * process-wide is read or set, and results never depend on the count.
 */
#ifndef ISIF_EVAL_H
#define ISIF_EVAL_H

#include <stdint.h>

#include "isif/base/rng.h"

struct isif_knn_result {
	double top1, top5;   /* fractions in [0, 1] */
};

/*
 * For each of nq queries q[nq,D], the k most similar gallery rows g[ng,D]
 * vote for their label (labels in [0, num_classes)) with weight
 * exp(sim/knn_tau); accuracy of the top-1 and top-5 voted classes against
 * q_labels. Uses at most ~64 MiB of scratch. Returns ISIF_OK or ISIF_ENOMEM.
 */
enum isif_rc isif_knn_eval(const float *g, const int32_t *g_labels, int64_t ng,
		  const float *q, const int32_t *q_labels, int64_t nq, int D,
		  int k, double knn_tau, int num_classes, int threads,
		  struct isif_knn_result *out);

/*
 * Exact top-k by cosine similarity: for each query row, the indices and
 * similarities of its k best gallery rows, best first. exclude_self: skip
 * gallery index equal to the query's index (queries are gallery rows).
 * idx[nq·k], sim[nq·k] are the caller's.
 */
enum isif_rc isif_topk(const float *g, int64_t ng, const float *q, int64_t nq, int D,
	      int k, int exclude_self, int threads, int64_t *idx, float *sim);

/* Recall@K for K in ks[nks] (query excluded from its own gallery) over the
 * set x[n,D] with labels: fraction of rows whose K nearest contain a row of
 * the same label. recall[nks] out. */
enum isif_rc isif_recall_at_k(const float *x, const int32_t *labels, int64_t n, int D,
		     const int *ks, int nks, int threads, double *recall);

/* NMI between labels and a k-means++ clustering of x into k clusters
 * (best of `restarts` runs by inertia, at most iters Lloyd steps each).
 * NMI = 2·I(Y;C)/(H(Y)+H(C)). */
enum isif_rc isif_nmi_kmeans(const float *x, const int32_t *labels, int64_t n, int D,
		    int k, int restarts, int iters, struct isif_rng *rng,
		    int threads, double *nmi);

/* NMI of two labelings a[n], b[n] (values ≥ 0); exposed for tests. */
double isif_nmi(const int32_t *a, const int32_t *b, int64_t n);

#endif

/*
 * core/knn_search.c — exact top-k search by cosine similarity over a
 * gallery, in bounded memory: the engine under isif_topk, isif_knn_eval and
 * isif_recall_at_k (see core/eval_impl.h). Not an approximate index and not
 * the kNN voting (knn.c).
 *
 * Letters: a block of nq queries (≤ qblock), a gallery of ng rows of width D
 * visited in tiles of gn ≤ gblock rows starting at row g0, k results kept
 * per query.
 *
 * For each query block, for each gallery tile:
 *     T[i, j] = q̂_i · g_{g0+j}          one cblas_sgemm, q̂ = q/‖q‖
 *     s_ij    = T[i, j] / ‖g_{g0+j}‖    cosine similarity
 * and each query keeps its k best (s, index) pairs in a binary heap whose
 * root is the worst kept pair, so a tile costs one compare per element
 * except for the few candidates that beat the root. "Better" is: higher
 * similarity, then lower gallery index — a total order, so the result is
 * exact and independent of the block sizes.
 */
#include "eval_impl.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "isif/common.h"

#define MiB (1024 * 1024)
#define QBLOCK_DEFAULT 1024
#define TILE_BYTES (32 * MiB)  /* the [qblock, gblock] similarity tile */
#define HEAP_BYTES (16 * MiB)  /* callers' qblock·k (index, similarity) pairs */
#define QBUF_BYTES (8 * MiB)   /* the normalised query block */

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* Block sizes: the caller's where given, else as large as the byte budgets
 * above allow; never more queries than will be asked at once, never a tile
 * wider than the gallery. */
static void pick_blocks(struct isif_knn_index *ix, int64_t nq_hint,
			const struct isif_knn_blocks *blk)
{
	int64_t qb = QBLOCK_DEFAULT;
	qb = min64(qb, HEAP_BYTES / ((int64_t)ix->k * (int64_t)(sizeof(float) + sizeof(int64_t))));
	qb = min64(qb, QBUF_BYTES / ((int64_t)ix->D * (int64_t)sizeof(float)));
	if (blk && blk->qblock > 0)
		qb = blk->qblock;
	qb = max64(1, min64(qb, max64(nq_hint, 1)));

	int64_t gb = TILE_BYTES / ((int64_t)sizeof(float) * qb);
	if (blk && blk->gblock > 0)
		gb = blk->gblock;
	gb = max64(1, min64(gb, max64(ix->ng, 1)));
	/* sgemm takes int dimensions */
	gb = min64(gb, 1 << 30);
	ix->qblock = qb;
	ix->gblock = gb;
}

int isif_knn_index_init(struct isif_knn_index *ix, const float *g,
			const int32_t *g_labels, int64_t ng, int D, int k,
			int64_t nq_hint, const struct isif_knn_blocks *blk)
{
	memset(ix, 0, sizeof *ix);
	if (ng < 0 || D < 1 || k < 1 || (ng > 0 && !g))
		return ISIF_EINVAL;
	ix->g = g;
	ix->ng = ng;
	ix->D = D;
	ix->k = k;
	pick_blocks(ix, nq_hint, blk);

	ix->ginv = malloc((size_t)max64(ng, 1) * sizeof(float));
	ix->qbuf = malloc((size_t)(ix->qblock * D) * sizeof(float));
	ix->tile = malloc((size_t)(ix->qblock * ix->gblock) * sizeof(float));
	ix->fill = malloc((size_t)ix->qblock * sizeof(int64_t));
	if (!ix->ginv || !ix->qbuf || !ix->tile || !ix->fill) {
		isif_knn_index_free(ix);
		return ISIF_ENOMEM;
	}
	/* 1/‖g_j‖ in double; 0 for a zero row (similarity 0 to everything);
	 * NaN marks a row never to be selected (the scan drops NaN). */
	for (int64_t j = 0; j < ng; j++) {
		const float *row = g + j * D;
		double ss = 0;
		for (int d = 0; d < D; d++)
			ss += (double)row[d] * row[d];
		ix->ginv[j] = ss > 0 ? (float)(1.0 / sqrt(ss)) : 0.0f;
		if (g_labels && g_labels[j] < 0)
			ix->ginv[j] = NAN;
	}
	return ISIF_OK;
}

void isif_knn_index_free(struct isif_knn_index *ix)
{
	free(ix->ginv);
	free(ix->qbuf);
	free(ix->tile);
	free(ix->fill);
	memset(ix, 0, sizeof *ix);
}

/* a is worse than b: lower similarity, or equal similarity and a higher
 * gallery index. */
static inline int worse(float sa, int64_t ia, float sb, int64_t ib)
{
	return sa < sb || (sa == sb && ia > ib);
}

static inline void swap_at(float *hs, int64_t *hi, int64_t a, int64_t b)
{
	float ts = hs[a];
	int64_t ti = hi[a];
	hs[a] = hs[b];
	hi[a] = hi[b];
	hs[b] = ts;
	hi[b] = ti;
}

/* Heap of n pairs, the worst at 0: move pos up / down to its place. */
static void sift_up(float *hs, int64_t *hi, int64_t pos)
{
	while (pos > 0) {
		int64_t parent = (pos - 1) / 2;
		if (!worse(hs[pos], hi[pos], hs[parent], hi[parent]))
			break;
		swap_at(hs, hi, pos, parent);
		pos = parent;
	}
}

static void sift_down(float *hs, int64_t *hi, int64_t n, int64_t pos)
{
	for (;;) {
		int64_t w = pos, l = 2 * pos + 1, r = l + 1;
		if (l < n && worse(hs[l], hi[l], hs[w], hi[w]))
			w = l;
		if (r < n && worse(hs[r], hi[r], hs[w], hi[w]))
			w = r;
		if (w == pos)
			return;
		swap_at(hs, hi, pos, w);
		pos = w;
	}
}

/* Offers one query's similarities to tile columns j = 0..gn-1 (gallery rows
 * g0 + j) to its heap (hs, hi) of *fill ≤ k pairs; skips gallery row self. */
static void scan_tile(const float *row, const float *ginv, int64_t g0,
		      int64_t gn, int64_t self, int k, float *hs, int64_t *hi,
		      int64_t *fill)
{
	int64_t n = *fill, j = 0;

	for (; j < gn && n < k; j++) {       /* heap not full yet */
		float s = row[j] * ginv[j];
		if (isnan(s) || g0 + j == self)
			continue;
		hs[n] = s;
		hi[n] = g0 + j;
		sift_up(hs, hi, n);
		n++;
	}
	for (; j < gn; j++) {                /* full: beat the worst kept */
		float s = row[j] * ginv[j];
		if (!(s >= hs[0]))           /* also drops NaN */
			continue;
		int64_t gj = g0 + j;
		if (gj == self || !worse(hs[0], hi[0], s, gj))
			continue;
		hs[0] = s;
		hi[0] = gj;
		sift_down(hs, hi, n, 0);
	}
	*fill = n;
}

/* Heap sort in place so the n kept pairs run best first; the slots n..k-1
 * that no gallery row filled get (−1, −∞). */
static void finish_heap(float *hs, int64_t *hi, int64_t n, int k)
{
	for (int64_t m = n; m > 1; m--) {
		swap_at(hs, hi, 0, m - 1);   /* the worst goes last */
		sift_down(hs, hi, m - 1, 0);
	}
	for (int64_t j = n; j < k; j++) {
		hs[j] = -INFINITY;
		hi[j] = -1;
	}
}

/* qbuf[i] = q_i/‖q_i‖ (0 for a zero row). */
static void load_queries(struct isif_knn_index *ix, const float *q, int64_t nq)
{
	int D = ix->D;
	for (int64_t i = 0; i < nq; i++) {
		const float *src = q + i * D;
		float *dst = ix->qbuf + i * D;
		double ss = 0;
		for (int d = 0; d < D; d++)
			ss += (double)src[d] * src[d];
		float inv = ss > 0 ? (float)(1.0 / sqrt(ss)) : 0.0f;
		for (int d = 0; d < D; d++)
			dst[d] = src[d] * inv;
	}
}

void isif_knn_index_search(struct isif_knn_index *ix, const float *q,
			   int64_t nq, int64_t self0, int64_t *idx, float *sim)
{
	const int k = ix->k, D = ix->D;
#ifdef _OPENMP
	const int nt = isif_eval_threads();
#endif

	load_queries(ix, q, nq);
	for (int64_t i = 0; i < nq; i++)
		ix->fill[i] = 0;
	for (int64_t g0 = 0; g0 < ix->ng; g0 += ix->gblock) {
		int64_t gn = min64(ix->gblock, ix->ng - g0);
		/* T[nq, gn] = Q̂[nq, D] · G[g0:g0+gn, D]ᵀ */
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nq,
			    (int)gn, D, 1.0f, ix->qbuf, D, ix->g + g0 * D, D,
			    0.0f, ix->tile, (int)gn);
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
		for (int64_t i = 0; i < nq; i++)
			scan_tile(ix->tile + i * gn, ix->ginv + g0, g0, gn,
				  self0 >= 0 ? self0 + i : -1, k, sim + i * k,
				  idx + i * k, &ix->fill[i]);
	}
	for (int64_t i = 0; i < nq; i++)
		finish_heap(sim + i * k, idx + i * k, ix->fill[i], k);
}

/*
 * isif/eval/gallery.h — a gallery held ready for repeated exact top-k
 * searches (the retrieval server's scan): the rows are packed and their
 * inverse norms taken once, at creation, and every later search only
 * computes the query × gallery tiles. The results are exactly those of
 * isif_topk over the same rows (same rows, order, similarities and ties:
 * higher similarity first, then lower row), whatever the batch a query is
 * searched in: each query's similarities never depend on the others.
 * A gallery past the packing budget (32 MiB of panels) is packed chunk by
 * chunk at each search instead. One search at a time per gallery.
 */
#ifndef ISIF_EVAL_GALLERY_H
#define ISIF_EVAL_GALLERY_H

#include <stdint.h>

#include "isif/base/common.h"

struct isif_gallery;

/* Prepares g[ng, D] (borrowed: it must outlive the gallery) for searches of
 * up to k results per query, on `threads` threads (a team of the gallery's
 * own; ≤ 1: the calling thread alone) in batches of at most max_batch
 * queries per pass. ISIF_EINVAL, ISIF_ENOMEM with err on failure. */
enum isif_rc isif_gallery_create(struct isif_gallery **out, const float *g, int64_t ng, int D,
				 int k, int threads, int max_batch, struct isif_error *err);

/* The k (as created) best rows of each of nq queries q[nq, D]: idx[nq·k],
 * sim[nq·k], best first; slots past the gallery get −1 and −∞. Not
 * thread-safe on one gallery. */
void isif_gallery_search(struct isif_gallery *gal, const float *q, int64_t nq, int64_t *idx,
			 float *sim);

/* The k the gallery was created for. */
int isif_gallery_k(const struct isif_gallery *gal);

void isif_gallery_free(struct isif_gallery *gal);

#endif

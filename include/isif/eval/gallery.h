/*
 * isif/eval/gallery.h — a gallery held ready for repeated exact top-k
 * searches (the retrieval server's scan): the rows are packed and their
 * inverse norms taken once, at creation, and every later search only
 * computes the query × gallery tiles. The results are exactly those of
 * isif_topk over the same rows (same rows, order, similarities and ties:
 * higher similarity first, then lower row), whatever the batch a query is
 * searched in: each query's similarities never depend on the others.
 * Where the CPU has AVX512_BF16 (and k ≤ 128) the rows are held once more
 * in bf16, the scan finds candidates in bf16 and ranks them again in fp32:
 * the same answer, bit for bit (core/eval/gallery.c says why). Without the
 * bf16 copy, a gallery past the packing budget (32 MiB of panels) is packed
 * chunk by chunk at each search. One search at a time per gallery.
 */
#ifndef ISIF_EVAL_GALLERY_H
#define ISIF_EVAL_GALLERY_H

#include <stdint.h>

#include "isif/base/common.h"

struct isif_gallery;

/* Which scan finds the rows: AUTO bf16 candidates re-ranked in fp32 where
 * the CPU has AVX512_BF16 and k ≤ 128, else fp32; FP32 the fp32 scan alone;
 * BF16 bf16 candidates wherever k ≤ 128 (emulated without AVX512_BF16:
 * tests). The answer is the same with any of them. */
enum isif_gallery_scan { ISIF_SCAN_AUTO = 0, ISIF_SCAN_FP32 = 1, ISIF_SCAN_BF16 = 2 };

/* What a gallery's searches did: bf16 is 1 when it holds the bf16 copy;
 * fallbacks are the queries its bf16 candidates could not settle. */
struct isif_gallery_stats {
	int bf16;
	long long bf16_queries, fallbacks;
};

/* Prepares g[ng, D] (borrowed: it must outlive the gallery) for searches of
 * up to k results per query, on `threads` threads (a team of the gallery's
 * own; ≤ 1: the calling thread alone) in batches of at most max_batch
 * queries per pass. ISIF_EINVAL, ISIF_ENOMEM with err on failure. */
enum isif_rc isif_gallery_create(struct isif_gallery **out, const float *g, int64_t ng, int D,
				 int k, int threads, int max_batch, struct isif_error *err);

/* isif_gallery_create with the scan chosen (AUTO: the process default). */
enum isif_rc isif_gallery_create_scan(struct isif_gallery **out, const float *g, int64_t ng,
				      int D, int k, int threads, int max_batch,
				      enum isif_gallery_scan scan, struct isif_error *err);

/* The scan an AUTO gallery created after this call uses (isifd's
 * --search-scan); AUTO restores the CPU's choice. */
void isif_gallery_set_default_scan(enum isif_gallery_scan scan);

/* The k (as created) best rows of each of nq queries q[nq, D]: idx[nq·k],
 * sim[nq·k], best first; slots past the gallery get −1 and −∞. Not
 * thread-safe on one gallery. */
void isif_gallery_search(struct isif_gallery *gal, const float *q, int64_t nq, int64_t *idx,
			 float *sim);

/* The k the gallery was created for. */
int isif_gallery_k(const struct isif_gallery *gal);

/* Counters of the gallery's searches so far. */
void isif_gallery_stats(const struct isif_gallery *gal, struct isif_gallery_stats *out);

/* The counters of every gallery of the process so far (bf16: the CPU has
 * the bf16 kernels). Thread-safe. */
void isif_gallery_totals(struct isif_gallery_stats *out);

void isif_gallery_free(struct isif_gallery *gal);

#endif

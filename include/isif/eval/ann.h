/*
 * isif/eval/ann.h — approximate nearest-neighbour indexes (FAISS HNSW-Flat
 * and IVF-Flat, inner product) over L2-normalised float32 rows, behind a C
 * interface. The only C++ of the engine is core/eval/ann_faiss.cpp, which
 * implements this header and catches every C++ exception at its boundary.
 *
 * Threads: the build takes an explicit thread count (FAISS runs OpenMP
 * regions; their size is set on the calling thread only); a search runs on
 * the calling thread alone, so concurrent searches of one index from many
 * threads are safe and never start threads.
 *
 * File: FAISS's own serialisation (faiss::write_index), written under a
 * temporary name, fsynced and renamed (a crash leaves the old file or none).
 */
#ifndef ISIF_ANN_H
#define ISIF_ANN_H

#include <stdint.h>

#include "isif/base/common.h"

#ifdef __cplusplus
extern "C" {
#endif

enum isif_ann_kind { ISIF_ANN_EXACT = 0, ISIF_ANN_HNSW = 1, ISIF_ANN_IVF = 2 };

/* Bounds of the parameters (isif_ann_params_check). */
#define ISIF_ANN_MAX_M 128
#define ISIF_ANN_MAX_EF 4096
#define ISIF_ANN_MAX_NLIST 65536
#define ISIF_ANN_MIN_PER_LIST 39     /* FAISS k-means wants ≥ 39 training rows per list */

struct isif_ann_params {
	enum isif_ann_kind kind;
	int m;                /* HNSW: links per node, 4..128 (default 32) */
	int ef_construction;  /* HNSW: build beam width, 8..4096 (default 64) */
	int ef_search;        /* HNSW: search beam width, 1..4096 (default 32; k is used when larger) */
	int nlist;            /* IVF: inverted lists, 1..65536 and ≤ rows/39 (default 4·√rows) */
	int nprobe;           /* IVF: lists visited per query, 1..nlist (default 16, ≤ nlist) */
};

struct isif_ann;

/* "exact", "hnsw", "ivf" → kind, or -1; and back. */
int isif_ann_kind_parse(const char *name);
const char *isif_ann_kind_name(enum isif_ann_kind kind);

/* Fills p with the defaults of kind for a gallery of n rows. */
void isif_ann_params_default(enum isif_ann_kind kind, int64_t n, struct isif_ann_params *p);

/* ISIF_EINVAL naming the first parameter out of its bounds for n rows. */
enum isif_rc isif_ann_params_check(const struct isif_ann_params *p, int64_t n, struct isif_error *err);

/* Bytes the built index holds for n rows of dim (an estimate within ~20%). */
int64_t isif_ann_memory_bytes(const struct isif_ann_params *p, int64_t n, int dim);

/* Builds an index of p->kind (HNSW or IVF) over x[n, dim] on `threads`
 * threads; stops with ISIF_ECANCELLED between chunks of rows when *cancel
 * (may be NULL) becomes non-zero. Row ids are 0..n-1. */
enum isif_rc isif_ann_build(const struct isif_ann_params *p, const float *x, int64_t n, int dim,
			    int threads, const volatile int *cancel, struct isif_ann **out,
			    struct isif_error *err);

/* Writes the index to path atomically (temporary name, fsync, rename, dir fsync). */
enum isif_rc isif_ann_save(const struct isif_ann *a, const char *path, struct isif_error *err);

/* Reads an index written by isif_ann_save; ISIF_EFORMAT for anything else. */
enum isif_rc isif_ann_load(const char *path, struct isif_ann **out, struct isif_error *err);

void isif_ann_free(struct isif_ann *a);

/* Kind and parameters (as built, or as read back from the file), rows, dim. */
void isif_ann_info(const struct isif_ann *a, struct isif_ann_params *p, int64_t *n, int *dim);

/* Changes the search-time parameters (ef_search, nprobe); not while searches run. */
enum isif_rc isif_ann_set_search(struct isif_ann *a, int ef_search, int nprobe, struct isif_error *err);

/* The k best rows of each query q[nq, dim] by inner product, best first, on
 * the calling thread: idx[nq·k] (-1 where fewer were found) and sim[nq·k]. */
enum isif_rc isif_ann_search(const struct isif_ann *a, const float *q, int64_t nq, int k,
			     int64_t *idx, float *sim, struct isif_error *err);

/* recall@k of the index against exact search (isif_topk over g[n, dim], the
 * rows it was built from) for the queries q[nq, dim]: the mean fraction of
 * each query's exact k best rows that the index also returns. */
enum isif_rc isif_ann_recall(const struct isif_ann *a, const float *g, int64_t n, const float *q,
			     int64_t nq, int k, int threads, double *recall, struct isif_error *err);

#ifdef __cplusplus
}
#endif

#endif

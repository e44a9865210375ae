/*
 * server/ann_index.h — a job's approximate index (isif/eval/ann.h, FAISS
 * HNSW or IVF) beside its embedding index, over the index's train rows.
 *
 * Files, in the index directory jobs/<id>/index-<epoch>-<n>/:
 *   ann.faiss  FAISS's serialisation of the index (row i = train row i)
 *   ann.json   what GET /jobs/{id}/index shows: kind, params, rows, dim,
 *              recall@10 against exact, its queries, build seconds, threads,
 *              bytes, built_at
 * A build removes ann.json, writes ann.faiss, then ann.json (each atomic),
 * so ann.json exists only beside the ann.faiss it describes; an index
 * directory without ann.json is searched exactly. Loading the index
 * (index_load_dir) loads both: a restart serves the ANN without a rebuild.
 * A newer evaluation publishes a new index directory without them.
 *
 * Builds run one at a time in the daemon, on a background thread of their
 * own (never an HTTP thread or a work lane) at nice 10, on --cores threads.
 */
#ifndef ISIFD_ANN_INDEX_H
#define ISIFD_ANN_INDEX_H

#include <jansson.h>
#include <stdint.h>

#include "isif/base/common.h"

struct index_data;
struct ann_state;

/* Train rows from which `"kind": "auto"` builds HNSW rather than serving
 * exact search (measured: docs/PERFORMANCE.md, bench/neighbors_1m.sh). */
#define ANN_AUTO_ROWS 200000

/* Loads dir/ann.json and dir/ann.faiss when both exist and match the index
 * (rows, dim); never fails: a missing or unreadable ANN is exact search
 * (logged). Called by index_load_dir. */
struct ann_state *ann_state_open(const struct index_data *ix);
void ann_state_free(struct ann_state *s);

/* The serve path's hook: searches the split with the index's ANN when it
 * has one for that split (the train split); returns 1 when it answered
 * idx[nq·k], sim[nq·k] (row -1 where fewer were found), 0 when the caller
 * must search exactly. Any number of threads at once. */
int index_ann_search(const struct index_data *ix, int split, const float *Q, int nq, int k,
		     int64_t *idx, float *sim);

/* Cancels a running build and waits for its thread (shutdown). */
void ann_builder_shutdown(void);

#endif

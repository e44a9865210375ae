/*
 * core/data/loader_impl.h — the batch loader behind the training loop: loader
 * threads decode and augment the next batches into a ring of slots while
 * the trainer computes on the current one.
 *
 * Batch b of an epoch holds 2m views, rows [view 1 of images 1..m; view 2
 * of images 1..m]. Every view draws from its own generator, seeded from
 * (job seed, epoch, batch, row), so the bytes of a batch do not depend on
 * which thread made it or when: runs repeat bit for bit at any thread count.
 */
#ifndef ISIF_LOADER_IMPL_H
#define ISIF_LOADER_IMPL_H

#include <pthread.h>
#include <stdint.h>

#include "isif/data/augment.h"
#include "isif/data/dataset.h"

#define LOADER_MAX_THREADS 16

struct loader;

/* Creates a loader over split s (borrowed) producing batches of m images ×
 * 2 views, with nthreads threads (≥ 1) and nthreads + 1 slots. */
enum isif_rc loader_create(struct loader **out, const struct isif_split *s, int m,
		  const struct isif_augment *aug, uint64_t seed, int nthreads);

/* Makes each batch only rows [row0, row0 + rows) of the 2m (a rank's share
 * in a data-parallel run); views keep the seeds of their global row, so the
 * ranks' shares together are the batch one process makes. Before an epoch. */
enum isif_rc loader_set_rows(struct loader *l, int row0, int rows);

/* Bytes loader_create allocates for a split of c×h×w images, m and
 * nthreads (clamped as it clamps them): the slots and each thread's scratch. */
size_t loader_memory(int c, int h, int w, int m, const struct isif_augment *aug, int nthreads);

/* Starts epoch `epoch` over the order idx[n_batches·m] (borrowed until
 * loader_end_epoch) at batch first (0, or where a stopped epoch resumes).
 * Threads start filling at once. */
enum isif_rc loader_begin_epoch(struct loader *l, int epoch, const int32_t *idx, int first,
		       int n_batches);

/* Blocks until batch b (taken in order 0, 1, …) is ready and returns its
 * 2m·C·H·W floats (rows·C·H·W after loader_set_rows); *waited gets the seconds spent blocked. The pointer stays
 * valid until loader_release. */
const float *loader_next(struct loader *l, int b, double *waited);

/* Makes only the first `views` (1 or 2) views of each batch from the next
 * loader_begin_epoch on: with 1, rows m..2m−1 are left as they were (NPID
 * trains on one view per image). Rows 0..m−1 are the same either way.
 * Resets the rows to all of them (call loader_set_rows after it). */
void loader_set_views(struct loader *l, int views);

/* Frees batch b's slot for a later batch. */
void loader_release(struct loader *l, int b);

/* Stops and joins the epoch's threads (also mid-epoch, after a cancel). */
void loader_end_epoch(struct loader *l);

void loader_free(struct loader *l);

/* The seed of one view's generator (exposed so tests can rebuild a view). */
uint64_t loader_view_seed(uint64_t seed, int epoch, int batch, int row);

#endif

/*
 * server/workpool.h — a fixed set of threads for the blocking work the HTTP
 * threads must not do (URL fetches, image decoding and embedding, dataset
 * loads), with a bounded queue: http.c runs a request's remaining work
 * here while its connection is suspended (http_defer). Not a general
 * executor: no futures, no priorities, no resizing.
 *
 * Shutdown comes in two steps: workpool_cancel refuses new work, runs what
 * is still queued at once with cancelled = true (so it answers without
 * waiting for a thread), and raises the flag that long work in progress
 * polls (workpool_cancel_flag); workpool_free then waits for the work in
 * progress and joins the threads. Thread-safe.
 */
#ifndef ISIFD_WORKPOOL_H
#define ISIFD_WORKPOOL_H

#include <stdatomic.h>
#include <stdbool.h>

#include "isif/base/common.h"

struct workpool;

/* One piece of work; cancelled: shutdown began before it started. */
typedef void (*work_fn)(void *arg, bool cancelled);

/* Starts `threads` threads (named "name" in logs) with room for
 * max_queued waiting items. NULL with err on failure. */
struct workpool *workpool_create(const char *name, int threads, int max_queued,
				 struct isif_error *err);

/* Reserves a place for one item: ISIF_OK, ISIF_EBUSY when the threads are
 * busy and max_queued items wait, ISIF_ECANCELLED after workpool_cancel.
 * A reservation must be used by workpool_submit, exactly once. */
enum isif_rc workpool_reserve(struct workpool *p);

/* Queues fn(arg) in a reserved place (never fails; after workpool_cancel
 * it runs at once, in this thread, with cancelled = true). */
void workpool_submit(struct workpool *p, work_fn fn, void *arg);

/* Begins shutdown (see above); returns once the queue is empty. */
void workpool_cancel(struct workpool *p);

/* Raised by workpool_cancel: long work polls it and stops early. */
const atomic_bool *workpool_cancel_flag(const struct workpool *p);

/* Items queued and running now (for logs and tests). */
void workpool_load(struct workpool *p, int *queued, int *running);

/* Cancels if not yet done, waits for running work, joins, frees. NULL: nothing. */
void workpool_free(struct workpool *p);

#endif

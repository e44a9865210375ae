/*
 * server/search.h — the search threads of retrieval: queries that arrive
 * together are searched together. Requests (one or more query vectors for
 * one index split) queue here; the dispatcher takes the oldest, waits at
 * most --search-wait-ms for more (none when the queue already holds a full
 * batch, and 0 by default: the queue fills by itself while a pass runs),
 * gathers every queued request for the same gallery up to --search-batch
 * queries, and answers them all with one pass over that gallery
 * (index_search_batch) on a team of --search-threads threads. Each
 * request's `done` then runs on the dispatcher.
 *
 * The results are exactly those of one exact isif_topk per request: a
 * query's similarities never depend on the other queries of its batch.
 * Thread-safe.
 */
#ifndef ISIFD_SEARCH_H
#define ISIFD_SEARCH_H

#include <stdint.h>

#include "index.h"

struct search_req {
	/* in */
	struct index_data *ix;   /* a reference the caller keeps until done */
	int split;
	int k;                   /* results per query */
	int nq;
	const float *q;          /* [nq, ix->dim] */
	int64_t *idx;            /* [nq·k] out: rows of the split, −1 past its end */
	float *sim;              /* [nq·k] out */
	void (*done)(struct search_req *r, enum isif_rc rc);
	void *arg;
	/* out: what the micro-batch cost this request */
	int batch;               /* queries answered by the same pass */
	double wait_s;           /* from submit to the start of its pass */
	/* private */
	double t_submit;
	struct search_req *next;
};

struct searcher;

/* threads: the pass's team; max_batch: queries per pass; max_wait_s: the
 * most a pass waits for more queries to arrive. NULL with err. */
struct searcher *searcher_create(int threads, int max_batch, double max_wait_s,
				 struct isif_error *err);

/* Queues r; r->done runs later on the dispatcher (at once with
 * ISIF_ECANCELLED once searcher_free began). */
void searcher_submit(struct searcher *s, struct search_req *r);

struct search_stats {
	long long passes, queries;
	double wait_s_sum;       /* Σ over queries of wait_s */
	long long queued;        /* queries waiting now */
	double max_wait_s;
	int threads, max_batch;
};
void searcher_stats(struct searcher *s, struct search_stats *out);

/* Answers what is queued (searched), stops the dispatcher, frees. */
void searcher_free(struct searcher *s);

#endif

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
 * The CPU policy (searcher_set_policy, --search-share): while at least one
 * job runs, the passes may use at most `share` of one core, as a duty
 * cycle over the last second: before a pass the dispatcher rests until
 * Σ CPU of the remembered passes / the time since the oldest began ≤ share
 * (duty.h). Queries queue meanwhile and the next pass serves them together.
 * No cap while no job runs.
 *
 * The results are exactly those of one exact isif_topk per request: a
 * query's similarities never depend on the other queries of its batch.
 * Thread-safe.
 */
#ifndef ISIFD_SEARCH_H
#define ISIFD_SEARCH_H

#include <stdatomic.h>
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

/* While *jobs_running (read atomically, never waited on; NULL: never) is
 * above 0, the passes use at most share of one core (≤ 0: no cap). */
void searcher_set_policy(struct searcher *s, double share, const atomic_int *jobs_running);

struct search_stats {
	long long passes, queries;
	double wait_s_sum;       /* Σ over queries of wait_s (rests included) */
	long long queued;        /* queries waiting now */
	double max_wait_s;
	int threads, max_batch;
	double throttled_s;      /* Σ of the rests the CPU policy imposed */
	long long throttles;     /* passes that waited for one */
	double share;            /* CPU of the passes of the last second / its length, in cores */
	double share_cap;        /* --search-share as a fraction of one core; 0: no cap */
	bool capped;             /* the cap applies now: a job runs */
};
void searcher_stats(struct searcher *s, struct search_stats *out);

/* Answers what is queued (searched; a rest ends at once), stops the
 * dispatcher, frees. */
void searcher_free(struct searcher *s);

#endif

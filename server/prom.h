/*
 * server/prom.h — the daemon's own counters and the GET /metrics page in
 * the Prometheus text exposition format (version 0.0.4): HTTP requests by
 * route, method and status, a request latency histogram by route, epochs
 * and images trained, jobs finished by status. Gauges that live elsewhere
 * (jobs by state, busy workers, open event streams) are passed in at
 * render time. Thread-safe.
 */
#ifndef ISIFD_PROM_H
#define ISIFD_PROM_H

#include <stdint.h>

#include "store.h"

struct prom;

/* routes[n] are the route labels (static strings); index n is "unmatched". */
struct prom *prom_create(const char *const *routes, int n);
void prom_free(struct prom *p);

/* One finished HTTP request: route index (n = unmatched), method, status, seconds. */
void prom_observe_request(struct prom *p, int route, const char *method, int status,
			  double seconds);

void prom_add_epoch(struct prom *p, int64_t images);
void prom_add_job_finished(struct prom *p, enum job_status status);

struct prom_gauges {
	long jobs[JOB_STATUS_COUNT];
	long workers, workers_busy, sse_streams;
	/* the search threads' micro-batches (search.c) */
	long long search_passes, search_queries, search_queued;
	double search_wait_s_sum, search_max_wait_s;
	/* its CPU policy (--search-share) */
	double search_throttled_s, search_share, search_share_cap;
	int search_capped;
};

/* The whole page, malloc'd (NULL on ENOMEM). */
char *prom_render(struct prom *p, const struct prom_gauges *g, size_t *len);

#endif

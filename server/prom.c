/*
 * server/prom.c — counters and histograms behind GET /metrics (prom.h).
 * Request counts are kept per (route, method, status) in a small table
 * with a hard cap; methods outside the usual set count as "OTHER", so a
 * client cannot grow the table without bound.
 */
#include "prom.h"

#include "isif/eval/gallery.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "isif/base/strbuf.h"

static const double buckets[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define N_BUCKETS (int)(sizeof buckets / sizeof buckets[0])
#define MAX_COUNTERS 1024

static const char *const methods[] = {"GET", "POST", "DELETE", "PUT", "PATCH", "HEAD",
				      "OPTIONS", "OTHER"};
#define N_METHODS (int)(sizeof methods / sizeof methods[0])

struct req_counter {
	int route, method, status;
	uint64_t count;
};

struct histogram {
	uint64_t bucket[N_BUCKETS]; /* cumulative counts are computed when rendering */
	uint64_t count;
	double sum;
};

struct prom {
	pthread_mutex_t mu;
	const char *const *routes;
	int n_routes;                   /* plus one "unmatched" */
	struct histogram *latency;      /* n_routes + 1 */
	struct req_counter counters[MAX_COUNTERS];
	int n_counters;
	uint64_t epochs, images;
	uint64_t finished[JOB_STATUS_COUNT];
};

struct prom *prom_create(const char *const *routes, int n)
{
	struct prom *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	p->latency = calloc((size_t)n + 1, sizeof *p->latency);
	if (!p->latency) {
		free(p);
		return NULL;
	}
	pthread_mutex_init(&p->mu, NULL);
	p->routes = routes;
	p->n_routes = n;
	return p;
}

void prom_free(struct prom *p)
{
	if (!p)
		return;
	pthread_mutex_destroy(&p->mu);
	free(p->latency);
	free(p);
}

static int method_index(const char *m)
{
	for (int i = 0; i < N_METHODS - 1; i++)
		if (strcmp(m, methods[i]) == 0)
			return i;
	return N_METHODS - 1;
}

void prom_observe_request(struct prom *p, int route, const char *method, int status,
			  double seconds)
{
	if (route < 0 || route > p->n_routes)
		route = p->n_routes;
	int m = method_index(method);
	pthread_mutex_lock(&p->mu);
	struct histogram *h = &p->latency[route];
	for (int b = 0; b < N_BUCKETS; b++)
		if (seconds <= buckets[b]) {
			h->bucket[b]++;
			break;
		}
	h->count++;
	h->sum += seconds;
	int i;
	for (i = 0; i < p->n_counters; i++)
		if (p->counters[i].route == route && p->counters[i].method == m &&
		    p->counters[i].status == status)
			break;
	if (i == p->n_counters && p->n_counters < MAX_COUNTERS)
		p->counters[p->n_counters++] = (struct req_counter){route, m, status, 0};
	if (i < p->n_counters)
		p->counters[i].count++;
	pthread_mutex_unlock(&p->mu);
}

void prom_add_epoch(struct prom *p, int64_t images)
{
	pthread_mutex_lock(&p->mu);
	p->epochs++;
	p->images += images > 0 ? (uint64_t)images : 0;
	pthread_mutex_unlock(&p->mu);
}

void prom_add_job_finished(struct prom *p, enum job_status status)
{
	pthread_mutex_lock(&p->mu);
	if ((unsigned)status < JOB_STATUS_COUNT)
		p->finished[status]++;
	pthread_mutex_unlock(&p->mu);
}

static const char *route_name(const struct prom *p, int r)
{
	return r < p->n_routes ? p->routes[r] : "unmatched";
}

static void render_http(struct prom *p, struct isif_strbuf *b)
{
	isif_strbuf_printf(b, "# HELP isifd_http_requests_total HTTP requests answered, by route, method and status.\n"
		      "# TYPE isifd_http_requests_total counter\n");
	for (int i = 0; i < p->n_counters; i++) {
		const struct req_counter *c = &p->counters[i];
		isif_strbuf_printf(b, "isifd_http_requests_total{route=\"%s\",method=\"%s\",code=\"%d\"} %llu\n",
			      route_name(p, c->route), methods[c->method], c->status,
			      (unsigned long long)c->count);
	}
	isif_strbuf_printf(b, "# HELP isifd_http_request_duration_seconds Time from request to response completion, by route.\n"
		      "# TYPE isifd_http_request_duration_seconds histogram\n");
	for (int r = 0; r <= p->n_routes; r++) {
		const struct histogram *h = &p->latency[r];
		if (!h->count)
			continue;
		uint64_t cum = 0;
		for (int k = 0; k < N_BUCKETS; k++) {
			cum += h->bucket[k];
			isif_strbuf_printf(b, "isifd_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n",
				      route_name(p, r), buckets[k], (unsigned long long)cum);
		}
		isif_strbuf_printf(b, "isifd_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n"
			      "isifd_http_request_duration_seconds_sum{route=\"%s\"} %.9g\n"
			      "isifd_http_request_duration_seconds_count{route=\"%s\"} %llu\n",
			      route_name(p, r), (unsigned long long)h->count, route_name(p, r),
			      h->sum, route_name(p, r), (unsigned long long)h->count);
	}
}

char *prom_render(struct prom *p, const struct prom_gauges *g, size_t *len)
{
	struct isif_strbuf b;
	isif_strbuf_init(&b, 16 << 20);
	isif_strbuf_printf(&b, "# HELP isifd_jobs Jobs by state.\n# TYPE isifd_jobs gauge\n");
	for (int s = 0; s < JOB_STATUS_COUNT; s++)
		isif_strbuf_printf(&b, "isifd_jobs{state=\"%s\"} %ld\n", job_status_name(s), g->jobs[s]);
	isif_strbuf_printf(&b, "# HELP isifd_workers Worker threads.\n# TYPE isifd_workers gauge\n"
		      "isifd_workers %ld\n"
		      "# HELP isifd_workers_busy Workers running a job.\n# TYPE isifd_workers_busy gauge\n"
		      "isifd_workers_busy %ld\n"
		      "# HELP isifd_sse_streams Open event streams.\n# TYPE isifd_sse_streams gauge\n"
		      "isifd_sse_streams %ld\n",
		      g->workers, g->workers_busy, g->sse_streams);
	isif_strbuf_printf(&b, "# HELP isifd_search_passes_total Passes over a gallery (each answers "
		      "a micro-batch of queries).\n# TYPE isifd_search_passes_total counter\n"
		      "isifd_search_passes_total %lld\n"
		      "# HELP isifd_search_queries_total Queries answered by the search threads.\n"
		      "# TYPE isifd_search_queries_total counter\nisifd_search_queries_total %lld\n"
		      "# HELP isifd_search_wait_seconds_total Sum over queries of the wait before "
		      "their pass began.\n# TYPE isifd_search_wait_seconds_total counter\n"
		      "isifd_search_wait_seconds_total %.6f\n"
		      "# HELP isifd_search_queued Queries waiting for a pass.\n"
		      "# TYPE isifd_search_queued gauge\nisifd_search_queued %lld\n"
		      "# HELP isifd_search_max_wait_seconds The most a pass waits for more queries "
		      "(--search-wait-us).\n# TYPE isifd_search_max_wait_seconds gauge\n"
		      "isifd_search_max_wait_seconds %.6f\n",
		      g->search_passes, g->search_queries, g->search_wait_s_sum, g->search_queued,
		      g->search_max_wait_s);
	isif_strbuf_printf(&b, "# HELP isifd_search_throttled_seconds_total Rests the search CPU "
		      "policy imposed before passes while a job ran (--search-share).\n"
		      "# TYPE isifd_search_throttled_seconds_total counter\n"
		      "isifd_search_throttled_seconds_total %.6f\n"
		      "# HELP isifd_search_cpu_share CPU the search passes used over the last second, "
		      "in cores.\n# TYPE isifd_search_cpu_share gauge\nisifd_search_cpu_share %.4f\n"
		      "# HELP isifd_search_cpu_share_cap The most of one core the passes may use "
		      "while a job runs (--search-share; 0: no cap).\n"
		      "# TYPE isifd_search_cpu_share_cap gauge\nisifd_search_cpu_share_cap %.4f\n"
		      "# HELP isifd_search_capped 1 while the cap applies (a job runs and the cap is "
		      "set).\n# TYPE isifd_search_capped gauge\nisifd_search_capped %d\n",
		      g->search_throttled_s, g->search_share, g->search_share_cap, g->search_capped);
	struct isif_gallery_stats scan;
	isif_gallery_totals(&scan);
	isif_strbuf_printf(&b, "# HELP isifd_search_bf16_queries_total Queries whose candidates "
		      "the bf16 scan found (--search-scan).\n"
		      "# TYPE isifd_search_bf16_queries_total counter\n"
		      "isifd_search_bf16_queries_total %lld\n"
		      "# HELP isifd_search_fp32_fallbacks_total Of those, queries the fp32 scan "
		      "answered (too many rows within the bf16 bound of the k-th).\n"
		      "# TYPE isifd_search_fp32_fallbacks_total counter\n"
		      "isifd_search_fp32_fallbacks_total %lld\n",
		      scan.bf16_queries, scan.fallbacks);
	pthread_mutex_lock(&p->mu);
	isif_strbuf_printf(&b, "# HELP isifd_epochs_trained_total Training epochs completed.\n"
		      "# TYPE isifd_epochs_trained_total counter\nisifd_epochs_trained_total %llu\n"
		      "# HELP isifd_images_trained_total Source images trained on (each gives two views).\n"
		      "# TYPE isifd_images_trained_total counter\nisifd_images_trained_total %llu\n",
		      (unsigned long long)p->epochs, (unsigned long long)p->images);
	isif_strbuf_printf(&b, "# HELP isifd_jobs_finished_total Jobs that ended, by final state.\n"
		      "# TYPE isifd_jobs_finished_total counter\n");
	for (int s = JOB_SUCCEEDED; s < JOB_STATUS_COUNT; s++)
		isif_strbuf_printf(&b, "isifd_jobs_finished_total{state=\"%s\"} %llu\n",
			      job_status_name(s), (unsigned long long)p->finished[s]);
	render_http(p, &b);
	pthread_mutex_unlock(&p->mu);
	return isif_strbuf_take(&b, len);
}

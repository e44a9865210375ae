/*
 * server/search.c — the micro-batching dispatcher of retrieval (see
 * search.h): one thread takes the queue's oldest request, waits up to
 * max_wait for company, detaches every queued request for the same
 * (index, split, k) up to max_batch queries, runs one index_search_batch
 * over their stacked query rows, and calls each request's done.
 */
#include "search.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "isif/base/clock.h"
#include "log.h"

struct searcher {
	pthread_mutex_t mu;
	pthread_cond_t wake;
	struct search_req *head, *tail;
	long long queued;         /* queries in the queue */
	bool stopping;
	int threads, max_batch;
	double max_wait_s;
	long long passes, queries;
	double wait_s_sum;
	pthread_t thread;
};

static bool same_gallery(const struct search_req *a, const struct search_req *b)
{
	return a->ix == b->ix && a->split == b->split && a->k == b->k;
}

/* With mu held: waits until the oldest request has waited max_wait_s or a
 * full batch is queued (or stopping). */
static void wait_for_company(struct searcher *s)
{
	if (s->max_wait_s <= 0)
		return;
	double until = s->head->t_submit + s->max_wait_s;
	while (!s->stopping && s->queued < s->max_batch && isif_now_s() < until) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		double left = until - isif_now_s();
		long long ns = ts.tv_nsec + (long long)(left * 1e9);
		ts.tv_sec += (time_t)(ns / 1000000000);
		ts.tv_nsec = (long)(ns % 1000000000);
		pthread_cond_timedwait(&s->wake, &s->mu, &ts);
	}
}

/* With mu held: detaches the oldest request and every later one for the
 * same gallery while the batch has room (a request is never split). */
static struct search_req *take_batch(struct searcher *s, int *nq)
{
	struct search_req *first = s->head, *batch = NULL, **tail = &batch;
	*nq = 0;
	for (struct search_req **pp = &s->head; *pp;) {
		struct search_req *r = *pp;
		if (r != first && (!same_gallery(r, first) || *nq + r->nq > s->max_batch)) {
			pp = &r->next;
			continue;
		}
		*pp = r->next;
		r->next = NULL;
		*tail = r;
		tail = &r->next;
		*nq += r->nq;
		s->queued -= r->nq;
	}
	s->tail = NULL;
	for (struct search_req *r = s->head; r; r = r->next)
		s->tail = r;
	return batch;
}

/* One pass for a batch of requests over their common gallery. */
static void run_batch(struct searcher *s, struct search_req *batch, int nq)
{
	const struct search_req *f = batch;
	const int dim = f->ix->dim, k = f->k;
	double t0 = isif_now_s();
	struct isif_error err = {0};
	enum isif_rc rc = ISIF_OK;
	float *q = batch->next ? malloc((size_t)nq * dim * sizeof *q) : NULL;
	int64_t *idx = batch->next ? malloc((size_t)nq * k * sizeof *idx) : NULL;
	float *sim = batch->next ? malloc((size_t)nq * k * sizeof *sim) : NULL;
	if (!batch->next) {   /* alone: search straight into its buffers */
		rc = index_search_batch(f->ix, f->split, f->q, f->nq, k, s->threads, s->max_batch,
					f->idx, f->sim, &err);
	} else if (!q || !idx || !sim) {
		rc = ISIF_ENOMEM;
	} else {
		int row = 0;
		for (struct search_req *r = batch; r; r = r->next) {
			memcpy(q + (size_t)row * dim, r->q, (size_t)r->nq * dim * sizeof *q);
			row += r->nq;
		}
		rc = index_search_batch(f->ix, f->split, q, nq, k, s->threads, s->max_batch, idx, sim,
					&err);
		row = 0;
		for (struct search_req *r = batch; !rc && r; r = r->next) {
			memcpy(r->idx, idx + (size_t)row * k, (size_t)r->nq * k * sizeof *idx);
			memcpy(r->sim, sim + (size_t)row * k, (size_t)r->nq * k * sizeof *sim);
			row += r->nq;
		}
	}
	free(q);
	free(idx);
	free(sim);
	if (rc)
		log_error("search: %s", err.msg[0] ? err.msg : isif_strerror(rc));
	double wait_sum = 0;
	for (struct search_req *r = batch; r; r = r->next) {
		r->batch = nq;
		r->wait_s = t0 - r->t_submit;
		wait_sum += r->wait_s * r->nq;
	}
	pthread_mutex_lock(&s->mu);
	s->passes++;
	s->queries += nq;
	s->wait_s_sum += wait_sum;
	pthread_mutex_unlock(&s->mu);
	for (struct search_req *r = batch, *next; r; r = next) {
		next = r->next;     /* done may free r */
		r->done(r, rc);
	}
}

static void *dispatcher_main(void *arg)
{
	struct searcher *s = arg;
	pthread_mutex_lock(&s->mu);
	for (;;) {
		while (!s->head && !s->stopping)
			pthread_cond_wait(&s->wake, &s->mu);
		if (!s->head)
			break;     /* stopping and nothing left */
		wait_for_company(s);
		int nq;
		struct search_req *batch = take_batch(s, &nq);
		pthread_mutex_unlock(&s->mu);
		run_batch(s, batch, nq);
		pthread_mutex_lock(&s->mu);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

struct searcher *searcher_create(int threads, int max_batch, double max_wait_s,
				 struct isif_error *err)
{
	struct searcher *s = calloc(1, sizeof *s);
	if (!s) {
		isif_fail(err, ISIF_ENOMEM, "search: out of memory");
		return NULL;
	}
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->wake, NULL);
	s->threads = threads > 0 ? threads : 1;
	s->max_batch = max_batch > 0 ? max_batch : 1;
	s->max_wait_s = max_wait_s > 0 ? max_wait_s : 0;
	if (pthread_create(&s->thread, NULL, dispatcher_main, s) != 0) {
		isif_fail(err, ISIF_ENOMEM, "search: cannot start its thread");
		pthread_mutex_destroy(&s->mu);
		pthread_cond_destroy(&s->wake);
		free(s);
		return NULL;
	}
	return s;
}

void searcher_submit(struct searcher *s, struct search_req *r)
{
	r->next = NULL;
	r->batch = 0;
	r->wait_s = 0;
	r->t_submit = isif_now_s();
	pthread_mutex_lock(&s->mu);
	if (s->stopping) {
		pthread_mutex_unlock(&s->mu);
		r->done(r, ISIF_ECANCELLED);
		return;
	}
	if (s->tail)
		s->tail->next = r;
	else
		s->head = r;
	s->tail = r;
	s->queued += r->nq;
	pthread_cond_signal(&s->wake);
	pthread_mutex_unlock(&s->mu);
}

void searcher_stats(struct searcher *s, struct search_stats *out)
{
	pthread_mutex_lock(&s->mu);
	*out = (struct search_stats){
		.passes = s->passes, .queries = s->queries, .wait_s_sum = s->wait_s_sum,
		.queued = s->queued, .max_wait_s = s->max_wait_s, .threads = s->threads,
		.max_batch = s->max_batch,
	};
	pthread_mutex_unlock(&s->mu);
}

void searcher_free(struct searcher *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	s->stopping = true;
	pthread_cond_broadcast(&s->wake);
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->thread, NULL);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->wake);
	free(s);
}

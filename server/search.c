/*
 * server/search.c — the micro-batching dispatcher of retrieval (see
 * search.h): one thread takes the queue's oldest request, rests if the
 * CPU policy says so (--search-share while a job runs), waits up to
 * max_wait for company, detaches every queued request for the same
 * (index, split, k) up to max_batch queries, runs one index_search_batch
 * over their stacked query rows, and calls each request's done.
 */
#include "search.h"
#include "serve_nice.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "duty.h"
#include "isif/base/clock.h"
#include "log.h"

/* Passes that started longer ago than this no longer count in the duty
 * cycle: it bounds both one rest and the burst allowed after a quiet time. */
#define SEARCH_DUTY_HORIZON_S 1.0
/* A rest re-checks the running jobs at least this often (a job that ends
 * lifts the cap within it). */
#define SEARCH_RECHECK_S 0.05

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
	/* the CPU policy: while *jobs_running > 0 the passes use at most
	 * share_cap of one core (≤ 0: no cap); the window, the rests and the
	 * counters are the dispatcher's, under mu */
	double share_cap;
	const atomic_int *jobs_running;
	struct duty_window duty;
	double throttled_s;
	long long throttles;
	bool resting;             /* in a rest: submits need not wake the dispatcher */
	pthread_t thread;
};

static bool same_gallery(const struct search_req *a, const struct search_req *b)
{
	return a->ix == b->ix && a->split == b->split && a->k == b->k;
}

/* With mu held: waits on wake until `until` (isif_now_s, the monotonic
 * clock the condition variable uses) or a signal. */
static void wait_until(struct searcher *s, double until)
{
	double left = until - isif_now_s();
	if (left <= 0)
		return;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	long long ns = ts.tv_nsec + (long long)(left * 1e9);
	ts.tv_sec += (time_t)(ns / 1000000000);
	ts.tv_nsec = (long)(ns % 1000000000);
	pthread_cond_timedwait(&s->wake, &s->mu, &ts);
}

/* With mu held: waits until the oldest request has waited max_wait_s or a
 * full batch is queued (or stopping). */
static void wait_for_company(struct searcher *s)
{
	if (s->max_wait_s <= 0)
		return;
	double until = s->head->t_submit + s->max_wait_s;
	while (!s->stopping && s->queued < s->max_batch && isif_now_s() < until)
		wait_until(s, until);
}

static bool capped(const struct searcher *s)
{
	return s->share_cap > 0 && s->jobs_running && atomic_load(s->jobs_running) > 0;
}

/* With mu held, before a pass: while a job runs, rests as long as the duty
 * cycle asks (queries keep queueing, so the pass that follows serves a
 * larger batch, up to max_batch). Stop ends the rest at once: what is
 * queued then is answered at full speed. */
static void throttle(struct searcher *s)
{
	double t0 = isif_now_s(), now = t0;
	s->resting = true;
	for (;;) {
		double rest = capped(s) && !s->stopping ? duty_sleep_s(&s->duty, now, s->share_cap) : 0;
		if (rest <= 0)
			break;
		wait_until(s, now + (rest < SEARCH_RECHECK_S ? rest : SEARCH_RECHECK_S));
		now = isif_now_s();
	}
	s->resting = false;
	if (now > t0) {
		s->throttled_s += now - t0;
		s->throttles++;
	}
}

/* The CPU a pass cost, from the dispatcher's own thread CPU clock times
 * the team size. Thread CPU time rather than wall time because while a job
 * trains the dispatcher is often preempted by it: wall time would count
 * the job's own CPU as the searcher's and rest twice for it. The team
 * splits a pass evenly (core/base/team.c), so the dispatcher's share times
 * the team is the pass's cost. The answers (done, on the dispatcher alone)
 * are counted too, times the team when it is above one: the error leans
 * toward the job. */
static double thread_cpu_s(void)
{
	struct timespec t;
	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t))
		return 0;
	return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
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
	pthread_setname_np(pthread_self(), "isifd-search");   /* top -H, /proc/PID/task/TID/comm */
	serve_nice_apply();   /* and the team it will create */
	pthread_mutex_lock(&s->mu);
	for (;;) {
		while (!s->head && !s->stopping)
			pthread_cond_wait(&s->wake, &s->mu);
		if (!s->head)
			break;     /* stopping and nothing left */
		throttle(s);
		wait_for_company(s);
		int nq;
		struct search_req *batch = take_batch(s, &nq);
		pthread_mutex_unlock(&s->mu);
		double t0 = isif_now_s(), c0 = thread_cpu_s();
		run_batch(s, batch, nq);
		double busy = (thread_cpu_s() - c0) * s->threads;
		pthread_mutex_lock(&s->mu);
		duty_add(&s->duty, t0, busy);
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
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);   /* wait_until's clock */
	pthread_cond_init(&s->wake, &ca);
	pthread_condattr_destroy(&ca);
	duty_init(&s->duty, SEARCH_DUTY_HORIZON_S);
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
	if (!s->resting)   /* a rest wakes by itself: thousands of wake-ups a second would not help */
		pthread_cond_signal(&s->wake);
	pthread_mutex_unlock(&s->mu);
}

void searcher_set_policy(struct searcher *s, double share, const atomic_int *jobs_running)
{
	pthread_mutex_lock(&s->mu);
	s->share_cap = share > 0 ? share : 0;
	s->jobs_running = jobs_running;
	pthread_cond_signal(&s->wake);   /* a rest in progress re-reads the cap */
	pthread_mutex_unlock(&s->mu);
}

void searcher_stats(struct searcher *s, struct search_stats *out)
{
	pthread_mutex_lock(&s->mu);
	*out = (struct search_stats){
		.passes = s->passes, .queries = s->queries, .wait_s_sum = s->wait_s_sum,
		.queued = s->queued, .max_wait_s = s->max_wait_s, .threads = s->threads,
		.max_batch = s->max_batch, .throttled_s = s->throttled_s,
		.throttles = s->throttles, .share = duty_share(&s->duty, isif_now_s()),
		.share_cap = s->share_cap, .capped = capped(s),
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

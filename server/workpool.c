/*
 * server/workpool.c — the blocking-work threads (see workpool.h): a FIFO
 * of items under one mutex, a condition the threads wait on, a count of
 * reserved places so that a caller learns "full" before it has committed
 * to anything (http_defer reserves, suspends the connection, then submits).
 */
#include "workpool.h"
#include "serve_nice.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

struct item {
	struct item *next;
	work_fn fn;
	void *arg;
};

struct workpool {
	pthread_mutex_t mu;
	pthread_cond_t wake;
	struct item *head, *tail;
	int reserved;            /* places taken: queued or about to be submitted */
	int running;
	int max_queued, n_threads;
	bool cancelled, freed;
	atomic_bool cancel_flag; /* cancelled, for lock-free polling */
	char name[32];
	pthread_t threads[];
};

static void *worker_main(void *arg)
{
	serve_nice_apply();
	struct workpool *p = arg;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->head && !p->freed)
			pthread_cond_wait(&p->wake, &p->mu);
		struct item *it = p->head;
		if (!it)
			break;   /* freed and nothing left */
		p->head = it->next;
		if (!p->head)
			p->tail = NULL;
		p->reserved--;
		p->running++;
		bool cancelled = p->cancelled;
		pthread_mutex_unlock(&p->mu);
		it->fn(it->arg, cancelled);
		free(it);
		pthread_mutex_lock(&p->mu);
		p->running--;
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

struct workpool *workpool_create(const char *name, int threads, int max_queued,
				 struct isif_error *err)
{
	if (threads < 1 || max_queued < 0) {
		isif_fail(err, ISIF_EINVAL, "%s: %d threads, %d queued", name, threads, max_queued);
		return NULL;
	}
	struct workpool *p = calloc(1, sizeof *p + (size_t)threads * sizeof(pthread_t));
	if (!p) {
		isif_fail(err, ISIF_ENOMEM, "%s: out of memory", name);
		return NULL;
	}
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->wake, NULL);
	atomic_init(&p->cancel_flag, false);
	p->max_queued = max_queued;
	snprintf(p->name, sizeof p->name, "%s", name);
	for (int i = 0; i < threads; i++) {
		if (pthread_create(&p->threads[i], NULL, worker_main, p) != 0) {
			isif_fail(err, ISIF_ENOMEM, "%s: cannot start thread %d", name, i + 1);
			workpool_free(p);
			return NULL;
		}
		p->n_threads++;
	}
	return p;
}

enum isif_rc workpool_reserve(struct workpool *p)
{
	enum isif_rc rc = ISIF_OK;
	pthread_mutex_lock(&p->mu);
	if (p->cancelled)
		rc = ISIF_ECANCELLED;
	/* Free threads take items at once: only what waits beyond them counts. */
	else if (p->reserved + p->running >= p->n_threads + p->max_queued)
		rc = ISIF_EBUSY;
	else
		p->reserved++;
	pthread_mutex_unlock(&p->mu);
	return rc;
}

void workpool_submit(struct workpool *p, work_fn fn, void *arg)
{
	struct item *it = malloc(sizeof *it);
	pthread_mutex_lock(&p->mu);
	if (!it || p->cancelled) {
		/* Out of memory or shutting down: run it here, as cancelled. */
		p->reserved--;
		pthread_mutex_unlock(&p->mu);
		if (!it)
			log_error("%s: out of memory queueing work; answered as cancelled", p->name);
		free(it);
		fn(arg, true);
		return;
	}
	*it = (struct item){NULL, fn, arg};
	if (p->tail)
		p->tail->next = it;
	else
		p->head = it;
	p->tail = it;
	pthread_cond_signal(&p->wake);
	pthread_mutex_unlock(&p->mu);
}

void workpool_cancel(struct workpool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->cancelled = true;
	atomic_store(&p->cancel_flag, true);
	struct item *it = p->head;
	p->head = p->tail = NULL;
	pthread_mutex_unlock(&p->mu);
	while (it) {
		struct item *next = it->next;
		it->fn(it->arg, true);
		free(it);
		pthread_mutex_lock(&p->mu);
		p->reserved--;
		pthread_mutex_unlock(&p->mu);
		it = next;
	}
}

const atomic_bool *workpool_cancel_flag(const struct workpool *p)
{
	return &p->cancel_flag;
}

void workpool_load(struct workpool *p, int *queued, int *running)
{
	pthread_mutex_lock(&p->mu);
	*queued = p->reserved;
	*running = p->running;
	pthread_mutex_unlock(&p->mu);
}

void workpool_free(struct workpool *p)
{
	if (!p)
		return;
	workpool_cancel(p);
	pthread_mutex_lock(&p->mu);
	p->freed = true;
	pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->mu);
	for (int i = 0; i < p->n_threads; i++)
		pthread_join(p->threads[i], NULL);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->wake);
	free(p);
}

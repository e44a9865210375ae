/*
 * core/data/loader.c — threads that prepare augmented batches ahead of the
 * trainer (see loader_impl.h). Slot b % n_slots holds batch b; a thread
 * claims the next unclaimed batch when its slot is free, fills it without
 * the lock, and publishes it.
 */
#include "data/loader_impl.h"

#include <stdlib.h>
#include <string.h>

#include "isif/base/common.h"
#include "isif/base/clock.h"
#include "isif/base/rng.h"

enum slot_state { SLOT_FREE, SLOT_FILLING, SLOT_READY };

struct slot {
	float *data;
	int batch;
	enum slot_state state;
};

struct loader;

struct worker_arg {
	struct loader *l;
	float *ws;                    /* this thread's augmentation scratch */
};

struct loader {
	const struct isif_split *split;
	struct isif_augment aug;
	uint64_t seed;
	int m, views, nthreads, n_slots; /* views: 2, or 1 (loader_set_views) */
	int row0, rows;               /* the rows of each batch this loader makes */
	size_t view_len;              /* floats per view */
	struct slot *slots;
	struct worker_arg args[LOADER_MAX_THREADS];
	pthread_t threads[LOADER_MAX_THREADS];
	pthread_mutex_t lock;
	pthread_cond_t changed;
	/* epoch state */
	int epoch, n_batches, next_claim, stop, running;
	const int32_t *idx;
};

static uint64_t splitmix64(uint64_t x)
{
	x += 0x9E3779B97F4A7C15ULL;
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
	return x ^ (x >> 31);
}

uint64_t loader_view_seed(uint64_t seed, int epoch, int batch, int row)
{
	uint64_t h = splitmix64(seed);
	h = splitmix64(h ^ (uint64_t)(uint32_t)epoch);
	h = splitmix64(h ^ ((uint64_t)(uint32_t)batch << 20));
	return splitmix64(h ^ (uint64_t)(uint32_t)row);
}

static void fill_batch(struct loader *l, int b, float *out, float *ws)
{
	const struct isif_split *s = l->split;
	size_t img_len = (size_t)s->c * s->h * s->w;
	for (int row = l->row0; row < l->row0 + l->rows; row++) {
		int32_t image = l->idx[(size_t)b * l->m + row % l->m];
		struct isif_rng rng;
		isif_rng_seed(&rng, loader_view_seed(l->seed, l->epoch, b, row), 1);
		isif_augment_apply(out + (size_t)(row - l->row0) * l->view_len, s->pixels + image * img_len,
				   s->c, s->h, s->w, &l->aug, &rng, ws);
	}
}

static void *worker(void *arg)
{
	struct worker_arg *wa = arg;
	struct loader *l = wa->l;
	float *ws = wa->ws;
	pthread_mutex_lock(&l->lock);
	for (;;) {
		while (!l->stop && l->next_claim < l->n_batches &&
		       l->slots[l->next_claim % l->n_slots].state != SLOT_FREE)
			pthread_cond_wait(&l->changed, &l->lock);
		if (l->stop || l->next_claim >= l->n_batches)
			break;
		int b = l->next_claim++;
		struct slot *s = &l->slots[b % l->n_slots];
		s->state = SLOT_FILLING;
		s->batch = b;
		pthread_mutex_unlock(&l->lock);
		fill_batch(l, b, s->data, ws);
		pthread_mutex_lock(&l->lock);
		s->state = SLOT_READY;
		pthread_cond_broadcast(&l->changed);
	}
	pthread_mutex_unlock(&l->lock);
	return NULL;
}

enum isif_rc loader_create(struct loader **out, const struct isif_split *s, int m,
		  const struct isif_augment *aug, uint64_t seed, int nthreads)
{
	*out = NULL;
	if (nthreads < 1)
		nthreads = 1;
	if (nthreads > LOADER_MAX_THREADS)
		nthreads = LOADER_MAX_THREADS;
	struct loader *l = calloc(1, sizeof *l);
	if (!l)
		return ISIF_ENOMEM;
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->changed, NULL);
	l->split = s;
	l->aug = *aug;
	l->seed = seed;
	l->m = m;
	l->views = 2;
	l->row0 = 0;
	l->rows = 2 * m;
	l->nthreads = nthreads;
	l->n_slots = nthreads + 1;
	l->view_len = (size_t)s->c * aug->out_h * aug->out_w;
	l->slots = calloc((size_t)l->n_slots, sizeof *l->slots);
	if (!l->slots)
		goto nomem;
	for (int i = 0; i < l->n_slots; i++) {
		l->slots[i].data = malloc(2 * (size_t)m * l->view_len * sizeof(float));
		if (!l->slots[i].data)
			goto nomem;
	}
	size_t ws = isif_augment_workspace(aug, s->c, s->h, s->w);
	for (int i = 0; i < nthreads; i++) {
		l->args[i].l = l;
		l->args[i].ws = malloc((ws ? ws : 1) * sizeof(float));
		if (!l->args[i].ws)
			goto nomem;
	}
	*out = l;
	return ISIF_OK;
nomem:
	l->nthreads = nthreads;
	loader_free(l);
	return ISIF_ENOMEM;
}

enum isif_rc loader_set_rows(struct loader *l, int row0, int rows)
{
	if (row0 < 0 || rows < 1 || row0 + rows > l->views * l->m)
		return ISIF_EINVAL;
	l->row0 = row0;
	l->rows = rows;
	return ISIF_OK;
}

size_t loader_memory(int c, int h, int w, int m, const struct isif_augment *aug, int nthreads)
{
	nthreads = nthreads < 1 ? 1 : nthreads > LOADER_MAX_THREADS ? LOADER_MAX_THREADS : nthreads;
	size_t view = (size_t)c * aug->out_h * aug->out_w;
	size_t slots = (size_t)(nthreads + 1) * 2 * (size_t)m * view;
	return (slots + (size_t)nthreads * isif_augment_workspace(aug, c, h, w)) * sizeof(float);
}

enum isif_rc loader_begin_epoch(struct loader *l, int epoch, const int32_t *idx, int first,
		       int n_batches)
{
	l->epoch = epoch;
	l->idx = idx;
	l->n_batches = n_batches;
	l->next_claim = first;
	l->stop = 0;
	for (int i = 0; i < l->n_slots; i++)
		l->slots[i].state = SLOT_FREE;
	int started = 0;
	for (int i = 0; i < l->nthreads; i++) {
		if (pthread_create(&l->threads[i], NULL, worker, &l->args[i]) != 0)
			break;
		started++;
	}
	l->running = started;
	if (!started)
		return ISIF_ENOMEM;
	return ISIF_OK;
}

const float *loader_next(struct loader *l, int b, double *waited)
{
	struct slot *s = &l->slots[b % l->n_slots];
	double t0 = isif_now_s();
	pthread_mutex_lock(&l->lock);
	while (!(s->state == SLOT_READY && s->batch == b))
		pthread_cond_wait(&l->changed, &l->lock);
	pthread_mutex_unlock(&l->lock);
	if (waited)
		*waited = isif_now_s() - t0;
	return s->data;
}

void loader_release(struct loader *l, int b)
{
	pthread_mutex_lock(&l->lock);
	l->slots[b % l->n_slots].state = SLOT_FREE;
	pthread_cond_broadcast(&l->changed);
	pthread_mutex_unlock(&l->lock);
}

void loader_end_epoch(struct loader *l)
{
	pthread_mutex_lock(&l->lock);
	l->stop = 1;
	pthread_cond_broadcast(&l->changed);
	pthread_mutex_unlock(&l->lock);
	for (int i = 0; i < l->running; i++)
		pthread_join(l->threads[i], NULL);
	l->running = 0;
}

void loader_free(struct loader *l)
{
	if (!l)
		return;
	if (l->running)
		loader_end_epoch(l);
	if (l->slots) {
		for (int i = 0; i < l->n_slots; i++)
			free(l->slots[i].data);
		free(l->slots);
	}
	for (int i = 0; i < l->nthreads; i++)
		free(l->args[i].ws);
	pthread_mutex_destroy(&l->lock);
	pthread_cond_destroy(&l->changed);
	free(l);
}

void loader_set_views(struct loader *l, int views)
{
	l->views = views == 1 ? 1 : 2;
	l->row0 = 0;
	l->rows = l->views * l->m;
}

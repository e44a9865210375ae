/*
 * core/base/team.c — the layer ops' thread team (see team_impl.h): persistent
 * workers that wait for a job generation, a counter of members still busy,
 * and a reusable barrier; every wait spins briefly on an atomic and then
 * blocks on a condition variable.
 */
#include "base/team_impl.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

/* Spin iterations before blocking: a few microseconds of `pause`. */
#define SPIN 2000

struct member {
	struct team *team;
	int rank;
	pthread_t thread;
};

struct team {
	int n;
	struct member *members;     /* n − 1 workers, ranks 1..n−1 */
	pthread_mutex_t lock;
	pthread_cond_t start, done, bar;
	atomic_ulong gen;           /* job generation, bumped per team_run */
	atomic_int pending;         /* workers still inside the current job */
	atomic_int arrived;         /* barrier arrivals */
	atomic_ulong bar_gen;       /* barrier generation */
	int stop;
	team_fn *fn;
	void *arg;
};

static void relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

/* Spins until *v != old (acquire) or SPIN runs out; returns whether it changed. */
static int spin_ulong(atomic_ulong *v, unsigned long old)
{
	for (int i = 0; i < SPIN; i++) {
		if (atomic_load_explicit(v, memory_order_acquire) != old)
			return 1;
		relax();
	}
	return 0;
}

static void *worker(void *p)
{
	struct member *me = p;
	struct team *t = me->team;
	unsigned long seen = 0;
	for (;;) {
		spin_ulong(&t->gen, seen);
		pthread_mutex_lock(&t->lock);
		while (atomic_load(&t->gen) == seen && !t->stop)
			pthread_cond_wait(&t->start, &t->lock);
		if (t->stop) {
			pthread_mutex_unlock(&t->lock);
			return NULL;
		}
		seen = atomic_load(&t->gen);
		team_fn *fn = t->fn;
		void *arg = t->arg;
		pthread_mutex_unlock(&t->lock);

		fn(arg, me->rank, t->n);

		if (atomic_fetch_sub(&t->pending, 1) == 1) {
			pthread_mutex_lock(&t->lock);
			pthread_cond_signal(&t->done);
			pthread_mutex_unlock(&t->lock);
		}
	}
}

struct team *team_create(int n)
{
	struct team *t = calloc(1, sizeof *t);
	if (!t)
		return NULL;
	t->n = n < 1 ? 1 : n;
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->start, NULL);
	pthread_cond_init(&t->done, NULL);
	pthread_cond_init(&t->bar, NULL);
	if (t->n == 1)
		return t;
	t->members = calloc((size_t)t->n - 1, sizeof *t->members);
	if (!t->members) {
		t->n = 1;
		team_free(t);
		return NULL;
	}
	for (int i = 0; i < t->n - 1; i++) {
		t->members[i].team = t;
		t->members[i].rank = i + 1;
		if (pthread_create(&t->members[i].thread, NULL, worker, &t->members[i]) != 0) {
			t->n = i + 1; /* join the ones that started */
			team_free(t);
			return NULL;
		}
	}
	return t;
}

void team_free(struct team *t)
{
	if (!t)
		return;
	pthread_mutex_lock(&t->lock);
	t->stop = 1;
	pthread_cond_broadcast(&t->start);
	pthread_mutex_unlock(&t->lock);
	for (int i = 0; i < t->n - 1; i++)
		pthread_join(t->members[i].thread, NULL);
	pthread_mutex_destroy(&t->lock);
	pthread_cond_destroy(&t->start);
	pthread_cond_destroy(&t->done);
	pthread_cond_destroy(&t->bar);
	free(t->members);
	free(t);
}

int team_size(const struct team *t)
{
	return t ? t->n : 1;
}

void team_run(struct team *t, team_fn *fn, void *arg)
{
	if (!t || t->n == 1) {
		fn(arg, 0, 1);
		return;
	}
	pthread_mutex_lock(&t->lock);
	t->fn = fn;
	t->arg = arg;
	atomic_store(&t->pending, t->n - 1);
	atomic_fetch_add_explicit(&t->gen, 1, memory_order_release);
	pthread_cond_broadcast(&t->start);
	pthread_mutex_unlock(&t->lock);

	fn(arg, 0, t->n);

	for (int i = 0; i < SPIN && atomic_load_explicit(&t->pending, memory_order_acquire); i++)
		relax();
	if (atomic_load_explicit(&t->pending, memory_order_acquire)) {
		pthread_mutex_lock(&t->lock);
		while (atomic_load(&t->pending))
			pthread_cond_wait(&t->done, &t->lock);
		pthread_mutex_unlock(&t->lock);
	}
}

void team_barrier(struct team *t)
{
	if (!t || t->n == 1)
		return;
	unsigned long g = atomic_load_explicit(&t->bar_gen, memory_order_acquire);
	if (atomic_fetch_add(&t->arrived, 1) == t->n - 1) {
		atomic_store(&t->arrived, 0);
		pthread_mutex_lock(&t->lock);
		atomic_fetch_add_explicit(&t->bar_gen, 1, memory_order_release);
		pthread_cond_broadcast(&t->bar);
		pthread_mutex_unlock(&t->lock);
		return;
	}
	if (spin_ulong(&t->bar_gen, g))
		return;
	pthread_mutex_lock(&t->lock);
	while (atomic_load(&t->bar_gen) == g)
		pthread_cond_wait(&t->bar, &t->lock);
	pthread_mutex_unlock(&t->lock);
}

void team_share(size_t n, size_t align, int rank, int size, size_t *lo, size_t *hi)
{
	if (align < 1)
		align = 1;
	size_t units = (n + align - 1) / align;
	size_t a = units * (size_t)rank / (size_t)size, b = units * (size_t)(rank + 1) / (size_t)size;
	*lo = a * align < n ? a * align : n;
	*hi = b * align < n ? b * align : n;
}

struct for_job {
	size_t n, align;
	team_range_fn *fn;
	void *arg;
};

static void for_member(void *p, int rank, int size)
{
	struct for_job *j = p;
	size_t lo, hi;
	team_share(j->n, j->align, rank, size, &lo, &hi);
	if (lo < hi)
		j->fn(j->arg, lo, hi);
}

void team_for(struct team *t, size_t n, size_t align, size_t min_par,
	      team_range_fn *fn, void *arg)
{
	if (n == 0)
		return;
	if (!t || t->n == 1 || n < min_par) {
		fn(arg, 0, n);
		return;
	}
	struct for_job j = { n, align, fn, arg };
	team_run(t, for_member, &j);
}

/*
 * tests/server/test_search.c — the micro-batching search threads: many
 * clients at once, each request's answer checked bit for bit against the
 * exact search of that request alone (isif_topk, today's path) and
 * against a naive scan (similarity within rounding, every better row
 * present, ties by lower row), on a gallery with many exact ties
 * (duplicated rows) and several k; batches of more than one request must
 * have happened. The CPU policy (--search-share): with a job "running"
 * the searcher rests between passes and answers exactly the same; without
 * one it never rests; searcher_free ends a rest at once and still answers
 * what is queued.
 */
#include "../unit/check.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "index.h"
#include "isif/base/clock.h"
#include "isif/eval/eval.h"
#include "search.h"

#define NG 3000
#define NT 40
#define DIM 24
#define CLIENTS 12
#define ROUNDS 25

struct gal {
	struct index_data m;
	int32_t ids[2][NG], labels[2][NG];
	float emb[2][NG * DIM];
};

/* Rows drawn from 400 distinct small-integer vectors: many exact ties. */
static void gal_init(struct gal *x)
{
	memset(x, 0, sizeof *x);
	x->m.epoch = 1;
	x->m.dim = DIM;
	x->m.c = 1;
	x->m.h = x->m.w = 8;
	for (int k = 0; k < 3; k++) {
		x->m.mean[k] = 0.5f;
		x->m.std[k] = 0.5f;
	}
	snprintf(x->m.model, sizeof x->m.model, "convnet");
	snprintf(x->m.dataset, sizeof x->m.dataset, "toy");
	for (int s = 0; s < 2; s++) {
		int n = s ? NT : NG;
		for (int r = 0; r < n; r++) {
			uint32_t v = (uint32_t)(r * 2654435761u) % 400;
			x->ids[s][r] = r;
			x->labels[s][r] = r % 10;
			for (int j = 0; j < DIM; j++)
				x->emb[s][r * DIM + j] = (float)((v * 7 + (uint32_t)j * 13) % 11) - 5;
		}
		x->m.split[s] = (struct index_split){n, x->ids[s], x->labels[s], x->emb[s], NULL};
	}
}

struct waiter {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done;
	enum isif_rc rc;
};

static void on_done(struct search_req *r, enum isif_rc rc)
{
	struct waiter *w = r->arg;
	pthread_mutex_lock(&w->mu);
	w->rc = rc;
	w->done = 1;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static int is_done(struct waiter *w)
{
	pthread_mutex_lock(&w->mu);
	int d = w->done;
	pthread_mutex_unlock(&w->mu);
	return d;
}

struct client {
	struct searcher *s;
	struct index_data *ix;
	int id, max_batch_seen, failures, queries;
};

static double naive_sim(const float *a, const float *b)
{
	double ab = 0, aa = 0, bb = 0;
	for (int j = 0; j < DIM; j++) {
		ab += (double)a[j] * b[j];
		aa += (double)a[j] * a[j];
		bb += (double)b[j] * b[j];
	}
	return aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : 0;
}

/* Checks one query's answer against a naive scan of the split. */
static int naive_ok(const struct index_split *g, const float *q, const int64_t *idx,
		    const float *sim, int k)
{
	int n = (int)(k < g->n ? k : g->n);
	for (int j = 0; j < n; j++) {
		if (idx[j] < 0 || fabs(naive_sim(q, g->emb + idx[j] * DIM) - sim[j]) > 1e-5)
			return 0;
		if (j > 0 && (sim[j] > sim[j - 1] || (sim[j] == sim[j - 1] && idx[j] < idx[j - 1])))
			return 0;
	}
	/* no row outside the answer is clearly better than its last */
	for (int64_t r = 0; r < g->n; r++) {
		int in = 0;
		for (int j = 0; j < n; j++)
			in |= idx[j] == r;
		if (!in && naive_sim(q, g->emb + r * DIM) > sim[n - 1] + 1e-5)
			return 0;
	}
	return 1;
}

static void *client_main(void *arg)
{
	struct client *c = arg;
	static const int ks[] = {1, 5, 11, 11, 11, 40, 200};
	for (int round = 0; round < ROUNDS; round++) {
		int k = ks[(c->id + round) % 7], nq = 1 + (c->id + round) % 3;
		int split = (c->id + round) % 5 == 0 ? SPLIT_TEST : SPLIT_TRAIN;
		const struct index_split *g = &c->ix->split[split];
		float q[3 * DIM];
		int64_t idx[3 * 200], ref_idx[3 * 200];
		float sim[3 * 200], ref_sim[3 * 200];
		for (int i = 0; i < nq; i++)   /* a stored row, or one off the grid */
			for (int j = 0; j < DIM; j++)
				q[i * DIM + j] = c->ix->split[0].emb[((c->id * 97 + round * 31 + i) % NG) * DIM + j] +
						 (i == 2 ? 0.25f * (float)(j % 3) : 0);
		struct waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
		struct search_req r = {.ix = c->ix, .split = split, .k = k, .nq = nq, .q = q,
				       .idx = idx, .sim = sim, .done = on_done, .arg = &w};
		searcher_submit(c->s, &r);
		pthread_mutex_lock(&w.mu);
		while (!w.done)
			pthread_cond_wait(&w.cv, &w.mu);
		pthread_mutex_unlock(&w.mu);
		int ok = w.rc == ISIF_OK &&
			 isif_topk(g->emb, g->n, q, nq, DIM, k, 0, 1, ref_idx, ref_sim) == ISIF_OK &&
			 memcmp(idx, ref_idx, (size_t)nq * k * sizeof *idx) == 0 &&
			 memcmp(sim, ref_sim, (size_t)nq * k * sizeof *sim) == 0;
		for (int i = 0; ok && i < nq; i++)
			ok = naive_ok(g, q + i * DIM, idx + i * k, sim + i * k, k);
		c->failures += !ok;
		c->queries += nq;
		if (r.batch > c->max_batch_seen)
			c->max_batch_seen = r.batch;
	}
	return NULL;
}

/* Loads the toy gallery into dir/index.bin and back (NULL on failure). */
static struct index_data *load_gal(struct gal *x, const char *name)
{
	char dir[600], path[700];
	struct isif_error err = {0};
	gal_init(x);
	snprintf(dir, sizeof dir, "%s/%s", test_tmpdir(), name);
	mkdir(dir, 0750);
	snprintf(path, sizeof path, "%s/index.bin", dir);
	CHECK_MSG(index_file_write(path, &x->m, &err) == ISIF_OK, "%s", err.msg);
	struct index_data *ix = NULL;
	CHECK_MSG(index_load_dir(dir, &ix, &err) == ISIF_OK, "%s", err.msg);
	return ix;
}

/* CLIENTS clients of ROUNDS requests each; returns their failures. */
static int run_clients(struct searcher *s, struct index_data *ix, int *queries)
{
	struct client cl[CLIENTS];
	pthread_t th[CLIENTS];
	for (int i = 0; i < CLIENTS; i++) {
		cl[i] = (struct client){.s = s, .ix = ix, .id = i};
		pthread_create(&th[i], NULL, client_main, &cl[i]);
	}
	int failures = 0;
	*queries = 0;
	for (int i = 0; i < CLIENTS; i++) {
		pthread_join(th[i], NULL);
		failures += cl[i].failures;
		*queries += cl[i].queries;
	}
	return failures;
}

TEST(srv_search_throttled_while_a_job_runs_answers_the_same)
{
	struct isif_error err = {0};
	static struct gal x;
	struct index_data *ix = load_gal(&x, "search-throttle");
	struct searcher *s = searcher_create(1, 16, 0, &err);
	CHECK_MSG(s != NULL, "%s", err.msg);
	if (!ix || !s)
		return;
	atomic_int running = 0;
	searcher_set_policy(s, 0.05, &running);
	int queries;
	/* no job: the same flood never rests */
	CHECK_EQ(run_clients(s, ix, &queries), 0);
	struct search_stats st;
	searcher_stats(s, &st);
	CHECK(!st.capped);
	CHECK(st.throttled_s == 0 && st.throttles == 0);
	CHECK(fabs(st.share_cap - 0.05) < 1e-12);
	/* a job runs: passes rest, answers stay exact (client_main compares
	 * each with isif_topk alone and a naive scan) */
	atomic_store(&running, 1);
	CHECK_EQ(run_clients(s, ix, &queries), 0);
	searcher_stats(s, &st);
	CHECK(st.capped);
	CHECK_MSG(st.throttled_s > 0 && st.throttles > 0, "throttled %.6f s in %lld rests",
		  st.throttled_s, st.throttles);
	CHECK(st.share >= 0);
	CHECK_EQ(st.queries, 2LL * queries);
	/* the job ends: the cap is lifted */
	atomic_store(&running, 0);
	searcher_stats(s, &st);
	CHECK(!st.capped);
	searcher_free(s);
	index_release(ix);
}

TEST(srv_search_free_ends_a_rest_and_answers_the_queue)
{
	struct isif_error err = {0};
	static struct gal x;
	struct index_data *ix = load_gal(&x, "search-stop");
	struct searcher *s = searcher_create(1, 16, 0, &err);
	CHECK_MSG(s != NULL, "%s", err.msg);
	if (!ix || !s)
		return;
	/* a share so small that the pass after the first rests until the
	 * first leaves the one-second window */
	atomic_int running = 1;
	searcher_set_policy(s, 1e-6, &running);
	float q[DIM];
	int64_t idx[2][5], ref_idx[5];
	float sim[2][5], ref_sim[5];
	memcpy(q, x.emb[0] + 7 * DIM, sizeof q);
	struct waiter w[2] = {{PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0},
			      {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0}};
	struct search_req r[2];
	for (int i = 0; i < 2; i++) {
		r[i] = (struct search_req){.ix = ix, .split = SPLIT_TRAIN, .k = 5, .nq = 1, .q = q,
					   .idx = idx[i], .sim = sim[i], .done = on_done,
					   .arg = &w[i]};
		searcher_submit(s, &r[i]);
		if (i == 0) {   /* the first pass ends before the second is queued */
			pthread_mutex_lock(&w[0].mu);
			while (!w[0].done)
				pthread_cond_wait(&w[0].cv, &w[0].mu);
			pthread_mutex_unlock(&w[0].mu);
		}
	}
	struct timespec nap = {0, 50 * 1000 * 1000};
	nanosleep(&nap, NULL);   /* the dispatcher is resting now */
	CHECK_EQ(is_done(&w[1]), 0);
	double t0 = isif_now_s();
	searcher_free(s);
	double took = isif_now_s() - t0;
	/* not a speed figure: the rest it ended had most of a second left */
	CHECK_MSG(took < 0.6, "searcher_free took %.3f s", took);
	CHECK_EQ(is_done(&w[1]), 1);
	CHECK_EQ(w[1].rc, ISIF_OK);
	CHECK_EQ(isif_topk(x.m.split[0].emb, NG, q, 1, DIM, 5, 0, 1, ref_idx, ref_sim), ISIF_OK);
	CHECK(memcmp(idx[1], ref_idx, sizeof ref_idx) == 0);
	CHECK(memcmp(sim[1], ref_sim, sizeof ref_sim) == 0);
	index_release(ix);
}

TEST(srv_search_batched_is_exact_under_concurrent_clients)
{
	char dir[600], path[700];
	struct isif_error err = {0};
	static struct gal x;
	gal_init(&x);
	snprintf(dir, sizeof dir, "%s/search", test_tmpdir());
	mkdir(dir, 0750);
	snprintf(path, sizeof path, "%s/index.bin", dir);
	CHECK_MSG(index_file_write(path, &x.m, &err) == ISIF_OK, "%s", err.msg);
	struct index_data *ix = NULL;
	CHECK_MSG(index_load_dir(dir, &ix, &err) == ISIF_OK, "%s", err.msg);
	/* a wait of 3 ms makes batches of several clients certain */
	struct searcher *s = searcher_create(2, 16, 0.003, &err);
	CHECK_MSG(s != NULL, "%s", err.msg);
	if (!ix || !s)
		return;
	struct client cl[CLIENTS];
	pthread_t th[CLIENTS];
	for (int i = 0; i < CLIENTS; i++) {
		cl[i] = (struct client){.s = s, .ix = ix, .id = i};
		pthread_create(&th[i], NULL, client_main, &cl[i]);
	}
	int failures = 0, widest = 0, queries = 0;
	for (int i = 0; i < CLIENTS; i++) {
		pthread_join(th[i], NULL);
		failures += cl[i].failures;
		queries += cl[i].queries;
		widest = cl[i].max_batch_seen > widest ? cl[i].max_batch_seen : widest;
	}
	CHECK_EQ(failures, 0);
	CHECK_MSG(widest > 1, "no pass answered more than one query (widest %d)", widest);
	CHECK(widest <= 16);
	struct search_stats st;
	searcher_stats(s, &st);
	CHECK_EQ(st.queries, (long long)queries);
	CHECK(st.passes < st.queries);
	searcher_free(s);
	index_release(ix);
}

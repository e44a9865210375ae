/*
 * tests/server/test_items.c — collections that grow: the merge of a job's
 * added items into the exact top-k. index_search_batch over a gallery
 * with items (many exact ties: gallery rows drawn from few vectors, items
 * copying gallery rows and each other, seqs with gaps, some removed) must
 * equal, bit for bit, isif_topk over the gallery with the live items
 * appended in seq order (ties: dataset rows first, then older items), and
 * a float64 naive scan within rounding; through the search threads too,
 * while another thread adds and removes items of its own. The two-list
 * merge is checked on a hand-made case, and the job_items store (the job
 * checked in the transaction, conflict, replace, the bound, delete, load
 * order, the job's cascade).
 */
#include "../unit/check.h"

#include <math.h>
#include <sqlite3.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "index.h"
#include "items.h"
#include "isif/eval/eval.h"
#include "migrations.h"
#include "search.h"
#include "store.h"
#include "store_items.h"

#define NG 600
#define DIM 16
#define NI 40

static struct {
	struct index_data m;
	int32_t ids[NG], labels[NG], tids[1], tlabels[1];
	float emb[NG * DIM], temb[DIM];
	float items[NI * DIM];
	int64_t seq[NI];
	bool live[NI];
} X;

/* Gallery rows from 37 distinct small-integer vectors (many exact ties);
 * items: every third a copy of a gallery row, every fifth a copy of an
 * earlier item, the rest new; seq with gaps. */
static void fixture(void)
{
	memset(&X, 0, sizeof X);
	X.m.epoch = 1;
	X.m.dim = DIM;
	X.m.c = 1;
	X.m.h = X.m.w = 8;
	for (int k = 0; k < 3; k++) {
		X.m.mean[k] = 0.5f;
		X.m.std[k] = 0.5f;
	}
	snprintf(X.m.model, sizeof X.m.model, "convnet");
	snprintf(X.m.dataset, sizeof X.m.dataset, "toy");
	for (int r = 0; r < NG; r++) {
		uint32_t v = (uint32_t)(r * 2654435761u) % 37;
		X.ids[r] = r;
		X.labels[r] = r % 10;
		for (int j = 0; j < DIM; j++)
			X.emb[r * DIM + j] = (float)((v * 7 + (uint32_t)j * 13) % 11) - 5;
	}
	for (int i = 0; i < NI; i++) {
		const float *src = i % 3 == 0 ? X.emb + (i * 41 % NG) * DIM :
				   i % 5 == 0 && i > 0 ? X.items + (i / 2) * DIM : NULL;
		for (int j = 0; j < DIM; j++)
			X.items[i * DIM + j] = src ? src[j] : (float)((i * 5 + j * 3) % 9) - 4;
		X.seq[i] = 3 + i * 2 + (i > 20 ? 7 : 0);
		X.live[i] = true;
	}
	X.m.split[0] = (struct index_split){NG, X.ids, X.labels, X.emb, NULL};
	X.m.split[1] = (struct index_split){1, X.tids, X.tlabels, X.temb, NULL};
}

static struct index_data *load_fixture(const char *name)
{
	char dir[600], path[700];
	struct isif_error err = {0};
	snprintf(dir, sizeof dir, "%s/%s", test_tmpdir(), name);
	mkdir(dir, 0750);
	snprintf(path, sizeof path, "%s/index.bin", dir);
	CHECK_MSG(index_file_write(path, &X.m, &err) == ISIF_OK, "%s", err.msg);
	struct index_data *ix = NULL;
	CHECK_MSG(index_load_dir(dir, &ix, &err) == ISIF_OK, "%s", err.msg);
	for (int i = 0; ix && i < NI; i++)
		CHECK_EQ(item_set_add(ix->items, X.seq[i], "x", i % 4 ? i % 10 : -1, NULL,
				      X.items + i * DIM), ISIF_OK);
	/* two removed: their rows never come back */
	for (int i = 7; ix && i < NI; i += 13) {
		item_set_remove(ix->items, X.seq[i]);
		X.live[i] = false;
	}
	return ix;
}

/* The reference: isif_topk over the gallery and the live items appended
 * in seq order, rows mapped to the index's numbering (NG + seq). */
static int reference(const float *q, int nq, int k, int64_t *idx, float *sim)
{
	static float all[(NG + NI) * DIM];
	int64_t map[NG + NI];
	int n = NG;
	memcpy(all, X.emb, sizeof X.emb);
	for (int r = 0; r < NG; r++)
		map[r] = r;
	for (int i = 0; i < NI; i++)
		if (X.live[i]) {
			memcpy(all + (size_t)n * DIM, X.items + i * DIM, DIM * sizeof(float));
			map[n++] = NG + X.seq[i];
		}
	int kk = k < n ? k : n;
	int64_t *ri = malloc((size_t)nq * kk * sizeof *ri);
	float *rs = malloc((size_t)nq * kk * sizeof *rs);
	int rc = isif_topk(all, n, q, nq, DIM, kk, 0, 1, ri, rs);
	for (int i = 0; !rc && i < nq; i++)
		for (int j = 0; j < k; j++) {
			idx[i * k + j] = j < kk ? map[ri[i * kk + j]] : -1;
			sim[i * k + j] = j < kk ? rs[i * kk + j] : -INFINITY;
		}
	free(ri);
	free(rs);
	return rc;
}

static const float *row_vec(int64_t row)
{
	if (row < NG)
		return X.emb + row * DIM;
	for (int i = 0; i < NI; i++)
		if (NG + X.seq[i] == row)
			return X.items + i * DIM;
	return NULL;
}

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

/* Within rounding of a naive scan, best first, ties by lower row. */
static int naive_ok(const float *q, const int64_t *idx, const float *sim, int k)
{
	for (int j = 0; j < k; j++) {
		if (idx[j] < 0) {   /* only past the end */
			int rows = NG;
			for (int i = 0; i < NI; i++)
				rows += X.live[i];
			return j == rows;
		}
		const float *v = row_vec(idx[j]);
		if (!v || fabs(naive_sim(q, v) - sim[j]) > 1e-5)
			return 0;
		if (j > 0 && (sim[j] > sim[j - 1] || (sim[j] == sim[j - 1] && idx[j] < idx[j - 1])))
			return 0;
	}
	return 1;
}

TEST(srv_items_merge_equals_topk_over_gallery_and_items)
{
	fixture();
	struct index_data *ix = load_fixture("items_merge");
	if (!ix)
		return;
	static const int ks[] = {1, 3, 16, 17, 129, NG + NI + 5};
	float q[4 * DIM];
	int failures = 0, item_ties = 0;
	for (int t = 0; t < 24; t++) {
		int k = ks[t % 6], nq = 1 + t % 4;
		for (int i = 0; i < nq; i++)   /* a gallery row, an item, or off the grid */
			for (int j = 0; j < DIM; j++)
				q[i * DIM + j] = (i % 3 == 0 ? X.emb[((t * 31 + i) % NG) * DIM + j] :
						  i % 3 == 1 ? X.items[((t + i) % NI) * DIM + j] :
						  (float)((t + j) % 7) - 3.0f + 0.25f * (float)i);
		int64_t *idx = malloc((size_t)nq * k * sizeof *idx), *ri = malloc((size_t)nq * k * sizeof *ri);
		float *sim = malloc((size_t)nq * k * sizeof *sim), *rs = malloc((size_t)nq * k * sizeof *rs);
		struct isif_error err = {0};
		int ok = index_search_batch(ix, SPLIT_TRAIN, q, nq, k, 1, 16, idx, sim, &err) == ISIF_OK &&
			 reference(q, nq, k, ri, rs) == ISIF_OK &&
			 memcmp(idx, ri, (size_t)nq * k * sizeof *idx) == 0 &&
			 memcmp(sim, rs, (size_t)nq * k * sizeof *sim) == 0;
		for (int i = 0; ok && i < nq; i++)
			ok = naive_ok(q + i * DIM, idx + (size_t)i * k, sim + (size_t)i * k, k);
		/* ties between a dataset row and an item did happen, dataset first */
		for (int i = 0; i < nq * k - 1; i++)
			item_ties += idx[i] >= 0 && idx[i] < NG && idx[i + 1] >= NG && sim[i] == sim[i + 1];
		failures += !ok;
		free(idx);
		free(ri);
		free(sim);
		free(rs);
	}
	CHECK_EQ(failures, 0);
	CHECK(item_ties > 0);
	/* the test split holds no items */
	int64_t ti[3];
	float ts[3];
	struct isif_error err = {0};
	CHECK_EQ(index_search_batch(ix, SPLIT_TEST, X.items, 1, 3, 1, 16, ti, ts, &err), ISIF_OK);
	CHECK(ti[0] == 0 && ti[1] == -1 && ti[2] == -1);
	index_release(ix);
}

/* ---- through the search threads, with adds and removes beside ---------------- */

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

struct churn {
	struct index_data *ix;
	atomic_int stop;
	int cycles;
};

/* Adds and removes items of seqs far above the fixture's, whose vectors
 * are zero (similarity 0): the searches may see them or not, and they
 * never displace the fixture's rows above 0. */
static void *churn_main(void *arg)
{
	struct churn *c = arg;
	float zero[DIM] = {0};
	for (int64_t s = 1000; !atomic_load(&c->stop); s++) {
		item_set_add(c->ix->items, s, "churn", 1, "{\"a\":1}", zero);
		if (s % 2)
			item_set_remove(c->ix->items, s - 1);
		c->cycles++;
	}
	return NULL;
}

TEST(srv_items_batched_search_exact_while_items_change)
{
	fixture();
	struct index_data *ix = load_fixture("items_batched");
	struct isif_error err = {0};
	struct searcher *s = searcher_create(2, 16, 0.002, &err);
	CHECK_MSG(s != NULL, "%s", err.msg);
	if (!ix || !s)
		return;
	struct churn ch = {.ix = ix};
	pthread_t th;
	pthread_create(&th, NULL, churn_main, &ch);
	int failures = 0;
	for (int t = 0; t < 40; t++) {
		enum { K = 12 };
		float q[DIM];
		for (int j = 0; j < DIM; j++)
			q[j] = X.items[(t % NI) * DIM + j] + (t % 2 ? 0.5f : 0);
		int64_t idx[K], ri[K];
		float sim[K], rs[K];
		struct waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
		struct search_req r = {.ix = ix, .split = SPLIT_TRAIN, .k = K, .nq = 1, .q = q,
				       .idx = idx, .sim = sim, .done = on_done, .arg = &w};
		searcher_submit(s, &r);
		pthread_mutex_lock(&w.mu);
		while (!w.done)
			pthread_cond_wait(&w.cv, &w.mu);
		pthread_mutex_unlock(&w.mu);
		/* compare the rows above similarity 0, where churn cannot reach */
		int ok = w.rc == ISIF_OK && reference(q, 1, K, ri, rs) == ISIF_OK;
		for (int j = 0; ok && j < K && rs[j] > 0; j++)
			ok = idx[j] == ri[j] && sim[j] == rs[j];
		failures += !ok;
	}
	atomic_store(&ch.stop, 1);
	pthread_join(th, NULL);
	CHECK_EQ(failures, 0);
	CHECK(ch.cycles > 0);
	searcher_free(s);
	index_release(ix);
}

TEST(srv_items_topk_merge_by_hand)
{
	/* a: the dataset's best; b: the items' (rows 100+) */
	const int64_t ai[4] = {2, 7, 9, -1}, bi[4] = {101, 103, 102, -1};
	const float as[4] = {0.9f, 0.5f, 0.5f, -INFINITY}, bs[4] = {0.9f, 0.7f, 0.5f, -INFINITY};
	int64_t oi[4];
	float os[4];
	item_topk_merge(ai, as, bi, bs, 4, oi, os);
	CHECK(oi[0] == 2 && oi[1] == 101 && oi[2] == 103 && oi[3] == 7);
	CHECK(os[0] == 0.9f && os[1] == 0.9f && os[2] == 0.7f && os[3] == 0.5f);
	/* both short: padded with -1 / -inf */
	const int64_t ci[4] = {5, -1, -1, -1}, di[4] = {100, -1, -1, -1};
	const float cs[4] = {0.1f, -INFINITY, -INFINITY, -INFINITY}, ds[4] = {0.2f, -INFINITY, -INFINITY, -INFINITY};
	item_topk_merge(ci, cs, di, ds, 4, oi, os);
	CHECK(oi[0] == 100 && oi[1] == 5 && oi[2] == -1 && oi[3] == -1);
	CHECK(os[1] == 0.1f && isinf(os[3]) && os[3] < 0);
}

/* ---- the job_items table ------------------------------------------------------ */

struct loaded {
	int n;
	int64_t seq[8];
	char id[8][16];
	int32_t label[8];
	float first[8];
};

static enum isif_rc collect(void *arg, int64_t seq, const char *id, int32_t label,
			    const char *meta, const float *emb)
{
	struct loaded *l = arg;
	if (l->n == 8)
		return ISIF_ERANGE;
	l->seq[l->n] = seq;
	snprintf(l->id[l->n], sizeof l->id[0], "%s", id);
	l->label[l->n] = label;
	l->first[l->n++] = emb[0];
	return ISIF_OK;
}

TEST(srv_items_store_conflict_replace_bound_delete)
{
	char path[512];
	struct isif_error err = {0};
	struct store *st = NULL;
	snprintf(path, sizeof path, "%s/items.db", test_tmpdir());
	unlink(path);
	CHECK_EQ(store_open(&st, path, isifd_migrations, isifd_n_migrations, &err), ISIF_OK);
	if (!st)
		return;
	int64_t job = 0;
	CHECK_EQ(store_job_insert(st, "{}", "toy", 1, 0, 100, &job, &err), ISIF_OK);
	const float e1[2] = {1, 2}, e2[2] = {3, 4}, e3[2] = {5, 6};
	struct item_new a[2] = {{"a", 3, "{\"x\":1}", e1}, {"b", -1, NULL, e2}};
	struct item_added out[2];
	/* checked inside the transaction: no such job, a job not succeeded */
	CHECK_EQ(store_items_add(st, job + 1, a, 2, 2, false, 3, out, &err), ISIF_ENOTFOUND);
	CHECK_EQ(store_items_add(st, job, a, 2, 2, false, 3, out, &err), ISIF_EBUSY);
	CHECK(strstr(err.msg, "queued") != NULL);
	sqlite3 *db = NULL;
	CHECK(sqlite3_open(path, &db) == SQLITE_OK &&
	      sqlite3_exec(db, "UPDATE jobs SET status = 'succeeded'", NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(db);
	CHECK_EQ(store_items_add(st, job, a, 2, 2, false, 3, out, &err), ISIF_OK);
	CHECK(out[0].seq < out[1].seq && out[0].replaced == -1 && out[1].replaced == -1);
	/* an id already there: 409, nothing added */
	struct item_new b[2] = {{"c", 1, NULL, e3}, {"a", 1, NULL, e3}};
	CHECK_EQ(store_items_add(st, job, b, 2, 2, false, 3, out, &err), ISIF_ECONFLICT);
	CHECK(strstr(err.msg, "items[1].id") != NULL);
	/* with replace: a's old row goes, the bound counts what stays */
	CHECK_EQ(store_items_add(st, job, b, 2, 2, true, 3, out, &err), ISIF_OK);
	int64_t a_old_seq = 0;
	CHECK(out[1].replaced > 0);
	a_old_seq = out[1].replaced;
	struct item_new d[1] = {{"d", 0, NULL, e1}};
	CHECK_EQ(store_items_add(st, job, d, 1, 2, false, 3, out, &err), ISIF_ERANGE);
	struct loaded l = {0};
	CHECK_EQ(store_items_each(st, job, 2, collect, &l, &err), ISIF_OK);
	CHECK_EQ(l.n, 3);
	CHECK(strcmp(l.id[0], "b") == 0 && strcmp(l.id[1], "c") == 0 && strcmp(l.id[2], "a") == 0);
	CHECK(l.seq[0] < l.seq[1] && l.seq[1] < l.seq[2] && l.seq[2] > a_old_seq);
	CHECK(l.label[0] == -1 && l.label[2] == 1 && l.first[2] == 5.0f);
	int64_t seq = 0;
	CHECK_EQ(store_items_delete(st, job, "c", &seq, &err), ISIF_OK);
	CHECK_EQ(seq, l.seq[1]);
	CHECK_EQ(store_items_delete(st, job, "c", &seq, &err), ISIF_ENOTFOUND);
	/* a row of another width is skipped when loading */
	memset(&l, 0, sizeof l);
	CHECK_EQ(store_items_each(st, job, 3, collect, &l, &err), ISIF_OK);
	CHECK_EQ(l.n, 0);
	/* the job's rows go with it */
	enum job_status js;
	CHECK_EQ(store_job_delete(st, job, &js, &err), ISIF_OK);
	memset(&l, 0, sizeof l);
	CHECK_EQ(store_items_each(st, job, 2, collect, &l, &err), ISIF_OK);
	CHECK_EQ(l.n, 0);
	store_close(st);
}

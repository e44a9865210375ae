/*
 * server/ann_index.c — a job's approximate index: its files and loading,
 * the search hook of /neighbors, the background build, and the routes
 * GET /jobs/{id}/index and POST /jobs/{id}/index (ann_index.h).
 */
#include "ann_index.h"
#include "items.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <ftw.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "index.h"
#include "log.h"
#include "routes.h"
#include "store_retrieval.h"
#include "isif/base/clock.h"
#include "isif/base/fileio.h"
#include "isif/base/rng.h"
#include "isif/eval/ann.h"

#define RECALL_QUERIES 1000
#define RECALL_K 10

struct ann_state {
	pthread_rwlock_t mu;    /* readers: searches; writer: a finished build, exact */
	struct isif_ann *ann;   /* NULL: exact search */
	json_t *meta;           /* ann.json */
};

/* ---- files and loading ------------------------------------------------------ */

static void ann_path(const struct index_data *ix, const char *name, char *out, size_t len)
{
	snprintf(out, len, "%s/%s", ix->dir, name);
}

static struct ann_state *state_new(void)
{
	struct ann_state *s = calloc(1, sizeof *s);
	if (s)
		pthread_rwlock_init(&s->mu, NULL);
	return s;
}

struct ann_state *ann_state_open(const struct index_data *ix)
{
	char jpath[1200], fpath[1200];
	struct ann_state *s = state_new();
	if (!s)
		return NULL;
	ann_path(ix, "ann.json", jpath, sizeof jpath);
	ann_path(ix, "ann.faiss", fpath, sizeof fpath);
	if (access(jpath, F_OK) != 0)
		return s;
	struct isif_error err = {0};
	json_error_t jerr;
	json_t *meta = json_load_file(jpath, JSON_REJECT_DUPLICATES, &jerr);
	struct isif_ann *a = NULL;
	if (!meta) {
		log_warn("%s: unreadable (%s); searching exactly", jpath, jerr.text);
		return s;
	}
	if (isif_ann_load(fpath, &a, &err)) {
		log_warn("%s: %s; searching exactly", fpath, err.msg);
		json_decref(meta);
		return s;
	}
	int64_t n;
	int dim;
	isif_ann_info(a, NULL, &n, &dim);
	if (n != ix->split[SPLIT_TRAIN].n || dim != ix->dim) {
		log_warn("%s: %lld rows of %d dims, the index has %lld of %d; searching exactly", fpath,
			 (long long)n, dim, (long long)ix->split[SPLIT_TRAIN].n, ix->dim);
		isif_ann_free(a);
		json_decref(meta);
		return s;
	}
	s->ann = a;
	s->meta = meta;
	return s;
}

void ann_state_free(struct ann_state *s)
{
	if (!s)
		return;
	isif_ann_free(s->ann);
	json_decref(s->meta);
	pthread_rwlock_destroy(&s->mu);
	free(s);
}

/* Replaces the state's ANN (NULL: exact), freeing the old one once no search holds it. */
static void state_swap(struct ann_state *s, struct isif_ann *a, json_t *meta)
{
	pthread_rwlock_wrlock(&s->mu);
	struct isif_ann *old = s->ann;
	json_t *old_meta = s->meta;
	s->ann = a;
	s->meta = meta;
	pthread_rwlock_unlock(&s->mu);
	isif_ann_free(old);
	json_decref(old_meta);
}

/* ---- the serve path's hook ---------------------------------------------------- */

int index_ann_search(const struct index_data *ix, int split, const float *Q, int nq, int k,
		     int64_t *idx, float *sim)
{
	struct ann_state *s = ix->ann;
	if (!s || split != SPLIT_TRAIN)
		return 0;
	int done = 0;
	pthread_rwlock_rdlock(&s->mu);
	if (s->ann) {
		struct isif_error err = {0};
		done = isif_ann_search(s->ann, Q, nq, k, idx, sim, &err) == ISIF_OK;
		if (!done)
			log_warn("job %lld: approximate search failed (%s); searching exactly",
				 (long long)ix->job, err.msg);
	}
	pthread_rwlock_unlock(&s->mu);
	return done;
}

/* ---- the builder: one build at a time, on its own thread -------------------------- */

static struct {
	pthread_mutex_t mu;
	bool running, joinable;
	pthread_t thread;
	volatile int cancel;
	int64_t job;
	char kind[8], state[16], error[ISIF_ERR_LEN];
	double started, seconds;
} B = {.mu = PTHREAD_MUTEX_INITIALIZER};

struct build {
	struct index_data *ix;      /* a reference, released by the build */
	struct isif_ann_params p;   /* kind ISIF_ANN_EXACT: grow only */
	int threads;
	int64_t grow_rows;          /* > 0: serve a grown gallery (grow_gallery) */
	double grow_sigma;
	struct store *st;
	char state_dir[1024];
};

static double gauss(struct isif_rng *r)
{
	double u = isif_rng_range(r, 1e-12, 1.0), v = isif_rng_uniform(r);
	return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

/* Held-out queries: the first test rows (never in the train gallery), or
 * when there are none, fresh noisy copies (σ 0.02) of train rows. */
static float *recall_queries(const struct index_data *ix, int64_t *nq)
{
	const struct index_split *t = &ix->split[SPLIT_TEST], *g = &ix->split[SPLIT_TRAIN];
	int dim = ix->dim;
	*nq = t->n > 0 ? (t->n < RECALL_QUERIES ? t->n : RECALL_QUERIES) : RECALL_QUERIES;
	float *q = malloc((size_t)*nq * dim * sizeof *q);
	if (!q || t->n > 0) {
		if (q)
			memcpy(q, t->emb, (size_t)*nq * dim * sizeof *q);
		return q;
	}
	struct isif_rng r;
	isif_rng_seed(&r, 7, 3);
	for (int64_t i = 0; i < *nq; i++) {
		const float *src = g->emb + (size_t)isif_rng_below(&r, (uint32_t)g->n) * dim;
		float *o = q + (size_t)i * dim;
		double s = 0;
		for (int j = 0; j < dim; j++) {
			o[j] = src[j] + (float)(0.02 * gauss(&r));
			s += (double)o[j] * o[j];
		}
		for (int j = 0; j < dim; j++)
			o[j] = (float)(o[j] / (s > 0 ? sqrt(s) : 1));
	}
	return q;
}

static json_t *params_json(const struct isif_ann_params *p)
{
	if (p->kind == ISIF_ANN_HNSW)
		return json_pack("{s:i, s:i, s:i}", "m", p->m, "ef_construction", p->ef_construction,
				 "ef_search", p->ef_search);
	return json_pack("{s:i, s:i}", "nlist", p->nlist, "nprobe", p->nprobe);
}

/* Builds, measures, writes ann.faiss and ann.json; meta out on success. */
static enum isif_rc build_files(struct build *b, const struct index_split *g, const char *dir,
				struct isif_ann **out, json_t **meta, struct isif_error *err)
{
	struct index_data *ix = b->ix;
	char jpath[1200], fpath[1200];
	struct isif_ann *a = NULL;
	int64_t nq = 0;
	float *q = NULL;
	double recall = 0, t0 = isif_now_s();
	snprintf(jpath, sizeof jpath, "%s/ann.json", dir);
	snprintf(fpath, sizeof fpath, "%s/ann.faiss", dir);
	enum isif_rc rc = isif_ann_build(&b->p, g->emb, g->n, ix->dim, b->threads, &B.cancel, &a, err);
	double build_s = isif_now_s() - t0;
	if (!rc && !(q = recall_queries(ix, &nq)))
		rc = isif_fail(err, ISIF_ENOMEM, "out of memory");
	if (!rc)
		rc = isif_ann_recall(a, g->emb, g->n, q, nq, g->n < RECALL_K ? (int)g->n : RECALL_K,
				     b->threads, &recall, err);
	free(q);
	if (!rc && unlink(jpath) != 0 && errno != ENOENT)
		rc = isif_fail(err, ISIF_EIO, "%s: %s", jpath, strerror(errno));
	if (!rc)
		rc = isif_ann_save(a, fpath, err);
	struct stat sb;
	if (!rc && stat(fpath, &sb) != 0)
		rc = isif_fail(err, ISIF_EIO, "%s: %s", fpath, strerror(errno));
	if (rc) {
		isif_ann_free(a);
		return rc;
	}
	*meta = json_pack("{s:s, s:o, s:I, s:i, s:f, s:I, s:i, s:f, s:i, s:I, s:I}",
			  "kind", isif_ann_kind_name(b->p.kind), "params", params_json(&b->p),
			  "rows", (json_int_t)g->n, "dim", ix->dim, "recall_at_10", recall,
			  "recall_queries", (json_int_t)nq, "recall_k", g->n < RECALL_K ? (int)g->n : RECALL_K,
			  "build_seconds", build_s, "threads", b->threads,
			  "bytes", (json_int_t)sb.st_size, "built_at", (json_int_t)time(NULL));
	char *text = json_dumps(*meta, JSON_SORT_KEYS);
	struct isif_chunk c = {text, text ? strlen(text) : 0};
	rc = text ? isif_write_atomic(jpath, &c, 1, err) : isif_fail(err, ISIF_ENOMEM, "out of memory");
	free(text);
	if (rc) {
		json_decref(*meta);
		isif_ann_free(a);
		return rc;
	}
	*out = a;
	return ISIF_OK;
}

static int remove_entry(const char *path, const struct stat *sb, int type, struct FTW *f)
{
	return remove(path);
}

/* The grown rows: the train rows, then copies of them in turn with Gaussian
 * noise of sigma per dimension, renormalised. A copy keeps its source row's
 * label; its index (ids are unique in an index) counts on from one past the
 * largest dataset index of the train rows. */
static enum isif_rc grow_rows(const struct build *b, struct index_split *out, struct isif_error *err)
{
	const struct index_split *g = &b->ix->split[SPLIT_TRAIN];
	int dim = b->ix->dim;
	int64_t n = b->grow_rows;
	float *emb = malloc((size_t)n * dim * sizeof *emb);
	int32_t *ids = malloc((size_t)n * sizeof *ids), *labels = malloc((size_t)n * sizeof *labels);
	if (!emb || !ids || !labels) {
		free(emb);
		free(ids);
		free(labels);
		return isif_fail(err, ISIF_ENOMEM, "out of memory for %lld rows", (long long)n);
	}
	struct isif_rng r;
	int64_t base = 0;
	for (int64_t i = 0; i < g->n; i++)
		base = g->ids[i] >= base ? g->ids[i] + 1 : base;
	if (base + n > INT32_MAX) {
		free(emb);
		free(ids);
		free(labels);
		return isif_fail(err, ISIF_ERANGE, "grow: ids would pass 2^31");
	}
	isif_rng_seed(&r, 1, 11);
	for (int64_t i = 0; i < n; i++) {
		int64_t src = i % g->n;
		const float *x = g->emb + (size_t)src * dim;
		float *o = emb + (size_t)i * dim;
		double s2 = 0;
		ids[i] = i < g->n ? g->ids[i] : (int32_t)(base + i - g->n);
		labels[i] = g->labels[src];
		for (int j = 0; j < dim; j++) {
			o[j] = x[j] + (i < g->n ? 0.0f : (float)(b->grow_sigma * gauss(&r)));
			s2 += (double)o[j] * o[j];
		}
		for (int j = 0; i >= g->n && j < dim; j++)
			o[j] = (float)(o[j] / (s2 > 0 ? sqrt(s2) : 1));
	}
	*out = (struct index_split){n, ids, labels, emb, NULL};
	return ISIF_OK;
}

/* Publishes a new index directory for the job whose train split is the grown
 * gallery (test split and model as before), with its ANN when one is asked:
 * built under a temporary name with every file, then renamed and recorded,
 * so the next /neighbors loads it whole; the old directory is removed. */
static enum isif_rc grow_gallery(struct build *b, struct isif_error *err)
{
	struct index_data *ix = b->ix, m = *ix;
	char name[64], dir[1200], tmp[1300], file[1400], src[1200];
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	snprintf(name, sizeof name, "index-%06d-%llx", ix->epoch,
		 (unsigned long long)now.tv_sec * 1000000000ull + (unsigned long long)now.tv_nsec);
	snprintf(dir, sizeof dir, "%s/jobs/%lld/%s", b->state_dir, (long long)ix->job, name);
	snprintf(tmp, sizeof tmp, "%s.tmp", dir);
	enum isif_rc rc = grow_rows(b, &m.split[SPLIT_TRAIN], err);
	if (rc)
		return rc;
	if (mkdir(tmp, 0750) != 0)
		rc = isif_fail(err, ISIF_EIO, "%s: %s", tmp, strerror(errno));
	snprintf(file, sizeof file, "%s/index.bin", tmp);
	if (!rc)
		rc = index_file_write(file, &m, err);
	snprintf(src, sizeof src, "%s/model.safetensors", ix->dir);
	snprintf(file, sizeof file, "%s/model.safetensors", tmp);
	if (!rc && link(src, file) != 0)
		rc = isif_fail(err, ISIF_EIO, "%s: %s", file, strerror(errno));
	struct isif_ann *a = NULL;
	json_t *meta = NULL;
	if (!rc && b->p.kind != ISIF_ANN_EXACT)
		rc = build_files(b, &m.split[SPLIT_TRAIN], tmp, &a, &meta, err);
	isif_ann_free(a);
	json_decref(meta);
	struct index_data *check = NULL;   /* what the next load will see: loads, or is not published */
	if (!rc && !(rc = index_load_dir(tmp, &check, err)))
		index_release(check);
	snprintf(file, sizeof file, "%s/index.bin", tmp);
	struct stat sb;
	if (!rc && (stat(file, &sb) != 0 || rename(tmp, dir) != 0))
		rc = isif_fail(err, ISIF_EIO, "%s: %s", dir, strerror(errno));
	if (!rc) {
		struct index_row row = {.job = ix->job, .epoch = ix->epoch, .n_train = b->grow_rows,
					.n_test = ix->split[SPLIT_TEST].n, .dim = ix->dim, .bytes = sb.st_size};
		snprintf(row.path, sizeof row.path, "jobs/%lld/%s", (long long)ix->job, name);
		rc = store_index_put(b->st, &row, err);
	}
	if (rc) {
		nftw(tmp, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
		nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	} else {
		nftw(ix->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);   /* requests holding it keep its rows */
	}
	free((void *)m.split[SPLIT_TRAIN].emb);
	free((void *)m.split[SPLIT_TRAIN].ids);
	free((void *)m.split[SPLIT_TRAIN].labels);
	return rc;
}

static void *build_main(void *arg)
{
	struct build *b = arg;
	/* below queries and training: threads FAISS starts from here inherit it */
	setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10);
	struct isif_error err = {0};
	struct isif_ann *a = NULL;
	json_t *meta = NULL;
	enum isif_rc rc = b->grow_rows > 0 ? grow_gallery(b, &err)
			  : build_files(b, &b->ix->split[SPLIT_TRAIN], b->ix->dir, &a, &meta, &err);
	if (!rc && b->grow_rows > 0) {
		log_info("job %lld: grown gallery of %lld rows served (%s index)", (long long)b->ix->job,
			 (long long)b->grow_rows, isif_ann_kind_name(b->p.kind));
	} else if (!rc) {
		state_swap(b->ix->ann, a, meta);
		log_info("job %lld: %s index built in %.1f s, recall@10 %.4f", (long long)b->ix->job,
			 isif_ann_kind_name(b->p.kind),
			 json_real_value(json_object_get(meta, "build_seconds")),
			 json_real_value(json_object_get(meta, "recall_at_10")));
	} else {
		log_warn("job %lld: building the %s index failed: %s", (long long)b->ix->job,
			 isif_ann_kind_name(b->p.kind), err.msg);
	}
	pthread_mutex_lock(&B.mu);
	B.running = false;
	B.seconds = isif_now_s() - B.started;
	snprintf(B.state, sizeof B.state, "%s",
		 !rc ? "succeeded" : rc == ISIF_ECANCELLED ? "cancelled" : "failed");
	snprintf(B.error, sizeof B.error, "%s", rc ? err.msg : "");
	pthread_mutex_unlock(&B.mu);
	index_release(b->ix);
	free(b);
	return NULL;
}

/* Starts b on the builder's thread; ISIF_ECONFLICT while another build runs. */
static enum isif_rc build_start(struct build *b, struct isif_error *err)
{
	pthread_mutex_lock(&B.mu);
	if (B.running) {
		int64_t job = B.job;
		pthread_mutex_unlock(&B.mu);
		return isif_fail(err, ISIF_ECONFLICT, "an index build is running (job %lld); one runs "
				 "at a time: retry when GET /jobs/%lld/index says it ended",
				 (long long)job, (long long)job);
	}
	if (B.joinable)
		pthread_join(B.thread, NULL);
	B.joinable = false;
	__atomic_store_n(&B.cancel, 0, __ATOMIC_RELAXED);
	B.job = b->ix->job;
	snprintf(B.kind, sizeof B.kind, "%s", isif_ann_kind_name(b->p.kind));
	snprintf(B.state, sizeof B.state, "building");
	B.error[0] = 0;
	B.started = isif_now_s();
	B.seconds = 0;
	if (pthread_create(&B.thread, NULL, build_main, b) != 0) {
		pthread_mutex_unlock(&B.mu);
		return isif_fail(err, ISIF_ENOMEM, "cannot start the build thread");
	}
	B.running = B.joinable = true;
	pthread_mutex_unlock(&B.mu);
	return ISIF_OK;
}

void ann_builder_shutdown(void)
{
	pthread_mutex_lock(&B.mu);
	__atomic_store_n(&B.cancel, 1, __ATOMIC_RELAXED);   /* read by the build thread */
	bool join = B.joinable;
	B.joinable = false;
	pthread_mutex_unlock(&B.mu);
	if (join)
		pthread_join(B.thread, NULL);
}

/* ---- routes --------------------------------------------------------------------- */

/* The index's description: GET /jobs/{id}/index and the POST answers. */
static json_t *index_json(const struct index_data *ix)
{
	struct ann_state *s = ix->ann;
	json_t *o = json_pack("{s:I, s:i, s:i, s:I, s:I, s:I}", "job", (json_int_t)ix->job,
			      "epoch", ix->epoch, "dim", ix->dim,
			      "train_rows", (json_int_t)ix->split[SPLIT_TRAIN].n,
			      "test_rows", (json_int_t)ix->split[SPLIT_TEST].n,
			      "auto_threshold_rows", (json_int_t)ANN_AUTO_ROWS);
	/* the items added after training, searched exactly beside the train rows */
	json_object_set_new(o, "items", json_integer(ix->items ? item_set_count(ix->items) : 0));
	json_object_set_new(o, "items_bytes", json_integer(ix->items ? item_set_bytes(ix->items) : 0));
	json_t *ann = NULL;
	if (s) {
		pthread_rwlock_rdlock(&s->mu);
		ann = s->ann && s->meta ? json_deep_copy(s->meta) : NULL;
		pthread_rwlock_unlock(&s->mu);
	}
	json_object_set_new(o, "search", json_string(ann ? json_string_value(json_object_get(ann, "kind"))
						      : "exact"));
	json_object_set_new(o, "ann", ann ? ann : json_null());
	pthread_mutex_lock(&B.mu);
	if (B.job == ix->job && B.state[0]) {
		json_t *b = json_pack("{s:s, s:s, s:f}", "state", B.state, "kind", B.kind, "seconds",
				      B.running ? isif_now_s() - B.started : B.seconds);
		if (B.error[0])
			json_object_set_new(b, "error", json_string(B.error));
		json_object_set_new(o, "build", b);
	}
	pthread_mutex_unlock(&B.mu);
	return o;
}

/* The job's index, answering the 404s itself (0: answered). */
static int acquire(struct request *rq, struct index_data **ix)
{
	struct isif_error err = {0};
	switch (index_acquire(rq->app->indexes, rq->id, ix, &err)) {
	case ISIF_OK:
		return 1;
	case ISIF_ENOTFOUND:
		http_error(rq, 404, "not_found", "no job %lld", (long long)rq->id);
		return 0;
	case ISIF_EEMPTY:
		http_error(rq, 404, "no_index", "job %lld has no embedding index yet (one is stored at "
			   "each evaluation)", (long long)rq->id);
		return 0;
	default:
		http_error(rq, 500, "internal", "job %lld: index unreadable: %s", (long long)rq->id, err.msg);
		return 0;
	}
}

static void get_work(struct request *rq, void *arg, bool cancelled)
{
	struct index_data *ix = NULL;
	if (cancelled) {
		http_error(rq, 503, "unavailable", "isifd is shutting down");
		return;
	}
	if (!acquire(rq, &ix))
		return;
	http_json(rq, 200, index_json(ix));
	index_release(ix);
}

enum MHD_Result route_job_index_get(struct request *rq)
{
	return http_defer(rq, HTTP_LANE_WORK, get_work, NULL);
}

/* What a POST asks: the kind and the parameters it gave (0: default). */
struct index_req {
	int kind;               /* enum isif_ann_kind, or -2: auto */
	long m, efc, efs, nlist, nprobe;
	long grow_rows;         /* 0: the job's own rows */
	double grow_sigma;
};

#define GROW_MAX_ROWS 4000000L

/* "grow": {"rows": N, "sigma": S} (sigma defaults to 0.02). */
static int grow_field(json_t *body, struct index_req *r, char *msg, size_t len)
{
	json_t *g = json_object_get(body, "grow");
	r->grow_sigma = 0.02;
	if (!g)
		return 0;
	json_t *rows = json_object_get(g, "rows"), *sigma = json_object_get(g, "sigma");
	if (!json_is_object(g) || json_object_size(g) != 1u + (sigma != NULL) || !json_is_integer(rows) ||
	    json_integer_value(rows) < 1 || json_integer_value(rows) > GROW_MAX_ROWS) {
		snprintf(msg, len, "grow: must be {\"rows\": 1..%ld, \"sigma\": 0..1}", GROW_MAX_ROWS);
		return -1;
	}
	if (sigma && (!json_is_number(sigma) || json_number_value(sigma) < 0 ||
		      json_number_value(sigma) > 1)) {
		snprintf(msg, len, "grow.sigma: must be a number between 0 and 1");
		return -1;
	}
	r->grow_rows = (long)json_integer_value(rows);
	if (sigma)
		r->grow_sigma = json_number_value(sigma);
	return 0;
}

/* One optional integer field within [1, max]. */
static int int_field(json_t *body, const char *name, long max, long *out, char *msg, size_t len)
{
	json_t *v = json_object_get(body, name);
	*out = 0;
	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > max) {
		snprintf(msg, len, "%s: must be an integer between 1 and %ld", name, max);
		return -1;
	}
	*out = (long)json_integer_value(v);
	return 0;
}

static int parse_body(struct request *rq, struct index_req *r, char *msg, size_t len)
{
	static const char *const hnsw_only[] = {"m", "ef_construction", "ef_search"};
	static const char *const ivf_only[] = {"nlist", "nprobe"};
	json_error_t jerr;
	json_t *body = rq->body && rq->body_len ? json_loadb(rq->body, rq->body_len, JSON_REJECT_DUPLICATES,
							     &jerr) : json_object();
	int rc = -1;
	if (!json_is_object(body)) {
		snprintf(msg, len, "body: must be a JSON object like {\"kind\": \"hnsw\"}");
		goto out;
	}
	const char *key;
	json_t *v;
	json_object_foreach(body, key, v) {
		bool known = !strcmp(key, "kind") || !strcmp(key, "grow");
		for (int i = 0; i < 3; i++)
			known |= !strcmp(key, hnsw_only[i]);
		for (int i = 0; i < 2; i++)
			known |= !strcmp(key, ivf_only[i]);
		if (!known) {
			snprintf(msg, len, "%.64s: unknown field (kind, m, ef_construction, ef_search, "
				 "nlist, nprobe, grow)", key);
			goto out;
		}
	}
	json_t *kind = json_object_get(body, "kind");
	const char *ks = kind ? json_string_value(kind) : "auto";
	r->kind = ks && !strcmp(ks, "auto") ? -2 : isif_ann_kind_parse(ks);
	if (r->kind == -1) {
		snprintf(msg, len, "kind: must be exact, hnsw, ivf or auto");
		goto out;
	}
	if (int_field(body, "m", ISIF_ANN_MAX_M, &r->m, msg, len) ||
	    int_field(body, "ef_construction", ISIF_ANN_MAX_EF, &r->efc, msg, len) ||
	    int_field(body, "ef_search", ISIF_ANN_MAX_EF, &r->efs, msg, len) ||
	    int_field(body, "nlist", ISIF_ANN_MAX_NLIST, &r->nlist, msg, len) ||
	    int_field(body, "nprobe", ISIF_ANN_MAX_NLIST, &r->nprobe, msg, len) ||
	    grow_field(body, r, msg, len))
		goto out;
	const char *const *wrong = r->kind == ISIF_ANN_HNSW ? ivf_only : hnsw_only;
	int nwrong = r->kind == ISIF_ANN_HNSW ? 2 : 3;
	for (int i = 0; r->kind != ISIF_ANN_EXACT && r->kind != -2 && i < nwrong; i++)
		if (json_object_get(body, wrong[i])) {
			snprintf(msg, len, "%s: does not apply to kind %s", wrong[i], ks);
			goto out;
		}
	if ((r->kind == ISIF_ANN_EXACT || r->kind == -2) &&
	    json_object_size(body) > (kind ? 1u : 0u) + (r->grow_rows ? 1u : 0u)) {
		snprintf(msg, len, "kind %s takes no parameters", ks);
		goto out;
	}
	rc = 0;
out:
	json_decref(body);
	return rc;
}

/* Makes the index exact: ann.json removed first (then ann.faiss), state cleared. */
static enum isif_rc make_exact(struct index_data *ix, struct isif_error *err)
{
	char jpath[1200], fpath[1200];
	ann_path(ix, "ann.json", jpath, sizeof jpath);
	ann_path(ix, "ann.faiss", fpath, sizeof fpath);
	if ((unlink(jpath) != 0 && errno != ENOENT) || (unlink(fpath) != 0 && errno != ENOENT))
		return isif_fail(err, ISIF_EIO, "%s: %s", ix->dir, strerror(errno));
	if (ix->ann)
		state_swap(ix->ann, NULL, NULL);
	return ISIF_OK;
}

static void post_work(struct request *rq, void *arg, bool cancelled)
{
	struct index_req *r = arg;
	struct index_data *ix = NULL;
	struct isif_error err = {0};
	if (cancelled) {
		http_error(rq, 503, "unavailable", "isifd is shutting down");
		goto out;
	}
	if (!acquire(rq, &ix))
		goto out;
	int64_t n = r->grow_rows ? r->grow_rows : ix->split[SPLIT_TRAIN].n;
	int kind = r->kind == -2 ? (n >= ANN_AUTO_ROWS ? ISIF_ANN_HNSW : ISIF_ANN_EXACT) : r->kind;
	if (r->grow_rows && r->grow_rows < ix->split[SPLIT_TRAIN].n) {
		http_error(rq, 400, "invalid_parameter", "grow.rows: must be at least the index's %lld "
			   "train rows", (long long)ix->split[SPLIT_TRAIN].n);
		goto out;
	}
	if (!ix->ann) {
		http_error(rq, 503, "unavailable", "out of memory");
		goto out;
	}
	pthread_mutex_lock(&B.mu);
	bool busy = B.running;
	pthread_mutex_unlock(&B.mu);
	if (busy) {   /* also for exact: never remove files a build is writing */
		http_error(rq, 409, "conflict", "an index build is running; one runs at a time: "
			   "retry when GET /jobs/{id}/index says it ended");
		goto out;
	}
	if (kind == ISIF_ANN_EXACT && !r->grow_rows) {
		if (make_exact(ix, &err))
			http_fail(rq, ISIF_EIO, &err);
		else
			http_json(rq, 200, index_json(ix));
		goto out;
	}
	struct build *b = calloc(1, sizeof *b);
	if (!b) {
		http_error(rq, 503, "unavailable", "out of memory");
		goto out;
	}
	isif_ann_params_default((enum isif_ann_kind)kind, n, &b->p);
	if (r->m) b->p.m = (int)r->m;
	if (r->efc) b->p.ef_construction = (int)r->efc;
	if (r->efs) b->p.ef_search = (int)r->efs;
	if (r->nlist) {
		b->p.nlist = (int)r->nlist;
		if (!r->nprobe && b->p.nprobe > b->p.nlist)
			b->p.nprobe = b->p.nlist;
	}
	if (r->nprobe) b->p.nprobe = (int)r->nprobe;
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	int64_t phys = (int64_t)sysconf(_SC_PHYS_PAGES) * sysconf(_SC_PAGESIZE);
	b->grow_rows = r->grow_rows;
	b->grow_sigma = r->grow_sigma;
	b->st = rq->app->st;
	snprintf(b->state_dir, sizeof b->state_dir, "%s", rq->app->cfg->state_dir);
	b->threads = rq->app->cfg->cores > 0 ? (int)rq->app->cfg->cores : cores > 0 ? (int)cores : 1;
	/* the build's own reference (this request keeps ix for its answer) */
	if (index_acquire(rq->app->indexes, rq->id, &b->ix, &err) || b->ix != ix) {
		index_release(b->ix);
		free(b);
		http_error(rq, 503, "unavailable", "job %lld's index was replaced while this request "
			   "ran; retry", (long long)rq->id);
		goto out;
	}
	if (kind != ISIF_ANN_EXACT && isif_ann_params_check(&b->p, n, &err)) {
		index_release(b->ix);
		free(b);
		http_error(rq, 400, "invalid_parameter", "%s", err.msg);
		goto out;
	}
	int64_t need = isif_ann_memory_bytes(&b->p, n, ix->dim) + (r->grow_rows ? n * (ix->dim * 4 + 8) : 0);
	if (phys > 0 && need > phys / 2) {
		index_release(b->ix);
		free(b);
		http_error(rq, 400, "over_memory_limit", "the index would need about %lld MiB, more than "
			   "half of this machine's memory", (long long)(need >> 20));
		goto out;
	}
	json_t *requested = json_pack("{s:s, s:o}", "kind", isif_ann_kind_name((enum isif_ann_kind)kind),
				      "params", kind == ISIF_ANN_EXACT ? json_object() : params_json(&b->p));
	if (r->grow_rows)
		json_object_set_new(requested, "grow", json_pack("{s:I, s:f}", "rows", (json_int_t)r->grow_rows,
								 "sigma", r->grow_sigma));
	if (build_start(b, &err)) {   /* from here b belongs to the build thread */
		json_decref(requested);
		index_release(b->ix);
		free(b);
		http_fail(rq, ISIF_ECONFLICT, &err);
		goto out;
	}
	json_t *o = index_json(ix);
	json_object_set_new(o, "requested", requested);
	http_json(rq, 202, o);
out:
	index_release(ix);
	free(r);
}

enum MHD_Result route_job_index_post(struct request *rq)
{
	char msg[256];
	struct index_req *r = calloc(1, sizeof *r);
	if (!r)
		return http_error(rq, 503, "unavailable", "out of memory");
	if (parse_body(rq, r, msg, sizeof msg)) {
		free(r);
		return http_error(rq, 400, "invalid_parameter", "%s", msg);
	}
	return http_defer(rq, HTTP_LANE_WORK, post_work, r);
}

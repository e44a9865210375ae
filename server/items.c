/*
 * server/items.c — a job's added items in memory and their merge into the
 * exact search's top-k (see items.h). The set is small (--max-items per
 * job), so each batch of queries scans it whole after the dataset pass,
 * packed once per change as an isif_gallery (the kernel of that pass:
 * bit-identical similarities for identical vectors, exactly isif_topk's
 * answers), and the two best-first lists merge in one pass.
 */
#include "items.h"

#include "isif/eval/gallery.h"
#include "log.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct item_set {
	pthread_rwlock_t rw;
	int dim;
	int64_t n, cap;
	int64_t *seq;       /* ascending */
	int32_t *label;
	char **id, **meta;
	float *emb;         /* [n, dim] */
	/* the items packed for search (isif_gallery: the answers of isif_topk,
	 * without packing them again at each query), made on first search;
	 * dropped by every add and remove (under the write lock, so no search
	 * holds it); gal_mu: one search at a time on it */
	pthread_mutex_t gal_mu;
	struct isif_gallery *gal;
};

struct item_set *item_set_create(int dim)
{
	struct item_set *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->dim = dim;
	/* writers first: a steady stream of searches must not starve an add
	 * (no thread ever takes the read lock twice) */
	pthread_rwlockattr_t attr;
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&s->rw, &attr);
	pthread_rwlockattr_destroy(&attr);
	pthread_mutex_init(&s->gal_mu, NULL);
	return s;
}

void item_set_free(struct item_set *s)
{
	if (!s)
		return;
	for (int64_t i = 0; i < s->n; i++) {
		free(s->id[i]);
		free(s->meta[i]);
	}
	free(s->seq);
	free(s->label);
	free(s->id);
	free(s->meta);
	free(s->emb);
	isif_gallery_free(s->gal);
	pthread_mutex_destroy(&s->gal_mu);
	pthread_rwlock_destroy(&s->rw);
	free(s);
}

static bool grow(struct item_set *s)
{
	int64_t cap = s->cap ? s->cap * 2 : 16;
	int64_t *seq = realloc(s->seq, (size_t)cap * sizeof *seq);
	if (seq)
		s->seq = seq;
	int32_t *label = realloc(s->label, (size_t)cap * sizeof *label);
	if (label)
		s->label = label;
	char **id = realloc(s->id, (size_t)cap * sizeof *id);
	if (id)
		s->id = id;
	char **meta = realloc(s->meta, (size_t)cap * sizeof *meta);
	if (meta)
		s->meta = meta;
	float *emb = realloc(s->emb, (size_t)cap * s->dim * sizeof *emb);
	if (emb)
		s->emb = emb;
	if (!seq || !label || !id || !meta || !emb)
		return false;
	s->cap = cap;
	return true;
}

enum isif_rc item_set_add(struct item_set *s, int64_t seq, const char *id, int32_t label,
			  const char *meta, const float *emb)
{
	char *idc = strdup(id), *mc = meta ? strdup(meta) : NULL;
	enum isif_rc rc = ISIF_OK;
	pthread_rwlock_wrlock(&s->rw);
	if (s->n && seq <= s->seq[s->n - 1])
		rc = ISIF_EINVAL;
	else if (!idc || (meta && !mc) || (s->n == s->cap && !grow(s)))
		rc = ISIF_ENOMEM;
	if (!rc) {
		isif_gallery_free(s->gal);
		s->gal = NULL;
		int64_t i = s->n++;
		s->seq[i] = seq;
		s->label[i] = label;
		s->id[i] = idc;
		s->meta[i] = mc;
		memcpy(s->emb + i * s->dim, emb, (size_t)s->dim * sizeof *emb);
	}
	pthread_rwlock_unlock(&s->rw);
	if (rc) {
		free(idc);
		free(mc);
	}
	return rc;
}

/* With the lock held: the position of seq, or -1. */
static int64_t find(const struct item_set *s, int64_t seq)
{
	int64_t lo = 0, hi = s->n;
	while (lo < hi) {
		int64_t mid = lo + (hi - lo) / 2;
		if (s->seq[mid] < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < s->n && s->seq[lo] == seq ? lo : -1;
}

void item_set_remove(struct item_set *s, int64_t seq)
{
	pthread_rwlock_wrlock(&s->rw);
	int64_t i = find(s, seq);
	if (i >= 0) {
		isif_gallery_free(s->gal);
		s->gal = NULL;
		free(s->id[i]);
		free(s->meta[i]);
		size_t m = (size_t)(s->n - i - 1);
		memmove(s->seq + i, s->seq + i + 1, m * sizeof *s->seq);
		memmove(s->label + i, s->label + i + 1, m * sizeof *s->label);
		memmove(s->id + i, s->id + i + 1, m * sizeof *s->id);
		memmove(s->meta + i, s->meta + i + 1, m * sizeof *s->meta);
		memmove(s->emb + i * s->dim, s->emb + (i + 1) * s->dim, m * s->dim * sizeof *s->emb);
		s->n--;
	}
	pthread_rwlock_unlock(&s->rw);
}

int64_t item_set_count(struct item_set *s)
{
	pthread_rwlock_rdlock(&s->rw);
	int64_t n = s->n;
	pthread_rwlock_unlock(&s->rw);
	return n;
}

int64_t item_set_bytes(struct item_set *s)
{
	pthread_rwlock_rdlock(&s->rw);
	int64_t b = s->n * ((int64_t)s->dim * (int64_t)sizeof(float) + (int64_t)sizeof *s->seq +
			    (int64_t)sizeof *s->label + 2 * (int64_t)sizeof(char *));
	for (int64_t i = 0; i < s->n; i++)
		b += (int64_t)strlen(s->id[i]) + 1 + (s->meta[i] ? (int64_t)strlen(s->meta[i]) + 1 : 0);
	pthread_rwlock_unlock(&s->rw);
	return b;
}

void item_snapshot_free(struct item_snapshot *x)
{
	for (int64_t i = 0; i < x->n; i++) {
		if (x->id)
			free(x->id[i]);
		if (x->meta)
			free(x->meta[i]);
	}
	free(x->id);
	free(x->meta);
	free(x->label);
	free(x->emb);
	memset(x, 0, sizeof *x);
}

enum isif_rc item_set_snapshot(struct item_set *s, struct item_snapshot *out)
{
	memset(out, 0, sizeof *out);
	pthread_rwlock_rdlock(&s->rw);
	int64_t n = s->n;
	size_t m = n ? (size_t)n : 1;
	out->dim = s->dim;
	out->id = calloc(m, sizeof *out->id);
	out->meta = calloc(m, sizeof *out->meta);
	out->label = malloc(m * sizeof *out->label);
	out->emb = malloc(m * (size_t)s->dim * sizeof *out->emb);
	bool ok = out->id && out->meta && out->label && out->emb;
	out->n = n;   /* id and meta are zeroed: item_snapshot_free may run at any point */
	for (int64_t i = 0; ok && i < n; i++) {
		out->id[i] = strdup(s->id[i]);
		out->meta[i] = s->meta[i] ? strdup(s->meta[i]) : NULL;
		ok = out->id[i] && (!s->meta[i] || out->meta[i]);
	}
	if (ok) {
		memcpy(out->label, s->label, (size_t)n * sizeof *out->label);
		memcpy(out->emb, s->emb, (size_t)n * s->dim * sizeof *out->emb);
	}
	pthread_rwlock_unlock(&s->rw);
	if (!ok) {
		item_snapshot_free(out);
		return ISIF_ENOMEM;
	}
	return ISIF_OK;
}

/* Does (sa, ia) come before (sb, ib) in the exact search's order? */
static bool before(float sa, int64_t ia, float sb, int64_t ib)
{
	if (ia < 0)
		return false;
	if (ib < 0)
		return true;
	return sa > sb || (sa == sb && ia < ib);
}

void item_topk_merge(const int64_t *a_idx, const float *a_sim, const int64_t *b_idx,
		     const float *b_sim, int k, int64_t *out_idx, float *out_sim)
{
	int i = 0, j = 0;
	for (int o = 0; o < k; o++) {
		bool take_a = i < k && (j >= k || before(a_sim[i], a_idx[i], b_sim[j], b_idx[j]) ||
					(b_idx[j] < 0 && a_idx[i] < 0));
		if (take_a) {
			out_idx[o] = a_idx[i];
			out_sim[o] = a_sim[i++];
		} else {
			out_idx[o] = b_idx[j];
			out_sim[o] = b_sim[j++];
		}
		if (out_idx[o] < 0)
			out_sim[o] = -INFINITY;
	}
}

/* With the read lock and gal_mu held: the packed items, searching at
 * least ki results a query (a few sizes, as the dataset's galleries). */
static struct isif_gallery *packed(struct item_set *s, int ki)
{
	static const int sizes[] = {16, 128, 1024, 8192, 32768, 100001};
	if (s->gal && isif_gallery_k(s->gal) >= ki)
		return s->gal;
	int kb = ki;
	for (size_t b = 0; b < sizeof sizes / sizeof sizes[0]; b++)
		if (ki <= sizes[b]) {
			kb = sizes[b];
			break;
		}
	kb = (int64_t)kb < s->n ? kb : (int)s->n;
	isif_gallery_free(s->gal);
	s->gal = NULL;
	struct isif_error err = {0};
	if (isif_gallery_create(&s->gal, s->emb, s->n, s->dim, kb, 1, 64, &err))
		log_warn("items: %s", err.msg);
	return s->gal;
}

void item_set_merge_into(struct item_set *s, int64_t base, const float *q, int nq, int k,
			 int64_t *idx, float *sim)
{
	pthread_rwlock_rdlock(&s->rw);
	if (s->n == 0) {
		pthread_rwlock_unlock(&s->rw);
		return;
	}
	/* the items' own top-k by the very kernel of the dataset's pass
	 * (isif_gallery: isif_topk's answers): the same similarity for the
	 * same vectors, on every CPU */
	int ki = (int64_t)k < s->n ? k : (int)s->n;
	pthread_mutex_lock(&s->gal_mu);
	struct isif_gallery *gal = packed(s, ki);
	int kg = gal ? isif_gallery_k(gal) : 0;
	int64_t *ti = malloc((size_t)nq * (kg ? kg : 1) * sizeof *ti);
	int64_t *bi = malloc((size_t)k * 2 * sizeof *bi);
	float *ts = malloc((size_t)nq * (kg ? kg : 1) * sizeof *ts), *bs = malloc((size_t)k * 2 * sizeof *bs);
	bool ok = gal && ti && bi && ts && bs;
	if (ok)
		isif_gallery_search(gal, q, nq, ti, ts);
	pthread_mutex_unlock(&s->gal_mu);
	for (int i = 0; ok && i < nq; i++) {
		for (int j = 0; j < k; j++) {
			int64_t r = j < ki ? ti[(size_t)i * kg + j] : -1;
			bi[j] = r >= 0 ? base + s->seq[r] : -1;
			bs[j] = r >= 0 ? ts[(size_t)i * kg + j] : -INFINITY;
		}
		item_topk_merge(idx + (size_t)i * k, sim + (size_t)i * k, bi, bs, k, bi + k, bs + k);
		memcpy(idx + (size_t)i * k, bi + k, (size_t)k * sizeof *bi);
		memcpy(sim + (size_t)i * k, bs + k, (size_t)k * sizeof *bs);
	}
	pthread_rwlock_unlock(&s->rw);
	if (!ok)   /* out of memory: the dataset's rows alone */
		log_warn("items: out of memory searching %lld items", (long long)s->n);
	free(ti);
	free(ts);
	free(bi);
	free(bs);
}

json_t *item_set_describe(struct item_set *s, int64_t seq, int32_t *label)
{
	json_t *o = NULL;
	*label = -1;
	pthread_rwlock_rdlock(&s->rw);
	int64_t i = find(s, seq);
	if (i >= 0) {
		o = json_pack("{s:s}", "item", s->id[i]);
		*label = s->label[i];
		if (s->label[i] >= 0)
			json_object_set_new(o, "label", json_integer(s->label[i]));
		json_t *m = s->meta[i] ? json_loads(s->meta[i], 0, NULL) : NULL;
		if (m)
			json_object_set_new(o, "metadata", m);
	}
	pthread_rwlock_unlock(&s->rw);
	return o;
}

int32_t item_set_label(struct item_set *s, int64_t seq)
{
	pthread_rwlock_rdlock(&s->rw);
	int64_t i = find(s, seq);
	int32_t label = i >= 0 ? s->label[i] : -2;
	pthread_rwlock_unlock(&s->rw);
	return label;
}

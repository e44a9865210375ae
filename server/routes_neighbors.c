/*
 * server/routes_neighbors.c — nearest-neighbour retrieval over a job's
 * embedding index: GET /neighbors?image=REF, POST /neighbors with an
 * image body, POST /neighbors/batch with a list of REFs.
 *
 * A query becomes one embedding: a `train:N` / `test:N` ref in the index
 * uses its stored row (and is left out of its own results); a dataset
 * image outside the index, an uploaded image and a fetched URL go through
 * the dataset's evaluation preprocessing and the index's model. All
 * queries of a request are then handed to the search threads (search.c),
 * which search them by exact cosine top-k together with the queries of
 * other requests that arrived at the same time, and answer.
 *
 * Checks run cheapest first: parameters (400), the job and its index
 * (404), then the image (403 refused address, 413 body too large, 422
 * undecodable, over the size limits or a failed fetch).
 */
#include "routes.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "dscache.h"
#include "index.h"
#include "ann_index.h"
#include "multipart.h"
#include "json_text.h"
#include "search.h"
#include "isif/base/clock.h"
#include "isif/data/dataset.h"
#include "isif/data/image.h"
#include "isif/eval/eval.h"
#include "items.h"
#include "store_retrieval.h"
#include "urlfetch.h"

/* The most results one search pass keeps per query (index_search_batch's
 * largest k bucket): a label filter widens its search up to this. */
#define SEARCH_MAX_K 100001

static enum MHD_Result answer_error(struct request *rq, const struct http_err *e)
{
	return http_error(rq, e->status, e->code, "%s", e->msg);
}

/* What a request asks. */
struct qparams {
	long k;
	int split;            /* searched split */
	int64_t job;          /* 0: the default job */
	int64_t label;        /* only rows of this label; -1: any */
	double min_sim;       /* only rows at least this similar; -INFINITY: any */
};

/* An image reference: a dataset image or a URL. */
struct ref {
	const char *text;
	bool is_url;
	int split;
	int64_t index;
};

/* One query of a request. */
struct query {
	json_t *desc;         /* "query" of the answer */
	int self_split;       /* the index row it is, left out of its results */
	int64_t self_row;     /* -1: none */
	float *x;             /* its preprocessed image, waiting for embed_pending; NULL: none */
};

/* ---- parameters ---------------------------------------------------------------- */

/* "train:N", "test:N" or an http(s) URL. */
static int parse_ref(const char *s, struct ref *r, struct http_err *e)
{
	memset(r, 0, sizeof *r);
	r->text = s;
	const char *colon = strchr(s, ':');
	if (colon && strncmp(colon, "://", 3) == 0) {
		struct isif_error why;
		if (urlfetch_url_check(s, &why))
			return http_err_set(e, 400, "invalid_parameter", "image: %s", why.msg);
		r->is_url = true;
		return 0;
	}
	if (colon) {
		char split[8];
		size_t n = (size_t)(colon - s);
		snprintf(split, sizeof split, "%.*s", (int)(n < sizeof split ? n : 0), s);
		r->split = index_split_parse(split);
		const char *d = colon + 1;
		size_t digits = strspn(d, "0123456789");
		if (r->split >= 0 && digits > 0 && digits <= 10 && !d[digits]) {
			r->index = strtoll(d, NULL, 10);
			if (r->index <= INT32_MAX)
				return 0;
		}
	}
	return http_err_set(e, 400, "invalid_parameter",
		            "image: must be train:N, test:N or an http(s) URL (got \"%.100s\")", s);
}

static int parse_split(const char *s, int *split, struct http_err *e)
{
	*split = s ? index_split_parse(s) : SPLIT_TRAIN;
	return *split < 0 ? http_err_set(e, 400, "invalid_parameter", "split: must be train or test") : 0;
}

/* label (an integer ≥ 0) and min_similarity (a number in [-1, 1]) as text,
 * NULL when absent. */
static int filter_params(const char *label, const char *min_sim, struct qparams *p, struct http_err *e)
{
	char *end;
	p->label = -1;
	p->min_sim = -INFINITY;
	if (label) {
		long long v = strtoll(label, &end, 10);
		if (!*label || *end || v < 0 || v > INT32_MAX)
			return http_err_set(e, 400, "invalid_parameter", "label: must be an integer >= 0");
		p->label = v;
	}
	if (min_sim) {
		double v = strtod(min_sim, &end);
		if (!*min_sim || *end || !(v >= -1 && v <= 1))
			return http_err_set(e, 400, "invalid_parameter", "min_similarity: must be a number "
				            "between -1 and 1");
		p->min_sim = v;
	}
	return 0;
}

/* k, split and job from the query string. */
static int query_params(struct request *rq, struct qparams *p, struct http_err *e)
{
	const struct config *cfg = rq->app->cfg;
	const char *k = http_query(rq, "k"), *job = http_query(rq, "job");
	char *end;
	p->k = 10;
	p->job = 0;
	if (filter_params(http_query(rq, "label"), http_query(rq, "min_similarity"), p, e))
		return -1;
	if (k) {
		long long v = strtoll(k, &end, 10);
		if (!*k || *end || v < 1 || v > cfg->max_k)
			return http_err_set(e, 400, "invalid_parameter", "k: must be an integer between 1 and %ld",
				            cfg->max_k);
		p->k = (long)v;
	}
	if (job) {
		long long v = strtoll(job, &end, 10);
		if (!*job || *end || v < 1 || v > (INT64_C(1) << 53))
			return http_err_set(e, 400, "invalid_parameter", "job: must be a job id");
		p->job = v;
	}
	return parse_split(http_query(rq, "split"), &p->split, e);
}

/* ---- the job's index ------------------------------------------------------------- */

static int resolve_index(struct request *rq, const struct qparams *p, struct index_data **ix,
			 struct http_err *e)
{
	struct isif_error err = {0};
	int64_t job = p->job;
	if (!job) {
		enum isif_rc rc = store_index_default_job(rq->app->st, &job, &err);
		if (rc == ISIF_EEMPTY)
			return http_err_set(e, 404, "no_index", "no succeeded or running job has an embedding "
				            "index yet; train one with evaluation, or pass job=ID");
		if (rc)
			return http_err_set(e, 500, "internal", "database error: %s", err.msg);
	}
	switch (index_acquire(rq->app->indexes, job, ix, &err)) {
	case ISIF_OK:
		return 0;
	case ISIF_ENOTFOUND:
		return http_err_set(e, 404, "not_found", "no job %lld", (long long)job);
	case ISIF_EEMPTY:
		return http_err_set(e, 404, "no_index", "job %lld has no embedding index yet (one is stored "
			            "at each evaluation)", (long long)job);
	default:
		return http_err_set(e, 500, "internal", "job %lld: index unreadable: %s", (long long)job, err.msg);
	}
}

/* ---- queries ---------------------------------------------------------------------- */

/* "class": the label's name beside "label", when the index has names. */
static void set_class(json_t *o, const struct index_data *ix, int label)
{
	const char *name = index_class_name(ix, label);
	if (name)
		json_object_set_new(o, "class", json_string(name));
}

/* Preprocesses one uint8 CHW image for the index's model into q->x; the
 * model runs later, on all of a request's images at once (embed_pending). */
static int embed_pixels(struct index_data *ix, const uint8_t *px, int c, int h, int w,
			struct query *q, struct http_err *e)
{
	struct isif_error err = {0};
	q->x = malloc((size_t)ix->c * ix->h * ix->w * sizeof(float));
	int rc = q->x ? index_preprocess(ix, px, c, h, w, q->x, &err) : ISIF_ENOMEM;
	if (rc)
		return http_err_set(e, 503, "unavailable", "preprocessing the image failed: %s",
			            err.msg[0] ? err.msg : isif_strerror(rc));
	return 0;
}

/* Embeds every query of qs[n] that waits with a preprocessed image, in one
 * call of the model (batches of its plan), into its row of Q[n, dim]. */
static int embed_pending(struct index_data *ix, struct query *qs, int n, float *Q, struct http_err *e)
{
	size_t img = (size_t)ix->c * ix->h * ix->w;
	int m = 0;
	for (int i = 0; i < n; i++)
		m += qs[i].x != NULL;
	if (!m)
		return 0;
	struct isif_error err = {0};
	float *X = malloc((size_t)m * img * sizeof *X), *V = malloc((size_t)m * ix->dim * sizeof *V);
	int rc = X && V ? ISIF_OK : ISIF_ENOMEM;
	for (int i = 0, j = 0; !rc && i < n; i++)
		if (qs[i].x)
			memcpy(X + (size_t)j++ * img, qs[i].x, img * sizeof *X);
	if (!rc)
		rc = index_embed(ix, X, m, V, &err);
	for (int i = 0, j = 0; !rc && i < n; i++)
		if (qs[i].x)
			memcpy(Q + (size_t)i * ix->dim, V + (size_t)j++ * ix->dim, ix->dim * sizeof *V);
	free(X);
	free(V);
	if (rc && access(ix->dir, F_OK) != 0)   /* a newer index removed this one's model file */
		return http_err_set(e, 503, "unavailable", "job %lld's index was replaced while this request "
			            "ran; retry", (long long)ix->job);
	if (rc)
		return http_err_set(e, rc == ISIF_ENOMEM ? 503 : 500, rc == ISIF_ENOMEM ? "unavailable" : "internal",
			            "embedding the image failed: %s", err.msg[0] ? err.msg : isif_strerror(rc));
	return 0;
}

/* A dataset image that is not in the index: embedded from the dataset. */
static int query_dataset_image(struct request *rq, struct index_data *ix, const struct ref *r,
			       json_t *desc, struct query *q, struct http_err *e)
{
	struct isif_error err = {0};
	struct dscache_entry *ent;
	const struct isif_dataset *ds;
	enum isif_rc rc = dscache_acquire(rq->app->datasets, ix->dataset, &ent, &ds, &err);
	if (rc == ISIF_ENOTFOUND)
		return http_err_set(e, 404, "not_found", "%s is not in job %lld's index and its dataset \"%s\" "
			            "is no longer registered", r->text, (long long)ix->job, ix->dataset);
	if (rc)
		return http_err_set(e, 503, "unavailable", "dataset \"%s\" cannot be loaded: %s", ix->dataset, err.msg);
	const struct isif_split *s = r->split == SPLIT_TRAIN ? &ds->train : &ds->test;
	if (r->index >= s->n) {
		dscache_release(rq->app->datasets, ent);
		return http_err_set(e, 404, "not_found", "no image %s: the %s split of \"%s\" has %lld images",
			            r->text, index_split_name(r->split), ix->dataset, (long long)s->n);
	}
	size_t img = (size_t)s->c * s->h * s->w;
	json_object_set_new(desc, "label", json_integer(s->labels[r->index]));
	set_class(desc, ix, s->labels[r->index]);
	json_object_set_new(desc, "in_index", json_false());
	rc = embed_pixels(ix, s->pixels + (size_t)r->index * img, s->c, s->h, s->w, q, e);
	dscache_release(rq->app->datasets, ent);
	return rc;
}

static int query_by_ref(struct request *rq, struct index_data *ix, const struct ref *r,
			struct query *q, float *vec, struct http_err *e)
{
	json_object_set_new(q->desc, "image", json_string(r->text));
	json_object_set_new(q->desc, "split", json_string(index_split_name(r->split)));
	json_object_set_new(q->desc, "index", json_integer(r->index));
	int64_t row = index_find_row(ix, r->split, r->index);
	if (row < 0)
		return query_dataset_image(rq, ix, r, q->desc, q, e);
	const struct index_split *s = &ix->split[r->split];
	memcpy(vec, s->emb + row * ix->dim, (size_t)ix->dim * sizeof(float));
	json_object_set_new(q->desc, "label", json_integer(s->labels[row]));
	set_class(q->desc, ix, s->labels[row]);
	json_object_set_new(q->desc, "in_index", json_true());
	q->self_split = r->split;
	q->self_row = row;
	return 0;
}

/* Decodes image bytes within the limits and embeds them. */
static int query_by_bytes(struct request *rq, struct index_data *ix, const void *buf, size_t len,
			  struct query *q, struct http_err *e)
{
	const struct config *cfg = rq->app->cfg;
	const struct isif_image_limits limits = {
		.max_bytes = cfg->max_image_bytes,
		.max_pixels = cfg->max_image_pixels,
		.max_side = (int)cfg->max_image_side,
	};
	struct isif_error err = {0};
	uint8_t *px = NULL;
	int c, h, w;
	json_object_set_new(q->desc, "bytes", json_integer((json_int_t)len));
	if (len == 0)
		return http_err_set(e, 400, "invalid_image", "empty image: send a JPEG or PNG");
	enum isif_rc rc = isif_image_decode(buf, len, &limits, &px, &c, &h, &w, &err);
	if (rc == ISIF_ERANGE)
		return http_err_set(e, 422, "image_too_large", "%s (limits: --max-image-side %ld, "
			            "--max-image-pixels %ld)", err.msg, cfg->max_image_side, cfg->max_image_pixels);
	if (rc == ISIF_ENOMEM)
		return http_err_set(e, 503, "unavailable", "decoding the image: %s", err.msg);
	if (rc)
		return http_err_set(e, 422, "invalid_image", "cannot decode the image: %s", err.msg);
	json_object_set_new(q->desc, "width", json_integer(w));
	json_object_set_new(q->desc, "height", json_integer(h));
	json_object_set_new(q->desc, "channels", json_integer(c));
	rc = embed_pixels(ix, px, c, h, w, q, e);
	free(px);
	return rc;
}

/* A fetched URL (urlfetch_many's result): its failure as an answer, or
 * its bytes decoded and embedded. */
static int query_by_fetched(struct request *rq, struct index_data *ix, const struct ref *r,
			    const struct fetch_result *f, struct query *q, struct http_err *e)
{
	json_object_set_new(q->desc, "url", json_string(r->text));
	switch (f->rc) {
	case ISIF_OK:
		break;
	case ISIF_EINVAL:
		return http_err_set(e, 400, "invalid_parameter", "image: %s", f->err.msg);
	case ISIF_EFORBIDDEN:
		return http_err_set(e, 403, "url_forbidden", "%s", f->err.msg);
	case ISIF_ERANGE:
		return http_err_set(e, 422, "url_too_large", "%s (--max-image-bytes)", f->err.msg);
	case ISIF_EFORMAT:
		return http_err_set(e, 422, "unsupported_content_type", "%s", f->err.msg);
	case ISIF_ENOMEM:
	case ISIF_ECANCELLED:
		return http_err_set(e, 503, "unavailable", "%s", f->err.msg);
	default:
		return http_err_set(e, 422, "fetch_failed", "%s", f->err.msg);
	}
	json_object_set_new(q->desc, "content_type", json_string(f->ctype));
	return query_by_bytes(rq, ix, f->body, f->len, q, e);
}

/* ---- search and answer --------------------------------------------------------------- */

/* The neighbours of each of nq queries from their search results (kk per
 * query, one spare for the query itself), as JSON arrays (new references in
 * out[nq]). */
/* A json_t as http_json writes it, appended to b (consumes o). */
static void dump_into(struct isif_strbuf *b, json_t *o)
{
	char *t = o ? json_dumps(o, JSON_REAL_PRECISION(15)) : NULL;
	if (t)
		isif_strbuf_puts(b, t);
	else
		b->failed = true;
	free(t);
	json_decref(o);
}

/* One query's neighbours as a JSON array: the rows of its kk results that
 * pass the filters (its own row aside), at most k. Written by hand
 * (json_text.h), the same text as a json_t tree dumped by http_json, for a
 * fraction of the cost; an added item (rare) goes through jansson. */
static void neighbors_text(struct isif_strbuf *b, const struct index_data *ix,
			   const struct qparams *p, int kk, const int64_t *idx, const float *sim,
			   const struct query *q)
{
	const int split = p->split;
	const struct index_split *g = &ix->split[split];
	long n = 0;
	isif_strbuf_put(b, "[", 1);
	for (int j = 0; j < kk && n < p->k; j++) {
		int64_t row = idx[j];
		double s = (double)sim[j];
		if (row < 0 || s < p->min_sim)
			break;   /* best first: nothing after passes either */
		if (index_row_is_item(ix, split, row)) {
			/* an added item (NULL: deleted since the search) */
			int32_t label;
			json_t *o = item_set_describe(ix->items, row - g->n, &label);
			if (o && (p->label < 0 || label == p->label)) {
				if (label >= 0)
					set_class(o, ix, label);
				json_object_set_new(o, "similarity", json_real(s));
				isif_strbuf_puts(b, n++ ? ", " : "");
				dump_into(b, o);
			} else {
				json_decref(o);
			}
			continue;
		}
		if ((q->self_split == split && q->self_row == row) ||
		    (p->label >= 0 && g->labels[row] != p->label))
			continue;
		isif_strbuf_printf(b, "%s{\"split\": ", n++ ? ", " : "");
		json_text_string(b, index_split_name(split));
		isif_strbuf_printf(b, ", \"index\": %d, \"label\": %d, \"similarity\": ",
				   (int)g->ids[row], (int)g->labels[row]);
		json_text_real(b, s);
		const char *name = index_class_name(ix, g->labels[row]);
		if (name) {
			isif_strbuf_puts(b, ", \"class\": ");
			json_text_string(b, name);
		}
		isif_strbuf_put(b, "}", 1);
	}
	isif_strbuf_put(b, "]", 1);
}

/* Answers one object (batch: results) for queries searched by sr, in the
 * key order and text of the json_t tree it replaces. */
static enum MHD_Result answer(struct request *rq, const struct index_data *ix,
			      const struct qparams *p, const struct search_req *sr,
			      struct query *qs, bool batch)
{
	struct isif_strbuf b;
	isif_strbuf_init(&b, (size_t)1 << 30);
	isif_strbuf_printf(&b, "{\"job\": %lld, \"epoch\": %d, \"split\": ", (long long)ix->job,
			   ix->epoch);
	json_text_string(&b, index_split_name(p->split));
	isif_strbuf_printf(&b, ", \"k\": %d, %s", (int)p->k, batch ? "\"results\": [" : "");
	for (int i = 0; i < sr->nq; i++) {
		isif_strbuf_printf(&b, "%s\"query\": ", !batch ? "" : i ? ", {" : "{");
		dump_into(&b, json_incref(qs[i].desc));
		isif_strbuf_puts(&b, ", \"neighbors\": ");
		neighbors_text(&b, ix, p, sr->k, sr->idx + (size_t)i * sr->k, sr->sim + (size_t)i * sr->k,
			       &qs[i]);
		isif_strbuf_puts(&b, batch ? "}" : "");
	}
	/* what the micro-batch cost: queries of the pass, and the wait before it */
	isif_strbuf_printf(&b, "%s, \"search\": {\"batch\": %d, \"wait_ms\": ", batch ? "]" : "",
			   sr->batch);
	json_text_real(&b, sr->wait_s * 1e3);
	isif_strbuf_puts(&b, "}, \"seconds\": ");
	json_text_real(&b, isif_now_s() - rq->t0);
	isif_strbuf_puts(&b, "}\n");
	size_t len;
	char *text = isif_strbuf_take(&b, &len);
	if (!text)
		return http_error(rq, 503, "unavailable", "out of memory");
	return http_body(rq, 200, "application/json", text, len);
}

/* ---- a request, read on the HTTP thread and run on a lane ------------------------- */

/* Everything the work needs: nothing of the connection is read after
 * http_defer (the image bytes stay in rq->body, which the request owns). */
struct nreq {
	struct qparams p;
	int n;                     /* queries */
	struct ref *refs;          /* n of them; NULL: n uploaded images */
	const char **upload;       /* n images' bytes (the body, or its form parts) */
	size_t *upload_len;
	bool embed;                /* POST /jobs/{id}/embed: answer the vectors, no search */
	bool npy;                  /* ... as .npy (Accept: application/x-npy) */
	bool batch;                /* answer {"results": [...]}, messages prefixed images[i] */
	json_t *body;              /* a batch's JSON, which refs' text points into */
	char *image;               /* a GET's image=REF, which its ref's text points into */
	const char *prefix;        /* names the images in messages: "images[i]: " (batch) */
	embed_then_fn then;        /* neighbors_embed_then: what the vectors are for */
	void (*then_free)(void *);
	void *then_arg;
};

static void nreq_free(struct nreq *nr)
{
	if (!nr)
		return;
	free(nr->refs);
	free(nr->upload);
	free(nr->upload_len);
	json_decref(nr->body);
	free(nr->image);
	if (nr->then_free)
		nr->then_free(nr->then_arg);
	free(nr);
}

/* Fetches every URL of the request at once (within --url-timeout each;
 * stopped early at shutdown). *out: n results, NULL when none is a URL. */
static int fetch_urls(struct request *rq, const struct nreq *nr, struct fetch_result **out,
		      struct http_err *e)
{
	const struct config *cfg = rq->app->cfg;
	struct fetch_limits lim = {
		.max_bytes = (size_t)cfg->max_image_bytes, .timeout_s = cfg->url_timeout,
		.max_redirects = cfg->url_max_redirects, .allow_private = cfg->allow_private_urls,
		.max_transfers = (int)cfg->max_fetches,
	};
	int urls = 0;
	*out = NULL;
	for (int i = 0; nr->refs && i < nr->n; i++)
		urls += nr->refs[i].is_url;
	if (!urls)
		return 0;
	const char **list = calloc((size_t)urls, sizeof *list);
	struct fetch_result *res = calloc((size_t)urls, sizeof *res);
	*out = calloc((size_t)nr->n, sizeof **out);
	if (!list || !res || !*out) {
		free(list);
		free(res);
		free(*out);
		*out = NULL;
		return http_err_set(e, 503, "unavailable", "out of memory");
	}
	for (int i = 0, j = 0; i < nr->n; i++)
		if (nr->refs[i].is_url)
			list[j++] = nr->refs[i].text;
	urlfetch_many(list, urls, &lim, http_cancel_flag(rq), res);
	for (int i = 0, j = 0; i < nr->n; i++)
		if (nr->refs[i].is_url)
			(*out)[i] = res[j++];   /* the bodies move */
	free(list);
	free(res);
	return 0;
}

static void free_fetched(struct fetch_result *f, int n)
{
	for (int i = 0; f && i < n; i++)
		free(f[i].body);
	free(f);
}

/* Query i of the request into qs[i] and Q's row. */
static int run_query(struct request *rq, struct index_data *ix, const struct nreq *nr, int i,
		     const struct fetch_result *fetched, struct query *q, float *vec, struct http_err *e)
{
	int rc;
	if (!nr->refs)
		rc = query_by_bytes(rq, ix, nr->upload[i], nr->upload_len[i], q, e);
	else if (nr->refs[i].is_url)
		rc = query_by_fetched(rq, ix, &nr->refs[i], &fetched[i], q, e);
	else
		rc = query_by_ref(rq, ix, &nr->refs[i], q, vec, e);
	if (rc && (nr->batch || nr->prefix)) {
		char m[sizeof e->msg];
		snprintf(m, sizeof m, "%s[%d]: %.480s", nr->prefix ? nr->prefix : "images", i, e->msg);
		http_err_set(e, e->status, e->code, "%s", m);
	}
	return rc;
}

/* POST /jobs/{id}/embed's answer: the n vectors Q[n, dim] as JSON, or as a
 * float32 [n, dim] .npy (NumPy format 1.0, header padded to 64 bytes). */
static void answer_embed(struct request *rq, const struct index_data *ix, const struct nreq *nr,
			 struct query *qs, const float *Q)
{
	const size_t n = (size_t)nr->n, dim = (size_t)ix->dim;
	if (nr->npy) {
		char dict[128];
		int dl = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, "
				  "'shape': (%zu, %zu), }", n, dim);
		size_t head = (10 + (size_t)dl + 1 + 63) / 64 * 64, bytes = n * dim * sizeof *Q;
		char *body = malloc(head + bytes);
		if (!body) {
			http_error(rq, 503, "unavailable", "out of memory");
			return;
		}
		memcpy(body, "\x93NUMPY\x01\x00", 8);
		body[8] = (char)((head - 10) & 0xff);
		body[9] = (char)((head - 10) >> 8);
		memset(body + 10, ' ', head - 10);
		memcpy(body + 10, dict, (size_t)dl);
		body[head - 1] = '\n';
		memcpy(body + head, Q, bytes);
		http_body(rq, 200, "application/x-npy", body, head + bytes);
		return;
	}
	json_t *vecs = json_array(), *images = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *v = json_array();
		for (size_t j = 0; j < dim; j++)
			json_array_append_new(v, json_real((double)Q[i * dim + j]));
		json_array_append_new(vecs, v);
		json_array_append(images, qs[i].desc);
	}
	json_t *o = json_pack("{s:I, s:i, s:s, s:i, s:i, s:o, s:o, s:f}", "job", (json_int_t)ix->job,
			      "epoch", ix->epoch, "model", ix->model, "dim", (int)dim, "count", (int)n,
			      "images", images, "embeddings", vecs, "seconds", isif_now_s() - rq->t0);
	http_json(rq, 200, o);
}

/* A request whose queries are embedded, waiting for the search threads. */
struct pending {
	struct search_req sr;
	struct request *rq;
	struct nreq *nr;
	struct index_data *ix;
	struct query *qs;
	float *Q;
	struct fetch_result *fetched;
	bool keep_nr;              /* pending_free leaves nr to its caller */
};

static void pending_free(struct pending *pd)
{
	for (int i = 0; pd->qs && i < pd->nr->n; i++) {
		json_decref(pd->qs[i].desc);
		free(pd->qs[i].x);
	}
	free(pd->qs);
	free(pd->Q);
	free(pd->sr.idx);
	free(pd->sr.sim);
	free_fetched(pd->fetched, pd->nr->n);
	index_release(pd->ix);
	if (!pd->keep_nr)
		nreq_free(pd->nr);
	free(pd);
}

/* With a label filter: whether a query's kk results hold fewer than k rows
 * of the label (itself aside) while the split has rows beyond them. */
static bool too_few_of_label(const struct pending *pd)
{
	const struct qparams *p = &pd->nr->p;
	const struct index_split *g = &pd->ix->split[p->split];
	const struct search_req *sr = &pd->sr;
	int64_t rows = g->n + (p->split == SPLIT_TRAIN ? item_set_count(pd->ix->items) : 0);
	if (p->label < 0 || sr->k >= rows)
		return false;
	for (int i = 0; i < sr->nq; i++) {
		long found = 0;
		for (int j = 0; j < sr->k; j++) {
			int64_t row = sr->idx[(size_t)i * sr->k + j];
			if (row < 0)
				continue;
			int32_t label = index_row_is_item(pd->ix, p->split, row) ?
					item_set_label(pd->ix->items, row - g->n) : g->labels[row];
			if (label == p->label &&
			    !(pd->qs[i].self_split == p->split && pd->qs[i].self_row == row))
				found++;
		}
		/* the kk-th similarity already below the cut: no more can pass */
		if (found < p->k && sr->sim[(size_t)i * sr->k + sr->k - 1] >= p->min_sim)
			return true;
	}
	return false;
}

/* Searches again for 8 times as many results (a label filter): the rows
 * of the label among the top K of the total order, K growing, are exactly
 * the label's top rows. false when at SEARCH_MAX_K, at 64 MiB of results
 * or out of memory: the answer then holds the label's rows found so far. */
static bool widen(struct pending *pd)
{
	struct search_req *sr = &pd->sr;
	int64_t n = pd->ix->split[pd->nr->p.split].n +
		    (pd->nr->p.split == SPLIT_TRAIN ? item_set_count(pd->ix->items) : 0);
	int64_t k = (int64_t)sr->k * 8;
	k = k < n ? k : n;
	k = k < SEARCH_MAX_K ? k : SEARCH_MAX_K;
	/* results of one pass within 64 MiB (a batch of many queries widens less) */
	int64_t budget = (INT64_C(64) << 20) / ((int64_t)sr->nq * (int64_t)(sizeof(int64_t) + sizeof(float)));
	k = k < budget ? k : budget;
	if (k <= sr->k)
		return false;
	int64_t *idx = realloc(sr->idx, (size_t)sr->nq * k * sizeof *idx);
	if (idx)
		sr->idx = idx;
	float *sim = idx ? realloc(sr->sim, (size_t)sr->nq * k * sizeof *sim) : NULL;
	if (sim)
		sr->sim = sim;
	if (!idx || !sim)
		return false;
	sr->k = (int)k;
	return true;
}

/* On the search thread: the request's answer, then its connection resumes. */
static void search_done(struct search_req *sr, enum isif_rc rc)
{
	struct pending *pd = sr->arg;
	struct request *rq = pd->rq;
	if (!rc && too_few_of_label(pd) && widen(pd)) {
		searcher_submit(rq->app->search, &pd->sr);
		return;
	}
	if (rc == ISIF_ECANCELLED)
		http_error(rq, 503, "unavailable", "isifd is shutting down");
	else if (rc)
		http_error(rq, 503, "unavailable", "search failed: %s", isif_strerror(rc));
	else
		answer(rq, pd->ix, &pd->nr->p, sr, pd->qs, pd->nr->batch);
	pending_free(pd);
	http_detached_done(rq);
}

/* The queries of pd->nr against pd->ix (resolved, URLs fetched) turned
 * into vectors pd->Q and a search request; 0, or an error in e. Blocks
 * only where a query needs it (a dataset image not in the index, an
 * embedding): the direct path below takes none of those. */
static int pending_prepare(struct request *rq, struct pending *pd, struct http_err *e)
{
	struct nreq *nr = pd->nr;
	struct index_data *ix = pd->ix;
	/* one spare for the query itself; a label filter starts wider */
	int kk = (int)nr->p.k + 1;
	if (nr->p.label >= 0)
		kk = kk * 8 < SEARCH_MAX_K ? kk * 8 : SEARCH_MAX_K > kk ? SEARCH_MAX_K : kk;
	pd->qs = calloc((size_t)nr->n, sizeof *pd->qs);
	pd->Q = malloc((size_t)nr->n * ix->dim * sizeof *pd->Q);
	pd->sr.idx = malloc((size_t)nr->n * kk * sizeof *pd->sr.idx);
	pd->sr.sim = malloc((size_t)nr->n * kk * sizeof *pd->sr.sim);
	if (!pd->qs || !pd->Q || !pd->sr.idx || !pd->sr.sim)
		return http_err_set(e, 503, "unavailable", "out of memory");
	for (int i = 0; i < nr->n; i++)
		pd->qs[i] = (struct query){.desc = json_object(), .self_row = -1};
	for (int i = 0; i < nr->n; i++)
		if (run_query(rq, ix, nr, i, pd->fetched, &pd->qs[i], pd->Q + (size_t)i * ix->dim, e))
			return -1;
	if (embed_pending(ix, pd->qs, nr->n, pd->Q, e))
		return -1;
	pd->sr = (struct search_req){.ix = ix, .split = nr->p.split, .k = kk, .nq = nr->n,
				     .q = pd->Q, .idx = pd->sr.idx, .sim = pd->sr.sim,
				     .done = search_done, .arg = pd};
	return 0;
}

static struct pending *pending_new(struct request *rq, struct nreq *nr)
{
	struct pending *pd = calloc(1, sizeof *pd);
	if (pd) {
		pd->rq = rq;
		pd->nr = nr;
	}
	return pd;
}

/* On a lane: resolve the index, fetch, embed; then hand the search (and
 * the answer) to the search threads. */
static void neighbors_work(struct request *rq, void *arg, bool cancelled)
{
	struct http_err e;
	struct pending *pd = pending_new(rq, arg);
	if (!pd) {
		nreq_free(arg);
		http_error(rq, 503, "unavailable", "out of memory");
		return;
	}
	struct nreq *nr = pd->nr;
	if (cancelled) {
		http_err_set(&e, 503, "unavailable", "isifd is shutting down");
		goto fail;
	}
	if (resolve_index(rq, &nr->p, &pd->ix, &e) || fetch_urls(rq, nr, &pd->fetched, &e) ||
	    pending_prepare(rq, pd, &e))
		goto fail;
	if (nr->then) {
		nr->then(rq, pd->ix, pd->Q, nr->n, nr->then_arg);
		pending_free(pd);
		return;
	}
	if (nr->embed) {
		answer_embed(rq, pd->ix, nr, pd->qs, pd->Q);
		pending_free(pd);
		return;
	}
	http_detach(rq);
	searcher_submit(rq->app->search, &pd->sr);
	return;
fail:
	answer_error(rq, &e);
	pending_free(pd);
}

/*
 * The direct path of GET /neighbors: a query by ref to a row of an index
 * that is loaded and current needs no lane (nothing to load, fetch or
 * embed), so the HTTP thread submits its search itself and the search
 * thread answers: one thread hop fewer per query. Returns false (nr
 * untouched) when the request needs the lane.
 */
static bool search_direct(struct request *rq, struct nreq *nr, enum MHD_Result *ret)
{
	const struct ref *r = &nr->refs[0];
	if (r->is_url || nr->p.job <= 0)
		return false;
	struct index_data *ix = index_acquire_current(rq->app->indexes, nr->p.job);
	if (!ix)
		return false;
	struct pending *pd = index_find_row(ix, r->split, r->index) >= 0 ? pending_new(rq, nr) : NULL;
	if (!pd) {
		index_release(ix);
		return false;
	}
	pd->ix = ix;
	struct http_err e;
	if (pending_prepare(rq, pd, &e)) {
		*ret = answer_error(rq, &e);
		pending_free(pd);
		return true;
	}
	if (!http_suspend(rq)) {
		pd->keep_nr = true;   /* the lane's path answers (a 503 in shutdown) */
		pending_free(pd);
		return false;
	}
	searcher_submit(rq->app->search, &pd->sr);
	*ret = MHD_YES;
	return true;
}

/* Hands nr to the fetch threads when it has a URL, else the work threads. */
static enum MHD_Result defer_request(struct request *rq, struct nreq *nr)
{
	bool urls = false;
	for (int i = 0; nr->refs && i < nr->n; i++)
		urls |= nr->refs[i].is_url;
	return http_defer(rq, urls ? HTTP_LANE_FETCH : HTTP_LANE_WORK, neighbors_work, nr);
}

enum MHD_Result route_neighbors_get(struct request *rq)
{
	struct http_err e;
	struct nreq *nr = calloc(1, sizeof *nr);
	const char *image = http_query(rq, "image");
	if (!nr)
		return http_error(rq, 503, "unavailable", "out of memory");
	nr->n = 1;
	if (!image) {
		http_err_set(&e, 400, "invalid_parameter", "image: required (train:N, test:N or an http(s) URL)");
		goto fail;
	}
	if (!(nr->image = strdup(image)) || !(nr->refs = calloc(1, sizeof *nr->refs))) {
		http_err_set(&e, 503, "unavailable", "out of memory");
		goto fail;
	}
	if (parse_ref(nr->image, nr->refs, &e) || query_params(rq, &nr->p, &e))
		goto fail;
	enum MHD_Result ret;
	if (search_direct(rq, nr, &ret))
		return ret;
	return defer_request(rq, nr);
fail:
	nreq_free(nr);
	return answer_error(rq, &e);
}

/* The images of a POST: the body, or the parts of a multipart form (at
 * most max_parts; one for /neighbors). */
static int upload_bytes(struct request *rq, struct nreq *nr, int max_parts, struct http_err *e)
{
	const char *ct = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND,
						     MHD_HTTP_HEADER_CONTENT_TYPE);
	struct isif_error err = {0};
	nr->upload = calloc((size_t)max_parts, sizeof *nr->upload);
	nr->upload_len = calloc((size_t)max_parts, sizeof *nr->upload_len);
	if (!nr->upload || !nr->upload_len)
		return http_err_set(e, 503, "unavailable", "out of memory");
	nr->n = 1;
	nr->upload[0] = rq->body;
	nr->upload_len[0] = rq->body_len;
	if (!rq->body_len)
		return http_err_set(e, 400, "invalid_image", "empty body: send a JPEG or PNG image");
	if (!multipart_is_form(ct))
		return 0;
	switch (multipart_parts(ct, rq->body, rq->body_len, (size_t)rq->app->cfg->max_image_bytes,
				max_parts, nr->upload, nr->upload_len, &nr->n, &err)) {
	case ISIF_OK:
		return 0;
	case ISIF_ERANGE:
		return http_err_set(e, 413, "payload_too_large", "%s (--max-image-bytes)", err.msg);
	default:
		return http_err_set(e, 400, "invalid_multipart", "%s", err.msg);
	}
}

enum MHD_Result route_neighbors_post(struct request *rq)
{
	struct http_err e;
	struct nreq *nr = calloc(1, sizeof *nr);
	if (!nr)
		return http_error(rq, 503, "unavailable", "out of memory");
	nr->n = 1;
	if (query_params(rq, &nr->p, &e) || upload_bytes(rq, nr, 1, &e)) {
		nreq_free(nr);
		return answer_error(rq, &e);
	}
	return defer_request(rq, nr);
}

/* ---- batch ----------------------------------------------------------------------------- */

static int parse_images(const struct config *cfg, json_t *images, struct ref **refs, int *n,
			struct http_err *e);

/* {"images": [REF, ...], "k": 10, "job": ID, "split": "train"} → p and refs. */
static int batch_params(struct request *rq, json_t *body, struct qparams *p, struct ref **refs,
			int *n, struct http_err *e)
{
	const struct config *cfg = rq->app->cfg;
	const char *key;
	json_t *v, *images = NULL;
	p->k = 10;
	p->job = 0;
	p->split = SPLIT_TRAIN;
	p->label = -1;
	p->min_sim = -INFINITY;
	if (!json_is_object(body))
		return http_err_set(e, 400, "invalid_parameter", "body: must be a JSON object");
	json_object_foreach(body, key, v) {
		if (strcmp(key, "images") == 0) {
			images = v;
		} else if (strcmp(key, "k") == 0) {
			if (!json_is_integer(v) || json_integer_value(v) < 1 ||
			    json_integer_value(v) > cfg->max_k)
				return http_err_set(e, 400, "invalid_parameter",
					            "k: must be an integer between 1 and %ld", cfg->max_k);
			p->k = (long)json_integer_value(v);
		} else if (strcmp(key, "job") == 0) {
			if (!json_is_integer(v) || json_integer_value(v) < 1)
				return http_err_set(e, 400, "invalid_parameter", "job: must be a job id");
			p->job = json_integer_value(v);
		} else if (strcmp(key, "label") == 0) {
			if (!json_is_integer(v) || json_integer_value(v) < 0 ||
			    json_integer_value(v) > INT32_MAX)
				return http_err_set(e, 400, "invalid_parameter", "label: must be an integer >= 0");
			p->label = json_integer_value(v);
		} else if (strcmp(key, "min_similarity") == 0) {
			if (!json_is_number(v) || !(json_number_value(v) >= -1) ||
			    !(json_number_value(v) <= 1))
				return http_err_set(e, 400, "invalid_parameter", "min_similarity: must be a "
					            "number between -1 and 1");
			p->min_sim = json_number_value(v);
		} else if (strcmp(key, "split") == 0) {
			if (parse_split(json_is_string(v) ? json_string_value(v) : "", &p->split, e))
				return -1;
		} else {
			return http_err_set(e, 400, "invalid_parameter", "%s: unknown field", key);
		}
	}
	return parse_images(cfg, images, refs, n, e);
}

/* "images": a list of 1 to --max-batch REFs (at most --max-batch-urls URLs). */
static int parse_images(const struct config *cfg, json_t *images, struct ref **refs, int *n,
			struct http_err *e)
{
	if (!json_is_array(images) || json_array_size(images) < 1 ||
	    json_array_size(images) > (size_t)cfg->max_batch)
		return http_err_set(e, 400, "invalid_parameter", "images: must be a list of 1 to %ld image "
			            "references", cfg->max_batch);
	*n = (int)json_array_size(images);
	*refs = calloc((size_t)*n, sizeof **refs);
	if (!*refs)
		return http_err_set(e, 503, "unavailable", "out of memory");
	int urls = 0;
	for (int i = 0; i < *n; i++) {
		json_t *s = json_array_get(images, (size_t)i);
		if (!json_is_string(s))
			return http_err_set(e, 400, "invalid_parameter", "images[%d]: must be a string", i);
		if (parse_ref(json_string_value(s), &(*refs)[i], e)) {
			char m[sizeof e->msg];
			snprintf(m, sizeof m, "images[%d]: %.480s", i, e->msg);
			return http_err_set(e, e->status, e->code, "%s", m);
		}
		urls += (*refs)[i].is_url;
	}
	if (urls > cfg->max_batch_urls)
		return http_err_set(e, 400, "invalid_parameter", "images: at most %ld URLs per batch "
			            "(--max-batch-urls)", cfg->max_batch_urls);
	return 0;
}

enum MHD_Result route_neighbors_batch(struct request *rq)
{
	struct http_err e;
	json_error_t jerr;
	struct nreq *nr = calloc(1, sizeof *nr);
	if (!nr)
		return http_error(rq, 503, "unavailable", "out of memory");
	nr->batch = true;
	nr->body = rq->body ? json_loadb(rq->body, rq->body_len, JSON_REJECT_DUPLICATES, &jerr) : NULL;
	if (!nr->body) {
		http_err_set(&e, 400, "invalid_parameter", "body: invalid JSON");
		goto fail;
	}
	if (batch_params(rq, nr->body, &nr->p, &nr->refs, &nr->n, &e))
		goto fail;
	return defer_request(rq, nr);
fail:
	nreq_free(nr);
	return answer_error(rq, &e);
}

/* ---- embeddings -------------------------------------------------------------------------- */

/* Does the Accept header ask for .npy? */
static bool wants_npy(struct request *rq)
{
	const char *acc = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND,
						      MHD_HTTP_HEADER_ACCEPT);
	return acc && (strcasestr(acc, "application/x-npy") || strcasestr(acc, "application/npy"));
}

/* POST /jobs/{id}/embed: {"images": [REF, ...]} (JSON), one image (raw
 * body) or several (multipart parts, up to --max-batch) → their vectors. */
enum MHD_Result route_job_embed(struct request *rq)
{
	const struct config *cfg = rq->app->cfg;
	const char *ct = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND,
						     MHD_HTTP_HEADER_CONTENT_TYPE);
	struct http_err e;
	json_error_t jerr;
	jerr.text[0] = '\0';
	struct nreq *nr = calloc(1, sizeof *nr);
	if (!nr)
		return http_error(rq, 503, "unavailable", "out of memory");
	nr->embed = true;
	nr->npy = wants_npy(rq);
	nr->p = (struct qparams){.k = 1, .split = SPLIT_TRAIN, .job = rq->id, .label = -1,
				 .min_sim = -INFINITY};
	if (ct && strncasecmp(ct, "application/json", 16) == 0) {
		const char *key;
		json_t *v, *images = NULL;
		nr->body = rq->body ? json_loadb(rq->body, rq->body_len, JSON_REJECT_DUPLICATES,
						 &jerr) : NULL;
		if (!nr->body) {
			http_err_set(&e, 400, "invalid_parameter", "body: invalid JSON%s%.200s",
			             jerr.text[0] ? ": " : "", jerr.text);
			goto fail;
		}
		if (!json_is_object(nr->body)) {
			http_err_set(&e, 400, "invalid_parameter", "body: must be a JSON object "
			             "{\"images\": [REF, ...]}");
			goto fail;
		}
		json_object_foreach(nr->body, key, v) {
			if (strcmp(key, "images") != 0) {
				http_err_set(&e, 400, "invalid_parameter", "%.100s: unknown field", key);
				goto fail;
			}
			images = v;
		}
		if (parse_images(cfg, images, &nr->refs, &nr->n, &e))
			goto fail;
	} else if (upload_bytes(rq, nr, (int)cfg->max_batch, &e)) {
		goto fail;
	}
	return defer_request(rq, nr);
fail:
	nreq_free(nr);
	return answer_error(rq, &e);
}

/* ---- embeddings for another route ---------------------------------------------------- */

enum MHD_Result neighbors_embed_then(struct request *rq, int64_t job, int n,
				     const char *const *refs, const char **upload,
				     size_t *upload_len, const char *prefix, embed_then_fn then,
				     void (*then_free)(void *), void *arg)
{
	struct http_err e;
	struct nreq *nr = calloc(1, sizeof *nr);
	if (!nr) {
		free(upload);
		free(upload_len);
		then_free(arg);
		return http_error(rq, 503, "unavailable", "out of memory");
	}
	nr->embed = true;
	nr->n = n;
	nr->p = (struct qparams){.k = 1, .split = SPLIT_TRAIN, .job = job, .label = -1,
				 .min_sim = -INFINITY};
	nr->upload = upload;
	nr->upload_len = upload_len;
	nr->prefix = prefix;
	nr->then = then;
	nr->then_free = then_free;
	nr->then_arg = arg;
	if (refs) {
		if (!(nr->refs = calloc((size_t)n, sizeof *nr->refs))) {
			http_err_set(&e, 503, "unavailable", "out of memory");
			goto fail;
		}
		int urls = 0;
		for (int i = 0; i < n; i++) {
			if (parse_ref(refs[i], &nr->refs[i], &e)) {
				char m[sizeof e.msg];
				snprintf(m, sizeof m, "%s[%d].%.480s", prefix, i, e.msg);
				http_err_set(&e, e.status, e.code, "%s", m);
				goto fail;
			}
			urls += nr->refs[i].is_url;
		}
		if (urls > rq->app->cfg->max_batch_urls) {
			http_err_set(&e, 400, "invalid_parameter", "%s: at most %ld URLs per request "
			             "(--max-batch-urls)", prefix, rq->app->cfg->max_batch_urls);
			goto fail;
		}
	}
	return defer_request(rq, nr);
fail:
	nreq_free(nr);
	return answer_error(rq, &e);
}

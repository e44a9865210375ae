/*
 * server/routes_items.c — collections that grow: images added to a
 * succeeded job's index after training, each embedded by the job's model
 * and kept with a caller-given id, an optional label and optional
 * metadata; /neighbors answers them beside the dataset rows.
 *
 *   POST   /jobs/{id}/items            JSON {"items": [{"id", "image"|"url",
 *                                       "label", "metadata"}], "replace"},
 *                                       multipart (an "items" part + one file
 *                                       part per item), or one raw image
 *                                       with ?id=&label=&replace=
 *   GET    /jobs/{id}/items[?after=&limit=]
 *   GET    /jobs/{id}/items/{item}[?embedding=1]
 *   DELETE /jobs/{id}/items/{item}
 *
 * Every input is checked on the HTTP thread before any work (400 naming
 * the field, 404 unknown job, 409 job not succeeded); the images are then
 * embedded on a lane (neighbors_embed_then: all of a request's images in
 * one model call) and the rows committed to SQLite (index_items_add)
 * before the answer, which makes them searchable at once.
 */
#include "routes.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "index.h"
#include "items.h"
#include "multipart.h"
#include "store_items.h"

/* A POST's items, read on the HTTP thread. */
struct items_req {
	int64_t job;
	int n;
	bool replace;
	json_t *body;            /* the JSON the ids, refs and metadata point into */
	char *raw_id;            /* a raw upload's ?id= */
	struct item_new *items;  /* n; emb filled once embedded */
	char **meta;             /* n compact metadata texts (NULL: none) */
	const char **refs;       /* n refs (JSON), or NULL (uploads) */
};

static void items_req_free(void *arg)
{
	struct items_req *ir = arg;
	if (!ir)
		return;
	for (int i = 0; ir->meta && i < ir->n; i++)
		free(ir->meta[i]);
	free(ir->meta);
	free(ir->items);
	free(ir->refs);
	free(ir->raw_id);
	json_decref(ir->body);
	free(ir);
}

/* An item id: 1 to --max-item-id bytes of letters, digits and ._:- */
static bool id_ok(const char *s, long max)
{
	size_t n = strlen(s);
	return n >= 1 && n <= (size_t)max && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstu"
						   "vwxyz0123456789._:-") == n;
}

static int bad_id(struct http_err *e, const char *field, long max)
{
	return http_err_set(e, 400, "invalid_parameter", "%s: must be 1 to %ld characters of letters, "
		            "digits and . _ : -, not . or ..", field, max);
}

/* An id a new item may take: "." and ".." are refused, as URL clients
 * (curl, browsers) resolve /jobs/1/items/.. to /jobs/1/ and never send them. */
static bool new_id_ok(const char *s, long max)
{
	return id_ok(s, max) && strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

/* items[i]: {"id", "image" | "url", "label", "metadata"} into ir's row i
 * (with_image: an image reference is required; else none is allowed). */
static int parse_item(const struct config *cfg, json_t *o, int i, bool with_image,
		      struct items_req *ir, struct http_err *e)
{
	const char *key;
	json_t *v;
	struct item_new *it = &ir->items[i];
	it->label = -1;
	if (!json_is_object(o))
		return http_err_set(e, 400, "invalid_parameter", "items[%d]: must be an object {\"id\": ..., "
			            "\"image\": ...}", i);
	json_object_foreach(o, key, v) {
		if (strcmp(key, "id") == 0) {
			if (!json_is_string(v) || !new_id_ok(json_string_value(v), cfg->max_item_id)) {
				char f[32];
				snprintf(f, sizeof f, "items[%d].id", i);
				return bad_id(e, f, cfg->max_item_id);
			}
			it->id = json_string_value(v);
		} else if (strcmp(key, "image") == 0 || strcmp(key, "url") == 0) {
			if (!with_image)
				return http_err_set(e, 400, "invalid_parameter", "items[%d].%s: not with uploaded "
					            "files (each file part is its item's image)", i, key);
			if (!json_is_string(v))
				return http_err_set(e, 400, "invalid_parameter", "items[%d].%s: must be a string "
					            "(train:N, test:N or an http(s) URL)", i, key);
			if (ir->refs[i])
				return http_err_set(e, 400, "invalid_parameter", "items[%d]: give one of image "
					            "and url", i);
			ir->refs[i] = json_string_value(v);
		} else if (strcmp(key, "label") == 0) {
			if (!json_is_integer(v) || json_integer_value(v) < 0 ||
			    json_integer_value(v) > INT32_MAX)
				return http_err_set(e, 400, "invalid_parameter", "items[%d].label: must be an "
					            "integer >= 0", i);
			it->label = (int32_t)json_integer_value(v);
		} else if (strcmp(key, "metadata") == 0) {
			if (!json_is_object(v))
				return http_err_set(e, 400, "invalid_parameter", "items[%d].metadata: must be a "
					            "JSON object", i);
			ir->meta[i] = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
			if (!ir->meta[i])
				return http_err_set(e, 503, "unavailable", "out of memory");
			if ((long)strlen(ir->meta[i]) > cfg->max_item_metadata)
				return http_err_set(e, 413, "payload_too_large", "items[%d].metadata: %zu bytes "
					            "of JSON, over --max-item-metadata %ld", i,
					            strlen(ir->meta[i]), cfg->max_item_metadata);
			it->metadata = ir->meta[i];
		} else {
			return http_err_set(e, 400, "invalid_parameter", "items[%d].%.100s: unknown field "
				            "(id, image, url, label, metadata)", i, key);
		}
	}
	if (!it->id)
		return http_err_set(e, 400, "invalid_parameter", "items[%d].id: required", i);
	if (with_image && !ir->refs[i])
		return http_err_set(e, 400, "invalid_parameter", "items[%d].image: required (train:N, "
			            "test:N or an http(s) URL; or upload the images as multipart parts)", i);
	for (int j = 0; j < i; j++)
		if (strcmp(ir->items[j].id, it->id) == 0)
			return http_err_set(e, 400, "invalid_parameter", "items[%d].id: \"%s\" is also "
				            "items[%d].id", i, it->id, j);
	return 0;
}

static int alloc_rows(struct items_req *ir, int n, struct http_err *e)
{
	ir->n = n;
	ir->items = calloc((size_t)n, sizeof *ir->items);
	ir->meta = calloc((size_t)n, sizeof *ir->meta);
	ir->refs = calloc((size_t)n, sizeof *ir->refs);
	return ir->items && ir->meta && ir->refs ? 0 : http_err_set(e, 503, "unavailable", "out of memory");
}

/* A JSON body (or a multipart "items" part): {"items": [...], "replace": b}
 * or, in a part, the bare list. */
static int parse_items_json(const struct config *cfg, const char *text, size_t len, bool with_image,
			    struct items_req *ir, struct http_err *e)
{
	json_error_t jerr;
	json_t *list = NULL;
	ir->body = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!ir->body)
		return http_err_set(e, 400, "invalid_parameter", "%s: invalid JSON: %.200s",
			            with_image ? "body" : "items", jerr.text);
	if (json_is_array(ir->body) && !with_image) {
		list = ir->body;
	} else if (json_is_object(ir->body)) {
		const char *key;
		json_t *v;
		json_object_foreach(ir->body, key, v) {
			if (strcmp(key, "items") == 0) {
				list = v;
			} else if (strcmp(key, "replace") == 0) {
				if (!json_is_boolean(v))
					return http_err_set(e, 400, "invalid_parameter", "replace: must be "
						            "true or false");
				ir->replace = json_is_true(v);
			} else {
				return http_err_set(e, 400, "invalid_parameter", "%.100s: unknown field "
					            "(items, replace)", key);
			}
		}
	} else {
		return http_err_set(e, 400, "invalid_parameter", "body: must be a JSON object "
			            "{\"items\": [...]}");
	}
	if (!json_is_array(list) || json_array_size(list) < 1 ||
	    json_array_size(list) > (size_t)cfg->max_items_request)
		return http_err_set(e, 400, "invalid_parameter", "items: must be a list of 1 to %ld items "
			            "(--max-items-request)", cfg->max_items_request);
	if (alloc_rows(ir, (int)json_array_size(list), e))
		return -1;
	for (int i = 0; i < ir->n; i++)
		if (parse_item(cfg, json_array_get(list, (size_t)i), i, with_image, ir, e))
			return -1;
	if (!with_image) {
		free(ir->refs);
		ir->refs = NULL;
	}
	return 0;
}

/* A multipart form: an "items" part (JSON) and one file part per item, in
 * order, into ir and the uploads. */
static int parse_form(struct request *rq, const char *ct, struct items_req *ir,
		      const char ***up, size_t **up_len, struct http_err *e)
{
	const struct config *cfg = rq->app->cfg;
	int max = (int)cfg->max_items_request + 1, n = 0;
	const char **part = calloc((size_t)max, sizeof *part);
	size_t *len = calloc((size_t)max, sizeof *len);
	char (*names)[MULTIPART_NAME_LEN] = calloc((size_t)max, sizeof *names);
	struct isif_error err = {0};
	int rc = -1;
	if (!part || !len || !names) {
		http_err_set(e, 503, "unavailable", "out of memory");
		goto out;
	}
	switch (multipart_parts_named(ct, rq->body, rq->body_len, (size_t)cfg->max_image_bytes, max,
				      part, len, names, &n, &err)) {
	case ISIF_OK:
		break;
	case ISIF_ERANGE:
		http_err_set(e, 413, "payload_too_large", "%s (--max-image-bytes)", err.msg);
		goto out;
	default:
		http_err_set(e, 400, "invalid_multipart", "%s (at most --max-items-request files and an "
		             "items part)", err.msg);
		goto out;
	}
	int at = -1;
	for (int i = 0; i < n; i++)
		if (strcmp(names[i], "items") == 0) {
			if (at >= 0) {
				http_err_set(e, 400, "invalid_multipart", "items: two parts named items");
				goto out;
			}
			at = i;
		}
	if (at < 0) {
		http_err_set(e, 400, "invalid_multipart", "items: a multipart add needs a part named items "
		             "holding [{\"id\": ...}, ...], one per file part (curl -F 'items=[...]' "
		             "-F image=@a.png ...)");
		goto out;
	}
	if (len[at] > (size_t)cfg->max_body) {   /* JSON as a JSON body: --max-body */
		http_err_set(e, 413, "payload_too_large", "items: part of %zu bytes, over --max-body %ld",
		             len[at], (long)cfg->max_body);
		goto out;
	}
	if (parse_items_json(cfg, part[at], len[at], false, ir, e))
		goto out;
	if (n - 1 != ir->n) {
		http_err_set(e, 400, "invalid_multipart", "items: %d items for %d file parts", ir->n, n - 1);
		goto out;
	}
	*up = calloc((size_t)ir->n, sizeof **up);
	*up_len = calloc((size_t)ir->n, sizeof **up_len);
	if (!*up || !*up_len) {
		http_err_set(e, 503, "unavailable", "out of memory");
		goto out;
	}
	for (int i = 0, j = 0; i < n; i++)
		if (i != at) {
			(*up)[j] = part[i];
			(*up_len)[j++] = len[i];
		}
	rc = 0;
out:
	free(part);
	free(len);
	free(names);
	return rc;
}

/* One raw image with ?id=&label=&replace=. */
static int parse_raw(struct request *rq, struct items_req *ir, const char ***up,
		     size_t **up_len, struct http_err *e)
{
	const struct config *cfg = rq->app->cfg;
	const char *id = http_query(rq, "id"), *label = http_query(rq, "label"),
		   *replace = http_query(rq, "replace");
	if (!id)
		return http_err_set(e, 400, "invalid_parameter", "id: required with a raw image body "
			            "(?id=NAME), or send JSON or a multipart form");
	if (!new_id_ok(id, cfg->max_item_id))
		return bad_id(e, "id", cfg->max_item_id);
	if (alloc_rows(ir, 1, e) || !(ir->raw_id = strdup(id)))
		return http_err_set(e, 503, "unavailable", "out of memory");
	free(ir->refs);
	ir->refs = NULL;
	ir->items[0] = (struct item_new){.id = ir->raw_id, .label = -1};
	if (label) {
		char *end;
		long long v = strtoll(label, &end, 10);
		if (*label < '0' || *label > '9' || *end || v < 0 || v > INT32_MAX)   /* no " 1", "+1" */
			return http_err_set(e, 400, "invalid_parameter", "label: must be an integer >= 0");
		ir->items[0].label = (int32_t)v;
	}
	if (replace && strcmp(replace, "true") != 0 && strcmp(replace, "false") != 0)
		return http_err_set(e, 400, "invalid_parameter", "replace: must be true or false");
	ir->replace = replace && strcmp(replace, "true") == 0;
	if (!rq->body_len)
		return http_err_set(e, 400, "invalid_image", "empty body: send a JPEG or PNG image");
	*up = calloc(1, sizeof **up);
	*up_len = calloc(1, sizeof **up_len);
	if (!*up || !*up_len)
		return http_err_set(e, 503, "unavailable", "out of memory");
	(*up)[0] = rq->body;
	(*up_len)[0] = rq->body_len;
	return 0;
}

/* 404 for an unknown job, 409 for one that has not succeeded; 0 when the
 * job may hold items. */
static int job_ready(struct request *rq, bool to_add, struct http_err *e)
{
	enum job_status st;
	struct isif_error err = {0};
	enum isif_rc rc = store_job_status(rq->app->st, rq->id, &st, &err);
	if (rc == ISIF_ENOTFOUND)
		return http_err_set(e, 404, "not_found", "no job %lld", (long long)rq->id);
	if (rc)
		return http_err_set(e, 500, "internal", "database error: %s", err.msg);
	if (to_add && st != JOB_SUCCEEDED)
		return http_err_set(e, 409, "job_not_succeeded", "job %lld is %s: items are added to the "
			            "index of a succeeded job (its final model)", (long long)rq->id,
			            job_status_name(st));
	return 0;
}

/* On the lane, the images embedded: commit the rows, answer. */
static void items_commit(struct request *rq, struct index_data *ix, const float *Q, int n,
			 void *arg)
{
	struct items_req *ir = arg;
	struct isif_error err = {0};
	struct item_added *added = calloc((size_t)n, sizeof *added);
	if (!added) {
		http_error(rq, 503, "unavailable", "out of memory");
		return;
	}
	for (int i = 0; i < n; i++)
		ir->items[i].emb = Q + (size_t)i * ix->dim;
	enum isif_rc rc = index_items_add(rq->app->indexes, ir->job, ir->items, n, ix->dim,
					  ir->replace, rq->app->cfg->max_items, added, &err);
	if (rc == ISIF_ECONFLICT) {
		http_error(rq, 409, "conflict", "%s", err.msg);
	} else if (rc == ISIF_ERANGE) {
		http_error(rq, 409, "collection_full", "%s", err.msg);
	} else if (rc == ISIF_ENOTFOUND) {   /* deleted while its images were embedded */
		http_error(rq, 404, "not_found", "%s", err.msg);
	} else if (rc == ISIF_EBUSY) {
		http_error(rq, 409, "job_not_succeeded", "%s", err.msg);
	} else if (rc) {
		http_store_failed(rq, rc, &err);
	} else {
		json_t *list = json_array();
		for (int i = 0; i < n; i++) {
			json_t *o = json_pack("{s:s, s:b}", "id", ir->items[i].id, "replaced",
					      added[i].replaced >= 0);
			if (ir->items[i].label >= 0)
				json_object_set_new(o, "label", json_integer(ir->items[i].label));
			json_array_append_new(list, o);
		}
		http_json(rq, 201, json_pack("{s:I, s:i, s:o, s:I}", "job", (json_int_t)ir->job,
					     "epoch", ix->epoch, "added", list, "count",
					     (json_int_t)item_set_count(ix->items)));
	}
	free(added);
}

enum MHD_Result route_job_items_post(struct request *rq)
{
	const struct config *cfg = rq->app->cfg;
	const char *ct = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND,
						     MHD_HTTP_HEADER_CONTENT_TYPE);
	struct http_err e;
	const char **up = NULL;
	size_t *up_len = NULL;
	struct items_req *ir = calloc(1, sizeof *ir);
	if (!ir)
		return http_error(rq, 503, "unavailable", "out of memory");
	ir->job = rq->id;
	int rc;
	bool raw = false;
	if (cfg->max_items == 0)
		rc = http_err_set(&e, 403, "forbidden", "adding items is turned off (--max-items 0)");
	else if (ct && strncasecmp(ct, "application/json", 16) == 0)
		rc = parse_items_json(cfg, rq->body ? rq->body : "", rq->body_len, true, ir, &e);
	else if (multipart_is_form(ct))
		rc = parse_form(rq, ct, ir, &up, &up_len, &e);
	else if ((raw = true))
		rc = parse_raw(rq, ir, &up, &up_len, &e);
	if (!rc && !raw && (http_query(rq, "id") || http_query(rq, "label") ||
			    http_query(rq, "replace")))
		rc = http_err_set(&e, 400, "invalid_parameter", "id, label, replace: query parameters go "
			          "with a raw image; put them in the JSON");
	if (!rc)
		rc = job_ready(rq, true, &e);
	if (rc) {
		free(up);
		free(up_len);
		items_req_free(ir);
		return http_error(rq, e.status, e.code, "%s", e.msg);
	}
	return neighbors_embed_then(rq, rq->id, ir->n, ir->refs, up, up_len, "items", items_commit,
				    items_req_free, ir);
}

/* ---- reading and deleting ---------------------------------------------------------- */

/* A GET or DELETE, read on the HTTP thread. */
struct item_op {
	int64_t job;
	char id[1100];          /* the item, or the list's ?after= */
	bool has_id;
	long limit;
	bool embedding;
};

static void list_work(struct request *rq, void *arg, bool cancelled)
{
	struct item_op *op = arg;
	struct isif_error err = {0};
	json_t *o = NULL;
	enum isif_rc rc = cancelled ? ISIF_ECANCELLED :
			  store_items_json(rq->app->st, op->job, op->has_id ? op->id : NULL,
					   (int)op->limit, &o, &err);
	if (!cancelled && rc)
		http_store_failed(rq, rc, &err);
	else if (!cancelled)
		http_json(rq, 200, o);
	free(op);
}

static void get_work(struct request *rq, void *arg, bool cancelled)
{
	struct item_op *op = arg;
	struct isif_error err = {0};
	json_t *o = NULL;
	enum isif_rc rc = cancelled ? ISIF_ECANCELLED :
			  store_item_json(rq->app->st, op->job, op->id, op->embedding, &o, &err);
	if (!cancelled && rc == ISIF_ENOTFOUND)
		http_error(rq, 404, "not_found", "%s", err.msg);
	else if (!cancelled && rc)
		http_store_failed(rq, rc, &err);
	else if (!cancelled)
		http_json(rq, 200, o);
	free(op);
}

static void delete_work(struct request *rq, void *arg, bool cancelled)
{
	struct item_op *op = arg;
	struct isif_error err = {0};
	enum isif_rc rc = cancelled ? ISIF_ECANCELLED :
			  index_items_delete(rq->app->indexes, op->job, op->id, &err);
	if (!cancelled && rc == ISIF_ENOTFOUND)
		http_error(rq, 404, "not_found", "%s", err.msg);
	else if (!cancelled && rc)
		http_store_failed(rq, rc, &err);
	else if (!cancelled)
		http_json(rq, 200, json_pack("{s:I, s:s}", "job", (json_int_t)op->job, "deleted",
					     op->id));
	free(op);
}

/* The {item} segment, checked; 0 or an answer's error. */
static int item_op_new(struct request *rq, bool from_path, struct item_op **out, struct http_err *e)
{
	struct item_op *op = calloc(1, sizeof *op);
	*out = op;
	if (!op)
		return http_err_set(e, 503, "unavailable", "out of memory");
	op->job = rq->id;
	if (from_path) {
		/* a %00 in the path would cut the id short: refused, not looked up */
		if (!http_seg(rq, 0, op->id, sizeof op->id) || strlen(op->id) != rq->seg_len[0] ||
		    !id_ok(op->id, rq->app->cfg->max_item_id))
			return bad_id(e, "item id", rq->app->cfg->max_item_id);
		op->has_id = true;
	}
	return job_ready(rq, false, e);
}

static enum MHD_Result op_failed(struct request *rq, struct item_op *op, const struct http_err *e)
{
	free(op);
	return http_error(rq, e->status, e->code, "%s", e->msg);
}

enum MHD_Result route_job_items_list(struct request *rq)
{
	struct http_err e;
	struct item_op *op;
	enum MHD_Result ret;
	const char *after = http_query(rq, "after");
	if (item_op_new(rq, false, &op, &e))
		return op_failed(rq, op, &e);
	if (!http_query_long(rq, "limit", 1, 1000, 100, &op->limit, &ret)) {
		free(op);
		return ret;
	}
	if (after) {
		if (!id_ok(after, rq->app->cfg->max_item_id))
			return op_failed(rq, op, (bad_id(&e, "after", rq->app->cfg->max_item_id), &e));
		snprintf(op->id, sizeof op->id, "%s", after);
		op->has_id = true;
	}
	return http_defer(rq, HTTP_LANE_WORK, list_work, op);
}

enum MHD_Result route_job_item_get(struct request *rq)
{
	struct http_err e;
	struct item_op *op;
	const char *emb = http_query(rq, "embedding");
	if (item_op_new(rq, true, &op, &e))
		return op_failed(rq, op, &e);
	if (emb && strcmp(emb, "1") != 0 && strcmp(emb, "true") != 0 && strcmp(emb, "0") != 0 &&
	    strcmp(emb, "false") != 0)
		return op_failed(rq, op, (http_err_set(&e, 400, "invalid_parameter", "embedding: must be "
						       "true or false"), &e));
	op->embedding = emb && (strcmp(emb, "1") == 0 || strcmp(emb, "true") == 0);
	return http_defer(rq, HTTP_LANE_WORK, get_work, op);
}

enum MHD_Result route_job_item_delete(struct request *rq)
{
	struct http_err e;
	struct item_op *op;
	if (item_op_new(rq, true, &op, &e))
		return op_failed(rq, op, &e);
	return http_defer(rq, HTTP_LANE_WORK, delete_work, op);
}

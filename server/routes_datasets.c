/*
 * server/routes_datasets.c — the dataset registry over HTTP: list, one
 * dataset (with its preprocessing and class names once known), register
 * (POST /datasets: a directory under --dataset-root, checked by loading
 * it), and single images as PNG for thumbnails. Status codes: 201
 * registered, 400 bad field, 404 unknown dataset or image, 409 name taken,
 * 422 the path is not a readable directory under the roots (one message
 * for every reason) or does not hold a readable dataset, 503 a registered
 * dataset's files are gone.
 *
 * Loading a dataset takes seconds: registration and a thumbnail of a
 * dataset not loaded yet run on the work threads (http_defer).
 */
#include "routes.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dscache.h"
#include "index.h"
#include "isif/base/common.h"
#include "isif/data/image.h"
#include "isif/train/spec.h"
#include "store_retrieval.h"

/* A text column holding JSON, parsed (null when absent or unreadable). */
static json_t *json_column(json_t *d, const char *key)
{
	const char *text = json_string_value(json_object_get(d, key));
	json_t *v = text ? json_loads(text, 0, NULL) : NULL;
	json_object_del(d, key);
	return v ? v : json_null();
}

/* A registry row as answered: "available" (the path is readable now),
 * "preprocessing" (what a query image goes through: channels, height,
 * width, mean, std; null until the dataset was loaded once) and
 * "class_names" (null when it has none). */
static void dataset_view(json_t *d)
{
	const char *path = json_string_value(json_object_get(d, "path"));
	json_object_set_new(d, "available", json_boolean(path && access(path, R_OK) == 0));
	json_t *norm = json_column(d, "normalization");
	json_t *pre = json_null();
	if (json_is_object(norm) && json_is_integer(json_object_get(d, "channels")))
		pre = json_pack("{s:O, s:O, s:O, s:O, s:O}", "channels", json_object_get(d, "channels"),
				"height", json_object_get(d, "height"), "width",
				json_object_get(d, "width"), "mean", json_object_get(norm, "mean"),
				"std", json_object_get(norm, "std"));
	json_decref(norm);
	json_object_set_new(d, "preprocessing", pre ? pre : json_null());
	json_object_set_new(d, "class_names", json_column(d, "class_names"));
}

enum MHD_Result route_datasets(struct request *rq)
{
	json_t *out, *d;
	size_t i;
	struct isif_error err = {0};
	enum isif_rc rc = store_dataset_json(rq->app->st, NULL, &out, &err);
	if (rc)
		return http_store_failed(rq, rc, &err);
	json_array_foreach(json_object_get(out, "datasets"), i, d)
		dataset_view(d);
	return http_json(rq, 200, out);
}

enum MHD_Result route_dataset_get(struct request *rq)
{
	char name[ISIF_SPEC_NAME_LEN];
	json_t *d;
	struct isif_error err = {0};
	if (!http_seg(rq, 0, name, sizeof name))
		return http_error(rq, 404, "not_found", "no such dataset");
	enum isif_rc rc = store_dataset_json(rq->app->st, name, &d, &err);
	if (rc == ISIF_ENOTFOUND)
		return http_error(rq, 404, "not_found", "no dataset \"%s\"", name);
	if (rc)
		return http_store_failed(rq, rc, &err);
	dataset_view(d);
	return http_json(rq, 200, d);
}

/* ---- POST /datasets ---------------------------------------------------------- */

/* 1..63 of [a-z0-9._-], starting with a letter or digit. */
static bool name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n < 1 || n >= ISIF_SPEC_NAME_LEN || !(islower((unsigned char)s[0]) || isdigit((unsigned char)s[0])))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '.' ||
		      s[i] == '_' || s[i] == '-'))
			return false;
	return true;
}

/* A required string field of at most max-1 bytes without NUL, or NULL after
 * answering 400 (*ret). */
static const char *string_field(struct request *rq, json_t *body, const char *key, size_t max,
				enum MHD_Result *ret)
{
	json_t *v = json_object_get(body, key);
	if (!v) {
		*ret = http_error(rq, 400, "invalid_dataset", "%s: required", key);
		return NULL;
	}
	if (!json_is_string(v) || json_string_length(v) >= max ||
	    strlen(json_string_value(v)) != json_string_length(v)) {
		*ret = http_error(rq, 400, "invalid_dataset", "%s: must be a string of at most %zu bytes",
				  key, max - 1);
		return NULL;
	}
	return json_string_value(v);
}

/* POST /datasets "image_size": the side folder images are resized to. */
#define IMAGE_SIZE_MIN 16
#define IMAGE_SIZE_MAX 512

/* The optional image_size (0 when absent), or -1 after answering 400 (*ret). */
static int image_size_field(struct request *rq, json_t *body, const char *format,
			    enum MHD_Result *ret)
{
	json_t *v = json_object_get(body, "image_size");
	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < IMAGE_SIZE_MIN ||
	    json_integer_value(v) > IMAGE_SIZE_MAX) {
		*ret = http_error(rq, 400, "invalid_dataset", "image_size: must be an integer "
				  "between %d and %d", IMAGE_SIZE_MIN, IMAGE_SIZE_MAX);
		return -1;
	}
	if (strcmp(format, "folder") && strcmp(format, "auto")) {
		*ret = http_error(rq, 400, "invalid_dataset", "image_size: only folder datasets "
				  "are resized (format %s keeps its images' size)", format);
		return -1;
	}
	return (int)json_integer_value(v);
}

/* Checks the fields; on success *name, *format, *path point into body. */
static bool check_fields(struct request *rq, json_t *body, const char **name, const char **format,
			 const char **path, enum MHD_Result *ret)
{
	const char *key;
	json_t *v;
	if (!json_is_object(body)) {
		*ret = http_error(rq, 400, "invalid_dataset", "body: must be a JSON object");
		return false;
	}
	json_object_foreach(body, key, v) {
		if (strcmp(key, "url") == 0) {
			*ret = http_error(rq, 400, "invalid_dataset", "url: registering by URL is not "
					  "supported; download the files and give their path");
			return false;
		}
		if (strcmp(key, "name") && strcmp(key, "format") && strcmp(key, "path") &&
		    strcmp(key, "image_size")) {
			*ret = http_error(rq, 400, "invalid_dataset", "%s: unknown field", key);
			return false;
		}
	}
	if (!(*name = string_field(rq, body, "name", ISIF_SPEC_NAME_LEN, ret)) ||
	    !(*format = string_field(rq, body, "format", 32, ret)) ||
	    !(*path = string_field(rq, body, "path", 1024, ret)))
		return false;
	if (!name_ok(*name)) {
		*ret = http_error(rq, 400, "invalid_dataset", "name: 1 to %d characters of a-z, 0-9, "
				  "'.', '_', '-', starting with a letter or digit",
				  ISIF_SPEC_NAME_LEN - 1);
		return false;
	}
	if (isif_dataset_format_parse(*format) < 0) {
		*ret = http_error(rq, 400, "invalid_dataset", "format: must be idx, cifar10, cifar100, "
				  "stl10, folder or auto");
		return false;
	}
	if ((*path)[0] != '/') {
		*ret = http_error(rq, 400, "invalid_dataset", "path: must be absolute");
		return false;
	}
	return true;
}

/* A registration, checked on the HTTP thread, loaded on a work thread. */
struct reg {
	json_t *body;                 /* name, format and path point into it */
	const char *name, *format, *path;
	int image_size;               /* folder resize side; 0: the default */
};

/* 201 with the registered dataset, or the store's failure. */
static enum MHD_Result answer_created(struct request *rq, const char *name)
{
	struct isif_error err = {0};
	json_t *d;
	enum isif_rc rc = store_dataset_json(rq->app->st, name, &d, &err);
	if (rc)
		return http_store_failed(rq, rc, &err);
	dataset_view(d);
	char *text = json_dumps(d, 0), loc[128];
	json_decref(d);
	struct MHD_Response *r = text ? MHD_create_response_from_buffer(strlen(text), text,
									MHD_RESPMEM_MUST_FREE) : NULL;
	if (!r) {
		free(text);
		return http_error(rq, 500, "internal", "out of memory");
	}
	snprintf(loc, sizeof loc, "/datasets/%s", name);
	MHD_add_response_header(r, "Location", loc);
	MHD_add_response_header(r, "Content-Type", "application/json");
	return http_respond(rq, 201, r);
}

/* On a work thread: the path within the roots, loaded, recorded. */
static void register_work(struct request *rq, void *arg, bool cancelled)
{
	struct reg *g = arg;
	struct isif_error err = {0};
	char real[PATH_MAX];
	struct isif_dataset ds;
	if (cancelled) {
		http_error(rq, 503, "unavailable", "isifd is shutting down");
		goto out;
	}
	if (dscache_resolve_in_roots(rq->app->cfg->dataset_root, g->path, real, sizeof real, &err)) {
		http_error(rq, 422, "invalid_dataset", "%s", err.msg);
		goto out;
	}
	struct isif_dataset_options opt;
	isif_dataset_options_default(&opt);
	if (g->image_size > 0)
		opt.image_size = g->image_size;
	dscache_folder_options(rq->app->datasets, &opt);   /* decoded here once, for every job */
	if (isif_dataset_load(&ds, real, (enum isif_dataset_format)isif_dataset_format_parse(g->format),
			      &opt, &err)) {
		http_error(rq, 422, "invalid_dataset", "path: %s", err.msg);
		goto out;
	}
	dscache_log_cache(g->name, &ds);
	if (g->image_size > 0 && ds.format != ISIF_FMT_FOLDER) {
		http_error(rq, 422, "invalid_dataset", "image_size: %s is a %s dataset; only folder "
			   "datasets are resized", g->path, isif_dataset_format_name(ds.format));
		isif_dataset_free(&ds);
		goto out;
	}
	struct dataset_info info;
	char *norm, *names;
	dscache_info_of(&ds, &info, &norm, &names);
	info.image_size = g->image_size;
	enum isif_rc rc = store_dataset_insert(rq->app->st, g->name, isif_dataset_format_name(ds.format),
					       real, &info, &err);
	isif_dataset_free(&ds);
	free(norm);
	free(names);
	if (rc == ISIF_ECONFLICT)
		http_error(rq, 409, "conflict", "dataset \"%s\" is already registered", g->name);
	else if (rc)
		http_store_failed(rq, rc, &err);
	else
		answer_created(rq, g->name);
out:
	json_decref(g->body);
	free(g);
}

enum MHD_Result route_datasets_create(struct request *rq)
{
	char fmt_found[32], path_found[1024];
	struct isif_error err = {0};
	enum MHD_Result ret = MHD_NO;
	json_error_t jerr;
	struct reg *g = calloc(1, sizeof *g);
	if (!g)
		return http_error(rq, 503, "unavailable", "out of memory");
	g->body = rq->body ? json_loadb(rq->body, rq->body_len, JSON_REJECT_DUPLICATES, &jerr) : NULL;
	if (!g->body) {
		ret = http_error(rq, 400, "invalid_dataset", "body: invalid JSON");
		goto fail;
	}
	if (!check_fields(rq, g->body, &g->name, &g->format, &g->path, &ret) ||
	    (g->image_size = image_size_field(rq, g->body, g->format, &ret)) < 0)
		goto fail;
	enum isif_rc rc = store_dataset_lookup(rq->app->st, g->name, fmt_found, sizeof fmt_found,
					       path_found, sizeof path_found, &err);
	if (rc != ISIF_ENOTFOUND) {
		ret = rc ? http_store_failed(rq, rc, &err) : http_error(rq, 409, "conflict",
			"dataset \"%s\" is already registered", g->name);
		goto fail;
	}
	return http_defer(rq, HTTP_LANE_WORK, register_work, g);
fail:
	json_decref(g->body);
	free(g);
	return ret;
}

/* ---- GET /datasets/{name}/images/{split}/{index} ------------------------------- */

/* One image of a loaded dataset as PNG (releases e). */
static enum MHD_Result answer_image(struct request *rq, struct dscache_entry *e,
				    const struct isif_dataset *ds, const char *name, int split,
				    long long index)
{
	struct isif_error err = {0};
	const struct isif_split *s = split == SPLIT_TRAIN ? &ds->train : &ds->test;
	if (index >= s->n) {
		dscache_release(rq->app->datasets, e);
		return http_error(rq, 404, "not_found", "no image %s:%lld in \"%s\" (%lld images)",
				  index_split_name(split), index, name, (long long)s->n);
	}
	void *png = NULL;
	size_t len = 0;
	size_t img = (size_t)s->c * s->h * s->w;
	int label = s->labels[index];
	enum isif_rc rc = isif_image_encode_png(s->pixels + (size_t)index * img, s->c, s->h, s->w,
						&png, &len, &err);
	dscache_release(rq->app->datasets, e);
	if (rc)
		return http_error(rq, 500, "internal", "PNG encoding failed: %s", err.msg);
	struct MHD_Response *r = MHD_create_response_from_buffer(len, png, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(png);
		return MHD_NO;
	}
	char label_text[16];
	snprintf(label_text, sizeof label_text, "%d", label);
	MHD_add_response_header(r, "Content-Type", "image/png");
	/* Behind a token, shared caches must not keep (and serve to anyone) an image. */
	MHD_add_response_header(r, "Cache-Control", rq->app->token[0] ? "private, max-age=86400"
							     : "public, max-age=86400");
	MHD_add_response_header(r, "X-Isif-Label", label_text);
	return http_respond(rq, 200, r);
}

/* A thumbnail whose dataset must be loaded first. */
struct thumb {
	char name[ISIF_SPEC_NAME_LEN];
	int split;
	long long index;
};

static enum MHD_Result dataset_unavailable(struct request *rq, const char *name, enum isif_rc rc,
					   const struct isif_error *err)
{
	if (rc == ISIF_ENOTFOUND)
		return http_error(rq, 404, "not_found", "no dataset \"%s\"", name);
	return http_error(rq, 503, "unavailable", "dataset \"%s\" cannot be loaded: %s", name,
			  err->msg);
}

/* On a work thread: load the dataset, then answer the image. */
static void thumb_work(struct request *rq, void *arg, bool cancelled)
{
	struct thumb *t = arg;
	struct isif_error err = {0};
	struct dscache_entry *e;
	const struct isif_dataset *ds;
	enum isif_rc rc = cancelled ? ISIF_ECANCELLED :
			  dscache_acquire(rq->app->datasets, t->name, &e, &ds, &err);
	if (cancelled)
		http_error(rq, 503, "unavailable", "isifd is shutting down");
	else if (rc)
		dataset_unavailable(rq, t->name, rc, &err);
	else
		answer_image(rq, e, ds, t->name, t->split, t->index);
	free(t);
}

enum MHD_Result route_dataset_image(struct request *rq)
{
	char name[ISIF_SPEC_NAME_LEN], split_name[16], index_text[16], *end;
	struct isif_error err = {0};
	if (!http_seg(rq, 0, name, sizeof name))
		return http_error(rq, 404, "not_found", "no such dataset");
	int split = http_seg(rq, 1, split_name, sizeof split_name) ? index_split_parse(split_name) : -1;
	if (split < 0)
		return http_error(rq, 400, "invalid_parameter", "split: must be train or test");
	bool idx_ok = http_seg(rq, 2, index_text, sizeof index_text) && isdigit((unsigned char)index_text[0]);
	long long index = idx_ok ? strtoll(index_text, &end, 10) : -1;
	if (!idx_ok || *end || index > INT32_MAX)
		return http_error(rq, 400, "invalid_parameter", "index: must be an integer >= 0");
	struct dscache_entry *e;
	const struct isif_dataset *ds;
	enum isif_rc rc = dscache_peek(rq->app->datasets, name, &e, &ds, &err);
	if (rc == ISIF_OK)
		return answer_image(rq, e, ds, name, split, index);   /* loaded: fast */
	if (rc != ISIF_EEMPTY)
		return dataset_unavailable(rq, name, rc, &err);
	struct thumb *t = calloc(1, sizeof *t);
	if (!t)
		return http_error(rq, 503, "unavailable", "out of memory");
	snprintf(t->name, sizeof t->name, "%s", name);
	t->split = split;
	t->index = index;
	return http_defer(rq, HTTP_LANE_WORK, thumb_work, t);
}

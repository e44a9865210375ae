/*
 * core/train/group_grid.c — a job group's grid: checking and expansion (see
 * isif/train/group_grid.h).
 */
#include "isif/train/group_grid.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "isif/base/strbuf.h"

#define GRID_SEED "seed"
#define GRID_MAX_FIELDS 32

/* A dotted path of non-empty segments of [A-Za-z0-9_]. */
static bool path_ok(const char *key)
{
	bool seg_empty = true;
	for (const char *c = key; ; c++) {
		if (*c == '.' || *c == '\0') {
			if (seg_empty)
				return false;
			if (*c == '\0')
				return true;
			seg_empty = true;
		} else if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
			   (*c >= '0' && *c <= '9') || *c == '_') {
			seg_empty = false;
		} else {
			return false;
		}
	}
}

/* a is b, or a field inside b ("lr_schedule.type" inside "lr_schedule"). */
static bool path_within(const char *a, const char *b)
{
	size_t n = strlen(b);
	return strncmp(a, b, n) == 0 && (a[n] == '\0' || a[n] == '.');
}

static enum isif_rc check_fields(json_t *grid, long max_jobs, struct isif_group_grid *g,
				 struct isif_error *err)
{
	const char *key, *other;
	json_t *vals, *ov;
	g->n_jobs = 1;
	g->n_points = 1;
	if (json_object_size(grid) > GRID_MAX_FIELDS)
		return isif_fail(err, ISIF_EINVAL, "grid: more than %d fields", GRID_MAX_FIELDS);
	json_object_foreach(grid, key, vals) {
		if (!path_ok(key))
			return isif_fail(err, ISIF_EINVAL, "grid: \"%.64s\" is not a spec field's "
					 "dotted path (like \"lr_schedule.type\")", key);
		if (!json_is_array(vals) || json_array_size(vals) == 0)
			return isif_fail(err, ISIF_EINVAL, "grid.%s: must be a non-empty array of "
					 "values", key);
		json_object_foreach(grid, other, ov) {
			if (other != key && path_within(key, other))
				return isif_fail(err, ISIF_EINVAL, "grid.%s: inside grid.%s; give "
						 "one or the other", key, other);
		}
		long n = (long)json_array_size(vals);
		if (n > max_jobs || g->n_jobs > max_jobs / n)
			return isif_fail(err, ISIF_EINVAL, "grid: more than %ld jobs (the product of "
					 "the value counts; --max-group-jobs)", max_jobs);
		g->n_jobs *= n;
		if (strcmp(key, GRID_SEED) != 0)
			g->n_points *= n;
		g->n_fields++;
	}
	return ISIF_OK;
}

enum isif_rc isif_group_grid_check(json_t *body, long max_jobs, struct isif_group_grid *g,
				   struct isif_error *err)
{
	memset(g, 0, sizeof *g);
	if (!json_is_object(body))
		return isif_fail(err, ISIF_EINVAL, "group: the body must be a JSON object "
				 "{\"base\": spec, \"grid\": {field: [values], ...}}");
	const char *key;
	json_t *v;
	json_object_foreach(body, key, v) {
		if (strcmp(key, "base") != 0 && strcmp(key, "grid") != 0)
			return isif_fail(err, ISIF_EINVAL, "%.64s: unknown field (a group has base "
					 "and grid)", key);
	}
	g->base = json_object_get(body, "base");
	g->grid = json_object_get(body, "grid");
	if (!json_is_object(g->base))
		return isif_fail(err, ISIF_EINVAL, "base: must be a job spec (a JSON object)");
	if (!json_is_object(g->grid) || json_object_size(g->grid) == 0)
		return isif_fail(err, ISIF_EINVAL, "grid: must be a non-empty object of "
				 "{\"field.path\": [values...]}");
	return check_fields(g->grid, max_jobs, g, err);
}

/* Sets obj's dotted path to v (a new reference, taken), making the objects
 * on the way. */
static enum isif_rc set_path(json_t *obj, const char *path, json_t *v, struct isif_error *err)
{
	char seg[128];
	const char *p = path;
	for (;;) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);
		if (n >= sizeof seg) {
			json_decref(v);
			return isif_fail(err, ISIF_EINVAL, "grid.%.64s: field name too long", path);
		}
		memcpy(seg, p, n);
		seg[n] = '\0';
		if (!dot)
			return json_object_set_new(obj, seg, v) ? isif_fail(err, ISIF_ENOMEM, "out "
								 "of memory") : ISIF_OK;
		json_t *next = json_object_get(obj, seg);
		if (!next) {
			next = json_object();
			json_object_set_new(obj, seg, next);
		} else if (!json_is_object(next)) {
			json_decref(v);
			return isif_fail(err, ISIF_EINVAL, "grid.%s: %.*s is not an object (in base "
					 "or the spec)", path, (int)(dot - path), path);
		}
		obj = next;
		p = dot + 1;
	}
}

enum isif_rc isif_group_grid_job(const struct isif_group_grid *g, long i, json_t **spec,
				 int *point, json_t **point_values, json_t **job_values,
				 struct isif_error *err)
{
	/* Mixed radix, last field fastest: walk the fields from the end. */
	size_t nf = (size_t)g->n_fields, k = 0;
	const char *keys[GRID_MAX_FIELDS];
	json_t *vals[GRID_MAX_FIELDS];
	const char *key;
	json_t *v;
	json_object_foreach(g->grid, key, v) {
		keys[k] = key;
		vals[k++] = v;
	}
	size_t idx[GRID_MAX_FIELDS];
	long rest = i;
	for (size_t f = nf; f-- > 0;) {
		size_t n = json_array_size(vals[f]);
		idx[f] = (size_t)(rest % (long)n);
		rest /= (long)n;
	}
	long pt = 0;
	*spec = json_deep_copy(g->base);
	*point_values = json_object();
	*job_values = json_object();
	enum isif_rc rc = *spec && *point_values && *job_values ? ISIF_OK :
			  isif_fail(err, ISIF_ENOMEM, "out of memory");
	for (size_t f = 0; f < nf && rc == ISIF_OK; f++) {
		json_t *val = json_array_get(vals[f], idx[f]);
		json_object_set(*job_values, keys[f], val);
		if (strcmp(keys[f], GRID_SEED) != 0) {
			json_object_set(*point_values, keys[f], val);
			pt = pt * (long)json_array_size(vals[f]) + (long)idx[f];
		}
		rc = set_path(*spec, keys[f], json_deep_copy(val), err);
	}
	if (rc) {
		json_decref(*spec);
		json_decref(*point_values);
		json_decref(*job_values);
		*spec = *point_values = *job_values = NULL;
		return rc;
	}
	*point = (int)pt;
	return ISIF_OK;
}

void isif_group_csv_field(struct isif_strbuf *b, json_t *v)
{
	char *own = json_is_string(v) ? NULL : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY |
							     JSON_REAL_PRECISION(15));
	const char *s = json_is_string(v) ? json_string_value(v) : own ? own : "";
	if (strpbrk(s, ",\"\r\n")) {
		isif_strbuf_puts(b, "\"");
		for (const char *c = s; *c; c++)
			isif_strbuf_put(b, *c == '"' ? "\"\"" : c, *c == '"' ? 2 : 1);
		isif_strbuf_puts(b, "\"");
	} else {
		isif_strbuf_puts(b, s);
	}
	free(own);
}

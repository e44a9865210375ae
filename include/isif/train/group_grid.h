/*
 * isif/train/group_grid.h — a job group's grid (isifd's POST /groups and
 * `isif group`): checks {"base": spec, "grid": {"dotted.path": [values...],
 * ...}} and expands it into one spec per grid point, in the order of
 * itertools.product over the grid as written (its first field varies
 * slowest). The "seed" field is special only in that a job's point leaves
 * it out: jobs differing only by seed share a point (and its summary). Pure
 * JSON work: each spec is checked by the caller as a single job's is.
 */
#ifndef ISIF_GROUP_GRID_H
#define ISIF_GROUP_GRID_H

#include <jansson.h>

#include "isif/base/common.h"

struct isif_group_grid {
	json_t *base, *grid;   /* borrowed from the body */
	int n_fields;
	long n_jobs;           /* product of the fields' value counts */
	long n_points;         /* the same without "seed" */
};

/* Checks body (the shape above; at most max_jobs jobs) into g: ISIF_EINVAL
 * with a message naming what is wrong (empty grid, a field that is not a
 * dotted path, an empty value list, one field inside another, more than
 * max_jobs jobs, named after the --max-group-jobs flag both tools have). */
enum isif_rc isif_group_grid_check(json_t *body, long max_jobs, struct isif_group_grid *g,
				   struct isif_error *err);

/* Job i (0 <= i < n_jobs): its spec (base with the grid values set, new
 * reference), its point index and that point's values (JSON object, new
 * reference) and all its grid values (new reference). ISIF_EINVAL when a
 * value cannot be set (the base holds a non-object where the path goes). */
enum isif_rc isif_group_grid_job(const struct isif_group_grid *g, long i, json_t **spec,
				 int *point, json_t **point_values, json_t **job_values,
				 struct isif_error *err);

struct isif_strbuf;

/* Appends a grid value (or field name) to a CSV line: a string as is, any
 * other JSON value as compact JSON, quoted ("" for ") when it holds a comma,
 * quote or line break. */
void isif_group_csv_field(struct isif_strbuf *b, json_t *v);

#endif

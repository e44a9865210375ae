/*
 * core/cli/group_report.c — the report of `isif group`: its jobs' metrics
 * read back from their metrics.csv, summarised per grid point with the
 * daemon's code (isif_group_summary), written as DIR/summary.json (the
 * points as GET /groups/{id} has them) and DIR/summary.csv, and printed as
 * a table of one metric.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "isif/base/fileio.h"
#include "isif/base/strbuf.h"
#include "isif/train/group_grid.h"
#include "isif/train/group_summary.h"
#include "isif/train/train.h"

/* A job's epochs from DIR/metrics.csv (none when it has no file yet). */
static void read_metrics(const char *dir, struct isif_epoch_metrics **rows, int *n)
{
	char path[1200];
	void *text = NULL;
	size_t len;
	struct isif_error err = {0};
	*rows = NULL;
	*n = 0;
	snprintf(path, sizeof path, "%s/metrics.csv", dir);
	if (isif_read_file(path, 64 << 20, &text, &len, NULL) != ISIF_OK)
		return;
	if (isif_metrics_csv_parse(text, rows, n, &err))
		fprintf(stderr, "isif group: %s: %s\n", path, err.msg);
	free(text);
}

/* {"point", "values", "jobs": [job numbers], "summary"} of point p. */
static json_t *point_json(int p, const struct cli_group_job *jobs, long n,
			  struct isif_epoch_metrics **rows, const int *nrows)
{
	const struct isif_epoch_metrics **sel = calloc((size_t)n, sizeof *sel);
	int *k = calloc((size_t)n, sizeof *k), m = 0;
	json_t *ids = json_array(), *values = NULL;
	for (long i = 0; sel && k && i < n; i++) {
		if (jobs[i].point != p)
			continue;
		if (!values)
			values = json_loads(jobs[i].point_values, 0, NULL);
		json_array_append_new(ids, json_integer(i + 1));
		sel[m] = rows[i];
		k[m++] = nrows[i];
	}
	json_t *sum = sel && k ? isif_group_summary(sel, k, m) : NULL;
	free(sel);
	free(k);
	return json_pack("{s:i, s:o, s:o, s:o}", "point", p, "values", values ? values : json_null(),
			 "jobs", ids, "summary", sum ? sum : json_null());
}

static json_t *jobs_json(const struct cli_group_job *jobs, long n)
{
	json_t *arr = json_array();
	for (long i = 0; i < n; i++) {
		json_t *v = json_loads(jobs[i].values, 0, NULL);
		json_array_append_new(arr, json_pack("{s:I, s:i, s:o, s:s, s:s}", "job",
						     (json_int_t)(i + 1), "point", jobs[i].point,
						     "values", v ? v : json_null(), "dir", jobs[i].dir,
						     "status", jobs[i].failed ? "failed" : "succeeded"));
	}
	return arr;
}

static const char *const STATS[] = { "mean", "std", "min", "max", "n" };

/* point, the grid fields but seed, epoch, n, then <metric>_<stat>. */
static void summary_csv(struct isif_strbuf *b, json_t *grid, json_t *points)
{
	const char *key;
	json_t *v, *p, *e;
	size_t i, k;
	isif_strbuf_puts(b, "point");
	json_object_foreach(grid, key, v) {
		if (strcmp(key, "seed") == 0)
			continue;
		isif_strbuf_puts(b, ",");
		json_t *name = json_string(key);
		isif_group_csv_field(b, name);
		json_decref(name);
	}
	isif_strbuf_puts(b, ",epoch,n");
	for (int m = 0; m < isif_group_n_metrics; m++)
		for (int s = 0; s < 5; s++)
			isif_strbuf_printf(b, ",%s_%s", isif_group_metrics[m], STATS[s]);
	isif_strbuf_puts(b, "\n");
	json_array_foreach(points, i, p) {
		json_t *values = json_object_get(p, "values");
		json_array_foreach(json_object_get(p, "summary"), k, e) {
			isif_strbuf_printf(b, "%lld", (long long)json_integer_value(json_object_get(p, "point")));
			json_object_foreach(grid, key, v) {
				if (strcmp(key, "seed") == 0)
					continue;
				isif_strbuf_puts(b, ",");
				isif_group_csv_field(b, json_object_get(values, key));
			}
			isif_strbuf_printf(b, ",%lld,%lld",
					   (long long)json_integer_value(json_object_get(e, "epoch")),
					   (long long)json_integer_value(json_object_get(e, "n")));
			for (int m = 0; m < isif_group_n_metrics; m++) {
				json_t *st = json_object_get(e, isif_group_metrics[m]);
				for (int s = 0; s < 5; s++) {
					json_t *x = json_object_get(st, STATS[s]);
					if (json_is_integer(x))
						isif_strbuf_printf(b, ",%lld", (long long)json_integer_value(x));
					else if (json_is_real(x))
						isif_strbuf_printf(b, ",%.15g", json_real_value(x));
					else
						isif_strbuf_puts(b, ",");
				}
			}
			isif_strbuf_puts(b, "\n");
		}
	}
}

/* Fractions print as percentages. */
static bool is_fraction(const char *metric)
{
	return strstr(metric, "top1") || strstr(metric, "top5") || strncmp(metric, "recall", 6) == 0;
}

/* A line per point: its values, then per epoch "mean ± std (n)". */
static void print_table(json_t *points, const char *metric)
{
	size_t i, k;
	json_t *p, *e;
	double scale = is_fraction(metric) ? 100 : 1;
	printf("\n%s%s, mean ± sample std over the seeds (n), per grid point and epoch:\n", metric,
	       scale == 100 ? " (%)" : "");
	json_array_foreach(points, i, p) {
		char *vals = json_dumps(json_object_get(p, "values"), JSON_COMPACT | JSON_ENCODE_ANY |
					JSON_REAL_PRECISION(15));
		printf("point %lld %s\n", (long long)json_integer_value(json_object_get(p, "point")),
		       vals ? vals : "");
		free(vals);
		json_array_foreach(json_object_get(p, "summary"), k, e) {
			json_t *st = json_object_get(e, metric);
			printf("  epoch %3lld", (long long)json_integer_value(json_object_get(e, "epoch")));
			if (json_is_object(st))
				printf("  %9.4f ± %7.4f  (n %lld)  min %9.4f  max %9.4f\n",
				       scale * json_real_value(json_object_get(st, "mean")),
				       scale * json_real_value(json_object_get(st, "std")),
				       (long long)json_integer_value(json_object_get(st, "n")),
				       scale * json_real_value(json_object_get(st, "min")),
				       scale * json_real_value(json_object_get(st, "max")));
			else
				printf("  -\n");
		}
	}
}

static int write_file(const char *out, const char *name, const char *text, size_t len)
{
	char path[1100];
	struct isif_error err = {0};
	struct isif_chunk c = { text, len };
	snprintf(path, sizeof path, "%s/%s", out, name);
	if (isif_write_atomic(path, &c, 1, &err)) {
		fprintf(stderr, "isif group: %s\n", err.msg);
		return 1;
	}
	printf("wrote %s\n", path);
	return 0;
}

int cli_group_report(const char *out, const struct isif_group_grid *g,
		     const struct cli_group_job *jobs, long n, const char *metric)
{
	struct isif_epoch_metrics **rows = calloc((size_t)n, sizeof *rows);
	int *nrows = calloc((size_t)n, sizeof *nrows), rc = 1;
	json_t *points = json_array();
	for (long i = 0; rows && nrows && i < n; i++)
		read_metrics(jobs[i].dir, &rows[i], &nrows[i]);
	for (long p = 0; rows && nrows && p < g->n_points; p++)
		json_array_append_new(points, point_json((int)p, jobs, n, rows, nrows));
	json_t *sum = json_pack("{s:O, s:O, s:I, s:o, s:O}", "base", g->base, "grid", g->grid,
				"n_jobs", (json_int_t)n, "jobs", jobs_json(jobs, n), "points", points);
	char *text = sum ? json_dumps(sum, JSON_INDENT(1) | JSON_REAL_PRECISION(15)) : NULL;
	struct isif_strbuf csv;
	isif_strbuf_init(&csv, 64 << 20);
	summary_csv(&csv, g->grid, points);
	if (text && !csv.failed) {
		print_table(points, metric);
		rc = write_file(out, "summary.json", text, strlen(text)) ||
		     write_file(out, "summary.csv", csv.p, csv.len);
	} else {
		fprintf(stderr, "isif group: out of memory for the summary\n");
	}
	isif_strbuf_free(&csv);
	free(text);
	json_decref(sum);
	json_decref(points);
	for (long i = 0; rows && i < n; i++)
		free(rows[i]);
	free(rows);
	free(nrows);
	return rc;
}

/*
 * server/groupsum.c — per-epoch mean, std, min and max of a grid point's
 * jobs (see groupsum.h).
 */
#include "groupsum.h"

#include <math.h>
#include <stdlib.h>

const char *const groupsum_metrics[] = {
	"loss", "knn_top1", "knn_top5", "lr", "seconds", "images_per_sec",
	"recall_at_1", "recall_at_2", "recall_at_4", "recall_at_8", "nmi", "data_wait",
};
const int groupsum_n_metrics = (int)(sizeof groupsum_metrics / sizeof groupsum_metrics[0]);

bool groupsum_value(const struct metrics_row *r, int m, double *v)
{
	switch (m) {
	case 0: *v = r->loss; return true;
	case 1: *v = r->knn_top1; return r->has_knn;
	case 2: *v = r->knn_top5; return r->has_knn;
	case 3: *v = r->lr; return true;
	case 4: *v = r->seconds; return true;
	case 5: *v = r->images_per_sec; return true;
	case 6: case 7: case 8: case 9: *v = r->recall_at[m - 6]; return r->has_knn && r->unseen;
	case 10: *v = r->nmi; return r->has_knn && r->unseen;
	case 11: *v = r->data_wait; return !isnan(r->data_wait);
	default: return false;
	}
}

/* {"mean", "std", "min", "max", "n"} of v[0..n), or null when n == 0.
 * Two passes: the std is not the difference of two large sums. */
static json_t *stats(const double *v, int n)
{
	if (n == 0)
		return json_null();
	double sum = 0, lo = v[0], hi = v[0];
	for (int i = 0; i < n; i++) {
		sum += v[i];
		lo = v[i] < lo ? v[i] : lo;
		hi = v[i] > hi ? v[i] : hi;
	}
	double mean = sum / n, ss = 0;
	for (int i = 0; i < n; i++)
		ss += (v[i] - mean) * (v[i] - mean);
	double sd = n > 1 ? sqrt(ss / (n - 1)) : 0.0;
	return json_pack("{s:f, s:f, s:f, s:f, s:i}", "mean", mean, "std", sd, "min", lo, "max",
			 hi, "n", n);
}

/* The row of epoch e among rows[0..n) (ascending), or NULL. */
static const struct metrics_row *row_of(const struct metrics_row *rows, int n, int e)
{
	for (int i = 0; i < n; i++)
		if (rows[i].epoch == e)
			return &rows[i];
	return NULL;
}

json_t *groupsum_point(struct metrics_row *const *rows, const int *n, int jobs)
{
	int last = 0;
	for (int j = 0; j < jobs; j++)
		if (n[j] > 0 && rows[j][n[j] - 1].epoch > last)
			last = rows[j][n[j] - 1].epoch;
	json_t *out = json_array();
	double *v = malloc(sizeof *v * (size_t)(jobs > 0 ? jobs : 1));
	const struct metrics_row **at = malloc(sizeof *at * (size_t)(jobs > 0 ? jobs : 1));
	if (!out || !v || !at) {
		json_decref(out);
		free(v);
		free(at);
		return NULL;
	}
	for (int e = 1; e <= last; e++) {
		int have = 0;
		for (int j = 0; j < jobs; j++)
			have += (at[j] = row_of(rows[j], n[j], e)) != NULL;
		if (have == 0)
			continue;
		json_t *ep = json_pack("{s:i, s:i}", "epoch", e, "n", have);
		for (int m = 0; m < groupsum_n_metrics; m++) {
			int k = 0;
			for (int j = 0; j < jobs; j++)
				if (at[j] && groupsum_value(at[j], m, &v[k]))
					k++;
			json_object_set_new(ep, groupsum_metrics[m], stats(v, k));
		}
		json_array_append_new(out, ep);
	}
	free(v);
	free(at);
	return out;
}

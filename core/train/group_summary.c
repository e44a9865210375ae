/*
 * core/train/group_summary.c — per-epoch mean, std, min and max of a grid
 * point's jobs (see isif/train/group_summary.h).
 */
#include "isif/train/group_summary.h"

#include <math.h>
#include <stdlib.h>

const char *const isif_group_metrics[] = {
	"loss", "knn_top1", "knn_top5", "lr", "seconds", "images_per_sec",
	"recall_at_1", "recall_at_2", "recall_at_4", "recall_at_8", "nmi", "data_wait",
	"probe_top1", "probe_backbone_top1",
};
const int isif_group_n_metrics = (int)(sizeof isif_group_metrics / sizeof isif_group_metrics[0]);

bool isif_group_metric(const struct isif_epoch_metrics *m, int k, double *v)
{
	switch (k) {
	case 0: *v = m->loss; return true;
	case 1: *v = m->knn_top1; return m->has_knn;
	case 2: *v = m->knn_top5; return m->has_knn;
	case 3: *v = m->lr; return true;
	case 4: *v = m->seconds; return true;
	case 5: *v = m->images_per_sec; return true;
	case 6: case 7: case 8: case 9:
		*v = m->recall_at[k - 6];
		return m->unseen;   /* set only in the epochs the protocol evaluated */
	case 10: *v = m->nmi; return m->unseen;
	case 11: *v = m->data_wait_frac; return !isnan(*v);
	case 12: *v = m->probe_top1; return m->has_probe;
	case 13: *v = m->probe_backbone_top1; return m->has_probe;
	default: return false;
	}
}

void isif_group_stats_of(const double *v, int n, struct isif_group_stats *out)
{
	*out = (struct isif_group_stats){0};
	if (n <= 0)
		return;
	double sum = 0, lo = v[0], hi = v[0];
	for (int i = 0; i < n; i++) {
		sum += v[i];
		lo = v[i] < lo ? v[i] : lo;
		hi = v[i] > hi ? v[i] : hi;
	}
	double mean = sum / n, ss = 0;
	for (int i = 0; i < n; i++)
		ss += (v[i] - mean) * (v[i] - mean);
	*out = (struct isif_group_stats){
		.mean = mean, .std = n > 1 ? sqrt(ss / (n - 1)) : 0.0, .min = lo, .max = hi, .n = n,
	};
}

/* {"mean", "std", "min", "max", "n"} of v[0..n), or null when n == 0. */
static json_t *stats_json(const double *v, int n)
{
	struct isif_group_stats s;
	isif_group_stats_of(v, n, &s);
	if (s.n == 0)
		return json_null();
	return json_pack("{s:f, s:f, s:f, s:f, s:i}", "mean", s.mean, "std", s.std, "min", s.min,
			 "max", s.max, "n", s.n);
}

/* The row of epoch e among rows[0..n) (ascending), or NULL. */
static const struct isif_epoch_metrics *row_of(const struct isif_epoch_metrics *rows, int n,
					       int e)
{
	for (int i = 0; i < n; i++)
		if (rows[i].epoch == e)
			return &rows[i];
	return NULL;
}

/* The summary entry of epoch e over at[0..jobs) (NULL: a job without it). */
static json_t *epoch_json(int e, const struct isif_epoch_metrics *const *at, int jobs, int have,
			  double *v)
{
	json_t *ep = json_pack("{s:i, s:i}", "epoch", e, "n", have);
	for (int m = 0; ep && m < isif_group_n_metrics; m++) {
		int k = 0;
		for (int j = 0; j < jobs; j++)
			if (at[j] && isif_group_metric(at[j], m, &v[k]))
				k++;
		json_object_set_new(ep, isif_group_metrics[m], stats_json(v, k));
	}
	return ep;
}

json_t *isif_group_summary(const struct isif_epoch_metrics *const *rows, const int *n, int jobs)
{
	int last = 0;
	for (int j = 0; j < jobs; j++)
		if (n[j] > 0 && rows[j][n[j] - 1].epoch > last)
			last = rows[j][n[j] - 1].epoch;
	json_t *out = json_array();
	double *v = malloc(sizeof *v * (size_t)(jobs > 0 ? jobs : 1));
	const struct isif_epoch_metrics **at = malloc(sizeof *at * (size_t)(jobs > 0 ? jobs : 1));
	bool ok = out && v && at;
	for (int e = 1; ok && e <= last; e++) {
		int have = 0;
		for (int j = 0; j < jobs; j++)
			have += (at[j] = row_of(rows[j], n[j], e)) != NULL;
		if (have == 0)
			continue;
		json_t *ep = epoch_json(e, at, jobs, have, v);
		ok = ep && json_array_append_new(out, ep) == 0;
	}
	free(v);
	free(at);
	if (!ok) {
		json_decref(out);
		return NULL;
	}
	return out;
}

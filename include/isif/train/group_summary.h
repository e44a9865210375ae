/*
 * isif/train/group_summary.h — the per-epoch summary of one grid point of a
 * job group (isifd's GET /groups/{id}, `isif group`): for each epoch and
 * each metric of the jobs' epoch metrics, the mean, sample standard
 * deviation (n − 1 denominator; 0 for one value), minimum and maximum over
 * the point's jobs (its seeds) that have that epoch and that metric.
 */
#ifndef ISIF_GROUP_SUMMARY_H
#define ISIF_GROUP_SUMMARY_H

#include <stdbool.h>

#include <jansson.h>

#include "isif/train/train.h"

/* The metrics a summary covers, in order (names as in the metrics CSV). */
extern const char *const isif_group_metrics[];
extern const int isif_group_n_metrics;

/* Metric k of m into *v; false when the epoch lacks it (no kNN that epoch,
 * not the unseen-category protocol, no probe, data_wait not recorded: NAN). */
bool isif_group_metric(const struct isif_epoch_metrics *m, int k, double *v);

struct isif_group_stats {
	double mean, std, min, max;   /* std: sample (n − 1), 0 when n == 1 */
	int n;                        /* values; 0: the rest is 0 */
};

/* The statistics of v[0..n) (two passes: the std is not the difference of
 * two large sums). */
void isif_group_stats_of(const double *v, int n, struct isif_group_stats *out);

/* [{"epoch": E, "n": jobs with that epoch, "loss": {"mean", "std", "min",
 * "max", "n"} | null, ...}, ...] ascending, over jobs' rows (rows[j]: n[j]
 * epochs ascending). New reference; NULL on ENOMEM. */
json_t *isif_group_summary(const struct isif_epoch_metrics *const *rows, const int *n, int jobs);

#endif

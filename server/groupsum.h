/*
 * server/groupsum.h — the per-epoch summary of one grid point of a job
 * group: for each epoch and each metric of the metrics rows, the mean,
 * sample standard deviation (n − 1 denominator; 0 for one value), minimum
 * and maximum over the point's jobs (its seeds) that have that epoch and
 * that metric.
 */
#ifndef ISIFD_GROUPSUM_H
#define ISIFD_GROUPSUM_H

#include <jansson.h>

#include "store.h"

/* The metrics a summary covers, in order (names as in a metrics row). */
extern const char *const groupsum_metrics[];
extern const int groupsum_n_metrics;

/* Metric m of row r into *v; false when the row lacks it (no kNN that
 * epoch, not the unseen-category protocol, data_wait not recorded). */
bool groupsum_value(const struct metrics_row *r, int m, double *v);

/* [{"epoch": E, "n": jobs with that epoch, "loss": {"mean", "std", "min",
 * "max", "n"} | null, ...}, ...] ascending, over jobs' rows (rows[j]: n[j]
 * rows ascending by epoch). New reference; NULL on ENOMEM. */
json_t *groupsum_point(struct metrics_row *const *rows, const int *n, int jobs);

#endif

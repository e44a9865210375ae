/*
 * tests/unit/test_group.c — job groups' shared engine code (isifd's
 * POST /groups and `isif group`): the grid's expansion (itertools.product
 * order, the seed left out of the point, the values set at their dotted
 * paths), its refusals, the summary statistics and the per-point summary
 * against hand-computed mean / sample std / min / max, and the metrics CSV
 * read back as it was written.
 */
#include "check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "isif/base/strbuf.h"
#include "isif/train/group_grid.h"
#include "isif/train/group_summary.h"
#include "isif/train/train.h"

static json_t *parse(const char *text)
{
	json_t *j = json_loads(text, 0, NULL);
	CHECK_MSG(j != NULL, "bad test JSON: %s", text);
	return j;
}

TEST(group_grid_product_order_and_points)
{
	json_t *body = parse("{\"base\": {\"dataset\": \"d\", \"lr_schedule\": {\"type\": \"step\"}},"
			     " \"grid\": {\"seed\": [1, 2], \"lr_schedule.type\": [\"constant\", "
			     "\"cosine\", \"step\"], \"augment.crop_scale\": [[0.2, 1], [0.5, 1]]}}");
	struct isif_group_grid g;
	struct isif_error err = {0};
	CHECK_EQ(isif_group_grid_check(body, 12, &g, &err), ISIF_OK);
	CHECK_EQ(g.n_jobs, 12);
	CHECK_EQ(g.n_points, 6);
	/* job 7 = seed index 1, type index 0, crop index 1 (last field fastest) */
	json_t *spec, *pv, *jv;
	int point;
	CHECK_EQ(isif_group_grid_job(&g, 7, &spec, &point, &pv, &jv, &err), ISIF_OK);
	CHECK_EQ(point, 1);   /* type 0, crop 1 without the seed */
	CHECK_EQ(json_integer_value(json_object_get(spec, "seed")), 2);
	CHECK(strcmp(json_string_value(json_object_get(json_object_get(spec, "lr_schedule"), "type")),
		     "constant") == 0);
	CHECK_NEAR(json_real_value(json_array_get(json_object_get(json_object_get(spec, "augment"),
								    "crop_scale"), 0)), 0.5, 0);
	CHECK_EQ(json_object_size(pv), 2);
	CHECK(json_object_get(pv, "seed") == NULL);
	CHECK_EQ(json_object_size(jv), 3);
	CHECK_EQ(json_integer_value(json_object_get(jv, "seed")), 2);
	/* the base is not changed by an expansion */
	CHECK(strcmp(json_string_value(json_object_get(json_object_get(g.base, "lr_schedule"),
						       "type")), "step") == 0);
	json_decref(spec);
	json_decref(pv);
	json_decref(jv);
	/* every point index appears twice (two seeds), each in [0, 6) */
	int seen[6] = {0};
	for (long i = 0; i < g.n_jobs; i++) {
		CHECK_EQ(isif_group_grid_job(&g, i, &spec, &point, &pv, &jv, &err), ISIF_OK);
		CHECK(point >= 0 && point < 6);
		seen[point]++;
		json_decref(spec);
		json_decref(pv);
		json_decref(jv);
	}
	for (int p = 0; p < 6; p++)
		CHECK_EQ(seen[p], 2);
	json_decref(body);
}

static void refused(const char *text, long max_jobs, const char *want)
{
	json_t *body = parse(text);
	struct isif_group_grid g;
	struct isif_error err = {0};
	CHECK_EQ(isif_group_grid_check(body, max_jobs, &g, &err), ISIF_EINVAL);
	CHECK_MSG(strstr(err.msg, want) != NULL, "%s: got \"%s\", want \"%s\"", text, err.msg, want);
	json_decref(body);
}

TEST(group_grid_refusals)
{
	refused("[]", 64, "the body must be a JSON object");
	refused("{\"base\": {}}", 64, "grid: must be a non-empty object");
	refused("{\"base\": {}, \"grid\": {}}", 64, "grid: must be a non-empty object");
	refused("{\"base\": 1, \"grid\": {\"seed\": [1]}}", 64, "base: must be a job spec");
	refused("{\"base\": {}, \"grid\": {\"seed\": 1}}", 64, "grid.seed: must be a non-empty array");
	refused("{\"base\": {}, \"grid\": {\"seed\": []}}", 64, "grid.seed: must be a non-empty array");
	refused("{\"base\": {}, \"grid\": {\"a.\": [1]}}", 64, "is not a spec field's dotted path");
	refused("{\"base\": {}, \"grid\": {\"a b\": [1]}}", 64, "is not a spec field's dotted path");
	refused("{\"base\": {}, \"grid\": {\"augment\": [{}], \"augment.hflip\": [0]}}", 64,
		"grid.augment.hflip: inside grid.augment");
	refused("{\"base\": {}, \"grid\": {\"seed\": [1, 2, 3], \"lr\": [1, 2, 3]}}", 8,
		"more than 8 jobs");
	refused("{\"base\": {}, \"grid\": {\"seed\": [1]}, \"x\": 1}", 8, "x: unknown field");
	/* a product that would overflow is refused, not wrapped */
	char big[4096] = "{\"base\": {}, \"grid\": {";
	for (int f = 0; f < 20; f++) {
		char one[160];
		snprintf(one, sizeof one, "%s\"f%d\": [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]",
			 f ? ", " : "", f);
		strcat(big, one);
	}
	strcat(big, "}}");
	refused(big, 10000, "more than 10000 jobs");
	/* a path through a value the base holds */
	json_t *body = parse("{\"base\": {\"augment\": 3}, \"grid\": {\"augment.hflip\": [0]}}");
	struct isif_group_grid g;
	struct isif_error err = {0};
	json_t *spec, *pv, *jv;
	int point;
	CHECK_EQ(isif_group_grid_check(body, 8, &g, &err), ISIF_OK);
	CHECK_EQ(isif_group_grid_job(&g, 0, &spec, &point, &pv, &jv, &err), ISIF_EINVAL);
	CHECK_MSG(strstr(err.msg, "grid.augment.hflip: augment is not an object") != NULL, "%s",
		  err.msg);
	json_decref(body);
}

TEST(group_stats_hand_values)
{
	struct isif_group_stats s;
	/* mean 5; squares 9+1+1+1+0+0+4+16 = 32 over n − 1 = 7 */
	const double v[] = {2, 4, 4, 4, 5, 5, 7, 9};
	isif_group_stats_of(v, 8, &s);
	CHECK_EQ(s.n, 8);
	CHECK_NEAR(s.mean, 5.0, 1e-15);
	CHECK_NEAR(s.std, sqrt(32.0 / 7.0), 1e-15);
	CHECK_NEAR(s.min, 2.0, 0);
	CHECK_NEAR(s.max, 9.0, 0);
	/* large offset: a one-pass sum of squares would lose the std of 1 */
	const double big[] = {1e9 + 1, 1e9 + 2, 1e9 + 3};
	isif_group_stats_of(big, 3, &s);
	CHECK_NEAR(s.mean, 1e9 + 2, 1e-6);
	CHECK_NEAR(s.std, 1.0, 1e-9);
	/* one value: std 0; none: all zero */
	isif_group_stats_of(v + 6, 1, &s);
	CHECK_EQ(s.n, 1);
	CHECK_NEAR(s.std, 0.0, 0);
	CHECK_NEAR(s.mean, 7.0, 0);
	isif_group_stats_of(v, 0, &s);
	CHECK_EQ(s.n, 0);
	CHECK_NEAR(s.mean, 0.0, 0);
}

static struct isif_epoch_metrics row(int epoch, double loss, bool knn, double top1)
{
	return (struct isif_epoch_metrics){.epoch = epoch, .loss = loss, .has_knn = knn,
					   .knn_top1 = top1, .data_wait_frac = NAN};
}

static double field(json_t *epoch, const char *metric, const char *what)
{
	return json_real_value(json_object_get(json_object_get(epoch, metric), what));
}

TEST(group_summary_hand_values)
{
	/* three seeds; the third lacks epoch 2 (still running), epoch 1 has no kNN in one */
	struct isif_epoch_metrics a[] = {row(1, 5.0, true, 0.60), row(2, 4.0, true, 0.70)};
	struct isif_epoch_metrics b[] = {row(1, 6.0, true, 0.64), row(2, 5.0, true, 0.74)};
	struct isif_epoch_metrics c[] = {row(1, 7.0, false, 0.0)};
	a[1].has_probe = b[1].has_probe = true;
	a[1].probe_top1 = 0.80;
	b[1].probe_top1 = 0.86;
	a[0].data_wait_frac = 0.25;
	const struct isif_epoch_metrics *rows[] = {a, b, c};
	int n[] = {2, 2, 1};
	json_t *s = isif_group_summary(rows, n, 3);
	CHECK_EQ(json_array_size(s), 2);
	json_t *e1 = json_array_get(s, 0), *e2 = json_array_get(s, 1);
	CHECK_EQ(json_integer_value(json_object_get(e1, "epoch")), 1);
	CHECK_EQ(json_integer_value(json_object_get(e1, "n")), 3);
	CHECK_NEAR(field(e1, "loss", "mean"), 6.0, 1e-12);
	CHECK_NEAR(field(e1, "loss", "std"), 1.0, 1e-12);  /* sqrt(2/2) */
	CHECK_NEAR(field(e1, "loss", "min"), 5.0, 0);
	CHECK_NEAR(field(e1, "loss", "max"), 7.0, 0);
	CHECK_EQ(json_integer_value(json_object_get(json_object_get(e1, "knn_top1"), "n")), 2);
	CHECK_NEAR(field(e1, "knn_top1", "mean"), 0.62, 1e-12);
	CHECK_NEAR(field(e1, "knn_top1", "std"), sqrt(0.0008), 1e-12);
	CHECK(json_is_null(json_object_get(e1, "nmi")));
	CHECK(json_is_null(json_object_get(e1, "recall_at_1")));
	CHECK(json_is_null(json_object_get(e1, "probe_top1")));
	/* data_wait recorded by one job only */
	CHECK_EQ(json_integer_value(json_object_get(json_object_get(e1, "data_wait"), "n")), 1);
	CHECK_NEAR(field(e1, "data_wait", "mean"), 0.25, 0);
	CHECK_EQ(json_integer_value(json_object_get(e2, "n")), 2);
	CHECK_NEAR(field(e2, "loss", "mean"), 4.5, 1e-12);
	CHECK_NEAR(field(e2, "probe_top1", "mean"), 0.83, 1e-12);
	CHECK_NEAR(field(e2, "probe_top1", "std"), sqrt(0.0018), 1e-12);
	CHECK(json_is_null(json_object_get(e2, "data_wait")));
	json_decref(s);
	/* one job: std 0 */
	s = isif_group_summary(rows, n, 1);
	CHECK_NEAR(field(json_array_get(s, 0), "loss", "std"), 0.0, 0);
	json_decref(s);
	/* a job with no epochs yet, and epochs with a gap (3 but not 2) */
	struct isif_epoch_metrics d[] = {row(1, 2.0, true, 0.5), row(3, 1.0, true, 0.9)};
	const struct isif_epoch_metrics *rows2[] = {d, c};
	int n2[] = {2, 0};
	s = isif_group_summary(rows2, n2, 2);
	CHECK_EQ(json_array_size(s), 2);
	CHECK_EQ(json_integer_value(json_object_get(json_array_get(s, 1), "epoch")), 3);
	CHECK_EQ(json_integer_value(json_object_get(json_array_get(s, 1), "n")), 1);
	json_decref(s);
}

TEST(group_summary_unseen_protocol)
{
	/* recall and NMI are summarised where the protocol evaluated (unseen),
	 * though such epochs have no kNN accuracy */
	struct isif_epoch_metrics a = row(1, 3.0, false, 0), b = row(1, 3.5, false, 0);
	a.unseen = b.unseen = true;
	a.recall_at[0] = 0.40;
	b.recall_at[0] = 0.50;
	a.nmi = 0.30;
	b.nmi = 0.36;
	const struct isif_epoch_metrics *rows[] = {&a, &b};
	int n[] = {1, 1};
	json_t *s = isif_group_summary(rows, n, 2);
	json_t *e = json_array_get(s, 0);
	CHECK_NEAR(field(e, "recall_at_1", "mean"), 0.45, 1e-12);
	CHECK_NEAR(field(e, "recall_at_1", "std"), sqrt(0.005), 1e-12);
	CHECK_NEAR(field(e, "nmi", "max"), 0.36, 0);
	CHECK(json_is_null(json_object_get(e, "knn_top1")));
	json_decref(s);
}

TEST(group_metrics_csv_read_back)
{
	struct isif_strbuf b;
	isif_strbuf_init(&b, 1 << 20);
	isif_metrics_csv_header(&b);
	struct isif_epoch_metrics w[3] = {row(1, 5.25, true, 0.625), row(2, 4.5, false, 0),
					  row(3, 4.0, true, 0.75)};
	w[0].knn_top5 = 0.9;
	w[0].lr = 0.03;
	w[1].data_wait_frac = 0.125;
	w[2].has_probe = true;
	w[2].probe_top1 = 0.8;
	w[2].probe_backbone_top1 = 0.85;
	for (int i = 0; i < 3; i++)
		isif_metrics_csv_row(&b, &w[i]);
	size_t len;
	char *text = isif_strbuf_take(&b, &len);
	struct isif_epoch_metrics *r;
	int n;
	struct isif_error err = {0};
	CHECK_EQ(isif_metrics_csv_parse(text, &r, &n, &err), ISIF_OK);
	CHECK_EQ(n, 3);
	if (n == 3) {
		CHECK_EQ(r[0].epoch, 1);
		CHECK(r[0].has_knn && !r[1].has_knn && r[2].has_knn);
		CHECK_NEAR(r[0].knn_top1, 0.625, 0);
		CHECK_NEAR(r[0].knn_top5, 0.9, 0);
		CHECK_NEAR(r[0].lr, 0.03, 0);
		CHECK_NEAR(r[1].loss, 4.5, 0);
		CHECK(isnan(r[0].data_wait_frac));
		CHECK_NEAR(r[1].data_wait_frac, 0.125, 0);
		CHECK(!r[0].unseen && !r[0].has_probe && r[2].has_probe);
		CHECK_NEAR(r[2].probe_backbone_top1, 0.85, 0);
	}
	free(r);
	free(text);
	/* a short line is refused naming it */
	CHECK_EQ(isif_metrics_csv_parse("epoch,loss\n1,2\n2\n", &r, &n, &err), ISIF_EINVAL);
	CHECK_MSG(strstr(err.msg, "line 3") != NULL, "%s", err.msg);
	CHECK(r == NULL && n == 0);
	CHECK_EQ(isif_metrics_csv_parse("loss\n1\n", &r, &n, &err), ISIF_EINVAL);
	CHECK_EQ(isif_metrics_csv_parse("epoch,loss\n1,abc\n", &r, &n, &err), ISIF_EINVAL);
	/* an epoch the summary would loop up to is bounded (the spec's 10000) */
	CHECK_EQ(isif_metrics_csv_parse("epoch,loss\n2000000000,1\n", &r, &n, &err), ISIF_EINVAL);
	CHECK_EQ(isif_metrics_csv_parse("epoch,loss\n1.5,1\n", &r, &n, &err), ISIF_EINVAL);
	CHECK_EQ(isif_metrics_csv_parse("epoch,loss\n10000,1\n", &r, &n, &err), ISIF_OK);
	free(r);
}

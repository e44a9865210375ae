/*
 * tests/server/test_groups.c — job groups without a daemon: the grid's
 * expansion (itertools.product order, the seed left out of the point, the
 * values set at their dotted paths), its refusals, the per-point summary
 * against hand-computed mean / sample std / min / max, and the store's
 * all-or-nothing group insert.
 */
#include "../unit/check.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "groupgrid.h"
#include "groupsum.h"
#include "migrations.h"
#include "store_groups.h"

static json_t *parse(const char *text)
{
	json_t *j = json_loads(text, 0, NULL);
	CHECK_MSG(j != NULL, "bad test JSON: %s", text);
	return j;
}

TEST(srv_groups_grid_product_order_and_points)
{
	json_t *body = parse("{\"base\": {\"dataset\": \"d\", \"lr_schedule\": {\"type\": \"step\"}},"
			     " \"grid\": {\"seed\": [1, 2], \"lr_schedule.type\": [\"constant\", "
			     "\"cosine\", \"step\"], \"augment.crop_scale\": [[0.2, 1], [0.5, 1]]}}");
	struct group_grid g;
	struct isif_error err = {0};
	CHECK_EQ(groupgrid_check(body, 12, &g, &err), ISIF_OK);
	CHECK_EQ(g.n_jobs, 12);
	CHECK_EQ(g.n_points, 6);
	/* job 7 = seed index 1, type index 0, crop index 1 (last field fastest) */
	json_t *spec, *pv, *jv;
	int point;
	CHECK_EQ(groupgrid_job(&g, 7, &spec, &point, &pv, &jv, &err), ISIF_OK);
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
		CHECK_EQ(groupgrid_job(&g, i, &spec, &point, &pv, &jv, &err), ISIF_OK);
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
	struct group_grid g;
	struct isif_error err = {0};
	CHECK_EQ(groupgrid_check(body, max_jobs, &g, &err), ISIF_EINVAL);
	CHECK_MSG(strstr(err.msg, want) != NULL, "%s: got \"%s\", want \"%s\"", text, err.msg, want);
	json_decref(body);
}

TEST(srv_groups_grid_refusals)
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
	struct group_grid g;
	struct isif_error err = {0};
	json_t *spec, *pv, *jv;
	int point;
	CHECK_EQ(groupgrid_check(body, 8, &g, &err), ISIF_OK);
	CHECK_EQ(groupgrid_job(&g, 0, &spec, &point, &pv, &jv, &err), ISIF_EINVAL);
	CHECK_MSG(strstr(err.msg, "grid.augment.hflip: augment is not an object") != NULL, "%s",
		  err.msg);
	json_decref(body);
}

static struct metrics_row row(int epoch, double loss, bool knn, double top1)
{
	return (struct metrics_row){.epoch = epoch, .loss = loss, .has_knn = knn,
				    .knn_top1 = top1, .data_wait = NAN};
}

TEST(srv_groups_summary_hand_values)
{
	/* three seeds; the third lacks epoch 2 (still running), epoch 1 has no kNN in one */
	struct metrics_row a[] = {row(1, 5.0, true, 0.60), row(2, 4.0, true, 0.70)};
	struct metrics_row b[] = {row(1, 6.0, true, 0.64), row(2, 5.0, true, 0.74)};
	struct metrics_row c[] = {row(1, 7.0, false, 0.0)};
	struct metrics_row *rows[] = {a, b, c};
	int n[] = {2, 2, 1};
	json_t *s = groupsum_point(rows, n, 3);
	CHECK_EQ(json_array_size(s), 2);
	json_t *e1 = json_array_get(s, 0), *e2 = json_array_get(s, 1);
	CHECK_EQ(json_integer_value(json_object_get(e1, "n")), 3);
	json_t *loss = json_object_get(e1, "loss");
	CHECK_NEAR(json_real_value(json_object_get(loss, "mean")), 6.0, 1e-12);
	CHECK_NEAR(json_real_value(json_object_get(loss, "std")), 1.0, 1e-12);  /* sqrt(2/2) */
	CHECK_NEAR(json_real_value(json_object_get(loss, "min")), 5.0, 0);
	CHECK_NEAR(json_real_value(json_object_get(loss, "max")), 7.0, 0);
	json_t *top1 = json_object_get(e1, "knn_top1");
	CHECK_EQ(json_integer_value(json_object_get(top1, "n")), 2);
	CHECK_NEAR(json_real_value(json_object_get(top1, "mean")), 0.62, 1e-12);
	CHECK_NEAR(json_real_value(json_object_get(top1, "std")), sqrt(0.0008), 1e-12);
	CHECK(json_is_null(json_object_get(e1, "nmi")));
	CHECK(json_is_null(json_object_get(e1, "data_wait")));
	CHECK_EQ(json_integer_value(json_object_get(e2, "n")), 2);
	CHECK_NEAR(json_real_value(json_object_get(json_object_get(e2, "loss"), "mean")), 4.5, 1e-12);
	json_decref(s);
	/* one job: std 0 */
	s = groupsum_point(rows, n, 1);
	CHECK_NEAR(json_real_value(json_object_get(json_object_get(json_array_get(s, 0), "loss"),
						   "std")), 0.0, 0);
	json_decref(s);
}

TEST(srv_groups_store_all_or_nothing)
{
	char path[512];
	struct isif_error err = {0};
	struct store *st = NULL;
	snprintf(path, sizeof path, "%s/groups.db", test_tmpdir());
	unlink(path);
	CHECK_EQ(store_open(&st, path, isifd_migrations, isifd_n_migrations, &err), ISIF_OK);
	struct group_job_in jobs[3];
	for (int i = 0; i < 3; i++)
		jobs[i] = (struct group_job_in){"{}", "d", 1, -1, i % 2, "{}", "{}"};
	int64_t gid = 0, ids[3];
	/* 2 may wait: a group of 3 is refused whole */
	CHECK_EQ(store_group_create(st, "{}", "{}", jobs, 3, 0, 2, &gid, ids, &err), ISIF_EBUSY);
	json_t *list;
	CHECK_EQ(store_groups_json(st, 10, &list, &err), ISIF_OK);
	CHECK_EQ(json_array_size(json_object_get(list, "groups")), 0);
	json_decref(list);
	CHECK_EQ(store_group_create(st, "{}", "{\"seed\":[1]}", jobs, 3, 0, 3, &gid, ids, &err),
		 ISIF_OK);
	json_t *g;
	struct group_member *m;
	int n;
	CHECK_EQ(store_group_get(st, gid, &g, &m, &n, &err), ISIF_OK);
	CHECK_EQ(n, 3);
	CHECK_EQ(m[0].point, 0);   /* by point, then job */
	CHECK_EQ(m[1].point, 0);
	CHECK_EQ(m[2].job, ids[1]);
	group_members_free(m, n);
	json_decref(g);
	CHECK_EQ(store_groups_json(st, 10, &list, &err), ISIF_OK);
	json_t *one = json_array_get(json_object_get(list, "groups"), 0);
	CHECK_EQ(json_integer_value(json_object_get(one, "n_jobs")), 3);
	CHECK_EQ(json_integer_value(json_object_get(json_object_get(one, "status"), "queued")), 3);
	json_decref(list);
	CHECK_EQ(store_group_delete(st, gid + 1, &err), ISIF_ENOTFOUND);
	/* a deleted group's id is never given again (its URL stays dead) */
	CHECK_EQ(store_group_delete(st, gid, &err), ISIF_OK);
	int64_t again = 0;
	CHECK_EQ(store_group_create(st, "{}", "{}", jobs, 1, 0, 100, &again, ids, &err), ISIF_OK);
	CHECK_EQ(again, gid + 1);
	store_close(st);
}

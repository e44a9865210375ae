/*
 * tests/server/test_groups.c — the store's all-or-nothing group insert (the
 * grid's expansion and the summary, shared with `isif group`, are tested in
 * tests/unit/test_group.c).
 */
#include "../unit/check.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "migrations.h"
#include "store_groups.h"

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

/*
 * server/store_groups.h — SQL of job groups (migration 010: groups,
 * group_jobs) on the store's connection: a group and all its jobs are
 * created in one transaction; the jobs themselves are ordinary rows of
 * `jobs` (the scheduler runs them as any other).
 */
#ifndef ISIFD_STORE_GROUPS_H
#define ISIFD_STORE_GROUPS_H

#include <jansson.h>
#include <stdint.h>

#include "store.h"

/* One job of a new group: its canonical spec and where it sits in the grid. */
struct group_job_in {
	const char *spec_json, *dataset;
	int epochs;
	int64_t memory_estimate;    /* bytes; < 0: unknown */
	int point;                  /* grid point, seed left out */
	const char *point_values;   /* JSON object: that point's grid values */
	const char *job_values;     /* JSON object: all of the job's grid values */
};

/* A job of a stored group (strings owned; group_members_free). */
struct group_member {
	int64_t job;
	int point;
	char *point_values, *job_values;
};

/* Inserts the group and its n jobs (queued) in one transaction, unless
 * fewer than n more jobs may wait (max_queued: ISIF_EBUSY, nothing made).
 * ids[i] gets job i's id. */
enum isif_rc store_group_create(struct store *st, const char *base, const char *grid,
				const struct group_job_in *jobs, int n, int priority,
				long max_queued, int64_t *group_id, int64_t *ids,
				struct isif_error *err);

/* The group's {"id", "base", "grid", "created_at"} (new reference) and its
 * jobs, by point then job id; ISIF_ENOTFOUND for an unknown group. */
enum isif_rc store_group_get(struct store *st, int64_t id, json_t **group,
			     struct group_member **members, int *n, struct isif_error *err);
void group_members_free(struct group_member *m, int n);

/* {"groups": [{"id", "base", "grid", "created_at", "n_jobs": N,
 * "status": {"queued": n, ...}}, ...]} newest first, at most limit. */
enum isif_rc store_groups_json(struct store *st, int limit, json_t **out, struct isif_error *err);

/* Removes the group's row (its group_jobs rows go with it; the jobs must
 * have been deleted first). ISIF_ENOTFOUND for an unknown group. */
enum isif_rc store_group_delete(struct store *st, int64_t id, struct isif_error *err);

#endif

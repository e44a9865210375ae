/*
 * tests/unit/test_team.c — the ops' thread team (core/base/team.c): every member
 * runs each job once with its own rank, team_for covers every index exactly
 * once in aligned ranges, the barrier orders writes before reads across
 * members, many jobs in a row reuse the same threads, and a NULL or
 * one-member team runs on the caller.
 */
#include <stdatomic.h>
#include <string.h>

#include "base/team_impl.h"
#include "check.h"

struct rank_job {
	atomic_int calls;
	int seen[8], size[8];
};

static void record_rank(void *p, int rank, int size)
{
	struct rank_job *j = p;
	atomic_fetch_add(&j->calls, 1);
	j->seen[rank]++;
	j->size[rank] = size;
}

TEST(team_runs_every_member_once_per_job)
{
	for (int n = 1; n <= 4; n++) {
		struct team *t = team_create(n);
		CHECK(t != NULL);
		CHECK_EQ(team_size(t), n);
		for (int rep = 0; rep < 200; rep++) {
			struct rank_job j = { 0 };
			team_run(t, record_rank, &j);
			CHECK_EQ(atomic_load(&j.calls), n);
			for (int r = 0; r < n; r++) {
				CHECK_EQ(j.seen[r], 1);
				CHECK_EQ(j.size[r], n);
			}
		}
		team_free(t);
	}
	struct rank_job j = { 0 };
	team_run(NULL, record_rank, &j);
	CHECK_EQ(atomic_load(&j.calls), 1);
	CHECK_EQ(team_size(NULL), 1);
}

static void mark_range(void *p, size_t lo, size_t hi)
{
	unsigned char *hits = p;
	for (size_t i = lo; i < hi; i++)
		hits[i]++;
}

TEST(team_for_covers_each_index_once)
{
	static const size_t sizes[] = { 1, 15, 16, 17, 1000, 4099 };
	struct team *t = team_create(3);
	for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
		unsigned char hits[4099];
		memset(hits, 0, sizeof hits);
		team_for(t, sizes[k], 16, 1, mark_range, hits);
		for (size_t i = 0; i < sizes[k]; i++)
			CHECK_MSG(hits[i] == 1, "n %zu: index %zu hit %d times", sizes[k], i, hits[i]);
	}
	/* shares are multiples of the alignment except the last */
	size_t lo, hi;
	team_share(100, 16, 0, 3, &lo, &hi);
	CHECK(lo == 0 && hi % 16 == 0);
	team_share(100, 16, 2, 3, &lo, &hi);
	CHECK(hi == 100 && lo % 16 == 0);
	team_free(t);
}

struct bar_job {
	struct team *t;
	int phase1[4], sums[4];
};

/* Each member writes its slot, waits, then reads all slots: without the
 * barrier a member could sum before the others wrote. Repeated to reuse
 * the barrier many times within one job. */
static void barrier_member(void *p, int rank, int size)
{
	struct bar_job *j = p;
	for (int round = 1; round <= 50; round++) {
		j->phase1[rank] = round * (rank + 1);
		team_barrier(j->t);
		int s = 0;
		for (int r = 0; r < size; r++)
			s += j->phase1[r];
		j->sums[rank] = s;
		team_barrier(j->t);
		if (s != round * size * (size + 1) / 2)
			j->sums[rank] = -1;
		team_barrier(j->t);
	}
}

TEST(team_barrier_orders_members)
{
	struct team *t = team_create(4);
	struct bar_job j = { t, { 0 }, { 0 } };
	team_run(t, barrier_member, &j);
	for (int r = 0; r < 4; r++)
		CHECK_EQ(j.sums[r], 50 * 10);
	team_free(t);
}

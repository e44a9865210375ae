/*
 * core/base/team_impl.h — a small persistent thread team for the layer ops: the
 * model's forward and backward split every op over it. Not a public header.
 *
 * Why not OpenMP: libgomp's idle threads spin (GOMP_SPINCOUNT, about 5 ms of
 * `pause` on this CPU) before they sleep, and its wait policy is fixed when
 * the library loads. On a machine with more runnable threads than cores (a
 * shared box, or our own data-loader threads beside training) a member that
 * is preempted then costs its partner that whole spin at every join: resnet20
 * ran twice as slow on two threads as on one. Here a waiting member spins
 * for a few microseconds and then blocks on a condition variable, so a
 * preempted partner gets the core at once; idle members use no CPU between
 * steps.
 *
 * A team belongs to one owner (a model); team_run() must not be called from
 * two threads at once, nor from inside one of its own jobs. Two models on two
 * threads use two teams.
 */
#ifndef ISIF_TEAM_IMPL_H
#define ISIF_TEAM_IMPL_H

#include <stddef.h>

struct team;

/* A team of n members (n − 1 worker threads plus the caller of team_run).
 * Returns NULL when a thread cannot be started. n ≤ 1 gives a team that runs
 * every job on the caller alone (and needs no threads). */
struct team *team_create(int n);
void team_free(struct team *t);

/* Members of t; 1 for NULL. */
int team_size(const struct team *t);

/* Runs fn(arg, rank, size) on every member (the caller is rank 0) and returns
 * when all have returned. t may be NULL: fn(arg, 0, 1) on the caller. */
typedef void team_fn(void *arg, int rank, int size);
void team_run(struct team *t, team_fn *fn, void *arg);

/* Inside a job: waits until every member of the job has arrived. */
void team_barrier(struct team *t);

/* Member rank's share [*lo, *hi) of n items split into equal contiguous
 * ranges, each a multiple of `align` items except the last. */
void team_share(size_t n, size_t align, int rank, int size, size_t *lo, size_t *hi);

/*
 * fn(arg, lo, hi) over [0, n) in one contiguous range per member (ranges a
 * multiple of `align`); on the caller alone when n < min_par or t is NULL.
 */
typedef void team_range_fn(void *arg, size_t lo, size_t hi);
void team_for(struct team *t, size_t n, size_t align, size_t min_par,
	      team_range_fn *fn, void *arg);

#endif

/*
 * server/duty.h — the duty cycle that bounds the search threads' share of
 * the CPU while jobs train (--search-share): a window of the latest passes
 * (when each started, the CPU it cost) and the sleep before the next pass
 * that keeps busy / (busy + idle) over that window at most the share.
 * Pure arithmetic, no clock of its own: the caller passes the times.
 * Not thread-safe (the searcher holds its lock).
 */
#ifndef ISIFD_DUTY_H
#define ISIFD_DUTY_H

#define DUTY_PASSES 32

struct duty_window {
	double horizon_s;           /* passes that started longer ago than this are forgotten */
	int n, next;                /* passes held (≤ DUTY_PASSES); the slot written next */
	double start[DUTY_PASSES];  /* when each pass began (seconds, any monotonic origin) */
	double busy[DUTY_PASSES];   /* the CPU seconds it cost */
};

/* An empty window that remembers passes for horizon_s seconds. */
void duty_init(struct duty_window *w, double horizon_s);

/* A pass that began at start_s and cost busy_s of CPU (the oldest of a full
 * window is dropped). */
void duty_add(struct duty_window *w, double start_s, double busy_s);

/* Seconds to wait at now_s before the next pass so that Σ busy / (now_s +
 * wait − the oldest remembered start) ≤ share: max(0, Σ busy / share −
 * elapsed). 0 when share ≤ 0 (no cap) or the window is empty. */
double duty_sleep_s(const struct duty_window *w, double now_s, double share);

/* Σ busy / elapsed over the window at now_s: the share of one core the
 * passes used lately (0 when empty). */
double duty_share(const struct duty_window *w, double now_s);

#endif

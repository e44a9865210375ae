/*
 * isif/base/clock.h — the one monotonic clock of the engine, the daemon, the
 * tests and the benchmarks: seconds for durations, rates and timeouts.
 * Not for the time of day (timestamps use CLOCK_REALTIME where they are made)
 * nor for pthread_cond_timedwait deadlines, which need a struct timespec on
 * the condition's own clock.
 */
#ifndef ISIF_CLOCK_H
#define ISIF_CLOCK_H

/* Seconds on CLOCK_MONOTONIC since an arbitrary start: never steps back or
 * jumps with the wall clock; nanosecond resolution. Thread-safe. */
double isif_now_s(void);

#endif

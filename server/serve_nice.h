/*
 * server/serve_nice.h — the nice value of the threads that serve queries
 * (libmicrohttpd's pool, the work and fetch lanes, the search threads):
 * isifd --serve-nice. Above a training job's 0, they take the cores a job
 * leaves rather than an equal share with it: a job's two threads meet at
 * a barrier every op, so each preemption by a query stalls both.
 */
#ifndef ISIFD_SERVE_NICE_H
#define ISIFD_SERVE_NICE_H

/* Sets the value serve_nice_apply gives (0..19; at start-up). */
void serve_nice_set(int nice);

/* Gives the calling thread the serving nice value, once per thread (a
 * thread-local flag: cheap on every request). Threads it then creates
 * inherit it (the search teams). */
void serve_nice_apply(void);

#endif

/*
 * server/duty.c — the search threads' duty cycle (see duty.h).
 *
 * Why a window of passes rather than a per-pass rule: idle time that comes
 * by itself (no query queued) is credited, so a lightly used searcher never
 * sleeps, while under a steady flood each pass of cost c is followed by
 * c / share − c of rest (the fixed point of duty_sleep_s for any number of
 * remembered passes). The horizon bounds the credit a long idle spell
 * gives: at most horizon × share of CPU at full speed after a quiet time.
 */
#include "duty.h"

#include <string.h>

void duty_init(struct duty_window *w, double horizon_s)
{
	memset(w, 0, sizeof *w);
	w->horizon_s = horizon_s > 0 ? horizon_s : 1.0;
}

void duty_add(struct duty_window *w, double start_s, double busy_s)
{
	w->start[w->next] = start_s;
	w->busy[w->next] = busy_s > 0 ? busy_s : 0;
	w->next = (w->next + 1) % DUTY_PASSES;
	if (w->n < DUTY_PASSES)
		w->n++;
}

/* Σ busy of the passes that began within the horizon, and the elapsed time
 * from the oldest of them to now_s (0 and 0 when none). */
static void window_sum(const struct duty_window *w, double now_s, double *busy, double *elapsed)
{
	double oldest = now_s;
	*busy = 0;
	for (int i = 0; i < w->n; i++) {
		if (w->start[i] < now_s - w->horizon_s)
			continue;
		*busy += w->busy[i];
		if (w->start[i] < oldest)
			oldest = w->start[i];
	}
	*elapsed = now_s - oldest;
}

double duty_sleep_s(const struct duty_window *w, double now_s, double share)
{
	if (!(share > 0))
		return 0;
	double busy, elapsed;
	window_sum(w, now_s, &busy, &elapsed);
	double wait = busy / share - elapsed;
	return wait > 0 ? wait : 0;
}

double duty_share(const struct duty_window *w, double now_s)
{
	double busy, elapsed;
	window_sum(w, now_s, &busy, &elapsed);
	return elapsed > 0 ? busy / elapsed : 0;
}

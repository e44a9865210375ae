/* core/base/clock.c — isif_now_s, the monotonic clock (isif/base/clock.h). */
#include "isif/base/clock.h"

#include <time.h>

double isif_now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

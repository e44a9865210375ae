/*
 * core/train/dist_env.c — the world size mpirun announces, read from the
 * environment without MPI (isif/train/dist.h), so a build without MPI can
 * still tell that it was launched with several ranks and refuse.
 */
#include <stdlib.h>

#include "isif/train/dist.h"

int isif_dist_launched_size(void)
{
	static const char *const vars[] = { "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "PMI_SIZE" };
	for (int i = 0; i < 3; i++) {
		const char *v = getenv(vars[i]);
		char *end = NULL;
		long n = v ? strtol(v, &end, 10) : 0;
		if (v && *end == '\0' && n >= 1 && n <= 1 << 20)
			return (int)n;
	}
	return 1;
}

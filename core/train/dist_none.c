/*
 * core/train/dist_none.c — isif/train/dist.h in a build without MPI: a world
 * of one process, where every collective copies or leaves its input.
 * (The Makefile puts this file in libisif.a; with Open MPI it links
 * dist_mpi.o into `isif` ahead of the library, so this one is not pulled in.)
 */
#include <string.h>

#include "isif/train/dist.h"

bool isif_dist_compiled(void) { return false; }

enum isif_rc isif_dist_init(int *rank, int *size, struct isif_error *err)
{
	*rank = 0;
	*size = 1;
	int n = isif_dist_launched_size();
	if (n > 1)
		return isif_fail(err, ISIF_EINVAL, "mpirun started %d processes, but this isif was "
				 "built without MPI (install libopenmpi-dev and rebuild)", n);
	return ISIF_OK;
}

void isif_dist_finalize(void) {}

void isif_dist_abort(int code) { (void)code; }

enum isif_rc isif_dist_allgather(const float *send, int64_t count, float *recv,
				 struct isif_error *err)
{
	if (recv != send)
		memmove(recv, send, (size_t)count * sizeof(float));
	return ISIF_OK;
}

enum isif_rc isif_dist_allgatherv(const float *send, const int64_t *counts, float *recv,
				  struct isif_error *err)
{
	return isif_dist_allgather(send, counts[0], recv, err);
}

enum isif_rc isif_dist_allreduce_sum(float *buf, int64_t n, struct isif_error *err)
{
	return ISIF_OK;
}

enum isif_rc isif_dist_allreduce_sum_f64(double *buf, int64_t n, struct isif_error *err)
{
	return ISIF_OK;
}

enum isif_rc isif_dist_max_int(int *v, struct isif_error *err) { return ISIF_OK; }

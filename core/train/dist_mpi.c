/*
 * core/train/dist_mpi.c — isif/train/dist.h over Open MPI: the only file of
 * the engine that calls MPI. Built only when pkg-config finds ompi-c (or
 * mpi-c); see the Makefile. All collectives run on MPI_COMM_WORLD.
 */
#include <limits.h>
#include <stdlib.h>

#include <mpi.h>

#include "isif/train/dist.h"

static int initialised;

bool isif_dist_compiled(void) { return true; }

static enum isif_rc mpi_fail(struct isif_error *err, const char *what, int code)
{
	char text[MPI_MAX_ERROR_STRING];
	int len = 0;
	if (MPI_Error_string(code, text, &len) != MPI_SUCCESS)
		len = 0;
	text[len] = '\0';
	return isif_fail(err, ISIF_EIO, "%s failed: %s", what, text);
}

enum isif_rc isif_dist_init(int *rank, int *size, struct isif_error *err)
{
	*rank = 0;
	*size = 1;
	if (!initialised) {
		int provided, rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
		if (rc != MPI_SUCCESS)
			return mpi_fail(err, "MPI_Init", rc);
		/* errors come back as codes, so a failed collective is a message,
		 * not MPI's default abort without one */
		MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
		initialised = 1;
	}
	MPI_Comm_rank(MPI_COMM_WORLD, rank);
	MPI_Comm_size(MPI_COMM_WORLD, size);
	return ISIF_OK;
}

void isif_dist_finalize(void)
{
	if (initialised)
		MPI_Finalize();
	initialised = 0;
}

void isif_dist_abort(int code)
{
	if (initialised)
		MPI_Abort(MPI_COMM_WORLD, code);
}

static int world_size(void)
{
	int n = 1;
	if (initialised)
		MPI_Comm_size(MPI_COMM_WORLD, &n);
	return n;
}

enum isif_rc isif_dist_allgather(const float *send, int64_t count, float *recv,
				 struct isif_error *err)
{
	if (count > INT_MAX)
		return isif_fail(err, ISIF_ERANGE, "allgather of %lld floats", (long long)count);
	int rc = MPI_Allgather(send, (int)count, MPI_FLOAT, recv, (int)count, MPI_FLOAT,
			       MPI_COMM_WORLD);
	return rc == MPI_SUCCESS ? ISIF_OK : mpi_fail(err, "MPI_Allgather", rc);
}

enum isif_rc isif_dist_allgatherv(const float *send, const int64_t *counts, float *recv,
				  struct isif_error *err)
{
	int n = world_size(), rank = 0;
	int *cnt = malloc((size_t)n * sizeof(int)), *disp = malloc((size_t)n * sizeof(int));
	if (!cnt || !disp) {
		free(cnt);
		free(disp);
		return isif_fail(err, ISIF_ENOMEM, "allgatherv counts");
	}
	int64_t at = 0;
	for (int r = 0; r < n; r++) {
		cnt[r] = (int)counts[r];
		disp[r] = (int)at;
		at += counts[r];
	}
	int rc = MPI_ERR_COUNT;
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	if (at <= INT_MAX)
		rc = MPI_Allgatherv(send, cnt[rank], MPI_FLOAT, recv, cnt, disp, MPI_FLOAT,
				    MPI_COMM_WORLD);
	free(cnt);
	free(disp);
	return rc == MPI_SUCCESS ? ISIF_OK : mpi_fail(err, "MPI_Allgatherv", rc);
}

enum isif_rc isif_dist_allreduce_sum(float *buf, int64_t n, struct isif_error *err)
{
	if (n > INT_MAX)
		return isif_fail(err, ISIF_ERANGE, "allreduce of %lld floats", (long long)n);
	int rc = MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
	return rc == MPI_SUCCESS ? ISIF_OK : mpi_fail(err, "MPI_Allreduce", rc);
}

enum isif_rc isif_dist_allreduce_sum_f64(double *buf, int64_t n, struct isif_error *err)
{
	if (n > INT_MAX)
		return isif_fail(err, ISIF_ERANGE, "allreduce of %lld doubles", (long long)n);
	int rc = MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
	return rc == MPI_SUCCESS ? ISIF_OK : mpi_fail(err, "MPI_Allreduce", rc);
}

enum isif_rc isif_dist_max_int(int *v, struct isif_error *err)
{
	int rc = MPI_Allreduce(MPI_IN_PLACE, v, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
	return rc == MPI_SUCCESS ? ISIF_OK : mpi_fail(err, "MPI_Allreduce", rc);
}

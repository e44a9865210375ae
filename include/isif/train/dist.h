/*
 * isif/train/dist.h — the processes of a data-parallel run: `mpirun -np N
 * isif train ...` starts N ranks; these few collectives are all the trainer
 * needs. Every MPI call of the engine is in core/train/dist_mpi.c; a build
 * without Open MPI links core/train/dist_none.c instead, where N is 1.
 *
 * The world is process-wide by MPI's nature: isif_dist_init once per
 * process, before any trainer with size > 1, and isif_dist_finalize at exit.
 * Collectives must be called by every rank in the same order.
 */
#ifndef ISIF_TRAIN_DIST_H
#define ISIF_TRAIN_DIST_H

#include <stdbool.h>
#include <stdint.h>

#include "isif/base/common.h"

/* Whether this build has MPI (Open MPI found by pkg-config at build time). */
bool isif_dist_compiled(void);

/* The world size mpirun announced in the environment (OMPI_COMM_WORLD_SIZE,
 * PMI_SIZE or PMIX_SIZE), read without initialising MPI; 1 when not launched
 * by mpirun. */
int isif_dist_launched_size(void);

/* Initialises MPI and returns this process's rank and the world's size.
 * ISIF_EINVAL in a build without MPI when mpirun started more than one. */
enum isif_rc isif_dist_init(int *rank, int *size, struct isif_error *err);

/* Ends MPI (after isif_dist_init succeeded; a no-op otherwise). */
void isif_dist_finalize(void);

/* Ends every rank at once (a rank that cannot go on must not leave the
 * others blocked in a collective). */
void isif_dist_abort(int code);

/* recv[r·count .. (r+1)·count) = rank r's send[0..count), on every rank. */
enum isif_rc isif_dist_allgather(const float *send, int64_t count, float *recv,
				 struct isif_error *err);

/* Rank r contributes counts[r] floats; recv is their concatenation in rank order. */
enum isif_rc isif_dist_allgatherv(const float *send, const int64_t *counts, float *recv,
				  struct isif_error *err);

/* buf[0..n) = the sum over ranks of buf[0..n), in place, on every rank. */
enum isif_rc isif_dist_allreduce_sum(float *buf, int64_t n, struct isif_error *err);

/* The same for doubles (synchronised BN's statistics). */
enum isif_rc isif_dist_allreduce_sum_f64(double *buf, int64_t n, struct isif_error *err);

/* *v = the maximum of *v over ranks. */
enum isif_rc isif_dist_max_int(int *v, struct isif_error *err);

#endif

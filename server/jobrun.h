/*
 * server/jobrun.h — the scheduler's run function in the daemon: loads the
 * job's dataset (shared between jobs that train on it at the same time),
 * creates or resumes an isif trainer and forwards its callbacks to the
 * scheduler. The only part of the daemon that calls the training engine.
 */
#ifndef ISIFD_JOBRUN_H
#define ISIFD_JOBRUN_H

#include "jobmpi.h"
#include "scheduler.h"
#include "store.h"

struct jobrun;

struct jobrun *jobrun_create(struct store *st, const char *state_dir);
void jobrun_free(struct jobrun *jr);

/* How jobs of spec.processes > 1 are started (isifd's MPI flags; copied,
 * the strings borrowed). */
void jobrun_set_mpi(struct jobrun *jr, const struct jobmpi_options *o);

/* A sched_run_fn; user is the struct jobrun. */
enum isif_rc jobrun_run(void *user, struct sched_job *job, struct isif_error *err);

#endif

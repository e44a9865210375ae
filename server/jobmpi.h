/*
 * server/jobmpi.h — runs a job of spec.processes > 1 as `mpirun -np N isif
 * train --supervised ...` and supervises it: the child's "@" event lines
 * become the same callbacks the in-process trainer makes (so progress, the
 * epoch's row and checkpoint commit exactly as for an in-process job), and
 * the job's cancel flag becomes "stop" or "cancel" on its stdin. Where the
 * processes run is the operator's (--mpi-hostfile), never the job's.
 */
#ifndef ISIFD_JOBMPI_H
#define ISIFD_JOBMPI_H

#include "isif/train/spec.h"
#include "isif/train/train.h"
#include "scheduler.h"

struct jobmpi_options {
	const char *isif;         /* the isif executable; "" or NULL: beside isifd */
	const char *hostfile;     /* "" or NULL: this machine */
	const char *mpirun_args;  /* extra arguments, space-separated; may be NULL */
	const char *folder_cache; /* isif --cache-dir for folder datasets; "" or NULL: --no-cache */
	long folder_cache_mib;    /* isif --cache-max-mib */
};

/* Trains job (spec parsed, dataset at path in format) under mpirun and
 * returns as jobrun_run does: ISIF_OK, ISIF_ECANCELLED, or ISIF_EIO naming
 * the failure when mpirun or a rank failed (its log: run_dir/mpirun.log).
 * image_size > 0: the folder dataset's registered resize (isif --image-size). */
enum isif_rc jobmpi_run(const struct jobmpi_options *o, struct sched_job *job,
			const struct isif_job_spec *spec, const char *format, const char *path,
			int image_size, const struct isif_train_callbacks *cb, struct isif_error *err);

/* True when mpirun.log at log_path tells of a process that died (a signal)
 * or holds no rank's own error message ("isif train: ..." or "isif: ...": a
 * bad spec or dataset, which another attempt would repeat). */
bool jobmpi_worth_retrying(const char *log_path);

#endif

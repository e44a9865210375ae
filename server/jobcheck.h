/*
 * server/jobcheck.h — what isifd checks of a job before it queues it, so
 * that a spec that cannot run, or would not fit in memory, is refused at
 * submit with a message instead of failing (or taking the daemon down) when
 * it runs: the spec against its dataset's shape, and its estimated peak
 * memory against --max-job-memory.
 *
 * The shape comes from the dataset registry (recorded when a dataset is
 * loaded or registered) or, for one not loaded yet, from a cheap probe of
 * its files (isif_dataset_probe: headers, sizes, file counts; nothing is
 * decoded on the HTTP thread). A dataset whose files cannot be read now is
 * not refused here: its job fails at start with the reader's message, as
 * the files may come back before it runs.
 *
 * Thread-safe (reads the store and the file system only).
 */
#ifndef ISIFD_JOBCHECK_H
#define ISIFD_JOBCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "isif/base/common.h"
#include "isif/train/spec.h"
#include "isif/train/train.h"
#include "store.h"

/* The memory bound a job is held to, and where it came from. */
struct job_memory_bound {
	int64_t bytes;
	char how[160];   /* "--max-job-memory 4096 MiB" or "half of ... / 2 workers" */
};

/*
 * The bound for jobs: max_job_mib MiB when non-zero, else half of the
 * machine's memory (MemTotal, or the cgroup's memory limit when lower)
 * divided by workers.
 */
void jobcheck_memory_bound(long max_job_mib, long workers, struct job_memory_bound *out);

/* Bytes of memory this process may use: min(MemTotal, cgroup v2/v1 limit);
 * 0 when unknown. */
int64_t jobcheck_machine_memory(void);

/* What jobcheck_run found. */
struct job_check {
	bool shape_known;                  /* false: the dataset could not be read now */
	struct isif_dataset_shape shape;
	struct isif_memory_estimate memory; /* valid when shape_known */
};

/*
 * Checks spec (its dataset registered as format/path) for a job that gets a
 * budget of `threads`: ISIF_EINVAL when it cannot run on the dataset
 * (isif_spec_check_dataset's message), ISIF_ERANGE when its estimated peak
 * memory is over bound (jobcheck_memory_refusal says it in full).
 */
enum isif_rc jobcheck_run(struct store *st, const struct isif_job_spec *spec, const char *format,
			  const char *path, int threads, const struct job_memory_bound *bound,
			  struct job_check *out, struct isif_error *err);

/* The refusal of a job over the memory bound, for its HTTP answer (longer
 * than an isif_error holds): the estimate, its largest parts, the bound
 * and where the bound comes from. */
void jobcheck_memory_refusal(const struct job_check *c, const struct job_memory_bound *bound,
			     char *out, size_t len);

#endif

/*
 * server/statedir.h — the state directory at start-up: created if missing,
 * then locked so that one isifd at a time uses it (a second one would
 * resume the first one's running jobs and delete their files). The lock is
 * an flock(2) on STATE/isifd.lock, which the kernel drops when the holder
 * exits in any way, kill -9 included; the file names the holder (pid and
 * start time) for the refusal message. Not thread-safe: start-up only.
 */
#ifndef ISIFD_STATEDIR_H
#define ISIFD_STATEDIR_H

#include "isif/base/common.h"

/* The lock file's name inside the state directory. */
#define STATEDIR_LOCK_NAME "isifd.lock"

/*
 * Creates dir (0750) if missing and takes its lock, writing this process's
 * pid and start time into the lock file. *fd: the lock, held until it is
 * closed (statedir_unlock) or the process ends. ISIF_ECONFLICT with "...
 * in use by isifd pid N (started T)" when another process holds it;
 * ISIF_EIO when the directory or lock file cannot be used (a symlink, a
 * FIFO or anything but a regular file in the lock file's place is refused).
 */
enum isif_rc statedir_lock(const char *dir, int *fd, struct isif_error *err);

/* Creates STATE/jobs if missing (after statedir_lock). */
enum isif_rc statedir_make_jobs(const char *dir, struct isif_error *err);

/* Releases the lock taken by statedir_lock (fd < 0: nothing). */
void statedir_unlock(int fd);

#endif

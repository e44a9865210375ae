/*
 * server/statedir.c — the state directory's creation and its one-daemon
 * lock (statedir.h). The lock file holds one line, "pid N started T", which
 * only the refusal message reads; the flock, not the file's content or
 * existence, is the lock, so a file left behind by a killed daemon is simply
 * reused.
 */
#include "statedir.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

/* "isifd pid N (started T)" from the holder's lock file, or a note that it
 * says nothing usable (it may be writing it this very moment). */
static void describe_holder(int fd, char *out, size_t len)
{
	char buf[128], started[32];
	long pid;
	ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	if (sscanf(buf, "pid %ld started %31[0-9TZ:.-]", &pid, started) == 2 && pid > 0)
		snprintf(out, len, "isifd pid %ld (started %s)", pid, started);
	else
		snprintf(out, len, "another isifd (its pid is not in the lock file yet)");
}

/* Writes "pid N started T" over the file's content. A failure here (disk
 * full) leaves the lock held and only the refusal message less precise. */
static void write_holder(int fd)
{
	char line[96], now[32];
	iso8601_now(now, sizeof now);
	int n = snprintf(line, sizeof line, "pid %ld started %s\n", (long)getpid(), now);
	bool written = ftruncate(fd, 0) == 0 && pwrite(fd, line, (size_t)n, 0) == n;
	(void)written;
}

enum isif_rc statedir_lock(const char *dir, int *fd, struct isif_error *err)
{
	char path[PATH_MAX], holder[160];
	struct stat sb;
	*fd = -1;
	if (mkdir(dir, 0750) != 0 && errno != EEXIST)
		return isif_fail(err, ISIF_EIO, "--state-dir %s: %s", dir, strerror(errno));
	if (snprintf(path, sizeof path, "%s/" STATEDIR_LOCK_NAME, dir) >= (int)sizeof path)
		return isif_fail(err, ISIF_EINVAL, "--state-dir %s: path too long", dir);
	/* O_NOFOLLOW: a symbolic link put in the lock's place is refused, not
	 * followed (its target would be truncated). O_NONBLOCK: a FIFO there
	 * opens at once and is refused below, instead of hanging the start. */
	int f = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0640);
	if (f < 0)
		return isif_fail(err, ISIF_EIO, "%s: %s%s", path, strerror(errno),
				 errno == ELOOP ? " (a symbolic link; remove it)" : "");
	if (fstat(f, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_nlink != 1) {
		close(f);
		return isif_fail(err, ISIF_EIO, "%s: not a plain file (a FIFO, device or hard "
				 "link?); remove it", path);
	}
	if (flock(f, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;
		if (e == EWOULDBLOCK)
			describe_holder(f, holder, sizeof holder);
		close(f);
		if (e == EWOULDBLOCK)
			return isif_fail(err, ISIF_ECONFLICT, "--state-dir %s is in use by %s; one "
					 "isifd per state directory", dir, holder);
		return isif_fail(err, ISIF_EIO, "%s: cannot lock: %s", path, strerror(e));
	}
	write_holder(f);
	*fd = f;
	return ISIF_OK;
}

enum isif_rc statedir_make_jobs(const char *dir, struct isif_error *err)
{
	char path[PATH_MAX];
	if (snprintf(path, sizeof path, "%s/jobs", dir) >= (int)sizeof path)
		return isif_fail(err, ISIF_EINVAL, "--state-dir %s: path too long", dir);
	if (mkdir(path, 0750) != 0 && errno != EEXIST)
		return isif_fail(err, ISIF_EIO, "%s: %s", path, strerror(errno));
	return ISIF_OK;
}

void statedir_unlock(int fd)
{
	if (fd >= 0)
		close(fd);   /* drops the flock; the file stays for the next start */
}

/* core/base/fileio.c — atomic whole-file writes and bounded whole-file reads. */
#include "isif/base/fileio.h"
#include "isif/base/common.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static atomic_uint tmp_counter;

static int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* fsync the directory holding path, so the rename itself is durable. */
static int sync_parent_dir(const char *path)
{
	char copy[PATH_MAX];
	snprintf(copy, sizeof copy, "%s", path);
	int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	close(fd);
	return rc;
}

enum isif_rc isif_write_atomic(const char *path, const struct isif_chunk *chunks,
		      size_t n, struct isif_error *err)
{
	char tmp[PATH_MAX];
	int len = snprintf(tmp, sizeof tmp, "%s.tmp.%ld.%u", path, (long)getpid(),
			   atomic_fetch_add(&tmp_counter, 1));
	if (len < 0 || (size_t)len >= sizeof tmp)
		return isif_fail(err, ISIF_EINVAL, "path too long: %s", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return isif_fail(err, ISIF_EIO, "%s: %s", tmp, strerror(errno));
	for (size_t i = 0; i < n; i++) {
		if (chunks[i].len && write_all(fd, chunks[i].data, chunks[i].len) != 0)
			goto fail;
	}
	if (fsync(fd) != 0)
		goto fail;
	if (close(fd) != 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) != 0)
		goto fail;
	if (sync_parent_dir(path) != 0)
		return isif_fail(err, ISIF_EIO, "fsync of the directory of %s: %s",
				 path, strerror(errno));
	return ISIF_OK;
fail: {
	int saved = errno;
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return isif_fail(err, ISIF_EIO, "writing %s: %s", path, strerror(saved));
}
}

enum isif_rc isif_read_file(const char *path, size_t max_bytes, void **buf, size_t *len,
		   struct isif_error *err)
{
	*buf = NULL;
	*len = 0;
	FILE *f = fopen(path, "rb");
	if (!f)
		return isif_fail(err, ISIF_EIO, "%s: %s", path, strerror(errno));
	struct stat st;
	if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
		fclose(f);
		return isif_fail(err, ISIF_EIO, "%s: not a regular file", path);
	}
	if ((uint64_t)st.st_size > max_bytes) {
		fclose(f);
		return isif_fail(err, ISIF_ENOMEM, "%s: %lld bytes, over the limit of %zu",
				 path, (long long)st.st_size, max_bytes);
	}
	size_t size = (size_t)st.st_size;
	char *data = malloc(size + 1);
	if (!data) {
		fclose(f);
		return isif_fail(err, ISIF_ENOMEM, "%s: cannot allocate %zu bytes", path, size);
	}
	size_t got = fread(data, 1, size, f);
	int bad = ferror(f);
	fclose(f);
	if (bad || got != size) {
		free(data);
		return isif_fail(err, ISIF_EIO, "%s: short read (%zu of %zu bytes)", path, got, size);
	}
	data[size] = '\0';
	*buf = data;
	*len = size;
	return ISIF_OK;
}

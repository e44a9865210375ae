/*
 * isif/base/fileio.h — durable file writes shared by checkpoints, exports and the
 * daemon: write to "<path>.tmp.<pid>.<n>", fsync, rename over path, fsync the
 * directory. A reader never sees a torn file. Thread-safe.
 */
#ifndef ISIF_FILEIO_H
#define ISIF_FILEIO_H

#include <stddef.h>

#include "isif/base/common.h"

/* One piece of a file written in order by isif_write_atomic. */
struct isif_chunk {
	const void *data;
	size_t len;
};

/* Writes the concatenated chunks to path atomically; ISIF_EIO with message on failure. */
enum isif_rc isif_write_atomic(const char *path, const struct isif_chunk *chunks,
		      size_t n, struct isif_error *err);

/* Reads a whole file (at most max_bytes) into a malloc'd buffer, NUL-terminated
 * one past *len. ISIF_EIO if unreadable, ISIF_ENOMEM if larger than max_bytes. */
enum isif_rc isif_read_file(const char *path, size_t max_bytes, void **buf, size_t *len,
		   struct isif_error *err);

#endif

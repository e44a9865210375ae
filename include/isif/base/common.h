/*
 * isif/base/common.h — status codes, error text and small shared types of the
 * isif engine. Every fallible engine (and isifd) function returns an enum
 * isif_rc and, where it takes one, fills a caller-owned struct isif_error
 * (NULL allowed) with a one-line message naming what went wrong. Nothing in
 * the engine prints, exits or aborts.
 */
#ifndef ISIF_COMMON_H
#define ISIF_COMMON_H

#include <stddef.h>
#include <stdint.h>

#define ISIF_ERR_LEN 256

enum isif_rc {
	ISIF_OK = 0,
	ISIF_ENOMEM,     /* allocation failed or a size limit was exceeded */
	ISIF_EINVAL,     /* bad argument or option value */
	ISIF_EIO,        /* file could not be opened, read or written */
	ISIF_EFORMAT,    /* file contents malformed, truncated or unsupported */
	ISIF_ESHAPE,     /* tensor name, shape or dtype does not match */
	ISIF_ECANCELLED, /* the caller's cancel flag was raised */
	ISIF_ERANGE,     /* value out of its allowed range */
	ISIF_ENOTFOUND,  /* named thing (model, dataset, tensor, job) unknown */
	ISIF_ECONFLICT,  /* the thing is not in a state that allows this, or taken */
	ISIF_EBUSY,      /* a limit on waiting work is reached (a full queue); retry later */
	ISIF_EEMPTY,     /* nothing there yet: no queued job, no checkpoint, no index */
	ISIF_EFORBIDDEN, /* refused by policy (a URL resolving to a private address) */
	ISIF_RC_COUNT
};

/* A caller-owned error message; a struct (not a bare char *) so that its
 * size travels with it and the compiler checks what is passed. Callers
 * declare `struct isif_error err = {0};` and read err.msg. */
struct isif_error {
	char msg[ISIF_ERR_LEN];
};

/* Static, human-readable name of a status code; never NULL. */
const char *isif_strerror(enum isif_rc rc);

/* Writes a printf-style message into err (may be NULL) and returns rc, so
 * callers can write `return isif_fail(err, rc, ...)`. */
enum isif_rc isif_fail(struct isif_error *err, enum isif_rc rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Tensor element types used in checkpoints. */
enum isif_dtype { ISIF_F32 = 0, ISIF_I64 = 1 };

/* Bytes per element of a dtype. */
size_t isif_dtype_size(enum isif_dtype dt);

/* Safetensors spelling of a dtype ("F32", "I64"). */
const char *isif_dtype_name(enum isif_dtype dt);

#define ISIF_MAX_DIMS 4

/* A named tensor view: the engine owns data unless the caller says otherwise. */
struct isif_tensor {
	const char *name;
	enum isif_dtype dtype;
	int ndim;                      /* 0 for a scalar */
	int64_t shape[ISIF_MAX_DIMS];
	void *data;
};

/* Number of elements of t (1 for a scalar). */
int64_t isif_tensor_numel(const struct isif_tensor *t);

#endif

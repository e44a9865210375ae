/* core/base/common.c — status strings, error formatting and dtype helpers. */
#include "isif/base/common.h"

#include <stdarg.h>
#include <stdio.h>

const char *isif_strerror(enum isif_rc rc)
{
	static const char *const names[ISIF_RC_COUNT] = {
		[ISIF_OK] = "ok",
		[ISIF_ENOMEM] = "out of memory or over a size limit",
		[ISIF_EINVAL] = "invalid argument",
		[ISIF_EIO] = "input/output error",
		[ISIF_EFORMAT] = "malformed or truncated data",
		[ISIF_ESHAPE] = "name, shape or dtype mismatch",
		[ISIF_ECANCELLED] = "cancelled",
		[ISIF_ERANGE] = "value out of range",
		[ISIF_ENOTFOUND] = "not found",
		[ISIF_ECONFLICT] = "conflict with the current state",
		[ISIF_EBUSY] = "busy; retry later",
		[ISIF_EEMPTY] = "nothing there yet",
		[ISIF_EFORBIDDEN] = "refused by policy",
	};
	if ((unsigned)rc >= ISIF_RC_COUNT)
		return "unknown error";
	return names[rc];
}

enum isif_rc isif_fail(struct isif_error *err, enum isif_rc rc, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof err->msg, fmt, ap);
		va_end(ap);
	}
	return rc;
}

size_t isif_dtype_size(enum isif_dtype dt)
{
	return dt == ISIF_I64 ? 8 : 4;
}

const char *isif_dtype_name(enum isif_dtype dt)
{
	return dt == ISIF_I64 ? "I64" : "F32";
}

int64_t isif_tensor_numel(const struct isif_tensor *t)
{
	int64_t n = 1;
	for (int i = 0; i < t->ndim; i++)
		n *= t->shape[i];
	return n;
}

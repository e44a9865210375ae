/*
 * server/multipart.h — the one file of a multipart/form-data body (RFC
 * 7578), for POST /neighbors sent as `curl -F image=@shoe.jpg`. A small
 * bounded parser over a body already in memory: no streaming, no nested
 * multiparts, no transfer encodings; exactly one part is accepted.
 */
#ifndef ISIFD_MULTIPART_H
#define ISIFD_MULTIPART_H

#include <stdbool.h>
#include <stddef.h>

#include "isif/base/common.h"

/* Most bytes of one part's headers (Content-Disposition, Content-Type). */
#define MULTIPART_MAX_HEADERS 8192

/* Does the Content-Type header say multipart/form-data (parameters aside)? */
bool multipart_is_form(const char *content_type);

/*
 * Finds the single part of body[len] (content_type carries its boundary):
 * *part points into body, *part_len bytes. ISIF_EINVAL with err for a
 * missing or bad boundary, a truncated body, part headers over
 * MULTIPART_MAX_HEADERS, no part or more than one; ISIF_ERANGE when the
 * part is larger than max_part bytes.
 */
enum isif_rc multipart_one_part(const char *content_type, const char *body, size_t len,
				size_t max_part, const char **part, size_t *part_len,
				struct isif_error *err);

#endif

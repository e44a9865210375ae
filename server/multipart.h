/*
 * server/multipart.h — the one file of a multipart/form-data body (RFC
 * 7578), for POST /neighbors sent as `curl -F image=@shoe.jpg`. A small
 * bounded parser over a body already in memory: no streaming, no nested
 * multiparts, no transfer encodings; one part (POST /neighbors) or a
 * bounded list of parts (POST /jobs/{id}/embed).
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

/* Every part of body[len], in order, into part[] and part_len[] (room for
 * max_parts), their count in *n_parts: the errors of multipart_one_part,
 * and ISIF_EINVAL for more than max_parts parts. */
enum isif_rc multipart_parts(const char *content_type, const char *body, size_t len,
			     size_t max_part, int max_parts, const char **part, size_t *part_len,
			     int *n_parts, struct isif_error *err);

/* Longest part name multipart_parts_named keeps (with its NUL). */
#define MULTIPART_NAME_LEN 64

/* multipart_parts, with each part's form-field name (Content-Disposition
 * name="..."; "" when none) in names[] (room for max_parts). */
enum isif_rc multipart_parts_named(const char *content_type, const char *body, size_t len,
				   size_t max_part, int max_parts, const char **part,
				   size_t *part_len, char (*names)[MULTIPART_NAME_LEN],
				   int *n_parts, struct isif_error *err);

#endif

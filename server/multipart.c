/*
 * server/multipart.c — the single part of a multipart/form-data body (see
 * multipart.h). The body is: an optional preamble, then each part as
 * "--BOUNDARY" CRLF headers CRLF CRLF content, every content ending at
 * CRLF "--BOUNDARY"; the last delimiter is followed by "--" (an epilogue
 * may follow and is ignored). Every search is bounded by the body's
 * length, so the cost is linear in what the client sent.
 */
#include "multipart.h"

#include <string.h>
#include <strings.h>

#define BOUNDARY_MAX 70   /* RFC 2046 §5.1.1 */

bool multipart_is_form(const char *ct)
{
	if (!ct)
		return false;
	size_t n = strcspn(ct, ";");
	while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
		n--;
	return n == 19 && strncasecmp(ct, "multipart/form-data", 19) == 0;
}

/* The boundary parameter of the Content-Type, quoted or not, into out
 * (with the two leading dashes of a delimiter line); its length or 0. */
static size_t boundary_of(const char *ct, char *out)
{
	const char *p = ct;
	while ((p = strchr(p, ';'))) {
		p++;
		p += strspn(p, " \t");
		if (strncasecmp(p, "boundary=", 9) != 0)
			continue;
		p += 9;
		bool quoted = *p == '"';
		size_t n = quoted ? strcspn(p + 1, "\"") : strcspn(p, "; \t");
		if (quoted && p[1 + n] != '"')
			return 0;
		if (n < 1 || n > BOUNDARY_MAX)
			return 0;
		memcpy(out, "--", 2);
		memcpy(out + 2, p + quoted, n);
		out[2 + n] = '\0';
		return 2 + n;
	}
	return 0;
}

/* After a delimiter line's boundary at body + pos: "--" (the end), or
 * optional blanks and CRLF (a part follows). Returns the position after
 * it, or 0 when neither; *last says it was the end. */
static size_t after_delimiter(const char *body, size_t len, size_t pos, bool *last)
{
	*last = false;
	if (len - pos >= 2 && body[pos] == '-' && body[pos + 1] == '-') {
		*last = true;
		return pos + 2;
	}
	while (pos < len && (body[pos] == ' ' || body[pos] == '\t'))
		pos++;
	if (len - pos >= 2 && body[pos] == '\r' && body[pos + 1] == '\n')
		return pos + 2;
	return 0;
}

enum isif_rc multipart_one_part(const char *ct, const char *body, size_t len, size_t max_part,
				const char **part, size_t *part_len, struct isif_error *err)
{
	int n = 0;
	return multipart_parts(ct, body, len, max_part, 1, part, part_len, &n, err);
}

/* The name="..." of a part's Content-Disposition in its headers h[n]
 * (not filename="..."), into out (cut at MULTIPART_NAME_LEN - 1); "" when
 * none. */
static void part_name(const char *h, size_t n, char *out)
{
	out[0] = '\0';
	for (size_t i = 0; i + 6 <= n; i++) {
		if (strncasecmp(h + i, "name=\"", 6) != 0 || (i > 0 && (h[i - 1] | 0x20) >= 'a' &&
							       (h[i - 1] | 0x20) <= 'z'))
			continue;
		size_t j = i + 6, o = 0;
		while (j < n && h[j] != '"' && h[j] != '\r' && o + 1 < MULTIPART_NAME_LEN)
			out[o++] = h[j++];
		out[o] = '\0';
		return;
	}
}

enum isif_rc multipart_parts(const char *ct, const char *body, size_t len, size_t max_part,
			     int max_parts, const char **part, size_t *part_len, int *n_parts,
			     struct isif_error *err)
{
	return multipart_parts_named(ct, body, len, max_part, max_parts, part, part_len, NULL,
				     n_parts, err);
}

enum isif_rc multipart_parts_named(const char *ct, const char *body, size_t len, size_t max_part,
				   int max_parts, const char **part, size_t *part_len,
				   char (*names)[MULTIPART_NAME_LEN], int *n_parts,
				   struct isif_error *err)
{
	char delim[2 + 2 + BOUNDARY_MAX + 1];   /* CRLF "--" boundary */
	memcpy(delim, "\r\n", 2);
	size_t dl = boundary_of(ct, delim + 2);
	*n_parts = 0;
	if (!dl)
		return isif_fail(err, ISIF_EINVAL, "multipart: the Content-Type has no valid "
				 "boundary parameter (1 to %d characters)", BOUNDARY_MAX);
	/* the first delimiter: at the very start, or after the preamble's CRLF */
	const char *d = len >= dl && memcmp(body, delim + 2, dl) == 0 ? body :
			memmem(body, len, delim, dl + 2);
	if (!d)
		return isif_fail(err, ISIF_EINVAL, "multipart: no boundary line in the body");
	size_t pos = (size_t)(d - body) + (d == body ? dl : dl + 2);
	int parts = 0;
	for (;;) {
		bool last;
		pos = after_delimiter(body, len, pos, &last);
		if (!pos)
			return isif_fail(err, ISIF_EINVAL, "multipart: malformed boundary line");
		if (last)
			break;
		size_t start;
		if (len - pos >= 2 && memcmp(body + pos, "\r\n", 2) == 0) {
			start = pos + 2;   /* a part without headers */
		} else {
			size_t room = len - pos < MULTIPART_MAX_HEADERS ? len - pos :
				      MULTIPART_MAX_HEADERS;
			const char *hend = memmem(body + pos, room, "\r\n\r\n", 4);
			if (!hend && room == MULTIPART_MAX_HEADERS)
				return isif_fail(err, ISIF_EINVAL, "multipart: part headers longer "
						 "than %d bytes", MULTIPART_MAX_HEADERS);
			if (!hend)
				return isif_fail(err, ISIF_EINVAL, "multipart: truncated in a part's "
						 "headers");
			start = (size_t)(hend - body) + 4;
		}
		const char *end = memmem(body + start, len - start, delim, dl + 2);
		if (!end)
			return isif_fail(err, ISIF_EINVAL, "multipart: truncated (no closing boundary "
					 "after part %d)", parts + 1);
		if (++parts > max_parts && max_parts == 1)
			return isif_fail(err, ISIF_EINVAL, "multipart: more than one part; send the "
					 "image alone (curl -F image=@FILE)");
		if (parts > max_parts)
			return isif_fail(err, ISIF_EINVAL, "multipart: more than %d parts", max_parts);
		if (names)
			part_name(body + pos, start - pos, names[parts - 1]);
		part[parts - 1] = body + start;
		part_len[parts - 1] = (size_t)(end - body) - start;
		if (part_len[parts - 1] > max_part)
			return isif_fail(err, ISIF_ERANGE, "multipart: part %d is %zu bytes, over the "
					 "limit of %zu", parts, part_len[parts - 1], max_part);
		pos = (size_t)(end - body) + 2 + dl;
	}
	if (!parts)
		return isif_fail(err, ISIF_EINVAL, "multipart: no part; send the image as one "
				 "(curl -F image=@FILE)");
	*n_parts = parts;
	return ISIF_OK;
}

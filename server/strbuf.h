/*
 * server/strbuf.h — a growing text buffer with a hard maximum size, for
 * responses built piece by piece (Prometheus text, CSV). After an
 * allocation failure or when the maximum is reached, `failed` sticks and
 * further appends are ignored.
 */
#ifndef ISIFD_STRBUF_H
#define ISIFD_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

struct strbuf {
	char *p;
	size_t len, cap, max;
	bool failed;
};

/* An empty buffer that may grow to max bytes. */
void strbuf_init(struct strbuf *b, size_t max);
void strbuf_printf(struct strbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Hands the text (NUL-terminated, malloc'd) to the caller; NULL if failed. */
char *strbuf_take(struct strbuf *b, size_t *len);
void strbuf_free(struct strbuf *b);

#endif

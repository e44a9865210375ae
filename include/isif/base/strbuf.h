/*
 * isif/base/strbuf.h — a growing text buffer with a hard maximum size, for text
 * built piece by piece (safetensors headers, canonical job specs,
 * Prometheus text, CSV). After an allocation failure, or when an append
 * would take the text past its maximum, `failed` sticks and further appends
 * are ignored, so callers check once at the end.
 */
#ifndef ISIF_STRBUF_H
#define ISIF_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

struct isif_strbuf {
	char *p;          /* NUL-terminated text once anything was appended */
	size_t len, cap, max;
	bool failed;
};

/* An empty buffer whose text may grow to max bytes (the NUL not counted). */
void isif_strbuf_init(struct isif_strbuf *b, size_t max);
/* Appends n bytes of s. */
void isif_strbuf_put(struct isif_strbuf *b, const char *s, size_t n);
/* Appends the string s. */
void isif_strbuf_puts(struct isif_strbuf *b, const char *s);
/* Appends printf-formatted text. */
void isif_strbuf_printf(struct isif_strbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Hands the text (NUL-terminated, malloc'd, "" when empty) and its length
 * to the caller and empties b; NULL (and b freed) if b failed. */
char *isif_strbuf_take(struct isif_strbuf *b, size_t *len);
/* Frees the text; b is empty afterwards. */
void isif_strbuf_free(struct isif_strbuf *b);

#endif

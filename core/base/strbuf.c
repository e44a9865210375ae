/* core/base/strbuf.c — the bounded growing text buffer of isif/base/strbuf.h. */
#include "isif/base/strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void isif_strbuf_init(struct isif_strbuf *b, size_t max)
{
	b->p = NULL;
	b->len = b->cap = 0;
	b->max = max;
	b->failed = false;
}

/* Room for a text of `need` bytes plus its NUL; false (and failed) when
 * that passes the maximum or memory runs out. */
static bool reserve(struct isif_strbuf *b, size_t need)
{
	if (need > b->max) {
		b->failed = true;
		return false;
	}
	if (need < b->cap)
		return true;
	size_t cap = b->cap ? b->cap : 256;
	while (cap <= need)
		cap *= 2;
	char *p = realloc(b->p, cap);
	if (!p) {
		b->failed = true;
		return false;
	}
	b->p = p;
	b->cap = cap;
	return true;
}

void isif_strbuf_put(struct isif_strbuf *b, const char *s, size_t n)
{
	if (b->failed || n > b->max - b->len || !reserve(b, b->len + n)) {
		b->failed = true;
		return;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void isif_strbuf_puts(struct isif_strbuf *b, const char *s)
{
	isif_strbuf_put(b, s, strlen(s));
}

void isif_strbuf_printf(struct isif_strbuf *b, const char *fmt, ...)
{
	va_list ap;
	if (b->failed)
		return;
	va_start(ap, fmt);
	int n = vsnprintf(b->p ? b->p + b->len : NULL, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n > b->max - b->len) {
		b->failed = true;
		return;
	}
	if (b->len + (size_t)n >= b->cap) {     /* did not fit: grow, format again */
		if (!reserve(b, b->len + (size_t)n))
			return;
		va_start(ap, fmt);
		vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
	}
	b->len += (size_t)n;
}

char *isif_strbuf_take(struct isif_strbuf *b, size_t *len)
{
	if (b->failed || (!b->p && !reserve(b, 0))) {
		isif_strbuf_free(b);
		return NULL;
	}
	b->p[b->len] = '\0';
	char *p = b->p;
	if (len)
		*len = b->len;
	b->p = NULL;
	b->len = b->cap = 0;
	return p;
}

void isif_strbuf_free(struct isif_strbuf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

/*
 * server/json_text.c — JSON strings and reals as jansson writes them (see
 * json_text.h); tests/server/test_json_text.c compares the two on many values.
 */
#include "json_text.h"

#include <stdio.h>
#include <string.h>

void json_text_string(struct isif_strbuf *b, const char *s)
{
	isif_strbuf_put(b, "\"", 1);
	const char *run = s;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		isif_strbuf_put(b, run, (size_t)(s - run));
		run = s + 1;
		char esc[8];
		switch (c) {
		case '"': isif_strbuf_put(b, "\\\"", 2); break;
		case '\\': isif_strbuf_put(b, "\\\\", 2); break;
		case '\b': isif_strbuf_put(b, "\\b", 2); break;
		case '\f': isif_strbuf_put(b, "\\f", 2); break;
		case '\n': isif_strbuf_put(b, "\\n", 2); break;
		case '\r': isif_strbuf_put(b, "\\r", 2); break;
		case '\t': isif_strbuf_put(b, "\\t", 2); break;
		default:
			snprintf(esc, sizeof esc, "\\u%04X", c);
			isif_strbuf_put(b, esc, 6);
		}
	}
	isif_strbuf_put(b, run, (size_t)(s - run));
	isif_strbuf_put(b, "\"", 1);
}

void json_text_real(struct isif_strbuf *b, double v)
{
	char buf[48];
	int n = snprintf(buf, sizeof buf - 3, "%.15g", v);
	if (n < 0 || n >= (int)sizeof buf - 3)
		return;
	if (!strchr(buf, '.') && !strchr(buf, 'e')) {
		memcpy(buf + n, ".0", 3);
		n += 2;
	}
	/* "1e+20" → "1e20", "1e-07" → "1e-7" */
	char *e = strchr(buf, 'e');
	if (e) {
		char *start = e + 1, *end = e + 2;
		if (*start == '-')
			start++;
		while (*end == '0')
			end++;
		if (end != start) {
			memmove(start, end, (size_t)(n - (end - buf)) + 1);
			n -= (int)(end - start);
		}
	}
	isif_strbuf_put(b, buf, (size_t)n);
}

/*
 * server/json_text.h — JSON text written straight into a buffer, byte for
 * byte what jansson's json_dumps(…, JSON_REAL_PRECISION(15)) writes for the
 * same values (http_json's format), for answers on the hot path of
 * /neighbors where building and dumping a json_t tree per neighbour cost
 * more than the search. Not a JSON library: strings, reals and integers.
 */
#ifndef ISIFD_JSON_TEXT_H
#define ISIFD_JSON_TEXT_H

#include <stdint.h>

#include "isif/base/strbuf.h"

/* A JSON string: s (valid UTF-8) quoted, with jansson's escapes. */
void json_text_string(struct isif_strbuf *b, const char *s);

/* A finite real as jansson writes it with precision 15 ("%.15g", ".0" when
 * it would read as an integer, exponents without '+' or leading zeros). */
void json_text_real(struct isif_strbuf *b, double v);

#endif

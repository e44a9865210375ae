/*
 * tests/server/test_json_text.c — server/json_text.c against jansson: the
 * hand-written strings and reals of the /neighbors answer must be byte for
 * byte what json_dumps(…, JSON_REAL_PRECISION(15)) writes (http_json).
 */
#include "../unit/check.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "isif/base/rng.h"
#include "json_text.h"

/* jansson's text of v, and ours, inside a one-element array. */
static int same_text(json_t *v, void (*ours)(struct isif_strbuf *, const void *), const void *arg)
{
	json_t *a = json_array();
	json_array_append_new(a, v);
	char *theirs = json_dumps(a, JSON_REAL_PRECISION(15));
	json_decref(a);
	struct isif_strbuf b;
	isif_strbuf_init(&b, 1 << 20);
	isif_strbuf_put(&b, "[", 1);
	ours(&b, arg);
	isif_strbuf_put(&b, "]", 1);
	size_t len;
	char *mine = isif_strbuf_take(&b, &len);
	int same = theirs && mine && strcmp(theirs, mine) == 0;
	if (!same)
		test_fail_at(__FILE__, __LINE__, "jansson %s, ours %s", theirs ? theirs : "(null)",
			     mine ? mine : "(null)");
	free(theirs);
	free(mine);
	return same;
}

static void real_of(struct isif_strbuf *b, const void *arg)
{
	json_text_real(b, *(const double *)arg);
}

static void string_of(struct isif_strbuf *b, const void *arg)
{
	json_text_string(b, arg);
}

TEST(srv_json_text_reals_as_jansson)
{
	static const double fixed[] = {0, -0.0, 1, -1, 0.5, 1e20, 1e-7, 1.5e-300, 123456789012345678.0,
				       0.974997341632843, 2.0 / 3, -1e-5, 1e15, 1e16, 99.99,
				       3.4028234663852886e38, 4.9e-324};
	for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++)
		same_text(json_real(fixed[i]), real_of, &fixed[i]);
	struct isif_rng rng;
	isif_rng_seed(&rng, 7, 0);
	int bad = 0;
	for (int i = 0; i < 20000 && bad < 5; i++) {
		/* similarities (floats in [-1, 1]), and reals of any exponent */
		double v = i % 2 ? (double)(float)(2 * isif_rng_uniform(&rng) - 1)
				 : (isif_rng_uniform(&rng) - 0.5) * pow(10, (int)isif_rng_below(&rng, 60) - 30);
		bad += !same_text(json_real(v), real_of, &v);
	}
	CHECK(bad == 0);
}

TEST(srv_json_text_strings_as_jansson)
{
	static const char *const fixed[] = {"", "T-shirt/top", "Ankle boot", "a\"b\\c", "tab\there",
					    "nl\nx\r\b\f", "\x01\x1f\x7f", "caf\xc3\xa9 \xe2\x82\xac",
					    "\xf0\x9f\x98\x80 emoji", "/slash/", "\"", "\\"};
	for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++)
		same_text(json_string(fixed[i]), string_of, fixed[i]);
	/* every byte below 0x80 in one string */
	char all[128];
	for (int c = 1; c < 128; c++)
		all[c - 1] = (char)c;
	all[127] = 0;
	same_text(json_string(all), string_of, all);
}

/* tests/unit/test_strbuf.c — the bounded text buffer (isif/base/strbuf.h). */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "isif/base/strbuf.h"

TEST(strbuf_grows_and_takes)
{
	struct isif_strbuf b;
	isif_strbuf_init(&b, 8192);
	for (int i = 0; i < 100; i++)
		isif_strbuf_printf(&b, "%04d,", i);
	isif_strbuf_put(&b, "xy\0z", 2);   /* only the 2 bytes asked for */
	isif_strbuf_puts(&b, "!");
	size_t len;
	char *t = isif_strbuf_take(&b, &len);
	CHECK_EQ(len, 503);
	CHECK(t && strncmp(t, "0000,0001,", 10) == 0 && strcmp(t + 495, "0099,xy!") == 0);
	CHECK(t && t[len] == '\0');
	free(t);
	CHECK(b.p == NULL && b.len == 0);
}

TEST(strbuf_empty_take_is_empty_string)
{
	struct isif_strbuf b;
	isif_strbuf_init(&b, 0);
	size_t len = 7;
	char *t = isif_strbuf_take(&b, &len);
	CHECK(t && t[0] == '\0' && len == 0);
	free(t);
}

/* The text may reach max bytes exactly; one byte more fails, sticks, and
 * take returns NULL. Both append paths (put and printf) are held to it. */
TEST(strbuf_max_is_exact_and_failure_sticks)
{
	struct isif_strbuf b;
	isif_strbuf_init(&b, 10);
	isif_strbuf_puts(&b, "01234");
	isif_strbuf_printf(&b, "%s", "56789");
	CHECK(!b.failed && b.len == 10);
	isif_strbuf_put(&b, "a", 1);
	CHECK(b.failed && b.len == 10);
	CHECK(isif_strbuf_take(&b, NULL) == NULL && b.p == NULL);
	struct isif_strbuf c;
	isif_strbuf_init(&c, 10);
	isif_strbuf_printf(&c, "%s", "0123456789a");
	CHECK(c.failed);
	isif_strbuf_puts(&c, "x");
	CHECK(c.failed && c.len == 0);
	CHECK(isif_strbuf_take(&c, NULL) == NULL);
}

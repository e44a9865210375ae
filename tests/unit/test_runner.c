/*
 * tests/unit/test_runner.c — the test runner's own list (runner.c): it
 * keeps every test registered, in order, however many there are (it once
 * dropped those past 1024 without a word).
 */
#include "check.h"

#include <stdio.h>

static void dummy_a(void) {}
static void dummy_b(void) {}

TEST(runner_list_keeps_every_test_past_1024)
{
	enum { N = 5000 };
	static char names[N][16];
	struct test_list l = {0};
	int added = 0;
	for (int i = 0; i < N; i++) {
		snprintf(names[i], sizeof names[i], "t%d", i);
		added += test_list_add(&l, names[i], i % 2 ? dummy_b : dummy_a) == 0;
	}
	CHECK_EQ(added, N);
	CHECK_EQ(l.n, N);
	int intact = 1;
	for (size_t i = 0; i < l.n; i++)
		intact &= l.v[i].name == names[i] && l.v[i].fn == (i % 2 ? dummy_b : dummy_a);
	CHECK(intact);
	test_list_free(&l);
	CHECK(l.v == NULL && l.n == 0);
}

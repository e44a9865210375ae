/*
 * tests/unit/check.h — a minimal test harness: TEST(name) registers a case
 * at start-up, CHECK* record failures with file:line and go on. The runner
 * (runner.c) prints one "PASS name" / "FAIL name" line per case.
 */
#ifndef ISIF_TEST_CHECK_H
#define ISIF_TEST_CHECK_H

#include <math.h>
#include <stdio.h>

#include <stddef.h>

typedef void (*test_fn)(void);
void test_register(const char *name, test_fn fn);

/* The runner's growable list of tests, exposed so that its own test can
 * check it has no maximum. test_list_add returns 0, or −1 out of memory. */
struct test_case {
	const char *name;
	test_fn fn;
};
struct test_list {
	struct test_case *v;
	size_t n, cap;
};
int test_list_add(struct test_list *l, const char *name, test_fn fn);
void test_list_free(struct test_list *l);
void test_fail_at(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Directory for files a test writes (created by the runner, removed after). */
const char *test_tmpdir(void);

#define TEST(name)                                                        \
	static void name(void);                                           \
	__attribute__((constructor)) static void register_##name(void)    \
	{ test_register(#name, name); }                                   \
	static void name(void)

#define CHECK(cond)                                                       \
	do { if (!(cond)) test_fail_at(__FILE__, __LINE__, "%s", #cond); } while (0)

#define CHECK_MSG(cond, ...)                                              \
	do { if (!(cond)) test_fail_at(__FILE__, __LINE__, __VA_ARGS__); } while (0)

/* |a − b| ≤ tol, reporting both values. */
#define CHECK_NEAR(a, b, tol)                                             \
	do { double a_ = (a), b_ = (b), t_ = (tol);                       \
	     if (!(fabs(a_ - b_) <= t_))                                  \
		test_fail_at(__FILE__, __LINE__, "%s = %.9g, %s = %.9g, |diff| %.3g > %.3g", \
			     #a, a_, #b, b_, fabs(a_ - b_), t_); } while (0)

/* Integer equality, reporting both values. */
#define CHECK_EQ(a, b)                                                    \
	do { long long a_ = (long long)(a), b_ = (long long)(b);          \
	     if (a_ != b_)                                                \
		test_fail_at(__FILE__, __LINE__, "%s = %lld, %s = %lld",    \
			     #a, a_, #b, b_); } while (0)

#endif

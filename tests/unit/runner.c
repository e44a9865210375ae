/*
 * tests/unit/runner.c — runs every registered TEST (or those whose names
 * contain any of the arguments) and prints one PASS/FAIL line per case,
 * then a summary. The list of tests grows as they register: there is no
 * maximum (a registration that runs out of memory fails the whole run).
 * Under ISIF_CPU=x (core/base/cpu_impl.h: which SIMD kernels run) each
 * name gets the suffix "[ISIF_CPU=x]", so a second run of the kernel tests
 * on the portable kernels logs cases of its own.
 */
#include "check.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "isif/base/clock.h"

static struct test_list tests;
static int registry_out_of_memory;
static int current_failures;
static char tmpdir[256];

int test_list_add(struct test_list *l, const char *name, test_fn fn)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 256;
		struct test_case *v = realloc(l->v, cap * sizeof *v);
		if (!v)
			return -1;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n].name = name;
	l->v[l->n].fn = fn;
	l->n++;
	return 0;
}

void test_list_free(struct test_list *l)
{
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
}

/* Called by TEST's constructors, before main: a failure is reported there. */
void test_register(const char *name, test_fn fn)
{
	if (test_list_add(&tests, name, fn) != 0)
		registry_out_of_memory = 1;
}

void test_fail_at(const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	if (current_failures++ >= 10)
		return; /* keep the log readable */
	fprintf(stderr, "    %s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

const char *test_tmpdir(void)
{
	return tmpdir;
}

static int by_name(const void *a, const void *b)
{
	const struct test_case *x = a, *y = b;
	return strcmp(x->name, y->name);
}

int main(int argc, char **argv)
{
	int passed = 0, failed = 0;
	char cmd[300], tag[64] = "";
	const char *cpu = getenv("ISIF_CPU");

	if (registry_out_of_memory) {
		printf("FAIL test_registry (out of memory registering the tests)\n");
		return 2;
	}
	if (tests.n)
		qsort(tests.v, tests.n, sizeof tests.v[0], by_name);
	if (cpu && *cpu)
		snprintf(tag, sizeof tag, " [ISIF_CPU=%s]", cpu);
	snprintf(tmpdir, sizeof tmpdir, "/tmp/isif-unit-XXXXXX");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 2;
	}
	for (size_t i = 0; i < tests.n; i++) {
		int wanted = argc < 2;
		for (int f = 1; f < argc; f++)
			wanted |= strstr(tests.v[i].name, argv[f]) != NULL;
		if (!wanted)
			continue;
		current_failures = 0;
		double t0 = isif_now_s();
		tests.v[i].fn();
		double s = isif_now_s() - t0;
		printf("%s %s%s (%.2fs)\n", current_failures ? "FAIL" : "PASS",
		       tests.v[i].name, tag, s);
		fflush(stdout);
		if (current_failures)
			failed++;
		else
			passed++;
	}
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpdir);
	test_list_free(&tests);
	printf("unit: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}

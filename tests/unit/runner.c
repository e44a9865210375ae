/*
 * tests/unit/runner.c — runs every registered TEST (or those whose names
 * contain any of the arguments) and prints one PASS/FAIL line per case,
 * then a summary. Under ISIF_CPU=x (core/base/cpu_impl.h: which SIMD
 * kernels run) each name gets the suffix "[ISIF_CPU=x]", so a second run
 * of the kernel tests on the portable kernels logs cases of its own.
 */
#include "check.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_TESTS 1024

static struct { const char *name; test_fn fn; } tests[MAX_TESTS];
static int n_tests;
static int current_failures;
static char tmpdir[256];

void test_register(const char *name, test_fn fn)
{
	if (n_tests < MAX_TESTS) {
		tests[n_tests].name = name;
		tests[n_tests].fn = fn;
		n_tests++;
	}
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
	const char *x = *(const char *const *)a, *y = *(const char *const *)b;
	return strcmp(x, y);
}

int main(int argc, char **argv)
{
	int passed = 0, failed = 0;
	char cmd[300], tag[64] = "";
	const char *cpu = getenv("ISIF_CPU");

	if (cpu && *cpu)
		snprintf(tag, sizeof tag, " [ISIF_CPU=%s]", cpu);
	qsort(tests, n_tests, sizeof tests[0], by_name);
	snprintf(tmpdir, sizeof tmpdir, "/tmp/isif-unit-XXXXXX");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 2;
	}
	for (int i = 0; i < n_tests; i++) {
		struct timespec t0, t1;
		int wanted = argc < 2;
		for (int f = 1; f < argc; f++)
			wanted |= strstr(tests[i].name, argv[f]) != NULL;
		if (!wanted)
			continue;
		current_failures = 0;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		tests[i].fn();
		clock_gettime(CLOCK_MONOTONIC, &t1);
		double s = (t1.tv_sec - t0.tv_sec) + 1e-9 * (t1.tv_nsec - t0.tv_nsec);
		printf("%s %s%s (%.2fs)\n", current_failures ? "FAIL" : "PASS",
		       tests[i].name, tag, s);
		fflush(stdout);
		if (current_failures)
			failed++;
		else
			passed++;
	}
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpdir);
	printf("unit: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}

/*
 * tests/fuzz/replay_main.c — runs a fuzz target over saved inputs without
 * libFuzzer: `fuzz_replay/<target> FILE|DIR...` calls
 * LLVMFuzzerTestOneInput once per file (a directory's files in name order)
 * and prints "<n> inputs replayed". A crash or an abort in a target is the
 * failure; make test replays the seed corpora and every kept crasher this
 * way, with gcc and under ASan + UBSan.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_util.h"

#define REPLAY_MAX_INPUT (64u << 20)

static int replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		perror(path);
		return -1;
	}
	uint8_t *buf = malloc(REPLAY_MAX_INPUT);
	size_t n = buf ? fread(buf, 1, REPLAY_MAX_INPUT, f) : 0;
	fclose(f);
	if (!buf) {
		fprintf(stderr, "%s: out of memory\n", path);
		return -1;
	}
	/* An exact-size copy, so reads past the end trip ASan as in libFuzzer. */
	uint8_t *exact = malloc(n ? n : 1);
	if (!exact) {
		free(buf);
		return -1;
	}
	memcpy(exact, buf, n);
	free(buf);
	LLVMFuzzerTestOneInput(exact, n);
	free(exact);
	return 0;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int replay_dir(const char *path, int *count)
{
	DIR *d = opendir(path);
	if (!d) {
		perror(path);
		return -1;
	}
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			char **p = realloc(names, cap * sizeof *p);
			if (!p)
				break;
			names = p;
		}
		names[n++] = strdup(e->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof *names, by_name);
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		char file[4096];
		snprintf(file, sizeof file, "%s/%s", path, names[i]);
		if (rc == 0 && replay_file(file) == 0)
			(*count)++;
		else
			rc = -1;
		free(names[i]);
	}
	free(names);
	return rc;
}

int main(int argc, char **argv)
{
	int count = 0, rc = 0;
	for (int i = 1; i < argc && rc == 0; i++) {
		struct stat sb;
		if (stat(argv[i], &sb) != 0) {
			perror(argv[i]);
			rc = -1;
		} else if (S_ISDIR(sb.st_mode)) {
			rc = replay_dir(argv[i], &count);
		} else if (replay_file(argv[i]) == 0) {
			count++;
		} else {
			rc = -1;
		}
	}
	printf("%d inputs replayed\n", count);
	return rc ? 1 : 0;
}

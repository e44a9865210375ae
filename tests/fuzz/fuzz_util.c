/*
 * tests/fuzz/fuzz_util.c — scratch files for the fuzz targets (see
 * fuzz_util.h). /dev/shm keeps the per-input writes in memory.
 */
#include "fuzz_util.h"
#include "isif/data/dataset.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[128];

static void remove_dir(void)
{
	char cmd[256];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "fuzz: could not remove %s\n", dir);
}

const char *fuzz_dir(void)
{
	if (dir[0])
		return dir;
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	snprintf(dir, sizeof dir, "%s/isif-fuzz-XXXXXX", base);
	if (!mkdtemp(dir)) {
		perror("fuzz: mkdtemp");
		abort();
	}
	atexit(remove_dir);
	return dir;
}

static void make_parents(char *path)
{
	for (char *p = path + strlen(fuzz_dir()) + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0700) != 0 && errno != EEXIST) {
			perror(path);
			abort();
		}
		*p = '/';
	}
}

void fuzz_write(const char *name, const void *data, size_t len)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", fuzz_dir(), name);
	make_parents(path);
	FILE *f = fopen(path, "wb");
	if (!f || (len && fwrite(data, 1, len, f) != len) || fclose(f) != 0) {
		perror(path);
		abort();
	}
}

void fuzz_split(const uint8_t *data, size_t size, int n, const uint8_t **part,
		size_t *len)
{
	size_t at = 0;
	for (int i = 0; i < n - 1; i++) {
		uint32_t want = 0;
		if (size - at >= 4) {
			want = (uint32_t)data[at] | (uint32_t)data[at + 1] << 8 |
			       (uint32_t)data[at + 2] << 16 | (uint32_t)data[at + 3] << 24;
			at += 4;
		} else {
			at = size;
		}
		size_t take = want < size - at ? want : size - at;
		part[i] = data + at;
		len[i] = take;
		at += take;
	}
	part[n - 1] = data + at;
	len[n - 1] = size - at;
}

void fuzz_check_dataset(const struct isif_dataset *ds)
{
	const struct isif_split *sp[2] = {&ds->train, &ds->test};
	if (ds->train.n < 1 || ds->num_classes < 0)
		abort();
	for (int k = 0; k < 2; k++) {
		const struct isif_split *s = sp[k];
		if (s->n < 0 || s->c < 1 || s->c > 3 || s->h < 1 || s->w < 1)
			abort();
		for (int64_t i = 0; i < s->n; i++)
			if (s->labels[i] < -1 || s->labels[i] >= ds->num_classes)
				abort();
		if (s->n > 0)
			(void)*(volatile const uint8_t *)&s->pixels[s->n * s->c * s->h * s->w - 1];
	}
	for (int i = 0; ds->class_names && i < ds->num_classes; i++)
		if (!ds->class_names[i] || !ds->class_names[i][0])
			abort();
}

enum isif_rc fuzz_note(const char *what, enum isif_rc rc, const struct isif_error *err)
{
	static int verbose = -1;
	if (verbose < 0)
		verbose = getenv("FUZZ_VERBOSE") != NULL;
	if (verbose)
		fprintf(stderr, "%s: %s\n", what, rc ? err->msg : "ok");
	return rc;
}

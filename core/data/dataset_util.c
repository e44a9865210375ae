/*
 * core/data/dataset_util.c — small helpers the dataset readers share: path
 * joining, file tests, capped split allocation, exact reads that tell a
 * truncated file from an I/O error, and optional class-name lists.
 * No format knowledge lives here.
 */
#include "data/dataset_impl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "isif/base/fileio.h"

enum isif_rc isif_ds_join(char *out, const char *dir, const char *name, struct isif_error *err)
{
	int k = snprintf(out, ISIF_DS_PATH_MAX, "%s/%s", dir, name);
	if (k < 0 || k >= ISIF_DS_PATH_MAX)
		return isif_fail(err, ISIF_EINVAL, "%s/%s: path too long", dir, name);
	return ISIF_OK;
}

bool isif_ds_is_file(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

bool isif_ds_is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

enum isif_rc isif_ds_split_alloc(struct isif_split *s, int64_t n, int c, int h, int w,
			const char *what, struct isif_error *err)
{
	int64_t per = (int64_t)c * h * w; /* c ≤ 3 and h, w ≤ caps: no overflow */
	if (n < 0 || n > ISIF_DS_MAX_IMAGES)
		return isif_fail(err, ISIF_EFORMAT, "%s: %lld images, over the limit of %lld",
				 what, (long long)n, ISIF_DS_MAX_IMAGES);
	if (c < 1 || c > 3 || h < 1 || w < 1 || h > ISIF_DS_MAX_SIDE || w > ISIF_DS_MAX_SIDE)
		return isif_fail(err, ISIF_EFORMAT, "%s: image shape %dx%dx%d out of range",
				 what, c, h, w);
	if (n > 0 && per > ISIF_DS_MAX_BYTES / n)
		return isif_fail(err, ISIF_EFORMAT, "%s: %lld images of %dx%dx%d exceed the size limit",
				 what, (long long)n, c, h, w);
	s->n = n;
	s->c = c;
	s->h = h;
	s->w = w;
	/* +1 so that n = 0 still gives distinct, freeable pointers */
	s->pixels = malloc((size_t)(n * per) + 1);
	s->labels = malloc((size_t)n * sizeof *s->labels + 1);
	if (!s->pixels || !s->labels) {
		free(s->pixels);
		free(s->labels);
		memset(s, 0, sizeof *s);
		return isif_fail(err, ISIF_ENOMEM, "%s: cannot allocate %lld images of %dx%dx%d",
				 what, (long long)n, c, h, w);
	}
	for (int64_t i = 0; i < n; i++)
		s->labels[i] = -1;
	return ISIF_OK;
}

enum isif_rc isif_ds_pick_dir(char *out, const char *dir, const char *sub, const char *first,
		    struct isif_error *err)
{
	char probe[ISIF_DS_PATH_MAX], inner[ISIF_DS_PATH_MAX];
	int rc = isif_ds_join(probe, dir, first, err); /* also proves dir fits */
	if (rc)
		return rc;
	if (!isif_ds_is_file(probe) && isif_ds_join(inner, dir, sub, NULL) == ISIF_OK &&
	    isif_ds_join(probe, inner, first, NULL) == ISIF_OK && isif_ds_is_file(probe)) {
		memcpy(out, inner, ISIF_DS_PATH_MAX);
		return ISIF_OK;
	}
	snprintf(out, ISIF_DS_PATH_MAX, "%s", dir);
	return ISIF_OK;
}

enum isif_rc isif_ds_open(const char *path, FILE **f, int64_t *size, struct isif_error *err)
{
	struct stat st;
	*f = fopen(path, "rb");
	if (!*f)
		return isif_fail(err, ISIF_EIO, "%s: %s", path, strerror(errno));
	if (fstat(fileno(*f), &st) != 0 || !S_ISREG(st.st_mode)) {
		fclose(*f);
		*f = NULL;
		return isif_fail(err, ISIF_EIO, "%s: not a regular file", path);
	}
	*size = (int64_t)st.st_size;
	return ISIF_OK;
}

enum isif_rc isif_ds_read(FILE *f, void *buf, size_t n, const char *path, struct isif_error *err)
{
	size_t got = fread(buf, 1, n, f);
	if (got == n)
		return ISIF_OK;
	if (ferror(f))
		return isif_fail(err, ISIF_EIO, "%s: read error", path);
	return isif_fail(err, ISIF_EFORMAT, "%s: truncated (wanted %zu more bytes, got %zu)",
			 path, n, got);
}

/* Splits text into at most max non-empty lines (trailing CR/space trimmed). */
static int split_lines(char *text, char **lines, int max)
{
	int n = 0;
	for (char *p = text; *p && n <= max;) {
		char *end = strchr(p, '\n');
		char *next = end ? end + 1 : p + strlen(p);
		char *e = end ? end : next;
		while (e > p && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
			e--;
		*e = '\0';
		if (e > p) {
			if (n == max)
				return max + 1;
			lines[n++] = p;
		}
		p = next;
	}
	return n;
}

enum isif_rc isif_ds_read_class_names(struct isif_dataset *ds, const char *path, struct isif_error *err)
{
	void *buf;
	size_t len;
	int k = ds->num_classes;
	if (k < 1 || !isif_ds_is_file(path))
		return ISIF_OK;
	if (isif_read_file(path, 1 << 20, &buf, &len, NULL) != ISIF_OK)
		return ISIF_OK; /* the names are a nicety; the data is what counts */
	char **lines = malloc((size_t)k * sizeof *lines);
	char **names = calloc((size_t)k, sizeof *names);
	int rc = ISIF_OK;
	if (!lines || !names) {
		rc = isif_fail(err, ISIF_ENOMEM, "%s: out of memory", path);
		goto out;
	}
	if (memchr(buf, '\0', len) || split_lines(buf, lines, k) != k)
		goto out; /* not a usable list: keep class_names NULL */
	for (int i = 0; i < k; i++) {
		names[i] = strdup(lines[i]);
		if (!names[i]) {
			rc = isif_fail(err, ISIF_ENOMEM, "%s: out of memory", path);
			goto out;
		}
	}
	ds->class_names = names;
	names = NULL;
out:
	if (names)
		for (int i = 0; i < k; i++)
			free(names[i]);
	free(names);
	free(lines);
	free(buf);
	return rc;
}

enum isif_rc isif_ds_set_class_names(struct isif_dataset *ds, const char *const *names,
				     struct isif_error *err)
{
	int k = ds->num_classes;
	char **v = calloc((size_t)(k > 0 ? k : 1), sizeof *v);
	for (int i = 0; v && i < k; i++)
		if (!(v[i] = strdup(names[i]))) {
			while (i--)
				free(v[i]);
			free(v);
			v = NULL;
		}
	if (!v)
		return isif_fail(err, ISIF_ENOMEM, "class names: out of memory");
	ds->class_names = v;
	return ISIF_OK;
}

/*
 * core/data/dataset_stl.c — STL-10 binary version: train_X.bin / train_y.bin,
 * test_X.bin / test_y.bin, optionally unlabeled_X.bin; in dir or in the
 * archive's stl10_binary/ folder. Class names from class_names.txt.
 *
 * Each image is 3×96×96 bytes, each channel stored column-major (MATLAB
 * order): file byte [c][x][y] is pixel (row y, column x). We store CHW
 * row-major, so dst[c][y][x] = src[c][x][y]. Labels are 1..10 on disk and
 * 0..9 here; unlabeled images get −1.
 */
#include "data/dataset_impl.h"

#include <stdlib.h>
#include <string.h>

#define STL_SIDE 96
#define STL_PLANE (STL_SIDE * STL_SIDE)
#define STL_IMAGE (3 * STL_PLANE)

/* Transposes each channel of one image from column-major to row-major. */
static void stl_transpose(uint8_t *dst, const uint8_t *src)
{
	for (int c = 0; c < 3; c++) {
		const uint8_t *s = src + c * STL_PLANE;
		uint8_t *d = dst + c * STL_PLANE;
		for (int x = 0; x < STL_SIDE; x++)
			for (int y = 0; y < STL_SIDE; y++)
				d[y * STL_SIDE + x] = s[x * STL_SIDE + y];
	}
}

/* Number of images in an X file; its size must be whole images. */
static enum isif_rc count_images(const char *path, FILE **f, int64_t *n, struct isif_error *err)
{
	int64_t size;
	int rc = isif_ds_open(path, f, &size, err);
	if (rc)
		return rc;
	if (size % STL_IMAGE != 0)
		return isif_fail(err, ISIF_EFORMAT,
				 "%s: size %lld is not a multiple of the %d-byte image (truncated?)",
				 path, (long long)size, STL_IMAGE);
	*n = size / STL_IMAGE;
	if (*n > ISIF_DS_MAX_IMAGES)
		return isif_fail(err, ISIF_EFORMAT, "%s: more than %lld images", path,
				 ISIF_DS_MAX_IMAGES);
	return ISIF_OK;
}

/* Reads n images from f into s from image `at` on. */
static enum isif_rc read_images(struct isif_split *s, int64_t at, FILE *f, int64_t n,
		       const char *path, struct isif_error *err)
{
	uint8_t *buf = malloc(STL_IMAGE);
	if (!buf)
		return isif_fail(err, ISIF_ENOMEM, "%s: out of memory", path);
	int rc = ISIF_OK;
	for (int64_t i = 0; i < n && !rc; i++) {
		rc = isif_ds_read(f, buf, STL_IMAGE, path, err);
		if (!rc)
			stl_transpose(s->pixels + (at + i) * STL_IMAGE, buf);
	}
	free(buf);
	return rc;
}

/* Reads the labels file: exactly n bytes, each 1..10, stored as 0..9. */
static enum isif_rc read_labels(struct isif_split *s, const char *path, int64_t n,
		       const char *xpath, struct isif_error *err)
{
	FILE *f;
	int64_t size;
	int rc = isif_ds_open(path, &f, &size, err);
	if (rc)
		return rc;
	if (size != n) {
		fclose(f);
		return isif_fail(err, ISIF_EFORMAT, "%s: %lld labels for %lld images in %s",
				 path, (long long)size, (long long)n, xpath);
	}
	uint8_t *buf = malloc((size_t)n + 1);
	if (!buf) {
		fclose(f);
		return isif_fail(err, ISIF_ENOMEM, "%s: out of memory", path);
	}
	rc = isif_ds_read(f, buf, (size_t)n, path, err);
	for (int64_t i = 0; i < n && !rc; i++) {
		if (buf[i] < 1 || buf[i] > 10)
			rc = isif_fail(err, ISIF_EFORMAT, "%s: label %d at %lld out of range 1..10",
				       path, buf[i], (long long)i);
		else
			s->labels[i] = buf[i] - 1;
	}
	free(buf);
	fclose(f);
	return rc;
}

/* One split: prefix_X.bin and prefix_y.bin, plus unlabeled_X.bin if asked. */
static enum isif_rc load_split(struct isif_split *s, const char *dir, const char *prefix,
		      bool unlabeled, struct isif_error *err)
{
	char xpath[ISIF_DS_PATH_MAX], ypath[ISIF_DS_PATH_MAX], upath[ISIF_DS_PATH_MAX];
	char name[64];
	FILE *xf = NULL, *uf = NULL;
	int64_t n = 0, nu = 0;
	snprintf(name, sizeof name, "%s_X.bin", prefix);
	int rc = isif_ds_join(xpath, dir, name, err);
	snprintf(name, sizeof name, "%s_y.bin", prefix);
	if (!rc)
		rc = isif_ds_join(ypath, dir, name, err);
	if (!rc)
		rc = isif_ds_join(upath, dir, "unlabeled_X.bin", err);
	if (!rc)
		rc = count_images(xpath, &xf, &n, err);
	if (!rc && unlabeled)
		rc = count_images(upath, &uf, &nu, err);
	if (!rc && n + nu > ISIF_DS_MAX_IMAGES)
		rc = isif_fail(err, ISIF_EFORMAT, "%s: more than %lld images", dir,
			       ISIF_DS_MAX_IMAGES);
	if (!rc)
		rc = isif_ds_split_alloc(s, n + nu, 3, STL_SIDE, STL_SIDE, xpath, err);
	if (!rc)
		rc = read_labels(s, ypath, n, xpath, err);
	if (!rc)
		rc = read_images(s, 0, xf, n, xpath, err);
	if (!rc && unlabeled)
		rc = read_images(s, n, uf, nu, upath, err);
	if (xf)
		fclose(xf);
	if (uf)
		fclose(uf);
	return rc;
}

enum isif_rc isif_stl_load(struct isif_dataset *ds, const char *dir,
		  const struct isif_dataset_options *opt, struct isif_error *err)
{
	char base[ISIF_DS_PATH_MAX], names[ISIF_DS_PATH_MAX];
	enum isif_rc rc = isif_ds_pick_dir(base, dir, "stl10_binary", "train_X.bin", err);
	if (!rc)
		rc = load_split(&ds->train, base, "train", opt->stl_unlabeled, err);
	if (!rc)
		rc = load_split(&ds->test, base, "test", false, err);
	if (rc)
		return rc;
	ds->num_classes = 10;
	rc = isif_ds_join(names, base, "class_names.txt", err);
	return rc ? rc : isif_ds_read_class_names(ds, names, err);
}

/* One split's image count from the sizes of its files (labels included). */
static enum isif_rc probe_split(const char *dir, const char *prefix, bool unlabeled, int64_t *n,
				struct isif_error *err)
{
	char xpath[ISIF_DS_PATH_MAX], ypath[ISIF_DS_PATH_MAX], upath[ISIF_DS_PATH_MAX];
	char name[64];
	FILE *xf = NULL, *yf = NULL, *uf = NULL;
	int64_t ny = 0, nu = 0;
	snprintf(name, sizeof name, "%s_X.bin", prefix);
	int rc = isif_ds_join(xpath, dir, name, err);
	snprintf(name, sizeof name, "%s_y.bin", prefix);
	if (!rc)
		rc = isif_ds_join(ypath, dir, name, err);
	if (!rc)
		rc = isif_ds_join(upath, dir, "unlabeled_X.bin", err);
	if (!rc)
		rc = count_images(xpath, &xf, n, err);
	if (!rc)
		rc = isif_ds_open(ypath, &yf, &ny, err);
	if (!rc && ny != *n)
		rc = isif_fail(err, ISIF_EFORMAT, "%s: %lld labels for %lld images in %s",
			       ypath, (long long)ny, (long long)*n, xpath);
	if (!rc && unlabeled)
		rc = count_images(upath, &uf, &nu, err);
	*n += nu;
	if (!rc && *n > ISIF_DS_MAX_IMAGES)
		rc = isif_fail(err, ISIF_EFORMAT, "%s: more than %lld images", dir,
			       ISIF_DS_MAX_IMAGES);
	if (xf)
		fclose(xf);
	if (yf)
		fclose(yf);
	if (uf)
		fclose(uf);
	return rc;
}

enum isif_rc isif_stl_probe(const char *dir, const struct isif_dataset_options *opt,
			    struct isif_dataset_shape *out, struct isif_error *err)
{
	char base[ISIF_DS_PATH_MAX];
	enum isif_rc rc = isif_ds_pick_dir(base, dir, "stl10_binary", "train_X.bin", err);
	if (!rc)
		rc = probe_split(base, "train", opt->stl_unlabeled, &out->n_train, err);
	if (!rc)
		rc = probe_split(base, "test", false, &out->n_test, err);
	out->c = 3;
	out->h = out->w = STL_SIDE;
	out->num_classes = 10;
	return rc;
}

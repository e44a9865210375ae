/*
 * core/data/dataset_folder.c — image folders laid out like torchvision's
 * ImageFolder:
 *   root/train/<class>/<image>  and  root/test/<class>/<image>, or
 *   root/train/<class>/<image>  alone, or  root/<class>/<image>
 * Labels are the indices of the sorted class names of train (byte order,
 * like Python's sorted()); a test class unknown to train is an error.
 * Without test/, a seeded 10% of train (rounded, at least one image left
 * for training) is held out as the test split.
 *
 * Only .jpg/.jpeg/.png files (any case) count; names starting with '.' are
 * skipped; files are taken in sorted order, so a folder always loads the
 * same way. Every image is decoded, resized to image_size² (bilinear, as
 * torchvision) and brought to the dataset's channel count: 3 when any image
 * is colour (gray ones replicated), else 1.
 */
#include "data/dataset_impl.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "isif/base/fileio.h"
#include "isif/base/rng.h"
#include "isif/data/image.h"

#define HOLDOUT_STREAM 0x686f6c646f7574ULL /* "holdout" */

struct names {
	char **v;
	int64_t n, cap;
};

struct entry {
	char *path;
	int32_t label;
};

struct entries {
	struct entry *v;
	int64_t n, cap;
};

static void names_free(struct names *l)
{
	for (int64_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof *l);
}

static void entries_free(struct entries *l)
{
	for (int64_t i = 0; i < l->n; i++)
		free(l->v[i].path);
	free(l->v);
	memset(l, 0, sizeof *l);
}

/* Returns v (elements of size sz, n used, *cap allocated), moved if need be,
 * with room for one more; NULL when out of memory (v is then untouched). */
static void *grow(void *v, int64_t n, int64_t *cap, size_t sz)
{
	if (n < *cap)
		return v;
	int64_t ncap = *cap ? *cap * 2 : 16;
	void *nv = realloc(v, (size_t)ncap * sz);
	if (nv)
		*cap = ncap;
	return nv;
}

static bool is_image_name(const char *name)
{
	const char *dot = strrchr(name, '.');
	return dot && (strcasecmp(dot, ".jpg") == 0 || strcasecmp(dot, ".jpeg") == 0 ||
		       strcasecmp(dot, ".png") == 0);
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names in dir of sub-directories (dirs) or image files (!dirs),
 * hidden ones skipped. */
static enum isif_rc list_dir(const char *dir, bool dirs, struct names *out, struct isif_error *err)
{
	char path[ISIF_DS_PATH_MAX];
	int rc = ISIF_OK;
	memset(out, 0, sizeof *out);
	DIR *d = opendir(dir);
	if (!d)
		return isif_fail(err, ISIF_EIO, "%s: %s", dir, strerror(errno));
	for (struct dirent *e; (e = readdir(d)) != NULL;) {
		if (e->d_name[0] == '.' || (!dirs && !is_image_name(e->d_name)))
			continue;
		if ((rc = isif_ds_join(path, dir, e->d_name, err)) != ISIF_OK)
			break;
		if (dirs ? !isif_ds_is_dir(path) : !isif_ds_is_file(path))
			continue;
		if (out->n >= ISIF_DS_MAX_IMAGES) {
			rc = isif_fail(err, ISIF_EFORMAT, "%s: more than %lld entries", dir,
				       ISIF_DS_MAX_IMAGES);
			break;
		}
		char *copy = strdup(e->d_name);
		char **nv = copy ? grow(out->v, out->n, &out->cap, sizeof *nv) : NULL;
		if (!nv) {
			free(copy);
			rc = isif_fail(err, ISIF_ENOMEM, "%s: out of memory", dir);
			break;
		}
		out->v = nv;
		out->v[out->n++] = copy;
	}
	closedir(d);
	if (rc)
		names_free(out);
	else if (out->n > 1)
		qsort(out->v, (size_t)out->n, sizeof *out->v, by_name);
	return rc;
}

/* Appends the images of dir/<class> with the given label. */
static enum isif_rc add_class(struct entries *l, const char *dir, const char *cls, int32_t label,
		     int64_t *added, struct isif_error *err)
{
	char cdir[ISIF_DS_PATH_MAX], path[ISIF_DS_PATH_MAX];
	struct names files;
	int rc = isif_ds_join(cdir, dir, cls, err);
	if (!rc)
		rc = list_dir(cdir, false, &files, err);
	if (rc)
		return rc;
	for (int64_t i = 0; i < files.n && !rc; i++) {
		if (l->n >= ISIF_DS_MAX_IMAGES) {
			rc = isif_fail(err, ISIF_EFORMAT, "%s: more than %lld images", dir,
				       ISIF_DS_MAX_IMAGES);
			break;
		}
		if ((rc = isif_ds_join(path, cdir, files.v[i], err)) != ISIF_OK)
			break;
		char *copy = strdup(path);
		struct entry *nv = copy ? grow(l->v, l->n, &l->cap, sizeof *nv) : NULL;
		if (!nv) {
			free(copy);
			rc = isif_fail(err, ISIF_ENOMEM, "%s: out of memory", cdir);
			break;
		}
		l->v = nv;
		l->v[l->n].path = copy;
		l->v[l->n].label = label;
		l->n++;
	}
	*added = files.n;
	names_free(&files);
	return rc;
}

/* Lists the train files, one class folder after the other. */
static enum isif_rc collect_train(struct entries *l, const char *dir, const struct names *classes,
			 struct isif_error *err)
{
	for (int64_t k = 0; k < classes->n; k++) {
		int64_t added = 0;
		int rc = add_class(l, dir, classes->v[k], (int32_t)k, &added, err);
		if (rc)
			return rc;
		if (added == 0)
			return isif_fail(err, ISIF_EFORMAT, "%s/%s: no .jpg/.jpeg/.png images",
					 dir, classes->v[k]);
	}
	return ISIF_OK;
}

/* Lists the test files; their classes must be among train's. */
static enum isif_rc collect_test(struct entries *l, const char *dir, const struct names *classes,
			struct isif_error *err)
{
	struct names tc;
	int rc = list_dir(dir, true, &tc, err);
	if (rc)
		return rc;
	if (tc.n == 0)
		rc = isif_fail(err, ISIF_EFORMAT, "%s: no class folders", dir);
	for (int64_t k = 0; k < tc.n && !rc; k++) {
		char **hit = bsearch(&tc.v[k], classes->v, (size_t)classes->n,
				     sizeof *classes->v, by_name);
		int64_t added;
		if (!hit)
			rc = isif_fail(err, ISIF_EFORMAT, "%s/%s: class not present in train",
				       dir, tc.v[k]);
		else
			rc = add_class(l, dir, tc.v[k], (int32_t)(hit - classes->v), &added, err);
	}
	names_free(&tc);
	return rc;
}

/*
 * Moves a seeded 10% of train (n_test = round(n/10), at most n − 1) to
 * test: a Fisher–Yates shuffle of 0..n−1 from (holdout_seed, "holdout")
 * picks the first n_test indices; both splits keep the sorted file order.
 */
static enum isif_rc hold_out(struct entries *train, struct entries *test, uint64_t seed, struct isif_error *err)
{
	int64_t n = train->n, n_test = (n + 5) / 10;
	if (n_test > n - 1)
		n_test = n - 1;
	if (n_test <= 0)
		return ISIF_OK;
	int32_t *idx = malloc((size_t)n * sizeof *idx);
	bool *pick = calloc((size_t)n, sizeof *pick);
	test->v = malloc((size_t)n_test * sizeof *test->v);
	if (!idx || !pick || !test->v) {
		free(idx);
		free(pick);
		return isif_fail(err, ISIF_ENOMEM, "hold-out: out of memory");
	}
	test->cap = n_test;
	struct isif_rng rng;
	isif_rng_seed(&rng, seed, HOLDOUT_STREAM);
	for (int64_t i = 0; i < n; i++)
		idx[i] = (int32_t)i;
	isif_rng_shuffle(&rng, idx, n);
	for (int64_t k = 0; k < n_test; k++)
		pick[idx[k]] = true;
	int64_t kept = 0;
	for (int64_t i = 0; i < n; i++) {
		if (pick[i])
			test->v[test->n++] = train->v[i];
		else
			train->v[kept++] = train->v[i];
	}
	train->n = kept;
	free(idx);
	free(pick);
	return ISIF_OK;
}

/* Reads and decodes one file, then resizes it to s×s and writes it with 3
 * channels into dst; *colour says whether the file had 3 channels. */
static enum isif_rc load_image(uint8_t *dst, int s, const char *path,
		      const struct isif_dataset_options *opt, uint8_t *tmp,
		      bool *colour, struct isif_error *err)
{
	struct isif_error msg;
	struct stat st;
	void *buf = NULL;
	size_t len;
	uint8_t *pix = NULL;
	int c, h, w;
	if (stat(path, &st) != 0)
		return isif_fail(err, ISIF_EIO, "%s: %s", path, strerror(errno));
	if ((int64_t)st.st_size > opt->limits.max_bytes)
		return isif_fail(err, ISIF_ERANGE, "%s: %lld bytes, over the limit of %lld",
				 path, (long long)st.st_size, (long long)opt->limits.max_bytes);
	int rc = isif_read_file(path, (size_t)opt->limits.max_bytes, &buf, &len, err);
	if (rc)
		return rc;
	rc = isif_image_decode(buf, len, &opt->limits, &pix, &c, &h, &w, &msg);
	free(buf);
	if (rc)
		return isif_fail(err, rc, "%s: %s", path, msg.msg);
	*colour = c == 3;
	if (c == 3) {
		isif_image_resize_u8(dst, s, s, pix, 3, h, w);
	} else {
		isif_image_resize_u8(tmp, s, s, pix, 1, h, w);
		isif_image_convert_u8(dst, 3, tmp, 1, s, s);
	}
	free(pix);
	return ISIF_OK;
}

static enum isif_rc decode_split(struct isif_split *sp, const struct entries *l, const char *what,
			const struct isif_dataset_options *opt, bool *any_colour, struct isif_error *err)
{
	int s = opt->image_size;
	int rc = isif_ds_split_alloc(sp, l->n, 3, s, s, what, err);
	if (rc)
		return rc;
	uint8_t *tmp = malloc((size_t)s * (size_t)s);
	if (!tmp)
		return isif_fail(err, ISIF_ENOMEM, "%s: out of memory", what);
	size_t per = 3 * (size_t)s * (size_t)s;
	for (int64_t i = 0; i < l->n && !rc; i++) {
		bool colour = false;
		rc = load_image(sp->pixels + (size_t)i * per, s, l->v[i].path, opt, tmp, &colour, err);
		sp->labels[i] = l->v[i].label;
		*any_colour |= colour;
	}
	free(tmp);
	return rc;
}

/* Keeps channel 0 of every image (all three are equal for gray data). */
static void to_gray(struct isif_split *sp)
{
	size_t plane = (size_t)sp->h * (size_t)sp->w;
	for (int64_t i = 0; i < sp->n; i++)
		memmove(sp->pixels + (size_t)i * plane, sp->pixels + (size_t)i * 3 * plane, plane);
	sp->c = 1;
	uint8_t *shrunk = realloc(sp->pixels, (size_t)sp->n * plane + 1);
	if (shrunk)
		sp->pixels = shrunk;
}

static enum isif_rc take_class_names(struct isif_dataset *ds, struct names *classes, struct isif_error *err)
{
	if (classes->n > 1000000)
		return isif_fail(err, ISIF_EFORMAT, "more than 1000000 classes");
	ds->num_classes = (int)classes->n;
	ds->class_names = classes->v;
	memset(classes, 0, sizeof *classes);
	return ISIF_OK;
}

/* Finds train/ and test/ (or root as train with no test); see the top comment. */
static enum isif_rc find_layout(const char *dir, char *train, char *test, bool *has_test, struct isif_error *err)
{
	int rc = isif_ds_join(train, dir, "train", err);
	if (!rc)
		rc = isif_ds_join(test, dir, "test", err);
	if (rc)
		return rc;
	bool t = isif_ds_is_dir(train), v = isif_ds_is_dir(test);
	if (!t && v)
		return isif_fail(err, ISIF_EFORMAT, "%s: has test/ but no train/", dir);
	if (!t)
		snprintf(train, ISIF_DS_PATH_MAX, "%s", dir);
	*has_test = v;
	return ISIF_OK;
}

enum isif_rc isif_folder_load(struct isif_dataset *ds, const char *dir,
		     const struct isif_dataset_options *opt, struct isif_error *err)
{
	char train_dir[ISIF_DS_PATH_MAX], test_dir[ISIF_DS_PATH_MAX];
	struct names classes = {0};
	struct entries train = {0}, test = {0};
	bool has_test = false, colour = false;
	int rc = find_layout(dir, train_dir, test_dir, &has_test, err);
	if (!rc)
		rc = list_dir(train_dir, true, &classes, err);
	if (!rc && classes.n == 0)
		rc = isif_fail(err, ISIF_EFORMAT,
			       "%s: no class folders (expected <class>/<image> or train/<class>/<image>)",
			       train_dir);
	if (!rc)
		rc = collect_train(&train, train_dir, &classes, err);
	if (!rc)
		rc = has_test ? collect_test(&test, test_dir, &classes, err)
			      : hold_out(&train, &test, opt->holdout_seed, err);
	if (!rc)
		rc = decode_split(&ds->train, &train, train_dir, opt, &colour, err);
	if (!rc)
		rc = decode_split(&ds->test, &test, has_test ? test_dir : train_dir, opt,
				  &colour, err);
	if (!rc && !colour) {
		to_gray(&ds->train);
		to_gray(&ds->test);
	}
	if (!rc)
		rc = take_class_names(ds, &classes, err);
	names_free(&classes);
	entries_free(&train);
	entries_free(&test);
	return rc;
}

enum isif_rc isif_folder_probe(const char *dir, const struct isif_dataset_options *opt,
			       struct isif_dataset_shape *out, struct isif_error *err)
{
	char train_dir[ISIF_DS_PATH_MAX], test_dir[ISIF_DS_PATH_MAX];
	struct names classes = {0};
	struct entries train = {0}, test = {0};
	bool has_test = false;
	int rc = find_layout(dir, train_dir, test_dir, &has_test, err);
	if (!rc)
		rc = list_dir(train_dir, true, &classes, err);
	if (!rc && classes.n == 0)
		rc = isif_fail(err, ISIF_EFORMAT,
			       "%s: no class folders (expected <class>/<image> or train/<class>/<image>)",
			       train_dir);
	if (!rc)
		rc = collect_train(&train, train_dir, &classes, err);
	if (!rc && has_test)
		rc = collect_test(&test, test_dir, &classes, err);
	if (!rc && classes.n > 1000000)
		rc = isif_fail(err, ISIF_EFORMAT, "more than 1000000 classes");
	if (!rc) {
		/* hold_out's split, counted without choosing the images */
		int64_t held = (train.n + 5) / 10;
		held = has_test ? 0 : held < train.n - 1 ? held : train.n - 1;
		out->n_train = train.n - (held > 0 ? held : 0);
		out->n_test = has_test ? test.n : (held > 0 ? held : 0);
		out->c = 3;
		out->h = out->w = opt->image_size;
		out->num_classes = (int)classes.n;
	}
	names_free(&classes);
	entries_free(&train);
	entries_free(&test);
	return rc;
}

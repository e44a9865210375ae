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
 * A class is a top-level sub-folder; its images are found anywhere below it
 * (folder_walk.c: torchvision's order, links followed, loops skipped,
 * bounded depth and counts). Only .jpg/.jpeg/.png files (any case) count;
 * names starting with '.' are skipped, so a folder always loads the same
 * way. Every image is decoded (folder_decode.c, opt->threads threads),
 * resized to image_size² (bilinear, as torchvision) and brought to the
 * dataset's channel count: 3 when any image is colour (gray ones
 * replicated), else 1. One image that fails to decode fails the load.
 * With opt->cache_dir the result is cached decoded (folder_cache.c).
 */
#include "data/folder_impl.h"

#include <stdlib.h>
#include <string.h>

#include "isif/base/rng.h"

#define HOLDOUT_STREAM 0x686f6c646f7574ULL /* "holdout" */

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists the train files, one class folder after the other. */
static enum isif_rc collect_train(struct folder_entries *l, const char *dir,
				  const struct folder_names *classes, int64_t *dirs,
				  struct isif_error *err)
{
	for (int64_t k = 0; k < classes->n; k++) {
		int64_t added = 0;
		char cdir[ISIF_DS_PATH_MAX];
		int rc = isif_ds_join(cdir, dir, classes->v[k], err);
		if (!rc)
			rc = folder_walk_class(l, cdir, (int32_t)k, dirs, &added, err);
		if (rc)
			return rc;
		if (added == 0)
			return isif_fail(err, ISIF_EFORMAT, "%s/%s: no .jpg/.jpeg/.png images",
					 dir, classes->v[k]);
	}
	return ISIF_OK;
}

/* Lists the test files; their classes must be among train's. */
static enum isif_rc collect_test(struct folder_entries *l, const char *dir,
				 const struct folder_names *classes, int64_t *dirs,
				 struct isif_error *err)
{
	char cdir[ISIF_DS_PATH_MAX];
	struct folder_names tc;
	int rc = folder_list_dir(dir, true, &tc, err);
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
			rc = isif_ds_join(cdir, dir, tc.v[k], err) ? ISIF_EINVAL
			     : folder_walk_class(l, cdir, (int32_t)(hit - classes->v), dirs, &added, err);
	}
	folder_names_free(&tc);
	return rc;
}

/*
 * Moves a seeded 10% of train (n_test = round(n/10), at most n − 1) to
 * test: a Fisher–Yates shuffle of 0..n−1 from (holdout_seed, "holdout")
 * picks the first n_test indices; both splits keep the sorted file order.
 */
static enum isif_rc hold_out(struct folder_entries *train, struct folder_entries *test, uint64_t seed, struct isif_error *err)
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

static enum isif_rc take_class_names(struct isif_dataset *ds, struct folder_names *classes, struct isif_error *err)
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

/* Decodes the listed splits into ds (channels, class names taken). */
static enum isif_rc decode_all(struct isif_dataset *ds, const struct folder_entries *train,
			       const struct folder_entries *test, const char *train_dir,
			       const char *test_dir, struct folder_names *classes,
			       const struct isif_dataset_options *opt, struct isif_error *err)
{
	bool colour = false;
	int rc = folder_decode(&ds->train, train, train_dir, opt, &colour, err);
	if (!rc)
		rc = folder_decode(&ds->test, test, test_dir, opt, &colour, err);
	if (!rc && !colour) {
		to_gray(&ds->train);
		to_gray(&ds->test);
	}
	if (!rc)
		rc = take_class_names(ds, classes, err);
	return rc;
}

/* With a cache directory: maps the cache file of this listing when it is
 * valid, else decodes (holding the key's lock, so that concurrent loaders
 * of the same folder decode it once) and stores the result. */
static enum isif_rc load_cached(struct isif_dataset *ds, const char *dir,
				const struct folder_entries *train, const struct folder_entries *test,
				const char *train_dir, const char *test_dir,
				struct folder_names *classes, const struct isif_dataset_options *opt,
				struct isif_error *err)
{
	struct folder_key key;
	int rc = folder_cache_key(&key, dir, train, test, opt, err);
	if (rc)
		return rc;
	if (folder_cache_open(ds, opt->cache_dir, &key, false))
		return ISIF_OK;
	int lock = folder_cache_lock(opt->cache_dir, &key);
	if (lock >= 0 && folder_cache_open(ds, opt->cache_dir, &key, true)) {
		folder_cache_unlock(lock);   /* another loader built it meanwhile */
		return ISIF_OK;
	}
	rc = decode_all(ds, train, test, train_dir, test_dir, classes, opt, err);
	if (!rc) {   /* only a whole, successful load is ever stored */
		isif_ds_channel_stats(ds);
		if (lock >= 0)
			folder_cache_store(ds, opt->cache_dir, &key, opt->cache_max_bytes);
		else
			snprintf(ds->cache_note, sizeof ds->cache_note,
				 "not stored: %s: cannot create or lock", opt->cache_dir);
		if (lock < 0)
			ds->cache = ISIF_DS_CACHE_UNSTORED;
		folder_cache_unlock(lock);
	} else {   /* a failed load leaves no lock file behind */
		folder_cache_unlock_failed(lock, opt->cache_dir, &key);
	}
	return rc;
}

/* Lists a folder dataset: its layout, class names and both splits' files. */
static enum isif_rc list_folder(const char *dir, char *train_dir, char *test_dir, bool *has_test,
				struct folder_names *classes, struct folder_entries *train,
				struct folder_entries *test, struct isif_error *err)
{
	int rc = find_layout(dir, train_dir, test_dir, has_test, err);
	if (!rc)
		rc = folder_list_dir(train_dir, true, classes, err);
	if (!rc && classes->n == 0)
		rc = isif_fail(err, ISIF_EFORMAT,
			       "%s: no class folders (expected <class>/<image> or train/<class>/<image>)",
			       train_dir);
	if (!rc && classes->n > 1000000)
		rc = isif_fail(err, ISIF_EFORMAT, "more than 1000000 classes");
	int64_t dirs = 0;   /* folders walked, for the ISIF_DS_MAX_DIRS bound */
	if (!rc)
		rc = collect_train(train, train_dir, classes, &dirs, err);
	if (!rc && *has_test)
		rc = collect_test(test, test_dir, classes, &dirs, err);
	return rc;
}

enum isif_rc isif_folder_load(struct isif_dataset *ds, const char *dir,
		     const struct isif_dataset_options *opt, struct isif_error *err)
{
	char train_dir[ISIF_DS_PATH_MAX], test_dir[ISIF_DS_PATH_MAX];
	struct folder_names classes = {0};
	struct folder_entries train = {0}, test = {0};
	bool has_test = false;
	int rc = list_folder(dir, train_dir, test_dir, &has_test, &classes, &train, &test, err);
	if (!rc && !has_test)
		rc = hold_out(&train, &test, opt->holdout_seed, err);
	const char *tdir = has_test ? test_dir : train_dir;
	if (!rc && opt->cache_dir && opt->cache_dir[0])
		rc = load_cached(ds, dir, &train, &test, train_dir, tdir, &classes, opt, err);
	else if (!rc)
		rc = decode_all(ds, &train, &test, train_dir, tdir, &classes, opt, err);
	folder_names_free(&classes);
	folder_entries_free(&train);
	folder_entries_free(&test);
	return rc;
}

enum isif_rc isif_folder_probe(const char *dir, const struct isif_dataset_options *opt,
			       struct isif_dataset_shape *out, struct isif_error *err)
{
	char train_dir[ISIF_DS_PATH_MAX], test_dir[ISIF_DS_PATH_MAX];
	struct folder_names classes = {0};
	struct folder_entries train = {0}, test = {0};
	bool has_test = false;
	int rc = list_folder(dir, train_dir, test_dir, &has_test, &classes, &train, &test, err);
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
	folder_names_free(&classes);
	folder_entries_free(&train);
	folder_entries_free(&test);
	return rc;
}

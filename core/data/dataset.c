/*
 * core/data/dataset.c — the dataset front door: options and their defaults,
 * format names, AUTO detection from the files present, dispatch to the
 * per-format readers, the per-channel mean/std of the train split, and
 * freeing. The readers themselves live in dataset_<format>.c.
 */
#include "isif/data/dataset.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>

#include "data/dataset_impl.h"

void isif_dataset_options_default(struct isif_dataset_options *opt)
{
	static const struct isif_image_limits image_defaults = ISIF_IMAGE_LIMITS_DEFAULT;
	memset(opt, 0, sizeof *opt);
	opt->image_size = 32;
	opt->limits = image_defaults;
	opt->holdout_seed = 0;
	opt->stl_unlabeled = false;
}

static const char *const format_names[] = {
	[ISIF_FMT_AUTO] = "auto",
	[ISIF_FMT_IDX] = "idx",
	[ISIF_FMT_CIFAR10] = "cifar10",
	[ISIF_FMT_CIFAR100] = "cifar100",
	[ISIF_FMT_STL10] = "stl10",
	[ISIF_FMT_FOLDER] = "folder",
};
#define N_FORMATS ((int)(sizeof format_names / sizeof format_names[0]))

int isif_dataset_format_parse(const char *name)
{
	if (!name)
		return -1;
	for (int i = 0; i < N_FORMATS; i++)
		if (strcasecmp(name, format_names[i]) == 0)
			return i;
	return -1;
}

const char *isif_dataset_format_name(enum isif_dataset_format fmt)
{
	if ((int)fmt < 0 || (int)fmt >= N_FORMATS)
		return "unknown";
	return format_names[fmt];
}

void isif_dataset_free(struct isif_dataset *ds)
{
	if (!ds)
		return;
	if (ds->map) {
		munmap(ds->map, ds->map_len);
	} else {
		free(ds->train.pixels);
		free(ds->train.labels);
		free(ds->test.pixels);
		free(ds->test.labels);
	}
	if (ds->class_names)
		for (int i = 0; i < ds->num_classes; i++)
			free(ds->class_names[i]);
	free(ds->class_names);
	memset(ds, 0, sizeof *ds);
}

/* True when dir or one of its usual sub-folders holds the file name. */
static bool has_file(const char *dir, const char *sub, const char *name)
{
	char path[ISIF_DS_PATH_MAX];
	int k = sub ? snprintf(path, sizeof path, "%s/%s/%s", dir, sub, name)
		    : snprintf(path, sizeof path, "%s/%s", dir, name);
	return k > 0 && k < (int)sizeof path && isif_ds_is_file(path);
}

/* Guesses the format from the files present; a folder is the fallback,
 * whose reader explains what is missing when there are no class folders. */
static enum isif_dataset_format detect(const char *dir)
{
	if (has_file(dir, NULL, "train-images-idx3-ubyte") ||
	    has_file(dir, NULL, "train-images-idx3-ubyte.gz"))
		return ISIF_FMT_IDX;
	if (has_file(dir, NULL, "data_batch_1.bin") ||
	    has_file(dir, "cifar-10-batches-bin", "data_batch_1.bin"))
		return ISIF_FMT_CIFAR10;
	if (has_file(dir, NULL, "train.bin") ||
	    has_file(dir, "cifar-100-binary", "train.bin"))
		return ISIF_FMT_CIFAR100;
	if (has_file(dir, NULL, "train_X.bin") ||
	    has_file(dir, "stl10_binary", "train_X.bin"))
		return ISIF_FMT_STL10;
	return ISIF_FMT_FOLDER;
}

static enum isif_rc check_options(const struct isif_dataset_options *o, struct isif_error *err)
{
	if (o->image_size < 1 || o->image_size > ISIF_DS_MAX_SIDE)
		return isif_fail(err, ISIF_EINVAL, "image_size %d out of range 1..%d",
				 o->image_size, ISIF_DS_MAX_SIDE);
	if (o->limits.max_bytes < 1 || o->limits.max_pixels < 1 || o->limits.max_side < 1)
		return isif_fail(err, ISIF_EINVAL, "image limits must be positive");
	return ISIF_OK;
}

/*
 * Mean and (population) standard deviation per channel of the train split
 * on the 0..1 scale, as torchvision users compute them (x.mean(), x.std()
 * with ddof 0 over all pixels of a channel). A 256-bin histogram per channel
 * makes the sums exact:
 *   mean = Σ_v v·n_v / (N·255),  var = Σ_v n_v (v/255 − mean)² / N.
 * A constant channel (std 0) gets std 1 so Normalize never divides by 0.
 * A 1-channel dataset repeats its values in mean[1..2], std[1..2].
 */
void isif_ds_channel_stats(struct isif_dataset *ds)
{
	const struct isif_split *s = &ds->train;
	int64_t hw = (int64_t)s->h * s->w;
	for (int ch = 0; ch < 3; ch++) {
		ds->mean[ch] = 0.0f;
		ds->std[ch] = 1.0f;
	}
	for (int ch = 0; ch < s->c && s->n > 0; ch++) {
		uint64_t hist[256] = {0};
		for (int64_t i = 0; i < s->n; i++) {
			const uint8_t *p = s->pixels + (i * s->c + ch) * hw;
			for (int64_t k = 0; k < hw; k++)
				hist[p[k]]++;
		}
		double count = (double)s->n * (double)hw, sum = 0.0, var = 0.0;
		for (int v = 0; v < 256; v++)
			sum += (double)v * (double)hist[v];
		double mean = sum / count / 255.0;
		for (int v = 0; v < 256; v++) {
			double d = v / 255.0 - mean;
			var += (double)hist[v] * d * d;
		}
		double sd = sqrt(var / count);
		ds->mean[ch] = (float)mean;
		ds->std[ch] = sd > 0.0 ? (float)sd : 1.0f;
	}
	for (int ch = s->c; ch < 3 && s->c == 1; ch++) {
		ds->mean[ch] = ds->mean[0];
		ds->std[ch] = ds->std[0];
	}
}

/* The directory behind the name "fashion-mnist", and the format AUTO finds. */
static enum isif_rc resolve(const char **path, enum isif_dataset_format *fmt,
			    struct isif_error *err)
{
	if (strcmp(*path, "fashion-mnist") == 0) {
		*path = ISIF_FASHION_MNIST_DIR;
		if (*fmt == ISIF_FMT_AUTO)
			*fmt = ISIF_FMT_IDX;
	}
	if (!isif_ds_is_dir(*path))
		return isif_fail(err, ISIF_EIO, "%s: not a directory", *path);
	if (*fmt == ISIF_FMT_AUTO)
		*fmt = detect(*path);
	return ISIF_OK;
}

static enum isif_rc dispatch(struct isif_dataset *ds, const char *dir,
		    enum isif_dataset_format fmt,
		    const struct isif_dataset_options *opt, struct isif_error *err)
{
	switch (fmt) {
	case ISIF_FMT_IDX: return isif_idx_load(ds, dir, err);
	case ISIF_FMT_CIFAR10: return isif_cifar_load(ds, dir, false, err);
	case ISIF_FMT_CIFAR100: return isif_cifar_load(ds, dir, true, err);
	case ISIF_FMT_STL10: return isif_stl_load(ds, dir, opt, err);
	case ISIF_FMT_FOLDER: return isif_folder_load(ds, dir, opt, err);
	default:
		return isif_fail(err, ISIF_EINVAL, "unknown dataset format %d", (int)fmt);
	}
}

/* What loading and probing share: a path, options (defaults when NULL, stored
 * in *defaults), checked, and the format resolved. */
static enum isif_rc prepare(const char **path, enum isif_dataset_format *fmt,
			    const struct isif_dataset_options **opt,
			    struct isif_dataset_options *defaults, struct isif_error *err)
{
	if (!*path || !**path)
		return isif_fail(err, ISIF_EINVAL, "dataset: empty path");
	if (!*opt) {
		isif_dataset_options_default(defaults);
		*opt = defaults;
	}
	enum isif_rc rc = check_options(*opt, err);
	return rc ? rc : resolve(path, fmt, err);
}

enum isif_rc isif_dataset_load(struct isif_dataset *ds, const char *path,
		      enum isif_dataset_format fmt,
		      const struct isif_dataset_options *opt, struct isif_error *err)
{
	struct isif_dataset_options defaults;
	if (!ds)
		return isif_fail(err, ISIF_EINVAL, "dataset: NULL output");
	memset(ds, 0, sizeof *ds);
	int rc = prepare(&path, &fmt, &opt, &defaults, err);
	if (rc)
		return rc;
	rc = dispatch(ds, path, fmt, opt, err);
	if (rc == ISIF_OK && ds->train.n < 1)
		rc = isif_fail(err, ISIF_EFORMAT, "%s: the train split is empty", path);
	if (rc) {
		isif_dataset_free(ds);
		return rc;
	}
	ds->format = fmt;
	if (ds->cache == ISIF_DS_CACHE_OFF)   /* a cached folder load has them already */
		isif_ds_channel_stats(ds);
	return ISIF_OK;
}

void isif_dataset_shape_of(const struct isif_dataset *ds, struct isif_dataset_shape *out)
{
	out->n_train = ds->train.n;
	out->n_test = ds->test.n;
	out->c = ds->train.c;
	out->h = ds->train.h;
	out->w = ds->train.w;
	out->num_classes = ds->num_classes;
}

enum isif_rc isif_dataset_probe(const char *path, enum isif_dataset_format fmt,
				const struct isif_dataset_options *opt,
				struct isif_dataset_shape *out, struct isif_error *err)
{
	struct isif_dataset_options defaults;
	memset(out, 0, sizeof *out);
	int rc = prepare(&path, &fmt, &opt, &defaults, err);
	if (rc)
		return rc;
	switch (fmt) {
	case ISIF_FMT_IDX: rc = isif_idx_probe(path, out, err); break;
	case ISIF_FMT_CIFAR10: rc = isif_cifar_probe(path, false, out, err); break;
	case ISIF_FMT_CIFAR100: rc = isif_cifar_probe(path, true, out, err); break;
	case ISIF_FMT_STL10: rc = isif_stl_probe(path, opt, out, err); break;
	case ISIF_FMT_FOLDER: rc = isif_folder_probe(path, opt, out, err); break;
	default:
		return isif_fail(err, ISIF_EINVAL, "unknown dataset format %d", (int)fmt);
	}
	if (rc == ISIF_OK && out->n_train < 1)
		rc = isif_fail(err, ISIF_EFORMAT, "%s: the train split is empty", path);
	return rc;
}

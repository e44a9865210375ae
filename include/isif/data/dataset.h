/*
 * isif/data/dataset.h — image datasets held in memory as uint8 CHW images:
 * IDX (MNIST / Fashion-MNIST, gzip or plain), CIFAR-10/100 binary batches,
 * STL-10 binary, and image folders (JPEG and PNG files, decoded by
 * isif/data/image.h within the options' image limits).
 * Readers validate everything (magic numbers, sizes, counts, truncation,
 * limits) and name the offending file in err; they never crash or exit.
 * A loaded dataset is immutable and may be shared read-only across threads.
 */
#ifndef ISIF_DATASET_H
#define ISIF_DATASET_H

#include <stdbool.h>
#include <stdint.h>

#include "isif/base/common.h"
#include "isif/data/image.h"

enum isif_dataset_format {
	ISIF_FMT_AUTO = 0,  /* guess from the files present */
	ISIF_FMT_IDX,
	ISIF_FMT_CIFAR10,
	ISIF_FMT_CIFAR100,
	ISIF_FMT_STL10,
	ISIF_FMT_FOLDER,
};

/* One split: n images of c×h×w uint8 (CHW, row-major), labels in
 * [0, num_classes) or −1 where unlabelled. */
struct isif_split {
	int64_t n;
	int c, h, w;
	uint8_t *pixels;   /* n·c·h·w bytes, owned */
	int32_t *labels;   /* n, owned */
};

/* What a folder load did with its decoded cache (isif_dataset_options.cache_dir). */
enum isif_dataset_cache {
	ISIF_DS_CACHE_OFF = 0,  /* no cache asked for, or not a folder */
	ISIF_DS_CACHE_HIT,      /* mapped from a valid cache file: nothing decoded */
	ISIF_DS_CACHE_STORED,   /* decoded, then written to the cache */
	ISIF_DS_CACHE_UNSTORED, /* decoded; the cache file could not be written (cache_note) */
};

struct isif_dataset {
	enum isif_dataset_format format;
	struct isif_split train, test;
	int num_classes;
	char **class_names;   /* num_classes owned strings, or NULL */
	float mean[3], std[3]; /* per channel of train, on the 0..1 scale */
	enum isif_dataset_cache cache;
	char cache_note[4352]; /* the cache file used or written, or why none was */
	void *map;             /* the cache file mapped read-only (writing into a split then
				* faults: a cached dataset is immutable): pixels and labels point */
	size_t map_len;        /* into it (then they are not owned), else NULL / 0 */
};

struct isif_dataset_options {
	int image_size;          /* folder: resize every image to this square size (default 32) */
	struct isif_image_limits limits; /* folder: per image file (default ISIF_IMAGE_LIMITS_DEFAULT) */
	uint64_t holdout_seed;   /* folder without test/: seeded 10% of train held out */
	bool stl_unlabeled;      /* stl10: append unlabeled_X.bin to train (labels −1) */
	int threads;             /* folder: decoding threads (< 2: one); any count gives the same bytes */
	const char *cache_dir;   /* folder: directory of decoded caches (created), or NULL for none */
	int64_t cache_max_bytes; /* folder: the cache files' total bound (≤ 0: ISIF_DS_CACHE_MAX_DEFAULT) */
};

/* The default bound on a cache directory's decoded files (16 GiB). */
#define ISIF_DS_CACHE_MAX_DEFAULT (16LL << 30)

/* Fills opt with the defaults above. */
void isif_dataset_options_default(struct isif_dataset_options *opt);

/* Format from its name ("idx", "cifar10", "cifar100", "stl10", "folder", "auto");
 * returns −1 for an unknown name. */
int isif_dataset_format_parse(const char *name);
const char *isif_dataset_format_name(enum isif_dataset_format fmt);

/*
 * Loads the dataset at path (a directory; for IDX the directory holding
 * train-images-idx3-ubyte[.gz] etc.). The name "fashion-mnist" resolves to
 * /usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist).
 * Computes mean/std of train. opt may be NULL (defaults). Caller frees ds.
 */
enum isif_rc isif_dataset_load(struct isif_dataset *ds, const char *path,
		      enum isif_dataset_format fmt,
		      const struct isif_dataset_options *opt, struct isif_error *err);

/* What a dataset holds, without its pixels. */
struct isif_dataset_shape {
	int64_t n_train, n_test;   /* images per split */
	int c, h, w;               /* each image, as loaded (c: an upper bound when probed,
				    * see isif_dataset_probe) */
	int num_classes;
};

/* The shape of a loaded dataset. */
void isif_dataset_shape_of(const struct isif_dataset *ds, struct isif_dataset_shape *out);

/*
 * The shape isif_dataset_load would give, found cheaply: IDX headers (and
 * the small label files, for the class count), CIFAR and STL file sizes,
 * an image folder's file counts (images are not decoded: c is 3, the most
 * a folder loads as, and h = w = the options' image_size). Fails as load
 * does on a missing path or file and on malformed headers or sizes; a
 * probe that passes does not promise that every image decodes.
 */
enum isif_rc isif_dataset_probe(const char *path, enum isif_dataset_format fmt,
				const struct isif_dataset_options *opt,
				struct isif_dataset_shape *out, struct isif_error *err);

/* Frees what isif_dataset_load allocated and zeroes ds. */
void isif_dataset_free(struct isif_dataset *ds);

/* Default location of the Fashion-MNIST files from Debian's package. */
#define ISIF_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

#endif

/*
 * tests/unit/test_dataset_probe.c — isif_dataset_probe, the cheap look at a
 * dataset the daemon takes at submit: for every format it gives the shape
 * that loading the dataset gives (an image folder's channel count as its
 * upper bound, 3), and it fails where loading fails on a missing path, a
 * missing file or a malformed header or size.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "dataset_testutil.h"
#include "isif/base/common.h"
#include "isif/data/dataset.h"
#include "isif/data/image.h"

static char *tmp(char *out, const char *rel)
{
	snprintf(out, 4096, "%s/%s", test_tmpdir(), rel);
	tu_mkdirs(out);
	return out;
}

/* An IDX file: magic, big-endian dims, then bytes from 0 on (labels mod 10). */
static void put_idx(const char *dir, const char *name, uint32_t magic, const uint32_t *dims,
		    int nd, bool gz)
{
	char path[8192];
	size_t len = 1;
	for (int i = 0; i < nd; i++)
		len *= dims[i];
	size_t hl = 4 + 4 * (size_t)nd;
	uint8_t *buf = calloc(1, hl + len);
	uint32_t words[4] = { magic, dims[0], nd > 1 ? dims[1] : 0, nd > 2 ? dims[2] : 0 };
	for (int w = 0; w <= nd; w++)
		for (int b = 0; b < 4; b++)
			buf[4 * w + b] = (uint8_t)(words[w] >> (24 - 8 * b));
	for (size_t i = 0; i < len; i++)
		buf[hl + i] = (uint8_t)(i % 10);
	snprintf(path, sizeof path, "%s/%s%s", dir, name, gz ? ".gz" : "");
	CHECK((gz ? tu_write_gz(path, buf, hl + len) : tu_write(path, buf, hl + len)) == 0);
	free(buf);
}

/* Probe and load agree on everything but, for folders, the channels. */
static void check_agree(const char *dir, enum isif_dataset_format fmt,
			const struct isif_dataset_options *opt, const char *what)
{
	struct isif_dataset ds;
	struct isif_dataset_shape loaded, probed;
	struct isif_error err = {0};
	CHECK_MSG(isif_dataset_load(&ds, dir, fmt, opt, &err) == ISIF_OK, "%s: %s", what, err.msg);
	CHECK_MSG(isif_dataset_probe(dir, fmt, opt, &probed, &err) == ISIF_OK, "%s: %s", what,
		  err.msg);
	isif_dataset_shape_of(&ds, &loaded);
	bool folder = ds.format == ISIF_FMT_FOLDER;
	CHECK_MSG(probed.n_train == loaded.n_train && probed.n_test == loaded.n_test &&
		  probed.h == loaded.h && probed.w == loaded.w &&
		  probed.num_classes == loaded.num_classes &&
		  (folder ? probed.c == 3 : probed.c == loaded.c),
		  "%s: probed %lld+%lld %dx%dx%d %d classes, loaded %lld+%lld %dx%dx%d %d classes",
		  what, (long long)probed.n_train, (long long)probed.n_test, probed.c, probed.h,
		  probed.w, probed.num_classes, (long long)loaded.n_train, (long long)loaded.n_test,
		  loaded.c, loaded.h, loaded.w, loaded.num_classes);
	isif_dataset_free(&ds);
}

TEST(dataset_probe_idx_cifar_stl)
{
	char dir[4096], path[8192];
	/* IDX: 30 + 7 images of 5x6, labels 0..9 (mixed plain and gzip) */
	tmp(dir, "probe_idx");
	put_idx(dir, "train-images-idx3-ubyte", 0x803, (uint32_t[]){ 30, 5, 6 }, 3, true);
	put_idx(dir, "train-labels-idx1-ubyte", 0x801, (uint32_t[]){ 30 }, 1, false);
	put_idx(dir, "t10k-images-idx3-ubyte", 0x803, (uint32_t[]){ 7, 5, 6 }, 3, false);
	put_idx(dir, "t10k-labels-idx1-ubyte", 0x801, (uint32_t[]){ 7 }, 1, true);
	check_agree(dir, ISIF_FMT_AUTO, NULL, "idx");

	/* CIFAR-10: 3 + 2 + 1 + 1 + 1 train records, 2 test records */
	tmp(dir, "probe_cifar10");
	for (int f = 1; f <= 5; f++) {
		size_t n = f == 1 ? 3 : f == 2 ? 2 : 1, len = n * 3073;
		uint8_t *buf = calloc(1, len);
		snprintf(path, sizeof path, "%s/data_batch_%d.bin", dir, f);
		CHECK(tu_write(path, buf, len) == 0);
		free(buf);
	}
	uint8_t *rec = calloc(2, 3074);
	snprintf(path, sizeof path, "%s/test_batch.bin", dir);
	CHECK(tu_write(path, rec, 2 * 3073) == 0);
	check_agree(dir, ISIF_FMT_AUTO, NULL, "cifar10");
	/* CIFAR-100: records of 3074 bytes, in the archive's folder */
	tmp(dir, "probe_cifar100/cifar-100-binary");
	snprintf(path, sizeof path, "%s/train.bin", dir);
	CHECK(tu_write(path, rec, 2 * 3074) == 0);
	snprintf(path, sizeof path, "%s/test.bin", dir);
	CHECK(tu_write(path, rec, 3074) == 0);
	check_agree(tmp(dir, "probe_cifar100"), ISIF_FMT_CIFAR100, NULL, "cifar100");
	free(rec);

	/* STL-10: 2 train (+1 unlabeled), 1 test image */
	tmp(dir, "probe_stl");
	uint8_t *img = calloc(3, 27648);
	snprintf(path, sizeof path, "%s/train_X.bin", dir);
	CHECK(tu_write(path, img, 2 * 27648) == 0);
	snprintf(path, sizeof path, "%s/unlabeled_X.bin", dir);
	CHECK(tu_write(path, img, 27648) == 0);
	snprintf(path, sizeof path, "%s/test_X.bin", dir);
	CHECK(tu_write(path, img, 27648) == 0);
	snprintf(path, sizeof path, "%s/train_y.bin", dir);
	CHECK(tu_write(path, (uint8_t[]){ 1, 2 }, 2) == 0);
	snprintf(path, sizeof path, "%s/test_y.bin", dir);
	CHECK(tu_write(path, (uint8_t[]){ 3 }, 1) == 0);
	free(img);
	check_agree(dir, ISIF_FMT_AUTO, NULL, "stl10");
	struct isif_dataset_options o;
	isif_dataset_options_default(&o);
	o.stl_unlabeled = true;
	check_agree(dir, ISIF_FMT_STL10, &o, "stl10 with unlabeled");
}

/* A 4x4 gray (c = 1) or colour PNG at test_tmpdir()/rel. */
static void put_png(const char *rel, int c)
{
	char path[4096];
	uint8_t px[48];
	void *png;
	size_t len;
	struct isif_error err = {0};
	for (int i = 0; i < 48; i++)
		px[i] = (uint8_t)(i * 5);
	CHECK(isif_image_encode_png(px, c, 4, 4, &png, &len, &err) == ISIF_OK);
	CHECK(tu_write(tu_path(path, rel), png, len) == 0);
	free(png);
}

TEST(dataset_probe_folder)
{
	char dir[4096], rel[256];
	struct isif_dataset_options o;
	isif_dataset_options_default(&o);
	o.image_size = 20;
	/* train/ and test/: 3 classes, 5 + 2 images each, one colour image */
	for (int k = 0; k < 3; k++)
		for (int i = 0; i < 7; i++) {
			snprintf(rel, sizeof rel, "probe_folder/%s/c%d/i%d.png", i < 5 ? "train" : "test",
				 k, i);
			put_png(rel, k == 1 && i == 0 ? 3 : 1);
		}
	check_agree(tmp(dir, "probe_folder"), ISIF_FMT_AUTO, &o, "folder with test/");
	/* no test/: 10% of 23 held out (2), the same count the loader holds out */
	for (int k = 0; k < 2; k++)
		for (int i = 0; i < (k ? 11 : 12); i++) {
			snprintf(rel, sizeof rel, "probe_holdout/c%d/i%d.png", k, i);
			put_png(rel, 1);
		}
	check_agree(tmp(dir, "probe_holdout"), ISIF_FMT_FOLDER, &o, "folder holding out");
	/* one image: none held out */
	put_png("probe_single/c0/i0.png", 1);
	check_agree(tmp(dir, "probe_single"), ISIF_FMT_FOLDER, &o, "folder of one image");
}

TEST(dataset_probe_fails_as_load_fails)
{
	char dir[4096], path[8192];
	struct isif_dataset_shape s;
	struct isif_error err = {0};
	CHECK_EQ(isif_dataset_probe("/nonexistent/isif-probe", ISIF_FMT_AUTO, NULL, &s, &err),
		 ISIF_EIO);
	CHECK_EQ(isif_dataset_probe("", ISIF_FMT_AUTO, NULL, &s, &err), ISIF_EINVAL);
	/* IDX with a labels file missing, then with a bad magic */
	tmp(dir, "probe_bad_idx");
	put_idx(dir, "train-images-idx3-ubyte", 0x803, (uint32_t[]){ 3, 4, 4 }, 3, false);
	put_idx(dir, "t10k-images-idx3-ubyte", 0x803, (uint32_t[]){ 1, 4, 4 }, 3, false);
	put_idx(dir, "t10k-labels-idx1-ubyte", 0x801, (uint32_t[]){ 1 }, 1, false);
	CHECK_EQ(isif_dataset_probe(dir, ISIF_FMT_IDX, NULL, &s, &err), ISIF_EIO);
	CHECK_MSG(strstr(err.msg, "train-labels-idx1-ubyte"), "%s", err.msg);
	put_idx(dir, "train-labels-idx1-ubyte", 0x802, (uint32_t[]){ 3 }, 1, false);
	CHECK_EQ(isif_dataset_probe(dir, ISIF_FMT_IDX, NULL, &s, &err), ISIF_EFORMAT);
	CHECK_MSG(strstr(err.msg, "bad magic"), "%s", err.msg);
	/* CIFAR-10 with a truncated record */
	tmp(dir, "probe_bad_cifar");
	uint8_t *buf = calloc(1, 3073);
	for (int f = 1; f <= 5; f++) {
		snprintf(path, sizeof path, "%s/data_batch_%d.bin", dir, f);
		CHECK(tu_write(path, buf, f == 3 ? 3000 : 3073) == 0);
	}
	snprintf(path, sizeof path, "%s/test_batch.bin", dir);
	CHECK(tu_write(path, buf, 3073) == 0);
	free(buf);
	CHECK_EQ(isif_dataset_probe(dir, ISIF_FMT_CIFAR10, NULL, &s, &err), ISIF_EFORMAT);
	CHECK_MSG(strstr(err.msg, "data_batch_3.bin"), "%s", err.msg);
}

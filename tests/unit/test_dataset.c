/*
 * tests/unit/test_dataset.c — the IDX, CIFAR-10/100 and STL-10 readers and
 * the front door (core/dataset*.c) on files the tests write themselves:
 * exact pixels and labels back, mean/std against hand values, and corrupt
 * variants that must fail with the right code and name the file. The real
 * Fashion-MNIST from Debian's package is checked when installed.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "dataset_testutil.h"
#include "isif/base/common.h"
#include "isif/data/dataset.h"

/* test_tmpdir()/name, created. */
static char *mkdir_tmp(char *out, const char *name)
{
	snprintf(out, 4096, "%s/%s", test_tmpdir(), name);
	tu_mkdirs(out);
	return out;
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* Writes dir/name (gzip when gz) holding an IDX header and payload. */
static void write_idx(const char *dir, const char *name, bool gz, uint32_t magic,
		      const uint32_t *dims, int nd, const uint8_t *data, size_t len)
{
	char path[8192];
	size_t hl = 4 + 4 * (size_t)nd;
	uint8_t *buf = malloc(hl + len + 1);
	put_be32(buf, magic);
	for (int i = 0; i < nd; i++)
		put_be32(buf + 4 + 4 * i, dims[i]);
	if (len)
		memcpy(buf + hl, data, len);
	snprintf(path, sizeof path, "%s/%s%s", dir, name, gz ? ".gz" : "");
	CHECK((gz ? tu_write_gz(path, buf, hl + len) : tu_write(path, buf, hl + len)) == 0);
	free(buf);
}

static uint8_t idx_pixel(int i, int y, int x)
{
	return (uint8_t)(i * 50 + y * 4 + x * 3 + (i == 1 && y == 2 ? 200 : 0));
}

/* Train: 5 images 3x4, labels 0 1 2 0 1; test: 2 images, labels 4 0.
 * gz_mask bit k gzips file k (train images, train labels, test images,
 * test labels). */
static void write_idx_set(const char *dir, int gz_mask)
{
	uint8_t px[5 * 12], lab[5] = { 0, 1, 2, 0, 1 }, tlab[2] = { 4, 0 };
	for (int i = 0; i < 5; i++)
		for (int y = 0; y < 3; y++)
			for (int x = 0; x < 4; x++)
				px[i * 12 + y * 4 + x] = idx_pixel(i, y, x);
	uint32_t d3[3] = { 5, 3, 4 }, d1[1] = { 5 }, t3[3] = { 2, 3, 4 }, t1[1] = { 2 };
	write_idx(dir, "train-images-idx3-ubyte", gz_mask & 1, 0x803, d3, 3, px, sizeof px);
	write_idx(dir, "train-labels-idx1-ubyte", gz_mask & 2, 0x801, d1, 1, lab, 5);
	write_idx(dir, "t10k-images-idx3-ubyte", gz_mask & 4, 0x803, t3, 3, px + 12, 24);
	write_idx(dir, "t10k-labels-idx1-ubyte", gz_mask & 8, 0x801, t1, 1, tlab, 2);
}

static void check_idx_set(const struct isif_dataset *ds)
{
	CHECK_EQ(ds->format, ISIF_FMT_IDX);
	CHECK_EQ(ds->train.n, 5);
	CHECK_EQ(ds->test.n, 2);
	CHECK(ds->train.c == 1 && ds->train.h == 3 && ds->train.w == 4);
	CHECK(ds->test.c == 1 && ds->test.h == 3 && ds->test.w == 4);
	CHECK_EQ(ds->num_classes, 5); /* max label 4, in test */
	if (ds->train.n != 5 || ds->test.n != 2)
		return;
	const int want[5] = { 0, 1, 2, 0, 1 };
	for (int i = 0; i < 5; i++) {
		CHECK_EQ(ds->train.labels[i], want[i]);
		for (int k = 0; k < 12; k++)
			CHECK_EQ(ds->train.pixels[i * 12 + k], idx_pixel(i, k / 4, k % 4));
	}
	CHECK_EQ(ds->test.labels[0], 4);
	CHECK_EQ(ds->test.labels[1], 0);
	for (int k = 0; k < 24; k++)
		CHECK_EQ(ds->test.pixels[k], idx_pixel(1 + k / 12, k % 12 / 4, k % 4));
	/* mean/std against a direct two-pass sum over the train pixels */
	double s = 0, ss = 0;
	for (int k = 0; k < 60; k++)
		s += ds->train.pixels[k] / 255.0;
	for (int k = 0; k < 60; k++)
		ss += (ds->train.pixels[k] / 255.0 - s / 60) * (ds->train.pixels[k] / 255.0 - s / 60);
	CHECK_NEAR(ds->mean[0], s / 60, 1e-6);
	CHECK_NEAR(ds->std[0], sqrt(ss / 60), 1e-6);
}

TEST(dataset_idx_plain_gz_mixed)
{
	char dir[4096];
	struct isif_error err = {0};
	const int masks[3] = { 0, 15, 5 }; /* plain, all gz, images gz + labels plain */
	for (int m = 0; m < 3; m++) {
		char name[32];
		snprintf(name, sizeof name, "idx_ok_%d", m);
		mkdir_tmp(dir, name);
		write_idx_set(dir, masks[m]);
		for (int f = 0; f < 2; f++) {
			struct isif_dataset ds;
			int rc = isif_dataset_load(&ds, dir, f ? ISIF_FMT_IDX : ISIF_FMT_AUTO, NULL, &err);
			CHECK_MSG(rc == ISIF_OK, "mask %d: rc %d: %s", masks[m], rc, err.msg);
			check_idx_set(&ds);
			CHECK(ds.class_names == NULL);
			isif_dataset_free(&ds);
			CHECK(ds.train.pixels == NULL && ds.num_classes == 0);
		}
	}
}

/* IDX files hold no names: class_names.txt beside them gives them when it
 * lists exactly num_classes (5 here) names; any other count is ignored. */
TEST(dataset_idx_class_names_file)
{
	char dir[4096], path[8192];
	struct isif_error err = {0};
	mkdir_tmp(dir, "idx_names");
	write_idx_set(dir, 0);
	snprintf(path, sizeof path, "%s/class_names.txt", dir);
	const char four[] = "zero\none\ntwo\nthree\n";
	CHECK(tu_write(path, four, strlen(four)) == 0);
	struct isif_dataset ds;
	CHECK_MSG(isif_dataset_load(&ds, dir, ISIF_FMT_AUTO, NULL, &err) == ISIF_OK, "%s", err.msg);
	CHECK(ds.class_names == NULL);
	isif_dataset_free(&ds);
	const char five[] = "zero\none\ntwo\nthree\nfour\n";
	CHECK(tu_write(path, five, strlen(five)) == 0);
	CHECK_MSG(isif_dataset_load(&ds, dir, ISIF_FMT_AUTO, NULL, &err) == ISIF_OK, "%s", err.msg);
	CHECK(ds.class_names && strcmp(ds.class_names[0], "zero") == 0 &&
	      strcmp(ds.class_names[4], "four") == 0);
	isif_dataset_free(&ds);
}

/* Loads dir as IDX and checks rc and that err names `file`. */
static void expect_fail(const char *dir, enum isif_dataset_format fmt,
			const struct isif_dataset_options *opt, int want_rc,
			const char *file, const char *what)
{
	struct isif_dataset ds;
	struct isif_error err = {0};
	int rc = isif_dataset_load(&ds, dir, fmt, opt, &err);
	CHECK_MSG(rc == want_rc, "%s: rc %d, want %d (%s)", what, rc, want_rc, err.msg);
	CHECK_MSG(strstr(err.msg, file) != NULL, "%s: message '%s' does not name %s", what, err.msg, file);
	CHECK(ds.train.pixels == NULL && ds.test.pixels == NULL);
	isif_dataset_free(&ds);
}

TEST(dataset_idx_corrupt)
{
	char dir[4096], path[8192];
	uint8_t px[5 * 12] = {0}, lab[6] = {0};
	uint32_t d3[3] = { 5, 3, 4 }, d1[1] = { 5 };

	mkdir_tmp(dir, "idx_bad_magic");
	write_idx_set(dir, 0);
	write_idx(dir, "train-images-idx3-ubyte", false, 0x804, d3, 3, px, sizeof px);
	expect_fail(dir, ISIF_FMT_IDX, NULL, ISIF_EFORMAT, "train-images-idx3-ubyte", "bad magic");
	write_idx(dir, "train-images-idx3-ubyte", false, 0x803, d3, 3, px, sizeof px);
	write_idx(dir, "t10k-labels-idx1-ubyte", false, 0x803, d1, 1, lab, 5);
	expect_fail(dir, ISIF_FMT_IDX, NULL, ISIF_EFORMAT, "t10k-labels-idx1-ubyte", "labels magic");

	mkdir_tmp(dir, "idx_truncated");
	write_idx_set(dir, 0);
	write_idx(dir, "train-images-idx3-ubyte", false, 0x803, d3, 3, px, sizeof px - 5);
	expect_fail(dir, ISIF_FMT_IDX, NULL, ISIF_EFORMAT, "train-images-idx3-ubyte", "truncated");
	write_idx(dir, "train-images-idx3-ubyte", false, 0x803, d3, 2, NULL, 0);
	expect_fail(dir, ISIF_FMT_IDX, NULL, ISIF_EFORMAT, "train-images-idx3-ubyte", "short header");
	write_idx(dir, "train-images-idx3-ubyte", false, 0x803, d3, 3, px, sizeof px);
	write_idx(dir, "train-labels-idx1-ubyte", false, 0x801, d1, 1, lab, 6);
	expect_fail(dir, ISIF_FMT_IDX, NULL, ISIF_EFORMAT, "train-labels-idx1-ubyte", "trailing");

	/* a gzip file cut in half, and one with a damaged middle */
	mkdir_tmp(dir, "idx_gz_cut");
	write_idx_set(dir, 1);
	snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", dir);
	size_t len;
	uint8_t *gz = tu_read(path, &len);
	CHECK(gz && tu_write(path, gz, len / 2) == 0);
	expect_fail(dir, ISIF_FMT_IDX, NULL, ISIF_EFORMAT, "train-images-idx3-ubyte.gz", "gz cut");
	gz[len / 2] ^= 0x55;
	gz[len / 2 + 1] ^= 0xAA;
	CHECK(tu_write(path, gz, len) == 0);
	expect_fail(dir, ISIF_FMT_IDX, NULL, ISIF_EFORMAT, "train-images-idx3-ubyte.gz", "gz damaged");
	free(gz);

	mkdir_tmp(dir, "idx_count");
	write_idx_set(dir, 0);
	uint32_t four[1] = { 4 };
	write_idx(dir, "train-labels-idx1-ubyte", false, 0x801, four, 1, lab, 4);
	expect_fail(dir, ISIF_FMT_IDX, NULL, ISIF_EFORMAT, "train-labels-idx1-ubyte", "count mismatch");

	mkdir_tmp(dir, "idx_dims");
	write_idx_set(dir, 0);
	uint32_t wide[3] = { 1, 1, 5000 }, many[3] = { 0xFFFFFFFFu, 28, 28 },
		 big[3] = { 9999999, 28, 28 };
	write_idx(dir, "train-images-idx3-ubyte", false, 0x803, wide, 3, px, 10);
	expect_fail(dir, ISIF_FMT_IDX, NULL, ISIF_EFORMAT, "train-images-idx3-ubyte", "too wide");
	write_idx(dir, "train-images-idx3-ubyte", false, 0x803, many, 3, px, 10);
	expect_fail(dir, ISIF_FMT_IDX, NULL, ISIF_EFORMAT, "train-images-idx3-ubyte", "too many");
	/* within the caps but the data is not there: fails without allocating 7.8 GB */
	write_idx(dir, "train-images-idx3-ubyte", false, 0x803, big, 3, px, 10);
	expect_fail(dir, ISIF_FMT_IDX, NULL, ISIF_EFORMAT, "train-images-idx3-ubyte", "claims 10M");

	mkdir_tmp(dir, "idx_test_shape");
	write_idx_set(dir, 0);
	uint32_t t5[3] = { 2, 4, 3 };
	write_idx(dir, "t10k-images-idx3-ubyte", false, 0x803, t5, 3, px, 24);
	expect_fail(dir, ISIF_FMT_IDX, NULL, ISIF_EFORMAT, "idx_test_shape", "test shape");

	mkdir_tmp(dir, "idx_missing");
	write_idx_set(dir, 0);
	snprintf(path, sizeof path, "%s/t10k-labels-idx1-ubyte", dir);
	CHECK(remove(path) == 0);
	expect_fail(dir, ISIF_FMT_IDX, NULL, ISIF_EIO, "t10k-labels-idx1-ubyte", "missing");
}

/* ---- CIFAR ----------------------------------------------------------- */

static uint8_t cifar_pixel(int i, int k)
{
	return (uint8_t)(i * 17 + k * 7 + k / 1024);
}

/* Writes `n` CIFAR records starting at global image index `first`;
 * label of image i is i % mod (fine) and i % 20 (coarse, CIFAR-100). */
static void write_cifar(const char *dir, const char *name, int first, int n,
			bool hundred, int mod)
{
	char path[8192];
	int rec = hundred ? 3074 : 3073, lb = hundred ? 2 : 1;
	uint8_t *buf = malloc((size_t)n * rec);
	for (int r = 0; r < n; r++) {
		int i = first + r;
		uint8_t *p = buf + (size_t)r * rec;
		if (hundred)
			p[0] = (uint8_t)(i % 20);
		p[lb - 1] = (uint8_t)(i % mod);
		for (int k = 0; k < 3072; k++)
			p[lb + k] = cifar_pixel(i, k);
	}
	snprintf(path, sizeof path, "%s/%s", dir, name);
	CHECK(tu_write(path, buf, (size_t)n * rec) == 0);
	free(buf);
}

/* Batches of 2,1,1,1,3 records (images 0..7), test 2 records (100, 101). */
static void write_cifar10_set(const char *dir)
{
	const int counts[5] = { 2, 1, 1, 1, 3 };
	for (int b = 0, at = 0; b < 5; at += counts[b], b++) {
		char name[32];
		snprintf(name, sizeof name, "data_batch_%d.bin", b + 1);
		write_cifar(dir, name, at, counts[b], false, 10);
	}
	write_cifar(dir, "test_batch.bin", 100, 2, false, 10);
}

static void check_cifar_split(const struct isif_split *s, int n, int first, int mod)
{
	CHECK_EQ(s->n, n);
	CHECK(s->c == 3 && s->h == 32 && s->w == 32);
	for (int i = 0; i < n && s->n == n; i++) {
		CHECK_EQ(s->labels[i], (first + i) % mod);
		for (int k = 0; k < 3072; k += 97)
			CHECK_EQ(s->pixels[(size_t)i * 3072 + k], cifar_pixel(first + i, k));
	}
}

TEST(dataset_cifar10_read)
{
	char dir[4096], sub[4096];
	struct isif_error err = {0};
	struct isif_dataset ds;
	mkdir_tmp(dir, "cifar10_flat");
	write_cifar10_set(dir);
	CHECK_EQ(isif_dataset_load(&ds, dir, ISIF_FMT_AUTO, NULL, &err), ISIF_OK);
	CHECK_EQ(ds.format, ISIF_FMT_CIFAR10);
	CHECK_EQ(ds.num_classes, 10);
	check_cifar_split(&ds.train, 8, 0, 10);
	check_cifar_split(&ds.test, 2, 100, 10);
	CHECK(ds.class_names == NULL);
	isif_dataset_free(&ds);

	/* the archive's own folder, with its label names file */
	mkdir_tmp(dir, "cifar10_archive");
	mkdir_tmp(sub, "cifar10_archive/cifar-10-batches-bin");
	write_cifar10_set(sub);
	char path[8192];
	const char names[] = "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n";
	snprintf(path, sizeof path, "%s/batches.meta.txt", sub);
	CHECK(tu_write(path, names, strlen(names)) == 0);
	CHECK_EQ(isif_dataset_load(&ds, dir, ISIF_FMT_CIFAR10, NULL, &err), ISIF_OK);
	check_cifar_split(&ds.train, 8, 0, 10);
	CHECK(ds.class_names && strcmp(ds.class_names[0], "airplane") == 0 &&
	      strcmp(ds.class_names[9], "truck") == 0);
	isif_dataset_free(&ds);
}

TEST(dataset_cifar100_read)
{
	char dir[4096];
	struct isif_error err = {0};
	struct isif_dataset ds;
	mkdir_tmp(dir, "cifar100");
	write_cifar(dir, "train.bin", 95, 9, true, 100); /* fine labels 95..99, 0..3 */
	write_cifar(dir, "test.bin", 50, 2, true, 100);
	CHECK_EQ(isif_dataset_load(&ds, dir, ISIF_FMT_AUTO, NULL, &err), ISIF_OK);
	CHECK_EQ(ds.format, ISIF_FMT_CIFAR100);
	CHECK_EQ(ds.num_classes, 100);
	check_cifar_split(&ds.train, 9, 95, 100);
	check_cifar_split(&ds.test, 2, 50, 100);
	isif_dataset_free(&ds);
}

TEST(dataset_cifar_corrupt)
{
	char dir[4096], path[8192];
	mkdir_tmp(dir, "cifar10_bad");
	write_cifar10_set(dir);
	/* a record short */
	snprintf(path, sizeof path, "%s/data_batch_2.bin", dir);
	size_t len;
	uint8_t *b = tu_read(path, &len);
	CHECK(b && tu_write(path, b, len - 100) == 0);
	expect_fail(dir, ISIF_FMT_CIFAR10, NULL, ISIF_EFORMAT, "data_batch_2.bin", "short record");
	CHECK(tu_write(path, b, 0) == 0);
	expect_fail(dir, ISIF_FMT_CIFAR10, NULL, ISIF_EFORMAT, "data_batch_2.bin", "empty batch");
	/* label 10 in the test batch */
	CHECK(tu_write(path, b, len) == 0); /* restored */
	b[0] = 10;
	snprintf(path, sizeof path, "%s/test_batch.bin", dir);
	CHECK(tu_write(path, b, len) == 0);
	expect_fail(dir, ISIF_FMT_CIFAR10, NULL, ISIF_EFORMAT, "test_batch.bin", "label 10");
	free(b);
	snprintf(path, sizeof path, "%s/data_batch_3.bin", dir);
	CHECK(remove(path) == 0);
	expect_fail(dir, ISIF_FMT_CIFAR10, NULL, ISIF_EIO, "data_batch_3.bin", "missing batch");

	mkdir_tmp(dir, "cifar100_bad");
	write_cifar(dir, "train.bin", 99, 2, true, 101); /* fine label 100 */
	write_cifar(dir, "test.bin", 0, 1, true, 100);
	expect_fail(dir, ISIF_FMT_CIFAR100, NULL, ISIF_EFORMAT, "train.bin", "fine 100");
	write_cifar(dir, "train.bin", 0, 1, true, 100);
	snprintf(path, sizeof path, "%s/test.bin", dir);
	b = tu_read(path, &len);
	b[0] = 20; /* coarse label out of 0..19 */
	CHECK(tu_write(path, b, len) == 0);
	free(b);
	expect_fail(dir, ISIF_FMT_CIFAR100, NULL, ISIF_EFORMAT, "test.bin", "coarse 20");
}

/* ---- STL-10 ---------------------------------------------------------- */

/* The value of pixel (row y, column x) of channel c of image i; stored on
 * disk at c·9216 + x·96 + y (column-major). 3x and 7y keep x, y apart. */
static uint8_t stl_pixel(int i, int c, int y, int x)
{
	return (uint8_t)(i * 41 + c * 83 + x * 3 + y * 7);
}

static void write_stl_x(const char *dir, const char *name, int first, int n)
{
	char path[8192];
	uint8_t *buf = malloc((size_t)n * 27648);
	for (int r = 0; r < n; r++)
		for (int c = 0; c < 3; c++)
			for (int x = 0; x < 96; x++)
				for (int y = 0; y < 96; y++)
					buf[(size_t)r * 27648 + c * 9216 + x * 96 + y] =
						stl_pixel(first + r, c, y, x);
	snprintf(path, sizeof path, "%s/%s", dir, name);
	CHECK(tu_write(path, buf, (size_t)n * 27648) == 0);
	free(buf);
}

static void write_stl_set(const char *dir)
{
	char path[8192];
	write_stl_x(dir, "train_X.bin", 0, 2);
	write_stl_x(dir, "test_X.bin", 5, 1);
	write_stl_x(dir, "unlabeled_X.bin", 9, 1);
	snprintf(path, sizeof path, "%s/train_y.bin", dir);
	CHECK(tu_write(path, (uint8_t[]){ 1, 10 }, 2) == 0);
	snprintf(path, sizeof path, "%s/test_y.bin", dir);
	CHECK(tu_write(path, (uint8_t[]){ 4 }, 1) == 0);
}

static void check_stl_image(const struct isif_split *s, int at, int i)
{
	int bad = 0;
	for (int c = 0; c < 3; c++)
		for (int y = 0; y < 96; y++)
			for (int x = 0; x < 96; x++)
				bad += s->pixels[(size_t)at * 27648 + (c * 96 + y) * 96 + x] !=
				       stl_pixel(i, c, y, x);
	CHECK_MSG(bad == 0, "image %d: %d pixels not transposed right", i, bad);
}

TEST(dataset_stl10_transpose_labels)
{
	char dir[4096], sub[4096];
	struct isif_error err = {0};
	struct isif_dataset ds;
	struct isif_dataset_options o;
	mkdir_tmp(dir, "stl");
	mkdir_tmp(sub, "stl/stl10_binary");
	write_stl_set(sub);
	CHECK_EQ(isif_dataset_load(&ds, dir, ISIF_FMT_AUTO, NULL, &err), ISIF_OK);
	CHECK_EQ(ds.format, ISIF_FMT_STL10);
	CHECK_EQ(ds.num_classes, 10);
	CHECK_EQ(ds.train.n, 2);
	CHECK_EQ(ds.test.n, 1);
	CHECK(ds.train.c == 3 && ds.train.h == 96 && ds.train.w == 96);
	if (ds.train.n == 2 && ds.test.n == 1) {
		CHECK_EQ(ds.train.labels[0], 0);
		CHECK_EQ(ds.train.labels[1], 9);
		CHECK_EQ(ds.test.labels[0], 3);
		check_stl_image(&ds.train, 0, 0);
		check_stl_image(&ds.train, 1, 1);
		check_stl_image(&ds.test, 0, 5);
	}
	isif_dataset_free(&ds);

	isif_dataset_options_default(&o);
	o.stl_unlabeled = true;
	CHECK_EQ(isif_dataset_load(&ds, sub, ISIF_FMT_STL10, &o, &err), ISIF_OK);
	CHECK_EQ(ds.train.n, 3);
	if (ds.train.n == 3) {
		CHECK_EQ(ds.train.labels[2], -1);
		check_stl_image(&ds.train, 2, 9);
	}
	isif_dataset_free(&ds);
}

TEST(dataset_stl10_corrupt)
{
	char dir[4096], path[8192];
	struct isif_dataset_options o;
	mkdir_tmp(dir, "stl_bad");
	write_stl_set(dir);
	snprintf(path, sizeof path, "%s/train_y.bin", dir);
	CHECK(tu_write(path, (uint8_t[]){ 1, 11 }, 2) == 0);
	expect_fail(dir, ISIF_FMT_STL10, NULL, ISIF_EFORMAT, "train_y.bin", "label 11");
	CHECK(tu_write(path, (uint8_t[]){ 0, 1 }, 2) == 0);
	expect_fail(dir, ISIF_FMT_STL10, NULL, ISIF_EFORMAT, "train_y.bin", "label 0");
	CHECK(tu_write(path, (uint8_t[]){ 1, 2, 3 }, 3) == 0);
	expect_fail(dir, ISIF_FMT_STL10, NULL, ISIF_EFORMAT, "train_y.bin", "count mismatch");
	CHECK(tu_write(path, (uint8_t[]){ 1, 2 }, 2) == 0);

	snprintf(path, sizeof path, "%s/test_X.bin", dir);
	size_t len;
	uint8_t *b = tu_read(path, &len);
	CHECK(b && tu_write(path, b, len - 1) == 0);
	free(b);
	expect_fail(dir, ISIF_FMT_STL10, NULL, ISIF_EFORMAT, "test_X.bin", "truncated X");
	write_stl_x(dir, "test_X.bin", 5, 1);

	snprintf(path, sizeof path, "%s/unlabeled_X.bin", dir);
	CHECK(remove(path) == 0);
	isif_dataset_options_default(&o);
	o.stl_unlabeled = true;
	expect_fail(dir, ISIF_FMT_STL10, &o, ISIF_EIO, "unlabeled_X.bin", "missing unlabeled");
}

/* ---- front door ------------------------------------------------------ */

TEST(dataset_format_names_options)
{
	const char *names[] = { "auto", "idx", "cifar10", "cifar100", "stl10", "folder" };
	for (int i = 0; i < 6; i++) {
		CHECK_EQ(isif_dataset_format_parse(names[i]), i);
		CHECK(strcmp(isif_dataset_format_name((enum isif_dataset_format)i), names[i]) == 0);
	}
	CHECK_EQ(isif_dataset_format_parse("CIFAR10"), ISIF_FMT_CIFAR10);
	CHECK_EQ(isif_dataset_format_parse("mnist-ish"), -1);
	CHECK_EQ(isif_dataset_format_parse(NULL), -1);
	CHECK(strcmp(isif_dataset_format_name((enum isif_dataset_format)99), "unknown") == 0);

	struct isif_dataset_options o;
	isif_dataset_options_default(&o);
	CHECK_EQ(o.image_size, 32);
	CHECK_EQ(o.limits.max_bytes, 32 << 20);
	CHECK_EQ(o.limits.max_pixels, 40000000);
	CHECK_EQ(o.limits.max_side, 16384);
	CHECK(!o.stl_unlabeled);
}

TEST(dataset_load_bad_paths_options)
{
	char dir[4096];
	struct isif_error err = {0};
	struct isif_dataset ds;
	struct isif_dataset_options o;
	CHECK_EQ(isif_dataset_load(&ds, "/nonexistent/isif-data", ISIF_FMT_AUTO, NULL, &err), ISIF_EIO);
	CHECK(strstr(err.msg, "/nonexistent/isif-data") != NULL);
	CHECK_EQ(isif_dataset_load(&ds, "", ISIF_FMT_AUTO, NULL, &err), ISIF_EINVAL);
	mkdir_tmp(dir, "empty_dataset");
	expect_fail(dir, ISIF_FMT_AUTO, NULL, ISIF_EFORMAT, "no class folders", "empty dir");
	expect_fail(dir, ISIF_FMT_IDX, NULL, ISIF_EIO, "train-images-idx3-ubyte", "empty idx");
	expect_fail(dir, ISIF_FMT_CIFAR10, NULL, ISIF_EIO, "data_batch_1.bin", "empty cifar");
	expect_fail(dir, ISIF_FMT_STL10, NULL, ISIF_EIO, "train_X.bin", "empty stl");
	isif_dataset_options_default(&o);
	o.image_size = 0;
	CHECK_EQ(isif_dataset_load(&ds, dir, ISIF_FMT_FOLDER, &o, &err), ISIF_EINVAL);
	CHECK_EQ(isif_dataset_load(&ds, dir, (enum isif_dataset_format)42, NULL, &err), ISIF_EINVAL);
}

TEST(dataset_mean_std_hand_values)
{
	/* IDX: two 1x2 images (0, 255): mean ½, std ½ on the 0..1 scale */
	char dir[4096];
	struct isif_error err = {0};
	struct isif_dataset ds;
	mkdir_tmp(dir, "meanstd_idx");
	uint8_t px[4] = { 0, 255, 255, 0 }, lab[2] = { 0, 1 };
	uint32_t d3[3] = { 2, 1, 2 }, d1[1] = { 2 };
	write_idx(dir, "train-images-idx3-ubyte", false, 0x803, d3, 3, px, 4);
	write_idx(dir, "train-labels-idx1-ubyte", false, 0x801, d1, 1, lab, 2);
	write_idx(dir, "t10k-images-idx3-ubyte", false, 0x803, d3, 3, px, 4);
	write_idx(dir, "t10k-labels-idx1-ubyte", false, 0x801, d1, 1, lab, 2);
	CHECK_EQ(isif_dataset_load(&ds, dir, ISIF_FMT_AUTO, NULL, &err), ISIF_OK);
	CHECK_NEAR(ds.mean[0], 0.5, 1e-7);
	CHECK_NEAR(ds.std[0], 0.5, 1e-7);
	CHECK_NEAR(ds.mean[2], 0.5, 1e-7); /* 1 channel: repeated */
	CHECK_EQ(ds.num_classes, 2);
	isif_dataset_free(&ds);

	/* CIFAR-10, two train images per the 5 batches... one image per batch:
	 * R constant 51 → mean 0.2, std 0 (reported as 1, never divide by 0);
	 * G half 0, half 255 → 0.5, 0.5; B half 0, half 102 → 0.2, 0.2 */
	mkdir_tmp(dir, "meanstd_cifar");
	uint8_t rec[3073];
	for (int b = 0; b < 6; b++) {
		char path[8192];
		rec[0] = 0;
		for (int k = 0; k < 1024; k++) {
			rec[1 + k] = 51;
			rec[1 + 1024 + k] = (k % 2) ? 255 : 0;
			rec[1 + 2048 + k] = (k < 512) ? 102 : 0;
		}
		if (b < 5)
			snprintf(path, sizeof path, "%s/data_batch_%d.bin", dir, b + 1);
		else
			snprintf(path, sizeof path, "%s/test_batch.bin", dir);
		CHECK(tu_write(path, rec, sizeof rec) == 0);
	}
	CHECK_EQ(isif_dataset_load(&ds, dir, ISIF_FMT_AUTO, NULL, &err), ISIF_OK);
	CHECK_NEAR(ds.mean[0], 0.2, 1e-7);
	CHECK_NEAR(ds.std[0], 1.0, 0);
	CHECK_NEAR(ds.mean[1], 0.5, 1e-7);
	CHECK_NEAR(ds.std[1], 0.5, 1e-7);
	CHECK_NEAR(ds.mean[2], 0.2, 1e-7);
	CHECK_NEAR(ds.std[2], 0.2, 1e-7);
	isif_dataset_free(&ds);
}

TEST(dataset_fashion_mnist_real)
{
	struct stat st;
	if (stat(ISIF_FASHION_MNIST_DIR, &st) != 0) {
		printf("    (skipped: %s not installed)\n", ISIF_FASHION_MNIST_DIR);
		return;
	}
	struct isif_dataset ds;
	struct isif_error err = {0};
	int rc = isif_dataset_load(&ds, "fashion-mnist", ISIF_FMT_AUTO, NULL, &err);
	CHECK_MSG(rc == ISIF_OK, "rc %d: %s", rc, err.msg);
	if (rc)
		return;
	CHECK_EQ(ds.format, ISIF_FMT_IDX);
	CHECK_EQ(ds.train.n, 60000);
	CHECK_EQ(ds.test.n, 10000);
	CHECK(ds.train.c == 1 && ds.train.h == 28 && ds.train.w == 28);
	CHECK_EQ(ds.num_classes, 10);
	/* the IDX files hold no names: Debian's copy gets Fashion-MNIST's own */
	CHECK(ds.class_names && strcmp(ds.class_names[0], "T-shirt/top") == 0 &&
	      strcmp(ds.class_names[6], "Shirt") == 0 &&
	      strcmp(ds.class_names[9], "Ankle boot") == 0);
	/* reference figures from numpy on the same files (/usr/bin/python3,
	 * gzip + np.frombuffer): mean 0.2860405969887955, std (ddof 0)
	 * 0.35302424451492237, 6000 / 1000 images per class, first labels
	 * 9 0 0 3 (train) and 9 2 1 1 (test), pixel sums 3431114169 / 573469082 */
	CHECK_NEAR(ds.mean[0], 0.2860405969887955, 1e-6);
	CHECK_NEAR(ds.std[0], 0.35302424451492237, 1e-6);
	int count[10] = {0}, tcount[10] = {0};
	for (int64_t i = 0; i < ds.train.n; i++)
		if (ds.train.labels[i] >= 0 && ds.train.labels[i] < 10)
			count[ds.train.labels[i]]++;
	for (int64_t i = 0; i < ds.test.n; i++)
		if (ds.test.labels[i] >= 0 && ds.test.labels[i] < 10)
			tcount[ds.test.labels[i]]++;
	for (int k = 0; k < 10; k++) {
		CHECK_EQ(count[k], 6000);
		CHECK_EQ(tcount[k], 1000);
	}
	CHECK(ds.train.labels[0] == 9 && ds.train.labels[3] == 3);
	CHECK(ds.test.labels[0] == 9 && ds.test.labels[1] == 2);
	uint64_t s = 0, t = 0;
	for (int64_t i = 0; i < ds.train.n * 784; i++)
		s += ds.train.pixels[i];
	for (int64_t i = 0; i < ds.test.n * 784; i++)
		t += ds.test.pixels[i];
	CHECK_EQ(s, 3431114169LL);
	CHECK_EQ(t, 573469082LL);
	isif_dataset_free(&ds);
}

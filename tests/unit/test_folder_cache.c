/*
 * tests/unit/test_folder_cache.c — the scalable image-folder reader:
 * threaded decoding (1 and 3 threads give the same bytes and report the same
 * first bad file), the decoded cache (a hit maps the same data a fresh decode
 * gives; a touched, added or resized input misses; a truncated or altered
 * cache file is rebuilt, never trusted; the size bound), and classes found
 * recursively in torchvision ImageFolder's order with link loops skipped.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "dataset_testutil.h"
#include "isif/base/common.h"
#include "isif/data/dataset.h"

/* A w×w colour image whose bytes depend on seed. */
static void pattern(uint8_t *chw, int w, int seed)
{
	for (int k = 0; k < 3 * w * w; k++)
		chw[k] = (uint8_t)((k * 7 + seed * 31 + (k / w) * seed) & 0xff);
}

static void put_jpeg(const char *rel, const uint8_t *chw, int c, int w)
{
	char path[4096];
	size_t len;
	void *jpg = tu_jpeg(chw, c, w, w, 90, &len);
	CHECK(jpg && tu_write(tu_path(path, rel), jpg, len) == 0);
	free(jpg);
}

static void put_png(const char *rel, const uint8_t *chw, int c, int w)
{
	char path[4096];
	struct isif_error err = {0};
	void *png;
	size_t len;
	CHECK_EQ(isif_image_encode_png(chw, c, w, w, &png, &len, &err), ISIF_OK);
	CHECK(tu_write(tu_path(path, rel), png, len) == 0);
	free(png);
}

/* rel/<class>/... : 3 classes, 30 images (JPEG and PNG), some a level down. */
static void write_set(const char *rel)
{
	char name[256];
	uint8_t px[3 * 24 * 24];
	for (int i = 0; i < 30; i++) {
		pattern(px, 24, i + 1);
		snprintf(name, sizeof name, "%s/c%d/%s%02d.%s", rel, i % 3, i % 4 ? "" : "sub/", i,
			 i % 2 ? "jpg" : "png");
		if (i % 2)
			put_jpeg(name, px, 3, 24);
		else
			put_png(name, px, 3, 24);
	}
}

static void opts(struct isif_dataset_options *o, int threads, const char *cache)
{
	isif_dataset_options_default(o);
	o->image_size = 16;
	o->threads = threads;
	o->cache_dir = cache;
}

static enum isif_rc load(struct isif_dataset *ds, const char *rel, const struct isif_dataset_options *o,
			 struct isif_error *err)
{
	char dir[4096];
	snprintf(dir, sizeof dir, "%s/%s", test_tmpdir(), rel);
	return isif_dataset_load(ds, dir, ISIF_FMT_FOLDER, o, err);
}

static void check_split_equal(const struct isif_split *a, const struct isif_split *b)
{
	CHECK_EQ(a->n, b->n);
	CHECK(a->c == b->c && a->h == b->h && a->w == b->w);
	size_t bytes = (size_t)a->n * (size_t)a->c * (size_t)a->h * (size_t)a->w;
	CHECK(memcmp(a->pixels, b->pixels, bytes) == 0);
	CHECK(memcmp(a->labels, b->labels, (size_t)a->n * sizeof *a->labels) == 0);
}

static void check_same(const struct isif_dataset *a, const struct isif_dataset *b)
{
	check_split_equal(&a->train, &b->train);
	check_split_equal(&a->test, &b->test);
	CHECK_EQ(a->num_classes, b->num_classes);
	for (int k = 0; k < a->num_classes; k++)
		CHECK(strcmp(a->class_names[k], b->class_names[k]) == 0);
	for (int ch = 0; ch < 3; ch++)
		CHECK(a->mean[ch] == b->mean[ch] && a->std[ch] == b->std[ch]);
}

TEST(folder_decode_threads_identical)
{
	struct isif_dataset one, three;
	struct isif_dataset_options o;
	struct isif_error err = {0};
	write_set("fc_thr");
	opts(&o, 1, NULL);
	CHECK_EQ(load(&one, "fc_thr", &o, &err), ISIF_OK);
	opts(&o, 3, NULL);
	CHECK_EQ(load(&three, "fc_thr", &o, &err), ISIF_OK);
	CHECK_EQ(one.train.n + one.test.n, 30);
	CHECK_EQ(one.train.c, 3);
	CHECK(one.cache == ISIF_DS_CACHE_OFF && one.map == NULL);
	check_same(&one, &three);
	/* not all-equal rows: the images really were decoded into their own rows */
	size_t row = 3 * 16 * 16;
	CHECK(memcmp(one.train.pixels, one.train.pixels + row, row) != 0);
	isif_dataset_free(&one);
	isif_dataset_free(&three);

	/* two bad files: every thread count names the first in list order */
	char path[4096];
	write_set("fc_bad");
	CHECK(tu_write(tu_path(path, "fc_bad/c1/sub/zz.png"), "not a png", 9) == 0);
	CHECK(tu_write(tu_path(path, "fc_bad/c0/x.jpg"), "\xff\xd8\xff", 3) == 0);
	for (int t = 1; t <= 4; t += 3) {
		opts(&o, t, NULL);
		memset(&err, 0, sizeof err);
		CHECK(load(&one, "fc_bad", &o, &err) != ISIF_OK);
		CHECK_MSG(strstr(err.msg, "fc_bad/c0/x.jpg") != NULL, "%d threads: %s", t, err.msg);
		CHECK(one.train.pixels == NULL);
	}
}

/* The cache files (.isifds) in dir: their count, the path of the last. */
static int cache_files(const char *dir, char *last)
{
	int n = 0;
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	for (struct dirent *e; (e = readdir(d)) != NULL;) {
		size_t k = strlen(e->d_name);
		if (k > 7 && strcmp(e->d_name + k - 7, ".isifds") == 0) {
			n++;
			snprintf(last, 4096, "%s/%s", dir, e->d_name);
		}
	}
	closedir(d);
	return n;
}

/* Loads rel with the cache; checks how (want) and that it equals a fresh decode. */
static void load_expect(const char *rel, const char *cache, int size, enum isif_dataset_cache want)
{
	struct isif_dataset c, fresh;
	struct isif_dataset_options o;
	struct isif_error err = {0};
	opts(&o, 2, cache);
	o.image_size = size;
	CHECK_EQ(load(&c, rel, &o, &err), ISIF_OK);
	CHECK_MSG(c.cache == want, "%s: cache state %d, want %d (%s)", rel, c.cache, want,
		  c.cache_note);
	CHECK((c.map != NULL) == (want == ISIF_DS_CACHE_HIT));
	opts(&o, 1, NULL);
	o.image_size = size;
	CHECK_EQ(load(&fresh, rel, &o, &err), ISIF_OK);
	check_same(&c, &fresh);
	isif_dataset_free(&c);
	isif_dataset_free(&fresh);
}

TEST(folder_cache_hit_and_misses)
{
	char cache[4096], path[4096], file[4096];
	snprintf(cache, sizeof cache, "%s/fc_cache1", test_tmpdir());
	write_set("fc_hit");
	load_expect("fc_hit", cache, 16, ISIF_DS_CACHE_STORED);
	CHECK_EQ(cache_files(cache, file), 1);
	load_expect("fc_hit", cache, 16, ISIF_DS_CACHE_HIT);
	load_expect("fc_hit", cache, 16, ISIF_DS_CACHE_HIT);
	CHECK_EQ(cache_files(cache, file), 1);

	/* another image size: a miss, a second file */
	load_expect("fc_hit", cache, 12, ISIF_DS_CACHE_STORED);
	load_expect("fc_hit", cache, 12, ISIF_DS_CACHE_HIT);
	CHECK_EQ(cache_files(cache, file), 2);

	/* a touched file (same bytes, new mtime) misses */
	struct timespec ts[2] = { { .tv_sec = 1000000000 }, { .tv_sec = 1000000000 } };
	CHECK(utimensat(AT_FDCWD, tu_path(path, "fc_hit/c2/05.jpg"), ts, 0) == 0);
	load_expect("fc_hit", cache, 16, ISIF_DS_CACHE_STORED);
	load_expect("fc_hit", cache, 16, ISIF_DS_CACHE_HIT);

	/* an added file misses, and the load has one image more */
	uint8_t px[3 * 24 * 24];
	pattern(px, 24, 99);
	put_png("fc_hit/c1/sub/deep/new.png", px, 3, 24);
	load_expect("fc_hit", cache, 16, ISIF_DS_CACHE_STORED);
	struct isif_dataset ds;
	struct isif_dataset_options o;
	struct isif_error err = {0};
	opts(&o, 1, cache);
	CHECK_EQ(load(&ds, "fc_hit", &o, &err), ISIF_OK);
	CHECK_EQ(ds.cache, ISIF_DS_CACHE_HIT);
	CHECK_EQ(ds.train.n + ds.test.n, 31);
	isif_dataset_free(&ds);
}

/* Rewrites the first len bytes of path's copy: truncated to len, or with
 * byte at flips toggled. */
static void damage(const char *path, long truncate_to, long flip_at)
{
	if (truncate_to >= 0)
		CHECK(truncate(path, truncate_to) == 0);
	if (flip_at >= 0) {
		int fd = open(path, O_RDWR);
		unsigned char b;
		CHECK(fd >= 0 && pread(fd, &b, 1, flip_at) == 1);
		b ^= 0x40;
		CHECK(pwrite(fd, &b, 1, flip_at) == 1);
		close(fd);
	}
}

TEST(folder_cache_damaged_is_rebuilt)
{
	char cache[4096], file[4096];
	struct stat st;
	snprintf(cache, sizeof cache, "%s/fc_cache2", test_tmpdir());
	write_set("fc_dmg");
	load_expect("fc_dmg", cache, 16, ISIF_DS_CACHE_STORED);
	CHECK_EQ(cache_files(cache, file), 1);
	CHECK(stat(file, &st) == 0);
	long full = (long)st.st_size;
	/* the header, 3 names, 30 labels, then a page boundary and 30 rows of 3·16·16 */
	CHECK_EQ(full, 4096 + 30 * 3 * 16 * 16);

	damage(file, full - 1, -1);   /* one byte short */
	load_expect("fc_dmg", cache, 16, ISIF_DS_CACHE_STORED);
	damage(file, 20, -1);         /* a header fragment */
	load_expect("fc_dmg", cache, 16, ISIF_DS_CACHE_STORED);
	damage(file, 0, -1);          /* empty */
	load_expect("fc_dmg", cache, 16, ISIF_DS_CACHE_STORED);
	damage(file, -1, 160);        /* a label byte (after the ~100-byte header, 3 names) */
	load_expect("fc_dmg", cache, 16, ISIF_DS_CACHE_STORED);
	damage(file, -1, 4);          /* the magic */
	load_expect("fc_dmg", cache, 16, ISIF_DS_CACHE_STORED);
	load_expect("fc_dmg", cache, 16, ISIF_DS_CACHE_HIT);
	CHECK_EQ(cache_files(cache, file), 1);
	CHECK(stat(file, &st) == 0 && st.st_size == full);
}

TEST(folder_cache_bound)
{
	char cache[4096], file[4096];
	struct isif_dataset ds;
	struct isif_dataset_options o;
	struct isif_error err = {0};
	snprintf(cache, sizeof cache, "%s/fc_cache3", test_tmpdir());
	write_set("fc_bnd");
	/* too small for one file: decoded, not stored */
	opts(&o, 2, cache);
	o.cache_max_bytes = 4096;
	CHECK_EQ(load(&ds, "fc_bnd", &o, &err), ISIF_OK);
	CHECK_EQ(ds.cache, ISIF_DS_CACHE_UNSTORED);
	CHECK(strstr(ds.cache_note, "bound") != NULL);
	isif_dataset_free(&ds);
	CHECK_EQ(cache_files(cache, file), 0);
	/* room for one file of 16² (27,136 bytes) but not two: the older goes */
	o.cache_max_bytes = 40000;
	CHECK_EQ(load(&ds, "fc_bnd", &o, &err), ISIF_OK);
	CHECK_EQ(ds.cache, ISIF_DS_CACHE_STORED);
	isif_dataset_free(&ds);
	o.image_size = 12;
	CHECK_EQ(load(&ds, "fc_bnd", &o, &err), ISIF_OK);
	CHECK_EQ(ds.cache, ISIF_DS_CACHE_STORED);
	isif_dataset_free(&ds);
	CHECK_EQ(cache_files(cache, file), 1);
	CHECK_EQ(load(&ds, "fc_bnd", &o, &err), ISIF_OK);
	CHECK_EQ(ds.cache, ISIF_DS_CACHE_HIT);   /* the newer (12²) is the one kept */
	isif_dataset_free(&ds);
	/* the evicted file's lock file went with it: one .lock left, the kept key's */
	int locks = 0;
	DIR *d = opendir(cache);
	for (struct dirent *e; d && (e = readdir(d)) != NULL;)
		locks += strstr(e->d_name, ".lock") != NULL;
	if (d)
		closedir(d);
	CHECK_EQ(locks, 1);
}

/* A 4x4 gray PNG whose pixels all equal v. */
static void put_gray(const char *rel, int v)
{
	uint8_t px[16];
	memset(px, v, sizeof px);
	put_png(rel, px, 1, 4);
}

TEST(folder_recursive_classes)
{
	char path[4096], target[4096];
	/* cat: folders sorted by path as os.walk's sorted tuples are:
	 * cat < cat/sub < cat/sub-x < cat/sub/deeper ('-' sorts before '/') */
	put_gray("fc_rec/train/cat/a.png", 10);
	put_gray("fc_rec/train/cat/sub/deeper/c.png", 30);
	put_gray("fc_rec/train/cat/sub/b.png", 20);
	put_gray("fc_rec/train/cat/sub-x/d.png", 40);
	put_gray("fc_rec/train/cat/.hidden/h.png", 90);   /* hidden folder: skipped */
	put_gray("fc_rec/train/dog/x/g.png", 60);          /* a class with images only below */
	put_gray("fc_rec/train/dog/e.png", 50);
	put_gray("fc_rec/test/dog/deep/t.png", 70);
	/* link loops: dog/self -> dog, dog/x/back -> dog; both skipped */
	snprintf(target, sizeof target, "%s/fc_rec/train/dog", test_tmpdir());
	CHECK(symlink(target, tu_path(path, "fc_rec/train/dog/self")) == 0);
	CHECK(symlink("..", tu_path(path, "fc_rec/train/dog/x/back")) == 0);

	struct isif_dataset ds;
	struct isif_dataset_options o;
	struct isif_error err = {0};
	isif_dataset_options_default(&o);
	o.image_size = 4;
	o.threads = 2;
	CHECK_EQ(load(&ds, "fc_rec", &o, &err), ISIF_OK);
	CHECK_EQ(ds.num_classes, 2);
	CHECK(strcmp(ds.class_names[0], "cat") == 0 && strcmp(ds.class_names[1], "dog") == 0);
	CHECK_EQ(ds.train.c, 1);
	const int want[] = { 10, 20, 40, 30, 50, 60 }, label[] = { 0, 0, 0, 0, 1, 1 };
	CHECK_EQ(ds.train.n, 6);
	for (int i = 0; i < 6 && i < ds.train.n; i++) {
		CHECK_MSG(ds.train.pixels[i * 16] == want[i], "row %d: %d, want %d", i,
			  ds.train.pixels[i * 16], want[i]);
		CHECK_EQ(ds.train.labels[i], label[i]);
	}
	CHECK(ds.test.n == 1 && ds.test.labels[0] == 1 && ds.test.pixels[0] == 70);
	isif_dataset_free(&ds);

	struct isif_dataset_shape shape;
	char dir[4096];
	snprintf(dir, sizeof dir, "%s/fc_rec", test_tmpdir());
	CHECK_EQ(isif_dataset_probe(dir, ISIF_FMT_FOLDER, &o, &shape, &err), ISIF_OK);
	CHECK(shape.n_train == 6 && shape.n_test == 1);

	/* deeper than the bound: refused, naming the limit */
	char rel[4096] = "fc_deep/cls";
	for (int k = 0; k < 34; k++)
		strcat(rel, "/d");
	strcat(rel, "/x.png");
	put_gray(rel, 1);
	memset(&err, 0, sizeof err);
	CHECK(load(&ds, "fc_deep", &o, &err) == ISIF_EFORMAT);
	CHECK_MSG(strstr(err.msg, "folder levels") != NULL, "%s", err.msg);
}

/* A bad image deep under long folder names: the message keeps its reason
 * (the path's head is elided) instead of being cut at ISIF_ERR_LEN. */
TEST(folder_long_path_message_keeps_reason)
{
	char rel[2048] = "fc_long/train/cls", path[4096], seg[202];
	memset(seg, 'n', 200);
	seg[0] = '/';
	seg[200] = '\0';
	for (int k = 0; k < 6; k++)
		strcat(rel, seg);
	put_gray("fc_long/train/cls/ok.png", 5);
	strcat(rel, "/bad.png");
	CHECK(tu_write(tu_path(path, rel), "hello", 5) == 0);
	struct isif_dataset ds;
	struct isif_dataset_options o;
	struct isif_error err = {0};
	isif_dataset_options_default(&o);
	o.image_size = 4;
	CHECK(load(&ds, "fc_long", &o, &err) != ISIF_OK);
	CHECK_MSG(strstr(err.msg, "nnn/bad.png: not a JPEG or PNG image") != NULL, "%s", err.msg);
	CHECK_MSG(strstr(err.msg, "...") != NULL, "%s", err.msg);
}

/* A load that fails (a bad image) with a cache directory leaves nothing in
 * it: no cache file, no temporary, no lock file of a key never stored. */
TEST(folder_cache_failed_load_leaves_no_files)
{
	char path[4096], dir[4096];
	write_set("fc_fail");
	CHECK(tu_write(tu_path(path, "fc_fail/c2/bad.png"), "not a png", 9) == 0);
	snprintf(dir, sizeof dir, "%s/fc_fail_cache", test_tmpdir());
	struct isif_dataset ds;
	struct isif_dataset_options o;
	struct isif_error err = {0};
	opts(&o, 2, dir);
	CHECK(load(&ds, "fc_fail", &o, &err) != ISIF_OK);
	CHECK_MSG(strstr(err.msg, "bad.png") != NULL, "%s", err.msg);
	int n = 0;
	DIR *d = opendir(dir);
	CHECK(d != NULL);
	for (struct dirent *e; d && (e = readdir(d)) != NULL;)
		if (e->d_name[0] != '.' || (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")))
			CHECK_MSG(++n == 0, "left behind: %s", e->d_name);
	if (d)
		closedir(d);
}

/*
 * tests/server/test_index.c — per-job embedding indexes: index.bin written
 * and read back value for value, damaged files refused, the rows a spec
 * selects, publishing (directory, model link, row, older ones removed),
 * the cache (loaded once, swapped when a newer row lands, an old copy
 * alive while referenced, deleted jobs forgotten, readers racing a
 * writer), the evaluation preprocessing against values computed by hand,
 * and the model embedding a query exactly as the engine's forward does.
 * The retrieval rows of the store (default job, dataset registry) too.
 */
#include "../unit/check.h"

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "index.h"
#include "isif/nn/model.h"
#include "isif/train/checkpoint.h"
#include "migrations.h"
#include "store_retrieval.h"

static struct store *fresh_store(const char *dir)
{
	char path[600];
	struct isif_error err = {0};
	struct store *st = NULL;
	snprintf(path, sizeof path, "%s/isifd.db", dir);
	unlink(path);
	CHECK_MSG(store_open(&st, path, isifd_migrations, isifd_n_migrations, &err) ==
		  ISIF_OK, "%s", err.msg);
	return st;
}

static void make_dir(const char *fmt, const char *a, const char *b)
{
	char path[800];
	snprintf(path, sizeof path, fmt, a, b);
	mkdir(path, 0750);
}

/* A small index: emb[s][r][j] = base + 100 s + 10 r + j; ids 7 r + s;
 * labels r % 3 (train), -1 for test row 0. */
struct small {
	struct index_data m;
	int32_t ids[2][8], labels[2][8];
	float emb[2][8 * 4];
};

static void small_init(struct small *x, int epoch, float base)
{
	memset(x, 0, sizeof *x);
	x->m.epoch = epoch;
	x->m.dim = 4;
	x->m.c = 1;
	x->m.h = x->m.w = 16;
	for (int k = 0; k < 3; k++) {
		x->m.mean[k] = 0.25f;
		x->m.std[k] = 0.5f;
	}
	snprintf(x->m.model, sizeof x->m.model, "convnet");
	snprintf(x->m.dataset, sizeof x->m.dataset, "toy");
	for (int s = 0; s < 2; s++) {
		int n = s ? 3 : 5;
		for (int r = 0; r < n; r++) {
			x->ids[s][r] = 7 * r + s;
			x->labels[s][r] = s && r == 0 ? -1 : r % 3;
			for (int j = 0; j < 4; j++)
				x->emb[s][r * 4 + j] = base + 100 * s + 10 * r + j;
		}
		x->m.split[s] = (struct index_split){n, x->ids[s], x->labels[s], x->emb[s], NULL};
	}
}

/* Writes dir/index.bin of a small index. */
static void write_small(const char *dir, int epoch, float base)
{
	char path[800];
	struct isif_error err = {0};
	struct small x;
	small_init(&x, epoch, base);
	mkdir(dir, 0750);
	snprintf(path, sizeof path, "%s/index.bin", dir);
	CHECK_MSG(index_file_write(path, &x.m, &err) == ISIF_OK, "%s", err.msg);
}

TEST(srv_index_file_round_trip)
{
	char dir[600];
	struct isif_error err = {0};
	snprintf(dir, sizeof dir, "%s/rt", test_tmpdir());
	write_small(dir, 3, 0.5f);
	struct index_data *ix = NULL;
	CHECK_MSG(index_load_dir(dir, &ix, &err) == ISIF_OK, "%s", err.msg);
	if (!ix)
		return;
	CHECK_EQ(ix->epoch, 3);
	CHECK_EQ(ix->dim, 4);
	CHECK(ix->c == 1 && ix->h == 16 && ix->w == 16);
	CHECK(ix->mean[2] == 0.25f && ix->std[0] == 0.5f);
	CHECK(strcmp(ix->model, "convnet") == 0 && strcmp(ix->dataset, "toy") == 0);
	CHECK_EQ(ix->split[0].n, 5);
	CHECK_EQ(ix->split[1].n, 3);
	for (int s = 0; s < 2; s++)
		for (int r = 0; r < ix->split[s].n; r++) {
			CHECK_EQ(ix->split[s].ids[r], 7 * r + s);
			CHECK_EQ(ix->split[s].labels[r], s && r == 0 ? -1 : r % 3);
			for (int j = 0; j < 4; j++)
				CHECK(ix->split[s].emb[r * 4 + j] == 0.5f + 100 * s + 10 * r + j);
			CHECK_EQ(index_find_row(ix, s, 7 * r + s), r);
		}
	CHECK_EQ(index_find_row(ix, SPLIT_TRAIN, 1), -1);
	CHECK_EQ(index_find_row(ix, SPLIT_TEST, 0), -1);
	CHECK_EQ(index_find_row(ix, SPLIT_TRAIN, -5), -1);
	CHECK_EQ(index_find_row(ix, SPLIT_TRAIN, INT64_C(1) << 40), -1);
	index_release(ix);
}

/* Rewrites bytes [off, off+n) of dir/index.bin, or truncates it to off (n < 0). */
static void damage(const char *dir, long off, const void *bytes, long n)
{
	char path[800];
	snprintf(path, sizeof path, "%s/index.bin", dir);
	if (n < 0) {
		CHECK(truncate(path, off) == 0);
		return;
	}
	FILE *f = fopen(path, "r+b");
	CHECK(f != NULL);
	if (!f)
		return;
	fseek(f, off, SEEK_SET);
	fwrite(bytes, 1, (size_t)n, f);
	fclose(f);
}

TEST(srv_index_file_refuses_damage)
{
	/* Offsets from the header layout in index.c: magic 0, dim 12, n[0] 16,
	 * c 36; rows start at 256 with the 5 train ids. */
	static const struct {
		long off, n;
		const char *bytes, *want;
	} cases[] = {
		{0, 4, "JUNK", "not an isifd index"},
		{12, 4, "\0\0\0\0", "bad sizes"},
		{16, 8, "\xff\xff\xff\xff\xff\xff\xff\x7f", "bad sizes"},
		{36, 4, "\x02\0\0\0", "bad image shape"},
		{300, -1, NULL, "bytes, the header says"},
		{10, -1, NULL, "truncated header"},
		{256 + 4, 4, "\0\0\0\0", "twice"},          /* train id 7 → 0, already row 0's */
		{256 + 8, 4, "\xff\xff\xff\xff", "bad id"},  /* train id -1 */
	};
	char dir[600];
	struct isif_error err = {0};
	snprintf(dir, sizeof dir, "%s/dmg", test_tmpdir());
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		write_small(dir, 1, 0);
		damage(dir, cases[i].off, cases[i].bytes, cases[i].n);
		struct index_data *ix = NULL;
		err.msg[0] = '\0';
		CHECK_MSG(index_load_dir(dir, &ix, &err) != ISIF_OK && !ix, "case %zu loaded", i);
		CHECK_MSG(strstr(err.msg, cases[i].want) != NULL, "case %zu: %s", i, err.msg);
	}
	struct index_data *ix = NULL;
	CHECK(index_load_dir("/nonexistent-dir", &ix, &err) == ISIF_EIO && !ix);
}

/* A toy dataset: train labels 0,1,2,0,1,2,..., test labels 2,1,0,... */
static void toy_dataset(struct isif_dataset *ds, int ntrain, int ntest)
{
	memset(ds, 0, sizeof *ds);
	ds->train = (struct isif_split){ntrain, 1, 16, 16, calloc((size_t)ntrain, 256),
					malloc((size_t)ntrain * sizeof(int32_t))};
	ds->test = (struct isif_split){ntest, 1, 16, 16, calloc((size_t)ntest, 256),
				       malloc((size_t)ntest * sizeof(int32_t))};
	for (int i = 0; i < ntrain; i++)
		ds->train.labels[i] = i % 3;
	for (int i = 0; i < ntest; i++)
		ds->test.labels[i] = 2 - i % 3;
	ds->num_classes = 3;
	for (int k = 0; k < 3; k++) {
		ds->mean[k] = 0.5f;
		ds->std[k] = 0.25f;
	}
}

TEST(srv_index_select_rows_as_the_trainer)
{
	struct isif_dataset ds;
	struct isif_job_spec spec;
	int32_t out[30];
	struct isif_error err = {0};
	toy_dataset(&ds, 30, 12);
	isif_spec_default(&spec);
	CHECK(isif_spec_parse(&spec, "{\"dataset\": \"toy\", \"classes\": {\"train\": [0, 2], "
			      "\"test\": [1]}}", true, &err) == ISIF_OK);
	/* Train labels i % 3 in {0, 2}: i = 0, 2, 3, 5, ..., in dataset order. */
	int64_t n = index_select_rows(&spec, &ds, SPLIT_TRAIN, out);
	CHECK_EQ(n, 20);
	for (int64_t r = 0, want = 0; r < n; r++, want += want % 3 == 0 ? 2 : 1)
		CHECK_EQ(out[r], want);
	/* Test labels 2 - i % 3 == 1: i = 1, 4, 7, 10. */
	n = index_select_rows(&spec, &ds, SPLIT_TEST, out);
	CHECK_EQ(n, 4);
	CHECK(out[0] == 1 && out[1] == 4 && out[2] == 7 && out[3] == 10);
	/* train_subset: 7 distinct images, the same ones each time. */
	isif_spec_default(&spec);
	CHECK(isif_spec_parse(&spec, "{\"dataset\": \"toy\", \"train_subset\": 7}", true, &err) == ISIF_OK);
	int32_t again[30];
	CHECK_EQ(index_select_rows(&spec, &ds, SPLIT_TRAIN, out), 7);
	CHECK_EQ(index_select_rows(&spec, &ds, SPLIT_TRAIN, again), 7);
	int seen[30] = {0};
	for (int r = 0; r < 7; r++) {
		CHECK(out[r] >= 0 && out[r] < 30 && !seen[out[r]]++);
		CHECK_EQ(out[r], again[r]);
	}
	CHECK_EQ(index_select_rows(&spec, &ds, SPLIT_TEST, out), 12);
	isif_dataset_free(&ds);
}

static int count_index_dirs(const char *job_dir)
{
	int n = 0;
	DIR *d = opendir(job_dir);
	struct dirent *e;
	while (d && (e = readdir(d)))
		n += strncmp(e->d_name, "index-", 6) == 0;
	if (d)
		closedir(d);
	return n;
}

TEST(srv_index_publish_replaces_the_older_one)
{
	char state[600], job_dir[700], ckpt[800];
	struct isif_error err = {0};
	snprintf(state, sizeof state, "%s/pub", test_tmpdir());
	make_dir("%s%s", state, "");
	make_dir("%s%s", state, "/jobs");
	struct store *st = fresh_store(state);
	int64_t job;
	CHECK_EQ(store_job_insert(st, "{}", "toy", 2, 0, 10, &job, NULL), ISIF_OK);
	snprintf(job_dir, sizeof job_dir, "%s/jobs/%lld", state, (long long)job);
	mkdir(job_dir, 0750);
	snprintf(ckpt, sizeof ckpt, "%s/checkpoint-latest.safetensors", job_dir);
	FILE *f = fopen(ckpt, "w");
	fputs("not really a checkpoint", f);
	fclose(f);
	struct isif_dataset ds;
	struct isif_job_spec spec;
	toy_dataset(&ds, 9, 4);
	isif_spec_default(&spec);
	CHECK(isif_spec_parse(&spec, "{\"dataset\": \"toy\", \"model\": \"convnet\", "
			      "\"train_subset\": 6}", true, &err) == ISIF_OK);
	float train[6 * 2], test[4 * 2];
	for (int i = 0; i < 12; i++)
		train[i] = (float)i;
	for (int i = 0; i < 8; i++)
		test[i] = -(float)i;
	struct index_source src = {.job = job, .job_dir = job_dir, .checkpoint_path = ckpt,
				   .spec = &spec, .ds = &ds, .emb = {train, test}, .n = {6, 4},
				   .dim = 2};
	struct index_row row;
	for (int epoch = 1; epoch <= 2; epoch++) {
		src.epoch = epoch;
		CHECK_MSG(index_publish(st, &src, &err) == ISIF_OK, "%s", err.msg);
		CHECK_EQ(count_index_dirs(job_dir), 1);
		CHECK_EQ(store_index_get(st, job, &row, NULL), ISIF_OK);
		CHECK_EQ(row.epoch, epoch);
	}
	CHECK(row.n_train == 6 && row.n_test == 4 && row.dim == 2);
	char dir[1200], model[1300];
	snprintf(dir, sizeof dir, "%s/%s", state, row.path);
	snprintf(model, sizeof model, "%s/model.safetensors", dir);
	struct stat a, b;
	CHECK(stat(ckpt, &a) == 0 && stat(model, &b) == 0 && a.st_ino == b.st_ino);
	struct index_data *ix = NULL;
	CHECK_MSG(index_load_dir(dir, &ix, &err) == ISIF_OK, "%s", err.msg);
	if (ix) {
		CHECK(ix->split[0].n == 6 && ix->split[1].n == 4 && ix->dim == 2 && ix->epoch == 2);
		CHECK(ix->mean[0] == 0.5f && ix->std[0] == 0.25f && ix->h == 16);
		for (int r = 0; r < 6; r++) {
			int32_t id = ix->split[0].ids[r];
			CHECK_EQ(ix->split[0].labels[r], id % 3);
			CHECK(ix->split[0].emb[2 * r + 1] == (float)(2 * r + 1));
		}
		for (int r = 0; r < 4; r++)
			CHECK(ix->split[1].ids[r] == r && ix->split[1].labels[r] == 2 - r % 3);
		index_release(ix);
	}
	/* A count that does not match the spec's selection is refused. */
	src.n[0] = 5;
	src.epoch = 3;
	CHECK(index_publish(st, &src, &err) != ISIF_OK && strstr(err.msg, "5 train embeddings for 6"));
	CHECK_EQ(count_index_dirs(job_dir), 1);
	CHECK_EQ(store_index_get(st, job, &row, NULL), ISIF_OK);
	CHECK_EQ(row.epoch, 2);
	isif_dataset_free(&ds);
	store_close(st);
}

/* state/jobs/<job>/<name> holds a small index; its row is committed. */
static void put_index(struct store *st, const char *state, int64_t job, const char *name,
		      int epoch)
{
	char dir[900];
	snprintf(dir, sizeof dir, "%s/jobs/%lld", state, (long long)job);
	mkdir(dir, 0750);
	snprintf(dir, sizeof dir, "%s/jobs/%lld/%s", state, (long long)job, name);
	write_small(dir, epoch, (float)epoch);
	struct index_row row = {.job = job, .epoch = epoch, .n_train = 5, .n_test = 3, .dim = 4,
				.bytes = 1};
	snprintf(row.path, sizeof row.path, "jobs/%lld/%s", (long long)job, name);
	CHECK_EQ(store_index_put(st, &row, NULL), ISIF_OK);
}

TEST(srv_index_cache_loads_once_and_swaps)
{
	char state[600];
	struct isif_error err = {0};
	snprintf(state, sizeof state, "%s/cache", test_tmpdir());
	make_dir("%s%s", state, "");
	make_dir("%s%s", state, "/jobs");
	struct store *st = fresh_store(state);
	int64_t a, b, c;
	CHECK_EQ(store_job_insert(st, "{}", "toy", 2, 0, 10, &a, NULL), ISIF_OK);
	CHECK_EQ(store_job_insert(st, "{}", "toy", 2, 0, 10, &b, NULL), ISIF_OK);
	CHECK_EQ(store_job_insert(st, "{}", "toy", 2, 0, 10, &c, NULL), ISIF_OK);
	struct index_cache *cache = index_cache_create(st, state, 2);
	struct index_data *ix = NULL, *old = NULL, *again = NULL;
	CHECK_EQ(index_acquire(cache, 999, &ix, &err), ISIF_ENOTFOUND);
	CHECK_EQ(index_acquire(cache, a, &ix, &err), ISIF_EEMPTY);
	CHECK(ix == NULL);

	put_index(st, state, a, "index-1", 1);
	CHECK_EQ(index_acquire(cache, a, &old, &err), ISIF_OK);
	CHECK_EQ(index_acquire(cache, a, &again, &err), ISIF_OK);
	CHECK(old == again && old && old->epoch == 1 && old->job == a);
	CHECK_EQ(index_cache_loads(cache), 1);
	index_release(again);

	/* A newer index: the next acquire swaps; the old copy stays readable. */
	put_index(st, state, a, "index-2", 2);
	CHECK_EQ(index_acquire(cache, a, &ix, &err), ISIF_OK);
	CHECK(ix && ix != old && ix->epoch == 2 && ix->split[0].emb[0] == 2.0f);
	CHECK(old && old->split[1].emb[4] == 1.0f + 100 + 10);
	CHECK_EQ(index_cache_loads(cache), 2);
	index_release(old);
	index_release(ix);

	/* Capacity 2: a third job evicts the least recently used. */
	put_index(st, state, b, "index-1", 5);
	put_index(st, state, c, "index-1", 6);
	CHECK_EQ(index_acquire(cache, b, &ix, &err), ISIF_OK);
	index_release(ix);
	CHECK_EQ(index_acquire(cache, c, &ix, &err), ISIF_OK);   /* evicts a */
	index_release(ix);
	CHECK_EQ(index_acquire(cache, b, &ix, &err), ISIF_OK);   /* still cached */
	index_release(ix);
	CHECK_EQ(index_cache_loads(cache), 4);
	CHECK_EQ(index_acquire(cache, a, &ix, &err), ISIF_OK);   /* loaded again */
	CHECK(ix && ix->epoch == 2);
	index_release(ix);
	CHECK_EQ(index_cache_loads(cache), 5);

	/* A deleted job is gone, from the cache too. */
	enum job_status s;
	CHECK_EQ(store_job_cancel(st, b, &s, NULL), ISIF_OK);
	CHECK_EQ(store_job_delete(st, b, &s, NULL), ISIF_OK);
	CHECK_EQ(index_acquire(cache, b, &ix, &err), ISIF_ENOTFOUND);
	/* An unreadable directory is an error, not a crash. */
	struct index_row row = {.job = c, .epoch = 9, .n_train = 1, .n_test = 1, .dim = 4};
	snprintf(row.path, sizeof row.path, "jobs/%lld/missing", (long long)c);
	CHECK_EQ(store_index_put(st, &row, NULL), ISIF_OK);
	CHECK_EQ(index_acquire(cache, c, &ix, &err), ISIF_EIO);
	index_cache_free(cache);
	store_close(st);
}

struct race {
	struct index_cache *cache;
	int64_t job;
	int bad;
};

static void *reader(void *arg)
{
	struct race *r = arg;
	struct isif_error err = {0};
	for (int i = 0; i < 300; i++) {
		struct index_data *ix = NULL;
		if (index_acquire(r->cache, r->job, &ix, &err) != ISIF_OK) {
			__atomic_add_fetch(&r->bad, 1, __ATOMIC_RELAXED);
			continue;
		}
		/* Each generation is whole: its data say its epoch. */
		if (ix->split[0].emb[0] != (float)ix->epoch || ix->split[1].n != 3)
			__atomic_add_fetch(&r->bad, 1, __ATOMIC_RELAXED);
		index_release(ix);
	}
	return NULL;
}

TEST(srv_index_cache_readers_race_a_writer)
{
	char state[600], name[32];
	snprintf(state, sizeof state, "%s/race", test_tmpdir());
	make_dir("%s%s", state, "");
	make_dir("%s%s", state, "/jobs");
	struct store *st = fresh_store(state);
	int64_t job;
	CHECK_EQ(store_job_insert(st, "{}", "toy", 2, 0, 10, &job, NULL), ISIF_OK);
	put_index(st, state, job, "index-0", 0);
	struct race r = {index_cache_create(st, state, 1), job, 0};
	pthread_t t[3];
	for (int i = 0; i < 3; i++)
		pthread_create(&t[i], NULL, reader, &r);
	for (int epoch = 1; epoch <= 20; epoch++) {
		snprintf(name, sizeof name, "index-%d", epoch);
		put_index(st, state, job, name, epoch);   /* older directories stay: no retry needed */
	}
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	CHECK_EQ(r.bad, 0);
	index_cache_free(r.cache);
	store_close(st);
}

TEST(srv_index_preprocess_by_hand)
{
	struct index_data ix;
	memset(&ix, 0, sizeof ix);
	ix.c = 1;
	ix.h = ix.w = 2;
	ix.mean[0] = 0.5f;
	ix.std[0] = 0.25f;
	struct isif_error err = {0};
	float out[12];
	/* Gray at the dataset's size: (p/255 - 0.5)/0.25. */
	const uint8_t gray[4] = {0, 51, 204, 255};
	CHECK(index_preprocess(&ix, gray, 1, 2, 2, out, &err) == ISIF_OK);
	CHECK_NEAR(out[0], -2.0, 1e-6);
	CHECK_NEAR(out[1], (0.2 - 0.5) / 0.25, 1e-6);
	CHECK_NEAR(out[2], (0.8 - 0.5) / 0.25, 1e-6);
	CHECK_NEAR(out[3], 2.0, 1e-6);
	/* RGB to gray: luma 0.299 R + 0.587 G + 0.114 B of pure red, green,
	 * blue and white pixels: 76.2, 149.7, 29.1, 255 (one unit of slack for
	 * the rounding to uint8, which the header leaves open). */
	const uint8_t rgb[12] = {255, 0, 0, 255, 0, 255, 0, 255, 0, 0, 255, 255};
	CHECK(index_preprocess(&ix, rgb, 3, 2, 2, out, &err) == ISIF_OK);
	const int luma[4] = {76, 150, 29, 255};
	for (int i = 0; i < 4; i++)
		CHECK_NEAR(out[i], (luma[i] / 255.0 - 0.5) / 0.25, 1.01 / 255 / 0.25);
	/* 4x4 gray to 2x2, to 3 channels: bilinear with half-pixel centres
	 * averages each 2x2 block (antialias off, scale 2 samples at x.5). */
	ix.c = 3;
	for (int k = 0; k < 3; k++) {
		ix.mean[k] = 0;
		ix.std[k] = 1;
	}
	const uint8_t big[16] = {0, 2, 100, 102, 4, 6, 104, 106, 200, 202, 50, 52, 204, 206, 54, 56};
	CHECK(index_preprocess(&ix, big, 1, 4, 4, out, &err) == ISIF_OK);
	const int want[4] = {3, 103, 203, 53};
	for (int ch = 0; ch < 3; ch++)
		for (int i = 0; i < 4; i++)
			CHECK_NEAR(out[ch * 4 + i], want[i] / 255.0, 1e-6);
}

TEST(srv_index_embed_matches_the_engine)
{
	char dir[600], path[800];
	struct isif_error err = {0};
	snprintf(dir, sizeof dir, "%s/emb", test_tmpdir());
	write_small(dir, 1, 0);
	struct isif_model *m = NULL;
	CHECK_MSG(isif_model_create(&m, "convnet", 1, 4, 42, &err) == ISIF_OK, "%s", err.msg);
	snprintf(path, sizeof path, "%s/model.safetensors", dir);
	CHECK_MSG(isif_checkpoint_save(m, path, NULL, &err) == ISIF_OK, "%s", err.msg);
	struct index_data *ix = NULL;
	CHECK_MSG(index_load_dir(dir, &ix, &err) == ISIF_OK, "%s", err.msg);
	float x[2 * 256], got[2 * 4];
	for (int i = 0; i < 512; i++)
		x[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
	CHECK_MSG(ix && index_embed(ix, x, 2, got, &err) == ISIF_OK, "%s", err.msg);
	const float *want;
	CHECK(isif_model_plan(m, 2, 16, 16, &err) == ISIF_OK);
	CHECK(isif_model_forward(m, x, 2, 16, 16, false, 1, &want, &err) == ISIF_OK);
	for (int i = 0; i < 8; i++)
		CHECK_NEAR(got[i], want[i], 1e-6);
	index_release(ix);
	isif_model_free(m);
}

TEST(srv_store_retrieval_rows)
{
	char state[600];
	snprintf(state, sizeof state, "%s/rows", test_tmpdir());
	make_dir("%s%s", state, "");
	struct store *st = fresh_store(state);
	int64_t a, b, c, job;
	CHECK_EQ(store_index_default_job(st, &job, NULL), ISIF_EEMPTY);
	CHECK_EQ(store_job_insert(st, "{}", "toy", 2, 0, 10, &a, NULL), ISIF_OK);
	CHECK_EQ(store_job_insert(st, "{}", "toy", 2, 0, 10, &b, NULL), ISIF_OK);
	CHECK_EQ(store_job_insert(st, "{}", "toy", 2, 0, 10, &c, NULL), ISIF_OK);
	struct index_row row = {.epoch = 1, .n_train = 1, .n_test = 1, .dim = 4, .path = "x"};
	row.job = a;
	CHECK_EQ(store_index_put(st, &row, NULL), ISIF_OK);
	row.job = b;
	CHECK_EQ(store_index_put(st, &row, NULL), ISIF_OK);
	/* Queued jobs never count; then the newest succeeded or running one
	 * that has an index (c has none). */
	CHECK_EQ(store_index_default_job(st, &job, NULL), ISIF_EEMPTY);
	CHECK_EQ(store_job_finish(st, a, JOB_SUCCEEDED, NULL, NULL), ISIF_OK);
	CHECK_EQ(store_job_finish(st, c, JOB_SUCCEEDED, NULL, NULL), ISIF_OK);
	CHECK_EQ(store_index_default_job(st, &job, NULL), ISIF_OK);
	CHECK_EQ(job, a);
	struct job_claim cl;
	CHECK_EQ(store_job_claim(st, &cl, NULL), ISIF_OK);   /* b is the one left queued */
	CHECK_EQ(cl.id, b);
	job_claim_free(&cl);
	CHECK_EQ(store_index_default_job(st, &job, NULL), ISIF_OK);
	CHECK_EQ(job, b);
	CHECK_EQ(store_job_finish(st, b, JOB_FAILED, "x", NULL), ISIF_OK);
	CHECK_EQ(store_index_default_job(st, &job, NULL), ISIF_OK);
	CHECK_EQ(job, a);

	struct dataset_info info = {12, 4, 3, 32, 32, 2, NULL, NULL, 0},
			    none = {-1, -1, -1, -1, -1, -1, NULL, NULL, 0},
			    big = {12, 4, 3, 256, 256, 2, NULL, NULL, 256};
	CHECK_EQ(store_dataset_insert(st, "tiny", "folder", "/x", &info, NULL), ISIF_OK);
	CHECK_EQ(store_dataset_insert(st, "tiny", "idx", "/y", &none, NULL), ISIF_ECONFLICT);
	CHECK_EQ(store_dataset_insert(st, "bare", "idx", "/y", &none, NULL), ISIF_OK);
	/* POST /datasets image_size: recorded for the loaders; absent reads 0 */
	CHECK_EQ(store_dataset_insert(st, "big", "folder", "/z", &big, NULL), ISIF_OK);
	CHECK_EQ(store_dataset_image_size(st, "big"), 256);
	CHECK_EQ(store_dataset_image_size(st, "tiny"), 0);
	CHECK_EQ(store_dataset_image_size(st, "nope"), 0);
	json_t *d = NULL;
	CHECK_EQ(store_dataset_json(st, "tiny", &d, NULL), ISIF_OK);
	CHECK(d && json_integer_value(json_object_get(d, "train_images")) == 12 &&
	      json_integer_value(json_object_get(d, "width")) == 32 &&
	      strcmp(json_string_value(json_object_get(d, "path")), "/x") == 0);
	json_decref(d);
	CHECK_EQ(store_dataset_json(st, "bare", &d, NULL), ISIF_OK);
	CHECK(d && json_is_null(json_object_get(d, "classes")));
	json_decref(d);
	CHECK_EQ(store_dataset_json(st, "nope", &d, NULL), ISIF_ENOTFOUND);
	CHECK_EQ(store_dataset_json(st, NULL, &d, NULL), ISIF_OK);
	CHECK_EQ(json_array_size(json_object_get(d, "datasets")), 4);   /* tiny, bare, big + fashion-mnist */
	json_decref(d);
	/* The migration filled in Debian's Fashion-MNIST. */
	CHECK_EQ(store_dataset_json(st, "fashion-mnist", &d, NULL), ISIF_OK);
	CHECK(d && json_integer_value(json_object_get(d, "test_images")) == 10000 &&
	      json_integer_value(json_object_get(d, "channels")) == 1);
	json_decref(d);
	store_close(st);
}

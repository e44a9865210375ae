/*
 * tests/unit/test_loader.c — the batch loader: rows are [view 1 of images;
 * view 2 of images] in the epoch's order, each view equals the augmentation
 * rebuilt from its documented seed, and batches are identical whatever the
 * number of loader threads. Also the trainer's cancel flag, and what its
 * checkpoints say about preprocessing.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "isif/data/augment.h"
#include "isif/base/safetensors.h"
#include "isif/data/dataset.h"
#include "isif/train/train.h"
#include "data/loader_impl.h"

/* A split of n 1×16×16 images, image i filled with a gradient offset by i. */
static struct isif_split make_split(int n)
{
	struct isif_split s = { .n = n, .c = 1, .h = 16, .w = 16 };
	s.pixels = malloc((size_t)n * 256);
	s.labels = malloc((size_t)n * sizeof(int32_t));
	for (int i = 0; i < n; i++) {
		for (int p = 0; p < 256; p++)
			s.pixels[i * 256 + p] = (uint8_t)(i * 7 + p);
		s.labels[i] = i % 3;
	}
	return s;
}

static float *run_epoch_views(const struct isif_split *s, const int32_t *order, int m,
			      int batches, int threads, int views)
{
	struct isif_augment aug;
	float mean[3] = { 0.5f, 0.5f, 0.5f }, std[3] = { 0.25f, 0.25f, 0.25f };
	isif_augment_default(&aug, 16, 16, mean, std);
	struct loader *l;
	CHECK(loader_create(&l, s, m, &aug, 42, threads) == ISIF_OK);
	loader_set_views(l, views);
	size_t batch_len = 2 * (size_t)m * 256;
	/* with one view the rows m..2m−1 are whatever the slot held: compare the first m */
	float *all = calloc(batches * batch_len, sizeof(float));
	CHECK(loader_begin_epoch(l, 3, order, 0, batches) == ISIF_OK);
	for (int b = 0; b < batches; b++) {
		double waited;
		const float *x = loader_next(l, b, &waited);
		memcpy(all + b * batch_len, x, (size_t)views * m * 256 * sizeof(float));
		loader_release(l, b);
	}
	loader_end_epoch(l);
	loader_free(l);
	return all;
}

static float *run_epoch(const struct isif_split *s, const int32_t *order, int m, int batches,
			int threads)
{
	return run_epoch_views(s, order, m, batches, threads, 2);
}

/* NPID's loader (one view per image) makes exactly the first views of the
 * two-view loader's batches. */
TEST(loader_one_view_is_the_first_view)
{
	struct isif_split s = make_split(40);
	int32_t order[40];
	for (int i = 0; i < 40; i++)
		order[i] = (i * 13) % 40;
	float *two = run_epoch_views(&s, order, 4, 10, 2, 2);
	float *one = run_epoch_views(&s, order, 4, 10, 2, 1);
	for (int b = 0; b < 10; b++)
		CHECK(memcmp(two + b * 8 * 256, one + b * 8 * 256, 4 * 256 * sizeof(float)) == 0);
	free(one);
	free(two);
	free(s.pixels);
	free(s.labels);
}

TEST(loader_same_batches_at_any_thread_count)
{
	struct isif_split s = make_split(40);
	int32_t order[40];
	for (int i = 0; i < 40; i++)
		order[i] = (i * 17) % 40;
	float *one = run_epoch(&s, order, 4, 10, 1);
	float *three = run_epoch(&s, order, 4, 10, 3);
	CHECK(memcmp(one, three, 10 * 8 * 256 * sizeof(float)) == 0);

	/* Row r of batch b is view (r < m ? 1 : 2) of image order[b·m + r mod m],
	 * drawn from loader_view_seed(42, epoch 3, b, r). */
	struct isif_augment aug;
	float mean[3] = { 0.5f, 0.5f, 0.5f }, std[3] = { 0.25f, 0.25f, 0.25f }, view[256];
	isif_augment_default(&aug, 16, 16, mean, std);
	int b = 7, differ = 0;
	for (int r = 0; r < 8; r++) {
		struct isif_rng rng;
		isif_rng_seed(&rng, loader_view_seed(42, 3, b, r), 1);
		isif_augment_apply(view, s.pixels + order[b * 4 + r % 4] * 256, 1, 16, 16, &aug,
				   &rng, NULL);
		CHECK(memcmp(view, one + (b * 8 + r) * 256, sizeof view) == 0);
	}
	/* The two views of an image are different draws. */
	differ = memcmp(one + (b * 8) * 256, one + (b * 8 + 4) * 256, 256 * sizeof(float)) != 0;
	CHECK(differ);
	free(one);
	free(three);
	free(s.pixels);
	free(s.labels);
}

TEST(loader_stops_mid_epoch)
{
	struct isif_split s = make_split(40);
	int32_t order[40];
	for (int i = 0; i < 40; i++)
		order[i] = i;
	struct isif_augment aug;
	float mean[3] = { 0 }, std[3] = { 1, 1, 1 };
	isif_augment_default(&aug, 16, 16, mean, std);
	struct loader *l;
	CHECK(loader_create(&l, &s, 2, &aug, 1, 2) == ISIF_OK);
	CHECK(loader_begin_epoch(l, 0, order, 0, 20) == ISIF_OK);
	loader_next(l, 0, NULL);
	loader_release(l, 0);
	loader_end_epoch(l); /* threads blocked on full slots must wake and exit */
	CHECK(loader_begin_epoch(l, 1, order, 0, 20) == ISIF_OK);
	loader_next(l, 0, NULL);
	loader_free(l);
	free(s.pixels);
	free(s.labels);
}

/* A synthetic 3-class dataset of 1×16×16 images. */
static struct isif_dataset make_dataset(int n_train, int n_test)
{
	struct isif_dataset ds = { 0 };
	ds.train = make_split(n_train);
	ds.test = make_split(n_test);
	ds.num_classes = 3;
	ds.std[0] = ds.std[1] = ds.std[2] = 1;
	return ds;
}

/* convnet, batches of 8, k = 5: small enough for a unit test. */
static struct isif_job_spec small_spec(int epochs)
{
	struct isif_job_spec spec;
	isif_spec_default(&spec);
	snprintf(spec.dataset, sizeof spec.dataset, "synthetic");
	snprintf(spec.model, sizeof spec.model, "convnet");
	spec.batch_size = 8;
	spec.epochs = epochs;
	spec.knn_k = 5;
	return spec;
}

static void cancel_after_first(void *user, const struct isif_progress *p)
{
	(void)p;
	atomic_store((atomic_int *)user, 1);
}

TEST(trainer_cancel_between_batches)
{
	struct isif_dataset ds = make_dataset(64, 16);
	struct isif_job_spec spec = small_spec(3);
	struct isif_trainer *t;
	struct isif_error err = {0};
	CHECK_MSG(isif_trainer_create(&t, &spec, &ds, test_tmpdir(), 1, &err) == ISIF_OK, "%s", err.msg);
	atomic_int cancel = 0;
	struct isif_train_callbacks cb = { .user = &cancel, .on_progress = cancel_after_first };
	CHECK(isif_trainer_run(t, &cb, &cancel, &err) == ISIF_ECANCELLED);
	CHECK_EQ(isif_trainer_epoch(t), 0);
	isif_trainer_free(t);
	isif_dataset_free(&ds);
}

struct captured {
	int calls;
	struct isif_epoch_metrics last;
	int64_t n_train, n_test;
};

static void capture_epoch(void *user, const struct isif_epoch_metrics *m, const char *ckpt,
			  const float *train_emb, int64_t n_train, const float *test_emb,
			  int64_t n_test, int D)
{
	struct captured *c = user;
	(void)ckpt; (void)train_emb; (void)test_emb; (void)D;
	c->calls++;
	c->last = *m;
	c->n_train = n_train;
	c->n_test = n_test;
}

/* classes: train on labels {0, 1}, test on {2}: the unseen-category
 * protocol reports Recall@K and NMI instead of kNN accuracy; the splits
 * passed to the callback hold only the kept classes. */
TEST(trainer_unseen_category_protocol)
{
	struct isif_dataset ds = make_dataset(60, 30); /* labels i % 3 */
	struct isif_job_spec spec = small_spec(1);
	spec.has_classes = true;
	spec.n_train_classes = 2;
	spec.train_classes[0] = 0;
	spec.train_classes[1] = 1;
	spec.n_test_classes = 1;
	spec.test_classes[0] = 2;
	struct isif_trainer *t;
	struct isif_error err = {0};
	CHECK_MSG(isif_trainer_create(&t, &spec, &ds, test_tmpdir(), 1, &err) == ISIF_OK, "%s", err.msg);
	struct captured c = { 0 };
	struct isif_train_callbacks cb = { .user = &c, .on_epoch = capture_epoch };
	CHECK_MSG(isif_trainer_run(t, &cb, NULL, &err) == ISIF_OK, "%s", err.msg);
	CHECK_EQ(c.calls, 1);
	CHECK(c.last.unseen && !c.last.has_knn);
	CHECK_EQ(c.n_train, 40); /* labels 0 and 1 of 60 */
	CHECK_EQ(c.n_test, 10);  /* label 2 of 30 */
	/* One test class: every neighbour shares the label, and NMI of a single
	 * cluster against a single class is 1 by convention. */
	CHECK_NEAR(c.last.recall_at[0], 1.0, 1e-12);
	CHECK_NEAR(c.last.nmi, 1.0, 1e-12);
	CHECK(c.last.loss > 0);
	isif_trainer_free(t);
	isif_dataset_free(&ds);
}

/* Rewrites the checkpoint at path without metadata key1 and key2, as a
 * checkpoint written before those keys existed. */
static void drop_meta(const char *path, const char *key1, const char *key2)
{
	struct isif_st_file f;
	struct isif_st_meta old = { 0 };
	struct isif_error err = {0};
	CHECK_MSG(isif_st_read(path, &f, &err) == ISIF_OK, "%s", err.msg);
	for (size_t i = 0; i < f.meta.n; i++)
		if (strcmp(f.meta.keys[i], key1) && strcmp(f.meta.keys[i], key2))
			CHECK(isif_st_meta_set(&old, f.meta.keys[i], f.meta.values[i]) == ISIF_OK);
	CHECK_EQ(old.n + 2, f.meta.n);
	CHECK_MSG(isif_st_write(path, f.tensors, f.n, &old, &err) == ISIF_OK, "%s", err.msg);
	isif_st_meta_free(&old);
	isif_st_file_free(&f);
}

/* Metadata key of the checkpoint at path (malloc'd), or NULL. */
static char *checkpoint_meta(const char *path, const char *key)
{
	struct isif_st_file f;
	struct isif_error err = {0};
	CHECK_MSG(isif_st_read(path, &f, &err) == ISIF_OK, "%s", err.msg);
	const char *v = isif_st_meta_get(&f.meta, key);
	char *copy = v ? strdup(v) : NULL;
	isif_st_file_free(&f);
	return copy;
}

/* Every checkpoint says how the dataset's images were preprocessed and
 * names its classes; one from before that (the keys removed) still resumes,
 * and the next checkpoint has them again. */
TEST(trainer_checkpoint_says_how_to_preprocess)
{
	struct isif_dataset ds = make_dataset(32, 16);
	ds.mean[0] = ds.mean[1] = ds.mean[2] = 0.5f;
	ds.std[0] = ds.std[1] = ds.std[2] = 0.25f;
	ds.class_names = calloc(3, sizeof *ds.class_names);
	ds.class_names[0] = strdup("zero");
	ds.class_names[1] = strdup("one");
	ds.class_names[2] = strdup("two");
	struct isif_job_spec spec = small_spec(1);
	spec.eval_every = 0;
	char dir[1024], path[1100];
	struct isif_error err = {0};
	snprintf(dir, sizeof dir, "%s/trainer_meta", test_tmpdir());
	mkdir(dir, 0700);
	snprintf(path, sizeof path, "%s/checkpoint-latest.safetensors", dir);
	struct isif_trainer *t;
	CHECK_MSG(isif_trainer_create(&t, &spec, &ds, dir, 1, &err) == ISIF_OK, "%s", err.msg);
	CHECK_MSG(isif_trainer_run(t, NULL, NULL, &err) == ISIF_OK, "%s", err.msg);
	isif_trainer_free(t);
	char *pre = checkpoint_meta(path, "preprocessing"), *cls = checkpoint_meta(path, "classes");
	CHECK_MSG(pre && strstr(pre, "{\"channels\":1,\"height\":16,\"width\":16,"),
		  "%s", pre ? pre : "(none)");
	CHECK_MSG(pre && strstr(pre, "\"mean\":[0.5],\"std\":[0.25],"), "%s", pre ? pre : "(none)");
	CHECK_MSG(cls && strcmp(cls, "[\"zero\",\"one\",\"two\"]") == 0,
		  "%s", cls ? cls : "(none)");
	free(pre);
	free(cls);

	drop_meta(path, "preprocessing", "classes");
	spec.epochs = 2;
	CHECK_MSG(isif_trainer_create(&t, &spec, &ds, dir, 1, &err) == ISIF_OK, "%s", err.msg);
	CHECK_MSG(isif_trainer_resume(t, path, &err) == ISIF_OK, "%s", err.msg);
	CHECK_EQ(isif_trainer_epoch(t), 1);
	CHECK_MSG(isif_trainer_run(t, NULL, NULL, &err) == ISIF_OK, "%s", err.msg);
	isif_trainer_free(t);
	pre = checkpoint_meta(path, "preprocessing");
	CHECK(pre && strstr(pre, "\"mean\":[0.5],\"std\":[0.25],"));
	free(pre);
	isif_dataset_free(&ds);
}

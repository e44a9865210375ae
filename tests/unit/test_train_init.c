/*
 * tests/unit/test_train_init.c — a job started from pretrained weights
 * (init.checkpoint, init.freeze_epochs): after isif_trainer_init and
 * before any step the backbone is bit for bit the checkpoint's and the
 * embedding layer the seed's fresh one; a checkpoint whose names or shapes
 * differ is refused naming the tensor (expected vs got) and changes
 * nothing; a torchvision classifier (fc.*) in the file is ignored; while
 * frozen, an epoch changes only linear.*.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "isif/base/safetensors.h"
#include "isif/data/dataset.h"
#include "isif/nn/model.h"
#include "isif/train/checkpoint.h"
#include "isif/train/spec.h"
#include "isif/train/train.h"

/* n c×side×side images with varied pixels, labels i mod 3. */
static struct isif_split init_split(int n, int c, int side, int offset)
{
	size_t len = (size_t)c * side * side;
	struct isif_split s = { .n = n, .c = c, .h = side, .w = side };
	s.pixels = malloc((size_t)n * len);
	s.labels = malloc((size_t)n * sizeof(int32_t));
	for (int i = 0; i < n; i++) {
		for (size_t p = 0; p < len; p++)
			s.pixels[i * len + p] = (uint8_t)((i + offset) * 13 + p * (1 + i % 5));
		s.labels[i] = i % 3;
	}
	return s;
}

static struct isif_dataset init_dataset(int c, int side)
{
	struct isif_dataset ds = { 0 };
	ds.train = init_split(16, c, side, 0);
	ds.test = init_split(6, c, side, 500);
	ds.num_classes = 3;
	for (int k = 0; k < 3; k++) {
		ds.mean[k] = 0.5f;
		ds.std[k] = 0.25f;
	}
	return ds;
}

static struct isif_job_spec init_spec(const char *model)
{
	struct isif_job_spec spec;
	isif_spec_default(&spec);
	snprintf(spec.dataset, sizeof spec.dataset, "synthetic");
	snprintf(spec.model, sizeof spec.model, "%s", model);
	spec.batch_size = 4;
	spec.epochs = 1;
	spec.knn_k = 3;
	spec.eval_every = 0;
	spec.seed = 5;
	return spec;
}

static bool is_head(const char *name) { return strncmp(name, "linear.", 7) == 0; }

static size_t tensor_bytes(const struct isif_model_tensor *t)
{
	size_t n = t->dtype == ISIF_I64 ? 8 : 4;
	for (int d = 0; d < t->ndim; d++)
		n *= (size_t)t->shape[d];
	return n;
}

/* Tensors of a and b that differ in their bytes, of the head or of the
 * rest (want_head), counted. */
static int differing(const struct isif_model *a, const struct isif_model *b, bool want_head)
{
	int n = 0;
	for (size_t i = 0; i < isif_model_num_tensors(a); i++) {
		const struct isif_model_tensor *ta = isif_model_tensor(a, i);
		const struct isif_model_tensor *tb = isif_model_find(b, ta->name);
		if (is_head(ta->name) != want_head)
			continue;
		if (!tb || memcmp(ta->data, tb->data, tensor_bytes(ta)) != 0)
			n++;
	}
	return n;
}

static struct isif_model *model_of(const char *name, int c, uint64_t seed)
{
	struct isif_model *m = NULL;
	struct isif_error err = {0};
	CHECK_MSG(isif_model_create(&m, name, c, 128, seed, &err) == ISIF_OK, "%s", err.msg);
	return m;
}

static void tmp_path(char *out, size_t cap, const char *name)
{
	snprintf(out, cap, "%s/%s", test_tmpdir(), name);
}

TEST(trainer_init_starts_from_the_checkpoint_bit_for_bit)
{
	struct isif_dataset ds = init_dataset(3, 32);
	struct isif_job_spec spec = init_spec("resnet18_imagenet");
	struct isif_model *src = model_of("resnet18_imagenet", 3, 99);
	struct isif_model *fresh = model_of("resnet18_imagenet", 3, spec.seed);
	/* running statistics too must come from the file, not the defaults */
	const struct isif_model_tensor *rv = isif_model_find(src, "layer3.1.bn2.running_var");
	((float *)rv->data)[7] = 3.25f;
	*(int64_t *)isif_model_find(src, "bn1.num_batches_tracked")->data = 1234;
	char path[1024];
	tmp_path(path, sizeof path, "init-src.safetensors");
	struct isif_error err = {0};
	CHECK(isif_checkpoint_save(src, path, NULL, &err) == ISIF_OK);
	struct isif_trainer *t = NULL;
	CHECK_MSG(isif_trainer_create(&t, &spec, &ds, test_tmpdir(), 1, &err) == ISIF_OK, "%s",
		  err.msg);
	if (t) {
		CHECK_MSG(isif_trainer_init(t, path, &err) == ISIF_OK, "%s", err.msg);
		const struct isif_model *m = isif_trainer_model(t);
		CHECK_EQ(differing(m, src, false), 0);   /* backbone: the checkpoint's */
		CHECK_EQ(differing(m, fresh, true), 0);  /* head: the seed's, new */
		CHECK(differing(m, src, true) == 2);     /* not the checkpoint's head */
		isif_trainer_free(t);
	}
	isif_model_free(src);
	isif_model_free(fresh);
	isif_dataset_free(&ds);
}

/* Writes m's state_dict with tensor `drop` left out and `extra` (an F32
 * [2] tensor) added; either may be NULL. */
static void write_variant(const char *path, const struct isif_model *m, const char *drop,
			  const char *extra)
{
	size_t n = isif_model_num_tensors(m), k = 0;
	struct isif_tensor *ts = calloc(n + 1, sizeof *ts);
	static float two[2] = { 1, 2 };
	for (size_t i = 0; i < n; i++) {
		const struct isif_model_tensor *mt = isif_model_tensor(m, i);
		if (drop && strcmp(mt->name, drop) == 0)
			continue;
		ts[k] = (struct isif_tensor){ .name = mt->name, .dtype = mt->dtype, .ndim = mt->ndim,
					      .data = mt->data };
		memcpy(ts[k].shape, mt->shape, sizeof ts[k].shape);
		k++;
	}
	if (extra)
		ts[k++] = (struct isif_tensor){ .name = extra, .dtype = ISIF_F32, .ndim = 1,
						.shape = { 2 }, .data = two };
	struct isif_error err = {0};
	CHECK_MSG(isif_st_write(path, ts, k, NULL, &err) == ISIF_OK, "%s", err.msg);
	free(ts);
}

/* Init of a resnet20 from `path` fails with exactly `want`, and leaves the
 * model as it was. */
static void expect_init_refused(const char *path, const char *want)
{
	struct isif_dataset ds = init_dataset(3, 16);
	struct isif_job_spec spec = init_spec("resnet20");
	struct isif_model *fresh = model_of("resnet20", 3, spec.seed);
	struct isif_trainer *t = NULL;
	struct isif_error err = {0};
	CHECK(isif_trainer_create(&t, &spec, &ds, test_tmpdir(), 1, &err) == ISIF_OK);
	if (t) {
		CHECK_EQ(isif_trainer_init(t, path, &err), ISIF_ESHAPE);
		CHECK_MSG(strcmp(err.msg, want) == 0, "got \"%s\"\nwant \"%s\"", err.msg, want);
		CHECK_EQ(differing(isif_trainer_model(t), fresh, false), 0);
		isif_trainer_free(t);
	}
	isif_model_free(fresh);
	isif_dataset_free(&ds);
}

TEST(trainer_init_refuses_names_and_shapes_that_differ)
{
	char path[1024];
	tmp_path(path, sizeof path, "init-bad.safetensors");
	struct isif_model *one = model_of("resnet20", 1, 3), *r20 = model_of("resnet20", 3, 3);
	struct isif_model *r18 = model_of("resnet18", 3, 3);
	if (!one || !r20 || !r18)
		goto out;
	write_variant(path, one, NULL, NULL);
	expect_init_refused(path, "init.checkpoint: conv1.weight: shape [16,1,3,3] in file, "
			    "[16,3,3,3] expected");
	write_variant(path, r18, NULL, NULL);
	expect_init_refused(path, "init.checkpoint: conv1.weight: shape [64,3,3,3] in file, "
			    "[16,3,3,3] expected");
	write_variant(path, r20, "layer2.0.shortcut.1.running_mean", NULL);
	expect_init_refused(path, "init.checkpoint: missing tensor layer2.0.shortcut.1.running_mean");
	write_variant(path, r20, NULL, "layer9.0.conv1.weight");
	expect_init_refused(path, "init.checkpoint: unexpected tensor layer9.0.conv1.weight");
	/* a head is not the backbone: the file's linear.* and a classifier fc.* are
	 * left out, and a file without a head at all is fine */
	write_variant(path, r20, "linear.weight", "fc.weight");
	struct isif_dataset ds = init_dataset(3, 16);
	struct isif_job_spec spec = init_spec("resnet20");
	struct isif_trainer *t = NULL;
	struct isif_error err = {0};
	CHECK(isif_trainer_create(&t, &spec, &ds, test_tmpdir(), 1, &err) == ISIF_OK);
	if (t) {
		CHECK_MSG(isif_trainer_init(t, path, &err) == ISIF_OK, "%s", err.msg);
		CHECK_EQ(differing(isif_trainer_model(t), r20, false), 0);
		isif_trainer_free(t);
	}
	isif_dataset_free(&ds);
out:
	isif_model_free(one);
	isif_model_free(r20);
	isif_model_free(r18);
}

TEST(trainer_freeze_epochs_train_the_head_only)
{
	struct isif_dataset ds = init_dataset(1, 16);
	struct isif_job_spec spec = init_spec("convnet");
	spec.epochs = 2;
	spec.freeze_epochs = 1;
	struct isif_model *before = model_of("convnet", 1, spec.seed);
	struct isif_trainer *t = NULL;
	struct isif_error err = {0};
	CHECK(isif_trainer_create(&t, &spec, &ds, test_tmpdir(), 1, &err) == ISIF_OK);
	if (!t)
		goto out;
	spec.epochs = 1; /* the first (frozen) epoch alone */
	struct isif_trainer *t1 = NULL;
	CHECK(isif_trainer_create(&t1, &spec, &ds, test_tmpdir(), 1, &err) == ISIF_OK);
	CHECK_MSG(isif_trainer_run(t1, NULL, NULL, &err) == ISIF_OK, "%s", err.msg);
	const struct isif_model *m = isif_trainer_model(t1);
	for (size_t i = 0; i < isif_model_num_tensors(m); i++) {
		const struct isif_model_tensor *a = isif_model_tensor(m, i);
		if (!a->is_param)
			continue; /* BN running statistics still follow the batches */
		bool same = memcmp(a->data, isif_model_find(before, a->name)->data,
				   tensor_bytes(a)) == 0;
		CHECK_MSG(same == !is_head(a->name), "%s %s", a->name, same ? "unchanged" : "changed");
	}
	isif_trainer_free(t1);
	/* the second epoch trains everything */
	CHECK_MSG(isif_trainer_run(t, NULL, NULL, &err) == ISIF_OK, "%s", err.msg);
	CHECK(memcmp(isif_model_find(isif_trainer_model(t), "features.0.weight")->data,
		     isif_model_find(before, "features.0.weight")->data, 32 * 9 * 4) != 0);
	isif_trainer_free(t);
out:
	isif_model_free(before);
	isif_dataset_free(&ds);
}

/* augment.random_crop: a job trains on crops of the stored images and
 * evaluates on centre crops (the model is planned for the crop), and a
 * crop larger than the images is refused naming the field. */
TEST(trainer_random_crop_trains_and_evaluates)
{
	struct isif_dataset ds = init_dataset(3, 20);
	struct isif_job_spec spec = init_spec("convnet");
	spec.random_crop = 16;
	spec.eval_every = 1;
	struct isif_trainer *t = NULL;
	struct isif_error err = {0};
	CHECK_MSG(isif_trainer_create(&t, &spec, &ds, test_tmpdir(), 1, &err) == ISIF_OK, "%s",
		  err.msg);
	if (t)
		CHECK_MSG(isif_trainer_run(t, NULL, NULL, &err) == ISIF_OK, "%s", err.msg);
	isif_trainer_free(t);
	t = NULL;
	spec.random_crop = 21;
	CHECK_EQ(isif_trainer_create(&t, &spec, &ds, test_tmpdir(), 1, &err), ISIF_EINVAL);
	CHECK_MSG(strstr(err.msg, "augment.random_crop: 21 is larger than the 20x20 images"),
		  "%s", err.msg);
	isif_dataset_free(&ds);
}

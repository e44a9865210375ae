/*
 * tests/unit/test_checkpoint.c — model checkpoints and optimizer state on
 * top of safetensors, with the "convnet" model: save → load → save is
 * byte-identical, every kind of mismatch is refused and named, nothing is
 * loaded from a refused file, and SGD momentum state round-trips. The
 * "preprocessing" and "classes" metadata of a trained model's checkpoint
 * say exactly what the dataset says.
 */
#include "check.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "isif/base/fileio.h"
#include "isif/nn/model.h"
#include "isif/nn/optim.h"
#include "isif/base/safetensors.h"
#include "isif/train/checkpoint.h"

static void ck_path(char *out, size_t cap, const char *name)
{
	snprintf(out, cap, "%s/%s", test_tmpdir(), name);
}

static struct isif_model *ck_convnet(int in_channels, uint64_t seed)
{
	struct isif_model *m = NULL;
	struct isif_error err = {0};
	int rc = isif_model_create(&m, "convnet", in_channels, 128, seed, &err);
	CHECK_MSG(rc == ISIF_OK && m, "isif_model_create: %s", err.msg);
	return m;
}

static size_t ck_bytes(const struct isif_model_tensor *t)
{
	size_t n = t->dtype == ISIF_I64 ? 8 : 4;
	for (int i = 0; i < t->ndim; i++)
		n *= (size_t)t->shape[i];
	return n;
}

/* 1 if every state_dict tensor of a and b holds the same bytes. */
static int ck_models_equal(const struct isif_model *a, const struct isif_model *b)
{
	if (isif_model_num_tensors(a) != isif_model_num_tensors(b))
		return 0;
	for (size_t i = 0; i < isif_model_num_tensors(a); i++) {
		const struct isif_model_tensor *x = isif_model_tensor(a, i);
		const struct isif_model_tensor *y = isif_model_tensor(b, i);
		if (strcmp(x->name, y->name) != 0 || ck_bytes(x) != ck_bytes(y) ||
		    memcmp(x->data, y->data, ck_bytes(x)) != 0)
			return 0;
	}
	return 1;
}

static int ck_files_equal(const char *a, const char *b)
{
	void *x, *y;
	size_t nx, ny;
	if (isif_read_file(a, 1 << 26, &x, &nx, NULL))
		return 0;
	if (isif_read_file(b, 1 << 26, &y, &ny, NULL)) {
		free(x);
		return 0;
	}
	int eq = nx == ny && memcmp(x, y, nx) == 0;
	free(x);
	free(y);
	return eq;
}

/* Sets every num_batches_tracked to a distinct count, so I64 data is exercised. */
static void ck_mark_counts(struct isif_model *m, int64_t base)
{
	for (size_t i = 0; i < isif_model_num_tensors(m); i++) {
		const struct isif_model_tensor *t = isif_model_tensor(m, i);
		if (t->dtype == ISIF_I64)
			*(int64_t *)t->data = base + (int64_t)i;
	}
}

TEST(ckpt_save_load_save_identical)
{
	char p1[512], p2[512];
	struct isif_error err = {0};
	struct isif_model *a = ck_convnet(1, 11), *b = ck_convnet(1, 22);
	if (!a || !b)
		goto out;
	ck_mark_counts(a, 1000);
	CHECK(!ck_models_equal(a, b));  /* different seeds: the load must do the work */
	struct isif_st_meta meta = { 0 };
	isif_st_meta_set(&meta, "epoch", "3");
	isif_st_meta_set(&meta, "model", "not-this");  /* the model's own name wins */
	isif_st_meta_set(&meta, "spec", "{\"dataset\": \"fashion-mnist\"}");
	ck_path(p1, sizeof p1, "ckpt_a.safetensors");
	ck_path(p2, sizeof p2, "ckpt_b.safetensors");
	CHECK_MSG(isif_checkpoint_save(a, p1, &meta, &err) == ISIF_OK, "%s", err.msg);

	struct isif_st_meta got = { 0 };
	CHECK_MSG(isif_checkpoint_load(b, p1, &got, &err) == ISIF_OK, "%s", err.msg);
	CHECK(ck_models_equal(a, b));
	CHECK_EQ(got.n, 3);
	if (got.n == 3) {
		CHECK(strcmp(got.keys[0], "model") == 0 && strcmp(got.values[0], "convnet") == 0);
		CHECK(strcmp(got.keys[1], "epoch") == 0 && strcmp(got.values[1], "3") == 0);
		CHECK(strcmp(isif_st_meta_get(&got, "spec"), meta.values[2]) == 0);
	}
	CHECK_MSG(isif_checkpoint_save(b, p2, &meta, &err) == ISIF_OK, "%s", err.msg);
	CHECK(ck_files_equal(p1, p2));

	/* The file holds the state_dict in model order, with PyTorch's dtypes. */
	struct isif_st_file f;
	CHECK(isif_st_read(p1, &f, &err) == ISIF_OK);
	CHECK_EQ(f.n, isif_model_num_tensors(a));
	for (size_t i = 0; i < f.n && i < isif_model_num_tensors(a); i++) {
		const struct isif_model_tensor *t = isif_model_tensor(a, i);
		CHECK(strcmp(f.tensors[i].name, t->name) == 0);
		CHECK(f.tensors[i].dtype == t->dtype);
	}
	const struct isif_tensor *nbt = isif_st_find(&f, "features.1.num_batches_tracked");
	CHECK(nbt && nbt->dtype == ISIF_I64 && nbt->ndim == 0);
	isif_st_file_free(&f);
	isif_st_meta_free(&meta);
	isif_st_meta_free(&got);
out:
	isif_model_free(a);
	isif_model_free(b);
}

TEST(ckpt_shape_mismatch_named)
{
	char path[512];
	struct isif_error err = {0};
	struct isif_model *rgb = ck_convnet(3, 5), *gray = ck_convnet(1, 6), *gray0 = ck_convnet(1, 6);
	if (!rgb || !gray || !gray0)
		goto out;
	ck_path(path, sizeof path, "ckpt_rgb.safetensors");
	CHECK_MSG(isif_checkpoint_save(rgb, path, NULL, &err) == ISIF_OK, "%s", err.msg);
	CHECK(isif_checkpoint_load(gray, path, NULL, &err) == ISIF_ESHAPE);
	CHECK_MSG(strstr(err.msg, "features.0.weight: shape [32,3,3,3] in file, [32,1,3,3] expected"),
		  "%s", err.msg);
	CHECK(ck_models_equal(gray, gray0));  /* nothing was loaded */
out:
	isif_model_free(rgb);
	isif_model_free(gray);
	isif_model_free(gray0);
}

/* Rewrites src without tensor `drop` (if not NULL) and with `add` appended. */
static void ck_rewrite(const char *src, const char *dst, const char *drop,
		       const struct isif_tensor *add, const char *retype)
{
	struct isif_error err = {0};
	struct isif_st_file f;
	CHECK_MSG(isif_st_read(src, &f, &err) == ISIF_OK, "%s", err.msg);
	struct isif_tensor *ts = calloc(f.n + 1, sizeof *ts);
	size_t n = 0;
	float zero = 0;
	for (size_t i = 0; i < f.n; i++) {
		if (drop && strcmp(f.tensors[i].name, drop) == 0)
			continue;
		ts[n] = f.tensors[i];
		if (retype && strcmp(ts[n].name, retype) == 0) {
			ts[n].dtype = ISIF_F32;  /* same shape [] but F32 */
			ts[n].data = &zero;
		}
		n++;
	}
	if (add)
		ts[n++] = *add;
	CHECK_MSG(isif_st_write(dst, ts, n, &f.meta, &err) == ISIF_OK, "%s", err.msg);
	free(ts);
	isif_st_file_free(&f);
}

TEST(ckpt_missing_extra_and_dtype_named)
{
	char good[512], bad[512];
	struct isif_error err = {0};
	struct isif_model *m = ck_convnet(1, 7);
	if (!m)
		return;
	ck_path(good, sizeof good, "ckpt_good.safetensors");
	ck_path(bad, sizeof bad, "ckpt_bad.safetensors");
	CHECK_MSG(isif_checkpoint_save(m, good, NULL, &err) == ISIF_OK, "%s", err.msg);

	ck_rewrite(good, bad, "features.5.running_var", NULL, NULL);
	CHECK(isif_checkpoint_load(m, bad, NULL, &err) == ISIF_ESHAPE);
	CHECK_MSG(strstr(err.msg, "missing tensor features.5.running_var"), "%s", err.msg);

	float extra[2] = { 1, 2 };
	struct isif_tensor add = { .name = "head.weight", .dtype = ISIF_F32, .ndim = 1,
				   .shape = { 2 }, .data = extra };
	ck_rewrite(good, bad, NULL, &add, NULL);
	CHECK(isif_checkpoint_load(m, bad, NULL, &err) == ISIF_ESHAPE);
	CHECK_MSG(strstr(err.msg, "unexpected tensor head.weight"), "%s", err.msg);

	ck_rewrite(good, bad, NULL, NULL, "features.9.num_batches_tracked");
	CHECK(isif_checkpoint_load(m, bad, NULL, &err) == ISIF_ESHAPE);
	CHECK_MSG(strstr(err.msg, "features.9.num_batches_tracked: dtype F32 in file, I64 expected"),
		  "%s", err.msg);

	/* The unmodified file still loads. */
	CHECK_MSG(isif_checkpoint_load(m, good, NULL, &err) == ISIF_OK, "%s", err.msg);
	isif_model_free(m);
}

TEST(ckpt_truncated_rejected)
{
	char good[512], bad[512];
	struct isif_error err = {0};
	struct isif_model *m = ck_convnet(1, 8);
	if (!m)
		return;
	ck_path(good, sizeof good, "ckpt_full.safetensors");
	ck_path(bad, sizeof bad, "ckpt_trunc.safetensors");
	CHECK_MSG(isif_checkpoint_save(m, good, NULL, &err) == ISIF_OK, "%s", err.msg);
	void *buf;
	size_t len;
	CHECK(isif_read_file(good, 1 << 26, &buf, &len, &err) == ISIF_OK);
	size_t cuts[3] = { 1, len / 2, len - 4 };
	for (int i = 0; i < 3; i++) {
		struct isif_chunk c = { buf, len - cuts[i] };
		CHECK(isif_write_atomic(bad, &c, 1, &err) == ISIF_OK);
		CHECK(isif_checkpoint_load(m, bad, NULL, &err) == ISIF_EFORMAT);
	}
	free(buf);
	ck_path(bad, sizeof bad, "ckpt_absent.safetensors");
	CHECK(isif_checkpoint_load(m, bad, NULL, &err) == ISIF_EIO);
	isif_model_free(m);
}

/* An SGD state for m built by hand (no dependency on optim.c). */
static void ck_sgd(struct isif_sgd *o, const struct isif_model *m, bool has_buf, int64_t steps,
		   float scale)
{
	memset(o, 0, sizeof *o);
	o->momentum = 0.9f;
	o->n = isif_model_num_params(m);
	o->buf = malloc(o->n * sizeof *o->buf);
	for (size_t i = 0; i < o->n; i++)
		o->buf[i] = scale * (float)((i % 1000) * 0.001 - 0.5);
	o->has_buf = has_buf;
	o->steps = steps;
}

TEST(ckpt_optim_roundtrip)
{
	char p1[512], p2[512];
	struct isif_error err = {0};
	struct isif_model *m = ck_convnet(1, 9);
	if (!m)
		return;
	struct isif_sgd a, b;
	ck_sgd(&a, m, true, 123456789012LL, 1.0f);
	ck_sgd(&b, m, false, 0, 0.0f);
	ck_path(p1, sizeof p1, "ckpt_optim1.safetensors");
	ck_path(p2, sizeof p2, "ckpt_optim2.safetensors");
	CHECK_MSG(isif_optim_save(&a, m, p1, &err) == ISIF_OK, "%s", err.msg);
	CHECK_MSG(isif_optim_load(&b, m, p1, &err) == ISIF_OK, "%s", err.msg);
	CHECK(b.has_buf && b.steps == 123456789012LL);
	CHECK(memcmp(a.buf, b.buf, a.n * sizeof *a.buf) == 0);
	CHECK_MSG(isif_optim_save(&b, m, p2, &err) == ISIF_OK, "%s", err.msg);
	CHECK(ck_files_equal(p1, p2));

	/* One momentum_buffer per trainable tensor, holding the buffer slice at
	 * the parameter's offset in the parameter block. */
	struct isif_st_file f;
	CHECK(isif_st_read(p1, &f, &err) == ISIF_OK);
	const float *params = isif_model_params(m);
	size_t n_params = 0;
	for (size_t i = 0; i < isif_model_num_tensors(m); i++) {
		const struct isif_model_tensor *t = isif_model_tensor(m, i);
		char name[256];
		snprintf(name, sizeof name, "%s.momentum_buffer", t->name);
		const struct isif_tensor *mb = isif_st_find(&f, name);
		if (!t->is_param) {
			CHECK_MSG(!mb, "%s saved for a buffer", name);
			continue;
		}
		n_params++;
		CHECK_MSG(mb && mb->dtype == ISIF_F32 && mb->ndim == t->ndim, "%s", name);
		if (!mb)
			continue;
		size_t off = (size_t)((const float *)t->data - params);
		CHECK(memcmp(mb->data, a.buf + off, ck_bytes(t)) == 0);
	}
	CHECK_EQ(f.n, n_params);
	CHECK(strcmp(isif_st_meta_get(&f.meta, "steps"), "123456789012") == 0);
	CHECK(strcmp(isif_st_meta_get(&f.meta, "has_buf"), "1") == 0);
	isif_st_file_free(&f);

	/* Before the first step there is no buffer: metadata only. */
	a.has_buf = false;
	a.steps = 0;
	CHECK_MSG(isif_optim_save(&a, m, p1, &err) == ISIF_OK, "%s", err.msg);
	CHECK(isif_st_read(p1, &f, &err) == ISIF_OK && f.n == 0);
	isif_st_file_free(&f);
	CHECK_MSG(isif_optim_load(&b, m, p1, &err) == ISIF_OK, "%s", err.msg);
	CHECK(!b.has_buf && b.steps == 0);
	free(a.buf);
	free(b.buf);
	isif_model_free(m);
}

TEST(ckpt_optim_mismatch_refused)
{
	char ck[512], op[512], bad[512];
	struct isif_error err = {0};
	struct isif_model *m = ck_convnet(1, 10), *rgb = ck_convnet(3, 10);
	if (!m || !rgb)
		goto out;
	struct isif_sgd a, b;
	ck_sgd(&a, m, true, 5, 1.0f);
	ck_sgd(&b, m, false, 0, 0.0f);
	ck_path(ck, sizeof ck, "ckpt_for_optim.safetensors");
	ck_path(op, sizeof op, "ckpt_optim.safetensors");
	ck_path(bad, sizeof bad, "ckpt_optim_bad.safetensors");
	CHECK(isif_checkpoint_save(m, ck, NULL, &err) == ISIF_OK);
	CHECK(isif_optim_save(&a, m, op, &err) == ISIF_OK);
	/* a model checkpoint is not optimizer state */
	CHECK(isif_optim_load(&b, m, ck, &err) == ISIF_EFORMAT);
	/* a missing buffer is named, and nothing is loaded */
	ck_rewrite(op, bad, "linear.bias.momentum_buffer", NULL, NULL);
	CHECK(isif_optim_load(&b, m, bad, &err) == ISIF_ESHAPE);
	CHECK_MSG(strstr(err.msg, "missing tensor linear.bias.momentum_buffer"), "%s", err.msg);
	CHECK(!b.has_buf && b.buf[1] == 0.0f);
	/* an optimizer of another model's size is refused before reading */
	struct isif_sgd c;
	ck_sgd(&c, rgb, false, 0, 0.0f);
	CHECK(isif_optim_load(&c, m, op, &err) == ISIF_EINVAL);
	CHECK(isif_optim_save(&c, m, bad, &err) == ISIF_EINVAL);
	free(a.buf);
	free(b.buf);
	free(c.buf);
out:
	isif_model_free(m);
	isif_model_free(rgb);
}

/* The metadata of ds parsed back: "preprocessing" (NULL if absent or not JSON)
 * and whether "classes" was written, its JSON in *classes. */
static json_t *ck_dataset_meta(const struct isif_dataset *ds, json_t **classes)
{
	struct isif_st_meta meta = { 0 };
	CHECK(isif_checkpoint_dataset_meta(&meta, ds, 0) == ISIF_OK);
	const char *p = isif_st_meta_get(&meta, "preprocessing");
	const char *c = isif_st_meta_get(&meta, "classes");
	json_t *pre = p ? json_loads(p, 0, NULL) : NULL;
	*classes = c ? json_loads(c, 0, NULL) : NULL;
	CHECK(!c || *classes);
	isif_st_meta_free(&meta);
	return pre;
}

/* The text of a JSON string, "" for anything else. */
static const char *ck_str(const json_t *v)
{
	return json_is_string(v) ? json_string_value(v) : "";
}

/* 1 if the JSON array a holds exactly the n floats v (as written: float precision). */
static int ck_same_floats(const json_t *a, const float *v, size_t n)
{
	if (!json_is_array(a) || json_array_size(a) != n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((float)json_number_value(json_array_get(a, i)) != v[i])
			return 0;
	return 1;
}

TEST(ckpt_dataset_meta_says_how_to_preprocess)
{
	char *names[3] = { "cat", "dog \"big\"", "gnu/linux" };
	struct isif_dataset ds = { .format = ISIF_FMT_FOLDER, .num_classes = 3,
				   .class_names = names };
	ds.train = (struct isif_split){ .n = 4, .c = 3, .h = 24, .w = 20 };
	const float mean[3] = { 0.4914f, 0.4822f, 1.0f / 3.0f }, sd[3] = { 0.247f, 0.2435f, 0.2616f };
	memcpy(ds.mean, mean, sizeof mean);
	memcpy(ds.std, sd, sizeof sd);
	json_t *classes, *pre = ck_dataset_meta(&ds, &classes);
	CHECK(json_is_object(pre));
	CHECK_EQ(json_integer_value(json_object_get(pre, "channels")), 3);
	CHECK_EQ(json_integer_value(json_object_get(pre, "height")), 24);
	CHECK_EQ(json_integer_value(json_object_get(pre, "width")), 20);
	CHECK(ck_same_floats(json_object_get(pre, "mean"), mean, 3));
	CHECK(ck_same_floats(json_object_get(pre, "std"), sd, 3));
	CHECK(strcmp(ck_str(json_object_get(pre, "input_range")),
		     "0-1 after /255") == 0);
	CHECK(json_is_null(json_object_get(pre, "crop")));
	json_t *resize = json_object_get(pre, "resize");
	json_t *size = json_object_get(resize, "size");
	CHECK(json_array_size(size) == 2 && json_integer_value(json_array_get(size, 0)) == 24 &&
	      json_integer_value(json_array_get(size, 1)) == 20);
	CHECK(strcmp(ck_str(json_object_get(resize, "interpolation")),
		     "bilinear") == 0);
	CHECK(json_is_false(json_object_get(resize, "antialias")));
	CHECK_EQ(json_array_size(classes), 3);
	for (size_t i = 0; i < 3 && i < json_array_size(classes); i++)
		CHECK(strcmp(ck_str(json_array_get(classes, i)), names[i]) == 0);
	json_decref(pre);
	json_decref(classes);

	/* One channel: one mean and std. Without names (or with a name that is
	 * not UTF-8, which JSON cannot hold) "classes" is left out. */
	ds.train.c = 1;
	ds.class_names = NULL;
	pre = ck_dataset_meta(&ds, &classes);
	CHECK_EQ(json_integer_value(json_object_get(pre, "channels")), 1);
	CHECK(ck_same_floats(json_object_get(pre, "mean"), mean, 1));
	CHECK(ck_same_floats(json_object_get(pre, "std"), sd, 1));
	CHECK(classes == NULL);
	json_decref(pre);
	names[1] = "caf\xe9";
	ds.class_names = names;
	pre = ck_dataset_meta(&ds, &classes);
	CHECK(pre && classes == NULL);
	json_decref(pre);
}

/* A checkpoint carrying them loads like any other, and hands them back. */
TEST(ckpt_dataset_meta_roundtrip)
{
	char path[512];
	struct isif_error err = {0};
	char *names[2] = { "even", "odd" };
	struct isif_dataset ds = { .num_classes = 2, .class_names = names,
				   .mean = { 0.25f, 0.25f, 0.25f }, .std = { 0.5f, 0.5f, 0.5f } };
	ds.train = (struct isif_split){ .n = 1, .c = 1, .h = 28, .w = 28 };
	struct isif_model *m = ck_convnet(1, 5), *back = ck_convnet(1, 6);
	struct isif_st_meta meta = { 0 }, got = { 0 };
	if (!m || !back)
		goto out;
	CHECK(isif_st_meta_set(&meta, "epoch", "1") == ISIF_OK);
	CHECK(isif_checkpoint_dataset_meta(&meta, &ds, 0) == ISIF_OK);
	ck_path(path, sizeof path, "ckpt_preprocessing.safetensors");
	CHECK_MSG(isif_checkpoint_save(m, path, &meta, &err) == ISIF_OK, "%s", err.msg);
	CHECK_MSG(isif_checkpoint_load(back, path, &got, &err) == ISIF_OK, "%s", err.msg);
	CHECK(ck_models_equal(m, back));
	const char *p = isif_st_meta_get(&got, "preprocessing");
	CHECK(p && strcmp(p, isif_st_meta_get(&meta, "preprocessing")) == 0);
	CHECK(p && strstr(p, "\"mean\":[0.25],\"std\":[0.5]"));
	const char *c = isif_st_meta_get(&got, "classes");
	CHECK(c && strcmp(c, "[\"even\",\"odd\"]") == 0);
out:
	isif_st_meta_free(&meta);
	isif_st_meta_free(&got);
	isif_model_free(m);
	isif_model_free(back);
}

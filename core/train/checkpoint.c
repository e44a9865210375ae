/*
 * core/train/checkpoint.c — model checkpoints and optimizer state as safetensors
 * files, on top of the generic reader/writer (safetensors.c) and the model
 * API (model.h) only.
 *
 * A checkpoint holds every state_dict tensor in model order, metadata
 * "model" first, then the caller's keys. The optimizer file beside it holds
 * "<param>.momentum_buffer" (F32, the parameter's shape) for every trainable
 * tensor when the buffer exists, and metadata "steps" and "has_buf".
 * Loading is strict like PyTorch's load_state_dict(strict=True): every
 * expected tensor present with identical dtype and shape, nothing extra; the
 * first mismatch is named and nothing is copied unless everything matches.
 *
 * A checkpoint of a trained model also says how to feed it (metadata
 * "preprocessing" and "classes", JSON): core/cli/isif_torch.py reads them.
 */
#include "isif/base/safetensors.h"
#include "isif/train/checkpoint.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A tensor a file must contain, and where its data goes. */
struct ck_want {
	const char *name;
	enum isif_dtype dtype;
	int ndim;
	const int64_t *shape;
	void *dst;
};

/* "[16,16,3,3]" into s (cap bytes). */
static void ck_fmt_shape(char *s, size_t cap, int ndim, const int64_t *shape)
{
	size_t n = (size_t)snprintf(s, cap, "[");
	for (int i = 0; i < ndim && n < cap; i++)
		n += (size_t)snprintf(s + n, cap - n, "%s%" PRId64, i ? "," : "", shape[i]);
	if (n < cap)
		snprintf(s + n, cap - n, "]");
}

static bool ck_same_shape(const struct ck_want *w, const struct isif_tensor *t)
{
	if (w->ndim != t->ndim)
		return false;
	for (int i = 0; i < w->ndim; i++)
		if (w->shape[i] != t->shape[i])
			return false;
	return true;
}

/* Checks f against the wanted tensors (ISIF_ESHAPE naming the first mismatch),
 * then copies every wanted tensor's data to its dst. A file tensor nobody
 * wants is an error unless skip(name) says to ignore it (skip may be NULL). */
static enum isif_rc ck_match_and_copy(const struct isif_st_file *f, const struct ck_want *want,
			     size_t n, bool (*skip)(const char *), struct isif_error *err)
{
	for (size_t i = 0; i < n; i++) {
		const struct isif_tensor *t = isif_st_find(f, want[i].name);
		if (!t)
			return isif_fail(err, ISIF_ESHAPE, "missing tensor %.150s", want[i].name);
		if (t->dtype != want[i].dtype)
			return isif_fail(err, ISIF_ESHAPE, "%.150s: dtype %s in file, %s expected",
					 want[i].name, isif_dtype_name(t->dtype),
					 isif_dtype_name(want[i].dtype));
		if (!ck_same_shape(&want[i], t)) {
			char got[48], exp[48];
			ck_fmt_shape(got, sizeof got, t->ndim, t->shape);
			ck_fmt_shape(exp, sizeof exp, want[i].ndim, want[i].shape);
			return isif_fail(err, ISIF_ESHAPE, "%.150s: shape %s in file, %s expected",
					 want[i].name, got, exp);
		}
	}
	for (size_t j = 0; j < f->n; j++) {
		bool known = false;
		for (size_t i = 0; i < n && !known; i++)
			known = strcmp(f->tensors[j].name, want[i].name) == 0;
		if (!known && !(skip && skip(f->tensors[j].name)))
			return isif_fail(err, ISIF_ESHAPE, "unexpected tensor %.150s",
					 f->tensors[j].name);
	}
	for (size_t i = 0; i < n; i++) {
		const struct isif_tensor *t = isif_st_find(f, want[i].name);
		size_t bytes = (size_t)isif_tensor_numel(t) * isif_dtype_size(t->dtype);
		if (bytes)
			memcpy(want[i].dst, t->data, bytes);
	}
	return ISIF_OK;
}

/* ---- model checkpoints ------------------------------------------------- */

enum isif_rc isif_checkpoint_save(const struct isif_model *m, const char *path,
			 const struct isif_st_meta *meta, struct isif_error *err)
{
	size_t n = isif_model_num_tensors(m);
	struct isif_tensor *ts = calloc(n ? n : 1, sizeof *ts);
	struct isif_st_meta all = { 0 };
	int rc = ts ? isif_st_meta_set(&all, "model", isif_model_name(m)) : ISIF_ENOMEM;
	for (size_t i = 0; rc == ISIF_OK && meta && i < meta->n; i++)
		if (strcmp(meta->keys[i], "model") != 0)
			rc = isif_st_meta_set(&all, meta->keys[i], meta->values[i]);
	if (rc) {
		rc = isif_fail(err, rc, "checkpoint: out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const struct isif_model_tensor *mt = isif_model_tensor(m, i);
		ts[i].name = mt->name;
		ts[i].dtype = mt->dtype;
		ts[i].ndim = mt->ndim;
		memcpy(ts[i].shape, mt->shape, sizeof ts[i].shape);
		ts[i].data = mt->data;
	}
	rc = isif_st_write(path, ts, n, &all, err);
out:
	isif_st_meta_free(&all);
	free(ts);
	return rc;
}

enum isif_rc isif_checkpoint_load(struct isif_model *m, const char *path,
			 struct isif_st_meta *meta, struct isif_error *err)
{
	struct isif_st_file f;
	if (meta)
		memset(meta, 0, sizeof *meta);
	int rc = isif_st_read(path, &f, err);
	if (rc)
		return rc;
	size_t n = isif_model_num_tensors(m);
	struct ck_want *want = calloc(n ? n : 1, sizeof *want);
	if (!want) {
		isif_st_file_free(&f);
		return isif_fail(err, ISIF_ENOMEM, "checkpoint: out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		const struct isif_model_tensor *mt = isif_model_tensor(m, i);
		want[i] = (struct ck_want){ mt->name, mt->dtype, mt->ndim, mt->shape, mt->data };
	}
	rc = ck_match_and_copy(&f, want, n, NULL, err);
	if (rc == ISIF_OK && meta) {
		*meta = f.meta;  /* hand the metadata over instead of copying it */
		memset(&f.meta, 0, sizeof f.meta);
	}
	free(want);
	isif_st_file_free(&f);
	return rc;
}

bool isif_checkpoint_is_head(const char *name)
{
	return strncmp(name, "linear.", 7) == 0 || strncmp(name, "fc.", 3) == 0;
}

enum isif_rc isif_checkpoint_init_backbone(struct isif_model *m, const char *path,
					   struct isif_error *err)
{
	struct isif_st_file f;
	int rc = isif_st_read(path, &f, err);
	if (rc)
		return rc;
	size_t n = isif_model_num_tensors(m), k = 0;
	struct ck_want *want = calloc(n ? n : 1, sizeof *want);
	if (!want) {
		isif_st_file_free(&f);
		return isif_fail(err, ISIF_ENOMEM, "checkpoint: out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		const struct isif_model_tensor *mt = isif_model_tensor(m, i);
		if (!isif_checkpoint_is_head(mt->name))
			want[k++] = (struct ck_want){ mt->name, mt->dtype, mt->ndim, mt->shape,
						      mt->data };
	}
	rc = ck_match_and_copy(&f, want, k, isif_checkpoint_is_head, err);
	free(want);
	isif_st_file_free(&f);
	return rc;
}

/* ---- how to preprocess an input ---------------------------------------- */

/* A JSON array of n floats; NULL on ENOMEM or a non-finite value. */
static json_t *ck_floats(const float *v, int n)
{
	json_t *a = json_array();
	for (int i = 0; a && i < n; i++)
		if (json_array_append_new(a, json_real(v[i]))) {
			json_decref(a);
			a = NULL;
		}
	return a;
}

/*
 * What `isif embed --dataset` and the daemon's image queries do to an image
 * (index_preprocess): resize the uint8 image to the model's size like
 * torchvision's tensor resize, convert channels, scale to 0..1, normalise
 * with the train split's mean/std; the centre crop×crop after the resize
 * for a job trained on random crops (augment.random_crop), else no crop.
 */
static json_t *ck_preprocessing(const struct isif_dataset *ds, int crop)
{
	const struct isif_split *s = &ds->train;
	int c = s->c < 1 ? 1 : s->c > 3 ? 3 : s->c;
	return json_pack("{s:i, s:i, s:i, s:s, s:s, s:o, s:o, "
			 "s:{s:[i,i], s:s, s:b, s:b, s:s}, s:o, s:s, s:s}",
			 "channels", s->c, "height", s->h, "width", s->w,
			 "layout", "CHW", "input_range", "0-1 after /255",
			 "mean", ck_floats(ds->mean, c), "std", ck_floats(ds->std, c),
			 "resize", "size", s->h, s->w, "interpolation", "bilinear",
			 "antialias", 0, "align_corners", 0, "rounding", "half to even, to uint8",
			 "crop", crop > 0 ? json_pack("{s:[i,i]}", "center", crop, crop) : json_null(),
			 "convert", "1 to 3 channels: replicate; 3 to 1: ITU-R 601 luma, "
			 "(19595 R + 38470 G + 7471 B + 32768) >> 16",
			 "order", crop > 0 ? "resize, convert, centre crop, /255, (x - mean) / std"
					   : "resize, convert, /255, (x - mean) / std");
}

/* ds's class names as a JSON array; NULL when it has none or one is not UTF-8
 * (json_string refuses it: a folder named in another encoding). */
static json_t *ck_classes(const struct isif_dataset *ds)
{
	json_t *a = ds->class_names && ds->num_classes > 0 ? json_array() : NULL;
	for (int i = 0; a && i < ds->num_classes; i++)
		if (json_array_append_new(a, json_string(ds->class_names[i]))) {
			json_decref(a);
			a = NULL;
		}
	return a;
}

/* meta[key] = compact JSON of v (floats to float precision); consumes v. */
static int ck_meta_json(struct isif_st_meta *meta, const char *key, json_t *v)
{
	char *text = v ? json_dumps(v, JSON_COMPACT | JSON_REAL_PRECISION(9)) : NULL;
	int rc = text ? isif_st_meta_set(meta, key, text) : ISIF_ENOMEM;
	free(text);
	json_decref(v);
	return rc;
}

int isif_checkpoint_dataset_meta(struct isif_st_meta *meta, const struct isif_dataset *ds,
				 int crop)
{
	int rc = ck_meta_json(meta, "preprocessing", ck_preprocessing(ds, crop));
	json_t *classes = rc == ISIF_OK ? ck_classes(ds) : NULL;
	if (classes)
		rc = ck_meta_json(meta, "classes", classes);
	return rc;
}

/* ---- optimizer state --------------------------------------------------- */

/* Elements of a model tensor. */
static size_t ck_numel(const struct isif_model_tensor *mt)
{
	size_t n = 1;
	for (int i = 0; i < mt->ndim; i++)
		n *= (size_t)mt->shape[i];
	return n;
}

/*
 * The momentum buffer of a parameter sits at the same offset in opt->buf as
 * the parameter in the model's parameter block: offset = data − params.
 */
static enum isif_rc ck_param_offset(const struct isif_model *m, const struct isif_model_tensor *mt,
			   size_t *off, struct isif_error *err)
{
	/* isif_model_params takes a mutable model; only the address is read. */
	uintptr_t base = (uintptr_t)isif_model_params((struct isif_model *)m);
	uintptr_t p = (uintptr_t)mt->data;
	size_t np = isif_model_num_params(m);
	if (mt->dtype != ISIF_F32 || p < base || (p - base) % sizeof(float) ||
	    (p - base) / sizeof(float) > np || ck_numel(mt) > np - (p - base) / sizeof(float))
		return isif_fail(err, ISIF_EINVAL, "%.150s: not inside the parameter block",
				 mt->name);
	*off = (p - base) / sizeof(float);
	return ISIF_OK;
}

/*
 * The wanted momentum buffers of every trainable tensor of m, named
 * "<param>.momentum_buffer", pointing into buf. names[] (n of them) are
 * malloc'd; free them with ck_free_names even on failure.
 */
static enum isif_rc ck_momentum_wants(const struct isif_model *m, float *buf, struct ck_want *want,
			     char **names, size_t *n, struct isif_error *err)
{
	static const char suffix[] = ".momentum_buffer";
	*n = 0;
	for (size_t i = 0; i < isif_model_num_tensors(m); i++) {
		const struct isif_model_tensor *mt = isif_model_tensor(m, i);
		size_t off = 0;
		if (!mt->is_param)
			continue;
		int rc = ck_param_offset(m, mt, &off, err);
		if (rc)
			return rc;
		size_t len = strlen(mt->name) + sizeof suffix;
		char *name = malloc(len);
		if (!name)
			return isif_fail(err, ISIF_ENOMEM, "optimizer state: out of memory");
		snprintf(name, len, "%s%s", mt->name, suffix);
		names[*n] = name;
		want[*n] = (struct ck_want){ name, ISIF_F32, mt->ndim, mt->shape, buf + off };
		(*n)++;
	}
	return ISIF_OK;
}

static void ck_free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

static enum isif_rc ck_check_sgd(const struct isif_sgd *opt, const struct isif_model *m, struct isif_error *err)
{
	if (opt->n != isif_model_num_params(m))
		return isif_fail(err, ISIF_EINVAL, "optimizer has %zu parameters, model %s has %zu",
				 opt->n, isif_model_name(m), isif_model_num_params(m));
	if (opt->n && !opt->buf)
		return isif_fail(err, ISIF_EINVAL, "optimizer has no momentum buffer");
	return ISIF_OK;
}

enum isif_rc isif_optim_save(const struct isif_sgd *opt, const struct isif_model *m,
		    const char *path, struct isif_error *err)
{
	size_t cap = isif_model_num_tensors(m), n = 0;
	struct ck_want *want = calloc(cap ? cap : 1, sizeof *want);
	struct isif_tensor *ts = calloc(cap ? cap : 1, sizeof *ts);
	char **names = calloc(cap ? cap : 1, sizeof *names);
	struct isif_st_meta meta = { 0 };
	char steps[24];
	int rc = ck_check_sgd(opt, m, err);
	if (rc)
		goto out;
	if (!want || !ts || !names) {
		rc = isif_fail(err, ISIF_ENOMEM, "optimizer state: out of memory");
		goto out;
	}
	if (opt->has_buf)
		rc = ck_momentum_wants(m, opt->buf, want, names, &n, err);
	if (rc)
		goto out;
	for (size_t i = 0; i < n; i++) {
		ts[i] = (struct isif_tensor){ .name = want[i].name, .dtype = ISIF_F32,
					      .ndim = want[i].ndim, .data = want[i].dst };
		memcpy(ts[i].shape, want[i].shape, (size_t)want[i].ndim * sizeof *want[i].shape);
	}
	snprintf(steps, sizeof steps, "%" PRId64, opt->steps);
	if (isif_st_meta_set(&meta, "steps", steps) ||
	    isif_st_meta_set(&meta, "has_buf", opt->has_buf ? "1" : "0")) {
		rc = isif_fail(err, ISIF_ENOMEM, "optimizer state: out of memory");
		goto out;
	}
	rc = isif_st_write(path, ts, n, &meta, err);
out:
	isif_st_meta_free(&meta);
	ck_free_names(names, n);
	free(ts);
	free(want);
	return rc;
}

/* Parses metadata "steps" (decimal, 0 ≤ steps < 10^18) and "has_buf" ("0"/"1"). */
static enum isif_rc ck_parse_sgd_meta(const struct isif_st_meta *meta, int64_t *steps, bool *has_buf,
			     struct isif_error *err)
{
	const char *s = isif_st_meta_get(meta, "steps");
	const char *h = isif_st_meta_get(meta, "has_buf");
	if (!h || (strcmp(h, "0") != 0 && strcmp(h, "1") != 0))
		return isif_fail(err, ISIF_EFORMAT, "optimizer state: metadata has_buf is not "
				 "\"0\" or \"1\"");
	size_t len = s ? strlen(s) : 0;
	if (len == 0 || len > 18 || strspn(s, "0123456789") != len)
		return isif_fail(err, ISIF_EFORMAT, "optimizer state: metadata steps is not a "
				 "decimal count");
	*steps = 0;
	for (size_t i = 0; i < len; i++)
		*steps = *steps * 10 + (s[i] - '0');
	*has_buf = h[0] == '1';
	return ISIF_OK;
}

enum isif_rc isif_optim_load(struct isif_sgd *opt, const struct isif_model *m,
		    const char *path, struct isif_error *err)
{
	size_t cap = isif_model_num_tensors(m), n = 0;
	struct isif_st_file f = { 0 };
	struct ck_want *want = calloc(cap ? cap : 1, sizeof *want);
	char **names = calloc(cap ? cap : 1, sizeof *names);
	int64_t steps = 0;
	bool has_buf = false;
	int rc = ck_check_sgd(opt, m, err);
	if (rc)
		goto out;
	if (!want || !names) {
		rc = isif_fail(err, ISIF_ENOMEM, "optimizer state: out of memory");
		goto out;
	}
	rc = isif_st_read(path, &f, err);
	if (rc == ISIF_OK)
		rc = ck_parse_sgd_meta(&f.meta, &steps, &has_buf, err);
	if (rc == ISIF_OK && has_buf)
		rc = ck_momentum_wants(m, opt->buf, want, names, &n, err);
	/* Without a buffer the file must hold no tensor: n = 0 wants. */
	if (rc == ISIF_OK)
		rc = ck_match_and_copy(&f, want, n, NULL, err);
	if (rc == ISIF_OK) {
		if (!has_buf && opt->buf)
			memset(opt->buf, 0, opt->n * sizeof *opt->buf);
		opt->has_buf = has_buf;
		opt->steps = steps;
	}
out:
	isif_st_file_free(&f);
	ck_free_names(names, n);
	free(want);
	return rc;
}

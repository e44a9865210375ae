/*
 * core/train/spec.c — the training job spec of DESIGN.md "Job spec": defaults,
 * strict parsing with Jansson and canonical JSON output.
 *
 * Parsing is table driven: each JSON object of the spec has a table of
 * fields (name, kind, bounds, where it lands in the struct). A key that is
 * not in the table is an error ("augment.color_jitter.bogus: unknown
 * field"), as is a wrong type or a value out of its bounds; every message
 * starts with the field's dotted path. Cross-field rules (crop_scale order,
 * milestones vs factors) are checked after the fields.
 *
 * The canonical JSON is written by hand rather than with json_dumps so every
 * number prints in its shortest form that reads back to the same value
 * (Jansson prints doubles with %.17g, which shows 0.03 as
 * 0.029999999999999999): parse(to_json(s)) == s exactly.
 *
 * Not here: whether the dataset exists (the daemon's registry or the CLI's
 * file system decides that).
 */
#include "isif/train/spec.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "isif/base/common.h"
#include "isif/nn/model.h"
#include "isif/base/strbuf.h"

#define SPEC_MAX_SEED (UINT64_C(1) << 53)
#define SPEC_MAX_LABEL (1 << 20)

void isif_spec_default(struct isif_job_spec *s)
{
	memset(s, 0, sizeof *s);
	snprintf(s->model, sizeof s->model, "resnet20");
	s->epochs = 20;
	s->batch_size = 128;
	s->lr = 0.03;
	s->momentum = 0.9;
	s->weight_decay = 5e-4;
	s->nesterov = false;
	s->lr_schedule.type = ISIF_LR_STEP;
	s->lr_schedule.base_lr = s->lr;
	s->lr_schedule.total_epochs = s->epochs;
	s->temperature = 0.1;
	s->embedding_dim = 128;
	s->seed = 1;
	s->threads = 0;
	s->crop = true;
	s->crop_scale[0] = 0.2f;
	s->crop_scale[1] = 1.0f;
	s->hflip = 0.5f;
	s->grayscale = 0.2f;
	s->brightness = s->contrast = s->saturation = s->hue = 0.4f;
	s->jitter_p = 1.0f;
	s->gradient = ISIF_GRAD_REFERENCE;
	s->bn_groups = 1;
	s->knn_k = 200;
	s->knn_temperature = 0.1;
	s->eval_every = 1;
	s->train_subset = 0;
	s->has_classes = false;
}

/* ---- parsing ---------------------------------------------------------- */

enum field_kind {
	F_INT,      /* int, integer JSON only */
	F_INT64,    /* int64_t */
	F_DOUBLE,   /* double, any JSON number */
	F_FLOAT,    /* float, any JSON number */
	F_BOOL,
	F_CUSTOM,   /* handled by fn */
};

/* Bound flags: the minimum or maximum itself is excluded. */
#define LO_OPEN 1u
#define HI_OPEN 2u

struct field;
typedef enum isif_rc (*field_fn)(struct isif_job_spec *s, json_t *v, const char *path,
			struct isif_error *err);

struct field {
	const char *name;
	enum field_kind kind;
	size_t offset;
	double lo, hi;
	unsigned open;
	field_fn fn;
};

#define OFF(m) offsetof(struct isif_job_spec, m)

static enum isif_rc parse_object(struct isif_job_spec *s, json_t *obj, const char *path,
			const struct field *table, size_t n, struct isif_error *err);

/* "prefix.name" or just "name" at the top level. */
static void join_path(char *out, size_t cap, const char *prefix, const char *name)
{
	if (prefix[0])
		snprintf(out, cap, "%s.%s", prefix, name);
	else
		snprintf(out, cap, "%s", name);
}

static enum isif_rc range_error(const char *path, const struct field *f, bool integer,
		       struct isif_error *err)
{
	if (integer)
		return isif_fail(err, ISIF_EINVAL,
				 "%s: must be an integer between %.17g and %.17g",
				 path, f->lo, f->hi);
	return isif_fail(err, ISIF_EINVAL, "%s: must be a number %s %g and %s %g",
			 path, (f->open & LO_OPEN) ? ">" : ">=", f->lo,
			 (f->open & HI_OPEN) ? "<" : "<=", f->hi);
}

static bool in_range(double x, const struct field *f)
{
	bool lo_ok = (f->open & LO_OPEN) ? x > f->lo : x >= f->lo;
	bool hi_ok = (f->open & HI_OPEN) ? x < f->hi : x <= f->hi;
	return lo_ok && hi_ok;
}

static enum isif_rc parse_scalar(struct isif_job_spec *s, json_t *v, const char *path,
			const struct field *f, struct isif_error *err)
{
	char *dst = (char *)s + f->offset;
	switch (f->kind) {
	case F_INT:
	case F_INT64: {
		if (!json_is_integer(v))
			return isif_fail(err, ISIF_EINVAL, "%s: must be an integer", path);
		json_int_t x = json_integer_value(v);
		if ((double)x < f->lo || (double)x > f->hi)
			return range_error(path, f, true, err);
		if (f->kind == F_INT)
			*(int *)dst = (int)x;
		else
			*(int64_t *)dst = (int64_t)x;
		return ISIF_OK;
	}
	case F_DOUBLE:
	case F_FLOAT: {
		if (!json_is_number(v))
			return isif_fail(err, ISIF_EINVAL, "%s: must be a number", path);
		double x = json_number_value(v);
		if (!in_range(x, f))
			return range_error(path, f, false, err);
		if (f->kind == F_DOUBLE)
			*(double *)dst = x;
		else
			*(float *)dst = (float)x;
		return ISIF_OK;
	}
	case F_BOOL:
		if (!json_is_boolean(v))
			return isif_fail(err, ISIF_EINVAL, "%s: must be true or false", path);
		*(bool *)dst = json_is_true(v);
		return ISIF_OK;
	case F_CUSTOM:
		return f->fn(s, v, path, err);
	}
	return isif_fail(err, ISIF_EINVAL, "%s: internal error", path);
}

static enum isif_rc parse_name(char *dst, json_t *v, const char *path, struct isif_error *err)
{
	if (!json_is_string(v))
		return isif_fail(err, ISIF_EINVAL, "%s: must be a string", path);
	const char *str = json_string_value(v);
	size_t len = json_string_length(v);
	if (len == 0)
		return isif_fail(err, ISIF_EINVAL, "%s: must not be empty", path);
	if (len >= ISIF_SPEC_NAME_LEN || strlen(str) != len)
		return isif_fail(err, ISIF_EINVAL,
				 "%s: must be at most %d bytes without NUL", path,
				 ISIF_SPEC_NAME_LEN - 1);
	memcpy(dst, str, len + 1);
	return ISIF_OK;
}

static enum isif_rc f_dataset(struct isif_job_spec *s, json_t *v, const char *path, struct isif_error *err)
{
	return parse_name(s->dataset, v, path, err);
}

static enum isif_rc f_model(struct isif_job_spec *s, json_t *v, const char *path, struct isif_error *err)
{
	char names[ISIF_ERR_LEN / 2] = "";
	if (!json_is_string(v))
		return isif_fail(err, ISIF_EINVAL, "%s: must be a string", path);
	for (int i = 0; isif_model_names[i]; i++) {
		if (strcmp(json_string_value(v), isif_model_names[i]) == 0)
			return parse_name(s->model, v, path, err);
		size_t n = strlen(names);
		snprintf(names + n, sizeof names - n, "%s%s", i ? ", " : "", isif_model_names[i]);
	}
	return isif_fail(err, ISIF_EINVAL, "%s: unknown model (one of %s)", path, names);
}

static enum isif_rc f_gradient(struct isif_job_spec *s, json_t *v, const char *path, struct isif_error *err)
{
	const char *g = json_string_value(v);
	if (!g)
		return isif_fail(err, ISIF_EINVAL, "%s: must be a string", path);
	if (strcmp(g, "reference") == 0)
		s->gradient = ISIF_GRAD_REFERENCE;
	else if (strcmp(g, "full") == 0)
		s->gradient = ISIF_GRAD_FULL;
	else
		return isif_fail(err, ISIF_EINVAL,
				 "%s: must be \"reference\" or \"full\"", path);
	return ISIF_OK;
}

static enum isif_rc f_seed(struct isif_job_spec *s, json_t *v, const char *path, struct isif_error *err)
{
	if (!json_is_integer(v))
		return isif_fail(err, ISIF_EINVAL, "%s: must be an integer", path);
	json_int_t x = json_integer_value(v);
	if (x < 0 || (uint64_t)x > SPEC_MAX_SEED)
		return isif_fail(err, ISIF_EINVAL,
				 "%s: must be an integer between 0 and 2^53", path);
	s->seed = (uint64_t)x;
	return ISIF_OK;
}

static enum isif_rc f_crop_scale(struct isif_job_spec *s, json_t *v, const char *path, struct isif_error *err)
{
	if (!json_is_array(v) || json_array_size(v) != 2)
		return isif_fail(err, ISIF_EINVAL, "%s: must be an array of 2 numbers", path);
	double x[2];
	for (size_t i = 0; i < 2; i++) {
		json_t *e = json_array_get(v, i);
		if (!json_is_number(e))
			return isif_fail(err, ISIF_EINVAL, "%s[%zu]: must be a number", path, i);
		x[i] = json_number_value(e);
	}
	if (!(x[0] > 0 && x[0] <= x[1] && x[1] <= 1))
		return isif_fail(err, ISIF_EINVAL,
				 "%s: must be [a, b] with 0 < a <= b <= 1", path);
	s->crop_scale[0] = (float)x[0];
	s->crop_scale[1] = (float)x[1];
	return ISIF_OK;
}

/* A JSON array of n ≤ cap integers in [lo, hi] into out; strictly ascending
 * when `ascending`, else without duplicates. */
static enum isif_rc parse_int_list(json_t *v, const char *path, int *out, int *n, int cap,
			  long lo, long hi, bool ascending, struct isif_error *err)
{
	if (!json_is_array(v))
		return isif_fail(err, ISIF_EINVAL, "%s: must be an array of integers", path);
	size_t len = json_array_size(v);
	if (len > (size_t)cap)
		return isif_fail(err, ISIF_EINVAL, "%s: at most %d entries", path, cap);
	for (size_t i = 0; i < len; i++) {
		json_t *e = json_array_get(v, i);
		if (!json_is_integer(e))
			return isif_fail(err, ISIF_EINVAL, "%s[%zu]: must be an integer", path, i);
		json_int_t x = json_integer_value(e);
		if (x < lo || x > hi)
			return isif_fail(err, ISIF_EINVAL,
					 "%s[%zu]: must be between %ld and %ld", path, i, lo, hi);
		for (size_t j = 0; j < i; j++) {
			if (ascending && out[j] >= x)
				return isif_fail(err, ISIF_EINVAL,
						 "%s[%zu]: must be greater than the entry before it",
						 path, i);
			if (out[j] == x)
				return isif_fail(err, ISIF_EINVAL, "%s[%zu]: duplicate %lld",
						 path, i, (long long)x);
		}
		out[i] = (int)x;
	}
	*n = (int)len;
	return ISIF_OK;
}

static enum isif_rc f_lr_type(struct isif_job_spec *s, json_t *v, const char *path, struct isif_error *err)
{
	const char *t = json_string_value(v);
	if (!t)
		return isif_fail(err, ISIF_EINVAL, "%s: must be a string", path);
	if (strcmp(t, "constant") == 0)
		s->lr_schedule.type = ISIF_LR_CONSTANT;
	else if (strcmp(t, "step") == 0)
		s->lr_schedule.type = ISIF_LR_STEP;
	else if (strcmp(t, "cosine") == 0)
		s->lr_schedule.type = ISIF_LR_COSINE;
	else
		return isif_fail(err, ISIF_EINVAL,
				 "%s: must be \"constant\", \"step\" or \"cosine\"", path);
	return ISIF_OK;
}

/* Milestone count as parsed, so factors can be checked against it; factors
 * are parsed into a side array and compared after the whole object. */
static enum isif_rc f_milestones(struct isif_job_spec *s, json_t *v, const char *path, struct isif_error *err)
{
	return parse_int_list(v, path, s->lr_schedule.milestones,
			      &s->lr_schedule.n_milestones, ISIF_LR_MAX_MILESTONES,
			      1, 10000, true, err);
}

static enum isif_rc f_factors(struct isif_job_spec *s, json_t *v, const char *path, struct isif_error *err)
{
	(void)s;
	if (!json_is_array(v))
		return isif_fail(err, ISIF_EINVAL, "%s: must be an array of numbers", path);
	if (json_array_size(v) > ISIF_LR_MAX_MILESTONES)
		return isif_fail(err, ISIF_EINVAL, "%s: at most %d entries", path,
				 ISIF_LR_MAX_MILESTONES);
	for (size_t i = 0; i < json_array_size(v); i++) {
		json_t *e = json_array_get(v, i);
		if (!json_is_number(e))
			return isif_fail(err, ISIF_EINVAL, "%s[%zu]: must be a number", path, i);
		double x = json_number_value(e);
		if (!(x >= 0 && x <= 1000))
			return isif_fail(err, ISIF_EINVAL,
					 "%s[%zu]: must be between 0 and 1000", path, i);
		s->lr_schedule.factors[i] = x;
	}
	return ISIF_OK;
}

static const struct field lr_fields[] = {
	{"type", F_CUSTOM, 0, 0, 0, 0, f_lr_type},
	{"milestones", F_CUSTOM, 0, 0, 0, 0, f_milestones},
	{"factors", F_CUSTOM, 0, 0, 0, 0, f_factors},
	{"warmup_epochs", F_DOUBLE, OFF(lr_schedule.warmup_epochs), 0, 10000, 0, NULL},
	{"min_lr", F_DOUBLE, OFF(lr_schedule.min_lr), 0, 10, 0, NULL},
};

static enum isif_rc f_lr_schedule(struct isif_job_spec *s, json_t *v, const char *path, struct isif_error *err)
{
	json_t *factors = json_is_object(v) ? json_object_get(v, "factors") : NULL;
	json_t *milestones = json_is_object(v) ? json_object_get(v, "milestones") : NULL;
	int rc = parse_object(s, v, path, lr_fields, sizeof lr_fields / sizeof lr_fields[0], err);
	if (rc)
		return rc;
	/* Giving one list resets the other to empty unless it is given too. */
	if (milestones && !factors)
		return isif_fail(err, ISIF_EINVAL, "%s.factors: required with milestones", path);
	if (factors && !milestones)
		return isif_fail(err, ISIF_EINVAL, "%s.milestones: required with factors", path);
	if (factors && (int)json_array_size(factors) != s->lr_schedule.n_milestones)
		return isif_fail(err, ISIF_EINVAL,
				 "%s.factors: must have as many entries as milestones (%d)",
				 path, s->lr_schedule.n_milestones);
	return ISIF_OK;
}

static enum isif_rc f_classes(struct isif_job_spec *s, json_t *v, const char *path, struct isif_error *err)
{
	char sub[128];
	if (json_is_null(v)) {
		s->has_classes = false;
		s->n_train_classes = s->n_test_classes = 0;
		return ISIF_OK;
	}
	if (!json_is_object(v))
		return isif_fail(err, ISIF_EINVAL,
				 "%s: must be null or {\"train\": [...], \"test\": [...]}", path);
	const char *key;
	json_t *e;
	json_object_foreach(v, key, e) {
		if (strcmp(key, "train") && strcmp(key, "test"))
			return isif_fail(err, ISIF_EINVAL, "%s.%s: unknown field", path, key);
	}
	static const char *const names[2] = {"train", "test"};
	int *lists[2] = {s->train_classes, s->test_classes};
	int *counts[2] = {&s->n_train_classes, &s->n_test_classes};
	for (int i = 0; i < 2; i++) {
		join_path(sub, sizeof sub, path, names[i]);
		e = json_object_get(v, names[i]);
		if (!e)
			return isif_fail(err, ISIF_EINVAL, "%s: required", sub);
		int rc = parse_int_list(e, sub, lists[i], counts[i], ISIF_SPEC_MAX_CLASSES,
					0, SPEC_MAX_LABEL, false, err);
		if (rc)
			return rc;
		if (*counts[i] == 0)
			return isif_fail(err, ISIF_EINVAL, "%s: must not be empty", sub);
	}
	s->has_classes = true;
	return ISIF_OK;
}

static const struct field jitter_fields[] = {
	{"brightness", F_FLOAT, OFF(brightness), 0, 1, 0, NULL},
	{"contrast", F_FLOAT, OFF(contrast), 0, 1, 0, NULL},
	{"saturation", F_FLOAT, OFF(saturation), 0, 1, 0, NULL},
	{"hue", F_FLOAT, OFF(hue), 0, 0.5, 0, NULL},
	{"p", F_FLOAT, OFF(jitter_p), 0, 1, 0, NULL},
};

static enum isif_rc f_jitter(struct isif_job_spec *s, json_t *v, const char *path, struct isif_error *err)
{
	return parse_object(s, v, path, jitter_fields,
			    sizeof jitter_fields / sizeof jitter_fields[0], err);
}

static const struct field augment_fields[] = {
	{"crop", F_BOOL, OFF(crop), 0, 0, 0, NULL},
	{"crop_scale", F_CUSTOM, 0, 0, 0, 0, f_crop_scale},
	{"hflip", F_FLOAT, OFF(hflip), 0, 1, 0, NULL},
	{"grayscale", F_FLOAT, OFF(grayscale), 0, 1, 0, NULL},
	{"color_jitter", F_CUSTOM, 0, 0, 0, 0, f_jitter},
};

static enum isif_rc f_augment(struct isif_job_spec *s, json_t *v, const char *path, struct isif_error *err)
{
	return parse_object(s, v, path, augment_fields,
			    sizeof augment_fields / sizeof augment_fields[0], err);
}

static const struct field eval_fields[] = {
	{"knn_k", F_INT, OFF(knn_k), 1, 10000, 0, NULL},
	{"knn_temperature", F_DOUBLE, OFF(knn_temperature), 0, 10, LO_OPEN, NULL},
	{"every", F_INT, OFF(eval_every), 0, 10000, 0, NULL},
};

static enum isif_rc f_eval(struct isif_job_spec *s, json_t *v, const char *path, struct isif_error *err)
{
	return parse_object(s, v, path, eval_fields,
			    sizeof eval_fields / sizeof eval_fields[0], err);
}

static const struct field top_fields[] = {
	{"dataset", F_CUSTOM, 0, 0, 0, 0, f_dataset},
	{"model", F_CUSTOM, 0, 0, 0, 0, f_model},
	{"epochs", F_INT, OFF(epochs), 1, 10000, 0, NULL},
	{"batch_size", F_INT, OFF(batch_size), 2, 1024, 0, NULL},
	{"lr", F_DOUBLE, OFF(lr), 0, 10, LO_OPEN, NULL},
	{"momentum", F_DOUBLE, OFF(momentum), 0, 1, HI_OPEN, NULL},
	{"weight_decay", F_DOUBLE, OFF(weight_decay), 0, 1, 0, NULL},
	{"nesterov", F_BOOL, OFF(nesterov), 0, 0, 0, NULL},
	{"lr_schedule", F_CUSTOM, 0, 0, 0, 0, f_lr_schedule},
	{"temperature", F_DOUBLE, OFF(temperature), 0, 10, LO_OPEN, NULL},
	{"embedding_dim", F_INT, OFF(embedding_dim), 2, 4096, 0, NULL},
	{"seed", F_CUSTOM, 0, 0, 0, 0, f_seed},
	{"threads", F_INT, OFF(threads), 0, 256, 0, NULL},
	{"augment", F_CUSTOM, 0, 0, 0, 0, f_augment},
	{"gradient", F_CUSTOM, 0, 0, 0, 0, f_gradient},
	{"bn_groups", F_INT, OFF(bn_groups), 1, 64, 0, NULL},
	{"eval", F_CUSTOM, 0, 0, 0, 0, f_eval},
	{"train_subset", F_INT64, OFF(train_subset), 0, 9007199254740992.0, 0, NULL},
	{"classes", F_CUSTOM, 0, 0, 0, 0, f_classes},
};

static enum isif_rc parse_object(struct isif_job_spec *s, json_t *obj, const char *path,
			const struct field *table, size_t n, struct isif_error *err)
{
	char sub[128];
	const char *key;
	json_t *v;
	if (!json_is_object(obj))
		return isif_fail(err, ISIF_EINVAL, "%s: must be an object",
				 path[0] ? path : "spec");
	json_object_foreach(obj, key, v) {
		const struct field *f = NULL;
		for (size_t i = 0; i < n && !f; i++)
			if (strcmp(table[i].name, key) == 0)
				f = &table[i];
		join_path(sub, sizeof sub, path, key);
		if (!f)
			return isif_fail(err, ISIF_EINVAL, "%s: unknown field", sub);
		int rc = parse_scalar(s, v, sub, f, err);
		if (rc)
			return rc;
	}
	return ISIF_OK;
}

enum isif_rc isif_spec_parse(struct isif_job_spec *spec, const char *json,
		    bool require_dataset, struct isif_error *err)
{
	json_error_t jerr;
	json_t *root = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return isif_fail(err, ISIF_EINVAL, "spec: invalid JSON: %s (line %d, column %d)",
				 jerr.text, jerr.line, jerr.column);
	struct isif_job_spec s = *spec;
	int rc = parse_object(&s, root, "", top_fields,
			      sizeof top_fields / sizeof top_fields[0], err);
	if (rc == ISIF_OK && require_dataset && !json_object_get(root, "dataset"))
		rc = isif_fail(err, ISIF_EINVAL, "dataset: required");
	json_decref(root);
	if (rc)
		return rc;
	s.lr_schedule.base_lr = s.lr;
	s.lr_schedule.total_epochs = s.epochs;
	*spec = s;
	return ISIF_OK;
}

/* ---- canonical JSON ---------------------------------------------------- */

/* Shortest %.Ng of x that reads back (strtod) as exactly x. */
static void sb_double(struct isif_strbuf *b, double x)
{
	char buf[40];
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, sizeof buf, "%.*g", prec, x);
		if (strtod(buf, NULL) == x)
			break;
	}
	/* Keep it a JSON real so readers see the intended type. */
	if (!strpbrk(buf, ".eEn"))
		strcat(buf, ".0");
	isif_strbuf_printf(b, "%s", buf);
}

/* Shortest decimal that reads back as the same float. */
static void sb_float(struct isif_strbuf *b, float x)
{
	char buf[40];
	for (int prec = 1; prec <= 9; prec++) {
		snprintf(buf, sizeof buf, "%.*g", prec, (double)x);
		if (strtof(buf, NULL) == x)
			break;
	}
	if (!strpbrk(buf, ".eEn"))
		strcat(buf, ".0");
	isif_strbuf_printf(b, "%s", buf);
}

static void sb_string(struct isif_strbuf *b, const char *str)
{
	json_t *js = json_string(str);
	char *enc = js ? json_dumps(js, JSON_ENCODE_ANY) : NULL;
	if (enc)
		isif_strbuf_printf(b, "%s", enc);
	else
		b->failed = true;
	free(enc);
	json_decref(js);
}

static void sb_ints(struct isif_strbuf *b, const int *x, int n)
{
	isif_strbuf_printf(b, "[");
	for (int i = 0; i < n; i++)
		isif_strbuf_printf(b, "%s%d", i ? ", " : "", x[i]);
	isif_strbuf_printf(b, "]");
}

static const char *lr_type_name(enum isif_lr_type t)
{
	return t == ISIF_LR_CONSTANT ? "constant" : t == ISIF_LR_COSINE ? "cosine" : "step";
}

static void sb_lr_schedule(struct isif_strbuf *b, const struct isif_lr_schedule *l)
{
	isif_strbuf_printf(b, "{\"type\": \"%s\", \"milestones\": ", lr_type_name(l->type));
	sb_ints(b, l->milestones, l->n_milestones);
	isif_strbuf_printf(b, ", \"factors\": [");
	for (int i = 0; i < l->n_milestones; i++) {
		isif_strbuf_printf(b, "%s", i ? ", " : "");
		sb_double(b, l->factors[i]);
	}
	isif_strbuf_printf(b, "], \"warmup_epochs\": ");
	sb_double(b, l->warmup_epochs);
	isif_strbuf_printf(b, ", \"min_lr\": ");
	sb_double(b, l->min_lr);
	isif_strbuf_printf(b, "}");
}

static void sb_augment(struct isif_strbuf *b, const struct isif_job_spec *s)
{
	isif_strbuf_printf(b, "{\"crop\": %s, \"crop_scale\": [", s->crop ? "true" : "false");
	sb_float(b, s->crop_scale[0]);
	isif_strbuf_printf(b, ", ");
	sb_float(b, s->crop_scale[1]);
	isif_strbuf_printf(b, "], \"hflip\": ");
	sb_float(b, s->hflip);
	isif_strbuf_printf(b, ", \"grayscale\": ");
	sb_float(b, s->grayscale);
	isif_strbuf_printf(b, ", \"color_jitter\": {\"brightness\": ");
	sb_float(b, s->brightness);
	isif_strbuf_printf(b, ", \"contrast\": ");
	sb_float(b, s->contrast);
	isif_strbuf_printf(b, ", \"saturation\": ");
	sb_float(b, s->saturation);
	isif_strbuf_printf(b, ", \"hue\": ");
	sb_float(b, s->hue);
	isif_strbuf_printf(b, ", \"p\": ");
	sb_float(b, s->jitter_p);
	isif_strbuf_printf(b, "}}");
}

static void sb_classes(struct isif_strbuf *b, const struct isif_job_spec *s)
{
	if (!s->has_classes) {
		isif_strbuf_printf(b, "null");
		return;
	}
	isif_strbuf_printf(b, "{\"train\": ");
	sb_ints(b, s->train_classes, s->n_train_classes);
	isif_strbuf_printf(b, ", \"test\": ");
	sb_ints(b, s->test_classes, s->n_test_classes);
	isif_strbuf_printf(b, "}");
}

char *isif_spec_to_json(const struct isif_job_spec *s)
{
	struct isif_strbuf b;
	isif_strbuf_init(&b, SIZE_MAX);
	isif_strbuf_printf(&b, "{\"dataset\": ");
	sb_string(&b, s->dataset);
	isif_strbuf_printf(&b, ", \"model\": ");
	sb_string(&b, s->model);
	isif_strbuf_printf(&b, ", \"epochs\": %d, \"batch_size\": %d, \"lr\": ", s->epochs, s->batch_size);
	sb_double(&b, s->lr);
	isif_strbuf_printf(&b, ", \"momentum\": ");
	sb_double(&b, s->momentum);
	isif_strbuf_printf(&b, ", \"weight_decay\": ");
	sb_double(&b, s->weight_decay);
	isif_strbuf_printf(&b, ", \"nesterov\": %s, \"lr_schedule\": ", s->nesterov ? "true" : "false");
	sb_lr_schedule(&b, &s->lr_schedule);
	isif_strbuf_printf(&b, ", \"temperature\": ");
	sb_double(&b, s->temperature);
	isif_strbuf_printf(&b, ", \"embedding_dim\": %d, \"seed\": %" PRIu64 ", \"threads\": %d, \"augment\": ",
		  s->embedding_dim, s->seed, s->threads);
	sb_augment(&b, s);
	isif_strbuf_printf(&b, ", \"gradient\": \"%s\", \"bn_groups\": %d, \"eval\": {\"knn_k\": %d, \"knn_temperature\": ",
		  s->gradient == ISIF_GRAD_FULL ? "full" : "reference", s->bn_groups, s->knn_k);
	sb_double(&b, s->knn_temperature);
	isif_strbuf_printf(&b, ", \"every\": %d}, \"train_subset\": %" PRId64 ", \"classes\": ",
		  s->eval_every, s->train_subset);
	sb_classes(&b, s);
	isif_strbuf_printf(&b, "}");
	return isif_strbuf_take(&b, NULL);
}

/* ---- augmentation ------------------------------------------------------ */

void isif_spec_augment(const struct isif_job_spec *s, int out_h, int out_w,
		       const float mean[3], const float std[3],
		       struct isif_augment *a)
{
	memset(a, 0, sizeof *a);
	a->crop = s->crop;
	a->crop_scale[0] = s->crop_scale[0];
	a->crop_scale[1] = s->crop_scale[1];
	/* RandomResizedCrop's default aspect ratio range. */
	a->crop_ratio[0] = 3.0f / 4.0f;
	a->crop_ratio[1] = 4.0f / 3.0f;
	a->hflip = s->hflip;
	a->grayscale = s->grayscale;
	a->brightness = s->brightness;
	a->contrast = s->contrast;
	a->saturation = s->saturation;
	a->hue = s->hue;
	a->jitter_p = s->jitter_p;
	a->out_h = out_h;
	a->out_w = out_w;
	for (int c = 0; c < 3; c++) {
		a->mean[c] = mean[c];
		a->std[c] = std[c];
	}
}

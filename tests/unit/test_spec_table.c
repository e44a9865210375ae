/*
 * tests/unit/test_spec_table.c — the job spec's field table (isif_spec_field)
 * that the parser, isif_spec_default, `isif train --help` and docs/API.md
 * read: its default texts (what the docs and the help print) are exactly
 * what isif_spec_default sets, and its shape is sound (every member below
 * an object listed before it, every leaf settable by a flag, flags unique).
 */
#include "check.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "isif/base/common.h"
#include "isif/train/spec.h"

/* The row of path, or NULL. */
static const struct isif_spec_field *row(const char *path)
{
	const struct isif_spec_field *f;
	for (int i = 0; (f = isif_spec_field(i)); i++)
		if (strcmp(f->path, path) == 0)
			return f;
	return NULL;
}

/* The path of f's parent object in parent[cap] ("" at the top). */
static void parent_of(const struct isif_spec_field *f, char *parent, size_t cap)
{
	const char *dot = strrchr(f->path, '.');
	snprintf(parent, cap, "%.*s", dot ? (int)(dot - f->path) : 0, f->path);
}

/* Sets obj[dotted path] = v, creating the objects on the way. */
static void set_path(json_t *obj, const char *path, json_t *v)
{
	const char *dot = strchr(path, '.');
	if (!dot) {
		json_object_set_new(obj, path, v);
		return;
	}
	char key[64];
	snprintf(key, sizeof key, "%.*s", (int)(dot - path), path);
	json_t *child = json_object_get(obj, key);
	if (!child) {
		child = json_object();
		json_object_set_new(obj, key, child);
	}
	set_path(child, dot + 1, v);
}

/* Every default text, as one spec document: members of an object whose
 * default is null (classes) are left out with it. */
static char *defaults_document(void)
{
	const struct isif_spec_field *f;
	char parent[128];
	json_t *doc = json_object();
	for (int i = 0; (f = isif_spec_field(i)); i++) {
		parent_of(f, parent, sizeof parent);
		const struct isif_spec_field *up = parent[0] ? row(parent) : NULL;
		if (!f->def || (up && up->def && strcmp(up->def, "null") == 0))
			continue;
		json_error_t jerr;
		json_t *v = json_loads(f->def, JSON_DECODE_ANY, &jerr);
		CHECK_MSG(v != NULL, "%s: default %s is not JSON: %s", f->path, f->def, jerr.text);
		if (v)
			set_path(doc, f->path, v);
	}
	char *text = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	return text;
}

TEST(spec_table_default_texts_are_the_defaults)
{
	/* Start far from the defaults, then parse the table's default texts over
	 * it: the result must be isif_spec_default exactly. */
	static const char *const away =
		"{\"dataset\": \"x\", \"model\": \"convnet\", \"epochs\": 7, \"batch_size\": 64, "
		"\"lr\": 0.5, \"momentum\": 0.5, \"weight_decay\": 0.001, \"nesterov\": true, "
		"\"lr_schedule\": {\"type\": \"cosine\", \"milestones\": [2], \"factors\": [0.1], "
		"\"warmup_epochs\": 1.5, \"min_lr\": 0.0001}, \"temperature\": 0.07, "
		"\"embedding_dim\": 64, \"seed\": 9, \"threads\": 3, \"augment\": {\"crop\": false, "
		"\"crop_scale\": [0.3, 0.9], \"hflip\": 0.25, \"grayscale\": 0.1, \"color_jitter\": "
		"{\"brightness\": 0.8, \"contrast\": 0.7, \"saturation\": 0.6, \"hue\": 0.5, \"p\": 0.8}}, "
		"\"gradient\": \"full\", \"bn_groups\": 4, \"eval\": {\"knn_k\": 20, "
		"\"knn_temperature\": 0.05, \"every\": 2}, \"train_subset\": 512, "
		"\"classes\": {\"train\": [0], \"test\": [1]}}";
	struct isif_job_spec s, d;
	struct isif_error err = {0};
	isif_spec_default(&s);
	CHECK_MSG(isif_spec_parse(&s, away, true, &err) == ISIF_OK, "%s", err.msg);
	char *doc = defaults_document();
	CHECK(doc != NULL);
	int rc = doc ? isif_spec_parse(&s, doc, false, &err) : ISIF_ENOMEM;
	CHECK_MSG(rc == ISIF_OK, "%s: %s", err.msg, doc);
	isif_spec_default(&d);
	snprintf(d.dataset, sizeof d.dataset, "x");
	char *a = isif_spec_to_json(&s), *b = isif_spec_to_json(&d);
	CHECK_MSG(a && b && strcmp(a, b) == 0, "table defaults give\n%s\nisif_spec_default\n%s", a, b);
	free(a);
	free(b);
	free(doc);
}

TEST(spec_table_shape)
{
	const struct isif_spec_field *f, *g;
	char parent[128];
	int n = 0;
	for (int i = 0; (f = isif_spec_field(i)); i++, n++) {
		CHECK_MSG(f->help && f->help[0], "%s: no help", f->path);
		parent_of(f, parent, sizeof parent);
		/* The parent object comes first: the docs and the help read top down. */
		bool found = !parent[0];
		for (int j = 0; j < i && !found; j++)
			found = strcmp(isif_spec_field(j)->path, parent) == 0 &&
				isif_spec_field(j)->kind == ISIF_SPEC_OBJECT;
		CHECK_MSG(found, "%s: its object %s is not listed before it", f->path, parent);
		if (f->kind == ISIF_SPEC_OBJECT) {
			CHECK_MSG(!f->flag, "%s: an object has no flag", f->path);
			continue;
		}
		/* Every value but the dataset (isif train's own --dataset) has a flag. */
		CHECK_MSG(f->flag || strcmp(f->path, "dataset") == 0, "%s: no flag", f->path);
		for (int j = 0; f->flag && (g = isif_spec_field(j)) && j < i; j++)
			CHECK_MSG(!g->flag || strcmp(f->flag, g->flag) != 0, "--%s twice", f->flag);
		if (f->kind == ISIF_SPEC_INT || f->kind == ISIF_SPEC_NUMBER)
			CHECK_MSG(f->lo <= f->hi, "%s: bounds %g > %g", f->path, f->lo, f->hi);
	}
	CHECK(n >= 38);
	CHECK(isif_spec_field(-1) == NULL && isif_spec_field(n) == NULL);
	/* The docs' bounds are the parser's: one of each kind, by hand. */
	CHECK((f = row("epochs")) && f->lo == 1 && f->hi == 10000 && strcmp(f->def, "20") == 0);
	CHECK((f = row("lr")) && f->lo == 0 && f->hi == 10 && (f->rules & ISIF_SPEC_LO_OPEN));
	CHECK((f = row("augment.color_jitter.hue")) && f->hi == 0.5 && strcmp(f->def, "0.4") == 0);
	CHECK((f = row("augment.crop")) && strcmp(f->def, "true") == 0 &&
	      strcmp(f->flag, "no-crop") == 0);
	CHECK((f = row("dataset")) && f->def == NULL);
}

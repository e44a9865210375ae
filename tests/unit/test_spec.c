/*
 * tests/unit/test_spec.c — the job spec: DESIGN.md's defaults, a round trip
 * of every field through canonical JSON, and bad specs that must each be
 * rejected with a message naming the offending field. Expected values are
 * DESIGN.md's "Job spec" defaults and the ranges of the issue, typed in by
 * hand, not read back from the code under test.
 */
#include "check.h"

#include <stdlib.h>
#include <string.h>

#include "isif/base/common.h"
#include "isif/nn/model.h"
#include "isif/train/spec.h"

TEST(spec_defaults)
{
	struct isif_job_spec s;
	isif_spec_default(&s);
	CHECK(strcmp(s.dataset, "") == 0);
	CHECK(strcmp(s.model, "resnet20") == 0);
	CHECK_EQ(s.epochs, 20);
	CHECK_EQ(s.batch_size, 128);
	CHECK_NEAR(s.lr, 0.03, 0);
	CHECK_NEAR(s.momentum, 0.9, 0);
	CHECK_NEAR(s.weight_decay, 5e-4, 0);
	CHECK(!s.nesterov);
	CHECK_EQ(s.lr_schedule.type, ISIF_LR_STEP);
	CHECK_EQ(s.lr_schedule.n_milestones, 0);
	CHECK_NEAR(s.lr_schedule.base_lr, 0.03, 0);
	CHECK_EQ(s.lr_schedule.total_epochs, 20);
	CHECK_NEAR(s.temperature, 0.1, 0);
	CHECK_EQ(s.embedding_dim, 128);
	CHECK_EQ(s.seed, 1);
	CHECK_EQ(s.threads, 0);
	CHECK_EQ(s.processes, 1);
	CHECK(s.crop);
	CHECK_NEAR(s.crop_scale[0], 0.2f, 0);
	CHECK_NEAR(s.crop_scale[1], 1.0f, 0);
	CHECK_NEAR(s.hflip, 0.5f, 0);
	CHECK_NEAR(s.grayscale, 0.2f, 0);
	CHECK_NEAR(s.brightness, 0.4f, 0);
	CHECK_NEAR(s.contrast, 0.4f, 0);
	CHECK_NEAR(s.saturation, 0.4f, 0);
	CHECK_NEAR(s.hue, 0.4f, 0);
	CHECK_NEAR(s.jitter_p, 1.0f, 0);
	CHECK_EQ(s.gradient, ISIF_GRAD_REFERENCE);
	CHECK_EQ(s.bn_groups, 1);
	CHECK(!s.sync_bn);
	CHECK_EQ(s.knn_k, 200);
	CHECK_NEAR(s.knn_temperature, 0.1, 0);
	CHECK_EQ(s.eval_every, 1);
	CHECK_EQ(s.train_subset, 0);
	CHECK(!s.has_classes);
}

TEST(spec_minimal_parse_keeps_defaults)
{
	struct isif_job_spec s, d;
	struct isif_error err = {0};
	isif_spec_default(&s);
	isif_spec_default(&d);
	int rc = isif_spec_parse(&s, "{\"dataset\": \"fashion-mnist\"}", true, &err);
	CHECK_MSG(rc == ISIF_OK, "%s", err.msg);
	CHECK(strcmp(s.dataset, "fashion-mnist") == 0);
	snprintf(d.dataset, sizeof d.dataset, "fashion-mnist");
	char *a = isif_spec_to_json(&s), *b = isif_spec_to_json(&d);
	CHECK(a && b && strcmp(a, b) == 0);
	free(a);
	free(b);
}

/* Canonical output of the defaults, written out by hand from DESIGN.md. */
TEST(spec_default_json_text)
{
	struct isif_job_spec s;
	isif_spec_default(&s);
	snprintf(s.dataset, sizeof s.dataset, "fashion-mnist");
	char *j = isif_spec_to_json(&s);
	const char *want =
		"{\"dataset\": \"fashion-mnist\", \"model\": \"resnet20\", \"method\": \"isif\", "
		"\"epochs\": 20, "
		"\"batch_size\": 128, \"lr\": 0.03, \"momentum\": 0.9, \"weight_decay\": 0.0005, "
		"\"nesterov\": false, \"lr_schedule\": {\"type\": \"step\", \"milestones\": [], "
		"\"factors\": [], \"warmup_epochs\": 0.0, \"min_lr\": 0.0}, \"temperature\": 0.1, "
		"\"embedding_dim\": 128, \"seed\": 1, \"threads\": 0, \"processes\": 1, \"precision\": \"fp32\", "
		"\"init\": {\"checkpoint\": \"\", \"freeze_epochs\": 0}, \"augment\": {\"crop\": true, "
		"\"random_crop\": 0, \"crop_scale\": [0.2, 1.0], \"hflip\": 0.5, \"grayscale\": 0.2, \"color_jitter\": "
		"{\"brightness\": 0.4, \"contrast\": 0.4, \"saturation\": 0.4, \"hue\": 0.4, \"p\": 1.0}}, "
		"\"gradient\": \"reference\", \"bn_groups\": 1, \"sync_bn\": false, \"npid\": {\"temperature\": 0.07, "
		"\"momentum\": 0.5, \"nce\": false, \"negatives\": 4096}, \"eval\": {\"knn_k\": 200, "
		"\"knn_temperature\": 0.1, \"every\": 1, \"linear_probe\": false}, "
		"\"train_subset\": 0, \"classes\": null}";
	CHECK_MSG(j && strcmp(j, want) == 0, "got %s", j ? j : "(null)");
	free(j);
}

/* A spec where every field differs from its default. */
static const char *const all_fields =
	"{\"dataset\": \"cifar \\\"10\\\"\", \"model\": \"convnet\", \"method\": \"npid\", \"epochs\": 7, "
	"\"batch_size\": 64, \"lr\": 0.123456789012345678, \"momentum\": 0.5, "
	"\"weight_decay\": 0.001, \"nesterov\": true, "
	"\"lr_schedule\": {\"type\": \"cosine\", \"milestones\": [2, 5], \"factors\": [0.1, 0.01], "
	"\"warmup_epochs\": 1.5, \"min_lr\": 0.0001}, \"temperature\": 0.07, "
	"\"embedding_dim\": 64, \"seed\": 9007199254740992, \"threads\": 3, \"processes\": 4, "
	"\"augment\": {\"crop\": false, \"crop_scale\": [0.3, 0.9], \"hflip\": 0.25, "
	"\"grayscale\": 0.1, \"color_jitter\": {\"brightness\": 0.8, \"contrast\": 0.7, "
	"\"saturation\": 0.6, \"hue\": 0.5, \"p\": 0.8}}, \"gradient\": \"full\", "
	"\"bn_groups\": 4, \"sync_bn\": true, \"npid\": {\"temperature\": 0.2, \"momentum\": 0.75, \"nce\": true, "
	"\"negatives\": 100}, \"eval\": {\"knn_k\": 20, \"knn_temperature\": 0.05, \"every\": 2, "
	"\"linear_probe\": true}, "
	"\"train_subset\": 512, \"classes\": {\"train\": [0, 1, 2], \"test\": [7, 9]}}";

static void check_all_fields(const struct isif_job_spec *s)
{
	CHECK(strcmp(s->dataset, "cifar \"10\"") == 0);
	CHECK(strcmp(s->model, "convnet") == 0);
	CHECK_EQ(s->method, ISIF_METHOD_NPID);
	CHECK(s->npid_temperature == 0.2 && s->npid_momentum == 0.75);
	CHECK(s->npid_nce && s->npid_negatives == 100 && s->linear_probe);
	CHECK_EQ(s->epochs, 7);
	CHECK_EQ(s->batch_size, 64);
	CHECK(s->lr == 0.123456789012345678);
	CHECK(s->momentum == 0.5);
	CHECK(s->weight_decay == 0.001);
	CHECK(s->nesterov);
	CHECK_EQ(s->lr_schedule.type, ISIF_LR_COSINE);
	CHECK_EQ(s->lr_schedule.n_milestones, 2);
	CHECK_EQ(s->lr_schedule.milestones[0], 2);
	CHECK_EQ(s->lr_schedule.milestones[1], 5);
	CHECK(s->lr_schedule.factors[0] == 0.1);
	CHECK(s->lr_schedule.factors[1] == 0.01);
	CHECK(s->lr_schedule.warmup_epochs == 1.5);
	CHECK(s->lr_schedule.min_lr == 0.0001);
	CHECK(s->lr_schedule.base_lr == 0.123456789012345678);
	CHECK_EQ(s->lr_schedule.total_epochs, 7);
	CHECK(s->temperature == 0.07);
	CHECK_EQ(s->embedding_dim, 64);
	CHECK(s->seed == 9007199254740992ull);
	CHECK_EQ(s->threads, 3);
	CHECK_EQ(s->processes, 4);
	CHECK(!s->crop);
	CHECK(s->crop_scale[0] == 0.3f && s->crop_scale[1] == 0.9f);
	CHECK(s->hflip == 0.25f);
	CHECK(s->grayscale == 0.1f);
	CHECK(s->brightness == 0.8f && s->contrast == 0.7f);
	CHECK(s->saturation == 0.6f && s->hue == 0.5f && s->jitter_p == 0.8f);
	CHECK_EQ(s->gradient, ISIF_GRAD_FULL);
	CHECK_EQ(s->bn_groups, 4);
	CHECK(s->sync_bn);
	CHECK_EQ(s->knn_k, 20);
	CHECK(s->knn_temperature == 0.05);
	CHECK_EQ(s->eval_every, 2);
	CHECK_EQ(s->train_subset, 512);
	CHECK(s->has_classes);
	CHECK_EQ(s->n_train_classes, 3);
	CHECK_EQ(s->n_test_classes, 2);
	CHECK_EQ(s->train_classes[2], 2);
	CHECK_EQ(s->test_classes[0], 7);
	CHECK_EQ(s->test_classes[1], 9);
}

TEST(spec_every_field_round_trips)
{
	struct isif_job_spec s, t;
	struct isif_error err = {0};
	isif_spec_default(&s);
	int rc = isif_spec_parse(&s, all_fields, true, &err);
	CHECK_MSG(rc == ISIF_OK, "%s", err.msg);
	check_all_fields(&s);
	char *j1 = isif_spec_to_json(&s);
	CHECK(j1 != NULL);
	isif_spec_default(&t);
	rc = isif_spec_parse(&t, j1, true, &err);
	CHECK_MSG(rc == ISIF_OK, "%s: %s", err.msg, j1);
	check_all_fields(&t);
	char *j2 = isif_spec_to_json(&t);
	CHECK(j2 && strcmp(j1, j2) == 0);
	free(j1);
	free(j2);
}

TEST(spec_parse_over_existing_values)
{
	/* Fields not given keep what the struct held (the caller's base). */
	struct isif_job_spec s;
	struct isif_error err = {0};
	isif_spec_default(&s);
	s.epochs = 3;
	CHECK_EQ(isif_spec_parse(&s, "{\"lr\": 0.5}", false, &err), ISIF_OK);
	CHECK_EQ(s.epochs, 3);
	CHECK(s.lr == 0.5 && s.lr_schedule.base_lr == 0.5);
	CHECK_EQ(s.lr_schedule.total_epochs, 3);
}

TEST(spec_boundaries_accepted)
{
	static const char *const ok[] = {
		"{\"dataset\": \"d\", \"epochs\": 1, \"batch_size\": 2, \"lr\": 10, \"momentum\": 0}",
		"{\"dataset\": \"d\", \"epochs\": 10000, \"batch_size\": 1024, \"weight_decay\": 1}",
		"{\"dataset\": \"d\", \"seed\": 0, \"threads\": 256, \"embedding_dim\": 4096}",
		"{\"dataset\": \"d\", \"augment\": {\"crop_scale\": [1, 1], \"hflip\": 0, \"grayscale\": 1}}",
		"{\"dataset\": \"d\", \"augment\": {\"color_jitter\": {\"hue\": 0, \"p\": 0}}}",
		"{\"dataset\": \"d\", \"eval\": {\"every\": 0, \"knn_k\": 1, \"knn_temperature\": 10}}",
		"{\"dataset\": \"d\", \"lr_schedule\": {\"type\": \"constant\"}, \"classes\": null}",
		"{\"dataset\": \"d\", \"model\": \"resnet18\", \"bn_groups\": 64, \"temperature\": 10}",
	};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		struct isif_job_spec s;
		struct isif_error err = {0};
		isif_spec_default(&s);
		int rc = isif_spec_parse(&s, ok[i], true, &err);
		CHECK_MSG(rc == ISIF_OK, "%s -> %s", ok[i], err.msg);
	}
}

TEST(spec_bad_specs_name_the_field)
{
	static const struct { const char *json, *want; } bad[] = {
		{"{\"dataset\": \"d\", \"bogus\": 1}", "bogus: unknown field"},
		{"{\"dataset\": \"d\", \"precision\": \"fp16\"}", "precision"},
		{"{\"dataset\": \"d\", \"augment\": {\"color_jitter\": {\"bogus\": 1}}}",
		 "augment.color_jitter.bogus: unknown field"},
		{"{\"dataset\": \"d\", \"eval\": {\"k\": 3}}", "eval.k: unknown field"},
		{"{\"dataset\": \"d\", \"lr_schedule\": {\"gamma\": 3}}", "lr_schedule.gamma: unknown field"},
		{"{\"dataset\": \"d\", \"classes\": {\"train\": [1], \"test\": [2], \"x\": []}}",
		 "classes.x: unknown field"},
		{"{\"model\": \"convnet\"}", "dataset: required"},
		{"{\"dataset\": 3}", "dataset: must be a string"},
		{"{\"dataset\": \"\"}", "dataset: must not be empty"},
		{"{\"dataset\": \"d\", \"model\": \"vgg\"}", "model: unknown model"},
		{"{\"dataset\": \"d\", \"epochs\": 0}", "epochs: must be an integer between 1 and 10000"},
		{"{\"dataset\": \"d\", \"epochs\": 10001}", "epochs: must be"},
		{"{\"dataset\": \"d\", \"epochs\": 2.5}", "epochs: must be an integer"},
		{"{\"dataset\": \"d\", \"epochs\": \"2\"}", "epochs: must be an integer"},
		{"{\"dataset\": \"d\", \"batch_size\": 1}", "batch_size: must be"},
		{"{\"dataset\": \"d\", \"batch_size\": 1025}", "batch_size: must be"},
		{"{\"dataset\": \"d\", \"lr\": 0}", "lr: must be a number > 0"},
		{"{\"dataset\": \"d\", \"lr\": 10.5}", "lr: must be"},
		{"{\"dataset\": \"d\", \"lr\": true}", "lr: must be a number"},
		{"{\"dataset\": \"d\", \"momentum\": 1}", "momentum: must be a number >= 0 and < 1"},
		{"{\"dataset\": \"d\", \"weight_decay\": -0.1}", "weight_decay: must be"},
		{"{\"dataset\": \"d\", \"nesterov\": 1}", "nesterov: must be true or false"},
		{"{\"dataset\": \"d\", \"temperature\": 0}", "temperature: must be"},
		{"{\"dataset\": \"d\", \"embedding_dim\": 1}", "embedding_dim: must be"},
		{"{\"dataset\": \"d\", \"seed\": -1}", "seed: must be"},
		{"{\"dataset\": \"d\", \"seed\": 9007199254740993}", "seed: must be"},
		{"{\"dataset\": \"d\", \"threads\": 257}", "threads: must be"},
		{"{\"dataset\": \"d\", \"processes\": 0}", "processes: must be"},
		{"{\"dataset\": \"d\", \"augment\": {\"hflip\": 1.5}}", "augment.hflip: must be"},
		{"{\"dataset\": \"d\", \"augment\": {\"grayscale\": -0.5}}", "augment.grayscale: must be"},
		{"{\"dataset\": \"d\", \"augment\": {\"color_jitter\": {\"hue\": 0.6}}}",
		 "augment.color_jitter.hue: must be a number >= 0 and <= 0.5"},
		{"{\"dataset\": \"d\", \"augment\": {\"color_jitter\": {\"brightness\": 2}}}",
		 "augment.color_jitter.brightness: must be"},
		{"{\"dataset\": \"d\", \"augment\": {\"color_jitter\": {\"p\": \"x\"}}}",
		 "augment.color_jitter.p: must be a number"},
		{"{\"dataset\": \"d\", \"augment\": {\"crop_scale\": [0.5, 0.4]}}", "augment.crop_scale: must be"},
		{"{\"dataset\": \"d\", \"augment\": {\"crop_scale\": [0, 1]}}", "augment.crop_scale: must be"},
		{"{\"dataset\": \"d\", \"augment\": {\"crop_scale\": [0.5]}}", "augment.crop_scale: must be an array"},
		{"{\"dataset\": \"d\", \"augment\": {\"crop_scale\": [0.5, \"1\"]}}", "augment.crop_scale[1]: must be a number"},
		{"{\"dataset\": \"d\", \"augment\": {\"crop\": \"no\"}}", "augment.crop: must be true or false"},
		{"{\"dataset\": \"d\", \"augment\": 5}", "augment: must be an object"},
		{"{\"dataset\": \"d\", \"gradient\": \"half\"}", "gradient: must be \"reference\" or \"full\""},
		{"{\"dataset\": \"d\", \"bn_groups\": 0}", "bn_groups: must be"},
		{"{\"dataset\": \"d\", \"bn_groups\": 65}", "bn_groups: must be"},
		{"{\"dataset\": \"d\", \"eval\": {\"knn_k\": 0}}", "eval.knn_k: must be"},
		{"{\"dataset\": \"d\", \"eval\": {\"knn_temperature\": 0}}", "eval.knn_temperature: must be"},
		{"{\"dataset\": \"d\", \"eval\": {\"every\": -1}}", "eval.every: must be"},
		{"{\"dataset\": \"d\", \"train_subset\": -5}", "train_subset: must be"},
		{"{\"dataset\": \"d\", \"classes\": [1, 2]}", "classes: must be null, {\"train\""},
		{"{\"dataset\": \"d\", \"classes\": {\"train\": [1]}}", "classes.test: required"},
		{"{\"dataset\": \"d\", \"classes\": {\"train\": [1, 1], \"test\": [2]}}", "classes.train[1]: duplicate"},
		{"{\"dataset\": \"d\", \"classes\": {\"train\": [1], \"test\": [\"a\"]}}", "classes.test[0]: must be an integer"},
		{"{\"dataset\": \"d\", \"classes\": {\"train\": [], \"test\": [2]}}", "classes.train: must not be empty"},
		{"{\"dataset\": \"d\", \"lr_schedule\": {\"type\": \"exp\"}}", "lr_schedule.type: must be"},
		{"{\"dataset\": \"d\", \"lr_schedule\": {\"milestones\": [5, 3], \"factors\": [1, 1]}}",
		 "lr_schedule.milestones[1]: must be greater"},
		{"{\"dataset\": \"d\", \"lr_schedule\": {\"milestones\": [3], \"factors\": [0.1, 0.2]}}",
		 "lr_schedule.factors: must have as many entries as milestones"},
		{"{\"dataset\": \"d\", \"lr_schedule\": {\"milestones\": [3]}}", "lr_schedule.factors: required"},
		{"{\"dataset\": \"d\", \"lr_schedule\": {\"warmup_epochs\": -1}}", "lr_schedule.warmup_epochs: must be"},
		{"{\"dataset\": \"d\", \"lr_schedule\": {\"min_lr\": -1}}", "lr_schedule.min_lr: must be"},
		{"{\"dataset\": \"d\", \"init\": {\"freeze_epochs\": 1}}",
		 "init.freeze_epochs: 1 needs init.checkpoint"},
		{"{\"dataset\": \"d\", \"epochs\": 2, \"init\": {\"checkpoint\": \"c\", \"freeze_epochs\": 3}}",
		 "init.freeze_epochs: 3 is more than epochs (2)"},
		{"{\"dataset\": \"d\", \"dataset\": \"e\"}", "spec: invalid JSON"},
		{"{\"dataset\": \"d\",}", "spec: invalid JSON"},
		{"[1, 2]", "spec: must be an object"},
	};
	int n = (int)(sizeof bad / sizeof bad[0]);
	CHECK(n >= 25);
	for (int i = 0; i < n; i++) {
		struct isif_job_spec s, before;
		struct isif_error err = {0};
		isif_spec_default(&s);
		memcpy(&before, &s, sizeof s);
		int rc = isif_spec_parse(&s, bad[i].json, true, &err);
		CHECK_MSG(rc == ISIF_EINVAL, "accepted %s", bad[i].json);
		CHECK_MSG(strncmp(err.msg, bad[i].want, strlen(bad[i].want)) == 0,
			  "%s: got \"%s\", want \"%s...\"", bad[i].json, err.msg, bad[i].want);
		/* A failed parse leaves the caller's struct as it was. */
		CHECK_MSG(memcmp(&s, &before, sizeof s) == 0, "%s modified the spec", bad[i].json);
	}
}

TEST(spec_augment_settings)
{
	struct isif_job_spec s;
	struct isif_augment a;
	struct isif_error err = {0};
	const float mean[3] = {0.5f, 0.25f, 0.125f}, std[3] = {0.3f, 0.2f, 0.1f};
	isif_spec_default(&s);
	CHECK_EQ(isif_spec_parse(&s, "{\"augment\": {\"crop\": false, \"hflip\": 0.1, "
				 "\"color_jitter\": {\"hue\": 0.05}}}", false, &err), ISIF_OK);
	isif_spec_augment(&s, 28, 30, mean, std, &a);
	CHECK(!a.crop);
	CHECK(a.crop_scale[0] == 0.2f && a.crop_scale[1] == 1.0f);
	/* torchvision RandomResizedCrop ratio default (3/4, 4/3). */
	CHECK_NEAR(a.crop_ratio[0], 0.75, 1e-7);
	CHECK_NEAR(a.crop_ratio[1], 4.0 / 3.0, 1e-7);
	CHECK(a.hflip == 0.1f && a.grayscale == 0.2f);
	CHECK(a.brightness == 0.4f && a.hue == 0.05f && a.jitter_p == 1.0f);
	CHECK_EQ(a.out_h, 28);
	CHECK_EQ(a.out_w, 30);
	CHECK(a.mean[2] == 0.125f && a.std[1] == 0.2f);
}

TEST(spec_accepts_every_model_name)
{
	/* The model list is the engine's (isif_model_names), not a copy. */
	int n = 0;
	for (int i = 0; isif_model_names[i]; i++, n++) {
		struct isif_job_spec s;
		char json[128];
		struct isif_error err = {0};
		isif_spec_default(&s);
		snprintf(json, sizeof json, "{\"model\": \"%s\"}", isif_model_names[i]);
		CHECK_MSG(isif_spec_parse(&s, json, false, &err) == ISIF_OK, "%s: %s", json, err.msg);
		CHECK(strcmp(s.model, isif_model_names[i]) == 0);
	}
	CHECK_EQ(n, 4); /* DESIGN "Models": resnet18, resnet20, convnet, resnet18_imagenet */
	struct isif_job_spec s;
	struct isif_error err = {0};
	isif_spec_default(&s);
	CHECK_EQ(isif_spec_parse(&s, "{\"model\": \"resnet50\"}", false, &err), ISIF_EINVAL);
	CHECK_MSG(strcmp(err.msg, "model: unknown model (one of resnet18, resnet20, convnet, "
			  "resnet18_imagenet)") == 0,
		  "%s", err.msg);
}

TEST(spec_precision_bf16)
{
	struct isif_job_spec s;
	struct isif_error err = {0};
	isif_spec_default(&s);
	CHECK(s.precision == ISIF_PREC_FP32);
	CHECK(isif_spec_parse(&s, "{\"dataset\": \"d\", \"precision\": \"bf16\"}", true, &err) ==
	      ISIF_OK);
	CHECK(s.precision == ISIF_PREC_BF16);
	char *j = isif_spec_to_json(&s);
	CHECK(j && strstr(j, "\"precision\": \"bf16\""));
	free(j);
}

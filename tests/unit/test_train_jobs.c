/*
 * tests/unit/test_train_jobs.c — what a job's trainer promises the daemon
 * and the command line before and while it runs:
 *  - the spec is checked against the dataset and refused as written, never
 *    quietly changed (a train_subset beyond the images there are used to be
 *    cut to the split's size; a batch larger than the images trained on
 *    failed only when the job ran);
 *  - the caller's thread budget bounds the team: the spec may ask for fewer
 *    threads, never more (a spec's "threads" used to override the budget);
 *  - progress reports say which phase runs, and evaluation reports its own
 *    progress (it used to report nothing: a bar at 100% while kNN ran);
 *  - the metrics CSV has one column list;
 *  - the model's memory computed without allocating equals what planning
 *    allocates, and a job's estimated peak memory is within 30% of the
 *    resident memory a small run really adds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "dataset_testutil.h"
#include "isif/base/strbuf.h"
#include "isif/data/dataset.h"
#include "isif/nn/model.h"
#include "isif/train/spec.h"
#include "isif/train/train.h"
#include "nn/model_impl.h"

/* n c×side×side images, pixels varying with the image, labels i mod 3. */
static struct isif_split make_split(int n, int c, int side, int offset)
{
	size_t len = (size_t)c * side * side;
	struct isif_split s = { .n = n, .c = c, .h = side, .w = side };
	s.pixels = malloc((size_t)n * len);
	s.labels = malloc((size_t)n * sizeof(int32_t));
	for (int i = 0; i < n; i++) {
		for (size_t p = 0; p < len; p++)
			s.pixels[i * len + p] = (uint8_t)((i + offset) * 7 + p * (1 + i % 3));
		s.labels[i] = i % 3;
	}
	return s;
}

static struct isif_dataset make_dataset(int n_train, int n_test, int c, int side)
{
	struct isif_dataset ds = { 0 };
	ds.train = make_split(n_train, c, side, 0);
	ds.test = make_split(n_test, c, side, 1000);
	ds.num_classes = 3;
	for (int k = 0; k < 3; k++) {
		ds.mean[k] = 0.5f;
		ds.std[k] = 0.25f;
	}
	return ds;
}

static struct isif_job_spec small_spec(int epochs, int batch)
{
	struct isif_job_spec spec;
	isif_spec_default(&spec);
	snprintf(spec.dataset, sizeof spec.dataset, "synthetic");
	snprintf(spec.model, sizeof spec.model, "convnet");
	spec.batch_size = batch;
	spec.epochs = epochs;
	spec.knn_k = 5;
	return spec;
}

static struct isif_dataset_shape shape_of(int64_t n_train, int64_t n_test)
{
	struct isif_dataset_shape s = { n_train, n_test, 1, 28, 28, 10 };
	return s;
}

/* Expects the check to refuse spec on shape with a message starting with
 * `field` and holding `text`. */
static void expect_refused(const struct isif_job_spec *spec, struct isif_dataset_shape shape,
			   const char *field, const char *text)
{
	struct isif_error err = {0};
	enum isif_rc rc = isif_spec_check_dataset(spec, &shape, "fm", &err);
	CHECK_MSG(rc == ISIF_EINVAL, "%s: rc %d (%s)", field, rc, err.msg);
	CHECK_MSG(strncmp(err.msg, field, strlen(field)) == 0 && strstr(err.msg, text),
		  "%s / %s: got \"%s\"", field, text, err.msg);
}

TEST(train_spec_checked_against_dataset)
{
	struct isif_job_spec spec = small_spec(1, 128);
	struct isif_error err = {0};
	struct isif_dataset_shape fm = shape_of(60000, 10000);
	CHECK_EQ(isif_spec_check_dataset(&spec, &fm, "fm", &err), ISIF_OK);
	/* the two specs operators saw accepted */
	spec.train_subset = 100;
	expect_refused(&spec, fm, "batch_size", "128 is more than the 100 images to train on");
	spec.train_subset = 100000;
	expect_refused(&spec, fm, "train_subset", "100000 is more than the 60000 training images of fm");
	spec.train_subset = 60000;
	CHECK_EQ(isif_spec_check_dataset(&spec, &fm, "fm", &err), ISIF_OK);
	spec.train_subset = 0;
	expect_refused(&spec, shape_of(100, 10), "batch_size", "the train split");
	expect_refused(&spec, shape_of(60000, 0), "eval.every", "empty");
	spec.eval_every = 0;
	CHECK_EQ(isif_spec_check_dataset(&spec, &(struct isif_dataset_shape){60000, 0, 1, 28, 28, 10},
					 "fm", &err), ISIF_OK);
	spec.eval_every = 1;
	spec.has_classes = true;
	spec.n_train_classes = spec.n_test_classes = 2;
	spec.train_classes[0] = spec.test_classes[0] = 0;
	spec.train_classes[1] = 9;
	spec.test_classes[1] = 10;
	expect_refused(&spec, fm, "classes.test[1]", "10 is not a class");
	spec.has_classes = false;
	spec.bn_groups = 3;
	expect_refused(&spec, fm, "bn_groups", "256 rows");
	spec.bn_groups = 1;
	struct isif_dataset_shape tiny = fm;
	tiny.h = 12;
	expect_refused(&spec, tiny, "dataset", "12x28");
}

TEST(trainer_refuses_a_train_subset_it_would_cut)
{
	/* 40 images: train_subset 64 used to train on 40 and record 64 */
	struct isif_dataset ds = make_dataset(40, 12, 1, 16);
	struct isif_job_spec spec = small_spec(1, 8);
	struct isif_trainer *t = NULL;
	struct isif_error err = {0};
	spec.train_subset = 64;
	CHECK_EQ(isif_trainer_create(&t, &spec, &ds, test_tmpdir(), 1, &err), ISIF_EINVAL);
	CHECK_MSG(strstr(err.msg, "train_subset: 64 is more than the 40 training images"), "%s",
		  err.msg);
	CHECK(t == NULL);
	/* with classes, the counts are those of the chosen classes: 14 of label 0 */
	spec.train_subset = 0;
	spec.batch_size = 16;
	spec.has_classes = true;
	spec.n_train_classes = spec.n_test_classes = 1;
	spec.train_classes[0] = spec.test_classes[0] = 0;
	CHECK_EQ(isif_trainer_create(&t, &spec, &ds, test_tmpdir(), 1, &err), ISIF_EINVAL);
	CHECK_MSG(strstr(err.msg, "batch_size: 16 is more than the 14 images") &&
		  strstr(err.msg, "in the chosen classes"), "%s", err.msg);
	isif_dataset_free(&ds);
}

TEST(trainer_threads_bounded_by_the_budget)
{
	struct isif_dataset ds = make_dataset(32, 8, 1, 16);
	struct isif_job_spec spec = small_spec(1, 8);
	struct isif_error err = {0};
	/* budget, spec.threads -> team */
	static const int cases[][3] = { {2, 0, 2}, {2, 8, 2}, {2, 256, 2}, {3, 1, 1}, {1, 4, 1},
					{0, 0, 1}, {100, 0, 64} };
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		spec.threads = cases[i][1];
		CHECK_EQ(isif_train_threads(&spec, cases[i][0]), cases[i][2]);
	}
	struct isif_trainer *t = NULL;
	spec.threads = 256;
	CHECK_MSG(isif_trainer_create(&t, &spec, &ds, test_tmpdir(), 2, &err) == ISIF_OK, "%s",
		  err.msg);
	if (t)
		CHECK_EQ(isif_trainer_threads(t), 2);
	isif_trainer_free(t);
	isif_dataset_free(&ds);
}

/* What the progress callback saw, in order. */
struct seen {
	int n;
	struct isif_progress p[64];
};

static void record_progress(void *user, const struct isif_progress *p)
{
	struct seen *s = user;
	if (s->n < 64)
		s->p[s->n++] = *p;
}

TEST(trainer_reports_the_evaluation_phase)
{
	/* 1000 + 1200 images to embed: three blocks of at most 1024 */
	struct isif_dataset ds = make_dataset(1000, 1200, 1, 16);
	struct isif_job_spec spec = small_spec(1, 250);
	struct isif_trainer *t = NULL;
	struct isif_error err = {0};
	struct seen s = {0};
	CHECK_MSG(isif_trainer_create(&t, &spec, &ds, test_tmpdir(), 1, &err) == ISIF_OK, "%s",
		  err.msg);
	struct isif_train_callbacks cb = { .user = &s, .on_progress = record_progress };
	CHECK_MSG(t && isif_trainer_run(t, &cb, NULL, &err) == ISIF_OK, "%s", err.msg);
	/* four steps, then the evaluation: at its start and after each block */
	const int64_t want_done[] = { 250, 500, 750, 1000, 0, 1000, 2024, 2200 };
	const int n_want = (int)(sizeof want_done / sizeof want_done[0]);
	CHECK_EQ(s.n, n_want);
	for (int i = 0; i < s.n && i < n_want; i++) {
		const struct isif_progress *p = &s.p[i];
		enum isif_phase phase = i < 4 ? ISIF_PHASE_TRAINING : ISIF_PHASE_EVALUATING;
		CHECK_MSG(p->phase == phase && p->images_done == want_done[i] &&
			  p->images_total == (i < 4 ? 1000 : 2200) && p->epoch == 1,
			  "report %d: %s %lld/%lld epoch %d", i, isif_phase_name(p->phase),
			  (long long)p->images_done, (long long)p->images_total, p->epoch);
		CHECK_MSG(p->eta_seconds >= 0, "report %d: ETA %g", i, p->eta_seconds);
	}
	/* the ETA at the end of training counts the evaluation still to come */
	if (s.n == n_want)
		CHECK_MSG(s.p[3].eta_seconds > 0, "ETA %g with the evaluation ahead",
			  s.p[3].eta_seconds);
	CHECK(strcmp(isif_phase_name(ISIF_PHASE_TRAINING), "training") == 0);
	CHECK(strcmp(isif_phase_name(ISIF_PHASE_EVALUATING), "evaluating") == 0);
	isif_trainer_free(t);
	isif_dataset_free(&ds);
}

TEST(train_metrics_csv_one_column_list)
{
	struct isif_strbuf b;
	isif_strbuf_init(&b, 1 << 16);
	isif_metrics_csv_header(&b);
	struct isif_epoch_metrics m = { .epoch = 3, .loss = 5.5, .lr = 0.03, .seconds = 2,
					.images_per_sec = 100, .data_wait_frac = 0.25 };
	isif_metrics_csv_row(&b, &m);
	m.has_knn = true;
	m.knn_top1 = 0.5;
	m.knn_top5 = 0.75;
	isif_metrics_csv_row(&b, &m);
	m.has_knn = false;
	m.unseen = true;
	m.recall_at[0] = 0.125;
	m.recall_at[3] = 1;
	m.nmi = 0.5;
	isif_metrics_csv_row(&b, &m);
	m.has_simhist = true;
	m.sim_same_mean = 0.75;
	m.sim_diff_mean = NAN; /* no different-class pairs */
	isif_metrics_csv_row(&b, &m);
	m.has_simhist = false;
	m.unseen = false;
	m.has_knn = m.has_probe = true;
	m.probe_top1 = 0.875;
	m.probe_backbone_top1 = 0.9375;
	isif_metrics_csv_row(&b, &m);
	CHECK(!b.failed);
	const char *want =
		"epoch,loss,knn_top1,knn_top5,lr,seconds,images_per_sec,recall_at_1,recall_at_2,"
		"recall_at_4,recall_at_8,nmi,data_wait,sim_same_mean,sim_diff_mean,probe_top1,"
		"probe_backbone_top1\n"
		"3,5.5,,,0.03,2,100,,,,,,0.25,,,,\n"
		"3,5.5,0.5,0.75,0.03,2,100,,,,,,0.25,,,,\n"
		"3,5.5,,,0.03,2,100,0.125,0,0,1,0.5,0.25,,,,\n"
		"3,5.5,,,0.03,2,100,0.125,0,0,1,0.5,0.25,0.75,,,\n"
		"3,5.5,0.5,0.75,0.03,2,100,,,,,,0.25,,,0.875,0.9375\n";
	CHECK_MSG(b.p && strcmp(b.p, want) == 0, "got:\n%s", b.p ? b.p : "(null)");
	isif_strbuf_free(&b);
}

TEST(train_model_memory_equals_the_plan)
{
	static const char *const names[] = { "convnet", "resnet20", "resnet18" };
	struct isif_error err = {0};
	for (int i = 0; i < 3; i++) {
		for (int threads = 1; threads <= 3; threads += 2) {
			struct isif_model_memory mm;
			struct isif_model *m = NULL;
			CHECK_MSG(isif_model_memory(names[i], 3, 64, 10, 32, 32, threads, &mm, &err) ==
				  ISIF_OK, "%s", err.msg);
			CHECK_MSG(isif_model_create(&m, names[i], 3, 64, 1, &err) == ISIF_OK, "%s",
				  err.msg);
			if (!m)
				continue;
			CHECK(isif_model_set_threads(m, threads, &err) == ISIF_OK);
			CHECK(isif_model_plan(m, 10, 32, 32, &err) == ISIF_OK);
			CHECK_EQ(mm.params, isif_model_num_params(m) * sizeof(float));
			CHECK_EQ(mm.activations + mm.gradients + mm.workspace, m->planned_bytes);
			CHECK(mm.activations > 0 && mm.gradients > 0 && mm.workspace > 0 &&
			      mm.buffers > 0);
			isif_model_free(m);
		}
	}
	struct isif_model_memory mm;
	CHECK_EQ(isif_model_memory("vgg16", 3, 64, 10, 32, 32, 1, &mm, &err), ISIF_ENOTFOUND);
	CHECK_EQ(isif_model_memory("convnet", 3, 64, 10, 8, 8, 1, &mm, &err), ISIF_EINVAL);
}

/* A field of /proc/self/status in bytes ("VmRSS", "VmHWM"), or -1. */
static long long proc_status_bytes(const char *key)
{
	char line[256];
	long long kb = -1;
	size_t n = strlen(key);
	FILE *f = fopen("/proc/self/status", "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (strncmp(line, key, n) == 0 && line[n] == ':')
			kb = atoll(line + n + 1);
	fclose(f);
	return kb < 0 ? -1 : kb * 1024;
}

/* Resets VmHWM to the current VmRSS (Linux 4.0+); false where it cannot. */
static bool reset_peak(void)
{
	FILE *f = fopen("/proc/self/clear_refs", "w");
	if (!f)
		return false;
	bool ok = fputs("5", f) >= 0;
	return fclose(f) == 0 && ok;
}

/* The estimate against the resident memory one small run adds (its peak
 * minus the resident memory before the trainer existed; the dataset was
 * loaded before, so it is left out of both). */
TEST(train_memory_estimate_within_30_percent)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	/* shadow memory and quarantines make resident sizes meaningless */
	printf("    skipped under a sanitizer\n");
	return;
#endif
	struct isif_dataset ds = make_dataset(512, 256, 3, 32);
	struct isif_job_spec spec = small_spec(1, 128);
	struct isif_dataset_shape shape;
	struct isif_memory_estimate est;
	struct isif_error err = {0};
	isif_dataset_shape_of(&ds, &shape);
	CHECK_MSG(isif_train_memory_estimate(&spec, &shape, 1, &est, &err) == ISIF_OK, "%s",
		  err.msg);
	CHECK_EQ(est.total, est.model + est.optimizer + est.activations + est.loss + est.loader +
			    est.dataset + est.evaluation);
	if (!reset_peak()) {
		printf("    skipped: /proc/self/clear_refs cannot reset the peak\n");
		isif_dataset_free(&ds);
		return;
	}
	long long before = proc_status_bytes("VmRSS");
	struct isif_trainer *t = NULL;
	CHECK_MSG(isif_trainer_create(&t, &spec, &ds, test_tmpdir(), 1, &err) == ISIF_OK, "%s",
		  err.msg);
	CHECK_MSG(t && isif_trainer_run(t, NULL, NULL, &err) == ISIF_OK, "%s", err.msg);
	long long peak = proc_status_bytes("VmHWM");
	isif_trainer_free(t);
	isif_dataset_free(&ds);
	double grown = (double)(peak - before), want = (double)(est.total - est.dataset);
	printf("    convnet, batch 128, 3x32x32: estimated %.1f MB, measured %.1f MB (%+.0f%%)\n",
	       want / 1e6, grown / 1e6, 100 * (want - grown) / grown);
	CHECK_MSG(before > 0 && peak > before, "VmRSS %lld, VmHWM %lld", before, peak);
	CHECK_MSG(want >= 0.7 * grown && want <= 1.3 * grown,
		  "estimate %.1f MB, measured %.1f MB", want / 1e6, grown / 1e6);
}

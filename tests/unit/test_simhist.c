/*
 * tests/unit/test_simhist.c — the similarity histograms (core/eval/simhist.c)
 * against a direct computation over the same pairs, their bounds and seeding;
 * and the classes.split rule (isif_spec_resolve_classes) on a folder dataset
 * whose class folders are made in unsorted order.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "dataset_testutil.h"
#include "isif/base/rng.h"
#include "isif/data/dataset.h"
#include "isif/eval/simhist.h"
#include "isif/train/spec.h"

/* n random unit rows of width D, labels i % classes (or a skewed pattern). */
static float *unit_rows(int64_t n, int D, uint64_t seed)
{
	float *x = malloc((size_t)n * D * sizeof *x);
	struct isif_rng rng;
	isif_rng_seed(&rng, seed, 3);
	for (int64_t i = 0; i < n; i++) {
		double s = 0;
		for (int d = 0; d < D; d++) {
			x[i * D + d] = isif_rng_uniform(&rng) - 0.5f;
			s += (double)x[i * D + d] * x[i * D + d];
		}
		for (int d = 0; d < D; d++)
			x[i * D + d] = (float)(x[i * D + d] / sqrt(s));
	}
	return x;
}

static int64_t count_sum(const struct isif_simhist_part *p)
{
	int64_t s = 0;
	for (int b = 0; b < ISIF_SIMHIST_BINS; b++)
		s += p->counts[b];
	return s;
}

TEST(simhist_bins_cover_minus_one_to_one)
{
	CHECK_EQ(isif_simhist_bin(-1.0f), 0);
	CHECK_EQ(isif_simhist_bin(-1.5f), 0);
	CHECK_EQ(isif_simhist_bin(-0.985f), 0);
	CHECK_EQ(isif_simhist_bin(-0.975f), 1);
	CHECK_EQ(isif_simhist_bin(0.0f), ISIF_SIMHIST_BINS / 2);
	CHECK_EQ(isif_simhist_bin(0.995f), ISIF_SIMHIST_BINS - 1);
	CHECK_EQ(isif_simhist_bin(1.0f), ISIF_SIMHIST_BINS - 1);
	CHECK_EQ(isif_simhist_bin(1.0001f), ISIF_SIMHIST_BINS - 1);
}

/* Below the bound every pair is taken: counts, sums and bins equal a direct
 * loop over all i < j. */
TEST(simhist_all_pairs_match_direct)
{
	enum { N = 57, D = 5 };
	float *x = unit_rows(N, D, 1);
	int32_t lab[N];
	for (int i = 0; i < N; i++)
		lab[i] = (i * 7) % 4 == 3 ? 9 : i % 3; /* unsorted, uneven classes */
	struct isif_simhist h, want;
	memset(&want, 0, sizeof want);
	for (int i = 0; i < N; i++)
		for (int j = i + 1; j < N; j++) {
			double s = 0;
			for (int d = 0; d < D; d++)
				s += (double)x[i * D + d] * x[j * D + d];
			struct isif_simhist_part *p = lab[i] == lab[j] ? &want.same : &want.diff;
			p->pairs++;
			p->sum += s;
			p->counts[isif_simhist_bin((float)s)]++;
		}
	CHECK_EQ(isif_simhist_compute(x, lab, N, D, 100000, 5, &h), ISIF_OK);
	CHECK_EQ(h.same.pairs, want.same.pairs);
	CHECK_EQ(h.diff.pairs, want.diff.pairs);
	CHECK_EQ(h.same.pairs + h.diff.pairs, N * (N - 1) / 2);
	CHECK_EQ(count_sum(&h.same), h.same.pairs);
	CHECK_EQ(count_sum(&h.diff), h.diff.pairs);
	CHECK_NEAR(h.same.sum / h.same.pairs, want.same.sum / want.same.pairs, 1e-12);
	CHECK_NEAR(h.diff.sum / h.diff.pairs, want.diff.sum / want.diff.pairs, 1e-12);
	for (int b = 0; b < ISIF_SIMHIST_BINS; b++) {
		CHECK_EQ(h.same.counts[b], want.same.counts[b]);
		CHECK_EQ(h.diff.counts[b], want.diff.counts[b]);
	}
	free(x);
}

/* Above the bound: exactly max_pairs of each kind, the same for the same
 * seed, and the sampled means near the means over all pairs. Embeddings
 * with a class direction make the two kinds' means differ clearly. */
TEST(simhist_sampled_pairs_are_bounded_and_fair)
{
	enum { N = 1500, D = 8, C = 6 };
	float *x = unit_rows(N, D, 2);
	int32_t *lab = malloc(N * sizeof *lab);
	for (int i = 0; i < N; i++) {
		lab[i] = (i % 11) % C;            /* uneven class sizes */
		x[i * D + lab[i]] += 1.5f;        /* pull each class to its own axis */
		double s = 0;
		for (int d = 0; d < D; d++)
			s += (double)x[i * D + d] * x[i * D + d];
		for (int d = 0; d < D; d++)
			x[i * D + d] = (float)(x[i * D + d] / sqrt(s));
	}
	struct isif_simhist all, a, b, c;
	CHECK_EQ(isif_simhist_compute(x, lab, N, D, INT64_MAX / 4, 1, &all), ISIF_OK);
	CHECK_EQ(all.same.pairs + all.diff.pairs, (int64_t)N * (N - 1) / 2);
	CHECK_EQ(isif_simhist_compute(x, lab, N, D, 20000, 7, &a), ISIF_OK);
	CHECK_EQ(isif_simhist_compute(x, lab, N, D, 20000, 7, &b), ISIF_OK);
	CHECK_EQ(isif_simhist_compute(x, lab, N, D, 20000, 8, &c), ISIF_OK);
	CHECK_EQ(a.same.pairs, 20000);
	CHECK_EQ(a.diff.pairs, 20000);
	CHECK_EQ(count_sum(&a.same), 20000);
	CHECK_EQ(count_sum(&a.diff), 20000);
	CHECK(memcmp(&a, &b, sizeof a) == 0);
	CHECK(memcmp(&a, &c, sizeof a) != 0);
	double ms = all.same.sum / all.same.pairs, md = all.diff.sum / all.diff.pairs;
	CHECK(ms > md + 0.3);
	/* the standard error of a 20000-pair mean of values in [−1, 1] is < 0.007 */
	CHECK_NEAR(a.same.sum / a.same.pairs, ms, 0.03);
	CHECK_NEAR(a.diff.sum / a.diff.pairs, md, 0.03);
	free(x);
	free(lab);
}

TEST(simhist_edge_cases)
{
	struct isif_simhist h;
	float x[6] = {1, 0, 0, 1, 1, 0};
	int32_t one[3] = {4, 4, 4};
	CHECK_EQ(isif_simhist_compute(x, one, 3, 2, 10, 1, &h), ISIF_OK);
	CHECK_EQ(h.same.pairs, 3);
	CHECK_EQ(h.diff.pairs, 0);
	CHECK_NEAR(h.same.sum, 1.0, 1e-12);   /* pairs (0,1)=0 (0,2)=1 (1,2)=0 */
	CHECK_EQ(h.same.counts[ISIF_SIMHIST_BINS - 1], 1);
	CHECK_EQ(h.same.counts[ISIF_SIMHIST_BINS / 2], 2);
	CHECK_EQ(isif_simhist_compute(x, one, 1, 2, 10, 1, &h), ISIF_OK);
	CHECK_EQ(h.same.pairs + h.diff.pairs, 0);
	CHECK_EQ(isif_simhist_compute(x, one, 3, 2, 0, 1, &h), ISIF_EINVAL);
	CHECK_EQ(isif_simhist_compute(x, one, 3, 0, 10, 1, &h), ISIF_EINVAL);
	/* one row in another class than the rest: a bound of 1 samples one pair */
	int32_t lab[3] = {0, 0, 1};
	CHECK_EQ(isif_simhist_compute(x, lab, 3, 2, 1, 1, &h), ISIF_OK);
	CHECK_EQ(h.same.pairs, 1);
	CHECK_EQ(h.diff.pairs, 1);
	CHECK_NEAR(h.same.sum, 0.0, 1e-12);
}

/* ---- classes.split ---------------------------------------------------- */

static void put_png(const char *rel, int shade)
{
	uint8_t px[3 * 16 * 16];
	memset(px, shade, sizeof px);
	char path[4096];
	struct isif_error err = {0};
	void *png;
	size_t len;
	CHECK_EQ(isif_image_encode_png(px, 3, 16, 16, &png, &len, &err), ISIF_OK);
	CHECK(tu_write(tu_path(path, rel), png, len) == 0);
	free(png);
}

static int has(const int *v, int n, int x)
{
	for (int i = 0; i < n; i++)
		if (v[i] == x)
			return 1;
	return 0;
}

TEST(spec_class_split_halves_sorted_folder_classes)
{
	/* made out of order; the reader labels them by sorted name */
	static const char *const made[5] = {"zebra", "apple", "mango", "Banana", "cherry"};
	char rel[128];
	for (int k = 0; k < 5; k++)
		for (int i = 0; i < 2; i++) {
			snprintf(rel, sizeof rel, "split5/train/%s/%d.png", made[k], i);
			put_png(rel, 40 * k + i);
			snprintf(rel, sizeof rel, "split5/test/%s/%d.png", made[k], i);
			put_png(rel, 40 * k + i + 5);
		}
	struct isif_dataset ds;
	struct isif_error err = {0};
	char dir[4096];
	snprintf(dir, sizeof dir, "%s/split5", test_tmpdir());
	CHECK_MSG(isif_dataset_load(&ds, dir, ISIF_FMT_FOLDER, NULL, &err) == ISIF_OK, "%s", err.msg);
	CHECK_EQ(ds.num_classes, 5);
	/* byte order: Banana < apple < cherry < mango < zebra */
	int label[5];
	static const char *const sorted[5] = {"Banana", "apple", "cherry", "mango", "zebra"};
	for (int k = 0; k < 5; k++)
		for (int c = 0; c < ds.num_classes; c++)
			if (strcmp(ds.class_names[c], sorted[k]) == 0)
				label[k] = c;

	struct isif_job_spec s;
	isif_spec_default(&s);
	int rc = isif_spec_parse(&s, "{\"dataset\": \"x\", \"classes\": {\"split\": \"first_half\"}}",
				 true, &err);
	CHECK_MSG(rc == ISIF_OK, "%s", err.msg);
	CHECK(s.has_classes && s.class_split == ISIF_SPLIT_FIRST_HALF && s.n_train_classes == 0);
	CHECK_EQ(isif_spec_resolve_classes(&s, ds.num_classes, ds.class_names, &err), ISIF_OK);
	CHECK_EQ(s.n_train_classes, 3);
	CHECK_EQ(s.n_test_classes, 2);
	for (int k = 0; k < 3; k++)
		CHECK_MSG(has(s.train_classes, 3, label[k]), "%s not trained on", sorted[k]);
	for (int k = 3; k < 5; k++)
		CHECK_MSG(has(s.test_classes, 2, label[k]), "%s not held out", sorted[k]);

	isif_spec_default(&s);
	CHECK_EQ(isif_spec_parse(&s, "{\"dataset\": \"x\", \"classes\": {\"split\": \"second_half\"}}",
				 true, &err), ISIF_OK);
	CHECK_EQ(isif_spec_resolve_classes(&s, ds.num_classes, ds.class_names, &err), ISIF_OK);
	CHECK_EQ(s.n_train_classes, 2);
	CHECK_EQ(s.n_test_classes, 3);
	for (int k = 3; k < 5; k++)
		CHECK(has(s.train_classes, 2, label[k]));
	for (int k = 0; k < 3; k++)
		CHECK(has(s.test_classes, 3, label[k]));
	/* the canonical JSON keeps the rule, not the lists */
	char *j = isif_spec_to_json(&s);
	CHECK(j && strstr(j, "\"classes\": {\"split\": \"second_half\"}"));
	free(j);
	isif_dataset_free(&ds);
}

TEST(spec_class_split_unsorted_names_and_errors)
{
	/* names not in label order (as a dataset's own class list may be) */
	char *names[4] = {"dog", "cat", "emu", "ant"};
	struct isif_job_spec s;
	struct isif_error err = {0};
	isif_spec_default(&s);
	CHECK_EQ(isif_spec_parse(&s, "{\"dataset\": \"x\", \"classes\": {\"split\": \"first_half\"}}",
				 true, &err), ISIF_OK);
	struct isif_job_spec t = s;
	CHECK_EQ(isif_spec_resolve_classes(&t, 4, names, &err), ISIF_OK);
	CHECK_EQ(t.n_train_classes, 2);
	CHECK(has(t.train_classes, 2, 3) && has(t.train_classes, 2, 1));  /* ant, cat */
	CHECK(has(t.test_classes, 2, 0) && has(t.test_classes, 2, 2));    /* dog, emu */
	t = s;
	CHECK_EQ(isif_spec_resolve_classes(&t, 4, NULL, &err), ISIF_OK);  /* by label */
	CHECK(has(t.train_classes, 2, 0) && has(t.train_classes, 2, 1));
	t = s;
	CHECK_EQ(isif_spec_resolve_classes(&t, 1, NULL, &err), ISIF_EINVAL);
	CHECK(strstr(err.msg, "classes.split") != NULL);
	t = s;
	CHECK_EQ(isif_spec_resolve_classes(&t, 2 * ISIF_SPEC_MAX_CLASSES + 1, NULL, &err),
		 ISIF_EINVAL);
	struct isif_dataset_shape shape = {.n_train = 100, .n_test = 10, .c = 3, .h = 32, .w = 32,
					   .num_classes = 1};
	s.batch_size = 8;
	CHECK_EQ(isif_spec_check_dataset(&s, &shape, "d", &err), ISIF_EINVAL);
	CHECK(strstr(err.msg, "classes.split") != NULL);
	shape.num_classes = 10;
	CHECK_MSG(isif_spec_check_dataset(&s, &shape, "d", &err) == ISIF_OK, "%s", err.msg);

	static const char *const bad[] = {
		"{\"dataset\": \"x\", \"classes\": {\"split\": \"middle\"}}",
		"{\"dataset\": \"x\", \"classes\": {\"split\": 1}}",
		"{\"dataset\": \"x\", \"classes\": {\"split\": \"first_half\", \"train\": [0]}}",
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		isif_spec_default(&s);
		CHECK_MSG(isif_spec_parse(&s, bad[i], true, &err) == ISIF_EINVAL, "%s", bad[i]);
		CHECK_MSG(strstr(err.msg, "classes") == err.msg, "%s", err.msg);
	}
}

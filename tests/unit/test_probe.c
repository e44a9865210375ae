/*
 * tests/unit/test_probe.c — the linear probe (isif/eval/probe.h): it recovers a
 * linear separation on constructed data, cannot fake one where none exists
 * (XOR), reaches the hand-computed optimum of an uninformative feature, and
 * gives the same fit on any thread count.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "isif/base/rng.h"
#include "isif/eval/probe.h"

#define PI 3.14159265358979323846

static double gauss(struct isif_rng *rng)
{
	double u1 = 1.0 - isif_rng_uniform(rng), u2 = isif_rng_uniform(rng);
	return sqrt(-2.0 * log(u1)) * cos(2.0 * PI * u2);
}

/* n rows of d dims: 3 classes with means 6·e_0, 6·e_1, 6·(e_0 + e_1) plus unit
 * noise; dim 2 is scaled ×1000 and shifted by 500 (standardisation must undo
 * it) and the rest is pure noise. */
static void gaussian_classes(struct isif_rng *rng, int64_t n, int d, float *x, int32_t *y)
{
	for (int64_t i = 0; i < n; i++) {
		int c = (int)(i % 3);
		y[i] = c;
		for (int j = 0; j < d; j++)
			x[i * d + j] = (float)gauss(rng);
		x[i * d + 0] += (c == 0 || c == 2) ? 6.0f : 0.0f;
		x[i * d + 1] += (c == 1 || c == 2) ? 6.0f : 0.0f;
		x[i * d + 2] = x[i * d + 2] * 1000.0f + 500.0f;
	}
}

TEST(probe_separates_gaussian_classes)
{
	struct isif_rng rng;
	isif_rng_seed(&rng, 5, 0);
	int d = 6;
	int64_t n = 3000, nt = 1500;
	float *x = malloc((size_t)n * d * sizeof(float)), *xt = malloc((size_t)nt * d * sizeof(float));
	int32_t *y = malloc((size_t)n * sizeof(int32_t)), *yt = malloc((size_t)nt * sizeof(int32_t));
	gaussian_classes(&rng, n, d, x, y);
	gaussian_classes(&rng, nt, d, xt, yt);
	struct isif_probe_result r;
	struct isif_error err = { 0 };
	CHECK_EQ(isif_linear_probe(x, y, n, xt, yt, nt, d, 3, NULL, &r, &err), ISIF_OK);
	/* the classes are 6σ apart: the Bayes error is ~0.1% */
	CHECK_MSG(r.top1 >= 0.99, "test top-1 %.4f", r.top1);
	CHECK_MSG(r.train_top1 >= 0.99, "train top-1 %.4f", r.train_top1);
	CHECK(r.iters > 0 && r.iters <= ISIF_PROBE_ITERS);
	free(x);
	free(xt);
	free(y);
	free(yt);
}

/* XOR: label = [x0·x1 > 0]. No linear classifier beats chance by much; the
 * same points with the product x0·x1 as a third feature are separable, so a
 * low score on the first set is the features' fault, not the solver's. */
static void xor_set(struct isif_rng *rng, int64_t n, int with_product, float *x, int32_t *y)
{
	int d = with_product ? 3 : 2;
	for (int64_t i = 0; i < n; i++) {
		double a = gauss(rng), b = gauss(rng);
		a += a > 0 ? 0.5 : -0.5;
		b += b > 0 ? 0.5 : -0.5;
		x[i * d] = (float)a;
		x[i * d + 1] = (float)b;
		if (with_product)
			x[i * d + 2] = (float)(a * b);
		y[i] = a * b > 0;
	}
}

TEST(probe_cannot_separate_xor)
{
	int64_t n = 2000, nt = 1000;
	float *x = malloc((size_t)n * 3 * sizeof(float)), *xt = malloc((size_t)nt * 3 * sizeof(float));
	int32_t *y = malloc((size_t)n * sizeof(int32_t)), *yt = malloc((size_t)nt * sizeof(int32_t));
	struct isif_probe_result r;
	struct isif_error err = { 0 };
	for (int with_product = 0; with_product <= 1; with_product++) {
		struct isif_rng rng;
		isif_rng_seed(&rng, 11, 0);
		xor_set(&rng, n, with_product, x, y);
		xor_set(&rng, nt, with_product, xt, yt);
		CHECK_EQ(isif_linear_probe(x, y, n, xt, yt, nt, 2 + with_product, 2, NULL, &r, &err),
			 ISIF_OK);
		if (with_product)
			CHECK_MSG(r.top1 >= 0.99, "with x0·x1: top-1 %.4f", r.top1);
		else
			CHECK_MSG(r.top1 < 0.7, "XOR: top-1 %.4f", r.top1);
	}
	free(x);
	free(xt);
	free(y);
	free(yt);
}

/* A constant feature carries nothing: the optimum is b = log of the class
 * priors, f = H(prior) = −(¾ ln ¾ + ¼ ln ¼) = 0.562335144618808, and every
 * prediction is the majority class. */
TEST(probe_uninformative_feature_hand_value)
{
	float x[8] = { 2, 2, 2, 2, 2, 2, 2, 2 };
	int32_t y[8] = { 0, 1, 0, 0, 0, 1, 0, 0 }, yt[4] = { 0, 1, 1, 1 };
	struct isif_probe_result r;
	struct isif_error err = { 0 };
	CHECK_EQ(isif_linear_probe(x, y, 8, x, yt, 4, 1, 2, NULL, &r, &err), ISIF_OK);
	CHECK_NEAR(r.loss, 0.562335144618808, 1e-6);
	CHECK_NEAR(r.train_top1, 0.75, 0);
	CHECK_NEAR(r.top1, 0.25, 0);
}

TEST(probe_same_on_any_thread_count)
{
	struct isif_rng rng;
	isif_rng_seed(&rng, 7, 0);
	int d = 6;
	int64_t n = 9000;   /* several chunks, split unevenly over 3 */
	float *x = malloc((size_t)n * d * sizeof(float));
	int32_t *y = malloc((size_t)n * sizeof(int32_t));
	gaussian_classes(&rng, n, d, x, y);
	for (int64_t i = 0; i < n; i += 7)   /* some label noise: a non-trivial optimum */
		y[i] = (y[i] + 1) % 3;
	struct isif_probe_result r1, r3;
	struct isif_probe_options o1 = { .iters = 30, .threads = 1 }, o3 = { .iters = 30, .threads = 3 };
	struct isif_error err = { 0 };
	CHECK_EQ(isif_linear_probe(x, y, n, x, y, n, d, 3, &o1, &r1, &err), ISIF_OK);
	CHECK_EQ(isif_linear_probe(x, y, n, x, y, n, d, 3, &o3, &r3, &err), ISIF_OK);
	CHECK(r1.loss == r3.loss);
	CHECK(r1.top1 == r3.top1);
	CHECK_EQ(r1.iters, r3.iters);
	free(x);
	free(y);
}

TEST(probe_rejects_bad_labels)
{
	float x[4] = { 0, 1, 2, 3 };
	int32_t y[4] = { 0, 1, 2, 1 };
	struct isif_probe_result r;
	struct isif_error err = { 0 };
	CHECK_EQ(isif_linear_probe(x, y, 4, x, y, 4, 1, 2, NULL, &r, &err), ISIF_EINVAL);
	CHECK(strstr(err.msg, "label") != NULL);
	CHECK_EQ(isif_linear_probe(x, y, 4, x, y, 4, 1, 1, NULL, &r, &err), ISIF_EINVAL);
}

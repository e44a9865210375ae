/*
 * isif/eval/probe.h — the linear probe: a multinomial logistic regression
 * with L2 trained on frozen features of the train split, scored by test
 * top-1 (the seed paper's linear-classifier protocol).
 *
 * How it is solved (DESIGN.md "Linear probe"): features are standardised
 * with the train split's per-dimension mean and standard deviation (folded
 * into the weights, never copied); the objective
 *     f(W, b) = (1/n) Σ_i −log softmax(W x̃_i + b)_{y_i} + (λ/2)‖W‖²
 * is minimised by full-batch L-BFGS (10 pairs, Armijo backtracking) from
 * zero for a fixed budget of iterations, λ fixed (no validation search).
 * Both products per iteration (logits and gradient) are engine GEMMs over
 * fixed chunks of rows split over threads and summed in chunk order, so
 * the result does not depend on the thread count.
 */
#ifndef ISIF_PROBE_H
#define ISIF_PROBE_H

#include <stdint.h>

#include "isif/base/common.h"

/* Defaults of isif_probe_options (0 in a field picks them). */
#define ISIF_PROBE_LAMBDA 1e-4
#define ISIF_PROBE_ITERS 100

struct isif_probe_options {
	double lambda;   /* L2 weight λ on W (not b); 0: ISIF_PROBE_LAMBDA, < 0: none */
	int iters;       /* L-BFGS iterations (gradient evaluations may be more); 0: default */
	int threads;     /* most threads (the caller and threads − 1 started for the call) */
};

struct isif_probe_result {
	double top1;        /* test top-1, a fraction */
	double train_top1;  /* on the train split itself */
	double loss;        /* final objective f */
	int iters;          /* L-BFGS iterations run */
	double seconds;     /* wall time of the fit and scoring */
};

/*
 * Fits the probe on x[n, d] with labels y[n] in [0, num_classes) and scores
 * it on xt[nt, d], yt[nt] (nt may be 0: top1 0). opt may be NULL
 * (defaults). Returns ISIF_OK, ISIF_EINVAL (a label out of range, n < 1,
 * d < 1, num_classes < 2) or ISIF_ENOMEM.
 */
enum isif_rc isif_linear_probe(const float *x, const int32_t *y, int64_t n,
			       const float *xt, const int32_t *yt, int64_t nt, int d,
			       int num_classes, const struct isif_probe_options *opt,
			       struct isif_probe_result *out, struct isif_error *err);

#endif

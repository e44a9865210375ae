/*
 * tests/unit/gradcheck.h — one gradient-check harness for every layer, the
 * loss and whole models: central differences against the analytic gradient.
 *
 * The engine computes in float32, so the bound is a documented float32 one:
 * element i passes when |num − ana| ≤ atol + rtol·max(|num|, |ana|).
 * Defaults (eps 1e-2 on inputs of order 1, rtol 1e-2, atol 1e-3 scaled by the
 * gradient's largest magnitude) are loose enough for float32 rounding of the
 * forward pass yet catch a wrong sign, a missing term or a factor off by 2%
 * on any element (tests/unit/test_gradcheck.c shows the harness failing on
 * such perturbations). A non-finite analytic gradient always fails.
 *
 * Kinks (ReLU at 0, max-pool ties): when the estimates with eps and eps/2
 * disagree by more than the tolerance the function is not smooth there and
 * the element is skipped; more than max_skip_frac skipped fails the check.
 */
#ifndef ISIF_TEST_GRADCHECK_H
#define ISIF_TEST_GRADCHECK_H

#include <stddef.h>

/* Evaluates the scalar objective at the current parameter values. */
typedef double (*gc_objective)(void *ctx);

struct gc_opts {
	double eps;            /* step, default 1e-2 */
	double rtol;           /* default 1e-2 */
	double atol;           /* absolute floor as a fraction of max|ana|, default 1e-3 */
	size_t max_elems;      /* check at most this many elements (spread evenly), default 200 */
	double max_skip_frac;  /* default 0.25 */
	int quiet;             /* do not print mismatches */
};

/* Defaults described above. */
struct gc_opts gc_defaults(void);

/*
 * Perturbs x[i] by ±eps in place (restoring it), evaluates f and compares the
 * central difference with ana[i]. Returns the number of failing elements
 * (0 = pass), or −1 when too many elements were skipped as kinks. Prints the
 * first mismatches prefixed by `what` unless quiet.
 */
int gradcheck(const char *what, float *x, const float *ana, size_t n,
	      gc_objective f, void *ctx, const struct gc_opts *opts);

/* Σ r_i·y_i in double: the usual objective that turns an output into a scalar
 * (its gradient w.r.t. y is r). */
double gc_dot(const float *r, const float *y, size_t n);

/* Fills a[n] with uniform values in [lo, hi) from a fixed seed. */
void gc_fill_uniform(float *a, size_t n, float lo, float hi, unsigned seed);

#endif

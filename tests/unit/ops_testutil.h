/*
 * tests/unit/ops_testutil.h — small helpers shared by the layer-op tests
 * (test_ops_*.c): random buffers and element-wise comparison against a
 * double-precision reference. Test code only.
 */
#ifndef ISIF_TEST_OPS_TESTUTIL_H
#define ISIF_TEST_OPS_TESTUTIL_H

#include <math.h>
#include <stdlib.h>

#include "check.h"
#include "gradcheck.h"

/* n floats uniform in [-1, 1) from seed; caller frees. */
static inline float *tu_rand(size_t n, unsigned seed)
{
	float *a = malloc(sizeof(float) * (n ? n : 1));
	gc_fill_uniform(a, n, -1.0f, 1.0f, seed);
	return a;
}

/* n floats all equal to v; caller frees. */
static inline float *tu_const(size_t n, float v)
{
	float *a = malloc(sizeof(float) * (n ? n : 1));
	for (size_t i = 0; i < n; i++)
		a[i] = v;
	return a;
}

/*
 * gradcheck() that first rejects a non-finite analytic gradient (−2): the
 * harness compares with `>` so a NaN in ana would otherwise pass silently.
 */
static inline int tu_gradcheck(const char *what, float *x, const float *ana, size_t n,
			       gc_objective f, void *ctx, const struct gc_opts *opts)
{
	for (size_t i = 0; i < n; i++)
		if (!isfinite(ana[i])) {
			fprintf(stderr, "    %s[%zu]: analytic gradient %g\n", what, i, ana[i]);
			return -2;
		}
	return gradcheck(what, x, ana, n, f, ctx, opts);
}

/*
 * Checks |got[i] − want[i]| ≤ tol·(1 + |want[i]|) for every i and reports the
 * first mismatch (and the count) under `what`. Returns the mismatch count.
 */
#define TU_CHECK_ALL(what, got, want, n, tol)                                 \
	do {                                                                  \
		size_t bad_ = 0, first_ = 0;                                  \
		for (size_t i_ = 0; i_ < (size_t)(n); i_++) {                 \
			double g_ = (got)[i_], w_ = (want)[i_];               \
			if (!(fabs(g_ - w_) <= (tol) * (1.0 + fabs(w_)))) {   \
				if (!bad_++)                                  \
					first_ = i_;                          \
			}                                                     \
		}                                                             \
		CHECK_MSG(bad_ == 0, "%s: %zu of %zu differ, first [%zu] got %.9g want %.9g", \
			  what, bad_, (size_t)(n), first_,                    \
			  (double)(got)[first_], (double)(want)[first_]);     \
	} while (0)

#endif

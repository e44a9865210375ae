/* tests/unit/gradcheck.c — the central-difference gradient checker. */
#include "gradcheck.h"

#include <math.h>
#include <stdio.h>

#include "isif/base/rng.h"

struct gc_opts gc_defaults(void)
{
	struct gc_opts o = { .eps = 1e-2, .rtol = 1e-2, .atol = 1e-3,
			     .max_elems = 200, .max_skip_frac = 0.25, .quiet = 0 };
	return o;
}

static double central(float *x, size_t i, double eps, gc_objective f, void *ctx)
{
	float saved = x[i];
	x[i] = (float)(saved + eps);
	double hi = f(ctx);
	x[i] = (float)(saved - eps);
	double lo = f(ctx);
	x[i] = saved;
	/* Divide by the step actually taken after float rounding. */
	double step = (double)(float)(saved + eps) - (double)(float)(saved - eps);
	return (hi - lo) / step;
}

int gradcheck(const char *what, float *x, const float *ana, size_t n,
	      gc_objective f, void *ctx, const struct gc_opts *opts)
{
	struct gc_opts o = opts ? *opts : gc_defaults();
	double scale = 0;
	for (size_t i = 0; i < n; i++) {
		if (!isfinite(ana[i])) {
			if (!o.quiet)
				fprintf(stderr, "    %s[%zu]: analytic gradient is %g\n", what, i, ana[i]);
			return 1; /* NaN would slip through every comparison below */
		}
		scale = fmax(scale, fabs(ana[i]));
	}
	double atol = o.atol * (scale > 0 ? scale : 1.0);
	size_t stride = n > o.max_elems ? n / o.max_elems : 1;
	size_t checked = 0, skipped = 0;
	int failures = 0;

	for (size_t i = 0; i < n; i += stride) {
		double num = central(x, i, o.eps, f, ctx);
		double num_half = central(x, i, o.eps / 2, f, ctx);
		double tol = atol + o.rtol * fmax(fabs(num), fabs(ana[i]));
		checked++;
		if (fabs(num - num_half) > tol) {
			skipped++; /* not smooth at this point: a kink */
			continue;
		}
		if (!(fabs(num - ana[i]) <= tol)) {
			if (!o.quiet && failures < 5)
				fprintf(stderr, "    %s[%zu]: analytic %.7g numeric %.7g (tol %.3g)\n",
					what, i, ana[i], num, tol);
			failures++;
		}
	}
	if (checked && (double)skipped > o.max_skip_frac * (double)checked) {
		if (!o.quiet)
			fprintf(stderr, "    %s: %zu of %zu elements skipped as kinks\n",
				what, skipped, checked);
		return -1;
	}
	return failures;
}

double gc_dot(const float *r, const float *y, size_t n)
{
	double s = 0;
	for (size_t i = 0; i < n; i++)
		s += (double)r[i] * y[i];
	return s;
}

void gc_fill_uniform(float *a, size_t n, float lo, float hi, unsigned seed)
{
	struct isif_rng rng;
	isif_rng_seed(&rng, seed, 99);
	for (size_t i = 0; i < n; i++)
		a[i] = lo + (hi - lo) * isif_rng_uniform(&rng);
}

/*
 * core/nn/batchnorm.c — batch normalisation over (N, H·W) per channel with
 * PyTorch's BatchNorm2d semantics, on x[N, C, HW] float32: train-mode
 * forward (batch statistics, running-statistics update), eval-mode forward
 * (running statistics) and train-mode backward; each optionally fused with
 * the ReLU that follows it (ops_impl.h). Channels are split over a thread
 * team; per-channel sums are float within a run of HW values (vectorised)
 * and double across runs.
 *
 * Memory order: a member walks its channels sample by sample (for each
 * sample its channels' runs lie next to each other), so each tensor streams
 * through once per pass instead of being read in runs of HW floats that
 * jump by C·HW. The statistics take one pass: each run's mean and squared
 * deviations (the run is in L1) are merged into the channel's in double
 * (Chan et al.: with δ = mean_run − mean, n' = n + HW,
 * mean += δ·HW/n', M2 += M2_run + δ²·n·HW/n'). The order of every sum is
 * the same on any team.
 *
 * With n = N·HW values per channel c:
 *   mean = Σx/n,  var = Σ(x − mean)²/n (biased),  rstd = 1/√(var + eps)
 *   x̂ = (x − mean)·rstd,  y = γ·x̂ + β   (fused: y = max(γ·x̂ + β, 0))
 *   running_mean = (1 − m)·running_mean + m·mean
 *   running_var  = (1 − m)·running_var  + m·var·n/(n − 1)   (unbiased)
 * PyTorch refuses n = 1 in train mode; here the unbiased factor is then
 * taken as 1 so nothing divides by zero.
 */
#include "isif/nn/ops.h"
#include "nn/conv_bn_impl.h"
#include "nn/ops_impl.h"
#include "base/cpu_impl.h"
#include "base/par_impl.h"
#include "base/team_impl.h"

#include <math.h>

/*
 * The per-run loops below have AVX-512 versions (cpu_impl.h): GCC's
 * code for the `omp simd` reductions kept the vector sums on the stack,
 * one store-to-load round trip per 16 values, and turned the ReLU mask into
 * masked loads, both slow here. These keep two sums per quantity in
 * registers and load everything unmasked but a run's tail; they evaluate
 * the same expressions (no fused multiply-adds: -std=c11 contracts none),
 * summed in a different order.
 */
#if CPU_HAVE_AVX512
CPU_AVX512_TARGET static inline __mmask16 tail_lanes(int n)
{
	return (__mmask16)((1u << n) - 1);
}

/* Σ x over one run. */
CPU_AVX512_TARGET static float run_sum_avx512(const float *x, int n)
{
	__m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
	int j = 0;
	for (; j + 32 <= n; j += 32) {
		s0 = _mm512_add_ps(s0, _mm512_loadu_ps(x + j));
		s1 = _mm512_add_ps(s1, _mm512_loadu_ps(x + j + 16));
	}
	for (; j + 16 <= n; j += 16)
		s0 = _mm512_add_ps(s0, _mm512_loadu_ps(x + j));
	if (j < n)
		s1 = _mm512_add_ps(s1, _mm512_maskz_loadu_ps(tail_lanes(n - j), x + j));
	return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

/* Σ (x − mu)² over one run. */
CPU_AVX512_TARGET static float run_sq_avx512(const float *x, float mu, int n)
{
	__m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps(), m = _mm512_set1_ps(mu);
	int j = 0;
	for (; j + 32 <= n; j += 32) {
		__m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(x + j), m);
		__m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(x + j + 16), m);
		s0 = _mm512_add_ps(s0, _mm512_mul_ps(d0, d0));
		s1 = _mm512_add_ps(s1, _mm512_mul_ps(d1, d1));
	}
	for (; j < n; j += 16) {
		__mmask16 t = n - j >= 16 ? 0xffff : tail_lanes(n - j);
		__m512 d = _mm512_maskz_sub_ps(t, _mm512_maskz_loadu_ps(t, x + j), m);
		s0 = _mm512_add_ps(s0, _mm512_mul_ps(d, d));
	}
	return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

/* g = dy·[mask > 0] of 16 values (a NaN mask gives 0, as the scalar ?: does). */
CPU_AVX512_TARGET static inline __m512 masked_grad(__m512 dy, __m512 mask)
{
	return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(mask, _mm512_setzero_ps(), _CMP_GT_OQ), dy);
}

/* *g = dy (or dy·[mask > 0]) and *xv = x at j, lanes t; whole vectors are
 * read unmasked (masked loads are slow on this CPU). */
CPU_AVX512_TARGET
static inline void load_grad_x(__m512 *g, __m512 *xv, const float *dy, const float *mask,
			       const float *x, int j, __mmask16 t)
{
	if (t == 0xffff) {
		*g = _mm512_loadu_ps(dy + j);
		if (mask)
			*g = masked_grad(*g, _mm512_loadu_ps(mask + j));
		*xv = _mm512_loadu_ps(x + j);
	} else {
		*g = _mm512_maskz_loadu_ps(t, dy + j);
		if (mask)
			*g = masked_grad(*g, _mm512_maskz_loadu_ps(t, mask + j));
		*xv = _mm512_maskz_loadu_ps(t, x + j);
	}
}

/* Σg and Σg·x̂ over one run. */
CPU_AVX512_TARGET static void run_grad_sums_avx512(float *sg, float *sgx, const float *dy,
						   const float *mask, const float *x, float mu,
						   float rs, int n)
{
	__m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), b0 = a0, b1 = a0;
	__m512 m = _mm512_set1_ps(mu), r = _mm512_set1_ps(rs);
	for (int j = 0; j < n; j += 16) {
		__mmask16 t = n - j >= 16 ? 0xffff : tail_lanes(n - j);
		__m512 g, xv;
		load_grad_x(&g, &xv, dy, mask, x, j, t);
		__m512 gx = _mm512_mul_ps(g, _mm512_mul_ps(_mm512_sub_ps(xv, m), r));
		if (j / 16 % 2) {
			a1 = _mm512_add_ps(a1, g);
			b1 = _mm512_add_ps(b1, gx);
		} else {
			a0 = _mm512_add_ps(a0, g);
			b0 = _mm512_add_ps(b0, gx);
		}
	}
	*sg = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
	*sgx = _mm512_reduce_add_ps(_mm512_add_ps(b0, b1));
}

/* dx (+)= k·(g − a − x̂·b) over one run, g = dy or dy·[mask > 0]. */
CPU_AVX512_TARGET static void dx_run_avx512(float *dx, int accumulate, const float *dy,
					    const float *mask, const float *x, float mu, float rs,
					    float k, float a, float b, int n)
{
	__m512 m = _mm512_set1_ps(mu), r = _mm512_set1_ps(rs), kv = _mm512_set1_ps(k);
	__m512 av = _mm512_set1_ps(a), bv = _mm512_set1_ps(b);
	for (int j = 0; j < n; j += 16) {
		__mmask16 t = n - j >= 16 ? 0xffff : tail_lanes(n - j);
		__m512 g, xv, d;
		load_grad_x(&g, &xv, dy, mask, x, j, t);
		__m512 xh = _mm512_mul_ps(_mm512_mul_ps(_mm512_sub_ps(xv, m), r), bv);
		d = _mm512_mul_ps(kv, _mm512_sub_ps(_mm512_sub_ps(g, av), xh));
		if (accumulate)
			d = _mm512_add_ps(t == 0xffff ? _mm512_loadu_ps(dx + j)
						      : _mm512_maskz_loadu_ps(t, dx + j), d);
		if (t == 0xffff)
			_mm512_storeu_ps(dx + j, d);
		else
			_mm512_mask_storeu_ps(dx + j, t, d);
	}
}
#endif

/* Σ x over one run. */
static float run_sum_portable(const float *x, int n)
{
	float s = 0.0f;
	OMP(simd reduction(+ : s))
	for (int j = 0; j < n; j++)
		s += x[j];
	return s;
}

/* Σ (x − mu)² over one run. */
static float run_sq_portable(const float *x, float mu, int n)
{
	float s = 0.0f;
	OMP(simd reduction(+ : s))
	for (int j = 0; j < n; j++) {
		float d = x[j] - mu;
		s += d * d;
	}
	return s;
}

static float run_sum(const float *x, int n)
{
#if CPU_HAVE_AVX512
	if (cpu_avx512())
		return run_sum_avx512(x, n);
#endif
	return run_sum_portable(x, n);
}

static float run_sq(const float *x, float mu, int n)
{
#if CPU_HAVE_AVX512
	if (cpu_avx512())
		return run_sq_avx512(x, mu, n);
#endif
	return run_sq_portable(x, mu, n);
}

/*
 * y = (x − mean)·scale + beta over one run, plus the residual addend when
 * given, then max(·, 0) with relu: the map both modes reduce to
 * (scale = γ·rstd). Subtracting the mean first keeps a constant channel with
 * tiny variance exact, unlike x·scale + (β − mean·scale). NaN stays NaN
 * through the ReLU (v < 0 is false).
 */
static void affine_run(float *yr, const float *xr, const float *ar, float mean, float scale,
		       float beta, int HW, int relu)
{
	if (ar && relu) {
		OMP(simd)
		for (int j = 0; j < HW; j++) {
			float v = (xr[j] - mean) * scale + beta + ar[j];
			yr[j] = v < 0.0f ? 0.0f : v;
		}
	} else if (ar) {
		OMP(simd)
		for (int j = 0; j < HW; j++)
			yr[j] = (xr[j] - mean) * scale + beta + ar[j];
	} else if (relu) {
		OMP(simd)
		for (int j = 0; j < HW; j++) {
			float v = (xr[j] - mean) * scale + beta;
			yr[j] = v < 0.0f ? 0.0f : v;
		}
	} else {
		OMP(simd)
		for (int j = 0; j < HW; j++)
			yr[j] = (xr[j] - mean) * scale + beta;
	}
}

/* Channels are handled in groups of at most CB (per-channel state on the stack). */
#define CB 64

/* The affine map over channels [c0, c0 + cb), sample by sample. */
static void affine_channels(float *y, const float *x, const float *add, const float *mean,
			    const float *scale, const float *beta, int N, int C, int HW,
			    int c0, int cb, int relu)
{
	for (int i = 0; i < N; i++)
		for (int j = 0; j < cb; j++) {
			size_t o = ((size_t)i * C + c0 + j) * HW;
			affine_run(y + o, x + o, add ? add + o : NULL, mean[j], scale[j],
				   beta[c0 + j], HW, relu);
		}
}

/* Everything one BN call needs, for the per-channel-range workers. */
struct bn_job {
	float *y, *mean, *rstd, *running_mean, *running_var, *dx, *dgamma, *dbeta;
	float *coef;            /* backward without dx: k[C], a[C], b[C] of the dx map */
	const float *ab;        /* backward: given Σg/n [C] and Σg·x̂/n [C] (synchronised BN) */
	const float *run_mean, *run_m2; /* forward: the runs' statistics, [N][C], or NULL */
	const float *x, *gamma, *beta, *dy, *mask, *add;
	const float *rmean, *rvar;
	float momentum, eps;
	int N, C, HW, relu, accumulate;
};

void bn_run_stats(float *mean, float *m2, const float *r, int n)
{
	*mean = run_sum(r, n) / (float)n;
	*m2 = run_sq(r, *mean, n);
}

/* Mean and biased variance of channels [c0, c0 + cb) in one pass (above),
 * from the runs' statistics when given (the convolution before computed
 * them while its output was in cache: conv_bn_impl.h). */
static void group_stats(double *mean, double *var, const struct bn_job *jb, int c0, int cb)
{
	int C = jb->C, HW = jb->HW;
	double m2[CB], n = 0;
	for (int j = 0; j < cb; j++)
		mean[j] = m2[j] = 0;
	for (int i = 0; i < jb->N; i++, n += HW)
		for (int j = 0; j < cb; j++) {
			size_t run = (size_t)i * C + c0 + j;
			float mr, q;
			if (jb->run_mean) {
				mr = jb->run_mean[run];
				q = jb->run_m2[run];
			} else {
				bn_run_stats(&mr, &q, jb->x + run * HW, HW);
			}
			double d = (double)mr - mean[j], n2 = n + HW;
			mean[j] += d * HW / n2;
			m2[j] += (double)q + d * d * n * HW / n2;
		}
	for (int j = 0; j < cb; j++)
		var[j] = m2[j] / n;
}

static void train_channels(void *p, size_t lo, size_t hi)
{
	struct bn_job *j = p;
	double n = (double)j->N * j->HW;
	for (int c0 = (int)lo; c0 < (int)hi; c0 += CB) {
		int cb = (int)hi - c0 < CB ? (int)hi - c0 : CB;
		double mu[CB], var[CB];
		float mf[CB], scale[CB];
		group_stats(mu, var, j, c0, cb);
		for (int t = 0; t < cb; t++) {
			int c = c0 + t;
			double rs = 1.0 / sqrt(var[t] + j->eps);
			j->mean[c] = mf[t] = (float)mu[t];
			j->rstd[c] = (float)rs;
			scale[t] = (float)(j->gamma[c] * rs);
			if (j->running_mean)
				j->running_mean[c] = (float)((1.0 - j->momentum) * j->running_mean[c] +
							     j->momentum * mu[t]);
			if (j->running_var) {
				double unbiased = n > 1 ? var[t] * n / (n - 1) : var[t];
				j->running_var[c] = (float)((1.0 - j->momentum) * j->running_var[c] +
							    j->momentum * unbiased);
			}
		}
		affine_channels(j->y, j->x, j->add, mf, scale, j->beta, j->N, j->C, j->HW, c0, cb,
				j->relu);
	}
}

/* Splits the job's channels over tm: on the caller alone below PAR_MIN
 * values in total. */
static void run_channels(struct team *tm, team_range_fn *fn, struct bn_job *j)
{
	size_t min_par = (size_t)j->N * j->C * j->HW >= PAR_MIN ? 2 : (size_t)j->C + 1;
	team_for(tm, (size_t)j->C, 1, min_par, fn, j);
}

void bn_forward_train_ex(float *y, float *mean, float *rstd, const float *x,
			 const float *gamma, const float *beta,
			 float *running_mean, float *running_var,
			 float momentum, float eps, const struct bn_shape *s, int relu,
			 const float *add, struct team *tm)
{
	bn_forward_train_runs(y, mean, rstd, x, gamma, beta, running_mean, running_var,
			      momentum, eps, s, relu, add, NULL, NULL, tm);
}

void bn_forward_train_runs(float *y, float *mean, float *rstd, const float *x,
			   const float *gamma, const float *beta, float *running_mean,
			   float *running_var, float momentum, float eps, const struct bn_shape *s,
			   int relu, const float *add, const float *run_mean, const float *run_m2,
			   struct team *tm)
{
	struct bn_job j = { .y = y, .mean = mean, .rstd = rstd, .running_mean = running_mean,
			    .running_var = running_var, .x = x, .gamma = gamma, .beta = beta,
			    .add = add, .momentum = momentum, .eps = eps, .N = s->N, .C = s->C,
			    .HW = s->HW, .relu = relu, .run_mean = run_mean, .run_m2 = run_m2 };
	run_channels(tm, train_channels, &j);
}

void isif_bn_forward_train(float *y, float *mean, float *rstd, const float *x,
			   const float *gamma, const float *beta,
			   float *running_mean, float *running_var,
			   float momentum, float eps, int N, int C, int HW)
{
	struct bn_shape s = { N, C, HW };
	bn_forward_train_ex(y, mean, rstd, x, gamma, beta, running_mean, running_var,
			    momentum, eps, &s, 0, NULL, NULL);
}

static void eval_channels(void *p, size_t lo, size_t hi)
{
	struct bn_job *j = p;
	for (int c0 = (int)lo; c0 < (int)hi; c0 += CB) {
		int cb = (int)hi - c0 < CB ? (int)hi - c0 : CB;
		float scale[CB];
		for (int t = 0; t < cb; t++)
			scale[t] = (float)(j->gamma[c0 + t] / sqrt((double)j->rvar[c0 + t] + j->eps));
		affine_channels(j->y, j->x, j->add, j->rmean + c0, scale, j->beta, j->N, j->C, j->HW,
				c0, cb, j->relu);
	}
}

void bn_forward_eval_ex(float *y, const float *x, const float *gamma,
			const float *beta, const float *running_mean,
			const float *running_var, float eps, const struct bn_shape *s, int relu,
			const float *add, struct team *tm)
{
	struct bn_job j = { .y = y, .x = x, .gamma = gamma, .beta = beta, .add = add,
			    .rmean = running_mean, .rvar = running_var, .eps = eps, .N = s->N,
			    .C = s->C, .HW = s->HW, .relu = relu };
	run_channels(tm, eval_channels, &j);
}

void isif_bn_forward_eval(float *y, const float *x, const float *gamma,
			  const float *beta, const float *running_mean,
			  const float *running_var, float eps, int N, int C, int HW)
{
	struct bn_shape s = { N, C, HW };
	bn_forward_eval_ex(y, x, gamma, beta, running_mean, running_var, eps, &s, 0, NULL, NULL);
}

/* Σg and Σg·x̂ over one run. */
static void run_grad_sums_portable(float *sg, float *sgx, const float *dy, const float *mask,
				   const float *x, float mu, float rs, int n)
{
	float a = 0.0f, b = 0.0f;
	if (mask) {
		OMP(simd reduction(+ : a, b))
		for (int j = 0; j < n; j++) {
			float g = mask[j] > 0.0f ? dy[j] : 0.0f;
			a += g;
			b += g * ((x[j] - mu) * rs);
		}
	} else {
		OMP(simd reduction(+ : a, b))
		for (int j = 0; j < n; j++) {
			a += dy[j];
			b += dy[j] * ((x[j] - mu) * rs);
		}
	}
	*sg = a;
	*sgx = b;
}

/* dx (+)= k·(g − a − x̂·b) over one run, g = dy or dy·[mask > 0]. */
static void dx_run_portable(float *dx, int accumulate, const float *dy, const float *mask,
			    const float *x, float mu, float rs, float k, float a, float b, int n)
{
	if (mask && accumulate) {
		OMP(simd)
		for (int j = 0; j < n; j++)
			dx[j] += k * ((mask[j] > 0.0f ? dy[j] : 0.0f) - a - (x[j] - mu) * rs * b);
	} else if (mask) {
		OMP(simd)
		for (int j = 0; j < n; j++)
			dx[j] = k * ((mask[j] > 0.0f ? dy[j] : 0.0f) - a - (x[j] - mu) * rs * b);
	} else if (accumulate) {
		OMP(simd)
		for (int j = 0; j < n; j++)
			dx[j] += k * (dy[j] - a - (x[j] - mu) * rs * b);
	} else {
		OMP(simd)
		for (int j = 0; j < n; j++)
			dx[j] = k * (dy[j] - a - (x[j] - mu) * rs * b);
	}
}

static void run_grad_sums(float *sg, float *sgx, const float *dy, const float *mask,
			  const float *x, float mu, float rs, int n)
{
#if CPU_HAVE_AVX512
	if (cpu_avx512()) {
		run_grad_sums_avx512(sg, sgx, dy, mask, x, mu, rs, n);
		return;
	}
#endif
	run_grad_sums_portable(sg, sgx, dy, mask, x, mu, rs, n);
}

static void dx_run(float *dx, int accumulate, const float *dy, const float *mask,
		   const float *x, float mu, float rs, float k, float a, float b, int n)
{
#if CPU_HAVE_AVX512
	if (cpu_avx512()) {
		dx_run_avx512(dx, accumulate, dy, mask, x, mu, rs, k, a, b, n);
		return;
	}
#endif
	dx_run_portable(dx, accumulate, dy, mask, x, mu, rs, k, a, b, n);
}

/*
 * With g = dy (or dy·[mask > 0]) and x̂ = (x − mean)·rstd:
 *   dβ += Σg,  dγ += Σ g·x̂,
 *   dx = γ·rstd/n · (n·g − Σg − x̂·Σ(g·x̂))   (added to dx with accumulate)
 */
static void backward_channels(void *p, size_t lo, size_t hi)
{
	struct bn_job *j = p;
	int N = j->N, C = j->C, HW = j->HW;
	double n = (double)N * HW;
	for (int c0 = (int)lo; c0 < (int)hi; c0 += CB) {
		int cb = (int)hi - c0 < CB ? (int)hi - c0 : CB;
		double sg[CB], sgx[CB];
		float k[CB], a[CB], b[CB];
		for (int t = 0; t < cb; t++)
			sg[t] = sgx[t] = 0;
		if (j->ab) {   /* the sums are given: dx only */
			for (int t = 0; t < cb; t++) {
				k[t] = j->gamma[c0 + t] * j->rstd[c0 + t];
				a[t] = j->ab[c0 + t];
				b[t] = j->ab[C + c0 + t];
			}
			goto dx;
		}
		for (int i = 0; i < N; i++)
			for (int t = 0; t < cb; t++) {
				size_t o = ((size_t)i * C + c0 + t) * HW;
				float ra, rb;
				run_grad_sums(&ra, &rb, j->dy + o, j->mask ? j->mask + o : NULL, j->x + o,
					      j->mean[c0 + t], j->rstd[c0 + t], HW);
				sg[t] += ra;
				sgx[t] += rb;
			}
		for (int t = 0; t < cb; t++) {
			int c = c0 + t;
			if (j->dbeta)
				j->dbeta[c] += (float)sg[t];
			if (j->dgamma)
				j->dgamma[c] += (float)sgx[t];
			/* γ·rstd/n·(n·g − Σg − x̂·Σgx̂) = (γ·rstd)·(g − Σg/n − x̂·Σgx̂/n) */
			k[t] = j->gamma[c] * j->rstd[c];
			a[t] = (float)(sg[t] / n);
			b[t] = (float)(sgx[t] / n);
			if (j->coef) {
				j->coef[c] = k[t];
				j->coef[C + c] = a[t];
				j->coef[2 * C + c] = b[t];
			}
		}
dx:
		if (!j->dx)
			continue;
		/* last samples first: the end of the sums pass may still be cached */
		for (int i = N - 1; i >= 0; i--)
			for (int t = 0; t < cb; t++) {
				size_t o = ((size_t)i * C + c0 + t) * HW;
				dx_run(j->dx + o, j->accumulate, j->dy + o, j->mask ? j->mask + o : NULL,
				       j->x + o, j->mean[c0 + t], j->rstd[c0 + t], k[t], a[t], b[t], HW);
			}
	}
}

void bn_backward_ex(float *dx, int accumulate, float *dgamma, float *dbeta,
		    const float *dy, const float *mask, const float *x,
		    const float *mean, const float *rstd, const float *gamma,
		    const struct bn_shape *s, struct team *tm)
{
	struct bn_job j = { .dx = dx, .dgamma = dgamma, .dbeta = dbeta, .dy = dy, .mask = mask,
			    .x = x, .mean = (float *)mean, .rstd = (float *)rstd, .gamma = gamma,
			    .N = s->N, .C = s->C, .HW = s->HW, .accumulate = accumulate };
	run_channels(tm, backward_channels, &j);
}

void bn_backward_dx_ex(float *dx, int accumulate, const float *dy, const float *mask,
		       const float *x, const float *mean, const float *rstd, const float *gamma,
		       const float *ab, const struct bn_shape *s, struct team *tm)
{
	struct bn_job j = { .dx = dx, .dy = dy, .mask = mask, .x = x, .mean = (float *)mean,
			    .rstd = (float *)rstd, .gamma = gamma, .ab = ab, .N = s->N, .C = s->C,
			    .HW = s->HW, .accumulate = accumulate };
	run_channels(tm, backward_channels, &j);
}

void isif_bn_backward(float *dx, float *dgamma, float *dbeta, const float *dy,
		      const float *x, const float *mean, const float *rstd,
		      const float *gamma, int N, int C, int HW)
{
	struct bn_shape s = { N, C, HW };
	bn_backward_ex(dx, 0, dgamma, dbeta, dy, NULL, x, mean, rstd, gamma, &s, NULL);
}

void bn_backward_map(struct bn_dx_map *map, float *coef, float *dgamma, float *dbeta,
		     const float *dy, const float *mask, const float *x, const float *mean,
		     const float *rstd, const float *gamma, const struct bn_shape *s,
		     struct team *tm)
{
	struct bn_job j = { .coef = coef, .dgamma = dgamma, .dbeta = dbeta, .dy = dy,
			    .mask = mask, .x = x, .mean = (float *)mean, .rstd = (float *)rstd,
			    .gamma = gamma, .N = s->N, .C = s->C, .HW = s->HW };
	run_channels(tm, backward_channels, &j);
	struct bn_dx_map m = { dy, mask, x, mean, rstd, coef, s->C, s->HW };
	*map = m;
}

/* The second pass of backward_channels for one run, the same operations. */
void bn_dx_map_run(float *dst, const struct bn_dx_map *map, int n, int c, int j0, int len)
{
	size_t o = ((size_t)n * map->C + c) * map->HW + j0;
	dx_run(dst, 0, map->dy + o, map->mask ? map->mask + o : NULL, map->x + o, map->mean[c],
	       map->rstd[c], map->coef[c], map->coef[map->C + c], map->coef[2 * map->C + c], len);
}

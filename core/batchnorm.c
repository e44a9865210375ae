/*
 * core/batchnorm.c — batch normalisation over (N, H·W) per channel with
 * PyTorch's BatchNorm2d semantics, on x[N, C, HW] float32: train-mode
 * forward (batch statistics, running-statistics update), eval-mode forward
 * (running statistics) and train-mode backward; each optionally fused with
 * the ReLU that follows it (ops_impl.h). Channels are split over a thread
 * team; per-channel sums are float within a run of HW values (vectorised)
 * and double across runs.
 *
 * With n = N·HW values per channel c:
 *   mean = Σx/n,  var = Σ(x − mean)²/n (biased),  rstd = 1/√(var + eps)
 *   x̂ = (x − mean)·rstd,  y = γ·x̂ + β   (fused: y = max(γ·x̂ + β, 0))
 *   running_mean = (1 − m)·running_mean + m·mean
 *   running_var  = (1 − m)·running_var  + m·var·n/(n − 1)   (unbiased)
 * PyTorch refuses n = 1 in train mode; here the unbiased factor is then
 * taken as 1 so nothing divides by zero.
 */
#include "isif/ops.h"
#include "ops_impl.h"
#include "par_impl.h"
#include "team_impl.h"

#include <math.h>

/* Σ x over one run. */
static float run_sum(const float *x, int n)
{
	float s = 0.0f;
	OMP(simd reduction(+ : s))
	for (int j = 0; j < n; j++)
		s += x[j];
	return s;
}

/* Σ (x − mu)² over one run. */
static float run_sq(const float *x, float mu, int n)
{
	float s = 0.0f;
	OMP(simd reduction(+ : s))
	for (int j = 0; j < n; j++) {
		float d = x[j] - mu;
		s += d * d;
	}
	return s;
}

/* Mean and biased variance of channel c, two passes. */
static void channel_stats(double *mean, double *var, const float *x, int N,
			  int C, int HW, int c)
{
	double n = (double)N * HW, s = 0, ss = 0;
	for (int i = 0; i < N; i++)
		s += run_sum(x + ((size_t)i * C + c) * HW, HW);
	double mu = s / n;
	for (int i = 0; i < N; i++)
		ss += run_sq(x + ((size_t)i * C + c) * HW, (float)mu, HW);
	*mean = mu;
	*var = ss / n;
}

/*
 * y = (x − mean)·scale + beta over channel c, plus the residual addend when
 * given, then max(·, 0) with relu: the map both modes reduce to
 * (scale = γ·rstd). Subtracting the mean first keeps a constant channel with
 * tiny variance exact, unlike x·scale + (β − mean·scale). NaN stays NaN
 * through the ReLU (v < 0 is false).
 */
static void channel_affine(float *y, const float *x, const float *add, float mean,
			   float scale, float beta, int N, int C, int HW, int c, int relu)
{
	for (int i = 0; i < N; i++) {
		size_t o = ((size_t)i * C + c) * HW;
		const float *xr = x + o, *ar = add ? add + o : NULL;
		float *yr = y + o;
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
}

/* Everything one BN call needs, for the per-channel-range workers. */
struct bn_job {
	float *y, *mean, *rstd, *running_mean, *running_var, *dx, *dgamma, *dbeta;
	const float *x, *gamma, *beta, *dy, *mask, *add;
	const float *rmean, *rvar;
	float momentum, eps;
	int N, C, HW, relu, accumulate;
};

static void train_channels(void *p, size_t lo, size_t hi)
{
	struct bn_job *j = p;
	double n = (double)j->N * j->HW;
	for (int c = (int)lo; c < (int)hi; c++) {
		double mu, var;
		channel_stats(&mu, &var, j->x, j->N, j->C, j->HW, c);
		double rs = 1.0 / sqrt(var + j->eps);
		j->mean[c] = (float)mu;
		j->rstd[c] = (float)rs;
		channel_affine(j->y, j->x, j->add, (float)mu, (float)(j->gamma[c] * rs), j->beta[c],
			       j->N, j->C, j->HW, c, j->relu);
		if (j->running_mean)
			j->running_mean[c] = (float)((1.0 - j->momentum) * j->running_mean[c] +
						     j->momentum * mu);
		if (j->running_var) {
			double unbiased = n > 1 ? var * n / (n - 1) : var;
			j->running_var[c] = (float)((1.0 - j->momentum) * j->running_var[c] +
						    j->momentum * unbiased);
		}
	}
}

/* Channel counts below this many values in total run on the caller. */
static size_t par_min_channels(int C, int N, int HW)
{
	return (size_t)N * C * HW >= PAR_MIN ? 2 : (size_t)C + 1;
}

void bn_forward_train_ex(float *y, float *mean, float *rstd, const float *x,
			 const float *gamma, const float *beta,
			 float *running_mean, float *running_var,
			 float momentum, float eps, int N, int C, int HW, int relu,
			 const float *add, struct team *tm)
{
	struct bn_job j = { .y = y, .mean = mean, .rstd = rstd, .running_mean = running_mean,
			    .running_var = running_var, .x = x, .gamma = gamma, .beta = beta,
			    .add = add, .momentum = momentum, .eps = eps, .N = N, .C = C, .HW = HW,
			    .relu = relu };
	team_for(tm, (size_t)C, 1, par_min_channels(C, N, HW), train_channels, &j);
}

void isif_bn_forward_train(float *y, float *mean, float *rstd, const float *x,
			   const float *gamma, const float *beta,
			   float *running_mean, float *running_var,
			   float momentum, float eps, int N, int C, int HW)
{
	bn_forward_train_ex(y, mean, rstd, x, gamma, beta, running_mean, running_var,
			    momentum, eps, N, C, HW, 0, NULL, NULL);
}

static void eval_channels(void *p, size_t lo, size_t hi)
{
	struct bn_job *j = p;
	for (int c = (int)lo; c < (int)hi; c++) {
		double scale = j->gamma[c] / sqrt((double)j->rvar[c] + j->eps);
		channel_affine(j->y, j->x, j->add, j->rmean[c], (float)scale, j->beta[c], j->N,
			       j->C, j->HW, c, j->relu);
	}
}

void bn_forward_eval_ex(float *y, const float *x, const float *gamma,
			const float *beta, const float *running_mean,
			const float *running_var, float eps, int N, int C, int HW, int relu,
			const float *add, struct team *tm)
{
	struct bn_job j = { .y = y, .x = x, .gamma = gamma, .beta = beta, .add = add,
			    .rmean = running_mean, .rvar = running_var, .eps = eps, .N = N, .C = C,
			    .HW = HW, .relu = relu };
	team_for(tm, (size_t)C, 1, par_min_channels(C, N, HW), eval_channels, &j);
}

void isif_bn_forward_eval(float *y, const float *x, const float *gamma,
			  const float *beta, const float *running_mean,
			  const float *running_var, float eps, int N, int C, int HW)
{
	bn_forward_eval_ex(y, x, gamma, beta, running_mean, running_var, eps, N, C, HW, 0, NULL,
			   NULL);
}

/* Σg and Σg·x̂ over one run. */
static void run_grad_sums(float *sg, float *sgx, const float *dy, const float *mask,
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
static void dx_run(float *dx, int accumulate, const float *dy, const float *mask,
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
	for (int c = (int)lo; c < (int)hi; c++) {
		double sg = 0, sgx = 0;
		float mu = j->mean[c], rs = j->rstd[c];
		for (int i = 0; i < N; i++) {
			size_t o = ((size_t)i * C + c) * HW;
			float a, b;
			run_grad_sums(&a, &b, j->dy + o, j->mask ? j->mask + o : NULL, j->x + o,
				      mu, rs, HW);
			sg += a;
			sgx += b;
		}
		if (j->dbeta)
			j->dbeta[c] += (float)sg;
		if (j->dgamma)
			j->dgamma[c] += (float)sgx;
		if (!j->dx)
			continue;
		/* γ·rstd/n·(n·g − Σg − x̂·Σgx̂) = (γ·rstd)·(g − Σg/n − x̂·Σgx̂/n) */
		float k = j->gamma[c] * rs;
		float a = (float)(sg / n), b = (float)(sgx / n);
		for (int i = 0; i < N; i++) {
			size_t o = ((size_t)i * C + c) * HW;
			dx_run(j->dx + o, j->accumulate, j->dy + o, j->mask ? j->mask + o : NULL,
			       j->x + o, mu, rs, k, a, b, HW);
		}
	}
}

void bn_backward_ex(float *dx, int accumulate, float *dgamma, float *dbeta,
		    const float *dy, const float *mask, const float *x,
		    const float *mean, const float *rstd, const float *gamma,
		    int N, int C, int HW, struct team *tm)
{
	struct bn_job j = { .dx = dx, .dgamma = dgamma, .dbeta = dbeta, .dy = dy, .mask = mask,
			    .x = x, .mean = (float *)mean, .rstd = (float *)rstd, .gamma = gamma,
			    .N = N, .C = C, .HW = HW, .accumulate = accumulate };
	team_for(tm, (size_t)C, 1, par_min_channels(C, N, HW), backward_channels, &j);
}

void isif_bn_backward(float *dx, float *dgamma, float *dbeta, const float *dy,
		      const float *x, const float *mean, const float *rstd,
		      const float *gamma, int N, int C, int HW)
{
	bn_backward_ex(dx, 0, dgamma, dbeta, dy, NULL, x, mean, rstd, gamma, N, C, HW, NULL);
}

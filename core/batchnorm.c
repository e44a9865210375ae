/*
 * core/batchnorm.c — batch normalisation over (N, H·W) per channel with
 * PyTorch's BatchNorm2d semantics, on x[N, C, HW] float32: train-mode
 * forward (batch statistics, running-statistics update), eval-mode forward
 * (running statistics) and train-mode backward. Channel sums in double.
 *
 * With n = N·HW values per channel c:
 *   mean = Σx/n,  var = Σ(x − mean)²/n (biased),  rstd = 1/√(var + eps)
 *   x̂ = (x − mean)·rstd,  y = γ·x̂ + β
 *   running_mean = (1 − m)·running_mean + m·mean
 *   running_var  = (1 − m)·running_var  + m·var·n/(n − 1)   (unbiased)
 * PyTorch refuses n = 1 in train mode; here the unbiased factor is then
 * taken as 1 so nothing divides by zero.
 */
#include "isif/ops.h"

#include <math.h>

/* Mean and biased variance of channel c, two passes in double. */
static void channel_stats(double *mean, double *var, const float *x, int N,
			  int C, int HW, int c)
{
	double n = (double)N * HW, s = 0, ss = 0;
	for (int i = 0; i < N; i++) {
		const float *xc = x + ((size_t)i * C + c) * HW;
		for (int j = 0; j < HW; j++)
			s += xc[j];
	}
	double mu = s / n;
	for (int i = 0; i < N; i++) {
		const float *xc = x + ((size_t)i * C + c) * HW;
		for (int j = 0; j < HW; j++) {
			double d = xc[j] - mu;
			ss += d * d;
		}
	}
	*mean = mu;
	*var = ss / n;
}

/*
 * y = (x − mean)·scale + beta over channel c, the map both modes reduce to
 * (scale = γ·rstd). Subtracting the mean first keeps a constant channel with
 * tiny variance exact, unlike x·scale + (β − mean·scale).
 */
static void channel_affine(float *y, const float *x, float mean, float scale,
			   float beta, int N, int C, int HW, int c)
{
	for (int i = 0; i < N; i++) {
		size_t o = ((size_t)i * C + c) * HW;
		for (int j = 0; j < HW; j++)
			y[o + j] = (x[o + j] - mean) * scale + beta;
	}
}

void isif_bn_forward_train(float *y, float *mean, float *rstd, const float *x,
			   const float *gamma, const float *beta,
			   float *running_mean, float *running_var,
			   float momentum, float eps, int N, int C, int HW)
{
	double n = (double)N * HW;
	for (int c = 0; c < C; c++) {
		double mu, var;
		channel_stats(&mu, &var, x, N, C, HW, c);
		double rs = 1.0 / sqrt(var + eps);
		mean[c] = (float)mu;
		rstd[c] = (float)rs;
		channel_affine(y, x, (float)mu, (float)(gamma[c] * rs), beta[c],
			       N, C, HW, c);
		if (running_mean)
			running_mean[c] = (float)((1.0 - momentum) * running_mean[c] +
						  momentum * mu);
		if (running_var) {
			double unbiased = n > 1 ? var * n / (n - 1) : var;
			running_var[c] = (float)((1.0 - momentum) * running_var[c] +
						 momentum * unbiased);
		}
	}
}

void isif_bn_forward_eval(float *y, const float *x, const float *gamma,
			  const float *beta, const float *running_mean,
			  const float *running_var, float eps, int N, int C, int HW)
{
	for (int c = 0; c < C; c++) {
		double scale = gamma[c] / sqrt((double)running_var[c] + eps);
		channel_affine(y, x, running_mean[c], (float)scale, beta[c], N, C, HW, c);
	}
}

/*
 * With g = dy and x̂ = (x − mean)·rstd:
 *   dβ += Σg,  dγ += Σ g·x̂,
 *   dx = γ·rstd/n · (n·g − Σg − x̂·Σ(g·x̂))
 */
void isif_bn_backward(float *dx, float *dgamma, float *dbeta, const float *dy,
		      const float *x, const float *mean, const float *rstd,
		      const float *gamma, int N, int C, int HW)
{
	double n = (double)N * HW;
	for (int c = 0; c < C; c++) {
		double sg = 0, sgx = 0;
		float mu = mean[c], rs = rstd[c];
		for (int i = 0; i < N; i++) {
			size_t o = ((size_t)i * C + c) * HW;
			for (int j = 0; j < HW; j++) {
				float xh = (x[o + j] - mu) * rs;
				sg += dy[o + j];
				sgx += (double)dy[o + j] * xh;
			}
		}
		if (dbeta)
			dbeta[c] += (float)sg;
		if (dgamma)
			dgamma[c] += (float)sgx;
		if (!dx)
			continue;
		/* γ·rstd/n·(n·g − Σg − x̂·Σgx̂) = (γ·rstd)·(g − Σg/n − x̂·Σgx̂/n) */
		float k = gamma[c] * rs;
		float a = (float)(sg / n), b = (float)(sgx / n);
		for (int i = 0; i < N; i++) {
			size_t o = ((size_t)i * C + c) * HW;
			for (int j = 0; j < HW; j++) {
				float xh = (x[o + j] - mu) * rs;
				dx[o + j] = k * (dy[o + j] - a - xh * b);
			}
		}
	}
}

/*
 * core/nn/l2norm.c — row-wise L2 normalisation of x[N, D] (the embedding head,
 * PyTorch's F.normalize(x, dim=1) with eps 1e-12): y = x / max(‖x‖, 1e-12).
 */
#include "isif/nn/ops.h"
#include "nn/ops_impl.h"

#include <math.h>

#define L2NORM_MIN 1e-12

void isif_l2norm_forward(float *y, float *norm, const float *x, int N, int D)
{
	for (int i = 0; i < N; i++) {
		const float *xr = x + (size_t)i * D;
		float *yr = y + (size_t)i * D;
		double ss = 0;
		for (int j = 0; j < D; j++)
			ss += (double)xr[j] * xr[j];
		double nr = fmax(sqrt(ss), L2NORM_MIN);
		norm[i] = (float)nr;
		float inv = (float)(1.0 / nr);
		for (int j = 0; j < D; j++)
			yr[j] = xr[j] * inv;
	}
}

/* dx = (dy − y·(yᵀdy)) / ‖x‖: the projection of dy off y, scaled. */
void isif_l2norm_backward(float *dx, const float *dy, const float *y,
			  const float *norm, int N, int D)
{
	l2norm_backward_ex(dx, 0, dy, y, norm, N, D);
}

/* As above; dx += when accumulate. */
void l2norm_backward_ex(float *dx, int accumulate, const float *dy, const float *y,
			const float *norm, int N, int D)
{
	for (int i = 0; i < N; i++) {
		const float *yr = y + (size_t)i * D, *gr = dy + (size_t)i * D;
		float *dxr = dx + (size_t)i * D;
		double dot = 0;
		for (int j = 0; j < D; j++)
			dot += (double)yr[j] * gr[j];
		float inv = (float)(1.0 / norm[i]), d = (float)dot;
		for (int j = 0; j < D; j++)
			dxr[j] = (accumulate ? dxr[j] : 0.0f) + (gr[j] - yr[j] * d) * inv;
	}
}

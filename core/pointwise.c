/*
 * core/pointwise.c — elementwise operations on flat float32 arrays: ReLU
 * forward/backward and the residual addition. In-place use is allowed where
 * isif/ops.h says so (every element is read before it is written).
 */
#include "isif/ops.h"

/* y = max(x, 0); NaN stays NaN as in PyTorch (x > 0 is false, x < 0 too). */
void isif_relu_forward(float *y, const float *x, size_t n)
{
	for (size_t i = 0; i < n; i++)
		y[i] = x[i] < 0.0f ? 0.0f : x[i];
}

/* dx = dy·[y > 0]: the subgradient at 0 is 0, as PyTorch's threshold_backward. */
void isif_relu_backward(float *dx, const float *dy, const float *y, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

/* y = a + b; its gradient passes dy unchanged to both a and b. */
void isif_add_forward(float *y, const float *a, const float *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		y[i] = a[i] + b[i];
}

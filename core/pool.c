/*
 * core/pool.c — the two poolings the models use, on NCHW float32:
 * 2×2 max-pool with stride 2 (floor mode: a trailing odd row or column is
 * dropped, as PyTorch's MaxPool2d(2)) and global average pooling.
 * Not a general pooling layer (no other kernel, stride or padding).
 */
#include "isif/ops.h"

#include <math.h>
#include <string.h>

/*
 * Window offsets 0..3 are (0,0), (0,1), (1,0), (1,1) in row-major order. The
 * first maximum in that order wins ties (strict >); a NaN wins over numbers,
 * as in PyTorch's CPU kernel, so NaNs propagate.
 */
void isif_maxpool2_forward(float *y, uint8_t *argmax, const float *x,
			   int N, int C, int H, int W)
{
	int P = H / 2, Q = W / 2;
	for (size_t nc = 0; nc < (size_t)N * C; nc++) {
		const float *xp = x + nc * H * W;
		float *yp = y + nc * P * Q;
		uint8_t *ap = argmax + nc * P * Q;
		for (int p = 0; p < P; p++) {
			const float *r0 = xp + (size_t)(2 * p) * W, *r1 = r0 + W;
			for (int q = 0; q < Q; q++) {
				float v[4] = { r0[2 * q], r0[2 * q + 1], r1[2 * q], r1[2 * q + 1] };
				int best = 0;
				for (int k = 1; k < 4; k++)
					if (v[k] > v[best] || isnan(v[k]))
						best = k;
				yp[p * Q + q] = v[best];
				ap[p * Q + q] = (uint8_t)best;
			}
		}
	}
}

void isif_maxpool2_backward(float *dx, const float *dy, const uint8_t *argmax,
			    int N, int C, int H, int W)
{
	int P = H / 2, Q = W / 2;
	memset(dx, 0, sizeof(float) * (size_t)N * C * H * W);
	for (size_t nc = 0; nc < (size_t)N * C; nc++) {
		float *dxp = dx + nc * H * W;
		const float *dyp = dy + nc * P * Q;
		const uint8_t *ap = argmax + nc * P * Q;
		for (int p = 0; p < P; p++) {
			for (int q = 0; q < Q; q++) {
				int a = ap[p * Q + q] & 3;
				dxp[(size_t)(2 * p + (a >> 1)) * W + 2 * q + (a & 1)] = dyp[p * Q + q];
			}
		}
	}
}

/* y[n, c] = Σ_j x[n, c, j] / HW, summed in double. */
void isif_avgpool_forward(float *y, const float *x, int N, int C, int HW)
{
	for (size_t nc = 0; nc < (size_t)N * C; nc++) {
		const float *xp = x + nc * HW;
		double s = 0;
		for (int j = 0; j < HW; j++)
			s += xp[j];
		y[nc] = (float)(s / HW);
	}
}

void isif_avgpool_backward(float *dx, const float *dy, int N, int C, int HW)
{
	for (size_t nc = 0; nc < (size_t)N * C; nc++) {
		float g = dy[nc] / (float)HW;
		float *dxp = dx + nc * HW;
		for (int j = 0; j < HW; j++)
			dxp[j] = g;
	}
}

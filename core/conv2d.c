/*
 * core/conv2d.c — 2-D convolution (no bias, zero padding, any kernel R×S,
 * stride and padding) forward and backward on NCHW float32, by im2col and
 * one row-major GEMM per sample (the darknet scheme). Not for pooling.
 *
 * Letters: x[N,C,H,W], w[K,C,R,S], y[N,K,P,Q], P = (H+2·pad−R)/stride+1.
 * The column matrix of one sample is col[C·R·S, P·Q] with
 *   col[(c·R + r)·S + s, p·Q + q] = x[c, p·stride − pad + r, q·stride − pad + s]
 * (0 outside the image), so that
 *   forward:  y_n[K, PQ]   = w[K, CRS] · col[CRS, PQ]
 *   dw:       dw[K, CRS]  += dy_n[K, PQ] · colᵀ[PQ, CRS]
 *   dx:       dcol[CRS,PQ] = wᵀ[CRS, K] · dy_n[K, PQ], then col2im sums every
 *             column entry back into the input pixel it was copied from.
 * A 1×1, stride-1, pad-0 convolution has col = x_n[C, HW] already, so it
 * skips im2col/col2im and needs no workspace.
 *
 * The workspace is one sample's column buffer (C·R·S·P·Q floats): backward
 * builds col, uses it for dw, then overwrites it with dcol for dx.
 */
#include "isif/ops.h"

#include <cblas.h>
#include <string.h>

static int is_pointwise(int R, int S, int stride, int pad)
{
	return R == 1 && S == 1 && stride == 1 && pad == 0;
}

size_t isif_conv2d_workspace(int N, int C, int H, int W, int K, int R, int S,
			     int stride, int pad)
{
	if (is_pointwise(R, S, stride, pad))
		return 0;
	size_t P = (size_t)isif_conv_out(H, R, stride, pad);
	size_t Q = (size_t)isif_conv_out(W, S, stride, pad);
	return (size_t)C * R * S * P * Q;
}

/*
 * Output columns q whose input column q·stride − pad + s lies inside
 * [0, W): q in [*lo, *hi). Computed once per kernel column s so the inner
 * loops carry no bounds tests.
 */
static void valid_range(int *lo, int *hi, int s, int stride, int pad, int W, int Q)
{
	int a = pad - s; /* need q·stride ≥ pad − s */
	int l = a <= 0 ? 0 : (a + stride - 1) / stride;
	int b = W - 1 + pad - s; /* need q·stride ≤ W − 1 + pad − s */
	int h = b < 0 ? 0 : b / stride + 1;
	if (h > Q)
		h = Q;
	if (l > h)
		l = h;
	*lo = l;
	*hi = h;
}

/* col[CRS, PQ] from one sample x[C, H, W]. */
static void im2col(float *col, const float *x, int C, int H, int W, int R,
		   int S, int stride, int pad, int P, int Q)
{
	for (int c = 0; c < C; c++) {
		const float *xc = x + (size_t)c * H * W;
		for (int r = 0; r < R; r++) {
			for (int s = 0; s < S; s++) {
				float *row = col + ((size_t)(c * R + r) * S + s) * P * Q;
				int lo, hi;
				valid_range(&lo, &hi, s, stride, pad, W, Q);
				for (int p = 0; p < P; p++) {
					float *out = row + (size_t)p * Q;
					int ih = p * stride - pad + r;
					if (ih < 0 || ih >= H) {
						memset(out, 0, sizeof(float) * Q);
						continue;
					}
					/* input column of q is q·stride + off, ≥ 0 for q ≥ lo */
					const float *in = xc + (size_t)ih * W;
					int off = s - pad;
					memset(out, 0, sizeof(float) * lo);
					if (stride == 1) {
						memcpy(out + lo, in + (lo + off), sizeof(float) * (hi - lo));
					} else {
						for (int q = lo; q < hi; q++)
							out[q] = in[q * stride + off];
					}
					memset(out + hi, 0, sizeof(float) * (Q - hi));
				}
			}
		}
	}
}

/* dx[C, H, W] = Σ over every column entry copied from that pixel (overwrites). */
static void col2im(float *dx, const float *col, int C, int H, int W, int R,
		   int S, int stride, int pad, int P, int Q)
{
	memset(dx, 0, sizeof(float) * (size_t)C * H * W);
	for (int c = 0; c < C; c++) {
		float *dxc = dx + (size_t)c * H * W;
		for (int r = 0; r < R; r++) {
			for (int s = 0; s < S; s++) {
				const float *row = col + ((size_t)(c * R + r) * S + s) * P * Q;
				int lo, hi;
				valid_range(&lo, &hi, s, stride, pad, W, Q);
				for (int p = 0; p < P; p++) {
					int ih = p * stride - pad + r;
					if (ih < 0 || ih >= H)
						continue;
					const float *in = row + (size_t)p * Q;
					float *out = dxc + (size_t)ih * W;
					int off = s - pad;
					for (int q = lo; q < hi; q++)
						out[q * stride + off] += in[q];
				}
			}
		}
	}
}

void isif_conv2d_forward(float *y, const float *x, const float *w,
			 int N, int C, int H, int W, int K, int R, int S,
			 int stride, int pad, float *ws)
{
	int P = isif_conv_out(H, R, stride, pad), Q = isif_conv_out(W, S, stride, pad);
	int CRS = C * R * S, PQ = P * Q;
	int pointwise = is_pointwise(R, S, stride, pad);

	for (int n = 0; n < N; n++) {
		const float *xn = x + (size_t)n * C * H * W;
		const float *col = xn;
		if (!pointwise) {
			im2col(ws, xn, C, H, W, R, S, stride, pad, P, Q);
			col = ws;
		}
		/* y_n[K, PQ] = w[K, CRS] · col[CRS, PQ] */
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, K, PQ, CRS,
			    1.0f, w, CRS, col, PQ, 0.0f, y + (size_t)n * K * PQ, PQ);
	}
}

void isif_conv2d_backward(float *dx, float *dw, const float *dy,
			  const float *x, const float *w,
			  int N, int C, int H, int W, int K, int R, int S,
			  int stride, int pad, float *ws)
{
	int P = isif_conv_out(H, R, stride, pad), Q = isif_conv_out(W, S, stride, pad);
	int CRS = C * R * S, PQ = P * Q;
	int pointwise = is_pointwise(R, S, stride, pad);

	for (int n = 0; n < N; n++) {
		const float *xn = x + (size_t)n * C * H * W;
		const float *dyn = dy + (size_t)n * K * PQ;
		float *dxn = dx ? dx + (size_t)n * C * H * W : NULL;

		if (dw) {
			const float *col = xn;
			if (!pointwise) {
				im2col(ws, xn, C, H, W, R, S, stride, pad, P, Q);
				col = ws;
			}
			/* dw[K, CRS] += dy_n[K, PQ] · colᵀ[PQ, CRS] */
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, K, CRS, PQ,
				    1.0f, dyn, PQ, col, PQ, 1.0f, dw, CRS);
		}
		if (!dxn)
			continue;
		/* dcol[CRS, PQ] = wᵀ[CRS, K] · dy_n[K, PQ]; pointwise: dcol is dx_n */
		float *dcol = pointwise ? dxn : ws;
		cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, CRS, PQ, K,
			    1.0f, w, CRS, dyn, PQ, 0.0f, dcol, PQ);
		if (!pointwise)
			col2im(dxn, dcol, C, H, W, R, S, stride, pad, P, Q);
	}
}

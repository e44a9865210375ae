/*
 * core/nn/linear.c — the fully connected layer as PyTorch's nn.Linear:
 * y[N, K] = x[N, C]·wᵀ + b with w[K, C], by row-major OpenBLAS GEMMs.
 */
#include "isif/nn/ops.h"
#include "nn/ops_impl.h"

#include <cblas.h>

void isif_linear_forward(float *y, const float *x, const float *w,
			 const float *b, int N, int C, int K)
{
	/* y = b broadcast over rows (or 0), then y += x·wᵀ */
	for (int i = 0; i < N; i++)
		for (int k = 0; k < K; k++)
			y[(size_t)i * K + k] = b ? b[k] : 0.0f;
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, K, C,
		    1.0f, x, C, w, C, 1.0f, y, K);
}

/* dx = dy·w (overwritten), dw += dyᵀ·x, db += Σ_rows dy. */
void isif_linear_backward(float *dx, float *dw, float *db, const float *dy,
			  const float *x, const float *w, int N, int C, int K)
{
	linear_backward_ex(dx, 0, dw, db, dy, x, w, N, C, K);
}

/* As above; dx += dy·w when accumulate. */
void linear_backward_ex(float *dx, int accumulate, float *dw, float *db, const float *dy,
			const float *x, const float *w, int N, int C, int K)
{
	if (dx)
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, C, K,
			    1.0f, dy, K, w, C, accumulate ? 1.0f : 0.0f, dx, C);
	if (dw)
		cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, C, N,
			    1.0f, dy, K, x, C, 1.0f, dw, C);
	if (db) {
		for (int k = 0; k < K; k++) {
			double s = 0;
			for (int i = 0; i < N; i++)
				s += dy[(size_t)i * K + k];
			db[k] += (float)s;
		}
	}
}

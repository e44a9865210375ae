/*
 * core/nn/linear.c — the fully connected layer as PyTorch's nn.Linear:
 * y[N, K] = x[N, C]·wᵀ + b with w[K, C], by the engine's GEMM
 * (core/base/gemm.c) on the calling thread: the layer sits after the global
 * pool, a few tens of millions of multiply-adds at most, too little to wake
 * a thread team for.
 */
#include "isif/nn/ops.h"
#include "nn/ops_impl.h"
#include "base/gemm_impl.h"

/* Without caller scratch the products run in output tiles of TILE_M×TILE_N,
 * whose GEMM scratch (gemm_workspace(TILE_M, TILE_N, any K)) fits in
 * TILE_WS floats on the stack, about 56 KiB. */
#define TILE_M GEMM_MR
#define TILE_N GEMM_NR
#define TILE_WS ((TILE_M + TILE_N) * GEMM_KC + 32)

static int min_int(int a, int b)
{
	return a < b ? a : b;
}

/*
 * C[M,N] (+)= A·B on plain strided views: in one product with ws
 * (linear_workspace), else tile by tile. Every element sums over K in the
 * same order either way (the GEMM blocks K alone), so both give the same
 * bits. The tiles run fp32 (their stack scratch has no room for bf16
 * copies; only the public fp32 isif_linear_* come here without ws).
 */
static void product(int M, int N, int K, const struct gemm_view *A, const struct gemm_view *B,
		    const struct gemm_view *C, int accumulate, float *ws, int prec)
{
	if (ws) {
		gemm_prec(M, N, K, A, B, C, accumulate, (enum gemm_prec)prec, ws);
		return;
	}
	float tile_ws[TILE_WS];
	for (int i0 = 0; i0 < M; i0 += TILE_M)
		for (int j0 = 0; j0 < N; j0 += TILE_N) {
			struct gemm_view a = *A, b = *B, c = *C;
			a.p += (ptrdiff_t)i0 * A->row.inner;
			b.p += (ptrdiff_t)j0 * B->col.inner;
			c.p += (ptrdiff_t)i0 * C->row.inner + (ptrdiff_t)j0 * C->col.inner;
			gemm(min_int(TILE_M, M - i0), min_int(TILE_N, N - j0), K, &a, &b, &c,
			     accumulate, tile_ws);
		}
}

static size_t max_size(size_t a, size_t b)
{
	return a > b ? a : b;
}

size_t linear_workspace(int N, int C, int K)
{
	return max_size(gemm_workspace(N, K, C),
			max_size(gemm_workspace(N, C, K), gemm_workspace(K, C, N)));
}

void linear_forward_ws(float *y, const float *x, const float *w, const float *b,
		       int N, int C, int K, float *ws, int prec)
{
	/* y = b broadcast over rows (or nothing), then y (+)= x·wᵀ */
	if (b)
		for (int i = 0; i < N; i++)
			for (int k = 0; k < K; k++)
				y[(size_t)i * K + k] = b[k];
	struct gemm_view X = gemm_dense(x, C), Wt = gemm_dense_t(w, C), Y = gemm_dense(y, K);
	product(N, K, C, &X, &Wt, &Y, b != NULL, ws, prec);
}

void isif_linear_forward(float *y, const float *x, const float *w,
			 const float *b, int N, int C, int K)
{
	linear_forward_ws(y, x, w, b, N, C, K, NULL, 0);
}

/* dx = dy·w (overwritten), dw += dyᵀ·x, db += Σ_rows dy. */
void isif_linear_backward(float *dx, float *dw, float *db, const float *dy,
			  const float *x, const float *w, int N, int C, int K)
{
	linear_backward_ex(dx, 0, dw, db, dy, x, w, N, C, K, NULL, 0);
}

/* As above; dx += dy·w when accumulate. */
void linear_backward_ex(float *dx, int accumulate, float *dw, float *db, const float *dy,
			const float *x, const float *w, int N, int C, int K, float *ws, int prec)
{
	if (dx) {
		struct gemm_view dY = gemm_dense(dy, K), Wm = gemm_dense(w, C), dX = gemm_dense(dx, C);
		product(N, C, K, &dY, &Wm, &dX, accumulate, ws, prec);
	}
	if (dw) {
		struct gemm_view dYt = gemm_dense_t(dy, K), X = gemm_dense(x, C), dW = gemm_dense(dw, C);
		product(K, C, N, &dYt, &X, &dW, 1, ws, prec);
	}
	if (db) {
		for (int k = 0; k < K; k++) {
			double s = 0;
			for (int i = 0; i < N; i++)
				s += dy[(size_t)i * K + k];
			db[k] += (float)s;
		}
	}
}

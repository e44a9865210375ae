/*
 * core/nn/pool.c — the two poolings the models use, on NCHW float32:
 * 2×2 max-pool with stride 2 (floor mode: a trailing odd row or column is
 * dropped, as PyTorch's MaxPool2d(2)) and global average pooling.
 * Not a general pooling layer (no other kernel, stride or padding).
 * The max-pool's planes (n, c) can be split over a thread team (ops_impl.h).
 */
#include "isif/nn/ops.h"
#include "nn/ops_impl.h"
#include "base/cpu_impl.h"
#include "base/par_impl.h"
#include "base/team_impl.h"

#include <math.h>
#include <string.h>

/*
 * Window offsets 0..3 are (0,0), (0,1), (1,0), (1,1) in row-major order. The
 * first maximum in that order wins ties (strict >); a NaN wins over numbers,
 * as in PyTorch's CPU kernel, so NaNs propagate (a later NaN wins over an
 * earlier one, the order both loops below take).
 */
struct pool_job {
	float *y, *dx;
	uint8_t *argmax;
	const float *x, *dy;
	const uint8_t *amax;
	int H, W, accumulate;
};

#if CPU_HAVE_AVX512
/* One candidate k of the window against the best so far (the rule above). */
CPU_AVX512_TARGET static inline void window_step(__m512 *best, __m512i *idx, __m512 v, int k)
{
	__mmask16 win = _mm512_cmp_ps_mask(v, *best, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
	*best = _mm512_mask_mov_ps(*best, win, v);
	*idx = _mm512_mask_mov_epi32(*idx, win, _mm512_set1_epi32(k));
}

/*
 * 16 outputs of a row of 2×2 windows from r0, r1 (the block's two input
 * rows): the even and odd columns of both rows are split with two-source
 * permutes, then the same first-maximum-or-NaN rule as the scalar loop
 * picks each window's winner. lo, hi: the block's first and next 16 input
 * columns; out: its outputs.
 */
CPU_AVX512_TARGET
static inline void window_block(float *y, uint8_t *am, const float *a, const float *b,
				__mmask16 lo, __mmask16 hi, __mmask16 out)
{
	const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
	const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
	/* full vectors load unmasked: masked loads cost more on this hardware */
	__m512 a0 = lo == 0xffff ? _mm512_loadu_ps(a) : _mm512_maskz_loadu_ps(lo, a);
	__m512 b0 = lo == 0xffff ? _mm512_loadu_ps(b) : _mm512_maskz_loadu_ps(lo, b);
	__m512 a1 = _mm512_maskz_loadu_ps(hi, a + 16), b1 = _mm512_maskz_loadu_ps(hi, b + 16);
	__m512 best = _mm512_permutex2var_ps(a0, even, a1);
	__m512i idx = _mm512_setzero_si512();
	window_step(&best, &idx, _mm512_permutex2var_ps(a0, odd, a1), 1);
	window_step(&best, &idx, _mm512_permutex2var_ps(b0, even, b1), 2);
	window_step(&best, &idx, _mm512_permutex2var_ps(b0, odd, b1), 3);
	_mm512_mask_storeu_ps(y, out, best);
	_mm512_mask_cvtepi32_storeu_epi8(am, out, idx);
}

/* The masks of the block of outputs q0.. of a row of Q. */
CPU_AVX512_TARGET
static void block_masks(int q0, int Q, __mmask16 *lo, __mmask16 *hi, __mmask16 *out)
{
	int n = Q - q0 < 16 ? Q - q0 : 16, n2 = 2 * n;
	*out = (__mmask16)((1u << n) - 1);
	*lo = (__mmask16)(n2 >= 16 ? 0xffff : (1u << n2) - 1);
	*hi = (__mmask16)(n2 <= 16 ? 0 : (1u << (n2 - 16)) - 1);
}

/*
 * Planes' rows of outputs. The masks are computed in registers, once per
 * call for rows of at most 16 outputs (the models' case): masks kept in
 * memory cost a slow load into a mask register per block, and the pool ran
 * several times slower.
 */
CPU_AVX512_TARGET static void maxpool_rows_avx512(float *y, uint8_t *am, const float *x, int rows,
						  int W, int Q)
{
	__mmask16 lo, hi, out;
	if (Q <= 16) {
		block_masks(0, Q, &lo, &hi, &out);
		for (int p = 0; p < rows; p++) {
			const float *r0 = x + (size_t)(2 * p) * W;
			window_block(y + (size_t)p * Q, am + (size_t)p * Q, r0, r0 + W, lo, hi, out);
		}
		return;
	}
	for (int p = 0; p < rows; p++) {
		const float *r0 = x + (size_t)(2 * p) * W;
		for (int q = 0; q < Q; q += 16) {
			block_masks(q, Q, &lo, &hi, &out);
			window_block(y + (size_t)p * Q + q, am + (size_t)p * Q + q, r0 + 2 * q,
				     r0 + W + 2 * q, lo, hi, out);
		}
	}
}
#endif

static void maxpool_rows_portable(float *y, uint8_t *am, const float *x, int rows, int W, int Q)
{
	for (int p = 0; p < rows; p++) {
		const float *r0 = x + (size_t)(2 * p) * W, *r1 = r0 + W;
		for (int q = 0; q < Q; q++) {
			float v[4] = { r0[2 * q], r0[2 * q + 1], r1[2 * q], r1[2 * q + 1] };
			int best = 0;
			for (int k = 1; k < 4; k++)
				if (v[k] > v[best] || isnan(v[k]))
					best = k;
			y[(size_t)p * Q + q] = v[best];
			am[(size_t)p * Q + q] = (uint8_t)best;
		}
	}
}

static void maxpool_rows(float *y, uint8_t *am, const float *x, int rows, int W, int Q)
{
#if CPU_HAVE_AVX512
	if (cpu_avx512()) {
		maxpool_rows_avx512(y, am, x, rows, W, Q);
		return;
	}
#endif
	maxpool_rows_portable(y, am, x, rows, W, Q);
}

static void maxpool_planes(void *job, size_t lo, size_t hi)
{
	const struct pool_job *j = job;
	int H = j->H, W = j->W, P = H / 2, Q = W / 2;
	for (size_t nc = lo; nc < hi; nc++)
		maxpool_rows(j->y + nc * P * Q, j->argmax + nc * P * Q, j->x + nc * H * W, P, W, Q);
}

void maxpool2_forward_ex(float *y, uint8_t *argmax, const float *x,
			 int N, int C, int H, int W, struct team *tm)
{
	struct pool_job j = { .y = y, .argmax = argmax, .x = x, .H = H, .W = W };
	size_t planes = (size_t)N * C;
	team_for(tm, planes, 1, planes * H * W >= PAR_MIN ? 2 : planes + 1, maxpool_planes, &j);
}

void isif_maxpool2_forward(float *y, uint8_t *argmax, const float *x,
			   int N, int C, int H, int W)
{
	maxpool2_forward_ex(y, argmax, x, N, C, H, W, NULL);
}

static void maxpool_back_planes(void *job, size_t lo, size_t hi)
{
	const struct pool_job *j = job;
	int H = j->H, W = j->W, P = H / 2, Q = W / 2;
	for (size_t nc = lo; nc < hi; nc++) {
		float *dxp = j->dx + nc * H * W;
		if (!j->accumulate)
			memset(dxp, 0, sizeof(float) * (size_t)H * W);
		const float *dyp = j->dy + nc * P * Q;
		const uint8_t *ap = j->amax + nc * P * Q;
		for (int p = 0; p < P; p++) {
			for (int q = 0; q < Q; q++) {
				int a = ap[p * Q + q] & 3;
				dxp[(size_t)(2 * p + (a >> 1)) * W + 2 * q + (a & 1)] += dyp[p * Q + q];
			}
		}
	}
}

void maxpool2_backward_ex(float *dx, int accumulate, const float *dy, const uint8_t *argmax,
			  int N, int C, int H, int W, struct team *tm)
{
	struct pool_job j = { .dx = dx, .dy = dy, .amax = argmax, .H = H, .W = W,
			      .accumulate = accumulate };
	size_t planes = (size_t)N * C;
	team_for(tm, planes, 1, planes * H * W >= PAR_MIN ? 2 : planes + 1, maxpool_back_planes, &j);
}

void isif_maxpool2_backward(float *dx, const float *dy, const uint8_t *argmax,
			    int N, int C, int H, int W)
{
	maxpool2_backward_ex(dx, 0, dy, argmax, N, C, H, W, NULL);
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
	avgpool_backward_ex(dx, 0, dy, N, C, HW);
}

void avgpool_backward_ex(float *dx, int accumulate, const float *dy, int N, int C, int HW)
{
	for (size_t nc = 0; nc < (size_t)N * C; nc++) {
		float g = dy[nc] / (float)HW;
		float *dxp = dx + nc * HW;
		for (int j = 0; j < HW; j++)
			dxp[j] = (accumulate ? dxp[j] : 0.0f) + g;
	}
}

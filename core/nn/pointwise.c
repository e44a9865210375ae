/*
 * core/nn/pointwise.c — elementwise operations on flat float32 arrays: ReLU
 * forward/backward and the residual addition, plus the fused add + ReLU,
 * an accumulating ReLU backward and gradient sums (ops_impl.h). In-place
 * use is allowed where isif/nn/ops.h says so (every element is read before it
 * is written). Large arrays are split over a thread team in ranges of whole
 * cache lines; loops are vectorised.
 */
#include "isif/nn/ops.h"
#include "nn/ops_impl.h"
#include "base/cpu_impl.h"
#include "base/par_impl.h"
#include "base/team_impl.h"

enum pw_kind { PW_RELU, PW_RELU_MASKED, PW_RELU_BACK, PW_RELU_BACK_ACC, PW_ADD,
	       PW_ADD_RELU, PW_COPY, PW_ACC };

struct pw_job {
	enum pw_kind kind;
	float *y;
	const float *a, *b;
	const uint8_t *mask;
};

#if CPU_HAVE_AVX512
/*
 * y (+)= b·[a > 0] over [lo, hi): the ReLU backward with unmasked loads (GCC
 * turns the scalar ?: into a masked load of b, slow on this CPU).
 */
CPU_AVX512_TARGET static void relu_back_range_avx512(float *y, const float *a, const float *b,
						     size_t lo, size_t hi, int accumulate)
{
	size_t i = lo;
	for (; i + 16 <= hi; i += 16) {
		__mmask16 on = _mm512_cmp_ps_mask(_mm512_loadu_ps(a + i), _mm512_setzero_ps(), _CMP_GT_OQ);
		__m512 g = _mm512_maskz_mov_ps(on, _mm512_loadu_ps(b + i));
		if (accumulate)
			g = _mm512_add_ps(_mm512_loadu_ps(y + i), g);
		_mm512_storeu_ps(y + i, g);
	}
	for (; i < hi; i++)
		y[i] = (accumulate ? y[i] : 0.0f) + (a[i] > 0.0f ? b[i] : 0.0f);
}
#endif

static void relu_back_range_portable(float *y, const float *a, const float *b, size_t lo,
				     size_t hi, int accumulate)
{
	if (accumulate) {
		OMP(simd)
		for (size_t i = lo; i < hi; i++)
			y[i] += a[i] > 0.0f ? b[i] : 0.0f;
	} else {
		OMP(simd)
		for (size_t i = lo; i < hi; i++)
			y[i] = a[i] > 0.0f ? b[i] : 0.0f;
	}
}

static void relu_back_range(float *y, const float *a, const float *b, size_t lo, size_t hi,
			    int accumulate)
{
#if CPU_HAVE_AVX512
	if (cpu_avx512()) {
		relu_back_range_avx512(y, a, b, lo, hi, accumulate);
		return;
	}
#endif
	relu_back_range_portable(y, a, b, lo, hi, accumulate);
}

/*
 * relu: y = max(a, 0), NaN stays NaN as in PyTorch (a < 0 is false);
 * relu_back: y (+)= b·[a > 0], the subgradient at 0 is 0 as PyTorch's
 * threshold_backward (a is the ReLU's output); add: y = a + b.
 */
static void pw_range(void *p, size_t lo, size_t hi)
{
	const struct pw_job *j = p;
	float *y = j->y;
	const float *a = j->a, *b = j->b;
	switch (j->kind) {
	case PW_RELU:
		OMP(simd)
		for (size_t i = lo; i < hi; i++)
			y[i] = a[i] < 0.0f ? 0.0f : a[i];
		break;
	case PW_RELU_MASKED:
		for (size_t i = lo; i < hi; i++)
			y[i] = j->mask[i] ? a[i] : 0.0f;
		break;
	case PW_RELU_BACK:
	case PW_RELU_BACK_ACC:
		relu_back_range(y, a, b, lo, hi, j->kind == PW_RELU_BACK_ACC);
		break;
	case PW_ADD:
		OMP(simd)
		for (size_t i = lo; i < hi; i++)
			y[i] = a[i] + b[i];
		break;
	case PW_ADD_RELU:
		OMP(simd)
		for (size_t i = lo; i < hi; i++) {
			float v = a[i] + b[i];
			y[i] = v < 0.0f ? 0.0f : v;
		}
		break;
	case PW_COPY:
		OMP(simd)
		for (size_t i = lo; i < hi; i++)
			y[i] = a[i];
		break;
	case PW_ACC:
		OMP(simd)
		for (size_t i = lo; i < hi; i++)
			y[i] += a[i];
		break;
	}
}

static void pw_run(struct team *tm, enum pw_kind kind, float *y, const float *a,
		   const float *b, const uint8_t *mask, size_t n)
{
	struct pw_job j = { kind, y, a, b, mask };
	team_for(tm, n, 16, PAR_MIN, pw_range, &j);
}

void isif_relu_forward(float *y, const float *x, size_t n)
{
	pw_run(NULL, PW_RELU, y, x, NULL, NULL, n);
}

void relu_forward_ex(float *y, const float *x, const uint8_t *mask, size_t n, struct team *tm)
{
	pw_run(tm, mask ? PW_RELU_MASKED : PW_RELU, y, x, NULL, mask, n);
}

void isif_relu_backward(float *dx, const float *dy, const float *y, size_t n)
{
	pw_run(NULL, PW_RELU_BACK, dx, y, dy, NULL, n);
}

void relu_backward_ex(float *dx, int accumulate, const float *dy, const float *y, size_t n,
		      struct team *tm)
{
	pw_run(tm, accumulate ? PW_RELU_BACK_ACC : PW_RELU_BACK, dx, y, dy, NULL, n);
}

/* y = a + b; its gradient passes dy unchanged to both a and b. */
void isif_add_forward(float *y, const float *a, const float *b, size_t n)
{
	pw_run(NULL, PW_ADD, y, a, b, NULL, n);
}

void add_relu_forward(float *y, const float *a, const float *b, size_t n, int relu,
		      struct team *tm)
{
	pw_run(tm, relu ? PW_ADD_RELU : PW_ADD, y, a, b, NULL, n);
}

void grad_add(float *dst, int accumulate, const float *src, size_t n, struct team *tm)
{
	pw_run(tm, accumulate ? PW_ACC : PW_COPY, dst, src, NULL, NULL, n);
}

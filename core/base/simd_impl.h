/*
 * core/base/simd_impl.h — short float runs (a few to a few hundred floats) copied,
 * zeroed or added inline: im2col/col2im rows and GEMM panel rows. The
 * AVX-512 versions (cpu_impl.h) do the tail with one masked load/store
 * instead of a scalar epilogue; the portable ones are plain loops.
 * copy_run, zero_run and add_run pick one by cpu_avx512() at each call:
 * inside a CPU_AVX512_TARGET function the AVX-512 version is inlined, in
 * portable code it is a call.
 */
#ifndef ISIF_SIMD_IMPL_H
#define ISIF_SIMD_IMPL_H

#include "base/cpu_impl.h"

static inline void copy_run_portable(float *d, const float *s, int n)
{
	for (int i = 0; i < n; i++)
		d[i] = s[i];
}

static inline void zero_run_portable(float *d, int n)
{
	for (int i = 0; i < n; i++)
		d[i] = 0.0f;
}

static inline void add_run_portable(float *d, const float *s, int n)
{
	for (int i = 0; i < n; i++)
		d[i] += s[i];
}

#if CPU_HAVE_AVX512
CPU_AVX512_TARGET static inline __mmask16 tail_mask(int n)
{
	return (__mmask16)((1u << n) - 1);
}

/* d[0..n) = s[0..n) */
CPU_AVX512_TARGET static inline void copy_run_avx512(float *d, const float *s, int n)
{
	int i = 0;
	for (; i + 16 <= n; i += 16)
		_mm512_storeu_ps(d + i, _mm512_loadu_ps(s + i));
	if (i < n) {
		__mmask16 m = tail_mask(n - i);
		_mm512_mask_storeu_ps(d + i, m, _mm512_maskz_loadu_ps(m, s + i));
	}
}

/* d[0..n) = 0 */
CPU_AVX512_TARGET static inline void zero_run_avx512(float *d, int n)
{
	int i = 0;
	for (; i + 16 <= n; i += 16)
		_mm512_storeu_ps(d + i, _mm512_setzero_ps());
	if (i < n)
		_mm512_mask_storeu_ps(d + i, tail_mask(n - i), _mm512_setzero_ps());
}

/* d[0..n) += s[0..n) */
CPU_AVX512_TARGET static inline void add_run_avx512(float *d, const float *s, int n)
{
	int i = 0;
	for (; i + 16 <= n; i += 16)
		_mm512_storeu_ps(d + i, _mm512_add_ps(_mm512_loadu_ps(d + i), _mm512_loadu_ps(s + i)));
	if (i < n) {
		__mmask16 m = tail_mask(n - i);
		__m512 v = _mm512_add_ps(_mm512_maskz_loadu_ps(m, d + i), _mm512_maskz_loadu_ps(m, s + i));
		_mm512_mask_storeu_ps(d + i, m, v);
	}
}
#endif

/* d[0..n) = s[0..n) */
static inline void copy_run(float *d, const float *s, int n)
{
#if CPU_HAVE_AVX512
	if (cpu_avx512()) {
		copy_run_avx512(d, s, n);
		return;
	}
#endif
	copy_run_portable(d, s, n);
}

/* d[0..n) = 0 */
static inline void zero_run(float *d, int n)
{
#if CPU_HAVE_AVX512
	if (cpu_avx512()) {
		zero_run_avx512(d, n);
		return;
	}
#endif
	zero_run_portable(d, n);
}

/* d[0..n) += s[0..n) */
static inline void add_run(float *d, const float *s, int n)
{
#if CPU_HAVE_AVX512
	if (cpu_avx512()) {
		add_run_avx512(d, s, n);
		return;
	}
#endif
	add_run_portable(d, s, n);
}

#endif

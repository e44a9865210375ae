/*
 * core/base/cpu_impl.h — the engine's one CPU-feature query, and the one way
 * its SIMD kernels are built and chosen. Not a public header (the public
 * part is isif/base/cpu.h: which kernels run, for logs and benchmarks).
 *
 * The scheme: the whole binary is built for a portable baseline ISA (the
 * Makefile passes no -march, so x86-64 on x86, whatever the target's
 * default elsewhere), and so runs on any machine of its architecture.
 * Every SIMD kernel has a portable C version and, on x86-64 with GCC or
 * clang, an AVX-512 version: a function marked CPU_AVX512_TARGET, which
 * compiles it for x86-64-v4's vector features (AVX-512 F/BW/CD/DQ/VL, AVX2,
 * FMA, BMI1/2, POPCNT) and lets the static inline helpers it calls be inlined into it
 * (a helper without the attribute is inlined and compiled for AVX-512 too).
 * The caller picks one of the two with cpu_avx512() at run time, once per
 * call of the kernel (or of the loop around it). Elsewhere only the
 * portable versions exist and cpu_avx512() is the constant 0.
 *
 * Test override: the environment variable ISIF_CPU=portable (read once, at
 * the first query) makes every kernel take its portable version, so one
 * binary tests both paths; ISIF_CPU=avx512 or auto (or unset, or anything
 * else) takes AVX-512 where the CPU has it. Tests may also switch in
 * process with cpu_force().
 */
#ifndef ISIF_CPU_IMPL_H
#define ISIF_CPU_IMPL_H

#include <stdatomic.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CPU_HAVE_AVX512 1
#include <immintrin.h>
/* Compiles a function for the AVX-512 kernels' features (those
 * cpu_avx512() checks); call it only where cpu_avx512() is 1. */
#define CPU_AVX512_TARGET                                                           \
	__attribute__((target("avx512f,avx512bw,avx512cd,avx512dq,avx512vl,avx2,fma," \
			      "bmi,bmi2,popcnt")))
/* The bf16 kernels: AVX-512 plus AVX512_BF16's vdpbf16ps / vcvtne2ps2bf16;
 * call them only where cpu_bf16() is 1. */
#define CPU_BF16_TARGET                                                           \
	__attribute__((target("avx512f,avx512bw,avx512cd,avx512dq,avx512vl,avx2,fma," \
			      "bmi,bmi2,popcnt,avx512bf16")))
#else
#define CPU_HAVE_AVX512 0
#endif

enum cpu_kernels {
	CPU_AUTO = -1,          /* cpu_force(): back to detection and ISIF_CPU */
	CPU_PORTABLE = 0,
	CPU_AVX512 = 1,
};

/* The kernels in use, CPU_AUTO until the first query (cpu.c). */
extern atomic_int cpu_kernels_now;

/* Detects the CPU's features and reads ISIF_CPU; stores and returns the
 * kernels to use. Thread-safe; cpu_avx512() calls it once. */
enum cpu_kernels cpu_detect(void);

/* 1 when the AVX-512 kernels run (the CPU and OS have every feature they
 * are compiled for and ISIF_CPU does not say portable), 0 for the portable
 * ones. Thread-safe, one load after the first call. */
static inline int cpu_avx512(void)
{
#if CPU_HAVE_AVX512
	int k = atomic_load_explicit(&cpu_kernels_now, memory_order_relaxed);
	return (k == CPU_AUTO ? (int)cpu_detect() : k) == CPU_AVX512;
#else
	return 0;
#endif
}

/* 1 when the AVX-512 kernels run and the CPU also has AVX512_BF16 (so the
 * bf16 GEMM kernel of gemm.c can run), else 0. Thread-safe. */
int cpu_bf16(void);

/* Tests only: CPU_PORTABLE forces the portable kernels, CPU_AVX512 the
 * AVX-512 ones where the CPU has them (else portable), CPU_AUTO goes back to
 * detection and ISIF_CPU. Affects calls that start after it returns. */
void cpu_force(enum cpu_kernels k);

/* What an ISIF_CPU value asks for: CPU_PORTABLE for "portable", CPU_AVX512
 * for "avx512", else CPU_AUTO (NULL too). */
enum cpu_kernels cpu_parse(const char *value);

#endif

/*
 * core/base/cpu.c — which SIMD kernels run (cpu_impl.h): the CPU's features
 * detected once, the ISIF_CPU override, and the tests' switch. Not the
 * kernels themselves.
 */
#include "base/cpu_impl.h"
#include "isif/base/cpu.h"

#include <stdlib.h>
#include <string.h>
#if CPU_HAVE_AVX512
#include <cpuid.h>
#endif

atomic_int cpu_kernels_now = CPU_AUTO;

/* Whether the CPU and the OS (its saved register state: libgcc and
 * compiler-rt check XCR0) support every feature of CPU_AVX512_TARGET. */
static int have_avx512(void)
{
#if CPU_HAVE_AVX512
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
	       __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512dq") &&
	       __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx2") &&
	       __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi") &&
	       __builtin_cpu_supports("bmi2") && __builtin_cpu_supports("popcnt");
#else
	return 0;
#endif
}

/* AVX512_BF16 (CPUID.(7,1):EAX bit 5); its registers are AVX-512's, whose
 * OS support have_avx512() checks. */
static int have_bf16(void)
{
#if CPU_HAVE_AVX512
	unsigned a, b, c, d;
	return __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a >> 5 & 1);
#else
	return 0;
#endif
}

/* AMX-TILE and AMX-BF16 (CPUID.(7,0):EDX bits 24 and 22). Reported only:
 * no kernel uses the tiles (none could be tested on the machines here). */
static int have_amx(void)
{
#if CPU_HAVE_AVX512
	unsigned a, b, c, d;
	return __get_cpuid_count(7, 0, &a, &b, &c, &d) && (d >> 24 & 1) && (d >> 22 & 1);
#else
	return 0;
#endif
}

int cpu_bf16(void)
{
	static atomic_int bf16 = -1;   /* the CPUID answer, once */
	int v = atomic_load_explicit(&bf16, memory_order_relaxed);
	if (v < 0) {
		v = have_avx512() && have_bf16();
		atomic_store(&bf16, v);
	}
	return v && cpu_avx512();
}

const char *isif_cpu_bf16(void)
{
	return cpu_bf16() ? "avx512bf16" : NULL;
}

int isif_cpu_amx(void)
{
	return have_amx();
}

enum cpu_kernels cpu_parse(const char *value)
{
	if (value && strcmp(value, "portable") == 0)
		return CPU_PORTABLE;
	if (value && strcmp(value, "avx512") == 0)
		return CPU_AVX512;
	return CPU_AUTO;
}

/* The kernels a request gives on this machine. */
static enum cpu_kernels resolve(enum cpu_kernels want)
{
	return want != CPU_PORTABLE && have_avx512() ? CPU_AVX512 : CPU_PORTABLE;
}

enum cpu_kernels cpu_detect(void)
{
	/* every racing first caller computes the same value */
	enum cpu_kernels k = resolve(cpu_parse(getenv("ISIF_CPU")));
	int expect = CPU_AUTO;
	atomic_compare_exchange_strong(&cpu_kernels_now, &expect, (int)k);
	return (enum cpu_kernels)atomic_load(&cpu_kernels_now);
}

void cpu_force(enum cpu_kernels k)
{
	atomic_store(&cpu_kernels_now, k == CPU_AUTO ? (int)resolve(cpu_parse(getenv("ISIF_CPU")))
						     : (int)resolve(k));
}

const char *isif_cpu_kernels(void)
{
	return cpu_avx512() ? "avx512" : "portable";
}

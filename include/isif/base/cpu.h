/*
 * isif/base/cpu.h — which SIMD kernels the engine runs on this machine, for
 * logs and benchmarks. The engine picks them itself at run time: AVX-512
 * where the CPU has it, portable C otherwise; the environment variable
 * ISIF_CPU=portable (read at the first use) forces the portable ones.
 */
#ifndef ISIF_CPU_H
#define ISIF_CPU_H

/* "avx512" or "portable": the kernels in use. Thread-safe; static string. */
const char *isif_cpu_kernels(void);

/* "avx512bf16" when bf16 products run on AVX512_BF16 dot products (the
 * AVX-512 kernels are in use and the CPU has AVX512_BF16), else NULL: a
 * bf16 job then runs exact fp32. Thread-safe; static string. */
const char *isif_cpu_bf16(void);

/* 1 when the CPU has AMX tiles with bf16 (AMX-TILE and AMX-BF16), for
 * reports: the engine has no AMX kernels. */
int isif_cpu_amx(void);

#endif

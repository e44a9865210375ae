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

#endif

/*
 * isif/base/rng.h — the engine's seeded random numbers (PCG32, O'Neill 2014).
 * One generator per stream of work; nothing is global, so two jobs in one
 * process never share state. Not thread-safe per generator.
 */
#ifndef ISIF_RNG_H
#define ISIF_RNG_H

#include <stdint.h>

struct isif_rng {
	uint64_t state;
	uint64_t inc;
};

/* Seeds rng from (seed, stream); different streams give independent sequences. */
void isif_rng_seed(struct isif_rng *rng, uint64_t seed, uint64_t stream);

/* Next uniformly distributed 32-bit value. */
uint32_t isif_rng_u32(struct isif_rng *rng);

/* Uniform float in [0, 1) with 24 random bits. */
float isif_rng_uniform(struct isif_rng *rng);

/* Uniform double in [lo, hi). */
double isif_rng_range(struct isif_rng *rng, double lo, double hi);

/* Uniform integer in [0, n), without modulo bias; n > 0. */
uint32_t isif_rng_below(struct isif_rng *rng, uint32_t n);

/* Fisher–Yates shuffle of idx[0..n). */
void isif_rng_shuffle(struct isif_rng *rng, int32_t *idx, int64_t n);

#endif

/*
 * core/base/rng.c — PCG32 (XSH RR 64/32): small state, good statistics, and
 * independent streams via the increment, so each job, loader thread and
 * purpose gets its own sequence from one seed.
 */
#include "isif/base/rng.h"

#define PCG_MULT 6364136223846793005ULL

void isif_rng_seed(struct isif_rng *rng, uint64_t seed, uint64_t stream)
{
	rng->state = 0;
	rng->inc = (stream << 1) | 1u;
	isif_rng_u32(rng);
	rng->state += seed;
	isif_rng_u32(rng);
}

uint32_t isif_rng_u32(struct isif_rng *rng)
{
	uint64_t old = rng->state;
	rng->state = old * PCG_MULT + rng->inc;
	uint32_t xorshifted = (uint32_t)(((old >> 18) ^ old) >> 27);
	uint32_t rot = (uint32_t)(old >> 59);
	return (xorshifted >> rot) | (xorshifted << ((32 - rot) & 31));
}

float isif_rng_uniform(struct isif_rng *rng)
{
	return (float)(isif_rng_u32(rng) >> 8) * (1.0f / 16777216.0f);
}

double isif_rng_range(struct isif_rng *rng, double lo, double hi)
{
	uint64_t bits = ((uint64_t)isif_rng_u32(rng) << 21) ^ (isif_rng_u32(rng) >> 11);
	double u = (double)(bits & ((1ULL << 53) - 1)) * (1.0 / 9007199254740992.0);
	return lo + (hi - lo) * u;
}

uint32_t isif_rng_below(struct isif_rng *rng, uint32_t n)
{
	/* Lemire's rejection: drop the low values that would bias the modulo. */
	uint32_t threshold = (uint32_t)(-n) % n;
	for (;;) {
		uint32_t r = isif_rng_u32(rng);
		if (r >= threshold)
			return r % n;
	}
}

void isif_rng_shuffle(struct isif_rng *rng, int32_t *idx, int64_t n)
{
	for (int64_t i = n - 1; i > 0; i--) {
		int64_t j = isif_rng_below(rng, (uint32_t)(i + 1));
		int32_t t = idx[i];
		idx[i] = idx[j];
		idx[j] = t;
	}
}

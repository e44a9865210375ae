/*
 * isif/eval/simhist.h — the similarity figure: histograms of the cosine
 * similarity of same-class and different-class pairs of embeddings, from a
 * bounded, seeded sample of pairs, with the raw sums beside the bins so the
 * means are exact over the pairs taken.
 */
#ifndef ISIF_SIMHIST_H
#define ISIF_SIMHIST_H

#include <stdint.h>

#include "isif/base/common.h"

#define ISIF_SIMHIST_BINS 100          /* equal bins over [−1, 1] */
#define ISIF_SIMHIST_MAX_PAIRS 200000  /* default bound per kind of pair */

/* One kind of pair (same class or different class). */
struct isif_simhist_part {
	int64_t pairs;                     /* pairs taken: the counts' sum */
	double sum;                        /* Σ similarity over them (mean = sum / pairs) */
	int64_t counts[ISIF_SIMHIST_BINS]; /* bin b: [−1 + 2b/B, −1 + 2(b+1)/B), the last closed */
};

struct isif_simhist {
	struct isif_simhist_part same, diff;
};

/* The bin of similarity s (clamped into [−1, 1] first). */
int isif_simhist_bin(float s);

/*
 * Histograms of x[n,D] (L2-normalised rows; similarity is the dot product)
 * with labels[n]: of each kind, every pair i < j when there are at most
 * max_pairs of them, else max_pairs pairs drawn uniformly (with
 * replacement) from that kind, from a generator seeded by seed. Results
 * depend only on the inputs and seed. ISIF_EINVAL on bad arguments
 * (max_pairs < 1), ISIF_ENOMEM.
 */
enum isif_rc isif_simhist_compute(const float *x, const int32_t *labels, int64_t n, int D,
				  int64_t max_pairs, uint64_t seed, struct isif_simhist *out);

#endif

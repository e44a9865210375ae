/*
 * bench/probe_bench.c — the linear probe's wall time on n×d features of C
 * classes (Gaussian class means, unit noise: a fit of realistic difficulty),
 * on 1 and on `threads` threads, median of `rounds`. Prints figures only.
 *   usage: probe_bench [n d C threads rounds]   (defaults 60000 512 10 2 3)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "isif/base/rng.h"
#include "isif/eval/probe.h"

static double gauss(struct isif_rng *rng)
{
	double u1 = 1.0 - isif_rng_uniform(rng), u2 = isif_rng_uniform(rng);
	return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 60000, nt = n / 6;
	int d = argc > 2 ? atoi(argv[2]) : 512, C = argc > 3 ? atoi(argv[3]) : 10;
	int threads = argc > 4 ? atoi(argv[4]) : 2, rounds = argc > 5 ? atoi(argv[5]) : 3;
	struct isif_rng rng;
	isif_rng_seed(&rng, 1, 0);
	float *means = malloc((size_t)C * d * sizeof(float));
	float *x = malloc((size_t)(n + nt) * d * sizeof(float));
	int32_t *y = malloc((size_t)(n + nt) * sizeof(int32_t));
	if (!means || !x || !y)
		return 1;
	for (long i = 0; i < (long)C * d; i++)
		means[i] = (float)(0.15 * gauss(&rng));
	for (long i = 0; i < n + nt; i++) {
		y[i] = (int32_t)(i % C);
		for (int j = 0; j < d; j++)
			x[i * d + j] = means[(size_t)y[i] * d + j] + (float)gauss(&rng);
	}
	int counts[2] = { 1, threads };
	for (int t = 0; t < 2; t++) {
		double *sec = malloc((size_t)rounds * sizeof(double));
		struct isif_probe_result r = { 0 };
		for (int k = 0; k < rounds; k++) {
			struct isif_probe_options o = { .threads = counts[t] };
			struct isif_error err = { 0 };
			if (isif_linear_probe(x, y, n, x + n * d, y + n, nt, d, C, &o, &r, &err)) {
				fprintf(stderr, "probe_bench: %s\n", err.msg);
				return 1;
			}
			sec[k] = r.seconds;
		}
		qsort(sec, (size_t)rounds, sizeof(double), cmp);
		printf("linear probe %ld x %d, %d classes, %d thread(s): median %.2f s of %d "
		       "(%d iterations, test top-1 %.4f, train %.4f)\n", n, d, C, counts[t],
		       sec[rounds / 2], rounds, r.iters, r.top1, r.train_top1);
		free(sec);
	}
	free(means);
	free(x);
	free(y);
	return 0;
}

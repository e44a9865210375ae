/*
 * bench/knn_bench.c — wall time and peak memory of isif_knn_eval on the
 * size of the ISIF CIFAR protocol scaled to Fashion-MNIST: 60000 gallery
 * rows × 10000 queries × 128 dimensions, random unit vectors, 10 classes,
 * k = 200, τ = 0.1. A measurement, not a test: it prints and never fails
 * on speed. Accuracy is chance level (random data), ~0.10 top-1. Besides
 * the wall time it prints the CPU seconds of all threads during the
 * evaluation, steadier than the wall time on a shared machine.
 *
 * Build and run:
 *   make build/knn_bench
 *   ./build/knn_bench [ng nq D k [threads]]      (threads: all online cores)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include "isif/base/clock.h"
#include "isif/base/common.h"
#include "isif/eval/eval.h"
#include "isif/base/rng.h"

/* User + system CPU seconds of the process in *ru (all threads): on a
 * shared machine this moves less with the load than the wall time. */
static double cpu_seconds(struct rusage *ru)
{
	getrusage(RUSAGE_SELF, ru);
	return ru->ru_utime.tv_sec + 1e-6 * ru->ru_utime.tv_usec +
	       ru->ru_stime.tv_sec + 1e-6 * ru->ru_stime.tv_usec;
}

/* n random unit rows of width D (Gaussian directions). */
static float *unit_rows(struct isif_rng *rng, int64_t n, int D)
{
	float *x = malloc((size_t)(n * D) * sizeof *x);
	if (!x)
		return NULL;
	for (int64_t i = 0; i < n; i++) {
		double ss = 0;
		for (int d = 0; d < D; d++) {
			double u1 = 1.0 - isif_rng_uniform(rng), u2 = isif_rng_uniform(rng);
			double v = sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
			x[i * D + d] = (float)v;
			ss += v * v;
		}
		for (int d = 0; d < D; d++)
			x[i * D + d] = (float)(x[i * D + d] / sqrt(ss));
	}
	return x;
}

int main(int argc, char **argv)
{
	int64_t ng = argc > 1 ? atoll(argv[1]) : 60000;
	int64_t nq = argc > 2 ? atoll(argv[2]) : 10000;
	int D = argc > 3 ? atoi(argv[3]) : 128;
	int k = argc > 4 ? atoi(argv[4]) : 200;
	int threads = argc > 5 ? atoi(argv[5]) : (int)sysconf(_SC_NPROCESSORS_ONLN);
	struct isif_rng rng;
	struct isif_knn_result res;
	struct rusage ru;

	isif_rng_seed(&rng, 1, 99);
	float *g = unit_rows(&rng, ng, D), *q = unit_rows(&rng, nq, D);
	int32_t *gl = malloc((size_t)ng * sizeof *gl), *ql = malloc((size_t)nq * sizeof *ql);
	if (!g || !q || !gl || !ql) {
		fprintf(stderr, "out of memory\n");
		return 1;
	}
	for (int64_t i = 0; i < ng; i++)
		gl[i] = (int32_t)isif_rng_below(&rng, 10);
	for (int64_t i = 0; i < nq; i++)
		ql[i] = (int32_t)isif_rng_below(&rng, 10);
	getrusage(RUSAGE_SELF, &ru);
	long rss0 = ru.ru_maxrss;

	double c0 = cpu_seconds(&ru);
	double t0 = isif_now_s();
	int rc = isif_knn_eval(g, gl, ng, q, ql, nq, D, k, 0.1, 10, threads, &res);
	double t1 = isif_now_s();
	double c1 = cpu_seconds(&ru);
	printf("knn_eval ng=%lld nq=%lld D=%d k=%d threads=%d: %.3f s (%s), top1 %.4f top5 %.4f, "
	       "%.1f GFLOP/s of GEMM, %.3f CPU s, peak RSS %ld MiB (inputs %ld MiB)\n",
	       (long long)ng, (long long)nq, D, k, threads, t1 - t0, isif_strerror(rc),
	       res.top1, res.top5, 2.0 * ng * nq * D / (t1 - t0) * 1e-9,
	       c1 - c0, ru.ru_maxrss / 1024, rss0 / 1024);
	free(g);
	free(q);
	free(gl);
	free(ql);
	return rc ? 1 : 0;
}

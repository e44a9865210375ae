/*
 * bench/gallery_bench.c — CPU time per query of the retrieval gallery's
 * exact search (isif_gallery: what /neighbors runs), fp32 scan against the
 * bf16 candidate scan re-ranked in fp32, alternating in one run, on real
 * embeddings when given (a raw float32 file of rows × D, e.g. the train
 * matrix of an index.bin) or clustered Gaussian rows. A measurement, never
 * a test: it prints and never fails on speed.
 *
 *   make build/gallery_bench
 *   build/gallery_bench [-rows FILE] [-D 128] [-n ROWS] [-grow R] [-sigma S]
 *                       [-batch B] [-queries Q] [-k K] [-rounds N] [-threads T]
 *   -grow R: each row copied R times with Gaussian noise of σ S (default 0.02)
 *   and renormalised (issue 13's million-row gallery from 60k real ones).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "isif/base/common.h"
#include "isif/base/rng.h"
#include "isif/eval/gallery.h"

static double thread_cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static double gauss(struct isif_rng *rng)
{
	double u1 = 1.0 - isif_rng_uniform(rng), u2 = isif_rng_uniform(rng);
	return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static float *read_rows(const char *path, int D, int64_t *n)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long bytes = ftell(f);
	fseek(f, 0, SEEK_SET);
	int64_t rows = bytes / (int64_t)(D * sizeof(float));
	if (*n > 0 && *n < rows)
		rows = *n;
	float *x = malloc((size_t)(rows * D) * sizeof *x);
	if (x && fread(x, sizeof *x, (size_t)(rows * D), f) != (size_t)(rows * D)) {
		free(x);
		x = NULL;
	}
	fclose(f);
	*n = rows;
	return x;
}

static float *clustered(struct isif_rng *rng, int64_t n, int D)
{
	const int clusters = 10;
	float *c = malloc((size_t)clusters * (size_t)D * sizeof *c);
	float *x = malloc((size_t)(n * D) * sizeof *x);
	for (int64_t i = 0; i < (int64_t)clusters * D; i++)
		c[i] = (float)gauss(rng);
	for (int64_t i = 0; i < n; i++) {
		int64_t m = isif_rng_below(rng, clusters);
		for (int d = 0; d < D; d++)
			x[i * D + d] = c[m * D + d] + (float)(0.8 * gauss(rng));
	}
	free(c);
	return x;
}

/* Each of the n rows R times, plus noise σ per entry, renormalised. */
static float *grow(struct isif_rng *rng, const float *x, int64_t n, int D, int R, double sigma)
{
	float *y = malloc((size_t)(n * R) * (size_t)D * sizeof *y);
	for (int64_t i = 0; i < n * R; i++) {
		const float *src = x + (i % n) * D;
		double ss = 0, ns = 0;
		for (int d = 0; d < D; d++)
			ss += (double)src[d] * src[d];
		float *dst = y + i * D;
		for (int d = 0; d < D; d++) {
			dst[d] = (float)(src[d] / sqrt(ss) + sigma * gauss(rng));
			ns += (double)dst[d] * dst[d];
		}
		for (int d = 0; d < D; d++)
			dst[d] = (float)(dst[d] / sqrt(ns));
	}
	return y;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	const char *path = NULL;
	int D = 128, batch = 64, k = 10, rounds = 3, threads = 1, R = 1;
	int64_t n = 0, nq = 2048;
	double sigma = 0.02;
	for (int i = 1; i + 1 < argc; i += 2) {
		const char *a = argv[i], *v = argv[i + 1];
		if (!strcmp(a, "-rows")) path = v;
		else if (!strcmp(a, "-D")) D = atoi(v);
		else if (!strcmp(a, "-n")) n = atoll(v);
		else if (!strcmp(a, "-grow")) R = atoi(v);
		else if (!strcmp(a, "-sigma")) sigma = atof(v);
		else if (!strcmp(a, "-batch")) batch = atoi(v);
		else if (!strcmp(a, "-queries")) nq = atoll(v);
		else if (!strcmp(a, "-k")) k = atoi(v);
		else if (!strcmp(a, "-rounds")) rounds = atoi(v);
		else if (!strcmp(a, "-threads")) threads = atoi(v);
		else {
			fprintf(stderr, "unknown option %s (see the comment at the top)\n", a);
			return 2;
		}
	}
	struct isif_rng rng;
	isif_rng_seed(&rng, 1, 0);
	float *g = path ? read_rows(path, D, &n) : clustered(&rng, n > 0 ? n : 60000, D);
	if (!path && n <= 0)
		n = 60000;
	if (!g) {
		fprintf(stderr, "cannot read %s\n", path);
		return 1;
	}
	if (R > 1) {
		float *y = grow(&rng, g, n, D, R, sigma);
		free(g);
		g = y;
		n *= R;
	}
	/* queries: gallery rows with fresh noise (near their source, as a
	 * real query is near its class) */
	float *q = malloc((size_t)(nq * D) * sizeof *q);
	for (int64_t i = 0; i < nq; i++)
		for (int d = 0; d < D; d++)
			q[i * D + d] = g[(i * 7919 % n) * D + d] + (float)(0.05 * gauss(&rng) / sqrt(D));
	int64_t *idx = malloc((size_t)(nq * k) * sizeof *idx);
	float *sim = malloc((size_t)(nq * k) * sizeof *sim);
	printf("gallery %lld x %d, k %d, batches of %d, %lld queries, %d thread(s)\n", (long long)n, D,
	       k, batch, (long long)nq, threads);
	static const char *names[] = {"fp32", "bf16"};
	struct isif_gallery *gal[2];
	for (int s = 0; s < 2; s++) {
		struct isif_error err = {0};
		double t0 = thread_cpu_s();
		if (isif_gallery_create_scan(&gal[s], g, n, D, k, threads, batch,
					     s ? ISIF_SCAN_BF16 : ISIF_SCAN_FP32, &err)) {
			fprintf(stderr, "%s\n", err.msg);
			return 1;
		}
		printf("%s: created (packed) in %.2f CPU s\n", names[s], thread_cpu_s() - t0);
	}
	double *us = calloc((size_t)(2 * rounds), sizeof *us);
	for (int r = 0; r < rounds; r++)
		for (int s = 0; s < 2; s++) {
			double t0 = thread_cpu_s();
			for (int64_t q0 = 0; q0 < nq; q0 += batch)
				isif_gallery_search(gal[s], q + q0 * D, nq - q0 < batch ? nq - q0 : batch,
						    idx + q0 * k, sim + q0 * k);
			us[s * rounds + r] = (thread_cpu_s() - t0) * 1e6 / (double)nq;
		}
	double med[2];
	for (int s = 0; s < 2; s++) {
		qsort(us + s * rounds, (size_t)rounds, sizeof *us, cmp_double);
		med[s] = us[s * rounds + rounds / 2];
		struct isif_gallery_stats st;
		isif_gallery_stats(gal[s], &st);
		printf("%s: %.1f CPU us/query (median of %d; %.0f queries/CPU-s, %.1f GFLOP/s fp32-equivalent)"
		       "%s", names[s], med[s], rounds, 1e6 / med[s], 2.0 * (double)n * D / med[s] * 1e-3,
		       st.bf16 ? "" : "\n");
		if (st.bf16)
			printf(", fell back to fp32: %lld of %lld\n", st.fallbacks, st.bf16_queries);
	}
	printf("bf16 / fp32 speed: %.2fx\n", med[0] / med[1]);
	for (int s = 0; s < 2; s++)
		isif_gallery_free(gal[s]);
	free(us);
	free(g);
	free(q);
	free(idx);
	free(sim);
	return 0;
}

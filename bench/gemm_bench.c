/*
 * bench/gemm_bench.c — single-precision GEMM rates on convolution-shaped
 * products: OpenBLAS cblas_sgemm and the engine's own gemm (core/base/gemm.c),
 * alternating, median of several runs each, plus the AVX-512 FMA peak of
 * one core measured by a register-only FMA loop. A measurement, not a test.
 * With several threads, OpenBLAS uses its own; the engine's serial gemm runs
 * on a thread team (core/base/team.c), each member taking an equal share of the
 * columns, as the convolution layers split their batch.
 *
 *   make build/gemm_bench && build/gemm_bench [threads] [reps] [engine|openblas]
 *
 * Shapes (M × N × K, row-major, C = A·B): the forward products of
 * resnet18's 3×3 convolutions at 28×28 input, with the batch chunk the
 * engine uses (N = pixels of several samples).
 */
#include <stdio.h>
#include <stdlib.h>

#include <cblas.h>

#include "base/cpu_impl.h"
#include "base/gemm_impl.h"
#include "base/team_impl.h"
#include "isif/base/clock.h"

/* The engine's product split by columns over a team. */
struct split_job {
	int M, N, K;
	const float *a, *b;
	float *c, *ws;
	size_t ws_per;
};

static void split_member(void *p, int rank, int size)
{
	struct split_job *j = p;
	size_t lo, hi;
	team_share((size_t)j->N, 48, rank, size, &lo, &hi);
	if (lo >= hi)
		return;
	struct gemm_view A = gemm_dense(j->a, j->K), B = gemm_dense(j->b + lo, j->N);
	struct gemm_view C = gemm_dense(j->c + lo, j->N);
	gemm(j->M, (int)(hi - lo), j->K, &A, &B, &C, 0, j->ws + (size_t)rank * j->ws_per);
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

#if CPU_HAVE_AVX512
/* 12 independent FMA chains on zmm registers: the core's FMA throughput. */
CPU_AVX512_TARGET static double fma_peak(long iters)
{
	__m512 b = _mm512_set1_ps(1.0000001f), c = _mm512_set1_ps(1e-7f);
	__m512 a0 = _mm512_set1_ps(0), a1 = _mm512_set1_ps(1), a2 = _mm512_set1_ps(2);
	__m512 a3 = _mm512_set1_ps(3), a4 = _mm512_set1_ps(4), a5 = _mm512_set1_ps(5);
	__m512 a6 = _mm512_set1_ps(6), a7 = _mm512_set1_ps(7), a8 = _mm512_set1_ps(8);
	__m512 a9 = _mm512_set1_ps(9), a10 = _mm512_set1_ps(10), a11 = _mm512_set1_ps(11);
	double t = isif_now_s();
	for (long i = 0; i < iters; i++) {
		a0 = _mm512_fmadd_ps(a0, b, c); a1 = _mm512_fmadd_ps(a1, b, c);
		a2 = _mm512_fmadd_ps(a2, b, c); a3 = _mm512_fmadd_ps(a3, b, c);
		a4 = _mm512_fmadd_ps(a4, b, c); a5 = _mm512_fmadd_ps(a5, b, c);
		a6 = _mm512_fmadd_ps(a6, b, c); a7 = _mm512_fmadd_ps(a7, b, c);
		a8 = _mm512_fmadd_ps(a8, b, c); a9 = _mm512_fmadd_ps(a9, b, c);
		a10 = _mm512_fmadd_ps(a10, b, c); a11 = _mm512_fmadd_ps(a11, b, c);
	}
	t = isif_now_s() - t;
	__m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
				 _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
	s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)));
	volatile float sink = _mm512_reduce_add_ps(s);
	(void)sink;
	return (double)iters * 12 * 32 / t * 1e-9;
}
#endif

int main(int argc, char **argv)
{
	int threads = argc > 1 ? atoi(argv[1]) : 2, reps = argc > 2 ? atoi(argv[2]) : 7;
	/* "engine" or "openblas": time only that one. Measure them in separate
	 * processes for figures: after each call OpenBLAS's threads keep
	 * polling for a while, which takes cycles from the engine's team when the
	 * two alternate in one process. */
	int engine_only = argc > 3 && argv[3][0] == 'e';
	int openblas_only = argc > 3 && argv[3][0] == 'o';
	static const int shapes[][3] = {
		{ 64, 4704, 576 },   /* layer1 3×3, 6 samples of 28×28 */
		{ 128, 2352, 1152 }, /* layer2, 12 samples of 14×14 */
		{ 256, 1568, 2304 }, /* layer3, 32 samples of 7×7 */
		{ 512, 1024, 4608 }, /* layer4, 64 samples of 4×4 */
	};
	openblas_set_num_threads(threads); /* this program is the one user of OpenBLAS */
	struct team *tm = team_create(threads);
#if CPU_HAVE_AVX512
	if (cpu_avx512()) {
		double best = 0;
		for (int r = 0; r < 5; r++) {
			double p = fma_peak(20000000);
			best = p > best ? p : best;
		}
		printf("fma peak, one core, best of 5: %.1f GFLOP/s\n", best);
	}
#endif
	printf("%-20s %-14s %14s %14s\n", "M x N x K", "threads", "openblas", "engine gemm");
	double sum_o = 0, sum_e = 0;
	for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
		int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
		float *a = malloc(sizeof(float) * M * K), *b = malloc(sizeof(float) * K * N);
		float *c = malloc(sizeof(float) * M * N);
		size_t ws_per = gemm_workspace(M, N, K);
		float *ws = malloc(sizeof(float) * ws_per * threads);
		double *to = malloc(sizeof(double) * reps), *te = malloc(sizeof(double) * reps);
		if (!a || !b || !c || !ws || !to || !te)
			return 1;
		for (long i = 0; i < (long)M * K; i++)
			a[i] = (float)(i % 13) / 13.0f - 0.5f;
		for (long i = 0; i < (long)K * N; i++)
			b[i] = (float)(i % 11) / 11.0f - 0.5f;
		struct split_job job = { M, N, K, a, b, c, ws, ws_per };
		for (int r = -1; r < reps; r++) { /* r = -1 warms up */
			double t = isif_now_s();
			if (!engine_only)
				cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, a, K,
				    b, N, 0.0f, c, N);
			double t1 = isif_now_s();
			if (!openblas_only)
				team_run(tm, split_member, &job);
			double t2 = isif_now_s();
			if (r >= 0) {
				to[r] = t1 - t;
				te[r] = t2 - t1;
			}
		}
		qsort(to, reps, sizeof *to, cmp);
		qsort(te, reps, sizeof *te, cmp);
		double f = 2.0 * M * N * K * 1e-9;
		double go = engine_only ? 0 : f / to[reps / 2], ge = openblas_only ? 0 : f / te[reps / 2];
		printf("%4d x %5d x %4d   %-14d %9.1f GF/s %9.1f GF/s\n", M, N, K, threads, go, ge);
		sum_o += go;
		sum_e += ge;
		free(a), free(b), free(c), free(ws), free(to), free(te);
	}
	/* 0.0 for the one not measured */
	printf("sgemm mean over shapes: openblas %.1f GFLOP/s, engine %.1f GFLOP/s\n",
	       sum_o / 4, sum_e / 4);
	team_free(tm);
	return 0;
}

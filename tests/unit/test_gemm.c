/*
 * tests/unit/test_gemm.c — the engine's GEMM (core/base/gemm.c) against a naive
 * triple loop in double, for every kind of view the layers use (dense,
 * transposed, batched NCHW pixel axes whose sample boundaries fall inside
 * tiles; operands that come already packed), overwrite and accumulate,
 * K = 0, and sizes that cross every block boundary (MR, NR, MC, KC, NC
 * edges). Each case runs with the AVX-512 kernel (when the CPU has it) and
 * with the portable one. The workspace is allocated to exactly
 * gemm_workspace() floats so ASan sees any overrun.
 */
#include <stdlib.h>
#include <string.h>

#include "base/cpu_impl.h"
#include "base/gemm_impl.h"
#include "check.h"
#include "ops_testutil.h"

/* Element (i, j) of a view, read through the same mapping by hand. */
static double at(const struct gemm_view *v, int i, int j)
{
	ptrdiff_t r = (ptrdiff_t)(i / v->row.blk) * v->row.outer + (ptrdiff_t)(i % v->row.blk) * v->row.inner;
	ptrdiff_t c = (ptrdiff_t)(j / v->col.blk) * v->col.outer + (ptrdiff_t)(j % v->col.blk) * v->col.inner;
	return v->p[r + c];
}

static float *slot(const struct gemm_view *v, int i, int j)
{
	ptrdiff_t r = (ptrdiff_t)(i / v->row.blk) * v->row.outer + (ptrdiff_t)(i % v->row.blk) * v->row.inner;
	ptrdiff_t c = (ptrdiff_t)(j / v->col.blk) * v->col.outer + (ptrdiff_t)(j % v->col.blk) * v->col.inner;
	return v->p + r + c;
}

/* Runs C (+)= A·B and compares every C element (and that nothing else in
 * C's storage moved) with the naive product. */
static void check_product(const char *what, int M, int N, int K,
			  struct gemm_view A, struct gemm_view B, struct gemm_view C,
			  size_t c_len, int accumulate)
{
	float *before = malloc(sizeof(float) * c_len);
	memcpy(before, C.p, sizeof(float) * c_len);
	double *want = malloc(sizeof(double) * c_len);
	for (size_t i = 0; i < c_len; i++)
		want[i] = before[i];
	for (int i = 0; i < M; i++)
		for (int j = 0; j < N; j++) {
			double s = accumulate ? at(&C, i, j) : 0.0;
			for (int k = 0; k < K; k++)
				s += at(&A, i, k) * at(&B, k, j);
			want[slot(&C, i, j) - C.p] = s;
		}
	for (int portable = 0; portable < 2; portable++) {
		memcpy(C.p, before, sizeof(float) * c_len);
		size_t ws_len = gemm_workspace(M, N, K);
		float *ws = malloc(sizeof(float) * ws_len);
		cpu_force(portable ? CPU_PORTABLE : CPU_AUTO);
		gemm(M, N, K, &A, &B, &C, accumulate, ws);
		cpu_force(CPU_AUTO);
		char name[96];
		snprintf(name, sizeof name, "%s (%s kernel)", what, portable ? "portable" : "auto");
		TU_CHECK_ALL(name, C.p, want, c_len, 1e-5 * (K > 1 ? K : 1));
		free(ws);
	}
	free(before);
	free(want);
}

TEST(gemm_dense_shapes_match_naive)
{
	/* M, N, K chosen to cross MR = 8, NR = 48, MC = 128, KC = 256, NC = 3072 */
	static const int shapes[][3] = {
		{ 1, 1, 1 }, { 7, 47, 3 }, { 9, 49, 17 }, { 16, 96, 64 },
		{ 130, 50, 5 }, { 5, 60, 300 }, { 3, 3100, 4 }, { 33, 97, 513 },
	};
	for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
		int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
		float *a = tu_rand((size_t)M * K, 1 + s), *b = tu_rand((size_t)K * N, 2 + s);
		float *c = tu_rand((size_t)M * N, 3 + s);
		char what[64];
		for (int acc = 0; acc < 2; acc++) {
			snprintf(what, sizeof what, "NN %dx%dx%d acc %d", M, N, K, acc);
			check_product(what, M, N, K, gemm_dense(a, K), gemm_dense(b, N),
				      gemm_dense(c, N), (size_t)M * N, acc);
		}
		/* the same numbers read as transposes: Aᵀ stored K×M, Bᵀ stored N×K */
		float *at_ = tu_rand((size_t)M * K, 4 + s), *bt = tu_rand((size_t)K * N, 5 + s);
		snprintf(what, sizeof what, "TT %dx%dx%d", M, N, K);
		check_product(what, M, N, K, gemm_dense_t(at_, M), gemm_dense_t(bt, K),
			      gemm_dense(c, N), (size_t)M * N, 1);
		snprintf(what, sizeof what, "NT %dx%dx%d", M, N, K);
		check_product(what, M, N, K, gemm_dense(a, K), gemm_dense_t(bt, K),
			      gemm_dense(c, N), (size_t)M * N, 0);
		free(a), free(b), free(c), free(at_), free(bt);
	}
}

/* The convolution's views: pixels of n samples as one axis (hw per sample,
 * channel blocks of `sample` floats), in A, B and C, with hw not a multiple
 * of the tile width so sample boundaries fall inside tiles. */
TEST(gemm_nchw_views_match_naive)
{
	static const int hws[] = { 1, 5, 16, 49, 50 };
	for (size_t h = 0; h < sizeof hws / sizeof hws[0]; h++) {
		int hw = hws[h], n = 4, ch = 11, other = 13, P = n * hw;
		size_t len = (size_t)n * ch * hw;
		float *x = tu_rand(len, 10 + h), *w = tu_rand((size_t)other * ch, 20 + h);
		float *y = tu_rand((size_t)n * other * hw, 30 + h);
		float *wd = tu_rand((size_t)other * ch, 40 + h);
		char what[64];
		/* forward of a 1×1 conv: y[other, P] = w[other, ch]·x[ch, P] */
		snprintf(what, sizeof what, "nchw forward hw %d", hw);
		check_product(what, other, P, ch, gemm_dense(w, ch), gemm_nchw(x, hw, (ptrdiff_t)ch * hw),
			      gemm_nchw(y, hw, (ptrdiff_t)other * hw), (size_t)n * other * hw, 0);
		/* its input gradient: x[ch, P] = wᵀ·y */
		snprintf(what, sizeof what, "nchw data grad hw %d", hw);
		check_product(what, ch, P, other, gemm_dense_t(w, ch), gemm_nchw(y, hw, (ptrdiff_t)other * hw),
			      gemm_nchw(x, hw, (ptrdiff_t)ch * hw), len, 1);
		/* its weight gradient: wd[other, ch] += y[other, P]·xᵀ[P, ch] */
		snprintf(what, sizeof what, "nchw weight grad hw %d", hw);
		check_product(what, other, ch, P, gemm_nchw(y, hw, (ptrdiff_t)other * hw),
			      gemm_nchw_t(x, hw, (ptrdiff_t)ch * hw), gemm_dense(wd, ch),
			      (size_t)other * ch, 1);
		free(x), free(w), free(y), free(wd);
	}
}

TEST(gemm_k_zero_clears_or_keeps)
{
	float c[6] = { 1, 2, 3, 4, 5, 6 }, a[1] = { 0 }, b[1] = { 0 };
	struct gemm_view A = gemm_dense(a, 1), B = gemm_dense(b, 3), C = gemm_dense(c, 3);
	float *ws = malloc(sizeof(float) * gemm_workspace(2, 3, 0));
	gemm(2, 3, 0, &A, &B, &C, 1, ws);
	CHECK(c[0] == 1 && c[5] == 6);
	gemm(2, 3, 0, &A, &B, &C, 0, ws);
	for (int i = 0; i < 6; i++)
		CHECK(c[i] == 0);
	free(ws);
}

/*
 * An operand packed as gemm_packed expects: panels of `width` (GEMM_MR rows
 * of A or GEMM_NR columns of B) along the n-long axis, each [k][width] over
 * all K, padding past n zero, 64-byte aligned; element (t, k) of the
 * operand at src[t·st + k·sk]. *panel gets the panel length.
 */
static float *pack_panels(const float *src, int n, int K, int width, ptrdiff_t st, ptrdiff_t sk,
			  ptrdiff_t *panel)
{
	int panels = (n + width - 1) / width;
	*panel = (ptrdiff_t)K * width;
	size_t len = ((size_t)panels * *panel + 15) / 16 * 16;
	float *p = aligned_alloc(64, sizeof(float) * (len ? len : 16));
	for (int t = 0; t < panels * width; t++)
		for (int k = 0; k < K; k++)
			p[(t / width) * *panel + (ptrdiff_t)k * width + t % width] =
				t < n ? src[t * st + k * sk] : 0.0f;
	return p;
}

/* Operands that come packed (gemm_packed) are read in place: A packed, B
 * packed, or both, against the naive product of the same numbers, across
 * the MR, NR, MC, KC and NC block edges, overwrite and accumulate. */
TEST(gemm_packed_operands_match_naive)
{
	static const int shapes[][3] = {
		{ 1, 1, 1 }, { 9, 49, 17 }, { 130, 97, 300 }, { 17, 3100, 5 },
	};
	for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
		int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
		float *a = tu_rand((size_t)M * K, 61 + s), *b = tu_rand((size_t)K * N, 62 + s);
		float *base = tu_rand((size_t)M * N, 63 + s), *c = malloc(sizeof(float) * M * N);
		ptrdiff_t pa_len, pb_len;
		float *pa = pack_panels(a, M, K, GEMM_MR, K, 1, &pa_len);
		float *pb = pack_panels(b, N, K, GEMM_NR, 1, N, &pb_len);
		double *want = malloc(sizeof(double) * M * N);
		for (int which = 1; which <= 3; which++)
			for (int acc = 0; acc < 2; acc++)
				for (int portable = 0; portable < 2; portable++) {
					struct gemm_view A = which & 1 ? gemm_packed(pa, pa_len) : gemm_dense(a, K);
					struct gemm_view B = which & 2 ? gemm_packed(pb, pb_len) : gemm_dense(b, N);
					struct gemm_view C = gemm_dense(c, N);
					for (int i = 0; i < M; i++)
						for (int j = 0; j < N; j++) {
							double sum = acc ? base[(size_t)i * N + j] : 0.0;
							for (int k = 0; k < K; k++)
								sum += (double)a[(size_t)i * K + k] * b[(size_t)k * N + j];
							want[(size_t)i * N + j] = sum;
						}
					memcpy(c, base, sizeof(float) * M * N);
					float *ws = malloc(sizeof(float) * gemm_workspace(M, N, K));
					cpu_force(portable ? CPU_PORTABLE : CPU_AUTO);
					gemm(M, N, K, &A, &B, &C, acc, ws);
					cpu_force(CPU_AUTO);
					char what[96];
					snprintf(what, sizeof what, "packed %s%s %dx%dx%d acc %d %s",
						 which & 1 ? "A" : "", which & 2 ? "B" : "", M, N, K, acc,
						 portable ? "portable" : "auto");
					TU_CHECK_ALL(what, c, want, (size_t)M * N, 1e-5 * K);
					free(ws);
				}
		free(a), free(b), free(base), free(c), free(pa), free(pb), free(want);
	}
}

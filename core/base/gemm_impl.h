/*
 * core/base/gemm_impl.h — the engine's own single-precision GEMM on strided
 * matrix views, for the layer ops (conv2d.c, linear.c). Not a public header.
 *
 * Why not cblas_sgemm: Debian's OpenBLAS 0.3.21 picks its AVX2 (Haswell)
 * kernels on this AMD AVX-512 CPU and so reaches about half the FMA peak,
 * and its threads spin in sched_yield between calls while our OpenMP loops
 * run. Here an AVX-512 micro-kernel (chosen at run time; a portable C kernel
 * otherwise) runs serially on the calling thread, and the packing reads its
 * operands through views, so a convolution's batched operands (samples
 * side by side in NCHW) feed one GEMM without being copied into a matrix
 * first.
 *
 * A view maps element (i, j) to p[off(row, i) + off(col, j)], where an axis
 * sends index t to (t / blk)·outer + (t mod blk)·inner. With blk = INT_MAX
 * that is a plain stride; with blk = P·Q and outer = K·P·Q it walks the
 * pixels of several NCHW samples as one long axis.
 */
#ifndef ISIF_GEMM_IMPL_H
#define ISIF_GEMM_IMPL_H

#include <limits.h>
#include <stddef.h>

struct gemm_axis {
	ptrdiff_t inner, outer;
	int blk;
};

/*
 * A B operand can instead be produced by a packer: fill `nj` columns from j0
 * (NR-wide panels, the last zero-padded, panel t at dst + t·NR·kc, each
 * [k][NR]) with rows k0..k0+kc of B. The convolution packs its column
 * matrix this way without ever writing it out.
 */
typedef void gemm_pack_fn(void *ctx, float *dst, int j0, int nj, int k0, int kc);

/*
 * An A operand can be produced by a packer too: called once per GEMM_MR-row
 * panel, fill dst[k·GEMM_MR + r] with A(i0 + r, k0 + k) for r < mi (≤ GEMM_MR;
 * zeros for mi ≤ r < GEMM_MR), k < kc: (ctx, dst, i0, mi, k0, kc). A
 * convolution whose weights are transformed once per call packs them once
 * and copies the panels from there.
 */
struct gemm_view {
	float *p;
	struct gemm_axis row, col;
	gemm_pack_fn *pack;        /* when set, p and the axes are unused */
	void *ctx;
	const float *packed;       /* when set, the operand is already packed: */
	ptrdiff_t panel;           /* panel t at packed + t·panel, [k][MR or NR] over all of K */
	int pairs;                 /* A only, GEMM_BF16 only: the packed panels hold bf16
				    * pairs [k/2][GEMM_MR][2] (round to nearest even; an
				    * odd K's last pair completed with 0), not floats */
};

/*
 * An operand stored in the panel layout the kernel reads (A: GEMM_MR-row
 * panels [k][GEMM_MR]; B: GEMM_NR-column panels [k][GEMM_NR]; 64-byte
 * aligned, panel a multiple of 16 floats, every panel complete — padding
 * rows or columns hold finite values): gemm() reads it in place, no copy.
 */
static inline struct gemm_view gemm_packed(const float *p, ptrdiff_t panel)
{
	struct gemm_view v = { NULL, { 0, 0, INT_MAX }, { 0, 0, INT_MAX }, NULL, NULL, p, panel, 0 };
	return v;
}

/* Row-major matrix with leading dimension ld: (i, j) at p[i·ld + j]. */
static inline struct gemm_view gemm_dense(const float *p, ptrdiff_t ld)
{
	struct gemm_view v = { (float *)p, { ld, 0, INT_MAX }, { 1, 0, INT_MAX }, NULL, NULL, NULL, 0, 0 };
	return v;
}

/* The transpose of a row-major matrix: (i, j) at p[j·ld + i]. */
static inline struct gemm_view gemm_dense_t(const float *p, ptrdiff_t ld)
{
	struct gemm_view v = { (float *)p, { 1, 0, INT_MAX }, { ld, 0, INT_MAX }, NULL, NULL, NULL, 0, 0 };
	return v;
}

/* Channels × pixels of a batch of NCHW samples: (i, j) at
 * p[(j / hw)·sample + i·hw + j mod hw], i a channel, j = n·hw + pixel. */
static inline struct gemm_view gemm_nchw(const float *p, int hw, ptrdiff_t sample)
{
	struct gemm_view v = { (float *)p, { hw, 0, INT_MAX }, { 1, sample, hw }, NULL, NULL, NULL, 0, 0 };
	return v;
}

/* Its transpose: pixels × channels. */
static inline struct gemm_view gemm_nchw_t(const float *p, int hw, ptrdiff_t sample)
{
	struct gemm_view v = { (float *)p, { 1, sample, hw }, { hw, 0, INT_MAX }, NULL, NULL, NULL, 0, 0 };
	return v;
}

/* The packer gemm() uses for a B view (for packers that stage data first). */
void gemm_pack_b(const struct gemm_view *B, float *dst, int j0, int nj, int k0, int kc);

/* Panel widths of packed A and B, and the largest nj / kc a packer is asked for. */
#define GEMM_MR 8
#define GEMM_NR 48
#define GEMM_NC 3072
#define GEMM_KC 256

/* Scratch floats gemm() (and gemm_prec()) needs for an M×N×K product. */
size_t gemm_workspace(int M, int N, int K);

/*
 * The operands' precision. GEMM_BF16: every element of A and B is rounded
 * to bfloat16 (round to nearest even), products summed in fp32 (AVX512_BF16
 * vdpbf16ps: pairs of k per instruction) — only where cpu_bf16() is 1;
 * elsewhere GEMM_BF16 computes exactly what GEMM_FP32 does.
 */
enum gemm_prec { GEMM_FP32 = 0, GEMM_BF16 = 1 };

/*
 * C[M,N] = A[M,K]·B[K,N], or C += A·B when accumulate is set; K = 0 leaves C
 * alone (accumulate) or zeroes it. Serial, on the calling thread; callers
 * split their work over threads (thread-safe on disjoint C and ws).
 * ws: gemm_workspace(M, N, K) floats. C must not overlap A or B.
 */
void gemm(int M, int N, int K, const struct gemm_view *A, const struct gemm_view *B,
	  const struct gemm_view *C, int accumulate, float *ws);

/* gemm() with the operands in precision prec. */
void gemm_prec(int M, int N, int K, const struct gemm_view *A, const struct gemm_view *B,
	       const struct gemm_view *C, int accumulate, enum gemm_prec prec, float *ws);

#endif

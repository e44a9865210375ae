/*
 * core/conv_direct_impl.h — stride-1 "same" convolutions (R = S = 2·g + 1,
 * padding g) computed straight from a gapped copy of their operand, with
 * neither a column matrix nor packed B panels. Used by core/conv2d.c for
 * narrow layers (few channels), where packing the column matrix for the
 * GEMM costs more than the product itself. Not a public header.
 *
 * The gapped layout of nb samples of C×H×W, gap g: each channel is one
 * plane of `plane` floats; after `lead` zeros, sample n's row h starts at
 * u = (n·Hg + h)·Wg with Hg = H + g, Wg = W + g; each row is W values then
 * g zeros, and each sample is followed by g zero rows. Everything not
 * holding a value is 0. Then the input of output (n, p, q) at tap (r, s),
 * x[n][c][p + r − g][q + s − g], zero outside the image, is
 *     plane_c[lead + u + (r − g)·Wg + (s − g)],   u = (n·Hg + p)·Wg + q,
 * because the row above the first row, the column left of column 0 and
 * so on all land on zeros. So for tap k = (c, r, s) the "column matrix"
 * row is the plain unit-stride vector plane + lead + off[k] over u, with
 * off[k] = c·plane + (r − g)·Wg + (s − g). Computing over every u in
 * [0, U), U = (nb·Hg − g)·Wg, includes the gap positions: wasted work of
 * Hg·Wg/(H·W) − 1 (7% at 28×28, 15% at 14×14, 31% at 7×7), and their
 * outputs are dropped when stored.
 *
 *   forward: Y[m][u] = Σ_k A[m][k] · plane[lead + u + off[k]]   (A = w)
 *   dx:      the same on the gapped dY with A = the flipped weights
 *   dw:      dw[m][k] += Σ_u dYg[m][u] · plane[lead + u + off[k]]
 *            (dY gapped, so its gap positions are 0 and add nothing)
 */
#ifndef ISIF_CONV_DIRECT_IMPL_H
#define ISIF_CONV_DIRECT_IMPL_H

#include <stddef.h>
#include <stdint.h>

struct gap_geom {
	int H, W, g;            /* image, gap (= padding) */
	int Wg, Hg;             /* row pitch W + g, rows per sample H + g */
	size_t lead, plane;     /* zeros before u = 0; floats per channel (a multiple of 16) */
};

/* The layout for up to nb samples per chunk. */
struct gap_geom gap_geom_make(int H, int W, int g, int nb);

/* The output domain U of nb samples. */
int gap_span(const struct gap_geom *gg, int nb);

/* dst[C planes] = the gapped copy of nb samples of src, sample n channel c
 * at src + n·sample + c·H·W. Writes all C·plane floats. */
void gap_fill(float *dst, const float *src, int C, ptrdiff_t sample, int nb,
	      const struct gap_geom *gg);

/* off[(c·R + r)·R + s] for c < C: the tap offsets above. */
void gap_offsets(int32_t *off, int C, int R, const struct gap_geom *gg);

/* A byte range to pull into the cache while a product runs (the next
 * chunk's source, so that gap_fill finds it there), spread evenly over the
 * product's tiles; len 0 for none. */
struct prefetch {
	const void *p;
	size_t len;
};

/* Floats of packed weights for M rows of kc taps. */
size_t direct_pack_len(int M, int kc);

/*
 * Packs the M×kc matrix A for direct_conv: w[M][Cin·RR] as it is (flip 0,
 * the forward) or, with flip, A[m][(k, t)] = w[k][m][RR − 1 − t] for w of
 * shape [Cin][M][RR] (the input gradient's flipped, transposed weights).
 */
void direct_pack(float *apk, const float *w, int M, int Cin, int RR, int flip);

/*
 * out[n·out_sample + m·H·W + p·W + q] (+)= Σ_k A[m][k] · in[lead + u + off[k]]
 * for the nb samples of the gapped `in`, m < M, valid (p, q) only; = unless
 * accumulate. apk from direct_pack(M, kc). Serial; out disjoint from in.
 */
void direct_conv(float *out, ptrdiff_t out_sample, int accumulate, const float *apk, int M,
		 int kc, const float *in, const int32_t *off, const struct gap_geom *gg, int nb,
		 struct prefetch pf);

/*
 * dw[m·kc + k] (= when fresh, else +=) Σ_u dyg[m·plane + lead + u] · xg[lead + u + off[k]]
 * over the nb samples' domain, m < M, k < kc; dyg and xg gapped. Serial.
 */
void direct_dw(float *dw, int fresh, const float *dyg, int M, const float *xg,
	       const int32_t *off, int kc, const struct gap_geom *gg, int nb, struct prefetch pf);

#endif

/*
 * core/conv_direct_impl.h — stride-1 "same" convolutions (R = S = 2·g + 1,
 * padding g) computed straight from a channel-major copy of their operand,
 * with neither a column matrix nor packed B panels. Used by core/conv2d.c
 * for narrow layers (few channels), where packing the column matrix for
 * the GEMM costs more than the product itself. Not a public header.
 *
 * The chunk layout of nb samples of C×H×W: channel c is one plane of
 * `plane` floats holding the nb samples' c-th channel one after another,
 * u = n·H·W + p·W + q. For output u and tap (r, s), the input
 * x[n][c][p + r − g][q + s − g] is plane_c[u + off(r, s)] with
 * off = (r − g)·W + (s − g) whenever that pixel lies inside the image; the
 * positions where it does not (the zero padding) are lanes that a per-tap
 * bit mask switches off. So for tap k = (c, r, s) the row of the "column
 * matrix" is the unit-stride vector plane + off[k] over u, read under the
 * mask of its tap, with off[k] = c·plane + (r − g)·W + (s − g).
 *
 *   forward: Y[m][u] = Σ_k A[m][k] · [tap k valid at u] · x_c[u + off[k]]   (A = w)
 *   dx:      the same on the chunk copy of dY with A = the flipped weights
 *   dw:      dw[m][k] += Σ_u dY_c[m][u] · [tap k valid at u] · x_c[u + off[k]]
 *
 * The masks depend only on the geometry: a table of one row per 16-lane
 * vector of u, `ms` entries per row; entry t (t < R·R + 6) is the mask of
 * tap t mod R·R, so any 6 consecutive taps read consecutive entries.
 * Needs H·W ≥ 16 (a vector then touches at most two samples).
 */
#ifndef ISIF_CONV_DIRECT_IMPL_H
#define ISIF_CONV_DIRECT_IMPL_H

#include <stddef.h>
#include <stdint.h>

struct direct_geom {
	int H, W, g, R, HW;
	int nb;                 /* samples per chunk (at most) */
	size_t lead;            /* zeros before plane 0 and after the last plane */
	size_t plane;           /* floats per channel plane: nb·H·W rounded up to 16 */
	int nvec, ms;           /* mask table: rows (vectors of u) and row stride */
};

/* The layout for chunks of up to nb samples of H×W, padding g. */
struct direct_geom direct_geom_make(int H, int W, int g, int nb);

/* Floats of a chunk buffer of C channels (lead, planes, lead). */
size_t direct_buffer_len(const struct direct_geom *dg, int C);

/* Entries of the tap-mask table, and the table itself. */
size_t direct_table_len(const struct direct_geom *dg);
void direct_table(uint16_t *tab, const struct direct_geom *dg);

/* buf = the chunk copy of nb ≤ dg->nb samples of src (sample n channel c at
 * src + n·sample + c·H·W); the rest of each plane and the leads are zeroed. */
void direct_fill(float *buf, const float *src, int C, ptrdiff_t sample, int nb,
		 const struct direct_geom *dg);

/* off[(c·R + r)·R + s] for c < C: the tap offsets above. */
void direct_offsets(int32_t *off, int C, const struct direct_geom *dg);

/* A byte range to pull into the cache while a product runs (the next
 * chunk's source, so that direct_fill finds it there), spread evenly over
 * the product's tiles; len 0 for none. */
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
 * out[n·out_sample + m·H·W + p·W + q] (+)= Σ_k A[m][k] · [valid] · in(u + off[k])
 * for the nb samples of the chunk buffer `in`, m < M; = unless accumulate.
 * apk from direct_pack(M, kc). Serial; out disjoint from in.
 */
void direct_conv(float *out, ptrdiff_t out_sample, int accumulate, const float *apk, int M,
		 int kc, const float *in, const int32_t *off, const uint16_t *tab,
		 const struct direct_geom *dg, int nb, struct prefetch pf);

/*
 * dw[m·kc + k] (= when fresh, else +=) Σ_u dy(m, u) · [tap k valid at u] · x(u + off[k])
 * over the nb samples, m < M, k < kc; dy and x chunk buffers. Serial.
 */
void direct_dw(float *dw, int fresh, const float *dy, int M, const float *x,
	       const int32_t *off, int kc, const uint16_t *tab, const struct direct_geom *dg,
	       int nb, struct prefetch pf);

#endif

/*
 * core/nn/conv_direct_impl.h — convolutions with R = S = 2·g + 1 and padding
 * g, stride 1 or 2, computed straight from a channel-major copy of their
 * operand, with neither a column matrix nor packed B panels. Used by
 * core/nn/conv2d.c for narrow layers (few channels), where packing the column
 * matrix for the GEMM costs more than the product itself. Not a public
 * header.
 *
 * The domain: the outputs u = n·P·Q + p·Q + q of a chunk of nb samples.
 * A chunk buffer holds, after `lead` zeros, planes of `plane` floats, each
 * one value per u. An output-shaped tensor (Y, dY) gets one plane per
 * channel. The input x gets st² planes per channel, its polyphase parts:
 * plane (c, a, b) holds x[n][c][st·p + a][st·q + b] at u (0 outside the
 * image). Then tap (r, s) of output u reads x[n][c][st·p + r − g][st·q + s − g]
 * = plane (c, a, b)[u + dp·Q + dq] with r − g = st·dp + a, s − g = st·dq + b
 * (0 ≤ a, b < st) whenever that pixel lies inside the image; where it does
 * not (the padding), a per-tap bit mask switches the lane off. So the row of
 * the "column matrix" for tap k = (c, r, s) is the unit-stride vector
 * buf + lead + off[k] over u, read under the tap's mask:
 *
 *   forward: Y[m][u] = Σ_k A[m][k] · [k valid at u] · x(u + off[k])    (A = w)
 *   dw:      dw[m][k] += Σ_u dY[m][u] · [k valid at u] · x(u + off[k])
 *   dx:      per input phase (a, b), over the same domain (i, j) = (p, q):
 *            dx[n][c][st·i + a][st·j + b] = Σ_k Σ_{taps (r, s) of the phase}
 *            w[k][c][r][s] · dY[n][k][i − dp][j − dq]: the same product on
 *            the dY buffer with that phase's taps (all R·R taps for st = 1).
 *
 * A tap's mask depends only on the geometry: a table of one row per 16-lane
 * vector of u, `ms` entries per row, entry t the mask of tap t.
 * Needs P·Q ≥ 16 (a vector then touches at most two samples).
 */
#ifndef ISIF_CONV_DIRECT_IMPL_H
#define ISIF_CONV_DIRECT_IMPL_H

#include <stddef.h>
#include <stdint.h>

/* Largest kernel side the path takes, so tap lists have a fixed bound. */
#define DIRECT_MAX_R 5
#define DIRECT_MAX_TAPS (DIRECT_MAX_R * DIRECT_MAX_R)

struct direct_geom {
	int H, W, P, Q, PQ;     /* input image, output image */
	int st, g, R;           /* stride (1 or 2), padding, kernel side */
	int nb;                 /* samples per chunk (at most) */
	size_t lead;            /* zeros before the first plane and after the last */
	size_t plane;           /* floats per plane: nb·P·Q rounded up to 16 */
	int nvec, ms;           /* mask table: rows (vectors of u) and row stride */
};

/*
 * One tap: weight index rs = r·R + s, read from plane `plane` of a
 * channel's group at u + dp·Q + dq, valid where 0 ≤ step·p + h0 < hl and
 * 0 ≤ step·q + w0 < wl.
 */
struct direct_tap {
	int rs, plane, dp, dq;
	int step, h0, hl, w0, wl;
};

/* The layout for chunks of up to nb samples; 0 when the shape does not
 * qualify (R ≠ 2·pad + 1, R > DIRECT_MAX_R, stride not 1 or 2, P·Q < 16). */
int direct_geom_make(struct direct_geom *dg, int H, int W, int R, int stride, int pad, int nb);

/* The forward (and dw) taps: all R·R in order; returns the count. */
int direct_forward_taps(struct direct_tap *taps, const struct direct_geom *dg);

/* The dx taps of input phase (a, b) (reading dY); returns the count (0 for
 * a phase no tap reaches, e.g. the odd phases of a 1×1 stride-2 kernel). */
int direct_dx_taps(struct direct_tap *taps, const struct direct_geom *dg, int a, int b);

/* Floats of a chunk buffer of C channels of x (input 1: st² planes each)
 * or of an output-shaped tensor (input 0). */
size_t direct_buffer_len(const struct direct_geom *dg, int C, int input);

/* Entries of a tap-mask table, and the table of a tap list. */
size_t direct_table_len(const struct direct_geom *dg);
void direct_table(uint16_t *tab, const struct direct_geom *dg, const struct direct_tap *taps,
		  int nt);

/* off[c·nt + t] for c < C, channel groups chan_planes planes apart. */
void direct_offsets(int32_t *off, int C, int chan_planes, const struct direct_tap *taps, int nt,
		    const struct direct_geom *dg);

/* buf = the chunk copy of nb ≤ dg->nb samples of src (sample n channel c at
 * src + n·sample + c·(image size)): input 1 splits x into its st² phases,
 * input 0 copies an output-shaped tensor. The rest of each plane and the
 * leads are zeroed. */
void direct_fill(float *buf, const float *src, int C, ptrdiff_t sample, int nb, int input,
		 const struct direct_geom *dg);

/* Fills the P·Q values of sample n, channel c of an output-shaped tensor. */
typedef void direct_run_fn(void *ctx, float *dst, int n, int c, int len);

/* direct_fill of an output-shaped tensor whose values come from run(). */
void direct_fill_runs(float *buf, int C, int nb, const struct direct_geom *dg,
		      direct_run_fn *run, void *ctx);

/*
 * dx[n][c][st·i + a][st·j + b] (+)= phase buffer (c·st² + a·st + b)[u] for
 * the nb samples of dx (sample stride C·H·W), skipping phases whose bit in
 * `present` is clear (their gradient is 0: written as 0 unless accumulate).
 */
void direct_interleave(float *dx, int accumulate, const float *buf, int C, int nb,
		       unsigned present, const struct direct_geom *dg);

/* Byte ranges to pull into the cache while a product runs (the next
 * chunk's sources, so that direct_fill finds them there), each spread
 * evenly over the product's tiles; n = 0 for none. */
#define PREFETCH_RANGES 4
struct prefetch {
	int n;
	struct {
		const void *p;
		size_t len;
	} r[PREFETCH_RANGES];
};

/* Floats of packed weights for M rows of Cin·nt taps. */
size_t direct_pack_len(int M, int kc);

/*
 * bf16 (AVX512_BF16 only: call where cpu_bf16() is 1). The products pair
 * channels: word u of pair plane (p, q) holds channels 2p and 2p + 1 of
 * plane q at u as two bfloat16 (RNE; channel 2p in the low half, 0 for a
 * missing odd channel). A pair buffer has the chunk buffer's layout for
 * ⌈C/2⌉ channels, so the first ⌈C/2⌉·nt entries of a set's offsets address
 * it as they address the fp32 buffer. Packed weights become [k2][MR] words
 * (k2 = p·nt + t, the same pairing), in place.
 */
size_t direct_pairs_len(const struct direct_geom *dg, int C, int input);
void direct_pairs(uint32_t *dst, const float *buf, int C, int input,
		  const struct direct_geom *dg);
void direct_pack_pairs(float *apk, int M, int Cin, int nt);

/* dw in bf16: buf (n floats, a chunk buffer) as bfloat16 (RNE) at the
 * same indexes, and direct_dw on such copies of dy and x (xf: the fp32 x
 * copy they were made from, for its addresses), products summed in fp32. */
void direct_halves(uint16_t *dst, const float *buf, size_t n);
void direct_dw_bf16(float *dw, int fresh, const uint16_t *dy, int M, const uint16_t *x,
		    const float *xf, const int32_t *off, int kc, int nt, const uint16_t *tab,
		    const struct direct_geom *dg, int nb, struct prefetch pf);

/* direct_conv on pairs: apk from direct_pack_pairs, in a pair buffer,
 * kc = ⌈Cin/2⌉·nt; sums in fp32. */
void direct_conv_bf16(float *out, ptrdiff_t out_sample, ptrdiff_t out_row, int accumulate,
		      const float *apk, int M, int kc, int nt, const uint32_t *in,
		      const int32_t *off, const uint16_t *tab, const struct direct_geom *dg,
		      int nb, struct prefetch pf);

/*
 * Packs A for direct_conv, rows m < M, columns (ci, t) for ci < Cin, t < nt:
 * w[m][ci][taps[t].rs] (transpose 0: w of shape [M][Cin][R·R], the forward)
 * or w[ci][m][taps[t].rs] (transpose 1: w of shape [Cin][M][R·R], dx).
 */
void direct_pack(float *apk, const float *w, int M, int Cin, int RR,
		 const struct direct_tap *taps, int nt, int transpose);

/*
 * out[n·out_sample + m·out_row + u − n·P·Q] (+)= Σ_k A[m][k] · [valid] · in(u + off[k])
 * for the nb samples' outputs u, m < M, kc = Cin·nt; = unless accumulate.
 * tab is the table of the nt taps. Serial; out disjoint from in.
 */
void direct_conv(float *out, ptrdiff_t out_sample, ptrdiff_t out_row, int accumulate,
		 const float *apk, int M, int kc, int nt, const float *in, const int32_t *off,
		 const uint16_t *tab, const struct direct_geom *dg, int nb, struct prefetch pf);

/*
 * dw[m·kc + k] (= when fresh, else +=) Σ_u dy(m, u) · [tap k valid at u] · x(u + off[k])
 * over the nb samples, m < M, k < kc; dy and x chunk buffers. Serial.
 */
void direct_dw(float *dw, int fresh, const float *dy, int M, const float *x,
	       const int32_t *off, int kc, int nt, const uint16_t *tab,
	       const struct direct_geom *dg, int nb, struct prefetch pf);

#endif

/*
 * core/nn/npid_impl.h — the NPID baseline's loss and memory bank (Wu et al.,
 * CVPR 2018, "Unsupervised Feature Learning via Non-Parametric Instance
 * Discrimination"), used by the trainer for `method: "npid"`. DESIGN.md
 * "NPID" gives the formulas.
 *
 * The bank holds one L2-normalised feature per training image. For a batch
 * of m features f_i (L2-normalised, the model's output) of images idx_i:
 *   exact:  L = (1/m) Σ_i [ −s_{i,idx_i} + log Σ_j exp(s_ij) ],  s_ij = f_i·v_j / τ
 *           over the whole bank (the non-parametric softmax);
 *   NCE:    P(j|f) = exp(f·v_j/τ)/Z, P_n = 1/n, h = P/(P + k·P_n),
 *           L = −(1/m) Σ_i [ log h(idx_i) + Σ_{j ∈ noise_i} log(1 − h(j)) ]
 *           with k noise indices per image drawn uniformly, and
 *           Z = n · mean of exp(f·v/τ) over the first step's pairs, then fixed
 *           (the paper's Monte-Carlo estimate; part of the saved state).
 * The bank is a constant of the loss (no gradient flows into it). After the
 * step: v_{idx_i} ← normalise(μ·v_{idx_i} + (1 − μ)·f_i).
 */
#ifndef ISIF_NPID_IMPL_H
#define ISIF_NPID_IMPL_H

#include <stdint.h>

#include "isif/base/common.h"

struct team;

struct npid {
	float *bank;        /* [n, D], rows L2-normalised */
	int64_t n;
	int D, m, k;        /* batch rows; k noise samples per row (0: exact softmax) */
	double z;           /* NCE normaliser; 0 until the first NCE step */
	int32_t *noise;     /* [m, k] the step's noise indices (NCE) */
	float *logits;      /* [m, n] (exact) or [m, k + 1] (NCE) */
	double *row_loss;   /* [m] */
	float *gws;         /* per member: gws_len floats of GEMM scratch */
	size_t gws_len;
	int members;
};

/* A bank of n rows of D for batches of up to m rows, k noise samples per row
 * (0: exact softmax), GEMM scratch for `members` threads; rows start
 * uniform in [−1, 1)^D from seed, then normalised. */
enum isif_rc npid_create(struct npid *p, int64_t n, int D, int m, int k, int members,
			 uint64_t seed, struct isif_error *err);
void npid_free(struct npid *p);

/* Draws the step's k noise indices per row, uniform over the bank. */
struct isif_rng;
void npid_draw_noise(struct npid *p, int m, struct isif_rng *rng);

/* The loss of f[m, D] for images idx[m] (bank rows) at temperature tau, and
 * dL/df into df[m, D] when df is not NULL (overwritten). Exact or NCE as p->k
 * says (NCE uses the noise of the last npid_draw_noise and sets p->z on its
 * first call). Rows split over tm (NULL: the caller alone); the result does
 * not depend on it. */
double npid_loss(struct npid *p, float *df, const float *f, const int32_t *idx, int m,
		 double tau, struct team *tm);

/* v_{idx_i} ← normalise(momentum·v_{idx_i} + (1 − momentum)·f_i) for i < m. */
void npid_bank_update(struct npid *p, const float *f, const int32_t *idx, int m,
		      double momentum);

#endif

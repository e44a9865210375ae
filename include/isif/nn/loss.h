/*
 * isif/nn/loss.h — the Invariant and Spreading Instance Feature loss
 * (Ye et al., CVPR 2019) over a batch of B = 2m L2-normalised features,
 * rows [view 1 of images 1..m; view 2 of images 1..m], partner
 * p(i) = (i + m) mod B. DESIGN.md "The method" gives the formulas:
 *   L = −(1/B) [ Σ_i log P_i + Σ_i Σ_{j∉{i,p(i)}} log(1 − Q_ij) ].
 * Computed with row-wise max subtraction and log1p, in double accumulators,
 * so it is stable for B up to 2×1024 and any τ > 0.
 */
#ifndef ISIF_LOSS_H
#define ISIF_LOSS_H

#include <stddef.h>

enum isif_gradient_mode {
	ISIF_GRAD_REFERENCE = 0, /* gradient through the row (query) copy only: G·X/(Bτ) */
	ISIF_GRAD_FULL = 1,      /* both copies: (G + Gᵀ)·X/(Bτ) */
};

/* Scratch floats isif_loss_forward_backward needs for B rows. */
size_t isif_loss_workspace(int B);

/*
 * Returns the loss of x[B,D] (B even, ≥ 2) at temperature tau and, when dx
 * is not NULL, writes dL/dx[B,D] (overwritten). ws: isif_loss_workspace(B)
 * floats. Thread-safe on disjoint buffers.
 */
double isif_loss_forward_backward(float *dx, const float *x, int B, int D,
				  float tau, enum isif_gradient_mode mode,
				  float *ws);

#endif

/*
 * core/nn/loss.c — the Invariant and Spreading Instance Feature loss and its
 * gradient w.r.t. the L2-normalised features x[B,D] (DESIGN.md "The method").
 * The L2-normalisation backward is the model's business, not this file's.
 *
 * Letters: B rows (B = 2m), D feature width, m = B/2, p(i) = (i + m) mod B,
 * τ temperature, s_ij = S_ij/τ with S = X·Xᵀ.
 *
 *   E_ij = exp(s_ij) (j ≠ i), E_ii = 0,  Z_i = Σ_j E_ij
 *   P_i  = E_{i,p(i)}/Z_i,  Q_ij = E_ij/Z_i
 *   L    = −(1/B) [ Σ_i log P_i + Σ_i Σ_{j∉{i,p(i)}} log(1 − Q_ij) ]
 *
 * Stability: every row subtracts its own max before exp (Q is unchanged)
 * and the row works in doubles, so nothing overflows for small τ. The one
 * element of a row that may hold Q > 1/2 is the row's max; 1 − Q there is
 * formed as Z_rest/Z with Z_rest summed without that element, never as a
 * difference that cancels. See row_terms() for the log1p form.
 *
 * Memory: S and then G share one B×B float block; a B-double row buffer
 * follows it, then the scratch of the engine's GEMM (core/base/gemm.c), which
 * forms S and dL/dX on the calling thread. No allocation here: the caller
 * passes isif_loss_workspace(B).
 */
#include "isif/nn/loss.h"
#include "base/gemm_impl.h"

#include <math.h>
#include <stdalign.h>
#include <stdint.h>

/* GEMM scratch for either product: S = X·Xᵀ (B×B, depth D) and dX = G·X
 * taken B columns of X at a time (B×B at most, depth B). The GEMM caps its
 * depth block at GEMM_KC, so D never enters. */
static size_t gemm_scratch(int B)
{
	return gemm_workspace(B, B, GEMM_KC);
}

size_t isif_loss_workspace(int B)
{
	if (B < 2)
		return 0;
	size_t b = (size_t)B;
	/* B×B S/G block, then B doubles (2B floats) plus one float of slack
	 * so the double buffer can be aligned whatever ws's alignment is, then
	 * the GEMM's scratch (which aligns itself). */
	return b * b + 2 * b + 1 + gemm_scratch(B);
}

static float *gemm_ws(float *ws, int B)
{
	return ws + (size_t)B * (size_t)B + 2 * (size_t)B + 1;
}

/* The B-double row buffer inside ws, aligned for double. */
static double *row_buffer(float *ws, int B)
{
	float *p = ws + (size_t)B * (size_t)B;
	if ((uintptr_t)p % alignof(double))
		p++;
	return (double *)(void *)p;
}

/* S = X·Xᵀ, its upper triangle mirrored to the lower so S is exactly
 * symmetric whatever the kernel's order. */
static void similarities(float *S, const float *x, int B, int D, float *gws)
{
	struct gemm_view X = gemm_dense(x, D), Xt = gemm_dense_t(x, D), Sv = gemm_dense(S, B);
	gemm(B, B, D, &X, &Xt, &Sv, 0, gws);
	for (int i = 0; i < B; i++)
		for (int j = 0; j < i; j++)
			S[(size_t)i * B + j] = S[(size_t)j * B + i];
}

/*
 * One anchor row i. On entry row[] holds S_i·; on exit it holds G_i·
 * (the gradient of B·L w.r.t. s_i·, i.e. w.r.t. S_i·/τ). Returns the row's
 * share of B·L: −log P_i + Σ_{j neg} −log(1 − Q_ij).
 *
 * With a = argmax_{k≠i} s_ik, e_k = exp(s_ik − s_ia) (e_i = 0, e_a = 1),
 * Z_rest = Σ_{k≠a} e_k summed directly and Z = 1 + Z_rest:
 *   −log P_i       = log1p(Z_rest) − (s_ip − s_ia)
 *   r_k            = Q_ik/(1 − Q_ik) = e_k/(Z − e_k)
 *   −log(1 − Q_ik) = log(Z/(Z − e_k)) = log1p(r_k)      (= −log1p(−Q_ik))
 * Z − e_k ≥ 1 for k ≠ a, and Z − e_a = Z_rest: no cancelling difference.
 *   R_i  = Σ_{k neg} r_k
 *   G_ik = Q_ik(1 − R_i) + [k neg]·r_k − [k = p(i)],  G_ii = 0.
 * Where Q may be near 1 (only at k = a) the same G is rearranged so that
 * no two large terms cancel, using Q = r/(1 + r) and 1 − Q = Z_rest/Z:
 *   a neg:  G_ia = Q_ia(2 − (R_i − r_a)), with R_i − r_a summed directly
 *   a = p:  G_ip = −Z_rest/Z − Q_ip·R_i
 */
static double row_terms(float *row, double *e, int i, int B, double inv_tau)
{
	int m = B / 2, p = (i + m) % B, a = p;
	for (int k = 0; k < B; k++)
		if (k != i && row[k] > row[a])
			a = k;
	double mx = row[a], Z_rest = 0;
	for (int k = 0; k < B; k++) {
		e[k] = k == i ? 0.0 : exp(((double)row[k] - mx) * inv_tau);
		if (k != a)
			Z_rest += e[k];
	}
	double Z = 1 + Z_rest;
	double loss = log1p(Z_rest) - ((double)row[p] - mx) * inv_tau;
	double R = 0, R_not_a = 0;
	for (int k = 0; k < B; k++) {
		if (k == i || k == p)
			continue;
		double r = e[k] / (k == a ? Z_rest : Z - e[k]);
		loss += log1p(r);
		R += r;
		if (k != a)
			R_not_a += r;
		e[k] = r; /* e_k is no longer needed: keep r_k for the G pass */
	}
	for (int k = 0; k < B; k++) {
		double g;
		if (k == i)
			g = 0;
		else if (k == p)
			g = a == p ? -Z_rest / Z - R / Z : e[k] / Z * (1 - R) - 1;
		else if (k == a)
			g = e[k] / (1 + e[k]) * (2 - R_not_a);
		else
			g = e[k] / (1 + e[k]) * (1 - R) + e[k];
		row[k] = (float)g;
	}
	return loss;
}

/* G ← G + Gᵀ in place (full-gradient mode). */
static void symmetrise(float *G, int B)
{
	for (int i = 0; i < B; i++)
		for (int j = 0; j < i; j++) {
			float s = G[(size_t)i * B + j] + G[(size_t)j * B + i];
			G[(size_t)i * B + j] = s;
			G[(size_t)j * B + i] = s;
		}
}

/* dx[B,D] = alpha·G·X, B columns of X at a time (bounded GEMM scratch; a
 * column's sums do not depend on the split). */
static void grad_x(float *dx, const float *G, const float *x, int B, int D, float alpha,
		   float *gws)
{
	struct gemm_view Gv = gemm_dense(G, B);
	for (int j0 = 0; j0 < D; j0 += B) {
		int nj = D - j0 < B ? D - j0 : B;
		struct gemm_view X = gemm_dense(x + j0, D), dX = gemm_dense(dx + j0, D);
		gemm(B, nj, B, &Gv, &X, &dX, 0, gws);
	}
	for (size_t i = 0; i < (size_t)B * (size_t)D; i++)
		dx[i] *= alpha;
}

double isif_loss_forward_backward(float *dx, const float *x, int B, int D,
				  float tau, enum isif_gradient_mode mode,
				  float *ws)
{
	/* Preconditions of the header; NaN tells the caller it broke them. */
	if (B < 2 || B % 2 || D < 1 || !(tau > 0) || !x || !ws)
		return NAN;
	float *S = ws;
	double *e = row_buffer(ws, B);
	double inv_tau = 1.0 / (double)tau, sum = 0;

	similarities(S, x, B, D, gemm_ws(ws, B));
	for (int i = 0; i < B; i++)
		sum += row_terms(S + (size_t)i * B, e, i, B, inv_tau);
	if (dx) {
		/* dL/dX = G·X/(Bτ) (reference) or (G + Gᵀ)·X/(Bτ) (full). */
		if (mode == ISIF_GRAD_FULL)
			symmetrise(S, B);
		grad_x(dx, S, x, B, D, (float)(inv_tau / B), gemm_ws(ws, B));
	}
	return sum / B;
}

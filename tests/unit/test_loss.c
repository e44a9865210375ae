/*
 * tests/unit/test_loss.c — the ISIF loss (core/nn/loss.c) against references
 * that do not share its code: values from tests/unit/ref/loss_ref.py (plain
 * python3, log-sum-exp in double), DESIGN's closed form for equal
 * similarities, a naive double-precision evaluation written here from the
 * formulas, and central differences through tests/unit/gradcheck.h.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "gradcheck.h"
#include "isif/nn/loss.h"

/* ---- helpers ---------------------------------------------------------- */

/* Runs the engine with a freshly allocated workspace of exactly the size it
 * asks for (ASan catches any overrun); offset shifts ws by one float to
 * exercise the alignment of its double buffer. */
static double run_loss(float *dx, const float *x, int B, int D, float tau,
		       enum isif_gradient_mode mode, int offset)
{
	size_t n = isif_loss_workspace(B);
	float *ws = malloc((n + (size_t)offset) * sizeof *ws);
	double L = isif_loss_forward_backward(dx, x, B, D, tau, mode, ws + offset);
	free(ws);
	return L;
}

/*
 * The loss in double, written naively from DESIGN.md with separate row and
 * column copies: s_ij = xrow_i·xcol_j/τ, E_ij = exp(s_ij), Z_i = Σ_{j≠i} E_ij,
 * L = −(1/B) Σ_i [log(E_ip/Z_i) + Σ_{j∉{i,p}} log(1 − E_ij/Z_i)].
 * No max subtraction, no log1p: only for inputs where that is harmless.
 */
static double naive_loss(const float *xr, const float *xc, int B, int D, double tau)
{
	double *E = malloc((size_t)B * sizeof *E), total = 0;
	for (int i = 0; i < B; i++) {
		int p = (i + B / 2) % B;
		double Z = 0;
		for (int j = 0; j < B; j++) {
			double s = 0;
			for (int d = 0; d < D; d++)
				s += (double)xr[i * D + d] * xc[j * D + d];
			E[j] = j == i ? 0 : exp(s / tau);
			Z += E[j];
		}
		total += log(E[p] / Z);
		for (int j = 0; j < B; j++)
			if (j != i && j != p)
				total += log(1 - E[j] / Z);
	}
	free(E);
	return -total / B;
}

/* Random rows of unit length (the loss's inputs are L2-normalised). */
static float *unit_rows(int B, int D, unsigned seed)
{
	float *x = malloc((size_t)B * D * sizeof *x);
	gc_fill_uniform(x, (size_t)B * D, -1, 1, seed);
	for (int i = 0; i < B; i++) {
		double n = 0;
		for (int d = 0; d < D; d++)
			n += (double)x[i * D + d] * x[i * D + d];
		for (int d = 0; d < D; d++)
			x[i * D + d] = (float)(x[i * D + d] / sqrt(n));
	}
	return x;
}

static int all_finite(const float *a, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isfinite(a[i]))
			return 0;
	return 1;
}

/* ---- values worked out independently --------------------------------- */

static void deg2(float *v, double a)
{
	v[0] = (float)cos(a * M_PI / 180);
	v[1] = (float)sin(a * M_PI / 180);
}

/* Case A/B of loss_ref.py: unit vectors at 0°, 90°, 30°, 120°. */
static void case_a(float x[8])
{
	deg2(x + 0, 0);
	deg2(x + 2, 90);
	deg2(x + 4, 30);
	deg2(x + 6, 120);
}

TEST(loss_tiny_hand_values)
{
	float xa[8], xd[8];
	/* Case C: B = 6, D = 3, rational unit vectors, partners i ↔ i + 3. */
	const float xc[18] = { 1, 0, 0, 0, 1, 0, 0, 0, 1,
			       0.6f, 0.8f, 0, 0, 0.6f, 0.8f, 0.8f, 0, 0.6f };
	case_a(xa);
	/* Expected values: python3 tests/unit/ref/loss_ref.py (cases A–D). */
	CHECK_NEAR(run_loss(NULL, xa, 4, 2, 0.5f, ISIF_GRAD_REFERENCE, 0), 0.692606923065, 1e-6);
	CHECK_NEAR(run_loss(NULL, xa, 4, 2, 0.1f, ISIF_GRAD_REFERENCE, 0), 0.025741933619, 1e-6);
	CHECK_NEAR(run_loss(NULL, xc, 6, 3, 0.2f, ISIF_GRAD_REFERENCE, 1), 2.6273725871, 1e-6);
	/* The naive double formula agrees where it is safe (a check on it). */
	CHECK_NEAR(naive_loss(xa, xa, 4, 2, 0.5), 0.692606923065, 1e-9);
	CHECK_NEAR(naive_loss(xc, xc, 6, 3, 0.2), 2.6273725871, 1e-9);

	/* Case D: τ = 0.01 and a negative 1° from the anchor, so Q_01 =
	 * 1 − O(e^−100): 1 − Q is exactly 0 when formed naively in double. */
	deg2(xd + 0, 0);
	deg2(xd + 2, 1);
	deg2(xd + 4, 90);
	deg2(xd + 6, 200);
	CHECK(!isfinite(naive_loss(xd, xd, 4, 2, 0.01)));
	double L = run_loss(NULL, xd, 4, 2, 0.01f, ISIF_GRAD_REFERENCE, 0);
	/* float S carries ~6e-8 per entry, ×1/τ = 6e-6 per logit; measured |diff| 1.6e-6. */
	CHECK_NEAR(L, 154.0578609, 2e-5);
}

TEST(loss_tiny_hand_gradient_near_duplicate)
{
	/* Case D of loss_ref.py (τ = 0.01, Q_01 = 1 − O(e^−100)); central
	 * differences in double there. Forming G_01 = Q(1 − R) + r directly
	 * would cancel two terms of size r ≈ e^100. */
	const double want_ref[8] = { 49.99238551, -49.12737971, 73.49231541,
		-16.44949614, -0.006482622439, 0.7429065789, -49.99482849, 49.40734456 };
	const double want_full[8] = { 115.0589613, -85.33577734, 155.402756,
		37.73252948, -121.9873062, -16.79441127, -74.99102124, 48.9710344 };
	float x[8], dx[8];
	deg2(x + 0, 0);
	deg2(x + 2, 1);
	deg2(x + 4, 90);
	deg2(x + 6, 200);
	run_loss(dx, x, 4, 2, 0.01f, ISIF_GRAD_REFERENCE, 0);
	for (int i = 0; i < 8; i++)
		CHECK_NEAR(dx[i], want_ref[i], 1e-5 * fmax(1, fabs(want_ref[i])));
	run_loss(dx, x, 4, 2, 0.01f, ISIF_GRAD_FULL, 0);
	for (int i = 0; i < 8; i++)
		CHECK_NEAR(dx[i], want_full[i], 1e-5 * fmax(1, fabs(want_full[i])));
}

TEST(loss_tiny_hand_gradient)
{
	float x[8], dx[8];
	/* Central differences in double by loss_ref.py (case A, τ = 0.5):
	 * reference mode perturbs the row copy only, full mode both. */
	const double want_ref[8] = { -0.1855915899, 0.08684250485, 0.4999689728,
		-0.1733749327, -0.4001315894, 0.3462983648, 0.1680036104, -0.1173057813 };
	const double want_full[8] = { -0.5193725583, 0.03453262976, 0.9679759675,
		-0.1985604872, -0.6559464212, 0.7390115342, 0.2895924159, -0.4325235211 };
	case_a(x);
	run_loss(dx, x, 4, 2, 0.5f, ISIF_GRAD_REFERENCE, 0);
	for (int i = 0; i < 8; i++)
		CHECK_NEAR(dx[i], want_ref[i], 1e-5);
	run_loss(dx, x, 4, 2, 0.5f, ISIF_GRAD_FULL, 0);
	for (int i = 0; i < 8; i++)
		CHECK_NEAR(dx[i], want_full[i], 1e-5);
}

/* ---- DESIGN's sanity value -------------------------------------------- */

/* With every off-diagonal similarity equal, P_i = Q_ij = 1/(B − 1):
 *   L = log(B − 1) − (B − 2)·log(1 − 1/(B − 1)), whatever τ. */
static double equal_sim_loss(int B)
{
	return log(B - 1.0) - (B - 2.0) * log(1 - 1 / (B - 1.0));
}

/* Regular simplex in D = B: x_i = (e_i − 1/B)/‖·‖, x_i·x_j = −1/(B − 1). */
static float *simplex(int B)
{
	float *x = malloc((size_t)B * B * sizeof *x);
	double norm = sqrt((B - 1.0) / B);
	for (int i = 0; i < B; i++)
		for (int j = 0; j < B; j++)
			x[i * B + j] = (float)(((i == j) - 1.0 / B) / norm);
	return x;
}

TEST(loss_equal_similarity_sanity)
{
	/* The figure DESIGN.md quotes, to its 4 decimals. */
	CHECK_NEAR(equal_sim_loss(256), 6.5393, 5e-5);
	const int Bs[] = { 4, 16, 256 };
	for (int t = 0; t < 3; t++) {
		int B = Bs[t];
		float *x = simplex(B);
		double L = run_loss(NULL, x, B, B, 0.1f, ISIF_GRAD_REFERENCE, 0);
		CHECK_MSG(fabs(L - equal_sim_loss(B)) < 1e-5, "B=%d simplex L %.9g want %.9g",
			  B, L, equal_sim_loss(B));
		free(x);
	}
	/* All rows identical: every similarity is 1 (all logits tie at the
	 * max), at a τ where exp(1/τ) overflows float. */
	int B = 8;
	float *x = malloc((size_t)B * 3 * sizeof *x);
	for (int i = 0; i < B; i++) {
		x[i * 3 + 0] = 0.6f;
		x[i * 3 + 1] = 0;
		x[i * 3 + 2] = 0.8f;
	}
	CHECK_NEAR(run_loss(NULL, x, B, 3, 0.01f, ISIF_GRAD_FULL, 0), equal_sim_loss(B), 1e-6);
	free(x);
}

/* ---- invariances ------------------------------------------------------ */

TEST(loss_invariance_swap_and_permute)
{
	enum { B = 16, m = 8, D = 8 };
	const int perm[m] = { 3, 0, 6, 1, 7, 2, 5, 4 }; /* image k ← image perm[k] */
	float *x = unit_rows(B, D, 11);
	float y[B * D], dx[B * D], dy[B * D];
	double L = run_loss(dx, x, B, D, 0.1f, ISIF_GRAD_REFERENCE, 0);

	/* Swap the halves: row i of y is row p(i) of x. */
	for (int i = 0; i < B; i++)
		memcpy(y + i * D, x + ((i + m) % B) * D, D * sizeof *y);
	CHECK_NEAR(run_loss(dy, y, B, D, 0.1f, ISIF_GRAD_REFERENCE, 0), L, 1e-6);
	for (int i = 0; i < B; i++)
		for (int d = 0; d < D; d++)
			CHECK_NEAR(dy[i * D + d], dx[((i + m) % B) * D + d], 1e-6);

	/* The same permutation of images in both halves. */
	for (int h = 0; h < 2; h++)
		for (int k = 0; k < m; k++)
			memcpy(y + (h * m + k) * D, x + (h * m + perm[k]) * D, D * sizeof *y);
	CHECK_NEAR(run_loss(dy, y, B, D, 0.1f, ISIF_GRAD_FULL, 0),
		   run_loss(dx, x, B, D, 0.1f, ISIF_GRAD_FULL, 0), 1e-6);
	for (int h = 0; h < 2; h++)
		for (int k = 0; k < m; k++)
			for (int d = 0; d < D; d++)
				CHECK_NEAR(dy[(h * m + k) * D + d], dx[(h * m + perm[k]) * D + d], 1e-6);

	/* Control: permuting one half only breaks the pairs and changes L. */
	memcpy(y + m * D, x + m * D, (size_t)m * D * sizeof *y);
	CHECK(fabs(run_loss(NULL, y, B, D, 0.1f, ISIF_GRAD_REFERENCE, 0) - L) > 1e-2);
	free(x);
}

/* ---- gradient checks -------------------------------------------------- */

struct loss_ctx {
	float *xrow;        /* perturbed by gradcheck */
	const float *xcol;  /* held constant (reference mode) */
	int B, D;
	float tau;
	int engine;         /* 1: engine forward on xrow alone (full mode) */
};

/* L(Xrow, Xcol) in double: the function whose xrow-gradient reference mode gives. */
static double obj_split(void *p)
{
	struct loss_ctx *c = p;
	return naive_loss(c->xrow, c->xcol, c->B, c->D, c->tau);
}

/* L(X) = L(X, X): the true loss, whose gradient full mode gives. */
static double obj_full(void *p)
{
	struct loss_ctx *c = p;
	if (c->engine)
		return run_loss(NULL, c->xrow, c->B, c->D, c->tau, ISIF_GRAD_FULL, 0);
	return naive_loss(c->xrow, c->xrow, c->B, c->D, c->tau);
}

static void gradcheck_case(int B, int D, float tau, unsigned seed)
{
	size_t n = (size_t)B * D;
	float *x = unit_rows(B, D, seed), *xcol = malloc(n * sizeof *xcol);
	float *g_ref = malloc(n * sizeof *g_ref), *g_full = malloc(n * sizeof *g_full);
	struct loss_ctx c = { x, xcol, B, D, tau, 0 };
	struct gc_opts quiet = gc_defaults();
	quiet.quiet = 1;
	memcpy(xcol, x, n * sizeof *x);
	run_loss(g_ref, x, B, D, tau, ISIF_GRAD_REFERENCE, 0);
	run_loss(g_full, x, B, D, tau, ISIF_GRAD_FULL, 0);

	CHECK_EQ(gradcheck("loss ref", x, g_ref, n, obj_split, &c, NULL), 0);
	CHECK_EQ(gradcheck("loss full/naive", x, g_full, n, obj_full, &c, NULL), 0);
	c.engine = 1;
	CHECK_EQ(gradcheck("loss full/engine", x, g_full, n, obj_full, &c, NULL), 0);
	/* Controls: the two modes are different functions' gradients, so
	 * each must fail the other's check. */
	c.engine = 0;
	CHECK(gradcheck("ctl", x, g_ref, n, obj_full, &c, &quiet) != 0);
	CHECK(gradcheck("ctl", x, g_full, n, obj_split, &c, &quiet) != 0);
	free(x);
	free(xcol);
	free(g_ref);
	free(g_full);
}

TEST(loss_gradcheck_both_modes)
{
	gradcheck_case(4, 3, 0.5f, 1);
	gradcheck_case(8, 5, 0.1f, 2);
	gradcheck_case(16, 4, 0.2f, 3);
}

/* ---- stability and edge cases ----------------------------------------- */

TEST(loss_stable_large_batch_small_tau)
{
	enum { B = 2048, D = 128 };
	float *x = unit_rows(B, D, 5), *dx = malloc((size_t)B * D * sizeof *dx);
	for (int mode = 0; mode < 2; mode++) {
		double L = run_loss(dx, x, B, D, 0.01f, (enum isif_gradient_mode)mode, 0);
		CHECK_MSG(isfinite(L) && L > 0, "mode %d: L = %g", mode, L);
		CHECK_MSG(all_finite(dx, (size_t)B * D), "mode %d: non-finite dx", mode);
	}
	free(x);
	free(dx);

	/* Clustered features (every similarity near 1) at τ = 0.01: the
	 * logits reach 100, exp of which overflows float; compare with the
	 * naive double formula (exp(100) is fine in double) at B = 512. */
	enum { B2 = 512, D2 = 16 };
	float *y = malloc((size_t)B2 * D2 * sizeof *y);
	gc_fill_uniform(y, (size_t)B2 * D2, -0.05f, 0.05f, 8);
	for (int i = 0; i < B2; i++) {
		double n = 0;
		y[i * D2] += 1;
		for (int d = 0; d < D2; d++)
			n += (double)y[i * D2 + d] * y[i * D2 + d];
		for (int d = 0; d < D2; d++)
			y[i * D2 + d] = (float)(y[i * D2 + d] / sqrt(n));
	}
	double want = naive_loss(y, y, B2, D2, 0.01);
	double got = run_loss(NULL, y, B2, D2, 0.01f, ISIF_GRAD_REFERENCE, 0);
	CHECK_MSG(fabs(got - want) < 1e-4 * want, "clustered L %.9g naive %.9g", got, want);
	free(y);
}

TEST(loss_batch_of_two_is_zero)
{
	/* B = 2: P_i = 1 and there are no negatives, so L = 0 and dL/dx = 0. */
	float *x = unit_rows(2, 4, 9), dx[8];
	for (int mode = 0; mode < 2; mode++) {
		CHECK_NEAR(run_loss(dx, x, 2, 4, 0.1f, (enum isif_gradient_mode)mode, 1), 0, 1e-12);
		for (int i = 0; i < 8; i++)
			CHECK_NEAR(dx[i], 0, 1e-12);
	}
	free(x);
}

TEST(loss_rejects_bad_shapes)
{
	float x[12] = { 1, 0, 0, 1, 1, 0 }, ws[64];
	CHECK(isnan(isif_loss_forward_backward(NULL, x, 3, 2, 0.1f, ISIF_GRAD_REFERENCE, ws)));
	CHECK(isnan(isif_loss_forward_backward(NULL, x, 0, 2, 0.1f, ISIF_GRAD_REFERENCE, ws)));
	CHECK(isnan(isif_loss_forward_backward(NULL, x, 2, 2, 0.0f, ISIF_GRAD_REFERENCE, ws)));
	CHECK_EQ(isif_loss_workspace(0), 0);
	CHECK(isif_loss_workspace(4) >= 16);
}

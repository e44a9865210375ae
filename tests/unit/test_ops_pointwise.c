/*
 * tests/unit/test_ops_pointwise.c — ReLU forward/backward and the residual
 * add: values by definition (including 0, negative and in-place use) and
 * gradient checks of their input gradients.
 */
#include <math.h>
#include <stdlib.h>

#include "check.h"
#include "gradcheck.h"
#include "isif/nn/ops.h"
#include "ops_testutil.h"

TEST(relu_forward_backward_by_definition)
{
	float x[6] = { -2.0f, -0.0f, 0.0f, 1e-30f, 0.5f, -1e-30f };
	float y[6], dy[6] = { 1, 2, 3, 4, 5, 6 }, dx[6];
	/* max(x, 0), and dy passed where y > 0 (the subgradient at 0 is 0) */
	const float want_y[6] = { 0, 0, 0, 1e-30f, 0.5f, 0 };
	const float want_dx[6] = { 0, 0, 0, 4, 5, 0 };

	isif_relu_forward(y, x, 6);
	for (int i = 0; i < 6; i++)
		CHECK_MSG(y[i] == want_y[i], "y[%d] = %g, want %g", i, y[i], want_y[i]);
	isif_relu_backward(dx, dy, y, 6);
	for (int i = 0; i < 6; i++)
		CHECK_MSG(dx[i] == want_dx[i], "dx[%d] = %g, want %g", i, dx[i], want_dx[i]);

	/* in place: y == x, dx == dy */
	isif_relu_forward(x, x, 6);
	isif_relu_backward(dy, dy, x, 6);
	for (int i = 0; i < 6; i++) {
		CHECK(x[i] == want_y[i]);
		CHECK(dy[i] == want_dx[i]);
	}
}

/* Objective Σ r·relu(x). */
struct relu_gc {
	size_t n;
	float *x, *y, *r;
};

static double relu_objective(void *ctx)
{
	struct relu_gc *g = ctx;
	isif_relu_forward(g->y, g->x, g->n);
	return gc_dot(g->r, g->y, g->n);
}

TEST(relu_gradcheck_dx)
{
	enum { N = 300 };
	struct relu_gc g = { N, tu_rand(N, 1), tu_const(N, 0), tu_rand(N, 2) };
	float *dx = tu_const(N, NAN);

	relu_objective(&g);
	isif_relu_backward(dx, g.r, g.y, N);
	CHECK(tu_gradcheck("relu dx", g.x, dx, N, relu_objective, &g, NULL) == 0);
	free(g.x), free(g.y), free(g.r), free(dx);
}

TEST(add_forward_and_aliasing)
{
	const float a0[4] = { 1, -2, 0.5f, 3 };
	float a[4] = { 1, -2, 0.5f, 3 }, b[4] = { 0.25f, 2, -4, 1e-8f }, y[4];
	const float want[4] = { 1.25f, 0, -3.5f, 3 };

	isif_add_forward(y, a, b, 4);
	for (int i = 0; i < 4; i++)
		CHECK(y[i] == want[i]);
	isif_add_forward(b, a, b, 4); /* y aliases b */
	isif_add_forward(a, a, a, 4); /* y aliases both */
	for (int i = 0; i < 4; i++) {
		CHECK(b[i] == want[i]);
		CHECK(a[i] == 2 * a0[i]);
	}
}

/* Objective Σ r·(a + b): its gradient w.r.t. a and b is r itself. */
struct add_gc {
	size_t n;
	float *a, *b, *y, *r;
};

static double add_objective(void *ctx)
{
	struct add_gc *g = ctx;
	isif_add_forward(g->y, g->a, g->b, g->n);
	return gc_dot(g->r, g->y, g->n);
}

TEST(add_gradcheck_both_inputs)
{
	enum { N = 50 };
	struct add_gc g = { N, tu_rand(N, 3), tu_rand(N, 4), tu_const(N, 0), tu_rand(N, 5) };
	CHECK(tu_gradcheck("add da", g.a, g.r, N, add_objective, &g, NULL) == 0);
	CHECK(tu_gradcheck("add db", g.b, g.r, N, add_objective, &g, NULL) == 0);
	free(g.a), free(g.b), free(g.y), free(g.r);
}

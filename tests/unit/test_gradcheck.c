/*
 * tests/unit/test_gradcheck.c — the gradient checker itself can fail: on the
 * smooth L2 normalisation it accepts the correct gradient, and rejects it
 * after one element is scaled by 2%, after one sign flip and with a missing
 * term; it reports −1 when almost every element sits on a ReLU kink.
 *
 * Note on the bound: an element passes when |num − ana| ≤ atol + rtol·max(...)
 * with rtol = 1e-2, so scaling one element by exactly 1.01 changes it by
 * 0.01·|ana| ≤ rtol·1.01·|ana| and is accepted by construction; 1.02 is the
 * smallest round factor that the default bound rejects.
 */
#include <math.h>
#include <stdlib.h>

#include "check.h"
#include "gradcheck.h"
#include "isif/nn/ops.h"
#include "ops_testutil.h"

enum { GN = 3, GD = 8, GSZ = GN * GD };

struct gc_l2 {
	float *x, *y, *norm, *r;
};

static double gc_l2_objective(void *ctx)
{
	struct gc_l2 *g = ctx;
	isif_l2norm_forward(g->y, g->norm, g->x, GN, GD);
	return gc_dot(g->r, g->y, GSZ);
}

/* The correct analytic gradient of Σ r·normalize(x) into dx. */
static void gc_l2_setup(struct gc_l2 *g, float *dx)
{
	g->x = tu_rand(GSZ, 7);
	g->y = tu_const(GSZ, 0);
	g->norm = tu_const(GN, 0);
	g->r = tu_rand(GSZ, 8);
	gc_l2_objective(g);
	isif_l2norm_backward(dx, g->r, g->y, g->norm, GN, GD);
}

static void gc_l2_free(struct gc_l2 *g)
{
	free(g->x), free(g->y), free(g->norm), free(g->r);
}

static size_t argmax_abs(const float *a, size_t n)
{
	size_t k = 0;
	for (size_t i = 1; i < n; i++)
		if (fabsf(a[i]) > fabsf(a[k]))
			k = i;
	return k;
}

TEST(gradcheck_accepts_correct_gradient)
{
	struct gc_l2 g;
	float dx[GSZ];
	gc_l2_setup(&g, dx);
	CHECK_EQ(gradcheck("l2 dx", g.x, dx, GSZ, gc_l2_objective, &g, NULL), 0);
	gc_l2_free(&g);
}

TEST(gradcheck_rejects_one_element_scaled)
{
	struct gc_l2 g;
	float dx[GSZ];
	struct gc_opts o = gc_defaults();
	o.quiet = 1;
	gc_l2_setup(&g, dx);
	size_t k = argmax_abs(dx, GSZ);
	dx[k] *= 1.02f;
	CHECK_EQ(gradcheck("l2 dx", g.x, dx, GSZ, gc_l2_objective, &g, &o), 1);
	/* the same on a small element: 2% of a value still above the atol floor */
	dx[k] /= 1.02f;
	size_t j = (k + 1) % GSZ;
	while (fabsf(dx[j]) < 0.3f * fabsf(dx[k]))
		j = (j + 1) % GSZ;
	dx[j] *= 0.97f;
	CHECK_EQ(gradcheck("l2 dx", g.x, dx, GSZ, gc_l2_objective, &g, &o), 1);
	gc_l2_free(&g);
}

TEST(gradcheck_rejects_one_sign_flip)
{
	struct gc_l2 g;
	float dx[GSZ];
	struct gc_opts o = gc_defaults();
	o.quiet = 1;
	gc_l2_setup(&g, dx);
	size_t k = (argmax_abs(dx, GSZ) + 5) % GSZ; /* any element not near 0 */
	while (fabsf(dx[k]) < 0.05f)
		k = (k + 1) % GSZ;
	dx[k] = -dx[k];
	CHECK_EQ(gradcheck("l2 dx", g.x, dx, GSZ, gc_l2_objective, &g, &o), 1);
	gc_l2_free(&g);
}

/* dx = dy/‖x‖ without the projection −y·(yᵀdy)/‖x‖: a missing term. */
TEST(gradcheck_rejects_missing_term)
{
	struct gc_l2 g;
	float dx[GSZ];
	struct gc_opts o = gc_defaults();
	o.quiet = 1;
	gc_l2_setup(&g, dx);
	for (int i = 0; i < GN; i++)
		for (int j = 0; j < GD; j++)
			dx[i * GD + j] = g.r[i * GD + j] / g.norm[i];
	CHECK(gradcheck("l2 dx", g.x, dx, GSZ, gc_l2_objective, &g, &o) > GSZ / 2);
	gc_l2_free(&g);
}

struct gc_relu {
	float *x, *y, *r;
};

static double gc_relu_objective(void *ctx)
{
	struct gc_relu *g = ctx;
	isif_relu_forward(g->y, g->x, GSZ);
	return gc_dot(g->r, g->y, GSZ);
}

/* Every input within eps/4 of the kink: too many skipped elements is −1. */
TEST(gradcheck_reports_kinks)
{
	struct gc_relu g = { tu_rand(GSZ, 9), tu_const(GSZ, 0), tu_const(GSZ, 1.0f) };
	float dx[GSZ];
	struct gc_opts o = gc_defaults();
	o.quiet = 1;
	for (int i = 0; i < GSZ; i++)
		g.x[i] *= 2.5e-3f;
	gc_relu_objective(&g);
	isif_relu_backward(dx, g.r, g.y, GSZ);
	CHECK_EQ(gradcheck("relu dx", g.x, dx, GSZ, gc_relu_objective, &g, &o), -1);
	free(g.x), free(g.y), free(g.r);
}

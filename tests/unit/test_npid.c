/*
 * tests/unit/test_npid.c — NPID's loss and memory bank (core/nn/npid_impl.h):
 * hand-computed values on tiny banks (the arithmetic in the comments, checked
 * with python3 math), central-difference gradient checks of the exact and the
 * NCE loss, the bank update, and the same result on any thread count.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "gradcheck.h"
#include "base/team_impl.h"
#include "isif/base/rng.h"
#include "nn/npid_impl.h"

/* Bank rows v0 = (1,0), v1 = (0,1), v2 = (−1,0), v3 = (0,−1) (n of them). */
static void compass_bank(struct npid *p, int n)
{
	static const float rows[4][2] = { { 1, 0 }, { 0, 1 }, { -1, 0 }, { 0, -1 } };
	struct isif_error err = { 0 };
	CHECK_EQ(npid_create(p, n, 2, 1, p->k, 1, 1, &err), ISIF_OK);
	memcpy(p->bank, rows, (size_t)n * 2 * sizeof(float));
}

/* f = (1,0), image 0, τ = 1, bank v0..v2: s = (1, 0, −1),
 * L = −1 + ln(e + 1 + e⁻¹) = 0.40760596444438035; p = softmax(s) =
 * (0.665241, 0.244728, 0.090031), dL/df = Σ_j (p_j − δ_j0)·v_j
 * = (p0 − 1 − p2, p1) = (−0.42478961739555854, 0.24472847105479764). */
TEST(npid_exact_hand_values)
{
	struct npid p = { .k = 0 };
	compass_bank(&p, 3);
	float f[2] = { 1, 0 }, df[2];
	int32_t idx[1] = { 0 };
	CHECK_NEAR(npid_loss(&p, df, f, idx, 1, 1.0, NULL), 0.40760596444438035, 1e-6);
	CHECK_NEAR(df[0], -0.42478961739555854, 1e-6);
	CHECK_NEAR(df[1], 0.24472847105479764, 1e-6);
	npid_free(&p);
}

/* NCE, n = 4, k = 2, noise (v2, v1), f = (1,0), image 0, τ = 1:
 * e = exp(f·v) = (e, e⁻¹, 1); Z = n·mean(e) = 4·(e + e⁻¹ + 1)/3 = 5.448215026173983;
 * a = e/Z, c = k/n = 0.5;
 * L = −ln(a0/(a0+c)) − ln(c/(a1+c)) − ln(c/(a2+c)) = 1.1335776098102421;
 * dL/ds = (−c/(a0+c), a1/(a1+c), a2/(a2+c)) = (−0.500535, 0.118978, 0.268521);
 * dL/df = g0·v0 + g1·v2 + g2·v1 = (−0.6195135429003255, 0.2685207117372073). */
TEST(npid_nce_hand_values)
{
	struct npid p = { .k = 2 };
	compass_bank(&p, 4);
	p.noise[0] = 2;
	p.noise[1] = 1;
	float f[2] = { 1, 0 }, df[2];
	int32_t idx[1] = { 0 };
	CHECK_NEAR(npid_loss(&p, df, f, idx, 1, 1.0, NULL), 1.1335776098102421, 1e-6);
	CHECK_NEAR(p.z, 5.448215026173983, 1e-5);
	CHECK_NEAR(df[0], -0.6195135429003255, 1e-6);
	CHECK_NEAR(df[1], 0.2685207117372073, 1e-6);
	/* Z stays what the first step estimated */
	p.bank[0] = 0;
	p.bank[1] = 1;
	npid_loss(&p, NULL, f, idx, 1, 1.0, NULL);
	CHECK_NEAR(p.z, 5.448215026173983, 1e-5);
	npid_free(&p);
}

/* v1 = (0,1), f = (1,0), μ = 0.5: 0.5·(0,1) + 0.5·(1,0) = (0.5, 0.5),
 * normalised (1/√2, 1/√2); the other rows are untouched. */
TEST(npid_bank_update_hand_values)
{
	struct npid p = { .k = 0 };
	compass_bank(&p, 4);
	float f[2] = { 1, 0 };
	int32_t idx[1] = { 1 };
	npid_bank_update(&p, f, idx, 1, 0.5);
	CHECK_NEAR(p.bank[2], 0.70710678118654752, 1e-7);
	CHECK_NEAR(p.bank[3], 0.70710678118654752, 1e-7);
	CHECK(p.bank[0] == 1 && p.bank[1] == 0 && p.bank[4] == -1 && p.bank[7] == -1);

	/* momentum 0.9 keeps more of the old row v3 = (0,−1):
	 * (0.1, −0.9)/√0.82 = (0.11043152607484654, −0.9938837346736189) */
	idx[0] = 3;
	npid_bank_update(&p, f, idx, 1, 0.9);
	CHECK_NEAR(p.bank[6], 0.11043152607484654, 1e-7);
	CHECK_NEAR(p.bank[7], -0.9938837346736189, 1e-7);
	npid_free(&p);
}

struct npid_ctx {
	struct npid *p;
	float *f;
	const int32_t *idx;
	int m;
	double tau;
};

static double npid_obj(void *arg)
{
	struct npid_ctx *c = arg;
	return npid_loss(c->p, NULL, c->f, c->idx, c->m, c->tau, NULL);
}

static void gradcheck_npid(int k, double tau)
{
	int m = 4, D = 5, n = 10;
	struct npid p;
	struct isif_error err = { 0 };
	CHECK_EQ(npid_create(&p, n, D, m, k, 1, 3, &err), ISIF_OK);
	float f[20], df[20];
	gc_fill_uniform(f, 20, -0.6f, 0.6f, 9);
	int32_t idx[4] = { 7, 2, 0, 5 };
	if (k > 0) {
		struct isif_rng rng;
		isif_rng_seed(&rng, 4, 0);
		npid_draw_noise(&p, m, &rng);
	}
	npid_loss(&p, df, f, idx, m, tau, NULL);   /* NCE: fixes Z first */
	struct npid_ctx c = { &p, f, idx, m, tau };
	CHECK_EQ(gradcheck(k ? "npid nce" : "npid exact", f, df, 20, npid_obj, &c, NULL), 0);
	/* control: a gradient with one sign flipped fails */
	struct gc_opts quiet = gc_defaults();
	quiet.quiet = 1;
	df[3] = -df[3] + (df[3] == 0);
	CHECK(gradcheck("ctl", f, df, 20, npid_obj, &c, &quiet) != 0);
	npid_free(&p);
}

TEST(npid_gradcheck_exact_and_nce)
{
	gradcheck_npid(0, 0.5);
	gradcheck_npid(0, 0.2);
	gradcheck_npid(3, 0.5);
	gradcheck_npid(6, 0.2);
}

TEST(npid_exact_same_on_any_thread_count)
{
	int m = 32, D = 16, n = 300;
	struct npid p1, p2;
	struct isif_error err = { 0 };
	CHECK_EQ(npid_create(&p1, n, D, m, 0, 1, 5, &err), ISIF_OK);
	CHECK_EQ(npid_create(&p2, n, D, m, 0, 3, 5, &err), ISIF_OK);
	CHECK(memcmp(p1.bank, p2.bank, (size_t)n * D * sizeof(float)) == 0);
	float *f = malloc((size_t)m * D * sizeof(float));
	float *d1 = malloc((size_t)m * D * sizeof(float)), *d2 = malloc((size_t)m * D * sizeof(float));
	int32_t idx[32];
	gc_fill_uniform(f, (size_t)m * D, -1, 1, 2);
	for (int i = 0; i < m; i++)
		idx[i] = (i * 37) % n;
	struct team *tm = team_create(3);
	double l1 = npid_loss(&p1, d1, f, idx, m, 0.07, NULL);
	double l2 = npid_loss(&p2, d2, f, idx, m, 0.07, tm);
	CHECK(l1 == l2);
	CHECK(memcmp(d1, d2, (size_t)m * D * sizeof(float)) == 0);
	team_free(tm);
	free(f);
	free(d1);
	free(d2);
	npid_free(&p1);
	npid_free(&p2);
}

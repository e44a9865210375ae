/*
 * core/nn/npid.c — NPID's memory bank and loss (core/nn/npid_impl.h).
 *
 * Exact softmax: the batch's similarities to the whole bank are one GEMM
 * (m × n × D) and the gradient a second (m × D × n), the batch's rows split
 * over the team; each row's arithmetic is the same whoever runs it, so the
 * result does not depend on the thread count. NCE touches k + 1 bank rows
 * per image: plain dot products on the calling thread.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/gemm_impl.h"
#include "base/team_impl.h"
#include "isif/base/rng.h"
#include "nn/npid_impl.h"

static void normalise(float *v, int D)
{
	double s = 0;
	for (int j = 0; j < D; j++)
		s += (double)v[j] * v[j];
	double inv = s > 0 ? 1 / sqrt(s) : 0;
	for (int j = 0; j < D; j++)
		v[j] = (float)(v[j] * inv);
}

enum isif_rc npid_create(struct npid *p, int64_t n, int D, int m, int k, int members,
			 uint64_t seed, struct isif_error *err)
{
	memset(p, 0, sizeof *p);
	p->n = n;
	p->D = D;
	p->m = m;
	p->k = k;
	p->members = members < 1 ? 1 : members;
	size_t cols = k > 0 ? (size_t)k + 1 : (size_t)n;
	size_t g1 = gemm_workspace(m, (int)n, D), g2 = gemm_workspace(m, D, (int)n);
	p->gws_len = (g1 > g2 ? g1 : g2) + 16;
	p->bank = malloc((size_t)n * D * sizeof(float));
	p->logits = malloc((size_t)m * cols * sizeof(float));
	p->row_loss = malloc((size_t)m * sizeof(double));
	p->noise = malloc((size_t)m * (k > 0 ? k : 1) * sizeof(int32_t));
	p->gws = k > 0 ? NULL : malloc((size_t)p->members * p->gws_len * sizeof(float));
	if (!p->bank || !p->logits || !p->row_loss || !p->noise || (k == 0 && !p->gws)) {
		npid_free(p);
		return isif_fail(err, ISIF_ENOMEM, "npid: cannot allocate the memory bank "
				 "(%lld × %d) and its scratch", (long long)n, D);
	}
	struct isif_rng rng;
	isif_rng_seed(&rng, seed, 41);
	for (int64_t i = 0; i < n; i++) {
		for (int j = 0; j < D; j++)
			p->bank[i * D + j] = (float)isif_rng_range(&rng, -1, 1);
		normalise(p->bank + i * D, D);
	}
	return ISIF_OK;
}

void npid_free(struct npid *p)
{
	free(p->bank);
	free(p->logits);
	free(p->row_loss);
	free(p->noise);
	free(p->gws);
	memset(p, 0, sizeof *p);
}

void npid_draw_noise(struct npid *p, int m, struct isif_rng *rng)
{
	for (int64_t i = 0; i < (int64_t)m * p->k; i++)
		p->noise[i] = (int32_t)isif_rng_below(rng, (uint32_t)p->n);
}

/* ---- exact softmax over the bank ----------------------------------------- */

struct exact {
	struct npid *p;
	float *df;
	const float *f;
	const int32_t *idx;
	int m;
	double tau;
};

static void exact_rows(void *arg, int rank, int size)
{
	const struct exact *e = arg;
	struct npid *p = e->p;
	size_t lo, hi;
	team_share((size_t)e->m, GEMM_MR, rank, size, &lo, &hi);
	if (lo >= hi)
		return;
	int r = (int)(hi - lo), D = p->D, n = (int)p->n;
	float *L = p->logits + lo * (size_t)n, *ws = p->gws + (size_t)rank * p->gws_len;
	struct gemm_view A = gemm_dense(e->f + lo * D, D), B = gemm_dense_t(p->bank, D),
			 C = gemm_dense(L, n);
	gemm(r, n, D, &A, &B, &C, 0, ws);
	double inv_tau = 1 / e->tau, scale = 1 / (e->m * e->tau);
	for (int i = 0; i < r; i++) {
		float *s = L + (size_t)i * n;
		int target = e->idx[lo + i];
		double mx = -INFINITY, sum = 0;
		for (int j = 0; j < n; j++)
			mx = s[j] * inv_tau > mx ? s[j] * inv_tau : mx;
		for (int j = 0; j < n; j++)
			sum += exp(s[j] * inv_tau - mx);
		p->row_loss[lo + i] = mx + log(sum) - s[target] * inv_tau;
		if (!e->df)
			continue;
		for (int j = 0; j < n; j++)
			s[j] = (float)((exp(s[j] * inv_tau - mx) / sum - (j == target)) * scale);
	}
	if (!e->df)
		return;
	struct gemm_view G = gemm_dense(L, n), V = gemm_dense(p->bank, D),
			 dF = gemm_dense(e->df + lo * D, D);
	gemm(r, D, n, &G, &V, &dF, 0, ws);
}

/* ---- NCE ------------------------------------------------------------------- */

static double dot(const float *a, const float *b, int D)
{
	double s = 0;
	for (int j = 0; j < D; j++)
		s += (double)a[j] * b[j];
	return s;
}

/* Bank row of column j of row i: the image's own (j = 0), else noise. */
static int32_t nce_row(const struct npid *p, const int32_t *idx, int i, int j)
{
	return j == 0 ? idx[i] : p->noise[(size_t)i * p->k + j - 1];
}

static void nce(struct npid *p, float *df, const float *f, const int32_t *idx, int m, double tau)
{
	int D = p->D, cols = p->k + 1;
	double sum = 0;
	for (int i = 0; i < m; i++)
		for (int j = 0; j < cols; j++) {
			double e = exp(dot(f + (size_t)i * D, p->bank + (size_t)nce_row(p, idx, i, j) * D,
					   D) / tau);
			p->logits[(size_t)i * cols + j] = (float)e;
			sum += e;
		}
	if (p->z <= 0)
		p->z = sum / ((double)m * cols) * (double)p->n;
	double c = (double)p->k / (double)p->n, scale = 1 / (m * tau);
	if (df)
		memset(df, 0, (size_t)m * D * sizeof(float));
	for (int i = 0; i < m; i++) {
		double loss = 0;
		for (int j = 0; j < cols; j++) {
			double a = p->logits[(size_t)i * cols + j] / p->z;
			/* dL/ds: −c/(a + c) for the image's own row, a/(a + c) for noise */
			loss -= j == 0 ? log(a / (a + c)) : log(c / (a + c));
			if (!df)
				continue;
			double g = (j == 0 ? -c / (a + c) : a / (a + c)) * scale;
			const float *v = p->bank + (size_t)nce_row(p, idx, i, j) * D;
			for (int t = 0; t < D; t++)
				df[(size_t)i * D + t] += (float)(g * v[t]);
		}
		p->row_loss[i] = loss;
	}
}

double npid_loss(struct npid *p, float *df, const float *f, const int32_t *idx, int m,
		 double tau, struct team *tm)
{
	if (p->k > 0) {
		nce(p, df, f, idx, m, tau);
	} else {
		struct exact e = { p, df, f, idx, m, tau };
		if (team_size(tm) > 1 && team_size(tm) <= p->members && m > GEMM_MR)
			team_run(tm, exact_rows, &e);
		else
			exact_rows(&e, 0, 1);
	}
	double loss = 0;
	for (int i = 0; i < m; i++)
		loss += p->row_loss[i];
	return loss / m;
}

void npid_bank_update(struct npid *p, const float *f, const int32_t *idx, int m,
		      double momentum)
{
	int D = p->D;
	for (int i = 0; i < m; i++) {
		float *v = p->bank + (size_t)idx[i] * D;
		for (int j = 0; j < D; j++)
			v[j] = (float)(momentum * v[j] + (1 - momentum) * f[(size_t)i * D + j]);
		normalise(v, D);
	}
}

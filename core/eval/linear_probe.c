/*
 * core/eval/linear_probe.c — the linear probe of isif/eval/probe.h: multinomial
 * logistic regression with L2 on frozen features, by full-batch L-BFGS.
 *
 * Parameters θ = (W[C,d], b[C]) live in standardised feature space
 * x̃ = (x − μ)/σ; each evaluation folds the standardisation into float
 * weights W' = W/σ, b' = b − W'μ and runs on the caller's raw features, so
 * nothing of size n·d is copied. Per chunk of CHUNK rows: Zᵀ[C, r] = W'·Xᵀ
 * (GEMM, M = C: the small class count sits on the kernel's short side),
 * a stable softmax per column, Gᵀ = (P − Y)/n in place, then
 * Gᵀ·X[r, d] into the chunk's own partial gradient. Chunks are fixed by n,
 * not by threads, and summed in chunk order in double: the fit is the same
 * on any thread count.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/gemm_impl.h"
#include "base/team_impl.h"
#include "eval/eval_impl.h"
#include "isif/base/clock.h"
#include "isif/eval/probe.h"

#define CHUNK 2048
#define LBFGS_PAIRS 10
#define ARMIJO_C 1e-4
#define MAX_BACKTRACK 30

/* The data of one pass over a split, and its scratch. */
struct pass {
	const float *x;
	const int32_t *y;
	int64_t n, chunks;
	int d, C, grad;
	const float *w;       /* [C, d] folded weights */
	const float *b;       /* [C] folded bias */
	double inv_n;
	float *zt;            /* per member: [C, CHUNK] */
	float *ws;            /* per member: ws_len floats of GEMM scratch */
	size_t ws_len;
	float *part;          /* per chunk: [C, d] Gᵀ·X */
	double *gsum;         /* per chunk: [C] Σ_i G */
	double *loss;         /* per chunk: Σ_i −log p_{y_i} */
	int64_t *correct;     /* per chunk: argmax = label */
};

/* Softmax of column j of zt[C, r] (after the bias), its loss and whether its
 * argmax (lowest class on ties) is the label; with grad, the column becomes
 * (p − onehot)/n and adds into gsum. */
static void column(const struct pass *p, float *zt, int r, int j, int label, double *loss,
		   int64_t *correct, double *gsum)
{
	int C = p->C, best = 0;
	double mx = -INFINITY, sum = 0;
	for (int c = 0; c < C; c++) {
		float *z = &zt[(size_t)c * r + j];
		*z += p->b[c];
		if (*z > mx) {
			mx = *z;
			best = c;
		}
	}
	for (int c = 0; c < C; c++)
		sum += exp(zt[(size_t)c * r + j] - mx);
	*loss += log(sum) + mx - zt[(size_t)label * r + j];
	*correct += best == label;
	if (!p->grad)
		return;
	for (int c = 0; c < C; c++) {
		float *z = &zt[(size_t)c * r + j];
		double g = (exp(*z - mx) / sum - (c == label)) * p->inv_n;
		*z = (float)g;
		gsum[c] += g;
	}
}

static void pass_chunk(const struct pass *p, int64_t k, float *zt, float *ws)
{
	int64_t r0 = k * CHUNK;
	int r = (int)(p->n - r0 < CHUNK ? p->n - r0 : CHUNK), C = p->C, d = p->d;
	const float *xk = p->x + r0 * d;
	struct gemm_view A = gemm_dense(p->w, d), B = gemm_dense_t(xk, d), Z = gemm_dense(zt, r);
	gemm(C, r, d, &A, &B, &Z, 0, ws);
	double loss = 0, *gsum = p->gsum ? p->gsum + k * C : NULL;
	int64_t correct = 0;
	if (gsum)
		memset(gsum, 0, (size_t)C * sizeof(double));
	for (int j = 0; j < r; j++)
		column(p, zt, r, j, p->y[r0 + j], &loss, &correct, gsum);
	p->loss[k] = loss;
	p->correct[k] = correct;
	if (!p->grad)
		return;
	struct gemm_view G = gemm_dense(zt, r), X = gemm_dense(xk, d),
			 P = gemm_dense(p->part + k * (size_t)C * d, d);
	gemm(C, d, r, &G, &X, &P, 0, ws);
}

static void pass_member(void *arg, int rank, int size)
{
	const struct pass *p = arg;
	size_t lo, hi;
	team_share((size_t)p->chunks, 1, rank, size, &lo, &hi);
	for (size_t k = lo; k < hi; k++)
		pass_chunk(p, (int64_t)k, p->zt + (size_t)rank * p->C * CHUNK,
			   p->ws + (size_t)rank * p->ws_len);
}

/* The probe's state: standardisation, parameters, scratch. */
struct probe {
	int d, C, members;
	int64_t n;
	double lambda;
	double *mu, *inv_sd;  /* [d] */
	float *w, *b;         /* folded [C, d], [C] */
	struct pass pass;
	struct team *tm;
};

static void fold(struct probe *s, const double *theta)
{
	int d = s->d, C = s->C;
	for (int c = 0; c < C; c++) {
		double bias = theta[(size_t)C * d + c];
		for (int j = 0; j < d; j++) {
			double w = theta[(size_t)c * d + j] * s->inv_sd[j];
			s->w[(size_t)c * d + j] = (float)w;
			bias -= w * s->mu[j];
		}
		s->b[c] = (float)bias;
	}
}

/* Runs a pass of x[n] (grad: with the gradient parts); returns Σ loss and
 * the number right. */
static double run_pass(struct probe *s, const float *x, const int32_t *y, int64_t n, int grad,
		       int64_t *correct)
{
	struct pass *p = &s->pass;
	p->x = x;
	p->y = y;
	p->n = n;
	p->chunks = (n + CHUNK - 1) / CHUNK;
	p->grad = grad;
	p->inv_n = 1.0 / (double)s->n;
	int64_t members = p->chunks < s->members ? p->chunks : s->members;
	if (members > 1)
		team_run(s->tm, pass_member, p);
	else
		pass_member(p, 0, 1);
	double loss = 0;
	*correct = 0;
	for (int64_t k = 0; k < p->chunks; k++) {
		loss += p->loss[k];
		*correct += p->correct[k];
	}
	return loss;
}

/* f(θ) and ∇f(θ) on the train split. */
static double objective(struct probe *s, const double *theta, double *g, const float *x,
			const int32_t *y)
{
	int d = s->d, C = s->C;
	size_t nw = (size_t)C * d;
	int64_t correct;
	fold(s, theta);
	double f = run_pass(s, x, y, s->n, 1, &correct) / (double)s->n;
	memset(g, 0, (nw + C) * sizeof(double));
	for (int64_t k = 0; k < s->pass.chunks; k++) {
		const float *part = s->pass.part + k * nw;
		const double *gs = s->pass.gsum + k * C;
		for (size_t i = 0; i < nw; i++)
			g[i] += part[i];
		for (int c = 0; c < C; c++)
			g[nw + c] += gs[c];
	}
	for (int c = 0; c < C; c++)
		for (int j = 0; j < d; j++) {
			size_t i = (size_t)c * d + j;
			g[i] = (g[i] - s->mu[j] * g[nw + c]) * s->inv_sd[j] + s->lambda * theta[i];
			f += 0.5 * s->lambda * theta[i] * theta[i];
		}
	return f;
}

static double dot(const double *a, const double *b, size_t n)
{
	double s = 0;
	for (size_t i = 0; i < n; i++)
		s += a[i] * b[i];
	return s;
}

/* Per-dimension mean and 1/sd of x[n, d] (1/sd = 0 for a constant dimension). */
static void standardise(struct probe *s, const float *x)
{
	int d = s->d;
	double *sq = s->inv_sd;
	memset(s->mu, 0, (size_t)d * sizeof(double));
	memset(sq, 0, (size_t)d * sizeof(double));
	for (int64_t i = 0; i < s->n; i++)
		for (int j = 0; j < d; j++)
			s->mu[j] += x[i * d + j];
	for (int j = 0; j < d; j++)
		s->mu[j] /= (double)s->n;
	for (int64_t i = 0; i < s->n; i++)
		for (int j = 0; j < d; j++) {
			double t = x[i * d + j] - s->mu[j];
			sq[j] += t * t;
		}
	for (int j = 0; j < d; j++) {
		double sd = sqrt(sq[j] / (double)s->n);
		s->inv_sd[j] = sd > 1e-12 * (1 + fabs(s->mu[j])) ? 1 / sd : 0;
	}
}

/* Two-loop recursion: dir = −H·g from the stored pairs (newest at head−1). */
static void lbfgs_direction(double *dir, const double *g, size_t P, double *const *sv,
			    double *const *yv, const double *rho, int pairs, int head, double *alpha)
{
	for (size_t i = 0; i < P; i++)
		dir[i] = -g[i];
	for (int t = 0; t < pairs; t++) {
		int k = (head - 1 - t + LBFGS_PAIRS) % LBFGS_PAIRS;
		alpha[k] = rho[k] * dot(sv[k], dir, P);
		for (size_t i = 0; i < P; i++)
			dir[i] -= alpha[k] * yv[k][i];
	}
	if (pairs > 0) {
		int k = (head - 1 + LBFGS_PAIRS) % LBFGS_PAIRS;
		double gamma = dot(sv[k], yv[k], P) / dot(yv[k], yv[k], P);
		for (size_t i = 0; i < P; i++)
			dir[i] *= gamma;
	}
	for (int t = pairs - 1; t >= 0; t--) {
		int k = (head - 1 - t + LBFGS_PAIRS) % LBFGS_PAIRS;
		double beta = rho[k] * dot(yv[k], dir, P);
		for (size_t i = 0; i < P; i++)
			dir[i] += (alpha[k] - beta) * sv[k][i];
	}
}

/* Minimises the objective from θ = 0; returns the final f and its iterations. */
static enum isif_rc lbfgs(struct probe *s, const float *x, const int32_t *y, int iters,
			  double *theta, double *f_out, int *iters_out)
{
	size_t P = (size_t)s->C * s->d + s->C;
	double *buf = calloc(P * (5 + 2 * LBFGS_PAIRS), sizeof(double));
	if (!buf)
		return ISIF_ENOMEM;
	double *g = buf, *dir = g + P, *tn = dir + P, *gn = tn + P, *sv[LBFGS_PAIRS],
	       *yv[LBFGS_PAIRS], rho[LBFGS_PAIRS], alpha[LBFGS_PAIRS];
	for (int k = 0; k < LBFGS_PAIRS; k++) {
		sv[k] = buf + P * (5 + 2 * k);
		yv[k] = sv[k] + P;
	}
	memset(theta, 0, P * sizeof(double));
	double f = objective(s, theta, g, x, y);
	int pairs = 0, head = 0, it = 0;
	for (; it < iters; it++) {
		double gnorm = sqrt(dot(g, g, P));
		if (!(gnorm > 1e-7))
			break;
		lbfgs_direction(dir, g, P, sv, yv, rho, pairs, head, alpha);
		double gtd = dot(g, dir, P);
		if (!(gtd < 0)) {   /* not a descent direction: restart from −g */
			pairs = 0;
			for (size_t i = 0; i < P; i++)
				dir[i] = -g[i];
			gtd = -gnorm * gnorm;
		}
		double step = pairs ? 1 : 1 / gnorm, fn = f;
		int ok = 0;
		for (int ls = 0; ls < MAX_BACKTRACK && !ok; ls++, step *= 0.5) {
			for (size_t i = 0; i < P; i++)
				tn[i] = theta[i] + step * dir[i];
			fn = objective(s, tn, gn, x, y);
			ok = fn <= f + ARMIJO_C * step * gtd;
		}
		if (!ok)
			break;
		for (size_t i = 0; i < P; i++) {
			sv[head][i] = tn[i] - theta[i];
			yv[head][i] = gn[i] - g[i];
		}
		double sy = dot(sv[head], yv[head], P);
		if (sy > 1e-12) {
			rho[head] = 1 / sy;
			head = (head + 1) % LBFGS_PAIRS;
			pairs += pairs < LBFGS_PAIRS;
		}
		memcpy(theta, tn, P * sizeof(double));
		memcpy(g, gn, P * sizeof(double));
		f = fn;
	}
	*f_out = f;
	*iters_out = it;
	free(buf);
	return ISIF_OK;
}

static void probe_free(struct probe *s)
{
	free(s->mu);
	free(s->inv_sd);
	free(s->w);
	free(s->b);
	free(s->pass.zt);
	free(s->pass.ws);
	free(s->pass.part);
	free(s->pass.gsum);
	free(s->pass.loss);
	free(s->pass.correct);
}

static enum isif_rc probe_alloc(struct probe *s, int64_t n_max)
{
	int d = s->d, C = s->C;
	int64_t chunks = (n_max + CHUNK - 1) / CHUNK;
	size_t ws1 = gemm_workspace(C, CHUNK, d), ws2 = gemm_workspace(C, d, CHUNK);
	s->pass.ws_len = (ws1 > ws2 ? ws1 : ws2) + 16;
	s->pass.d = d;
	s->pass.C = C;
	s->mu = malloc((size_t)d * sizeof(double));
	s->inv_sd = malloc((size_t)d * sizeof(double));
	s->w = malloc((size_t)C * d * sizeof(float));
	s->b = malloc((size_t)C * sizeof(float));
	s->pass.w = s->w;
	s->pass.b = s->b;
	s->pass.zt = malloc((size_t)s->members * C * CHUNK * sizeof(float));
	s->pass.ws = malloc((size_t)s->members * s->pass.ws_len * sizeof(float));
	s->pass.part = malloc((size_t)chunks * C * d * sizeof(float));
	s->pass.gsum = malloc((size_t)chunks * C * sizeof(double));
	s->pass.loss = malloc((size_t)chunks * sizeof(double));
	s->pass.correct = malloc((size_t)chunks * sizeof(int64_t));
	return s->mu && s->inv_sd && s->w && s->b && s->pass.zt && s->pass.ws && s->pass.part &&
	       s->pass.gsum && s->pass.loss && s->pass.correct ? ISIF_OK : ISIF_ENOMEM;
}

static int labels_ok(const int32_t *y, int64_t n, int C)
{
	for (int64_t i = 0; i < n; i++)
		if (y[i] < 0 || y[i] >= C)
			return 0;
	return 1;
}

enum isif_rc linear_probe_team(const float *x, const int32_t *y, int64_t n, const float *xt,
			       const int32_t *yt, int64_t nt, int d, int num_classes,
			       const struct isif_probe_options *opt, struct team *tm,
			       struct isif_probe_result *out, struct isif_error *err)
{
	memset(out, 0, sizeof *out);
	if (n < 1 || d < 1 || num_classes < 2 || nt < 0)
		return isif_fail(err, ISIF_EINVAL, "linear probe: needs n ≥ 1, d ≥ 1, ≥ 2 classes");
	if (!labels_ok(y, n, num_classes) || !labels_ok(yt, nt, num_classes))
		return isif_fail(err, ISIF_EINVAL, "linear probe: a label outside 0..%d",
				 num_classes - 1);
	double t0 = isif_now_s();
	struct probe s = { .d = d, .C = num_classes, .n = n, .members = team_size(tm), .tm = tm };
	double lambda = opt && opt->lambda ? opt->lambda : ISIF_PROBE_LAMBDA;
	s.lambda = lambda < 0 ? 0 : lambda;
	int iters = opt && opt->iters > 0 ? opt->iters : ISIF_PROBE_ITERS;
	size_t P = (size_t)num_classes * d + num_classes;
	double *theta = malloc(P * sizeof(double));
	enum isif_rc rc = probe_alloc(&s, n > nt ? n : nt);
	if (!rc && !theta)
		rc = ISIF_ENOMEM;
	if (!rc) {
		standardise(&s, x);
		rc = lbfgs(&s, x, y, iters, theta, &out->loss, &out->iters);
	}
	if (!rc) {
		int64_t right;
		fold(&s, theta);
		run_pass(&s, x, y, n, 0, &right);
		out->train_top1 = (double)right / (double)n;
		if (nt > 0) {
			run_pass(&s, xt, yt, nt, 0, &right);
			out->top1 = (double)right / (double)nt;
		}
	}
	free(theta);
	probe_free(&s);
	if (rc)
		return isif_fail(err, rc, "linear probe: cannot allocate its scratch");
	out->seconds = isif_now_s() - t0;
	return ISIF_OK;
}

enum isif_rc isif_linear_probe(const float *x, const int32_t *y, int64_t n,
			       const float *xt, const int32_t *yt, int64_t nt, int d,
			       int num_classes, const struct isif_probe_options *opt,
			       struct isif_probe_result *out, struct isif_error *err)
{
	int threads = opt && opt->threads > 1 ? opt->threads : 1;
	struct team *tm = threads > 1 ? team_create(threads) : NULL;
	if (threads > 1 && !tm)
		return isif_fail(err, ISIF_ENOMEM, "linear probe: cannot start %d threads", threads);
	enum isif_rc rc = linear_probe_team(x, y, n, xt, yt, nt, d, num_classes, opt, tm, out, err);
	team_free(tm);
	return rc;
}

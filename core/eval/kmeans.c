/*
 * core/eval/kmeans.c — k-means clustering of embedding rows for the NMI metric
 * (nmi.c): k-means++ seeding (Arthur & Vassilvitskii 2007) then Lloyd
 * steps, best of several restarts by inertia. Squared Euclidean distance on
 * the rows as given. Not a general clustering library: no mini-batches, no
 * tolerance other than "no assignment changed".
 *
 * Letters: n rows x_i of width D, k centres c_j.
 *     ‖x_i − c_j‖² = ‖x_i‖² − 2 x_i·c_j + ‖c_j‖²
 * with the x·cᵀ block from the engine's GEMM (core/base/gemm.c) over rb rows
 * at a time (bounded scratch), the rows split over the caller's thread team
 * (each row's result is the same on any team); the nearest centre minimises
 * ‖c_j‖² − 2 x_i·c_j, ties to the lower j. Inertia Σ_i ‖x_i − c_{a(i)}‖² is
 * recomputed exactly in double to compare restarts.
 *
 * An empty cluster after an assignment is re-seeded at the point farthest
 * from its own centre (that point's distance is then zeroed, so two empty
 * clusters take two different points); the next assignment settles it.
 */
#include <stdlib.h>
#include <string.h>

#include "eval/eval_impl.h"
#include "base/gemm_impl.h"
#include "base/team_impl.h"
#include "isif/base/common.h"

#define DOTS_BYTES (16 * 1024 * 1024)
/* Multiply-adds of a block below which its assignment stays on the caller. */
#define PAR_MIN_MACS (INT64_C(1) << 20)

struct km_work {
	const float *x;
	int64_t n, rb;      /* rb: rows per GEMM block */
	int D, k;
	double *xx;         /* [n] ‖x_i‖² */
	double *d2;         /* [n] squared distance to the nearest / own centre */
	int32_t *cur;       /* [n] assignment of the current run */
	float *c;           /* [k, D] centres */
	double *cc;         /* [k] ‖c_j‖² */
	float *dots;        /* [rb, k] x·cᵀ */
	double *sums;       /* [k, D] */
	int64_t *count;     /* [k] */
	struct team *tm;    /* the caller's (NULL: the caller alone) */
	float *gws;         /* per team member: gws_per floats of GEMM scratch */
	size_t gws_per;
	int64_t *changed;   /* per team member: its rows that changed cluster */
};

static double sqdist(const float *a, const float *b, int D)
{
	double s = 0;
	for (int d = 0; d < D; d++) {
		double t = (double)a[d] - b[d];
		s += t * t;
	}
	return s;
}

static void set_centre(struct km_work *w, int j, int64_t i)
{
	memcpy(w->c + (int64_t)j * w->D, w->x + i * w->D, (size_t)w->D * sizeof(float));
}

/* k-means++: the first centre uniformly, each next one a row drawn with
 * probability d2(x)/Σd2, d2 the squared distance to the nearest chosen
 * centre (uniformly again when every row sits on a centre). */
static void seed_plusplus(struct km_work *w, struct isif_rng *rng)
{
	int64_t pick = isif_rng_below(rng, (uint32_t)w->n);
	set_centre(w, 0, pick);
	for (int64_t i = 0; i < w->n; i++)
		w->d2[i] = sqdist(w->x + i * w->D, w->c, w->D);
	for (int j = 1; j < w->k; j++) {
		double total = 0;
		for (int64_t i = 0; i < w->n; i++)
			total += w->d2[i];
		if (total > 0) {
			double r = isif_rng_range(rng, 0, total), cum = 0;
			pick = -1;
			for (int64_t i = 0; i < w->n && pick < 0; i++) {
				cum += w->d2[i];
				if (cum > r)
					pick = i;
			}
			for (int64_t i = w->n - 1; pick < 0 && i >= 0; i--)
				if (w->d2[i] > 0)   /* r rounded past the sum */
					pick = i;
		} else {
			pick = isif_rng_below(rng, (uint32_t)w->n);
		}
		set_centre(w, j, pick);
		const float *cj = w->c + (int64_t)j * w->D;
		for (int64_t i = 0; i < w->n; i++) {
			double t = sqdist(w->x + i * w->D, cj, w->D);
			if (t < w->d2[i])
				w->d2[i] = t;
		}
	}
}

/* Rows [r0, r0 + nb) of one assignment step. */
struct assign_job {
	struct km_work *w;
	int64_t r0, nb;
};

/* Member rank's share of the block's rows: their x·cᵀ, then each row's
 * nearest centre into w->cur and w->d2, counting the rows that changed. */
static void assign_member(void *p, int rank, int size)
{
	const struct assign_job *j = p;
	struct km_work *w = j->w;
	const int k = w->k, D = w->D;
	size_t lo, hi;
	int64_t changed = 0;

	team_share((size_t)j->nb, 1, rank, size, &lo, &hi);
	if (lo < hi) {
		/* dots[lo:hi, k] = X[r0 + lo : r0 + hi, D] · Cᵀ */
		struct gemm_view A = gemm_dense(w->x + (j->r0 + (int64_t)lo) * D, D);
		struct gemm_view B = gemm_dense_t(w->c, D), C = gemm_dense(w->dots + lo * k, k);
		gemm((int)(hi - lo), k, D, &A, &B, &C, 0, w->gws + (size_t)rank * w->gws_per);
	}
	for (int64_t i = (int64_t)lo; i < (int64_t)hi; i++) {
		const float *row = w->dots + i * k;
		int64_t r = j->r0 + i;
		int best = 0;
		double bd = w->cc[0] - 2.0 * row[0];
		for (int c = 1; c < k; c++) {
			double t = w->cc[c] - 2.0 * row[c];
			if (t < bd) {
				bd = t;
				best = c;
			}
		}
		double d = w->xx[r] + bd;
		w->d2[r] = d > 0 ? d : 0;
		if (w->cur[r] != best) {
			w->cur[r] = best;
			changed++;
		}
	}
	w->changed[rank] = changed;
}

/* Nearest centre of every row into w->cur and w->d2; returns how many rows
 * changed cluster. */
static int64_t assign_rows(struct km_work *w)
{
	const int k = w->k, D = w->D;
	int64_t changed = 0;

	for (int j = 0; j < k; j++) {
		const float *cj = w->c + (int64_t)j * D;
		double s = 0;
		for (int d = 0; d < D; d++)
			s += (double)cj[d] * cj[d];
		w->cc[j] = s;
	}
	for (int64_t r0 = 0; r0 < w->n; r0 += w->rb) {
		struct assign_job job = { w, r0, w->n - r0 < w->rb ? w->n - r0 : w->rb };
		struct team *tm = job.nb * k * D >= PAR_MIN_MACS ? w->tm : NULL;
		team_run(tm, assign_member, &job);
		for (int t = 0; t < team_size(tm); t++)
			changed += w->changed[t];
	}
	return changed;
}

/* Centres become the means of their rows; empty ones are re-seeded. */
static void update_centres(struct km_work *w)
{
	const int k = w->k, D = w->D;

	memset(w->sums, 0, (size_t)k * D * sizeof *w->sums);
	memset(w->count, 0, (size_t)k * sizeof *w->count);
	for (int64_t i = 0; i < w->n; i++) {
		double *s = w->sums + (int64_t)w->cur[i] * D;
		const float *xi = w->x + i * D;
		w->count[w->cur[i]]++;
		for (int d = 0; d < D; d++)
			s[d] += xi[d];
	}
	for (int j = 0; j < k; j++) {
		if (w->count[j] == 0) {
			int64_t far = 0;
			for (int64_t i = 1; i < w->n; i++)
				if (w->d2[i] > w->d2[far])
					far = i;
			set_centre(w, j, far);
			w->d2[far] = 0;
			continue;
		}
		for (int d = 0; d < D; d++)
			w->c[(int64_t)j * D + d] =
				(float)(w->sums[(int64_t)j * D + d] / (double)w->count[j]);
	}
}

static double inertia_of(const struct km_work *w)
{
	double s = 0;
	for (int64_t i = 0; i < w->n; i++)
		s += sqdist(w->x + i * w->D, w->c + (int64_t)w->cur[i] * w->D, w->D);
	return s;
}

/* Lloyd steps from the centres in w->c: the assignment into w->cur (at
 * most iters centre updates, fewer once no row changes cluster); returns
 * the inertia. */
static double lloyd(struct km_work *w, int iters)
{
	for (int64_t i = 0; i < w->n; i++)
		w->cur[i] = -1;
	for (int it = 0;; it++) {
		int64_t changed = assign_rows(w);
		if (it == iters || (it > 0 && changed == 0))
			break;
		update_centres(w);
	}
	return inertia_of(w);
}

/* One k-means++ + Lloyd run into w->cur; returns its inertia. */
static double run_once(struct km_work *w, int iters, struct isif_rng *rng)
{
	seed_plusplus(w, rng);
	return lloyd(w, iters);
}

static void free_work(struct km_work *w)
{
	free(w->xx);
	free(w->d2);
	free(w->cur);
	free(w->c);
	free(w->cc);
	free(w->dots);
	free(w->sums);
	free(w->count);
	free(w->gws);
	free(w->changed);
}

static int alloc_work(struct km_work *w, const float *x, int64_t n, int D, int k,
		      struct team *tm)
{
	const int nt = team_size(tm);
	memset(w, 0, sizeof *w);
	w->tm = tm;
	w->x = x;
	w->n = n;
	w->D = D;
	w->k = k;
	w->rb = DOTS_BYTES / ((int64_t)k * (int64_t)sizeof(float));
	w->rb = w->rb < 1 ? 1 : (w->rb > n ? n : w->rb);
	w->xx = malloc((size_t)n * sizeof *w->xx);
	w->d2 = malloc((size_t)n * sizeof *w->d2);
	w->cur = malloc((size_t)n * sizeof *w->cur);
	w->c = malloc((size_t)k * D * sizeof *w->c);
	w->cc = malloc((size_t)k * sizeof *w->cc);
	w->dots = malloc((size_t)(w->rb * k) * sizeof *w->dots);
	w->sums = malloc((size_t)k * D * sizeof *w->sums);
	w->count = malloc((size_t)k * sizeof *w->count);
	w->gws_per = gemm_workspace((int)w->rb, k, D);
	w->gws = malloc(w->gws_per * (size_t)nt * sizeof *w->gws);
	w->changed = malloc((size_t)nt * sizeof *w->changed);
	if (!w->xx || !w->d2 || !w->cur || !w->c || !w->cc || !w->dots ||
	    !w->sums || !w->count || !w->gws || !w->changed) {
		free_work(w);
		return ISIF_ENOMEM;
	}
	for (int64_t i = 0; i < n; i++) {
		const float *xi = x + i * D;
		double s = 0;
		for (int d = 0; d < D; d++)
			s += (double)xi[d] * xi[d];
		w->xx[i] = s;
	}
	return ISIF_OK;
}

enum isif_rc isif_kmeans_from(const float *x, int64_t n, int D, int k, float *centres,
		     int iters, struct team *tm, int32_t *assign, double *inertia)
{
	struct km_work w;
	int rc;

	if (!x || !centres || !assign || n < 1 || n > INT32_MAX || D < 1 ||
	    k < 1 || k > n || iters < 0)
		return ISIF_EINVAL;
	rc = alloc_work(&w, x, n, D, k, tm);
	if (rc)
		return rc;
	memcpy(w.c, centres, (size_t)k * D * sizeof *w.c);
	double e = lloyd(&w, iters);
	memcpy(centres, w.c, (size_t)k * D * sizeof *w.c);
	memcpy(assign, w.cur, (size_t)n * sizeof *assign);
	if (inertia)
		*inertia = e;
	free_work(&w);
	return ISIF_OK;
}

enum isif_rc isif_kmeans(const float *x, int64_t n, int D, int k, int restarts,
		int iters, struct isif_rng *rng, struct team *tm, int32_t *assign,
		double *inertia)
{
	struct km_work w;
	double best = 0;
	int rc;

	if (!x || !rng || !assign || n < 1 || n > INT32_MAX || D < 1 ||
	    k < 1 || k > n || restarts < 1 || iters < 0)
		return ISIF_EINVAL;
	rc = alloc_work(&w, x, n, D, k, tm);
	if (rc)
		return rc;
	for (int r = 0; r < restarts; r++) {
		double e = run_once(&w, iters, rng);
		if (r == 0 || e < best) {
			best = e;
			memcpy(assign, w.cur, (size_t)n * sizeof *assign);
		}
	}
	if (inertia)
		*inertia = best;
	free_work(&w);
	return ISIF_OK;
}

/*
 * core/eval/simhist.c — histograms of cosine similarity over same-class and
 * different-class pairs (isif/eval/simhist.h), the paper's picture of how
 * the embedding separates positives from negatives.
 *
 * Rows are grouped by label (a stable sort of the indices), so each kind of
 * pair can be counted, listed or drawn uniformly without looking at the
 * pairs of the other kind: a same-class pair is a class drawn by its pair
 * count then two distinct members; a different-class pair is a row drawn by
 * its number of partners (n − its class size), then a partner outside its
 * class — each unordered pair has the chance 2 / (2·N). The cost is bounded
 * by max_pairs dot products per kind whatever n is.
 */
#include "isif/eval/simhist.h"

#include <stdlib.h>
#include <string.h>

#include "isif/base/rng.h"

int isif_simhist_bin(float s)
{
	int b = (int)((s + 1.0f) * 0.5f * ISIF_SIMHIST_BINS);
	return b < 0 ? 0 : b >= ISIF_SIMHIST_BINS ? ISIF_SIMHIST_BINS - 1 : b;
}

/* Rows grouped by label: order[] holds the row indices, class k owning
 * order[start[k] .. start[k+1]); cls[r] is the class of order's entry r. */
struct groups {
	int32_t *order, *cls;
	int64_t *start;
	int64_t n_classes;
};

static int64_t *start_alloc(int64_t n) { return malloc((size_t)(n + 1) * sizeof(int64_t)); }

/* Keys packing (label, row) into one int64: qsort on them groups by label
 * and keeps row order inside a class, with no comparator state. */
static int by_key(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

static enum isif_rc group_rows(const int32_t *labels, int64_t n, struct groups *g)
{
	int64_t *key = malloc((size_t)(n ? n : 1) * sizeof *key);
	g->order = malloc((size_t)(n ? n : 1) * sizeof *g->order);
	g->cls = malloc((size_t)(n ? n : 1) * sizeof *g->cls);
	g->start = start_alloc(n);
	if (!key || !g->order || !g->cls || !g->start) {
		free(key);
		return ISIF_ENOMEM;
	}
	/* label in the high half (offset to stay non-negative), row below:
	 * sorting the keys groups by label and keeps row order inside */
	for (int64_t i = 0; i < n; i++)
		key[i] = (int64_t)(((uint64_t)((int64_t)labels[i] - INT32_MIN) << 32) | (uint64_t)i);
	qsort(key, (size_t)n, sizeof *key, by_key);
	g->n_classes = 0;
	for (int64_t r = 0; r < n; r++) {
		g->order[r] = (int32_t)(key[r] & 0xffffffff);
		if (r == 0 || labels[g->order[r]] != labels[g->order[r - 1]])
			g->start[g->n_classes++] = r;
		g->cls[r] = (int32_t)(g->n_classes - 1);
	}
	g->start[g->n_classes] = n;
	free(key);
	return ISIF_OK;
}

static void groups_free(struct groups *g)
{
	free(g->order);
	free(g->cls);
	free(g->start);
}

static double dot(const float *a, const float *b, int D)
{
	double s = 0;
	for (int d = 0; d < D; d++)
		s += (double)a[d] * (double)b[d];
	return s;
}

static void add_pair(struct isif_simhist_part *p, const float *x, int D, int64_t i, int64_t j)
{
	double s = dot(x + i * D, x + j * D, D);
	p->counts[isif_simhist_bin((float)s)]++;
	p->sum += s;
	p->pairs++;
}

static uint64_t rand_below64(struct isif_rng *rng, uint64_t n)
{
	uint64_t r = ((uint64_t)isif_rng_u32(rng) << 32) | isif_rng_u32(rng);
	return r % n; /* modulo bias below n / 2^64: 2^-24 for n up to 2^40 */
}

/* The class whose cumulative weight range holds r: cum[k] is the weight of
 * classes 0..k−1, cum[n_classes] the total. */
static int64_t pick_class(const int64_t *cum, int64_t n_classes, uint64_t r)
{
	int64_t lo = 0, hi = n_classes - 1;
	while (lo < hi) {
		int64_t mid = (lo + hi + 1) / 2;
		if ((uint64_t)cum[mid] <= r)
			lo = mid;
		else
			hi = mid - 1;
	}
	return lo;
}

static void same_pairs(const float *x, int D, const struct groups *g, int64_t max_pairs,
		       const int64_t *cum, struct isif_rng *rng, struct isif_simhist_part *p)
{
	int64_t total = cum[g->n_classes];
	if (total <= max_pairs) {
		for (int64_t k = 0; k < g->n_classes; k++)
			for (int64_t a = g->start[k]; a < g->start[k + 1]; a++)
				for (int64_t b = a + 1; b < g->start[k + 1]; b++)
					add_pair(p, x, D, g->order[a], g->order[b]);
		return;
	}
	for (int64_t t = 0; t < max_pairs; t++) {
		int64_t k = pick_class(cum, g->n_classes, rand_below64(rng, (uint64_t)total));
		int64_t base = g->start[k], size = g->start[k + 1] - base;
		int64_t a = isif_rng_below(rng, (uint32_t)size);
		int64_t b = isif_rng_below(rng, (uint32_t)(size - 1));
		b += b >= a;
		add_pair(p, x, D, g->order[base + a], g->order[base + b]);
	}
}

static void diff_pairs(const float *x, int D, const struct groups *g, int64_t n,
		       int64_t max_pairs, const int64_t *cum, struct isif_rng *rng,
		       struct isif_simhist_part *p)
{
	int64_t total = cum[g->n_classes] / 2; /* cum counts each pair from both ends */
	if (total <= max_pairs) {
		for (int64_t a = 0; a < n; a++)
			for (int64_t b = g->start[g->cls[a] + 1]; b < n; b++)
				add_pair(p, x, D, g->order[a], g->order[b]);
		return;
	}
	for (int64_t t = 0; t < max_pairs; t++) {
		int64_t k = pick_class(cum, g->n_classes,
				       rand_below64(rng, (uint64_t)cum[g->n_classes]));
		int64_t base = g->start[k], size = g->start[k + 1] - base;
		int64_t a = base + isif_rng_below(rng, (uint32_t)size);
		/* a partner among the n − size rows outside class k */
		int64_t b = isif_rng_below(rng, (uint32_t)(n - size));
		b += b >= base ? size : 0;
		add_pair(p, x, D, g->order[a], g->order[b]);
	}
}

enum isif_rc isif_simhist_compute(const float *x, const int32_t *labels, int64_t n, int D,
				  int64_t max_pairs, uint64_t seed, struct isif_simhist *out)
{
	if (!out || n < 0 || n > INT32_MAX || D < 1 || max_pairs < 1 ||
	    (n > 0 && (!x || !labels)))
		return ISIF_EINVAL;
	memset(out, 0, sizeof *out);
	if (n < 2)
		return ISIF_OK;
	struct groups g = {0};
	enum isif_rc rc = group_rows(labels, n, &g);
	int64_t *cum_same = rc ? NULL : start_alloc(g.n_classes);
	int64_t *cum_diff = rc ? NULL : start_alloc(g.n_classes);
	if (!rc && (!cum_same || !cum_diff))
		rc = ISIF_ENOMEM;
	if (!rc) {
		cum_same[0] = cum_diff[0] = 0;
		for (int64_t k = 0; k < g.n_classes; k++) {
			int64_t size = g.start[k + 1] - g.start[k];
			cum_same[k + 1] = cum_same[k] + size * (size - 1) / 2;
			cum_diff[k + 1] = cum_diff[k] + size * (n - size);
		}
		struct isif_rng rng;
		isif_rng_seed(&rng, seed, 41);
		same_pairs(x, D, &g, max_pairs, cum_same, &rng, &out->same);
		isif_rng_seed(&rng, seed, 42);
		diff_pairs(x, D, &g, n, max_pairs, cum_diff, &rng, &out->diff);
	}
	free(cum_same);
	free(cum_diff);
	groups_free(&g);
	return rc;
}

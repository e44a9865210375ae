/*
 * core/eval/gallery.c — a persistent exact search behind the public
 * isif/eval/gallery.h.
 *
 * Two scans, one answer. The fp32 scan is an isif_knn_index (prepack mode
 * keeps a gallery that fits one chunk resident across calls). The bf16 scan
 * (where the CPU has AVX512_BF16) keeps the whole gallery packed in bf16
 * pairs — half the bytes, twice the products per instruction — and finds
 * each query's kc = k + max(k, 112, ng/2048) best rows by bf16 similarity. Those
 * similarities are within ε = knn_bf16_slack(D) of the fp32 ones, so every
 * row of the fp32 top k has a bf16 similarity ≥ t_k − 2ε, t_k the k-th best
 * bf16 one. When the kc-th bf16 similarity is below t_k − 2ε, the list holds
 * every such row, and the fp32 tile run over just them (rerank) gives the
 * fp32 scan's answer bit for bit: the same kernel on the same packed values,
 * ordered by the same keys. Otherwise (many near-ties) the query goes to the
 * fp32 scan. On the 60,000 Fashion-MNIST embeddings of a trained convnet a
 * query has 26 such rows at the median, 83 at the 99th percentile (2ε ≈
 * 0.016), so kc = 122 almost never falls back (candidates_extra).
 */
#include "isif/eval/gallery.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/cpu_impl.h"
#include "base/team_impl.h"
#include "eval/eval_impl.h"
#include "eval/knn_impl.h"

#define BF16_MAX_K 128   /* larger k: the fp32 scan alone */

static atomic_int default_scan = ISIF_SCAN_AUTO;
static atomic_llong total_bf16_queries, total_fallbacks;   /* isif_gallery_totals */

struct isif_gallery {
	const float *g;
	int64_t ng;
	int D, k, max_batch;
	struct team *team;          /* shared by both scans; NULL: one thread */
	struct isif_knn_index fp;   /* the fp32 scan */
	int have_fp;
	struct isif_knn_index bf;   /* the bf16 candidate scan */
	int have_bf, kc;
	double slack2;              /* 2ε */
	/* scratch of one block of queries */
	int64_t *cidx, *fpos, *fidx;
	float *csim, *fq, *fsim;
	/* scratch of one rerank */
	float *qpanel, *rows, *bpanel, *ginv, *s;
	int64_t *crow;
	uint64_t *keys, *ktmp;
	atomic_llong bf16_queries, fallbacks;
};

void isif_gallery_set_default_scan(enum isif_gallery_scan scan)
{
	atomic_store(&default_scan, scan);
}

static enum isif_rc make_fp(struct isif_gallery *gal)
{
	const struct isif_knn_exec ex = {.team = gal->team, .pack = 1};
	int rc = isif_knn_index_init(&gal->fp, gal->g, NULL, gal->ng, gal->D, gal->k,
				     gal->max_batch, NULL, &ex);
	gal->have_fp = rc == ISIF_OK;
	return rc;
}

/*
 * How many candidates beyond k the bf16 scan keeps: enough that a query
 * rarely falls back (its rows within 2ε of the k-th must all fit), few
 * enough that keeping them costs little against the scan. Measured with
 * bench/gallery_bench: on 60,000 real rows 112 left 9 of 6,144 queries to
 * the fp32 scan and more only slowed the scan (240: −12%, 500: −36%); on a
 * million rows grown from them (σ 0.02: 17 near-copies of each) 112 left
 * 2.7% to the fp32 scan, which costs 18 ms there, and ng/2048 ≈ 500 none,
 * at 2.4× the speed.
 */
static int candidates_extra(int k, int64_t ng)
{
	int64_t extra = ng >> 11;
	extra = extra < 112 ? 112 : extra > 1024 ? 1024 : extra;
	return k > extra ? k : (int)extra;
}

static enum isif_rc make_bf(struct isif_gallery *gal)
{
	const int64_t qb = gal->max_batch, D = gal->D;
	gal->kc = gal->k + candidates_extra(gal->k, gal->ng);
	gal->slack2 = 2 * knn_bf16_slack(gal->D);
	/* the whole gallery as one chunk: packed once, resident */
	const struct isif_knn_blocks blk = {.gblock = gal->ng};
	const struct isif_knn_exec ex = {.team = gal->team, .pack = 1, .bf16 = 1};
	int rc = isif_knn_index_init(&gal->bf, gal->g, NULL, gal->ng, gal->D, gal->kc, qb, &blk,
				     &ex);
	if (rc)
		return rc;
	gal->have_bf = 1;
	gal->cidx = malloc((size_t)(qb * gal->kc) * sizeof *gal->cidx);
	gal->csim = malloc((size_t)(qb * gal->kc) * sizeof *gal->csim);
	gal->fpos = malloc((size_t)qb * sizeof *gal->fpos);
	gal->fq = malloc((size_t)(qb * D) * sizeof *gal->fq);
	gal->fidx = malloc((size_t)(qb * gal->k) * sizeof *gal->fidx);
	gal->fsim = malloc((size_t)(qb * gal->k) * sizeof *gal->fsim);
	gal->qpanel = malloc((size_t)(KNN_MR * D) * sizeof *gal->qpanel);
	gal->rows = malloc((size_t)(KNN_NR * D) * sizeof *gal->rows);
	gal->bpanel = malloc((size_t)(KNN_NR * D) * sizeof *gal->bpanel);
	gal->ginv = malloc(KNN_NR * sizeof *gal->ginv);
	gal->s = malloc(KNN_MR * KNN_NR * sizeof *gal->s);
	gal->crow = malloc((size_t)gal->kc * sizeof *gal->crow);
	gal->keys = malloc((size_t)gal->kc * sizeof *gal->keys);
	gal->ktmp = malloc((size_t)gal->kc * sizeof *gal->ktmp);
	if (!gal->cidx || !gal->csim || !gal->fpos || !gal->fq || !gal->fidx || !gal->fsim ||
	    !gal->qpanel || !gal->rows || !gal->bpanel || !gal->ginv || !gal->s || !gal->crow ||
	    !gal->keys || !gal->ktmp)
		return ISIF_ENOMEM;
	return ISIF_OK;
}

/* Frees the bf16 scan and its scratch (a gallery then searches in fp32). */
static void drop_bf(struct isif_gallery *gal)
{
	if (gal->have_bf)
		isif_knn_index_free(&gal->bf);
	gal->have_bf = 0;
	void *scratch[] = {gal->cidx, gal->csim, gal->fpos, gal->fq, gal->fidx, gal->fsim,
			   gal->qpanel, gal->rows, gal->bpanel, gal->ginv, gal->s, gal->crow,
			   gal->keys, gal->ktmp};
	for (size_t i = 0; i < sizeof scratch / sizeof *scratch; i++)
		free(scratch[i]);
	gal->cidx = gal->fpos = gal->fidx = NULL;
	gal->csim = gal->fq = gal->fsim = gal->qpanel = gal->rows = gal->bpanel = NULL;
	gal->ginv = gal->s = NULL;
	gal->crow = NULL;
	gal->keys = gal->ktmp = NULL;
}

static int use_bf16(enum isif_gallery_scan scan, int k)
{
	if (scan == ISIF_SCAN_AUTO)
		scan = atomic_load(&default_scan);
	if (scan == ISIF_SCAN_BF16)
		return k <= BF16_MAX_K;
	return scan == ISIF_SCAN_AUTO && k <= BF16_MAX_K && cpu_bf16();
}

enum isif_rc isif_gallery_create_scan(struct isif_gallery **out, const float *g, int64_t ng,
				      int D, int k, int threads, int max_batch,
				      enum isif_gallery_scan scan, struct isif_error *err)
{
	*out = NULL;
	if (ng < 1 || D < 1 || k < 1 || max_batch < 1 || !g)
		return isif_fail(err, ISIF_EINVAL, "gallery: %lld rows of %d, k %d, batch %d",
				 (long long)ng, D, k, max_batch);
	struct isif_gallery *gal = calloc(1, sizeof *gal);
	if (!gal)
		return isif_fail(err, ISIF_ENOMEM, "gallery: out of memory");
	*gal = (struct isif_gallery){.g = g, .ng = ng, .D = D, .k = k, .max_batch = max_batch};
	int rc = threads > 1 && !(gal->team = team_create(threads)) ? ISIF_ENOMEM : ISIF_OK;
	if (!rc && use_bf16(scan, k) && make_bf(gal) != ISIF_OK)
		drop_bf(gal);   /* no room for the bf16 copy: fp32 alone */
	if (!rc && !gal->have_bf)
		rc = make_fp(gal);
	if (rc) {
		isif_gallery_free(gal);
		return isif_fail(err, rc, "gallery of %lld rows: %s", (long long)ng, isif_strerror(rc));
	}
	/* one search of a zero query packs the gallery now, not at the first
	 * query (the bf16 scan's alone: a zero query ties everywhere) */
	float *zero = calloc((size_t)D, sizeof *zero);
	int64_t *idx = malloc((size_t)k * sizeof *idx);
	float *sim = malloc((size_t)k * sizeof *sim);
	if (zero && idx && sim && gal->have_bf)
		isif_knn_index_search(&gal->bf, zero, 1, -1, gal->cidx, gal->csim);
	else if (zero && idx && sim)
		isif_knn_index_search(&gal->fp, zero, 1, -1, idx, sim);
	free(zero);
	free(idx);
	free(sim);
	*out = gal;
	return ISIF_OK;
}

enum isif_rc isif_gallery_create(struct isif_gallery **out, const float *g, int64_t ng, int D,
				 int k, int threads, int max_batch, struct isif_error *err)
{
	return isif_gallery_create_scan(out, g, ng, D, k, threads, max_batch, ISIF_SCAN_AUTO,
					err);
}

/* The fp32 scan's similarities of query q against rows crow[0..n) (n ≤
 * NR), as keys appended to keys; returns how many (NaN ones are dropped). */
static int fp32_keys(struct isif_gallery *gal, const int64_t *crow, int n, uint64_t *keys)
{
	const int D = gal->D;
	float thr[KNN_MR];
	uint64_t hits[KNN_MR];
	int32_t fill[KNN_MR] = {0};
	for (int i = 0; i < KNN_MR; i++)
		thr[i] = i ? INFINITY : -INFINITY;
	for (int c = 0; c < n; c++)
		memcpy(gal->rows + (size_t)c * D, gal->g + crow[c] * D, (size_t)D * sizeof(float));
	knn_pack_gallery(gal->bpanel, gal->ginv, gal->rows, NULL, n, D);
	const struct knn_sink sink = {.keys = NULL, .fill = fill, .cap = 0, .j0 = 0,
				      .valid = ((uint64_t)1 << n) - 1};
	uint32_t left = knn_tile_kernel()(D, gal->qpanel, gal->bpanel, gal->ginv, thr, &sink,
					  gal->s, hits);
	int m = 0;
	for (uint64_t h = left & 1 ? hits[0] : 0; h; h &= h - 1) {
		int c = __builtin_ctzll(h);
		keys[m++] = knn_key(gal->s[c], crow[c]);
	}
	return m;
}

/* Query i of the block: its answer from the bf16 candidates cidx/csim
 * (kc of them) into idx/sim, or 0 when the candidates may miss a row of
 * the fp32 top k. */
static int rerank(struct isif_gallery *gal, const float *q, const int64_t *cidx,
		  const float *csim, int64_t *idx, float *sim)
{
	const int k = gal->k, kc = gal->kc;
	const float tk = csim[k - 1], last = csim[kc - 1];
	const double cut = (double)tk - gal->slack2;
	if (last != -INFINITY && !((double)last < cut))
		return 0;
	int nc = 0;
	for (int r = 0; r < kc && cidx[r] >= 0; r++)
		if ((double)csim[r] >= cut)
			gal->crow[nc++] = cidx[r];
	knn_pack_queries(gal->qpanel, q, 1, gal->D);
	int nk = 0;
	for (int c0 = 0; c0 < nc; c0 += KNN_NR)
		nk += fp32_keys(gal, gal->crow + c0, nc - c0 < KNN_NR ? nc - c0 : KNN_NR,
				gal->keys + nk);
	if (nk > k) {
		knn_keep_best(gal->keys, nk, k, gal->ktmp);
		nk = k;
	}
	knn_sort_desc(gal->keys, nk, gal->ktmp);
	for (int r = 0; r < k; r++) {
		idx[r] = r < nk ? knn_key_row(gal->keys[r]) : -1;
		sim[r] = r < nk ? knn_key_sim(gal->keys[r]) : -INFINITY;
	}
	return 1;
}

/* One block of nb ≤ max_batch queries by the bf16 scan, the ones it cannot
 * settle by the fp32 scan. */
static void search_bf16(struct isif_gallery *gal, const float *q, int64_t nb, int64_t *idx,
			float *sim)
{
	const int D = gal->D, k = gal->k, kc = gal->kc;
	isif_knn_index_search(&gal->bf, q, nb, -1, gal->cidx, gal->csim);
	int64_t nf = 0;
	for (int64_t i = 0; i < nb; i++)
		if (!rerank(gal, q + i * D, gal->cidx + i * kc, gal->csim + i * kc, idx + i * k,
			    sim + i * k)) {
			memcpy(gal->fq + nf * D, q + i * D, (size_t)D * sizeof *q);
			gal->fpos[nf++] = i;
		}
	atomic_fetch_add(&gal->bf16_queries, nb);
	atomic_fetch_add(&total_bf16_queries, nb);
	if (!nf)
		return;
	atomic_fetch_add(&gal->fallbacks, nf);
	atomic_fetch_add(&total_fallbacks, nf);
	if (!gal->have_fp && make_fp(gal)) {
		/* no memory for the fp32 scan: the answer is still exact, from
		 * a one-off search */
		isif_topk(gal->g, gal->ng, gal->fq, nf, D, k, 0, 1, gal->fidx, gal->fsim);
	} else {
		isif_knn_index_search(&gal->fp, gal->fq, nf, -1, gal->fidx, gal->fsim);
	}
	for (int64_t f = 0; f < nf; f++) {
		memcpy(idx + gal->fpos[f] * k, gal->fidx + f * k, (size_t)k * sizeof *idx);
		memcpy(sim + gal->fpos[f] * k, gal->fsim + f * k, (size_t)k * sizeof *sim);
	}
}

void isif_gallery_search(struct isif_gallery *gal, const float *q, int64_t nq, int64_t *idx,
			 float *sim)
{
	const int64_t D = gal->D, k = gal->k, qb = gal->max_batch;
	for (int64_t q0 = 0; q0 < nq; q0 += qb) {
		int64_t nb = nq - q0 < qb ? nq - q0 : qb;
		if (gal->have_bf)
			search_bf16(gal, q + q0 * D, nb, idx + q0 * k, sim + q0 * k);
		else
			isif_knn_index_search(&gal->fp, q + q0 * D, nb, -1, idx + q0 * k,
					      sim + q0 * k);
	}
}

int isif_gallery_k(const struct isif_gallery *gal)
{
	return gal->k;
}

void isif_gallery_stats(const struct isif_gallery *gal, struct isif_gallery_stats *out)
{
	*out = (struct isif_gallery_stats){
		.bf16 = gal->have_bf,
		.bf16_queries = atomic_load(&gal->bf16_queries),
		.fallbacks = atomic_load(&gal->fallbacks),
	};
}

void isif_gallery_totals(struct isif_gallery_stats *out)
{
	*out = (struct isif_gallery_stats){
		.bf16 = cpu_bf16(),
		.bf16_queries = atomic_load(&total_bf16_queries),
		.fallbacks = atomic_load(&total_fallbacks),
	};
}

void isif_gallery_free(struct isif_gallery *gal)
{
	if (!gal)
		return;
	if (gal->have_fp)
		isif_knn_index_free(&gal->fp);
	drop_bf(gal);
	team_free(gal->team);
	free(gal);
}

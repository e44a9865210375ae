/*
 * core/eval/knn_search.c — exact top-k search by cosine similarity over a
 * gallery, in bounded memory: the engine under isif_topk, isif_knn_eval and
 * isif_recall_at_k (see core/eval/eval_impl.h). This file splits the work over a
 * thread team and keeps each query's candidates; the similarities come
 * from the fused tile kernel (knn_tile.c), the selection from knn_cand.c.
 * Not an approximate index and not the kNN voting (knn.c).
 *
 * One search call takes nq ≤ qblock queries:
 *   1. the queries are normalised and packed into KNN_MR-row panels;
 *   2. work items of `sub` queries are handed out to the team members; an
 *      item runs over the gallery in KNN_NR-row panels, in ascending row
 *      order, and every MR×NR tile is computed, scaled by 1/‖g‖ and
 *      compared with each query's threshold in registers; the hits go to
 *      the query's candidate list;
 *   3. each query's k best candidates are sorted into idx/sim.
 * The gallery panels are either packed once per chunk of gblock rows and
 * shared by all items (when there are more items than members; a gallery
 * that fits one chunk stays packed across calls), or packed by each item as
 * it reaches them (few queries: no gallery-sized copy).
 *
 * Exactness: a query's threshold is the similarity of its k-th best
 * candidate once its list has overflowed (−∞ before). Because an item meets
 * gallery rows in ascending order, a later row with a similarity equal to
 * the threshold is worse than the k-th best (higher row), so the strict test
 * s > threshold loses nothing; the list then holds every row that can be in
 * the top k and the final selection is by the total order of the keys.
 */
#include "eval/eval_impl.h"
#include "eval/knn_impl.h"
#include "base/team_impl.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "isif/base/common.h"

#define MR KNN_MR
#define NR KNN_NR
#define MiB (1024 * 1024)
#define QBLOCK_DEFAULT 1024
#define SUB_DEFAULT 256        /* queries per work item: 128 KiB of panels at D = 128 */
#define PACK_BYTES (32 * MiB)  /* the packed gallery chunk */
#define OUT_BYTES (16 * MiB)   /* callers' qblock·k (index, similarity) pairs */
#define KEYS_BYTES (8 * MiB)   /* candidate lists */
#define QBUF_BYTES (4 * MiB)   /* the packed query block */
#define PAR_MIN_MACS (INT64_C(1) << 24)  /* below this a search runs on one thread */

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }
static int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

/* Candidate list length: 2k (one selection per k accepted candidates) and
 * at least k + NR (a tile row's hits always fit after a selection), or the
 * whole gallery when that is shorter (then the list never overflows). */
static int pick_cap(int64_t ng, int k)
{
	return (int)max64(1, min64(max64(2 * (int64_t)k, (int64_t)k + NR), ng));
}

/* Block sizes: the caller's where given, else as large as the byte budgets
 * above allow; never more queries than will be asked at once, never a chunk
 * longer than the gallery. */
static void pick_blocks(struct isif_knn_index *ix, int64_t nq_hint,
			const struct isif_knn_blocks *blk, const struct isif_knn_exec *ex)
{
	const int64_t D = ix->Dw;
	int64_t qb = QBLOCK_DEFAULT;
	qb = min64(qb, OUT_BYTES / ((int64_t)ix->k * (int64_t)(sizeof(float) + sizeof(int64_t))));
	qb = min64(qb, KEYS_BYTES / ((int64_t)ix->cap * (int64_t)sizeof(uint64_t)));
	qb = min64(qb, QBUF_BYTES / (D * (int64_t)sizeof(float)));
	if (blk && blk->qblock > 0)
		qb = blk->qblock;
	ix->qblock = max64(1, min64(qb, max64(nq_hint, 1)));

	int64_t gb = max64(NR, PACK_BYTES / (D * (int64_t)sizeof(float)) / NR * NR);
	if (blk && blk->gblock > 0)
		gb = blk->gblock;
	ix->gblock = max64(1, min64(gb, max64(ix->ng, 1)));

	ix->sub = (int)round_up(ex && ex->sub > 0 ? min64(ex->sub, 1 << 20) : SUB_DEFAULT, MR);
}

/* Threads: the caller's exact count, else at most the caller's team or
 * max_threads (none given: one), but one where the work is too small to pay
 * for a team (or no item would be left for a second member). */
static int pick_threads(const struct isif_knn_index *ix, int64_t nq_hint,
			const struct isif_knn_exec *ex)
{
	if (ex && ex->threads > 0)
		return ex->threads;
	int64_t cap = !ex ? 1 : ex->team ? team_size(ex->team) : ex->max_threads;
	int64_t nt = min64(cap, (min64(nq_hint, ix->qblock) + MR - 1) / MR);
	if (nt <= 1 || nq_hint * ix->ng * ix->D < PAR_MIN_MACS)
		return 1;
	return (int)nt;
}

static float *alloc_floats(int64_t n)
{
	/* 64-byte aligned so panels start on a cache line */
	size_t bytes = (size_t)round_up(max64(n, 1) * (int64_t)sizeof(float), 64);
	return aligned_alloc(64, bytes);
}

/* The team the search runs on: none for one thread, the caller's when it
 * lent one (all its members), else one of the index's own. Returns the
 * members the scratch must serve. */
static int pick_team(struct isif_knn_index *ix, int nt, const struct isif_knn_exec *ex)
{
	if (nt <= 1)
		return 1;
	if (ex && ex->threads <= 0 && ex->team) {
		ix->team = ex->team;
		return team_size(ex->team);
	}
	if (!(ix->team = team_create(nt)))
		return -1;
	ix->own_team = 1;
	return nt;
}

static int alloc_scratch(struct isif_knn_index *ix, int nt)
{
	const int64_t D = ix->Dw, qr = round_up(ix->qblock, MR);
	ix->qpack = alloc_floats(qr * D);
	ix->thr = alloc_floats(qr);
	ix->fill = malloc((size_t)qr * sizeof *ix->fill);
	ix->keys = malloc((size_t)(ix->qblock * ix->cap) * sizeof *ix->keys);
	/* per member: a gallery panel and its ginv */
	ix->work_per = (size_t)round_up(NR * D + NR, 16);
	ix->work = alloc_floats((int64_t)ix->work_per * nt);
	ix->ktmp = malloc((size_t)ix->cap * (size_t)nt * sizeof *ix->ktmp);
	if (ix->prepack) {
		ix->gpack = alloc_floats(round_up(ix->gblock, NR) * D);
		ix->ginv = alloc_floats(round_up(ix->gblock, NR));
	}
	if (!ix->qpack || !ix->thr || !ix->fill || !ix->keys || !ix->work ||
	    !ix->ktmp || (ix->prepack && (!ix->gpack || !ix->ginv)))
		return ISIF_ENOMEM;
	return ISIF_OK;
}

enum isif_rc isif_knn_index_init(struct isif_knn_index *ix, const float *g,
			const int32_t *g_labels, int64_t ng, int D, int k,
			int64_t nq_hint, const struct isif_knn_blocks *blk,
			const struct isif_knn_exec *ex)
{
	memset(ix, 0, sizeof *ix);
	if (ng < 0 || ng > INT32_MAX || D < 1 || k < 1 || (ng > 0 && !g))
		return ISIF_EINVAL;
	ix->g = g;
	ix->labels = g_labels;
	ix->ng = ng;
	ix->D = D;
	ix->k = k;
	ix->bf16 = ex && ex->bf16;
	ix->Dw = ix->bf16 ? (D + 1) / 2 : D;
	ix->cap = pick_cap(ng, k);
	ix->packed_g0 = -1;
	pick_blocks(ix, nq_hint, blk, ex);
	int nt = pick_team(ix, pick_threads(ix, nq_hint, ex), ex);
	if (nt < 0) {
		isif_knn_index_free(ix);
		return ISIF_ENOMEM;
	}
	/* shared chunks pay once one call has more items than members */
	ix->prepack = ex && ex->pack ? ex->pack > 0
				       : ix->qblock > (int64_t)nt * ix->sub;
	int rc = alloc_scratch(ix, nt);
	if (rc) {
		isif_knn_index_free(ix);
		return rc;
	}
	return ISIF_OK;
}

void isif_knn_index_free(struct isif_knn_index *ix)
{
	if (ix->own_team)
		team_free(ix->team);
	free(ix->ginv);
	free(ix->gpack);
	free(ix->qpack);
	free(ix->thr);
	free(ix->fill);
	free(ix->keys);
	free(ix->work);
	free(ix->ktmp);
	memset(ix, 0, sizeof *ix);
}

/* ---- one search call --------------------------------------------------- */

struct search_job {
	struct isif_knn_index *ix;
	knn_tile_fn *tile;
	knn_pack_queries_fn *pack_q;
	knn_pack_gallery_fn *pack_g;
	const float *q;
	int64_t nq, self0;
	int64_t *idx;
	float *sim;
	int64_t sub, items;      /* queries per item, items per chunk */
	int64_t nchunks;         /* 1 unless prepack */
	int resident;            /* chunk 0 is in gpack already */
	atomic_llong next;       /* next item to hand out, over all chunks */
};

/* The next item below `end` (items are numbered chunk·items + item), or end
 * when every item of the current chunk has been handed out. */
static int64_t claim(struct search_job *job, int64_t end)
{
	long long t = atomic_load_explicit(&job->next, memory_order_relaxed);
	while (t < end)
		if (atomic_compare_exchange_weak_explicit(&job->next, &t, t + 1,
							  memory_order_relaxed,
							  memory_order_relaxed))
			return t;
	return end;
}

/* Bits c of h whose s[c] beats thr. */
static uint64_t still_beat(uint64_t h, const float *s, float thr)
{
	uint64_t keep = 0;
	for (; h; h &= h - 1) {
		int c = __builtin_ctzll(h);
		if (s[c] > thr)
			keep |= (uint64_t)1 << c;
	}
	return keep;
}

/*
 * The rows of one tile that the kernel left (bit r of `left`: queries
 * i0 + r; gallery rows j0..) into the candidate lists, skipping a query's
 * own row. When a row's hits would overflow its list, the list first keeps
 * its k best, whose worst becomes the threshold, and the hits are filtered
 * again (k + NR ≤ cap, so they then fit; cap < k + NR only when cap is the
 * whole gallery, which never overflows).
 */
static void take_hits(struct search_job *job, uint32_t left, int64_t i0, int64_t j0,
		      const float *s, const uint64_t *hits, uint64_t *tmp)
{
	struct isif_knn_index *ix = job->ix;
	for (; left; left &= left - 1) {
		const int r = __builtin_ctz(left);
		const int64_t i = i0 + r, self = job->self0 >= 0 ? job->self0 + i : -1;
		uint64_t h = hits[r];
		if (self >= j0 && self < j0 + NR)
			h &= ~((uint64_t)1 << (self - j0));
		uint64_t *keys = ix->keys + i * ix->cap;
		int n = ix->fill[i];
		if (n + __builtin_popcountll(h) > ix->cap) {
			ix->thr[i] = knn_key_sim(knn_keep_best(keys, n, ix->k, tmp));
			n = ix->k;
			h = still_beat(h, s + r * NR, ix->thr[i]);
		}
		ix->fill[i] = n + knn_append_hits(keys + n, s + r * NR, h, j0);
	}
}

/* Whether one of queries i0 .. i0 + MR − 1 is one of gallery rows j0 ..
 * j0 + NR − 1 (its hits then go through take_hits, which skips it). */
static int holds_self(const struct search_job *job, int64_t i0, int64_t j0)
{
	return job->self0 >= 0 && job->self0 + i0 < j0 + NR && j0 < job->self0 + i0 + MR;
}

/* Item t (queries t·sub ..) against gallery rows [g0, g0 + gn). */
static void run_item(struct search_job *job, int rank, int64_t t, int64_t g0, int64_t gn)
{
	struct isif_knn_index *ix = job->ix;
	const int D = ix->D, Dw = ix->Dw;
	const int64_t q0 = t * job->sub, na = (min64(job->sub, job->nq - q0) + MR - 1) / MR;
	float *own = ix->work + (size_t)rank * ix->work_per;
	uint64_t *tmp = ix->ktmp + (size_t)rank * ix->cap;
	float s[MR * NR];
	uint64_t hits[MR];

	for (int64_t p = 0; p * NR < gn; p++) {
		const int64_t j0 = g0 + p * NR;
		const int nv = (int)min64(NR, gn - p * NR);
		const float *b = own, *ginv = own + NR * Dw;
		if (ix->prepack) {
			b = ix->gpack + p * NR * Dw;
			ginv = ix->ginv + p * NR;
		} else {
			job->pack_g(own, own + NR * Dw, ix->g + j0 * D,
				    ix->labels ? ix->labels + j0 : NULL, nv, D);
		}
		for (int64_t a = 0; a < na; a++) {
			const int64_t i0 = q0 + a * MR;
			const struct knn_sink sink = {
				.keys = holds_self(job, i0, j0) ? NULL : ix->keys + i0 * ix->cap,
				.fill = ix->fill + i0, .cap = ix->cap, .j0 = j0,
				.valid = ((uint64_t)1 << nv) - 1,     /* nv ≤ NR < 64 */
			};
			uint32_t left = job->tile(Dw, ix->qpack + i0 * Dw, b, ginv, ix->thr + i0,
						  &sink, s, hits);
			if (left)
				take_hits(job, left, i0, j0, s, hits, tmp);
		}
	}
}

/* The k best of each query of item t, best first, into idx/sim; slots no
 * row filled get (−1, −∞). */
static void finish_item(struct search_job *job, int rank, int64_t t)
{
	struct isif_knn_index *ix = job->ix;
	const int k = ix->k;
	const int64_t q1 = min64((t + 1) * job->sub, job->nq);
	for (int64_t i = t * job->sub; i < q1; i++) {
		uint64_t *keys = ix->keys + i * ix->cap;
		int n = ix->fill[i];
		if (n > k) {
			knn_keep_best(keys, n, k, ix->ktmp + (size_t)rank * ix->cap);
			n = k;
		}
		knn_sort_desc(keys, n, ix->ktmp + (size_t)rank * ix->cap);
		for (int r = 0; r < k; r++) {
			job->idx[i * k + r] = r < n ? knn_key_row(keys[r]) : -1;
			job->sim[i * k + r] = r < n ? knn_key_sim(keys[r]) : -INFINITY;
		}
	}
}

/* Step 1: this member's share of the query panels; thresholds start at −∞
 * (+∞ for the padding rows of the last panel: they never hit). */
static void load_queries(struct search_job *job, int rank, int size)
{
	struct isif_knn_index *ix = job->ix;
	const int D = ix->D;
	size_t lo, hi;
	team_share((size_t)((job->nq + MR - 1) / MR), 1, rank, size, &lo, &hi);
	for (int64_t p = (int64_t)lo; p < (int64_t)hi; p++) {
		int64_t i0 = p * MR, n = min64(MR, job->nq - i0);
		job->pack_q(ix->qpack + i0 * ix->Dw, job->q + i0 * D, n, D);
		for (int64_t i = i0; i < i0 + MR; i++)
			ix->thr[i] = i < job->nq ? -INFINITY : INFINITY;
		for (int64_t i = i0; i < i0 + n; i++)
			ix->fill[i] = 0;
	}
}

/* This member's share of the panels of the chunk at g0 (gn rows), with
 * their inverse norms. */
static void pack_chunk(const struct search_job *job, int64_t g0, int64_t gn, int rank, int size)
{
	struct isif_knn_index *ix = job->ix;
	size_t lo, hi;
	team_share((size_t)((gn + NR - 1) / NR), 1, rank, size, &lo, &hi);
	for (int64_t p = (int64_t)lo; p < (int64_t)hi; p++) {
		const int64_t j0 = g0 + p * NR;
		job->pack_g(ix->gpack + p * NR * ix->Dw, ix->ginv + p * NR, ix->g + j0 * ix->D,
			    ix->labels ? ix->labels + j0 : NULL, (int)min64(NR, gn - p * NR), ix->D);
	}
}

static void search_member(void *arg, int rank, int size)
{
	struct search_job *job = arg;
	struct isif_knn_index *ix = job->ix;

	load_queries(job, rank, size);
	team_barrier(ix->team);
	if (!ix->prepack) {
		for (int64_t t; (t = claim(job, job->items)) < job->items;) {
			run_item(job, rank, t, 0, ix->ng);
			finish_item(job, rank, t);
		}
		return;
	}
	for (int64_t c = 0; c < job->nchunks; c++) {
		const int64_t g0 = c * ix->gblock, gn = min64(ix->gblock, ix->ng - g0);
		const int64_t end = (c + 1) * job->items;
		if (c > 0 || !job->resident) {
			pack_chunk(job, g0, gn, rank, size);
			team_barrier(ix->team);
		}
		for (int64_t t; (t = claim(job, end)) < end;) {
			run_item(job, rank, t - c * job->items, g0, gn);
			if (c == job->nchunks - 1)
				finish_item(job, rank, t - c * job->items);
		}
		if (c + 1 < job->nchunks)
			team_barrier(ix->team);   /* the next pack overwrites gpack */
	}
}

void isif_knn_index_search(struct isif_knn_index *ix, const float *q,
			   int64_t nq, int64_t self0, int64_t *idx, float *sim)
{
	if (nq <= 0)
		return;
	/* items of at most ix->sub queries, as many as a multiple of the
	 * members and of equal size, so that no member waits for another */
	const int64_t size = team_size(ix->team);
	int64_t items = round_up((nq + ix->sub - 1) / ix->sub, size);
	int64_t sub = round_up((nq + items - 1) / items, MR);
	struct search_job job = {
		.ix = ix, .tile = ix->bf16 ? knn_tile_kernel_bf16() : knn_tile_kernel(),
		.pack_q = ix->bf16 ? knn_pack_queries_bf16 : knn_pack_queries,
		.pack_g = ix->bf16 ? knn_pack_gallery_bf16 : knn_pack_gallery, .q = q, .nq = nq, .self0 = self0,
		.idx = idx, .sim = sim, .sub = sub, .items = (nq + sub - 1) / sub,
		.nchunks = ix->prepack ? max64(1, (ix->ng + ix->gblock - 1) / ix->gblock) : 1,
		.resident = ix->prepack && ix->packed_g0 == 0 && ix->gblock >= ix->ng,
	};
	atomic_init(&job.next, 0);
	team_run(ix->team, search_member, &job);
	if (ix->prepack)   /* the chunk left in gpack */
		ix->packed_g0 = (job.nchunks - 1) * ix->gblock;
}

/*
 * core/eval/knn_impl.h — the parts of the exact top-k search (knn_search.c) that
 * sit below the thread split: the fused similarity tile (knn_tile.c) and the
 * per-query candidate lists (knn_cand.c). Not a public header; the tests use
 * it to check the pieces against naive references.
 *
 * Letters: D the row width; a tile is KNN_MR queries × KNN_NR gallery rows.
 */
#ifndef ISIF_KNN_IMPL_H
#define ISIF_KNN_IMPL_H

#include <stdint.h>
#include <string.h>

#define KNN_MR 8
#define KNN_NR 48

/* ---- packing (knn_tile.c) ---------------------------------------------- */

/* 1/‖x‖ of a row x[D]: the norm in double (a fixed order of additions),
 * its inverse rounded to float; 0 for a zero row. */
float knn_inv_norm(const float *x, int D);

/*
 * Query panels: the rows q[nq, D] normalised, q̂ = q · knn_inv_norm(q),
 * stored as ceil(nq / MR) panels of [D][MR] (panel p at a + p·MR·D, element
 * (i, d) of the panel at [d·MR + i]); rows past nq are zero.
 */
void knn_pack_queries(float *a, const float *q, int64_t nq, int D);

/* One gallery panel from rows g[0..n) (n ≤ NR): b[d·NR + j] = g[j·D + d],
 * zero for j ≥ n; and ginv[j] = knn_inv_norm(row j), NaN (never selected)
 * for j ≥ n and for a row whose label is negative (labels may be NULL). */
void knn_pack_gallery(float *b, float *ginv, const float *g, const int32_t *labels, int n,
		      int D);

typedef void knn_pack_queries_fn(float *a, const float *q, int64_t nq, int D);
typedef void knn_pack_gallery_fn(float *b, float *ginv, const float *g, const int32_t *labels,
				 int n, int D);

/* ---- bf16 panels (knn_tile_bf16.c) -------------------------------------- */

/* Round to nearest even from float to bfloat16 (NaN stays a quiet NaN). */
uint16_t knn_bf16(float x);

/* As knn_pack_queries, each normalised value rounded to bf16 and stored in
 * pairs: a panel is [⌈D/2⌉][MR] 32-bit words, word (d', i) holding d = 2d'
 * in its low half and d = 2d' + 1 (0 past D) in its high half. */
void knn_pack_queries_bf16(float *a, const float *q, int64_t nq, int D);

/* As knn_pack_gallery in bf16 pairs ([⌈D/2⌉][NR] words): row j is stored
 * normalised, bf16(g_jd · knn_inv_norm(g_j)), and ginv[j] is 1 (NaN where
 * knn_pack_gallery's is NaN), so the tile's s_ij is the cosine itself. */
void knn_pack_gallery_bf16(float *b, float *ginv, const float *g, const int32_t *labels, int n,
			   int D);

/* A bound on |s_bf16 − s_fp32| for one (query, row) pair of width D: the
 * bf16 tile's similarity against the fp32 tile's (knn_tile_bf16.c derives it). */
double knn_bf16_slack(int D);

/* ---- the fused tile (knn_tile.c) ---------------------------------------- */

/* Where a tile's hits go: the candidate lists of its MR queries. */
struct knn_sink {
	uint64_t *keys;     /* query r's list at keys + r·cap; NULL: take no hits */
	int32_t *fill;      /* [MR] keys held in each list */
	int cap;
	int64_t j0;         /* gallery row of tile column 0 */
	uint64_t valid;     /* the columns that are gallery rows */
};

/*
 * One MR×NR tile of query panel a and gallery panel b:
 *     s_ij = (Σ_d a[d·MR + i] · b[d·NR + j]) · ginv[j]
 * (the sum in order of d, one rounding per step or an FMA); column j of
 * row i is a hit when s_ij > thr[i] (NaN never) and bit j of `valid` is
 * set. A row's hits go to its list as keys knn_key(s_ij, j0 + j), in
 * ascending j, when they all fit (fill[i] + hits ≤ cap); otherwise the row
 * is left to the caller: bit i of the result set, hits[i] its hit mask and
 * s[i·NR + j] its similarities. Rows not left have hits[i] and s unspecified.
 * Thread-safe on distinct lists.
 */
typedef uint32_t knn_tile_fn(int D, const float *a, const float *b, const float *ginv,
			     const float *thr, const struct knn_sink *sink, float *s,
			     uint64_t *hits);

/* The portable epilogue of a tile from its sums acc[MR·NR] (row-major):
 * s_ij = acc_ij · ginv[j], then hits as knn_tile_fn says. */
uint32_t knn_tile_finish(const float *acc, const float *ginv, const float *thr,
			 const struct knn_sink *sink, float *s, uint64_t *hits);

/* The kernel to use: AVX-512 where the CPU has it, else portable C. */
knn_tile_fn *knn_tile_kernel(void);

/* The bf16 tile (panels from the _bf16 packers, Dw = ⌈D/2⌉ words): the
 * products of bf16 pairs summed in float, AVX512_BF16 vdpbf16ps where
 * cpu_bf16(), else the same arithmetic in portable C. */
knn_tile_fn *knn_tile_kernel_bf16(void);

/* Appends knn_key(s[c], j0 + c) to keys for every set bit c of h (c <
 * KNN_NR, ascending) and returns how many; s[c] must not be NaN for a set
 * bit, j0 + c must fit a key. */
int knn_append_hits(uint64_t *keys, const float *s, uint64_t h, int64_t j0);

/* ---- candidate lists (knn_cand.c) --------------------------------------- */

/*
 * A candidate (similarity s, gallery row j) as one 64-bit key whose integer
 * order is the search's order: higher similarity first, then lower row.
 * High half: the float's bits made monotone (negative floats flipped whole,
 * others with the sign bit set; −0 is first made +0 so the two zeros tie as
 * they compare); low half: ~j, so a lower row gives a larger key. Needs
 * 0 ≤ j ≤ UINT32_MAX and s not NaN.
 */
static inline uint64_t knn_key(float s, int64_t j)
{
	uint32_t u;
	if (s == 0)
		s = 0.0f;
	memcpy(&u, &s, sizeof u);
	u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
	return (uint64_t)u << 32 | (uint32_t)~(uint32_t)j;
}

static inline float knn_key_sim(uint64_t key)
{
	uint32_t u = (uint32_t)(key >> 32);
	float s;
	u = (u & 0x80000000u) ? (u & 0x7fffffffu) : ~u;
	memcpy(&s, &u, sizeof s);
	return s;
}

static inline int64_t knn_key_row(uint64_t key)
{
	return (int64_t)(uint32_t)~(uint32_t)key;
}

/* Moves the k largest of the n distinct keys a[0..n) to a[0..k) (in no
 * particular order; a[k..n) is left unspecified) and returns the smallest
 * of those. 0 < k ≤ n; tmp: scratch for n keys. */
uint64_t knn_keep_best(uint64_t *a, int n, int k, uint64_t *tmp);

/* Sorts the distinct keys a[0..n) descending (best first); tmp: scratch
 * for n keys. */
void knn_sort_desc(uint64_t *a, int n, uint64_t *tmp);



#endif

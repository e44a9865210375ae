/*
 * core/knn_impl.h — the parts of the exact top-k search (knn_search.c) that
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

/* 1/‖x‖ of a row x[D]: the norm in double, its inverse rounded to float; 0
 * for a zero row. */
float knn_inv_norm(const float *x, int D);

/*
 * Query panels: the rows q[nq, D] normalised, q̂ = q · knn_inv_norm(q),
 * stored as ceil(nq / MR) panels of [D][MR] (panel p at a + p·MR·D, element
 * (i, d) of the panel at [d·MR + i]); rows past nq are zero.
 */
void knn_pack_queries(float *a, const float *q, int64_t nq, int D);

/* One gallery panel: b[d·NR + j] = g[j·D + d] for j < n (n ≤ NR), zero for
 * n ≤ j < NR. */
void knn_pack_gallery(float *b, const float *g, int n, int D);

/* ---- the fused tile (knn_tile.c) ---------------------------------------- */

/*
 * For one MR×NR tile of query panel a and gallery panel b:
 *     s[i·NR + j] = (Σ_d a[d·MR + i] · b[d·NR + j]) · ginv[j]
 * (the sum in order of d, one rounding per step or an FMA), and
 *     hits[i] = Σ_j 2^j · [s[i·NR + j] > thr[i]]   (NaN never hits).
 * Returns the OR of all hits[i]: 0 when no element beats its row's
 * threshold (s is then still written). Thread-safe.
 */
typedef uint64_t knn_tile_fn(int D, const float *a, const float *b, const float *ginv,
			     const float *thr, float *s, uint64_t *hits);

/* The kernel to use: AVX-512 where the CPU has it, else portable C. */
knn_tile_fn *knn_tile_kernel(void);

/* Tests only: 1 makes knn_tile_kernel() and the selection use portable C,
 * 0 restores the automatic choice. */
void knn_force_portable(int on);
int knn_portable_forced(void);

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

/* Sorts a[0..n) descending (best first). */
void knn_sort_desc(uint64_t *a, int n);

#endif

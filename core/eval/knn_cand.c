/*
 * core/eval/knn_cand.c — selection and sorting of a query's candidate keys
 * (knn_key in knn_impl.h): the search collects every similarity that beats
 * the query's threshold into a list of at most `cap` keys; when the list is
 * full it keeps the k best (knn_keep_best) and the k-th best becomes the new
 * threshold; at the end the k best are sorted (knn_sort_desc). Keys are
 * distinct (each holds its gallery row), so "the k best" is unique and the
 * result does not depend on the order the keys arrived in.
 *
 * Why not a heap: a heap pays a sift-down of log2(k) unpredictable steps per
 * accepted candidate. Here a candidate costs one store; a selection over
 * 2k keys costs O(k) and happens once per k accepted candidates, while the
 * threshold still rises fast enough that few similarities get through. The
 * selection splits keys branch-free (eight at a time with AVX-512), as the
 * side a key goes to is unpredictable.
 */
#include "eval/knn_impl.h"
#include "base/cpu_impl.h"

static inline void swap_keys(uint64_t *a, int i, int j)
{
	uint64_t t = a[i];
	a[i] = a[j];
	a[j] = t;
}

static void insertion_desc(uint64_t *a, int n)
{
	for (int i = 1; i < n; i++) {
		uint64_t x = a[i];
		int j = i;
		for (; j > 0 && a[j - 1] < x; j--)
			a[j] = a[j - 1];
		a[j] = x;
	}
}

/*
 * Moves the keys of a[0..n) greater than p to a[0..g), in order, and the
 * others to tmp[0..n − g); returns g. Writing a[g] while reading a[i] is
 * safe because g ≤ i. Branch-free: whether a key goes left is a coin toss
 * to the branch predictor.
 */
static int split_portable(uint64_t *a, int n, uint64_t p, uint64_t *tmp)
{
	int g = 0, l = 0;
	for (int i = 0; i < n; i++) {
		uint64_t x = a[i];
		int gt = x > p;
		a[g] = x;
		tmp[l] = x;
		g += gt;
		l += !gt;
	}
	return g;
}

#if CPU_HAVE_AVX512
/* The same eight keys at a time: one compare to a mask, and each side
 * compressed into contiguous lanes and stored under a prefix mask. */
CPU_AVX512_TARGET
static int split_avx512(uint64_t *a, int n, uint64_t p, uint64_t *tmp)
{
	const __m512i pv = _mm512_set1_epi64((long long)p);
	int g = 0, l = 0;
	for (int i = 0; i < n; i += 8) {
		__mmask8 valid = n - i >= 8 ? 0xff : (__mmask8)((1u << (n - i)) - 1);
		__m512i v = _mm512_maskz_loadu_epi64(valid, a + i);
		__mmask8 gt = _mm512_mask_cmpgt_epu64_mask(valid, v, pv);
		__mmask8 le = valid & (__mmask8)~gt;
		int ng = __builtin_popcount(gt), nl = __builtin_popcount(le);
		_mm512_mask_storeu_epi64(a + g, (__mmask8)((1u << ng) - 1),
					 _mm512_maskz_compress_epi64(gt, v));
		_mm512_mask_storeu_epi64(tmp + l, (__mmask8)((1u << nl) - 1),
					 _mm512_maskz_compress_epi64(le, v));
		g += ng;
		l += nl;
	}
	return g;
}
#endif

static int split(uint64_t *a, int n, uint64_t p, uint64_t *tmp)
{
#if CPU_HAVE_AVX512
	if (cpu_avx512())
		return split_avx512(a, n, p, tmp);
#endif
	return split_portable(a, n, p, tmp);
}

/* The median of three keys. */
static uint64_t mid3(uint64_t x, uint64_t y, uint64_t z)
{
	uint64_t lo = x < y ? x : y, hi = x < y ? y : x;
	return z < lo ? lo : z > hi ? hi : z;
}

/*
 * Quickselect by splitting: a[0..base) is known to be in the top k and the
 * rest of it lies in a[base..end). Each round splits that range around the
 * median of three keys (distinct keys: at least one goes each way, so every
 * round shrinks the range) and keeps the side that holds the k-th best.
 */
uint64_t knn_keep_best(uint64_t *a, int n, int k, uint64_t *tmp)
{
	int base = 0, end = n;
	while (end > k) {
		int m = end - base;
		if (m <= 16) {
			insertion_desc(a + base, m);
			break;
		}
		uint64_t p = mid3(a[base], a[base + m / 2], a[end - 1]);
		int g = split(a + base, m, p, tmp);
		if (g >= k - base) {
			end = base + g;
		} else {
			memcpy(a + base + g, tmp, (size_t)(m - g) * sizeof *a);
			base += g;
		}
	}
	uint64_t least = a[0];
	for (int i = 1; i < k; i++)
		least = a[i] < least ? a[i] : least;
	return least;
}

/* Heap sort, descending (a min-heap whose minimum goes to the end): the
 * fallback that bounds quicksort's worst case. */
static void sift_min(uint64_t *a, int n, int pos)
{
	for (;;) {
		int m = pos, l = 2 * pos + 1, r = l + 1;
		if (l < n && a[l] < a[m])
			m = l;
		if (r < n && a[r] < a[m])
			m = r;
		if (m == pos)
			return;
		swap_keys(a, pos, m);
		pos = m;
	}
}

static void heap_desc(uint64_t *a, int n)
{
	for (int i = n / 2 - 1; i >= 0; i--)
		sift_min(a, n, i);
	for (int m = n - 1; m > 0; m--) {
		swap_keys(a, 0, m);
		sift_min(a, m, 0);
	}
}

/* Quicksort by splitting around the median of three (both sides shrink:
 * the keys are distinct), recursing into the smaller side; after `depth`
 * levels the rest goes to heap sort. */
static void sort_range(uint64_t *a, int n, int depth, uint64_t *tmp)
{
	while (n > 16) {
		if (depth-- == 0) {
			heap_desc(a, n);
			return;
		}
		int g = split(a, n, mid3(a[0], a[n / 2], a[n - 1]), tmp);
		memcpy(a + g, tmp, (size_t)(n - g) * sizeof *a);
		if (g < n - g) {
			sort_range(a, g, depth, tmp);
			a += g;
			n -= g;
		} else {
			sort_range(a + g, n - g, depth, tmp);
			n = g;
		}
	}
	insertion_desc(a, n);
}

void knn_sort_desc(uint64_t *a, int n, uint64_t *tmp)
{
	int depth = 2;
	for (int m = n; m > 1; m >>= 1)
		depth += 2;
	sort_range(a, n, depth, tmp);
}

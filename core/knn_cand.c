/*
 * core/knn_cand.c — selection and sorting of a query's candidate keys
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
 * threshold still rises fast enough that few similarities get through.
 */
#include "knn_impl.h"

static inline void swap_keys(uint64_t *a, int i, int j)
{
	uint64_t t = a[i];
	a[i] = a[j];
	a[j] = t;
}

/* Orders a[lo], a[mid], a[hi] descending and returns the middle one. */
static uint64_t median3(uint64_t *a, int lo, int mid, int hi)
{
	if (a[mid] > a[lo])
		swap_keys(a, mid, lo);
	if (a[hi] > a[lo])
		swap_keys(a, hi, lo);
	if (a[hi] > a[mid])
		swap_keys(a, hi, mid);
	return a[mid];
}

/*
 * Hoare partition of a[lo..hi] (descending) around the median of three:
 * afterwards every key in [lo, *j] is ≥ the pivot, every key in [*i, hi] is
 * ≤ it, and *j < *i.
 */
static void partition(uint64_t *a, int lo, int hi, int *pi, int *pj)
{
	uint64_t pivot = median3(a, lo, lo + (hi - lo) / 2, hi);
	int i = lo, j = hi;
	while (i <= j) {
		while (a[i] > pivot)
			i++;
		while (a[j] < pivot)
			j--;
		if (i <= j) {
			swap_keys(a, i, j);
			i++;
			j--;
		}
	}
	*pi = i;
	*pj = j;
}

uint64_t knn_keep_best(uint64_t *a, int n, int k)
{
	int lo = 0, hi = n - 1, want = k - 1;
	while (lo < hi) {
		int i, j;
		partition(a, lo, hi, &i, &j);
		if (want <= j)
			hi = j;
		else if (want >= i)
			lo = i;
		else
			break;  /* want lies between: it holds the pivot */
	}
	return a[want];
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

/* Quicksort on the smaller side, loop on the larger; after `depth` levels
 * the rest goes to heap sort. */
static void sort_range(uint64_t *a, int n, int depth)
{
	while (n > 16) {
		if (depth-- == 0) {
			heap_desc(a, n);
			return;
		}
		int i, j;
		partition(a, 0, n - 1, &i, &j);
		if (j + 1 < n - i) {
			sort_range(a, j + 1, depth);
			a += i;
			n -= i;
		} else {
			sort_range(a + i, n - i, depth);
			n = j + 1;
		}
	}
	insertion_desc(a, n);
}

void knn_sort_desc(uint64_t *a, int n)
{
	int depth = 2;
	for (int m = n; m > 1; m >>= 1)
		depth += 2;
	sort_range(a, n, depth);
}

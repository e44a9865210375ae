/*
 * core/eval/gallery.c — a persistent isif_knn_index behind the public
 * isif/eval/gallery.h: packed once (prepack mode keeps a gallery that fits
 * one chunk resident across calls), searched many times.
 */
#include "isif/eval/gallery.h"

#include <stdlib.h>

#include "eval/eval_impl.h"

struct isif_gallery {
	struct isif_knn_index ix;
};

enum isif_rc isif_gallery_create(struct isif_gallery **out, const float *g, int64_t ng, int D,
				 int k, int threads, int max_batch, struct isif_error *err)
{
	*out = NULL;
	if (ng < 1 || D < 1 || k < 1 || max_batch < 1 || !g)
		return isif_fail(err, ISIF_EINVAL, "gallery: %lld rows of %d, k %d, batch %d",
				 (long long)ng, D, k, max_batch);
	struct isif_gallery *gal = calloc(1, sizeof *gal);
	if (!gal)
		return isif_fail(err, ISIF_ENOMEM, "gallery: out of memory");
	const struct isif_knn_exec ex = {.threads = threads > 1 ? threads : 1, .pack = 1};
	int rc = isif_knn_index_init(&gal->ix, g, NULL, ng, D, k, max_batch, NULL, &ex);
	if (rc) {
		free(gal);
		return isif_fail(err, rc, "gallery of %lld rows: %s", (long long)ng, isif_strerror(rc));
	}
	/* one search of a zero query packs the gallery now, not at the first query */
	float *zero = calloc((size_t)D, sizeof *zero);
	int64_t *idx = malloc((size_t)k * sizeof *idx);
	float *sim = malloc((size_t)k * sizeof *sim);
	if (zero && idx && sim)
		isif_knn_index_search(&gal->ix, zero, 1, -1, idx, sim);
	free(zero);
	free(idx);
	free(sim);
	*out = gal;
	return ISIF_OK;
}

void isif_gallery_search(struct isif_gallery *gal, const float *q, int64_t nq, int64_t *idx,
			 float *sim)
{
	const int64_t D = gal->ix.D, k = gal->ix.k;
	for (int64_t q0 = 0; q0 < nq; q0 += gal->ix.qblock) {
		int64_t nb = nq - q0 < gal->ix.qblock ? nq - q0 : gal->ix.qblock;
		isif_knn_index_search(&gal->ix, q + q0 * D, nb, -1, idx + q0 * k, sim + q0 * k);
	}
}

int isif_gallery_k(const struct isif_gallery *gal)
{
	return gal->ix.k;
}

void isif_gallery_free(struct isif_gallery *gal)
{
	if (!gal)
		return;
	isif_knn_index_free(&gal->ix);
	free(gal);
}

/*
 * core/eval/embed.c — embedding images for evaluation and retrieval: no
 * augmentation (scale to 0..1, normalise), BN in eval mode, in batches.
 */
#include <stdlib.h>
#include <string.h>

#include "eval/embed_impl.h"
#include "isif/data/augment.h"
#include "isif/nn/model.h"
#include "isif/eval/embed.h"

enum isif_rc embed_indices(struct isif_model *m, const struct isif_split *s,
		  const int32_t *idx, int64_t n, int crop, const float mean[3],
		  const float std[3], int batch, float *out, float *feat,
		  struct isif_error *err)
{
	struct isif_augment aug;
	int ih = crop > 0 ? crop : s->h, iw = crop > 0 ? crop : s->w;
	if (crop > 0)
		isif_augment_center(&aug, ih, iw, mean, std);
	else
		isif_augment_none(&aug, ih, iw, mean, std);
	size_t img_len = (size_t)s->c * s->h * s->w, in_len = (size_t)s->c * ih * iw;
	size_t ws_len = isif_augment_workspace(&aug, s->c, s->h, s->w);
	int D = isif_model_embed_dim(m);
	if (batch < 1)
		batch = 256;
	float *x = malloc((size_t)batch * in_len * sizeof(float));
	float *ws = malloc((ws_len ? ws_len : 1) * sizeof(float));
	int rc = ISIF_OK;
	if (!x || !ws) {
		rc = isif_fail(err, ISIF_ENOMEM, "cannot allocate an embedding batch");
		goto out;
	}
	struct isif_rng unused;
	isif_rng_seed(&unused, 0, 0);
	for (int64_t start = 0; start < n; start += batch) {
		int count = (int)(n - start < batch ? n - start : batch);
		for (int i = 0; i < count; i++) {
			int64_t image = idx ? idx[start + i] : start + i;
			isif_augment_apply(x + i * in_len, s->pixels + image * img_len,
					   s->c, s->h, s->w, &aug, &unused, ws);
		}
		const float *emb;
		/* BN in eval mode normalises each row alone, so a batch of one is fine. */
		rc = isif_model_forward(m, x, count, ih, iw, false, 1, &emb, err);
		if (rc)
			goto out;
		memcpy(out + start * D, emb, (size_t)count * D * sizeof(float));
		if (feat) {
			int F;
			const float *pooled = isif_model_features(m, &F);
			memcpy(feat + start * F, pooled, (size_t)count * F * sizeof(float));
		}
	}
out:
	free(x);
	free(ws);
	return rc;
}

enum isif_rc isif_embed_split(struct isif_model *m, const struct isif_split *s, int crop,
		     const float mean[3], const float std[3], int batch,
		     float *out, struct isif_error *err)
{
	return embed_indices(m, s, NULL, s->n, crop, mean, std, batch, out, NULL, err);
}

enum isif_rc isif_embed_split_features(struct isif_model *m, const struct isif_split *s, int crop,
				       const float mean[3], const float std[3], int batch,
				       float *out, float *feat, struct isif_error *err)
{
	return embed_indices(m, s, NULL, s->n, crop, mean, std, batch, out, feat, err);
}

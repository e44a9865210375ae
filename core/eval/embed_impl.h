/* core/eval/embed_impl.h — embedding a chosen list of a split's images. */
#ifndef ISIF_EMBED_IMPL_H
#define ISIF_EMBED_IMPL_H

#include "isif/data/dataset.h"
#include "isif/nn/model.h"

/* Embeds images idx[0..n) of s (idx NULL: images 0..n) into out[n, D];
 * crop > 0: of each image's centre crop×crop (augment.random_crop's jobs);
 * when feat is not NULL their pooled backbone features into
 * feat[n, isif_model_feature_dim]. */
enum isif_rc embed_indices(struct isif_model *m, const struct isif_split *s,
		  const int32_t *idx, int64_t n, int crop, const float mean[3],
		  const float std[3], int batch, float *out, float *feat,
		  struct isif_error *err);

#endif

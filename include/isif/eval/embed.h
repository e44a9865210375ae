/*
 * isif/eval/embed.h — a trained model applied to a dataset split: evaluation
 * preprocessing (centre, normalise), BatchNorm in eval mode, no augmentation.
 */
#ifndef ISIF_EMBED_H
#define ISIF_EMBED_H

#include "isif/data/dataset.h"
#include "isif/nn/model.h"

/* Embeds n images of a split (eval preprocessing, BN eval mode) into
 * out[n, embed_dim], in batches of batch; crop > 0: each image's centre
 * crop×crop (a checkpoint trained with augment.random_crop), 0: all of it. */
enum isif_rc isif_embed_split(struct isif_model *m, const struct isif_split *s, int crop,
		     const float mean[3], const float std[3], int batch,
		     float *out, struct isif_error *err);

/* isif_embed_split that also writes each image's pooled backbone features
 * (the embedding layer's input) into feat[n, isif_model_feature_dim(m)]. */
enum isif_rc isif_embed_split_features(struct isif_model *m, const struct isif_split *s, int crop,
				       const float mean[3], const float std[3], int batch,
				       float *out, float *feat, struct isif_error *err);

#endif

/*
 * isif/data/augment.h — the paper's augmentation pipeline with torchvision's
 * semantics (tensor path, values on the 0..1 scale): RandomResizedCrop →
 * ColorJitter → RandomGrayscale → RandomHorizontalFlip → Normalize, each
 * switchable. All randomness comes from the caller's generator, so a
 * seed fixes every view. Thread-safe given distinct rng and scratch.
 */
#ifndef ISIF_AUGMENT_H
#define ISIF_AUGMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "isif/base/rng.h"

/* How the source becomes out_h×out_w before the colour ops. */
enum isif_fit {
	ISIF_FIT_RESIZE = 0,    /* RandomResizedCrop when crop, else a plain resize */
	ISIF_FIT_RANDOM_CROP,   /* torchvision RandomCrop(out): an out_h×out_w window
				 * at randint(0, h−out_h+1), randint(0, w−out_w+1) */
	ISIF_FIT_CENTER_CROP,   /* CenterCrop(out): top round((h−out_h)/2), half to even */
};

struct isif_augment {
	enum isif_fit fit;      /* default ISIF_FIT_RESIZE; the crops need h ≥ out_h, w ≥ out_w */
	bool crop;              /* RandomResizedCrop to out_h×out_w (else plain resize if sizes differ) */
	float crop_scale[2];    /* default 0.2, 1.0 */
	float crop_ratio[2];    /* default 3/4, 4/3 */
	float hflip;            /* probability, default 0.5 (0: off) */
	float grayscale;        /* probability, default 0.2 (0: off; no-op on 1 channel) */
	float brightness, contrast, saturation, hue; /* default 0.4 each (0: off) */
	float jitter_p;         /* probability ColorJitter applies, default 1 */
	int out_h, out_w;       /* output size */
	float mean[3], std[3];  /* Normalize; std 1, mean 0 disables it */
};

/* The paper's settings for an out_h×out_w output and the dataset's mean/std. */
void isif_augment_default(struct isif_augment *a, int out_h, int out_w,
			  const float mean[3], const float std[3]);

/* No augmentation at all: resize if needed, scale to 0..1, normalise (evaluation). */
void isif_augment_none(struct isif_augment *a, int out_h, int out_w,
		       const float mean[3], const float std[3]);

/* Evaluation of a job trained on random crops: the centre out_h×out_w
 * crop, scaled to 0..1 and normalised, nothing random. */
void isif_augment_center(struct isif_augment *a, int out_h, int out_w,
			 const float mean[3], const float std[3]);

/* Scratch floats isif_augment_apply needs for a c×h×w source. */
size_t isif_augment_workspace(const struct isif_augment *a, int c, int h, int w);

/*
 * Writes one view out[c, out_h, out_w] (float, normalised) of the uint8 CHW
 * image src[c,h,w], drawing randomness from rng in torchvision's order.
 */
void isif_augment_apply(float *out, const uint8_t *src, int c, int h, int w,
			const struct isif_augment *a, struct isif_rng *rng,
			float *ws);

/* The crop RandomResizedCrop.get_params would choose (exposed for tests):
 * top i, left j, height ch, width cw. 10 tries, then the centre fallback. */
void isif_augment_crop_params(int h, int w, const float scale[2],
			      const float ratio[2], struct isif_rng *rng,
			      int *i, int *j, int *ch, int *cw);

#endif

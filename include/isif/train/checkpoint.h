/*
 * isif/train/checkpoint.h — a model's state_dict and its optimizer's state as
 * safetensors files (isif/base/safetensors.h): PyTorch tensor names, strict
 * name/dtype/shape checks on load, atomic writes.
 */
#ifndef ISIF_CHECKPOINT_H
#define ISIF_CHECKPOINT_H

#include "isif/base/safetensors.h"
#include "isif/data/dataset.h"
#include "isif/nn/model.h"
#include "isif/nn/optim.h"

/* Saves every state_dict tensor of m (PyTorch order) with metadata
 * ("model" is always set to the model's name). */
enum isif_rc isif_checkpoint_save(const struct isif_model *m, const char *path,
			 const struct isif_st_meta *meta, struct isif_error *err);

/* Loads a checkpoint into m: every model tensor must be present with the same
 * dtype and shape and no extra tensor may exist; the first mismatch is named
 * in err. If meta is not NULL it receives the file's metadata (caller frees). */
enum isif_rc isif_checkpoint_load(struct isif_model *m, const char *path,
			 struct isif_st_meta *meta, struct isif_error *err);

/*
 * Initialises m's backbone from a checkpoint (a job's `init`): every model
 * tensor except the embedding head (`linear.*`, which keeps its fresh
 * initialisation) must be in the file with the same dtype and shape; the
 * file may hold a head of its own (`linear.*`, or torchvision's classifier
 * `fc.*`), which is ignored, and nothing else. ISIF_ESHAPE names the first
 * mismatch ("layer1.0.conv1.weight: shape [64,64,1,1] in file, [64,64,3,3]
 * expected"); nothing is copied unless everything matches.
 */
enum isif_rc isif_checkpoint_init_backbone(struct isif_model *m, const char *path,
					   struct isif_error *err);

/* Whether state_dict name belongs to an embedding head that
 * isif_checkpoint_init_backbone leaves out (`linear.*`, `fc.*`). */
bool isif_checkpoint_is_head(const char *name);

/* Adds what a checkpoint of a model trained on ds needs to be used elsewhere:
 * "preprocessing", JSON of how an image becomes the model's input (channels,
 * height, width, mean, std, resize, crop, ...; what `isif embed` and the
 * daemon's queries do), and "classes", a JSON array of ds's class names (left
 * out when ds has none). crop > 0: the model takes the centre crop×crop of
 * the resized image ("crop": {"center": [crop, crop]}, a job's
 * augment.random_crop). Returns ISIF_OK or ISIF_ENOMEM. */
int isif_checkpoint_dataset_meta(struct isif_st_meta *meta, const struct isif_dataset *ds,
				 int crop);

/* Optimizer state beside a checkpoint: "<param name>.momentum_buffer" F32 tensors
 * (only when the buffer exists) plus metadata "steps". */
enum isif_rc isif_optim_save(const struct isif_sgd *opt, const struct isif_model *m,
		    const char *path, struct isif_error *err);
enum isif_rc isif_optim_load(struct isif_sgd *opt, const struct isif_model *m,
		    const char *path, struct isif_error *err);

#endif

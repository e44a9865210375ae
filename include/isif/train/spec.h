/*
 * isif/train/spec.h — the training job spec of DESIGN.md ("Job spec"): defaults,
 * strict JSON parsing (unknown fields, wrong types and out-of-range values
 * are errors naming the field) and canonical JSON output. Shared by the
 * `isif` command line and the daemon.
 */
#ifndef ISIF_SPEC_H
#define ISIF_SPEC_H

#include <stdbool.h>
#include <stdint.h>

#include "isif/base/common.h"
#include "isif/data/augment.h"
#include "isif/nn/loss.h"
#include "isif/nn/optim.h"

#define ISIF_SPEC_NAME_LEN 64
#define ISIF_SPEC_MAX_CLASSES 1000

struct isif_job_spec {
	char dataset[ISIF_SPEC_NAME_LEN];   /* registered name or a path (CLI) */
	char model[ISIF_SPEC_NAME_LEN];     /* "resnet20" */
	int epochs;                         /* 20, 1..10000 */
	int batch_size;                     /* m source images per step, 128, 2..1024 */
	double lr;                          /* 0.03 */
	double momentum;                    /* 0.9 */
	double weight_decay;                /* 5e-4 */
	bool nesterov;                      /* false */
	struct isif_lr_schedule lr_schedule;/* {"type": "step", "milestones": [], "factors": []}, plus
					       "warmup_epochs", "min_lr" for cosine */
	double temperature;                 /* 0.1 */
	int embedding_dim;                  /* 128 */
	uint64_t seed;                      /* 1 */
	int threads;                        /* 0: the scheduler decides */
	/* augment */
	float crop_scale[2];                /* [0.2, 1.0]; "crop": false switches it off */
	bool crop;
	float hflip, grayscale;             /* 0.5, 0.2 */
	float brightness, contrast, saturation, hue, jitter_p; /* 0.4 ×4, p 1.0 */
	enum isif_gradient_mode gradient;   /* "reference" */
	int bn_groups;                      /* 1 */
	int knn_k;                          /* 200 */
	double knn_temperature;             /* 0.1 */
	int eval_every;                     /* 1 (0: never) */
	int64_t train_subset;               /* 0: all */
	bool has_classes;                   /* "classes" given (not null) */
	int n_train_classes, n_test_classes;
	int train_classes[ISIF_SPEC_MAX_CLASSES];
	int test_classes[ISIF_SPEC_MAX_CLASSES];
};

/* Fills spec with DESIGN's defaults (dataset empty). */
void isif_spec_default(struct isif_job_spec *spec);

/*
 * Parses a JSON object over the defaults. Unknown fields, wrong types and out
 * of range values fail with ISIF_EINVAL and a message that starts with the
 * field's path ("augment.hflip: must be between 0 and 1"). `dataset` is
 * required unless require_dataset is false.
 */
enum isif_rc isif_spec_parse(struct isif_job_spec *spec, const char *json,
		    bool require_dataset, struct isif_error *err);

/* Canonical JSON of the whole spec (every field), malloc'd; NULL on ENOMEM. */
char *isif_spec_to_json(const struct isif_job_spec *spec);

/* The spec's augmentation settings for out_h×out_w and a dataset's mean/std. */
void isif_spec_augment(const struct isif_job_spec *spec, int out_h, int out_w,
		       const float mean[3], const float std[3],
		       struct isif_augment *aug);

#endif

/*
 * isif/train/spec.h — the training job spec of DESIGN.md ("Job spec"): defaults,
 * strict JSON parsing (unknown fields, wrong types and out-of-range values
 * are errors naming the field) and canonical JSON output. Shared by the
 * `isif` command line and the daemon.
 *
 * Every field's name, type, default, bounds and help live in one table in
 * spec.c (isif_spec_field): the parser, isif_spec_default, `isif train
 * --help` and docs/API.md's table (`isif spec-doc`) all read it.
 */
#ifndef ISIF_SPEC_H
#define ISIF_SPEC_H

#include <stdbool.h>
#include <stdint.h>

#include "isif/base/common.h"
#include "isif/data/augment.h"
#include "isif/data/dataset.h"
#include "isif/nn/loss.h"
#include "isif/nn/model.h"
#include "isif/nn/optim.h"

#define ISIF_SPEC_NAME_LEN 64
#define ISIF_SPEC_MAX_CLASSES 1000

/* classes.split: the unseen-category preset, halves of the classes sorted by
 * name (by label where the dataset has no names). */
enum isif_class_split {
	ISIF_SPLIT_NONE = 0,      /* explicit lists (or no classes) */
	ISIF_SPLIT_FIRST_HALF,    /* train on the first ⌈n/2⌉ classes, test on the rest */
	ISIF_SPLIT_SECOND_HALF,   /* train on the last ⌊n/2⌋, test on the first ⌈n/2⌉ */
};

/* What a job trains with. */
enum isif_method {
	ISIF_METHOD_ISIF = 0,   /* the ISIF loss over two views (Ye et al. 2019) */
	ISIF_METHOD_NPID = 1,   /* memory-bank instance discrimination (Wu et al. 2018) */
};

/* The parsed spec. JSON paths in brackets where they differ from the
 * member's name; defaults and bounds are the field table's. */
struct isif_job_spec {
	char dataset[ISIF_SPEC_NAME_LEN];   /* registered name or a path (CLI) */
	char model[ISIF_SPEC_NAME_LEN];     /* one of isif_model_names */
	enum isif_method method;
	int epochs;
	int batch_size;                     /* m source images per step */
	double lr;
	double momentum;
	double weight_decay;
	bool nesterov;
	struct isif_lr_schedule lr_schedule;/* base_lr and total_epochs: lr and epochs */
	double temperature;
	int embedding_dim;
	uint64_t seed;
	int threads;                        /* 0: the caller decides */
	int processes;                      /* data-parallel MPI ranks (1: in-process) */
	enum isif_precision precision;      /* of the conv and linear products */
	char init_checkpoint[ISIF_SPEC_NAME_LEN]; /* [init.checkpoint] "": none */
	int freeze_epochs;                  /* [init.freeze_epochs] */
	/* augment */
	float crop_scale[2];
	bool crop;
	int random_crop;                    /* [augment.random_crop] 0: off */
	float hflip, grayscale;
	float brightness, contrast, saturation, hue, jitter_p; /* [augment.color_jitter.*] */
	enum isif_gradient_mode gradient;
	int bn_groups;
	bool sync_bn;                       /* processes > 1: BN over the whole batch */
	double npid_temperature;            /* [npid.temperature] */
	double npid_momentum;               /* [npid.momentum] */
	bool npid_nce;                      /* [npid.nce] */
	int npid_negatives;                 /* [npid.negatives] */
	int knn_k;                          /* [eval.knn_k] */
	double knn_temperature;             /* [eval.knn_temperature] */
	int eval_every;                     /* [eval.every], 0: never */
	bool linear_probe;                  /* [eval.linear_probe] */
	int64_t train_subset;               /* 0: all */
	bool has_classes;                   /* "classes" given (not null) */
	enum isif_class_split class_split;  /* [classes.split]; lists empty until resolved */
	int n_train_classes, n_test_classes;
	int train_classes[ISIF_SPEC_MAX_CLASSES];
	int test_classes[ISIF_SPEC_MAX_CLASSES];
};

/* Fills spec with every field's default from the table (dataset empty). */
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

/* What a spec field holds (its JSON type). */
enum isif_spec_kind {
	ISIF_SPEC_INT,         /* an integer in lo..hi */
	ISIF_SPEC_NUMBER,      /* any number between lo and hi */
	ISIF_SPEC_BOOL,
	ISIF_SPEC_STRING,      /* one of names, or any of lo..hi bytes */
	ISIF_SPEC_PAIR,        /* [a, b], lo < a <= b <= hi (bounds per `rules`) */
	ISIF_SPEC_INT_LIST,    /* [integers in lo..hi], at most max_len */
	ISIF_SPEC_NUMBER_LIST, /* [numbers between lo and hi], at most max_len */
	ISIF_SPEC_OBJECT,      /* holds the fields whose path continues its own */
};

/* isif_spec_field.rules */
#define ISIF_SPEC_LO_OPEN 1u   /* lo itself is excluded */
#define ISIF_SPEC_HI_OPEN 2u   /* hi itself is excluded */
#define ISIF_SPEC_ASCENDING 4u /* list entries strictly ascending */
#define ISIF_SPEC_DISTINCT 8u  /* list entries without repeats */
#define ISIF_SPEC_NULLABLE 16u /* null is allowed too */

/* One field of the job spec, as the parser reads it and the command line and
 * the docs describe it. Static data. */
struct isif_spec_field {
	const char *path;         /* dotted JSON path: "augment.color_jitter.hue" */
	const char *flag;         /* `isif train --FLAG` without the dashes; NULL: none */
	enum isif_spec_kind kind;
	const char *def;          /* the default as JSON text; NULL: required */
	double lo, hi;            /* bounds (of a string: its length in bytes) */
	unsigned rules;           /* ISIF_SPEC_* above */
	int max_len;              /* lists: most entries */
	const char *const *names; /* strings: the allowed values, NULL-terminated */
	const char *help;         /* what it does, one line */
};

/* Field i of the spec, in document order (an object before its members);
 * NULL past the last. */
const struct isif_spec_field *isif_spec_field(int i);

/*
 * Whether spec can run on a dataset of this shape, as it is written (nothing
 * is clamped later): train_subset within the training images, batch_size
 * within the images trained on, a test split to evaluate on, class labels
 * the dataset has, images of at least 16×16, bn_groups dividing the step's
 * rows. ISIF_EINVAL with a message that starts with the field's path
 * ("train_subset: 100000 is more than the 60000 training images"). `what`
 * names the dataset in messages. With classes, shape's counts are those
 * of the chosen classes when known; the full splits' counts (an upper
 * bound) make every refusal still right but may let a spec pass that the
 * trainer then refuses.
 */
enum isif_rc isif_spec_check_dataset(const struct isif_job_spec *spec,
				     const struct isif_dataset_shape *shape, const char *what,
				     struct isif_error *err);

/*
 * Fills the class lists of a classes.split rule from the dataset's classes:
 * labels 0..num_classes−1 ordered by class name (byte order; by label when
 * names is NULL), the first ⌈n/2⌉ and the rest. Nothing to do without a
 * rule. ISIF_EINVAL ("classes.split: ...") for fewer than 2 classes or more
 * than the lists hold (2·ISIF_SPEC_MAX_CLASSES).
 */
enum isif_rc isif_spec_resolve_classes(struct isif_job_spec *spec, int num_classes,
				       char *const *names, struct isif_error *err);

/* The model's input size for a dataset's h×w images: augment.random_crop's
 * square when set (training views and the evaluation's centre crop), else h×w. */
void isif_spec_input_size(const struct isif_job_spec *spec, int h, int w, int *in_h, int *in_w);

/* The spec's augmentation settings for out_h×out_w (isif_spec_input_size)
 * and a dataset's mean/std; augment.random_crop selects ISIF_FIT_RANDOM_CROP. */
void isif_spec_augment(const struct isif_job_spec *spec, int out_h, int out_w,
		       const float mean[3], const float std[3],
		       struct isif_augment *aug);

#endif

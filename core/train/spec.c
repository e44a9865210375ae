/*
 * core/train/spec.c — the training job spec of DESIGN.md "Job spec": the field
 * table, defaults, strict parsing with Jansson and canonical JSON output.
 *
 * One table describes every field: its dotted JSON path, `isif train` flag,
 * kind, default (as JSON text, and as the C value the same macro argument
 * gives), bounds, help line, and where it lands in the struct. The parser,
 * isif_spec_default, `isif train --help` and docs/API.md (`isif spec-doc`)
 * all read it, so none of them can disagree with another.
 *
 * Parsing walks the JSON objects: each key must be a field of the table one
 * level below the object's path, else it is an error ("augment.color_jitter.
 * bogus: unknown field"), as is a wrong type or a value out of its bounds;
 * every message starts with the field's dotted path. A few fields have a
 * parser of their own (names, the seed, crop_scale, lists, classes), and
 * lr_schedule a check across its members after them.
 *
 * The canonical JSON (every field, in table order) is written from the
 * table by hand rather than with json_dumps so every number prints in its
 * shortest form that reads back to the same value (Jansson prints doubles
 * with %.17g, which shows 0.03 as 0.029999999999999999):
 * parse(to_json(s)) == s exactly.
 *
 * Not here: whether the dataset exists (the daemon's registry or the CLI's
 * file system decides that).
 */
#include "isif/train/spec.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "isif/base/common.h"
#include "isif/nn/model.h"
#include "isif/base/strbuf.h"

#define SPEC_MAX_SEED (UINT64_C(1) << 53)   /* "2^53" in its message */
#define SPEC_MAX_LABEL (1 << 20)
#define LO_OPEN ISIF_SPEC_LO_OPEN
#define HI_OPEN ISIF_SPEC_HI_OPEN

/* Spellings of the enums, indexed by value; the parser stores them as int. */
static const char *const gradient_names[] = {
	[ISIF_GRAD_REFERENCE] = "reference", [ISIF_GRAD_FULL] = "full", NULL,
};
/* classes.split, indexed by value − 1 (ISIF_SPLIT_NONE has no spelling). */
static const char *const class_split_names[] = {"first_half", "second_half", NULL};
static const char *const precision_names[] = {
	[ISIF_PREC_FP32] = "fp32", [ISIF_PREC_BF16] = "bf16", NULL,
};
static const char *const lr_type_names[] = {
	[ISIF_LR_CONSTANT] = "constant", [ISIF_LR_STEP] = "step", [ISIF_LR_COSINE] = "cosine", NULL,
};
static const char *const method_names[] = {
	[ISIF_METHOD_ISIF] = "isif", [ISIF_METHOD_NPID] = "npid", NULL,
};
_Static_assert(sizeof(enum isif_method) == sizeof(int), "enum stored as int");
_Static_assert(sizeof(enum isif_gradient_mode) == sizeof(int), "enum stored as int");
_Static_assert(sizeof(enum isif_lr_type) == sizeof(int), "enum stored as int");
_Static_assert(sizeof(enum isif_precision) == sizeof(int), "enum stored as int");

/* The C type a field's value has in struct isif_job_spec. */
enum store {
	S_NONE,     /* objects; lists (their parser stores them) */
	S_INT,
	S_INT64,
	S_UINT64,
	S_DOUBLE,
	S_FLOAT,
	S_BOOL,
	S_NAME,     /* char[ISIF_SPEC_NAME_LEN] */
	S_ENUM,     /* an enum whose values index pub.names */
	S_FLOAT2,   /* float[2] */
};

struct field;
typedef enum isif_rc (*field_fn)(struct isif_job_spec *s, json_t *v, const char *path,
			const struct field *f, struct isif_error *err);
typedef void (*write_fn)(struct isif_strbuf *b, const struct isif_job_spec *s);

struct field {
	struct isif_spec_field pub;
	enum store store;
	size_t offset;
	double dnum[2];     /* the default of a number, bool or pair */
	const char *dstr;   /* the default of a string */
	field_fn parse;     /* parses the value instead of the kind's parser */
	field_fn check;     /* objects: rules across members, after them */
	write_fn write;     /* writes the canonical JSON where `store` cannot */
};

#define OFF(m) offsetof(struct isif_job_spec, m)

/* Rows by kind. A default is written once, as a macro argument: stringised
 * for the docs and the help, and taken as the C value. */
#define SCALAR(kind, store, path, flag, m, def, lo, hi, rules, parse, help) \
	{ {path, flag, kind, #def, lo, hi, rules, 0, NULL, help}, \
	  store, OFF(m), {def, 0}, NULL, parse, NULL, NULL }
#define INT(path, flag, m, def, lo, hi, help) \
	SCALAR(ISIF_SPEC_INT, S_INT, path, flag, m, def, lo, hi, 0, NULL, help)
#define INT64(path, flag, m, def, lo, hi, help) \
	SCALAR(ISIF_SPEC_INT, S_INT64, path, flag, m, def, lo, hi, 0, NULL, help)
#define NUM(path, flag, m, def, lo, hi, rules, help) \
	SCALAR(ISIF_SPEC_NUMBER, S_DOUBLE, path, flag, m, def, lo, hi, rules, NULL, help)
#define FLT(path, flag, m, def, lo, hi, help) \
	SCALAR(ISIF_SPEC_NUMBER, S_FLOAT, path, flag, m, def, lo, hi, 0, NULL, help)
/* Not through SCALAR: its #def would see false already expanded to 0. */
#define BOOL(path, flag, m, def, help) \
	{ {path, flag, ISIF_SPEC_BOOL, #def, 0, 1, 0, 0, NULL, help}, \
	  S_BOOL, OFF(m), {def, 0}, NULL, NULL, NULL, NULL }
#define NAME(path, flag, m, def, names, parse, help) \
	{ {path, flag, ISIF_SPEC_STRING, #def, 1, ISIF_SPEC_NAME_LEN - 1, 0, 0, names, help}, \
	  S_NAME, OFF(m), {0, 0}, def, parse, NULL, NULL }
#define ENUM(path, flag, m, def, names, help) \
	{ {path, flag, ISIF_SPEC_STRING, #def, 0, 0, 0, 0, names, help}, \
	  S_ENUM, OFF(m), {0, 0}, def, NULL, NULL, NULL }
#define PAIR(path, flag, m, a, b, lo, hi, rules, parse, help) \
	{ {path, flag, ISIF_SPEC_PAIR, "[" #a ", " #b "]", lo, hi, rules, 0, NULL, help}, \
	  S_FLOAT2, OFF(m), {a, b}, NULL, parse, NULL, NULL }
/* Lists start empty (the zeroed struct), so def is "[]", or NULL where
 * the enclosing object requires the list. */
#define LIST(kind, path, flag, def, lo, hi, rules, max_len, parse, write, help) \
	{ {path, flag, kind, def, lo, hi, rules, max_len, NULL, help}, \
	  S_NONE, 0, {0, 0}, NULL, parse, NULL, write }
#define OBJECT(path, def, rules, parse, check, write, help) \
	{ {path, NULL, ISIF_SPEC_OBJECT, def, 0, 0, rules, 0, NULL, help}, \
	  S_NONE, 0, {0, 0}, NULL, parse, check, write }

static enum isif_rc parse_object(struct isif_job_spec *s, json_t *obj, const char *path,
			struct isif_error *err);
static enum isif_rc f_dataset(struct isif_job_spec *s, json_t *v, const char *path,
		     const struct field *f, struct isif_error *err);
static enum isif_rc f_model(struct isif_job_spec *s, json_t *v, const char *path,
		   const struct field *f, struct isif_error *err);
static enum isif_rc f_seed(struct isif_job_spec *s, json_t *v, const char *path,
		  const struct field *f, struct isif_error *err);
static enum isif_rc f_crop_scale(struct isif_job_spec *s, json_t *v, const char *path,
			const struct field *f, struct isif_error *err);
static enum isif_rc f_milestones(struct isif_job_spec *s, json_t *v, const char *path,
			const struct field *f, struct isif_error *err);
static enum isif_rc f_factors(struct isif_job_spec *s, json_t *v, const char *path,
		     const struct field *f, struct isif_error *err);
static enum isif_rc check_lr_schedule(struct isif_job_spec *s, json_t *v, const char *path,
			     const struct field *f, struct isif_error *err);
static enum isif_rc f_classes(struct isif_job_spec *s, json_t *v, const char *path,
		     const struct field *f, struct isif_error *err);
static enum isif_rc f_init_checkpoint(struct isif_job_spec *s, json_t *v, const char *path,
			     const struct field *f, struct isif_error *err);
static void w_milestones(struct isif_strbuf *b, const struct isif_job_spec *s);
static void w_factors(struct isif_strbuf *b, const struct isif_job_spec *s);
static void w_classes(struct isif_strbuf *b, const struct isif_job_spec *s);

static const struct field fields[] = {
	{ {"dataset", NULL, ISIF_SPEC_STRING, NULL, 1, ISIF_SPEC_NAME_LEN - 1, 0, 0, NULL,
	   "the data: a registered name (GET /datasets); isif train also takes a directory"},
	  S_NAME, OFF(dataset), {0, 0}, NULL, f_dataset, NULL, NULL },
	NAME("model", "model", model, "resnet20", isif_model_names, f_model, "the network"),
	ENUM("method", "method", method, "isif", method_names,
	     "isif: the ISIF loss over two views per image; npid: the memory-bank baseline "
	     "(Wu et al. 2018), one view per image"),
	INT("epochs", "epochs", epochs, 20, 1, 10000, "epochs to train"),
	INT("batch_size", "batch-size", batch_size, 128, 2, 1024,
	    "m source images per step (2m augmented views)"),
	NUM("lr", "lr", lr, 0.03, 0, 10, LO_OPEN, "base learning rate"),
	NUM("momentum", "momentum", momentum, 0.9, 0, 1, HI_OPEN, "SGD momentum"),
	NUM("weight_decay", "weight-decay", weight_decay, 5e-4, 0, 1, 0, "L2 weight decay"),
	BOOL("nesterov", "nesterov", nesterov, false, "Nesterov momentum"),
	OBJECT("lr_schedule", NULL, 0, NULL, check_lr_schedule, NULL, "how lr changes over the epochs"),
	ENUM("lr_schedule.type", "lr-schedule", lr_schedule.type, "step", lr_type_names,
	     "constant; step: lr·factor from each milestone on; cosine: down to min_lr"),
	LIST(ISIF_SPEC_INT_LIST, "lr_schedule.milestones", "milestones", "[]", 1, 10000,
	     ISIF_SPEC_ASCENDING, ISIF_LR_MAX_MILESTONES, f_milestones, w_milestones,
	     "epochs from which a step schedule's factors apply (with factors)"),
	LIST(ISIF_SPEC_NUMBER_LIST, "lr_schedule.factors", "factors", "[]", 0, 1000, 0,
	     ISIF_LR_MAX_MILESTONES, f_factors, w_factors,
	     "lr = lr·factors[i] from milestones[i] on (not cumulative), one per milestone"),
	NUM("lr_schedule.warmup_epochs", "warmup-epochs", lr_schedule.warmup_epochs, 0, 0, 10000, 0,
	    "linear warm-up epochs"),
	NUM("lr_schedule.min_lr", "min-lr", lr_schedule.min_lr, 0, 0, 10, 0, "cosine floor"),
	NUM("temperature", "temperature", temperature, 0.1, 0, 10, LO_OPEN, "loss temperature τ"),
	INT("embedding_dim", "embedding-dim", embedding_dim, 128, 2, 4096, "embedding width"),
	SCALAR(ISIF_SPEC_INT, S_UINT64, "seed", "seed", seed, 1, 0, (double)SPEC_MAX_SEED, 0, f_seed,
	       "seed of everything random"),
	INT("threads", "threads", threads, 0, 0, 256,
	    "compute threads, at most the budget: isifd's --cores / --workers, isif train's "
	    "online cores (0: all of the budget)"),
	INT("processes", "processes", processes, 1, 1, 1024,
	    "data-parallel MPI processes, each with `threads` threads: isif train takes them from "
	    "mpirun -np N; isifd starts mpirun, up to its --max-processes"),
	ENUM("precision", "precision", precision, "fp32", precision_names,
	     "bf16: convolution and linear products on bf16 operands with fp32 sums "
	     "(AVX512_BF16; weights, optimizer, BN and loss stay fp32); "
	     "without AVX512_BF16 the job runs exact fp32 and logs so"),
	OBJECT("init", NULL, 0, NULL, NULL, NULL,
	       "start from pretrained weights instead of the seed's initialisation"),
	NAME("init.checkpoint", "init", init_checkpoint, "", NULL, f_init_checkpoint,
	     "safetensors checkpoint whose backbone (all but linear.*) initialises the "
	     "model: isifd: a name from POST /checkpoints; isif train: a path (\"\": none)"),
	INT("init.freeze_epochs", "freeze-epochs", freeze_epochs, 0, 0, 10000,
	    "train only the embedding layer (linear.*) for the first N epochs (needs "
	    "init.checkpoint; at most epochs)"),
	OBJECT("augment", NULL, 0, NULL, NULL, NULL, "how the two views of each image are made"),
	BOOL("augment.crop", "no-crop", crop, true, "RandomResizedCrop (false: none)"),
	INT("augment.random_crop", "random-crop", random_crop, 0, 0, 4096,
	    "train on random N×N crops of the stored images instead of RandomResizedCrop "
	    "(the paper's 256→227: a folder dataset of image_size 256 and 227); evaluation "
	    "uses the centre crop (0: off)"),
	PAIR("augment.crop_scale", "crop-scale", crop_scale, 0.2, 1.0, 0, 1, LO_OPEN, f_crop_scale,
	     "RandomResizedCrop's range of the area kept"),
	FLT("augment.hflip", "hflip", hflip, 0.5, 0, 1, "horizontal flip probability"),
	FLT("augment.grayscale", "grayscale", grayscale, 0.2, 0, 1, "RandomGrayscale probability"),
	OBJECT("augment.color_jitter", NULL, 0, NULL, NULL, NULL, "ColorJitter"),
	FLT("augment.color_jitter.brightness", "brightness", brightness, 0.4, 0, 1, "jitter strength"),
	FLT("augment.color_jitter.contrast", "contrast", contrast, 0.4, 0, 1, "jitter strength"),
	FLT("augment.color_jitter.saturation", "saturation", saturation, 0.4, 0, 1, "jitter strength"),
	FLT("augment.color_jitter.hue", "hue", hue, 0.4, 0, 0.5, "jitter strength"),
	FLT("augment.color_jitter.p", "jitter-p", jitter_p, 1.0, 0, 1, "ColorJitter probability"),
	ENUM("gradient", "gradient", gradient, "reference", gradient_names,
	     "loss gradient through the query copy only (reference) or both copies (full)"),
	INT("bn_groups", "bn-groups", bn_groups, 1, 1, 64, "BN statistics over this many row groups"),
	BOOL("sync_bn", "sync-bn", sync_bn, false,
	     "processes > 1: BN statistics over the whole batch, summed across processes (as one "
	     "process with bn_groups 1; needs bn_groups 1), instead of each process's own rows"),
	OBJECT("npid", NULL, 0, NULL, NULL, NULL, "the NPID baseline (method npid only)"),
	NUM("npid.temperature", "npid-temperature", npid_temperature, 0.07, 0, 10, LO_OPEN,
	    "temperature of the non-parametric softmax over the memory bank"),
	NUM("npid.momentum", "npid-momentum", npid_momentum, 0.5, 0, 1, HI_OPEN,
	    "memory bank update: v <- normalise(momentum·v + (1 − momentum)·f)"),
	BOOL("npid.nce", "npid-nce", npid_nce, false,
	     "NCE approximation with npid.negatives noise samples (false: exact softmax over the bank)"),
	INT("npid.negatives", "npid-negatives", npid_negatives, 4096, 1, 65536,
	    "NCE noise samples per image, drawn uniformly from the bank"),
	OBJECT("eval", NULL, 0, NULL, NULL, NULL, "weighted kNN evaluation during training"),
	INT("eval.knn_k", "knn-k", knn_k, 200, 1, 10000, "kNN neighbours"),
	NUM("eval.knn_temperature", "knn-temperature", knn_temperature, 0.1, 0, 10, LO_OPEN,
	    "kNN vote temperature"),
	INT("eval.every", "eval-every", eval_every, 1, 0, 10000, "evaluate every N epochs (0: never)"),
	BOOL("eval.linear_probe", "linear-probe", linear_probe, false,
	     "also fit a linear probe (L2 logistic regression) on the frozen embedding and the "
	     "pooled backbone features at each evaluation; reports both test top-1"),
	INT64("train_subset", "train-subset", train_subset, 0, 0, 9007199254740992.0,
	      "train on the first N images of a fixed shuffle (0: all)"),
	OBJECT("classes", "null", ISIF_SPEC_NULLABLE, f_classes, NULL, w_classes,
	       "unseen-category protocol: train and evaluate on these labels only (null: all); "
	       "either split or both lists"),
	LIST(ISIF_SPEC_INT_LIST, "classes.train", "train-classes", NULL, 0, SPEC_MAX_LABEL,
	     ISIF_SPEC_DISTINCT, ISIF_SPEC_MAX_CLASSES, NULL, NULL, "the labels to train on"),
	LIST(ISIF_SPEC_INT_LIST, "classes.test", "test-classes", NULL, 0, SPEC_MAX_LABEL,
	     ISIF_SPEC_DISTINCT, ISIF_SPEC_MAX_CLASSES, NULL, NULL, "the labels to evaluate on"),
	{ {"classes.split", "class-split", ISIF_SPEC_STRING, NULL, 0, 0, 0, 0, class_split_names,
	   "instead of the lists: train on one half of the classes sorted by name (first "
	   "⌈n/2⌉ or the rest) and evaluate on the other"},
	  S_NONE, 0, {0, 0}, NULL, NULL, NULL, NULL },
};
#define N_FIELDS (int)(sizeof fields / sizeof fields[0])

const struct isif_spec_field *isif_spec_field(int i)
{
	return i >= 0 && i < N_FIELDS ? &fields[i].pub : NULL;
}

/* The row of a dotted path, or NULL. */
static const struct field *field_at(const char *path)
{
	for (int i = 0; i < N_FIELDS; i++)
		if (strcmp(fields[i].pub.path, path) == 0)
			return &fields[i];
	return NULL;
}

/* The key of row f inside the object at prefix ("" for the top), or NULL
 * when f is not a member of that object itself. */
static const char *key_in(const struct field *f, const char *prefix)
{
	size_t plen = strlen(prefix);
	const char *p = f->pub.path;
	if (plen && (strncmp(p, prefix, plen) != 0 || p[plen] != '.'))
		return NULL;
	p += plen ? plen + 1 : 0;
	return strchr(p, '.') ? NULL : p;
}

/* The row of member `key` of the object at `prefix`. */
static const struct field *member(const char *prefix, const char *key)
{
	for (int i = 0; i < N_FIELDS; i++) {
		const char *k = key_in(&fields[i], prefix);
		if (k && strcmp(k, key) == 0)
			return &fields[i];
	}
	return NULL;
}

static int name_index(const char *const *names, const char *name)
{
	for (int i = 0; names[i]; i++)
		if (strcmp(names[i], name) == 0)
			return i;
	return -1;
}

/* ---- defaults ----------------------------------------------------------- */

static void set_default(struct isif_job_spec *s, const struct field *f)
{
	char *dst = (char *)s + f->offset;
	switch (f->store) {
	case S_NONE:
		break; /* empty lists, null classes: the zeroed struct */
	case S_INT:
		*(int *)dst = (int)f->dnum[0];
		break;
	case S_INT64:
		*(int64_t *)dst = (int64_t)f->dnum[0];
		break;
	case S_UINT64:
		*(uint64_t *)dst = (uint64_t)f->dnum[0];
		break;
	case S_DOUBLE:
		*(double *)dst = f->dnum[0];
		break;
	case S_FLOAT:
		*(float *)dst = (float)f->dnum[0];
		break;
	case S_BOOL:
		*(bool *)dst = f->dnum[0] != 0;
		break;
	case S_NAME:
		snprintf(dst, ISIF_SPEC_NAME_LEN, "%s", f->dstr ? f->dstr : "");
		break;
	case S_ENUM:
		*(int *)dst = name_index(f->pub.names, f->dstr);
		break;
	case S_FLOAT2:
		((float *)dst)[0] = (float)f->dnum[0];
		((float *)dst)[1] = (float)f->dnum[1];
		break;
	}
}

void isif_spec_default(struct isif_job_spec *s)
{
	memset(s, 0, sizeof *s);
	for (int i = 0; i < N_FIELDS; i++)
		set_default(s, &fields[i]);
	s->lr_schedule.base_lr = s->lr;
	s->lr_schedule.total_epochs = s->epochs;
}

/* ---- parsing ------------------------------------------------------------ */

/* "prefix.name" or just "name" at the top level. */
static void join_path(char *out, size_t cap, const char *prefix, const char *name)
{
	if (prefix[0])
		snprintf(out, cap, "%s.%s", prefix, name);
	else
		snprintf(out, cap, "%s", name);
}

static enum isif_rc range_error(const char *path, const struct field *f, bool integer,
		       struct isif_error *err)
{
	if (integer)
		return isif_fail(err, ISIF_EINVAL,
				 "%s: must be an integer between %.17g and %.17g",
				 path, f->pub.lo, f->pub.hi);
	return isif_fail(err, ISIF_EINVAL, "%s: must be a number %s %g and %s %g",
			 path, (f->pub.rules & LO_OPEN) ? ">" : ">=", f->pub.lo,
			 (f->pub.rules & HI_OPEN) ? "<" : "<=", f->pub.hi);
}

static bool in_range(double x, const struct field *f)
{
	bool lo_ok = (f->pub.rules & LO_OPEN) ? x > f->pub.lo : x >= f->pub.lo;
	bool hi_ok = (f->pub.rules & HI_OPEN) ? x < f->pub.hi : x <= f->pub.hi;
	return lo_ok && hi_ok;
}

/* A string that must be one of names: `must be "a", "b" or "c"`. */
static enum isif_rc parse_enum(struct isif_job_spec *s, json_t *v, const char *path,
		      const struct field *f, struct isif_error *err)
{
	char list[ISIF_ERR_LEN / 2] = "";
	const char *str = json_string_value(v);
	if (!str)
		return isif_fail(err, ISIF_EINVAL, "%s: must be a string", path);
	int k = name_index(f->pub.names, str);
	if (k >= 0) {
		*(int *)((char *)s + f->offset) = k;
		return ISIF_OK;
	}
	for (int i = 0; f->pub.names[i]; i++) {
		size_t n = strlen(list);
		const char *sep = i == 0 ? "" : f->pub.names[i + 1] ? ", " : " or ";
		snprintf(list + n, sizeof list - n, "%s\"%s\"", sep, f->pub.names[i]);
	}
	return isif_fail(err, ISIF_EINVAL, "%s: must be %s", path, list);
}

static enum isif_rc parse_value(struct isif_job_spec *s, json_t *v, const char *path,
		       const struct field *f, struct isif_error *err)
{
	char *dst = (char *)s + f->offset;
	if (f->parse)
		return f->parse(s, v, path, f, err);
	switch (f->store) {
	case S_INT:
	case S_INT64: {
		if (!json_is_integer(v))
			return isif_fail(err, ISIF_EINVAL, "%s: must be an integer", path);
		json_int_t x = json_integer_value(v);
		if ((double)x < f->pub.lo || (double)x > f->pub.hi)
			return range_error(path, f, true, err);
		if (f->store == S_INT)
			*(int *)dst = (int)x;
		else
			*(int64_t *)dst = (int64_t)x;
		return ISIF_OK;
	}
	case S_DOUBLE:
	case S_FLOAT: {
		if (!json_is_number(v))
			return isif_fail(err, ISIF_EINVAL, "%s: must be a number", path);
		double x = json_number_value(v);
		if (!in_range(x, f))
			return range_error(path, f, false, err);
		if (f->store == S_DOUBLE)
			*(double *)dst = x;
		else
			*(float *)dst = (float)x;
		return ISIF_OK;
	}
	case S_BOOL:
		if (!json_is_boolean(v))
			return isif_fail(err, ISIF_EINVAL, "%s: must be true or false", path);
		*(bool *)dst = json_is_true(v);
		return ISIF_OK;
	case S_ENUM:
		return parse_enum(s, v, path, f, err);
	case S_NONE:
		if (f->pub.kind == ISIF_SPEC_OBJECT) {
			enum isif_rc rc = parse_object(s, v, path, err);
			return rc || !f->check ? rc : f->check(s, v, path, f, err);
		}
		break;
	default:
		break;
	}
	return isif_fail(err, ISIF_EINVAL, "%s: internal error", path);
}

static enum isif_rc parse_name(char *dst, json_t *v, const char *path, struct isif_error *err)
{
	if (!json_is_string(v))
		return isif_fail(err, ISIF_EINVAL, "%s: must be a string", path);
	const char *str = json_string_value(v);
	size_t len = json_string_length(v);
	if (len == 0)
		return isif_fail(err, ISIF_EINVAL, "%s: must not be empty", path);
	if (len >= ISIF_SPEC_NAME_LEN || strlen(str) != len)
		return isif_fail(err, ISIF_EINVAL,
				 "%s: must be at most %d bytes without NUL", path,
				 ISIF_SPEC_NAME_LEN - 1);
	memcpy(dst, str, len + 1);
	return ISIF_OK;
}

static enum isif_rc f_dataset(struct isif_job_spec *s, json_t *v, const char *path,
		     const struct field *f, struct isif_error *err)
{
	return parse_name(s->dataset, v, path, err);
}

/* "" (the default) is allowed: no initial checkpoint. */
static enum isif_rc f_init_checkpoint(struct isif_job_spec *s, json_t *v, const char *path,
			     const struct field *f, struct isif_error *err)
{
	if (json_is_string(v) && json_string_length(v) == 0) {
		s->init_checkpoint[0] = 0;
		return ISIF_OK;
	}
	return parse_name(s->init_checkpoint, v, path, err);
}

static enum isif_rc f_model(struct isif_job_spec *s, json_t *v, const char *path,
		   const struct field *f, struct isif_error *err)
{
	char names[ISIF_ERR_LEN / 2] = "";
	if (!json_is_string(v))
		return isif_fail(err, ISIF_EINVAL, "%s: must be a string", path);
	for (int i = 0; f->pub.names[i]; i++) {
		if (strcmp(json_string_value(v), f->pub.names[i]) == 0)
			return parse_name(s->model, v, path, err);
		size_t n = strlen(names);
		snprintf(names + n, sizeof names - n, "%s%s", i ? ", " : "", f->pub.names[i]);
	}
	return isif_fail(err, ISIF_EINVAL, "%s: unknown model (one of %s)", path, names);
}

/* Exact integer bounds: 2^53 + 1 must not round into range as a double. */
static enum isif_rc f_seed(struct isif_job_spec *s, json_t *v, const char *path,
		  const struct field *f, struct isif_error *err)
{
	if (!json_is_integer(v))
		return isif_fail(err, ISIF_EINVAL, "%s: must be an integer", path);
	json_int_t x = json_integer_value(v);
	if (x < 0 || (uint64_t)x > SPEC_MAX_SEED)
		return isif_fail(err, ISIF_EINVAL,
				 "%s: must be an integer between 0 and 2^53", path);
	s->seed = (uint64_t)x;
	return ISIF_OK;
}

static enum isif_rc f_crop_scale(struct isif_job_spec *s, json_t *v, const char *path,
			const struct field *f, struct isif_error *err)
{
	if (!json_is_array(v) || json_array_size(v) != 2)
		return isif_fail(err, ISIF_EINVAL, "%s: must be an array of 2 numbers", path);
	double x[2];
	for (size_t i = 0; i < 2; i++) {
		json_t *e = json_array_get(v, i);
		if (!json_is_number(e))
			return isif_fail(err, ISIF_EINVAL, "%s[%zu]: must be a number", path, i);
		x[i] = json_number_value(e);
	}
	if (!(in_range(x[0], f) && x[0] <= x[1] && in_range(x[1], f)))
		return isif_fail(err, ISIF_EINVAL, "%s: must be [a, b] with %g %s a <= b %s %g",
				 path, f->pub.lo, (f->pub.rules & LO_OPEN) ? "<" : "<=",
				 (f->pub.rules & HI_OPEN) ? "<" : "<=", f->pub.hi);
	s->crop_scale[0] = (float)x[0];
	s->crop_scale[1] = (float)x[1];
	return ISIF_OK;
}

/* A JSON array of at most f's max_len integers within f's bounds into out;
 * strictly ascending under ISIF_SPEC_ASCENDING, else without duplicates. */
static enum isif_rc parse_int_list(json_t *v, const char *path, const struct field *f,
			  int *out, int *n, struct isif_error *err)
{
	const int cap = f->pub.max_len;
	const long lo = (long)f->pub.lo, hi = (long)f->pub.hi;
	const bool ascending = f->pub.rules & ISIF_SPEC_ASCENDING;
	if (!json_is_array(v))
		return isif_fail(err, ISIF_EINVAL, "%s: must be an array of integers", path);
	size_t len = json_array_size(v);
	if (len > (size_t)cap)
		return isif_fail(err, ISIF_EINVAL, "%s: at most %d entries", path, cap);
	for (size_t i = 0; i < len; i++) {
		json_t *e = json_array_get(v, i);
		if (!json_is_integer(e))
			return isif_fail(err, ISIF_EINVAL, "%s[%zu]: must be an integer", path, i);
		json_int_t x = json_integer_value(e);
		if (x < lo || x > hi)
			return isif_fail(err, ISIF_EINVAL,
					 "%s[%zu]: must be between %ld and %ld", path, i, lo, hi);
		for (size_t j = 0; j < i; j++) {
			if (ascending && out[j] >= x)
				return isif_fail(err, ISIF_EINVAL,
						 "%s[%zu]: must be greater than the entry before it",
						 path, i);
			if (out[j] == x)
				return isif_fail(err, ISIF_EINVAL, "%s[%zu]: duplicate %lld",
						 path, i, (long long)x);
		}
		out[i] = (int)x;
	}
	*n = (int)len;
	return ISIF_OK;
}

static enum isif_rc f_milestones(struct isif_job_spec *s, json_t *v, const char *path,
			const struct field *f, struct isif_error *err)
{
	return parse_int_list(v, path, f, s->lr_schedule.milestones,
			      &s->lr_schedule.n_milestones, err);
}

/* Factors are checked against the milestones' count after the whole
 * object (check_lr_schedule). */
static enum isif_rc f_factors(struct isif_job_spec *s, json_t *v, const char *path,
		     const struct field *f, struct isif_error *err)
{
	if (!json_is_array(v))
		return isif_fail(err, ISIF_EINVAL, "%s: must be an array of numbers", path);
	if (json_array_size(v) > (size_t)f->pub.max_len)
		return isif_fail(err, ISIF_EINVAL, "%s: at most %d entries", path,
				 f->pub.max_len);
	for (size_t i = 0; i < json_array_size(v); i++) {
		json_t *e = json_array_get(v, i);
		if (!json_is_number(e))
			return isif_fail(err, ISIF_EINVAL, "%s[%zu]: must be a number", path, i);
		double x = json_number_value(e);
		if (!in_range(x, f))
			return isif_fail(err, ISIF_EINVAL,
					 "%s[%zu]: must be between %g and %g", path, i,
					 f->pub.lo, f->pub.hi);
		s->lr_schedule.factors[i] = x;
	}
	return ISIF_OK;
}

static enum isif_rc check_lr_schedule(struct isif_job_spec *s, json_t *v, const char *path,
			     const struct field *f, struct isif_error *err)
{
	json_t *factors = json_object_get(v, "factors");
	json_t *milestones = json_object_get(v, "milestones");
	/* Giving one list resets the other to empty unless it is given too. */
	if (milestones && !factors)
		return isif_fail(err, ISIF_EINVAL, "%s.factors: required with milestones", path);
	if (factors && !milestones)
		return isif_fail(err, ISIF_EINVAL, "%s.milestones: required with factors", path);
	if (factors && (int)json_array_size(factors) != s->lr_schedule.n_milestones)
		return isif_fail(err, ISIF_EINVAL,
				 "%s.factors: must have as many entries as milestones (%d)",
				 path, s->lr_schedule.n_milestones);
	return ISIF_OK;
}

/* null, {"train": [...], "test": [...]} with both lists required, or
 * {"split": "first_half" | "second_half"} alone. */
static enum isif_rc f_classes(struct isif_job_spec *s, json_t *v, const char *path,
		     const struct field *f, struct isif_error *err)
{
	char sub[128];
	s->has_classes = false;
	s->class_split = ISIF_SPLIT_NONE;
	s->n_train_classes = s->n_test_classes = 0;
	if (json_is_null(v))
		return ISIF_OK;
	if (!json_is_object(v))
		return isif_fail(err, ISIF_EINVAL, "%s: must be null, {\"train\": [...], "
				 "\"test\": [...]} or {\"split\": \"first_half\"}", path);
	const char *key;
	json_t *e;
	json_object_foreach(v, key, e) {
		if (strcmp(key, "train") && strcmp(key, "test") && strcmp(key, "split"))
			return isif_fail(err, ISIF_EINVAL, "%s.%s: unknown field", path, key);
	}
	json_t *split = json_object_get(v, "split");
	if (split) {
		join_path(sub, sizeof sub, path, "split");
		if (json_object_size(v) != 1)
			return isif_fail(err, ISIF_EINVAL, "%s: give either split or train and test, "
					 "not both", path);
		int k = json_is_string(split) ? name_index(class_split_names,
							   json_string_value(split)) : -1;
		if (k < 0)
			return isif_fail(err, ISIF_EINVAL, "%s: must be one of \"first_half\", "
					 "\"second_half\"", sub);
		s->class_split = (enum isif_class_split)(k + 1);
		s->has_classes = true;
		return ISIF_OK;
	}
	static const char *const names[2] = {"train", "test"};
	int *lists[2] = {s->train_classes, s->test_classes};
	int *counts[2] = {&s->n_train_classes, &s->n_test_classes};
	for (int i = 0; i < 2; i++) {
		join_path(sub, sizeof sub, path, names[i]);
		e = json_object_get(v, names[i]);
		if (!e)
			return isif_fail(err, ISIF_EINVAL, "%s: required", sub);
		int rc = parse_int_list(e, sub, field_at(sub), lists[i], counts[i], err);
		if (rc)
			return rc;
		if (*counts[i] == 0)
			return isif_fail(err, ISIF_EINVAL, "%s: must not be empty", sub);
	}
	s->has_classes = true;
	return ISIF_OK;
}

/* Each key of obj must be a member of the object at path in the table. */
static enum isif_rc parse_object(struct isif_job_spec *s, json_t *obj, const char *path,
			struct isif_error *err)
{
	char sub[128];
	const char *key;
	json_t *v;
	if (!json_is_object(obj))
		return isif_fail(err, ISIF_EINVAL, "%s: must be an object",
				 path[0] ? path : "spec");
	json_object_foreach(obj, key, v) {
		const struct field *f = member(path, key);
		join_path(sub, sizeof sub, path, key);
		if (!f)
			return isif_fail(err, ISIF_EINVAL, "%s: unknown field", sub);
		int rc = parse_value(s, v, sub, f, err);
		if (rc)
			return rc;
	}
	return ISIF_OK;
}

/* Freezing the backbone only makes sense for a pretrained one, and for at
 * most the epochs the job runs. */
static enum isif_rc check_init(const struct isif_job_spec *s, struct isif_error *err)
{
	if (s->freeze_epochs > 0 && !s->init_checkpoint[0])
		return isif_fail(err, ISIF_EINVAL, "init.freeze_epochs: %d needs init.checkpoint "
				 "(it freezes a pretrained backbone; without one it would freeze "
				 "random weights)", s->freeze_epochs);
	if (s->freeze_epochs > s->epochs)
		return isif_fail(err, ISIF_EINVAL, "init.freeze_epochs: %d is more than epochs (%d)",
				 s->freeze_epochs, s->epochs);
	return ISIF_OK;
}

enum isif_rc isif_spec_parse(struct isif_job_spec *spec, const char *json,
		    bool require_dataset, struct isif_error *err)
{
	json_error_t jerr;
	json_t *root = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return isif_fail(err, ISIF_EINVAL, "spec: invalid JSON: %s (line %d, column %d)",
				 jerr.text, jerr.line, jerr.column);
	struct isif_job_spec s = *spec;
	int rc = parse_object(&s, root, "", err);
	if (rc == ISIF_OK && require_dataset && !json_object_get(root, "dataset"))
		rc = isif_fail(err, ISIF_EINVAL, "dataset: required");
	if (rc == ISIF_OK)
		rc = check_init(&s, err);
	json_decref(root);
	if (rc)
		return rc;
	s.lr_schedule.base_lr = s.lr;
	s.lr_schedule.total_epochs = s.epochs;
	*spec = s;
	return ISIF_OK;
}

/* ---- canonical JSON ---------------------------------------------------- */

/* Shortest %.Ng of x that reads back (strtod) as exactly x. */
static void sb_double(struct isif_strbuf *b, double x)
{
	char buf[40];
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, sizeof buf, "%.*g", prec, x);
		if (strtod(buf, NULL) == x)
			break;
	}
	/* Keep it a JSON real so readers see the intended type. */
	if (!strpbrk(buf, ".eEn"))
		strcat(buf, ".0");
	isif_strbuf_printf(b, "%s", buf);
}

/* Shortest decimal that reads back as the same float. */
static void sb_float(struct isif_strbuf *b, float x)
{
	char buf[40];
	for (int prec = 1; prec <= 9; prec++) {
		snprintf(buf, sizeof buf, "%.*g", prec, (double)x);
		if (strtof(buf, NULL) == x)
			break;
	}
	if (!strpbrk(buf, ".eEn"))
		strcat(buf, ".0");
	isif_strbuf_printf(b, "%s", buf);
}

static void sb_string(struct isif_strbuf *b, const char *str)
{
	json_t *js = json_string(str);
	char *enc = js ? json_dumps(js, JSON_ENCODE_ANY) : NULL;
	if (enc)
		isif_strbuf_printf(b, "%s", enc);
	else
		b->failed = true;
	free(enc);
	json_decref(js);
}

static void sb_ints(struct isif_strbuf *b, const int *x, int n)
{
	isif_strbuf_printf(b, "[");
	for (int i = 0; i < n; i++)
		isif_strbuf_printf(b, "%s%d", i ? ", " : "", x[i]);
	isif_strbuf_printf(b, "]");
}

/* names[v], or names[fallback] for a value without a spelling. */
static const char *enum_name(const char *const *names, unsigned v, unsigned fallback)
{
	for (unsigned i = 0; names[i]; i++)
		if (i == v)
			return names[i];
	return names[fallback];
}

static void w_milestones(struct isif_strbuf *b, const struct isif_job_spec *s)
{
	sb_ints(b, s->lr_schedule.milestones, s->lr_schedule.n_milestones);
}

static void w_factors(struct isif_strbuf *b, const struct isif_job_spec *s)
{
	isif_strbuf_printf(b, "[");
	for (int i = 0; i < s->lr_schedule.n_milestones; i++) {
		isif_strbuf_printf(b, "%s", i ? ", " : "");
		sb_double(b, s->lr_schedule.factors[i]);
	}
	isif_strbuf_printf(b, "]");
}

static void w_classes(struct isif_strbuf *b, const struct isif_job_spec *s)
{
	if (!s->has_classes) {
		isif_strbuf_printf(b, "null");
		return;
	}
	if (s->class_split != ISIF_SPLIT_NONE) {
		isif_strbuf_printf(b, "{\"split\": \"%s\"}", class_split_names[s->class_split - 1]);
		return;
	}
	isif_strbuf_printf(b, "{\"train\": ");
	sb_ints(b, s->train_classes, s->n_train_classes);
	isif_strbuf_printf(b, ", \"test\": ");
	sb_ints(b, s->test_classes, s->n_test_classes);
	isif_strbuf_printf(b, "}");
}

static void write_object(struct isif_strbuf *b, const struct isif_job_spec *s,
			 const char *prefix);

static void write_value(struct isif_strbuf *b, const struct isif_job_spec *s,
			const struct field *f)
{
	const char *src = (const char *)s + f->offset;
	if (f->write) {
		f->write(b, s);
		return;
	}
	switch (f->store) {
	case S_NONE:
		write_object(b, s, f->pub.path);
		break;
	case S_INT:
		isif_strbuf_printf(b, "%d", *(const int *)src);
		break;
	case S_INT64:
		isif_strbuf_printf(b, "%" PRId64, *(const int64_t *)src);
		break;
	case S_UINT64:
		isif_strbuf_printf(b, "%" PRIu64, *(const uint64_t *)src);
		break;
	case S_DOUBLE:
		sb_double(b, *(const double *)src);
		break;
	case S_FLOAT:
		sb_float(b, *(const float *)src);
		break;
	case S_BOOL:
		isif_strbuf_printf(b, "%s", *(const bool *)src ? "true" : "false");
		break;
	case S_NAME:
		sb_string(b, src);
		break;
	case S_ENUM:
		isif_strbuf_printf(b, "\"%s\"", enum_name(f->pub.names, *(const unsigned *)src,
							  (unsigned)name_index(f->pub.names, f->dstr)));
		break;
	case S_FLOAT2:
		isif_strbuf_printf(b, "[");
		sb_float(b, ((const float *)src)[0]);
		isif_strbuf_printf(b, ", ");
		sb_float(b, ((const float *)src)[1]);
		isif_strbuf_printf(b, "]");
		break;
	}
}

/* {"key": value, ...} over the members of the object at prefix, in table order. */
static void write_object(struct isif_strbuf *b, const struct isif_job_spec *s,
			 const char *prefix)
{
	const char *sep = "";
	isif_strbuf_printf(b, "{");
	for (int i = 0; i < N_FIELDS; i++) {
		const char *key = key_in(&fields[i], prefix);
		if (!key)
			continue;
		isif_strbuf_printf(b, "%s\"%s\": ", sep, key);
		write_value(b, s, &fields[i]);
		sep = ", ";
	}
	isif_strbuf_printf(b, "}");
}

char *isif_spec_to_json(const struct isif_job_spec *s)
{
	struct isif_strbuf b;
	isif_strbuf_init(&b, SIZE_MAX);
	write_object(&b, s, "");
	return isif_strbuf_take(&b, NULL);
}

/* ---- the spec against a dataset --------------------------------------- */

/* Each label of list must be a class of the dataset. */
static enum isif_rc check_labels(const char *path, const int *list, int n, int num_classes,
				 struct isif_error *err)
{
	for (int i = 0; i < n; i++)
		if (list[i] >= num_classes)
			return isif_fail(err, ISIF_EINVAL, "%s[%d]: %d is not a class of the dataset "
					 "(labels 0..%d)", path, i, list[i], num_classes - 1);
	return ISIF_OK;
}

enum isif_rc isif_spec_check_dataset(const struct isif_job_spec *s,
				     const struct isif_dataset_shape *shape, const char *what,
				     struct isif_error *err)
{
	const char *in = s->has_classes ? " in the chosen classes" : "";
	int rows = s->method == ISIF_METHOD_NPID ? s->batch_size : 2 * s->batch_size;
	if (shape->h < 16 || shape->w < 16)
		return isif_fail(err, ISIF_EINVAL, "dataset: the images of %s are %dx%d, below "
				 "the 16x16 the models need", what, shape->h, shape->w);
	if (s->random_crop > 0 && s->random_crop < 16)
		return isif_fail(err, ISIF_EINVAL, "augment.random_crop: %d is below the 16x16 "
				 "the models need", s->random_crop);
	if (s->random_crop > shape->h || s->random_crop > shape->w)
		return isif_fail(err, ISIF_EINVAL, "augment.random_crop: %d is larger than the "
				 "%dx%d images of %s", s->random_crop, shape->h, shape->w, what);
	if (s->class_split != ISIF_SPLIT_NONE && s->n_train_classes == 0) {
		/* not resolved yet: the rule needs classes to halve (when the
		 * count is known; the trainer resolves it against the loaded data) */
		struct isif_job_spec probe = *s;
		enum isif_rc rc = shape->num_classes > 0
			? isif_spec_resolve_classes(&probe, shape->num_classes, NULL, err) : ISIF_OK;
		if (rc)
			return rc;
	} else if (s->has_classes && shape->num_classes > 0) {
		enum isif_rc rc = check_labels("classes.train", s->train_classes,
					       s->n_train_classes, shape->num_classes, err);
		if (rc == ISIF_OK)
			rc = check_labels("classes.test", s->test_classes, s->n_test_classes,
					  shape->num_classes, err);
		if (rc)
			return rc;
	}
	if (s->train_subset > shape->n_train)
		return isif_fail(err, ISIF_EINVAL, "train_subset: %lld is more than the %lld "
				 "training images of %s%s", (long long)s->train_subset,
				 (long long)shape->n_train, what, in);
	int64_t used = s->train_subset > 0 ? s->train_subset : shape->n_train;
	if (used < s->batch_size)
		return isif_fail(err, ISIF_EINVAL, "batch_size: %d is more than the %lld images "
				 "to train on (%s of %s%s): a step needs batch_size images",
				 s->batch_size, (long long)used,
				 s->train_subset > 0 ? "train_subset" : "the train split", what, in);
	if (s->method == ISIF_METHOD_NPID && s->npid_nce && s->npid_negatives >= used)
		return isif_fail(err, ISIF_EINVAL, "npid.negatives: %d noise samples need more "
				 "than the %lld images in the memory bank", s->npid_negatives,
				 (long long)used);
	if (s->eval_every > 0 && shape->n_test < 1)
		return isif_fail(err, ISIF_EINVAL, "eval.every: the test split of %s%s is empty, "
				 "nothing to evaluate (set eval.every to 0)", what, in);
	if (rows % s->bn_groups || rows / s->bn_groups < 2)
		return isif_fail(err, ISIF_EINVAL, "bn_groups: %d does not split the %d rows of "
				 "a step (%s) into equal groups of 2 or more",
				 s->bn_groups, rows, s->method == ISIF_METHOD_NPID
				 ? "batch_size with npid" : "2 × batch_size");
	/* each process holds rows / processes rows and normalises only its own
	 * (isif_train_bn_groups), so groups may not straddle two processes */
	if (s->sync_bn && s->bn_groups != 1)
		return isif_fail(err, ISIF_EINVAL, "sync_bn: BN statistics over the whole batch "
				 "need bn_groups 1, not %d", s->bn_groups);
	int groups = s->sync_bn ? 1 : s->bn_groups == 1 ? s->processes : s->bn_groups;
	if (rows % s->processes || (!s->sync_bn && groups % s->processes) || rows % groups ||
	    rows / groups < 2 || rows / s->processes < 2)
		return isif_fail(err, ISIF_EINVAL, "processes: %d processes do not split the %d "
				 "rows of a step (2 × batch_size) into BN groups of 2 or more, each "
				 "inside one process (bn_groups %d: use 1 or a multiple of processes)",
				 s->processes, rows, s->bn_groups);
	if (s->method == ISIF_METHOD_NPID && s->processes > 1)
		return isif_fail(err, ISIF_EINVAL, "processes: method npid runs in one process "
				 "(its memory bank is not shared across processes), not %d", s->processes);
	return ISIF_OK;
}

/* ---- classes.split ----------------------------------------------------- */

enum isif_rc isif_spec_resolve_classes(struct isif_job_spec *s, int num_classes,
				       char *const *names, struct isif_error *err)
{
	if (s->class_split == ISIF_SPLIT_NONE)
		return ISIF_OK;
	if (num_classes < 2)
		return isif_fail(err, ISIF_EINVAL, "classes.split: the dataset has %d class%s, a "
				 "split needs at least 2", num_classes, num_classes == 1 ? "" : "es");
	if (num_classes > 2 * ISIF_SPEC_MAX_CLASSES)
		return isif_fail(err, ISIF_EINVAL, "classes.split: the dataset has %d classes, "
				 "more than the %d a split holds", num_classes, 2 * ISIF_SPEC_MAX_CLASSES);
	int order[2 * ISIF_SPEC_MAX_CLASSES];
	for (int i = 0; i < num_classes; i++)
		order[i] = i;
	if (names) {
		/* insertion sort by name (at most 2000; stable, so equal names keep
		 * label order) */
		for (int i = 1; i < num_classes; i++) {
			int v = order[i], j = i;
			while (j > 0 && strcmp(names[order[j - 1]], names[v]) > 0) {
				order[j] = order[j - 1];
				j--;
			}
			order[j] = v;
		}
	}
	int first = (num_classes + 1) / 2;
	bool first_trains = s->class_split == ISIF_SPLIT_FIRST_HALF;
	int *tr = s->train_classes, *te = s->test_classes;
	s->n_train_classes = first_trains ? first : num_classes - first;
	s->n_test_classes = num_classes - s->n_train_classes;
	for (int i = 0; i < num_classes; i++) {
		bool in_first = i < first;
		if (in_first == first_trains)
			*tr++ = order[i];
		else
			*te++ = order[i];
	}
	s->has_classes = true;
	return ISIF_OK;
}

/* ---- augmentation ------------------------------------------------------ */

void isif_spec_augment(const struct isif_job_spec *s, int out_h, int out_w,
		       const float mean[3], const float std[3],
		       struct isif_augment *a)
{
	memset(a, 0, sizeof *a);
	a->crop = s->crop;
	a->crop_scale[0] = s->crop_scale[0];
	a->crop_scale[1] = s->crop_scale[1];
	/* RandomResizedCrop's default aspect ratio range. */
	a->crop_ratio[0] = 3.0f / 4.0f;
	a->crop_ratio[1] = 4.0f / 3.0f;
	a->hflip = s->hflip;
	a->grayscale = s->grayscale;
	a->brightness = s->brightness;
	a->contrast = s->contrast;
	a->saturation = s->saturation;
	a->hue = s->hue;
	a->jitter_p = s->jitter_p;
	a->out_h = out_h;
	a->out_w = out_w;
	a->fit = s->random_crop > 0 ? ISIF_FIT_RANDOM_CROP : ISIF_FIT_RESIZE;
	for (int c = 0; c < 3; c++) {
		a->mean[c] = mean[c];
		a->std[c] = std[c];
	}
}

void isif_spec_input_size(const struct isif_job_spec *s, int h, int w, int *in_h, int *in_w)
{
	*in_h = s->random_crop > 0 ? s->random_crop : h;
	*in_w = s->random_crop > 0 ? s->random_crop : w;
}

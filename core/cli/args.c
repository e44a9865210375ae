/* core/cli/args.c — option scanning and number parsing for `isif`. */
#include <errno.h>
#include <math.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "isif/base/safetensors.h"
#include "isif/train/checkpoint.h"

int cli_args_init(struct cli_args *a, int argc, char **argv)
{
	a->argc = argc;
	a->argv = argv;
	a->bad = false;
	a->used = calloc((size_t)argc + 1, sizeof(bool));
	return a->used ? 0 : -1;
}

void cli_args_free(struct cli_args *a)
{
	free(a->used);
	a->used = NULL;
}

const char *cli_opt_nth(struct cli_args *a, const char *name, int n_values, int k)
{
	for (int i = 0; i < a->argc; i++) {
		if (strcmp(a->argv[i], name) != 0)
			continue;
		if (i + n_values >= a->argc) {
			fprintf(stderr, "isif: %s needs %d value%s\n", name, n_values,
				n_values > 1 ? "s" : "");
			a->used[i] = true;
			a->bad = true;
			return NULL;
		}
		for (int j = 0; j <= n_values; j++)
			a->used[i + j] = true;
		return a->argv[i + 1 + k];
	}
	return NULL;
}

const char *cli_opt(struct cli_args *a, const char *name)
{
	return cli_opt_nth(a, name, 1, 0);
}

bool cli_flag(struct cli_args *a, const char *name)
{
	for (int i = 0; i < a->argc; i++)
		if (strcmp(a->argv[i], name) == 0) {
			a->used[i] = true;
			return true;
		}
	return false;
}

bool cli_help(struct cli_args *a)
{
	return cli_flag(a, "--help") || cli_flag(a, "-h");
}

int cli_check_unused(struct cli_args *a, const char *cmd)
{
	if (a->bad)
		return -1;
	for (int i = 0; i < a->argc; i++)
		if (!a->used[i]) {
			fprintf(stderr, "isif %s: unknown argument '%s' (see isif %s --help)\n",
				cmd, a->argv[i], cmd);
			return -1;
		}
	return 0;
}

int cli_int(const char *name, const char *text, long min, long max, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(text, &end, 10);
	if (errno || end == text || *end || v < min || v > max) {
		fprintf(stderr, "isif: %s must be an integer in %ld..%ld, not '%s'\n", name, min,
			max, text);
		return -1;
	}
	*out = v;
	return 0;
}

int cli_double(const char *name, const char *text, double min, double max, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(text, &end);
	if (errno || end == text || *end || !isfinite(v) || v < min || v > max) {
		fprintf(stderr, "isif: %s must be a number in [%g, %g], not '%s'\n", name, min, max,
			text);
		return -1;
	}
	*out = v;
	return 0;
}

/* Input channels from the first weight ([K, C, R, S]) and the embedding
 * width from linear.weight ([D, C]). */
static int shapes_from_file(const struct isif_st_file *f, int *channels, int *dim)
{
	const struct isif_tensor *first = f->n ? &f->tensors[0] : NULL;
	const struct isif_tensor *lin = isif_st_find(f, "linear.weight");
	if (!first || first->ndim != 4 || !lin || lin->ndim != 2)
		return -1;
	*channels = (int)first->shape[1];
	*dim = (int)lin->shape[0];
	return 0;
}

int cli_threads(void)
{
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	return cores > 0 ? (int)cores : 1;
}

/* The centre crop side a checkpoint's "preprocessing" records (a job
 * trained with augment.random_crop), else 0. */
static int meta_crop(const struct isif_st_file *f)
{
	const char *text = isif_st_meta_get(&f->meta, "preprocessing");
	json_t *p = text ? json_loads(text, 0, NULL) : NULL;
	json_t *c = json_array_get(json_object_get(json_object_get(p, "crop"), "center"), 0);
	int crop = json_is_integer(c) && json_integer_value(c) > 0 &&
		   json_integer_value(c) <= 4096 ? (int)json_integer_value(c) : 0;
	json_decref(p);
	return crop;
}

enum isif_rc cli_load_model(const char *checkpoint, const char *model, struct isif_model **out,
			    int *crop)
{
	struct isif_error err = {0};
	struct isif_st_file f;
	int rc = isif_st_read(checkpoint, &f, &err);
	if (rc) {
		fprintf(stderr, "isif: %s\n", err.msg);
		return rc;
	}
	if (crop)
		*crop = meta_crop(&f);
	int channels = 0, dim = 0;
	const char *name = model ? model : isif_st_meta_get(&f.meta, "model");
	if (!name || shapes_from_file(&f, &channels, &dim)) {
		fprintf(stderr, "isif: %s: cannot tell the model (give --model)\n", checkpoint);
		isif_st_file_free(&f);
		return ISIF_EFORMAT;
	}
	rc = isif_model_create(out, name, channels, dim, 0, &err);
	isif_st_file_free(&f);
	if (!rc)
		rc = isif_checkpoint_load(*out, checkpoint, NULL, &err);
	if (!rc)
		rc = isif_model_set_threads(*out, cli_threads(), &err);
	if (rc) {
		fprintf(stderr, "isif: %s\n", err.msg);
		isif_model_free(*out);
		*out = NULL;
	}
	return rc;
}

/*
 * tests/fuzz/fuzz_safetensors.c — safetensors parsing (isif_st_parse) and,
 * on top, loading the same bytes as a checkpoint into a model and as
 * optimizer state (isif_checkpoint_load, isif_optim_load: what a resume
 * reads). The model is the tiny `convnet` on 1 channel, built once.
 * Invariants: no crash; a parsed file's tensors lie inside its data
 * section with the sizes their shapes say; a file that parses writes back
 * (isif_st_write) and parses again to the same tensors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "isif/nn/model.h"
#include "isif/nn/optim.h"
#include "isif/base/safetensors.h"
#include "isif/train/checkpoint.h"

static struct isif_model *model;
static struct isif_sgd sgd;

static void setup(void)
{
	struct isif_error err = {0};
	if (model)
		return;
	if (isif_model_create(&model, "convnet", 1, 128, 1, &err) != ISIF_OK) {
		fprintf(stderr, "fuzz_safetensors: %s\n", err.msg);
		abort();
	}
	if (isif_sgd_init(&sgd, isif_model_num_params(model), 0.9f, 0.0f, 5e-4f, false) !=
	    ISIF_OK)
		abort();
}

static void check_file(const struct isif_st_file *f)
{
	for (size_t i = 0; i < f->n; i++) {
		const struct isif_tensor *t = &f->tensors[i];
		size_t bytes = (size_t)isif_tensor_numel(t) * isif_dtype_size(t->dtype);
		const char *p = t->data, *b = f->blob;
		if (t->ndim < 0 || t->ndim > ISIF_MAX_DIMS || !t->name ||
		    (bytes && (p < b || p + bytes > b + f->blob_size)))
			abort();
		if (bytes)
			(void)*(volatile const char *)(p + bytes - 1);
	}
}

static void rewrite(const struct isif_st_file *f)
{
	char path[256];
	struct isif_error err = {0};
	struct isif_st_file g;
	snprintf(path, sizeof path, "%s/rewrite.safetensors", fuzz_dir());
	if (isif_st_write(path, f->tensors, f->n, &f->meta, &err) != ISIF_OK)
		return; /* e.g. a name the writer refuses; the parse is what is fuzzed */
	if (isif_st_read(path, &g, &err) != ISIF_OK || g.n != f->n)
		abort();
	for (size_t i = 0; i < g.n; i++) {
		const struct isif_tensor *a = isif_st_find(&g, f->tensors[i].name);
		size_t bytes = (size_t)isif_tensor_numel(&f->tensors[i]) *
			       isif_dtype_size(f->tensors[i].dtype);
		if (!a || a->dtype != f->tensors[i].dtype || a->ndim != f->tensors[i].ndim ||
		    memcmp(a->data, f->tensors[i].data, bytes) != 0)
			abort();
	}
	isif_st_file_free(&g);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[256];
	struct isif_error err = {0};
	struct isif_st_file f;
	setup();
	if (fuzz_note("parse", isif_st_parse(data, size, &f, &err), &err) == ISIF_OK) {
		check_file(&f);
		rewrite(&f);
		isif_st_file_free(&f);
	}
	snprintf(path, sizeof path, "%s/in.safetensors", fuzz_dir());
	fuzz_write("in.safetensors", data, size);
	struct isif_st_meta meta = {0};
	if (fuzz_note("checkpoint", isif_checkpoint_load(model, path, &meta, &err), &err) == ISIF_OK)
		isif_st_meta_free(&meta);
	fuzz_note("optim", isif_optim_load(&sgd, model, path, &err), &err);
	return 0;
}

/*
 * isif/base/safetensors.h — reading and writing safetensors files
 * (8-byte little-endian header length, JSON header
 * {name: {dtype, shape, data_offsets}, "__metadata__": {str: str}},
 * raw little-endian data). Model and optimizer checkpoints on top of it are
 * isif/train/checkpoint.h.
 * Writes are atomic: temporary name, fsync, rename, fsync of the directory.
 * Output is deterministic, so save → load → save is byte-identical.
 */
#ifndef ISIF_SAFETENSORS_H
#define ISIF_SAFETENSORS_H

#include <stddef.h>

#include "isif/base/common.h"

#define ISIF_ST_MAX_HEADER (64u << 20)  /* refuse larger JSON headers */

struct isif_st_meta {
	size_t n;
	char **keys;     /* owned strings */
	char **values;
};

/* A parsed file: tensors point into `blob`, which the struct owns. */
struct isif_st_file {
	size_t n;
	struct isif_tensor *tensors;  /* in file order; names owned */
	struct isif_st_meta meta;
	void *blob;                   /* the file's data section */
	size_t blob_size;
};

/* Adds (or replaces) a metadata key; copies both strings. */
enum isif_rc isif_st_meta_set(struct isif_st_meta *meta, const char *key, const char *value);

/* Value of key, or NULL. */
const char *isif_st_meta_get(const struct isif_st_meta *meta, const char *key);

/* Frees the metadata strings. */
void isif_st_meta_free(struct isif_st_meta *meta);

/* Writes n tensors (in the given order) and optional metadata to path, atomically. */
enum isif_rc isif_st_write(const char *path, const struct isif_tensor *tensors, size_t n,
		  const struct isif_st_meta *meta, struct isif_error *err);

/* Reads and validates a whole file (offsets in bounds, contiguous, no overlap,
 * sizes matching shapes, known dtypes). Free with isif_st_file_free. */
enum isif_rc isif_st_read(const char *path, struct isif_st_file *out, struct isif_error *err);

/* Same, from a memory buffer (copied). */
enum isif_rc isif_st_parse(const void *buf, size_t len, struct isif_st_file *out, struct isif_error *err);

void isif_st_file_free(struct isif_st_file *f);

/* Tensor by name, or NULL. */
const struct isif_tensor *isif_st_find(const struct isif_st_file *f, const char *name);

#endif

/*
 * isif/base/npy.h — NumPy .npy files of float32 C-order arrays (format 1.0/2.0
 * read, 1.0 written with the header padded to 64 bytes as NumPy does).
 */
#ifndef ISIF_NPY_H
#define ISIF_NPY_H

#include <stdint.h>

#include "isif/base/common.h"

#define ISIF_NPY_MAX_DIMS 8

struct isif_npy {
	int ndim;
	int64_t shape[ISIF_NPY_MAX_DIMS];
	float *data;   /* owned (malloc), C order */
};

/* Reads a '<f4' C-order array; other dtypes, Fortran order, truncated files
 * give ISIF_EFORMAT with a message. Free data with free(). */
enum isif_rc isif_npy_read(const char *path, struct isif_npy *out, struct isif_error *err);

/* Writes data as a '<f4' C-order array, atomically (temp, fsync, rename). */
enum isif_rc isif_npy_write(const char *path, const float *data, int ndim,
		   const int64_t *shape, struct isif_error *err);

#endif

/*
 * core/data/dataset_impl.h — internals shared by the dataset readers
 * (dataset_idx.c, dataset_cifar.c, dataset_stl.c, dataset_folder.c) and the
 * dispatcher dataset.c. Not part of the public API.
 *
 * Each reader fills ds->train, ds->test, ds->num_classes and (optionally)
 * ds->class_names; on failure it may leave partial allocations in ds, which
 * the dispatcher frees with isif_dataset_free. Mean/std are the
 * dispatcher's job.
 */
#ifndef ISIF_DATASET_IMPL_H
#define ISIF_DATASET_IMPL_H

#include <stdbool.h>
#include <stdio.h>

#include "isif/data/dataset.h"

/* Caps on what a file header may ask for. */
#define ISIF_DS_MAX_IMAGES   10000000LL          /* images per split */
#define ISIF_DS_MAX_SIDE     4096                /* height/width from a header */
#define ISIF_DS_MAX_BYTES    (1LL << 36)         /* pixel bytes per split (64 GiB) */
#define ISIF_DS_PATH_MAX     4096
#define ISIF_DS_MAX_DEPTH    32                  /* folder levels below a class folder */
#define ISIF_DS_MAX_DIRS     1000000LL           /* directories walked per load */

enum isif_rc isif_idx_load(struct isif_dataset *ds, const char *dir, struct isif_error *err);
enum isif_rc isif_cifar_load(struct isif_dataset *ds, const char *dir, bool hundred,
		    struct isif_error *err);
enum isif_rc isif_stl_load(struct isif_dataset *ds, const char *dir,
		  const struct isif_dataset_options *opt, struct isif_error *err);
enum isif_rc isif_folder_load(struct isif_dataset *ds, const char *dir,
		     const struct isif_dataset_options *opt, struct isif_error *err);

/* The readers' probes (isif_dataset_probe): the shape without the pixels. */
enum isif_rc isif_idx_probe(const char *dir, struct isif_dataset_shape *out, struct isif_error *err);
enum isif_rc isif_cifar_probe(const char *dir, bool hundred, struct isif_dataset_shape *out,
			      struct isif_error *err);
enum isif_rc isif_stl_probe(const char *dir, const struct isif_dataset_options *opt,
			    struct isif_dataset_shape *out, struct isif_error *err);
enum isif_rc isif_folder_probe(const char *dir, const struct isif_dataset_options *opt,
			       struct isif_dataset_shape *out, struct isif_error *err);

/* Sets ds->mean/std from the train split (see dataset.c). */
void isif_ds_channel_stats(struct isif_dataset *ds);

/* out = dir + "/" + name; ISIF_EINVAL naming both if it does not fit. */
enum isif_rc isif_ds_join(char *out, const char *dir, const char *name, struct isif_error *err);

/* True when path is a regular file / a directory (following links). */
bool isif_ds_is_file(const char *path);
bool isif_ds_is_dir(const char *path);

/* out = dir, or dir/sub when dir lacks the file `first` and dir/sub has it
 * (archives unpack into a sub-folder such as cifar-10-batches-bin/). */
enum isif_rc isif_ds_pick_dir(char *out, const char *dir, const char *sub,
		     const char *first, struct isif_error *err);

/* Allocates a split of n images c×h×w after checking the caps; labels are
 * set to −1. `what` names the file or folder in the error message. */
enum isif_rc isif_ds_split_alloc(struct isif_split *s, int64_t n, int c, int h, int w,
			const char *what, struct isif_error *err);

/* Opens a plain binary file and returns its size; ISIF_EIO naming it. */
enum isif_rc isif_ds_open(const char *path, FILE **f, int64_t *size, struct isif_error *err);

/* Reads exactly n bytes or fails: ISIF_EIO on a read error, ISIF_EFORMAT
 * ("truncated") when the file ends early. */
enum isif_rc isif_ds_read(FILE *f, void *buf, size_t n, const char *path, struct isif_error *err);

/* Reads optional class names, one per non-empty line, from path. Sets
 * ds->class_names only when the file exists and holds exactly
 * ds->num_classes names; otherwise leaves it NULL and succeeds. */
enum isif_rc isif_ds_read_class_names(struct isif_dataset *ds, const char *path,
			     struct isif_error *err);

/* Sets ds->class_names to copies of names[0 .. ds->num_classes). */
enum isif_rc isif_ds_set_class_names(struct isif_dataset *ds, const char *const *names,
				     struct isif_error *err);

#endif

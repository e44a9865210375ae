/*
 * server/checkpoints.h — uploaded starting checkpoints (a job's
 * init.checkpoint): STATE/checkpoints/NAME.safetensors, stored once under a
 * name (POST /checkpoints), never replaced, read by the jobs that name it.
 */
#ifndef ISIFD_CHECKPOINTS_H
#define ISIFD_CHECKPOINTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "isif/base/common.h"

/* 1..63 of [a-z0-9._-], starting with a letter or digit (no path can hide in it). */
bool checkpoint_name_ok(const char *name);

/* STATE/checkpoints/NAME.safetensors into out (cap bytes). */
void checkpoint_file(const char *state_dir, const char *name, char *out, size_t cap);

/*
 * Stores buf[len] as checkpoint `name` once it parses as safetensors
 * (ISIF_EFORMAT naming what is wrong otherwise), written atomically (temp
 * name, fsync, rename, directory fsync). ISIF_ECONFLICT when the name is
 * taken. *info: {"name", "bytes", "tensors", "model"} (model: the file's
 * "model" metadata or null).
 */
enum isif_rc checkpoint_store(const char *state_dir, const char *name, const void *buf,
			      size_t len, json_t **info, struct isif_error *err);

/* {"checkpoints": [{"name", "bytes"}, ...]} sorted by name. */
enum isif_rc checkpoint_list(const char *state_dir, json_t **out, struct isif_error *err);

#endif

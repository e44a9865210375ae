/*
 * server/dscache.h — registered datasets loaded for the HTTP side: the
 * image endpoint (thumbnails) and queries by a dataset image that is not
 * in a job's index. A loaded dataset is immutable and shared read-only;
 * it is keyed by what it holds — the resolved path, the format and the
 * image size — so names registered over the same files share one copy. At
 * most `capacity` stay loaded once unused (least recently used out). The
 * training workers keep their own copies (jobrun.c). Thread-safe.
 *
 * Also where datasets may live: the roots of --dataset-root.
 */
#ifndef ISIFD_DSCACHE_H
#define ISIFD_DSCACHE_H

#include <stddef.h>

#include "isif/data/dataset.h"
#include "store.h"

struct dscache;
struct dscache_entry;

struct dscache *dscache_create(struct store *st, int capacity);

/* Folder datasets: decode on threads threads and cache them decoded in dir
 * (NULL: no cache) within max_bytes (isif_dataset_options). Before use. */
void dscache_set_folder_cache(struct dscache *dc, const char *dir, int64_t max_bytes, int threads);

/* Sets opt's folder threads and cache as dscache_set_folder_cache gave them
 * (for loads outside the cache, such as POST /datasets' check). */
void dscache_folder_options(const struct dscache *dc, struct isif_dataset_options *opt);

/* Logs what a load of dataset name did with the folder cache (nothing when
 * it had none). */
void dscache_log_cache(const char *name, const struct isif_dataset *ds);
void dscache_free(struct dscache *dc);

/* The dataset registered as name, loaded on first use (and its shape
 * recorded in the registry). ISIF_ENOTFOUND when not registered; another
 * isif_rc with err when it cannot be loaded. May take seconds: not on an
 * HTTP thread (http_defer). Release when done. */
enum isif_rc dscache_acquire(struct dscache *dc, const char *name, struct dscache_entry **out,
		    const struct isif_dataset **ds, struct isif_error *err);

/* The same without loading or waiting for a load: ISIF_EEMPTY when the
 * dataset is registered but not loaded now. For the HTTP threads. */
enum isif_rc dscache_peek(struct dscache *dc, const char *name, struct dscache_entry **out,
			  const struct isif_dataset **ds, struct isif_error *err);

void dscache_release(struct dscache *dc, struct dscache_entry *e);

struct dataset_info;

/* What the registry records of a loaded dataset: its shape, and as JSON
 * (malloc'd into *norm and *names, NULL when absent; the caller frees)
 * the normalization and the class names that info points to. */
void dscache_info_of(const struct isif_dataset *ds, struct dataset_info *info, char **norm,
		     char **names);

/* Datasets loaded from files so far (tests, /metrics). */
long dscache_loads(struct dscache *dc);

/*
 * Resolves path (absolute; symlinks and .. followed, as the loader will)
 * into resolved[len] and checks that it is a readable directory under one
 * of roots (comma-separated directories, themselves resolved). Every
 * failure — missing, not a directory, unreadable, outside the roots — is
 * the same ISIF_EFORBIDDEN with the same message, which names neither
 * the path's parts nor the reason: a client cannot probe the filesystem.
 */
enum isif_rc dscache_resolve_in_roots(const char *roots, const char *path, char *resolved,
				      size_t len, struct isif_error *err);

#endif

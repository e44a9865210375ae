/*
 * server/dscache.h — registered datasets loaded for the HTTP side: the
 * image endpoint (thumbnails) and queries by a dataset image that is not
 * in a job's index. A loaded dataset is immutable and shared read-only;
 * at most `capacity` stay loaded once unused (least recently used out).
 * The training workers keep their own copies (jobrun.c). Thread-safe.
 */
#ifndef ISIFD_DSCACHE_H
#define ISIFD_DSCACHE_H

#include "isif/data/dataset.h"
#include "store.h"

struct dscache;
struct dscache_entry;

struct dscache *dscache_create(struct store *st, int capacity);
void dscache_free(struct dscache *dc);

/* The dataset registered as name, loaded on first use (and its shape
 * recorded in the registry). ISIF_ENOTFOUND when not registered; another
 * isif_rc with err when it cannot be loaded. Release when done. */
enum isif_rc dscache_acquire(struct dscache *dc, const char *name, struct dscache_entry **out,
		    const struct isif_dataset **ds, struct isif_error *err);
void dscache_release(struct dscache *dc, struct dscache_entry *e);

#endif

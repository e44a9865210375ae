/*
 * server/store_items.h — the job_items table (migration 010): the items
 * added to a job's collection after training, each with its embedding.
 * Same rules as store.h: thread-safe, one transaction per change (committed
 * before the call returns), every failure an enum isif_rc with err.
 */
#ifndef ISIFD_STORE_ITEMS_H
#define ISIFD_STORE_ITEMS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "store.h"

/* One item to add. */
struct item_new {
	const char *id;
	int32_t label;          /* -1: none */
	const char *metadata;   /* a JSON object's text, or NULL */
	const float *emb;       /* [dim] */
};

/* What an add did to one item: its new seq, and the seq it replaced (-1). */
struct item_added {
	int64_t seq, replaced;
};

/* Adds n items to job's collection in one transaction (ISIF_ENOTFOUND: no
 * such job; ISIF_EBUSY: it has not succeeded). Without replace an
 * id already there is ISIF_ECONFLICT (err names it; nothing added); with
 * it the old row goes. ISIF_ERANGE when the collection would pass
 * max_items. out[n]: the rows' seq. */
enum isif_rc store_items_add(struct store *st, int64_t job, const struct item_new *items, int n,
			     int dim, bool replace, int64_t max_items, struct item_added *out,
			     struct isif_error *err);

/* Deletes one item: its seq in *seq; ISIF_ENOTFOUND when absent. */
enum isif_rc store_items_delete(struct store *st, int64_t job, const char *id, int64_t *seq,
				struct isif_error *err);

/* Calls fn for every item of job, in seq order (emb: dim floats; a row of
 * another width is skipped with a log line). Stops at fn's first error. */
enum isif_rc store_items_each(struct store *st, int64_t job, int dim,
			      enum isif_rc (*fn)(void *arg, int64_t seq, const char *id,
						 int32_t label, const char *meta, const float *emb),
			      void *arg, struct isif_error *err);

/* {"items": [...], "count": total, "next_after": id|null}: up to limit
 * items with ids after `after` (NULL: from the first), by id. */
enum isif_rc store_items_json(struct store *st, int64_t job, const char *after, int limit,
			      json_t **out, struct isif_error *err);

/* One item as JSON (with its embedding when with_emb); ISIF_ENOTFOUND. */
enum isif_rc store_item_json(struct store *st, int64_t job, const char *id, bool with_emb,
			     json_t **out, struct isif_error *err);

#endif

/*
 * server/items.h — the items added to a job's collection after training
 * (POST /jobs/{id}/items), held in memory beside the loaded index so that
 * /neighbors searches them with the dataset rows: their raw embeddings and
 * inverse norms, ids, labels and metadata, in the order of their store
 * sequence number `seq` (migration 010). An item's place in the exact
 * search's total order is row base + seq (base: the train split's rows):
 * at equal similarity after every dataset row, then older items first.
 * Readers (searches, answers) take the read lock, add and remove the write
 * lock. Thread-safe.
 */
#ifndef ISIFD_ITEMS_H
#define ISIFD_ITEMS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "isif/base/common.h"

struct item_set;

/* An empty set of dim-wide items; NULL when out of memory. */
struct item_set *item_set_create(int dim);
void item_set_free(struct item_set *s);

/* Appends one item (seq above every held one; emb[dim] copied; label -1:
 * none; meta: JSON object text or NULL). ISIF_ENOMEM, ISIF_EINVAL. */
enum isif_rc item_set_add(struct item_set *s, int64_t seq, const char *id, int32_t label,
			  const char *meta, const float *emb);

/* Removes the item of seq (nothing when absent). */
void item_set_remove(struct item_set *s, int64_t seq);

int64_t item_set_count(struct item_set *s);

/* Bytes the items hold in memory: embeddings, ids, metadata text and the
 * per-item fields (GET /jobs/{id}/index). */
int64_t item_set_bytes(struct item_set *s);

/* A copy of the set taken at one instant, oldest item first (the order
 * /neighbors ranks ties in): what an export streams while adds and
 * removes go on. label -1: none; meta[i] NULL: none. */
struct item_snapshot {
	int64_t n;
	int dim;
	char **id, **meta;
	int32_t *label;
	float *emb;          /* [n, dim] */
};
enum isif_rc item_set_snapshot(struct item_set *s, struct item_snapshot *out);
void item_snapshot_free(struct item_snapshot *x);

/* Merges the items into each of nq queries' k best of the dataset
 * (idx[nq·k], sim[nq·k], best first, −1 / −∞ past the end, as the exact
 * search answers): item similarities come from the exact search's own
 * kernel (isif_topk), an item's row is base + seq. On out of memory the
 * lists stay the dataset's (logged). */
void item_set_merge_into(struct item_set *s, int64_t base, const float *q, int nq, int k,
			 int64_t *idx, float *sim);

/* The item of seq as JSON {"item": id, "label"?, "metadata"?} (a new
 * reference), or NULL when it was removed meanwhile. *label: its label or
 * -1. */
json_t *item_set_describe(struct item_set *s, int64_t seq, int32_t *label);

/* The label of the item of seq: -1 none, -2 removed. */
int32_t item_set_label(struct item_set *s, int64_t seq);

/* Merges two k-best lists a and b (each best first: similarity down, then
 * row up; −1 past the end) into out (k entries, the same order). out may
 * not alias a or b. */
void item_topk_merge(const int64_t *a_idx, const float *a_sim, const int64_t *b_idx,
		     const float *b_sim, int k, int64_t *out_idx, float *out_sim);

#endif

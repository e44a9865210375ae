/*
 * server/index.h — per-job embedding indexes for retrieval.
 *
 * Writing (the job's worker, at each evaluation): index_publish stores the
 * epoch's train and test embeddings, with the dataset index and label of
 * every row, as a directory jobs/<id>/index-<epoch>-<nonce>/ holding
 * index.bin and model.safetensors (a hard link to the checkpoint that made
 * them, so a query image is embedded by the very model that embedded the
 * index). The directory is built under a temporary name, fsynced and
 * renamed; then the job's job_indexes row is replaced, and the older
 * directories removed.
 *
 * Reading (HTTP threads): index_acquire returns the job's current index,
 * mapped (mmap, read-only) on first use and shared read-only by every request
 * that holds a reference. When a newer row lands, the next acquire loads
 * it and swaps it into the cache; requests still holding the old copy
 * keep it until they release it. At most `capacity` jobs stay loaded
 * (least recently used out). The model is loaded on the first query that
 * needs it and runs one forward at a time (a mutex per index).
 *
 * index.bin (little-endian): a 256-byte header (struct index_header in
 * index.c), then ids and labels (int32) of the train rows, of the test
 * rows, then the train and test embeddings (float32, rows of `dim`).
 */
#ifndef ISIFD_INDEX_H
#define ISIFD_INDEX_H

#include <stdbool.h>
#include <stdint.h>

#include "isif/data/dataset.h"
#include "isif/train/spec.h"
#include "store.h"

enum { SPLIT_TRAIN = 0, SPLIT_TEST = 1 };

/* "train" / "test" → SPLIT_*, or -1. */
int index_split_parse(const char *name);
const char *index_split_name(int split);

struct index_idpos;

struct index_split {
	int64_t n;
	const int32_t *ids;      /* dataset index of each row */
	const int32_t *labels;   /* label of each row (-1: unlabelled) */
	const float *emb;        /* [n, dim] */
	struct index_idpos *by_id; /* (id, row) sorted by id */
};

/* One loaded index: read-only after loading, but for the lazy model. */
struct index_data {
	int64_t job;
	int epoch, dim;
	int c, h, w;              /* the dataset's images */
	int crop;                 /* the model sees their centre crop×crop (0: all of them) */
	float mean[3], std[3];    /* its normalisation */
	char model[ISIF_SPEC_NAME_LEN], dataset[ISIF_SPEC_NAME_LEN];
	struct index_split split[2];
	int n_classes;            /* class_names' length, 0 when the checkpoint has none */
	char **class_names;       /* label → name, from the checkpoint's "classes" */
	char dir[1024];           /* absolute path of the index directory */
	struct index_priv *priv;  /* refcount, blob, model */
	struct ann_state *ann;    /* the approximate index (server/ann_index.c); NULL only if out of memory */
	struct item_set *items;   /* items added after training (items.h), searched with the
				   * train split as rows split[0].n + seq; NULL only if out of memory */
};

/* ---- writing ------------------------------------------------------------ */

/* The dataset rows a job with this spec trains and evaluates on, as the
 * trainer picks them (classes filter, then train_subset for train):
 * writes their indices to out (ds split size entries) and returns how many. */
int64_t index_select_rows(const struct isif_job_spec *spec, const struct isif_dataset *ds,
			  int split, int32_t *out);

/* What one evaluation produced. */
struct index_source {
	int64_t job;
	const char *job_dir;          /* <state>/jobs/<id> */
	int epoch;
	const char *checkpoint_path;  /* the epoch's model checkpoint */
	const struct isif_job_spec *spec;
	const struct isif_dataset *ds;
	const float *emb[2];          /* train, test: [n, dim] */
	int64_t n[2];
	int dim;
};

/* Writes the index directory and commits the job's row (see above). */
enum isif_rc index_publish(struct store *st, const struct index_source *src, struct isif_error *err);

/* Writes index.bin alone at path (atomically). For index_publish and tests. */
enum isif_rc index_file_write(const char *path, const struct index_data *meta, struct isif_error *err);

/* ---- reading ------------------------------------------------------------ */

struct index_cache;

struct index_cache *index_cache_create(struct store *st, const char *state_dir, int capacity);
void index_cache_free(struct index_cache *c);

/* The job's current index (a new reference): ISIF_ENOTFOUND (no such job),
 * ISIF_EEMPTY (no index yet) or another isif_rc, each with err. Thread-safe. */
enum isif_rc index_acquire(struct index_cache *c, int64_t job, struct index_data **out, struct isif_error *err);

/* The job's index when it is loaded and no index row changed since it was
 * checked (a reference, or NULL: use index_acquire). Never blocks on I/O:
 * for the HTTP threads. */
struct index_data *index_acquire_current(struct index_cache *c, int64_t job);
void index_release(struct index_data *ix);

/* Loads index.bin from dir (the index directory) without any cache, with
 * one reference; validates every size. The class names come from the
 * "classes" metadata of dir/model.safetensors when it has them. */
enum isif_rc index_load_dir(const char *dir, struct index_data **out, struct isif_error *err);

/* Files loaded so far by the cache (tests). */
long index_cache_loads(struct index_cache *c);

/* The name of a label, or NULL (no names, or out of range). */
const char *index_class_name(const struct index_data *ix, int label);

/* Row of dataset image `id` in a split of the index, or -1. */
int64_t index_find_row(const struct index_data *ix, int split, int64_t id);

/* The evaluation preprocessing of the index's dataset for one uint8 CHW
 * image of any size and 1 or 3 channels: resize to h×w (bilinear),
 * channels converted, the centre crop×crop taken when crop > 0, scaled to
 * 0..1 and normalised: out[c, in_h, in_w] (index_input_size). */
enum isif_rc index_preprocess(const struct index_data *ix, const uint8_t *px, int c, int h, int w,
		     float *out, struct isif_error *err);

/* Embeds n preprocessed images x[n, c, h, w] into out[n, dim] with the
 * index's model (loaded on first use; one forward at a time per index). */
/* The model's input size: the centre crop's when the job trained on
 * random crops, else the dataset's images' h×w. */
void index_input_size(const struct index_data *ix, int *in_h, int *in_w);

enum isif_rc index_embed(struct index_data *ix, const float *x, int n, float *out, struct isif_error *err);

/* The exact top-k of nq queries q[nq, dim] in a split: idx[nq·k] (rows of
 * the split; −1 past its end) and sim[nq·k], best first, ties by lower row:
 * exactly isif_topk's answer, whatever the batch. The split's rows are
 * packed and normalised once, on first use, per k bucket, and kept with the
 * index; threads and max_batch size that packed gallery (fixed at its
 * creation). One search at a time per index. The search path's single
 * entry for a batch of queries (search.c calls it). */
enum isif_rc index_search_batch(struct index_data *ix, int split, const float *q, int nq, int k,
				int threads, int max_batch, int64_t *idx, float *sim,
				struct isif_error *err);

/* ---- collections that grow (POST /jobs/{id}/items) ------------------------ */

struct item_new;
struct item_added;

/* Whether a row of a split's search results is an added item (rows past
 * the split's own), and that item's seq. */
static inline bool index_row_is_item(const struct index_data *ix, int split, int64_t row)
{
	return split == SPLIT_TRAIN && row >= ix->split[SPLIT_TRAIN].n;
}

/* Adds n items (store_items_add) and puts them in the job's loaded index,
 * both under the cache's item lock: an index loaded at the same time holds
 * them exactly once. */
enum isif_rc index_items_add(struct index_cache *c, int64_t job, const struct item_new *items,
			     int n, int dim, bool replace, int64_t max_items, struct item_added *out,
			     struct isif_error *err);

/* Deletes one item (store_items_delete) from the store and the loaded index. */
enum isif_rc index_items_delete(struct index_cache *c, int64_t job, const char *id,
				struct isif_error *err);

#endif

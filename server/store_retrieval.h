/*
 * server/store_retrieval.h — the store's tables for retrieval (migration
 * 002): each job's current embedding index, and the dataset registry's
 * writes (POST /datasets) and listing with the datasets' shapes. Same
 * rules as store.h: thread-safe, one transaction per change, every failure
 * an enum isif_rc with its message in the caller's err.
 */
#ifndef ISIFD_STORE_RETRIEVAL_H
#define ISIFD_STORE_RETRIEVAL_H

#include <jansson.h>
#include <stdint.h>

#include "store.h"

#define INDEX_PATH_LEN 512

/* A job_indexes row: the index directory relative to the state dir. */
struct index_row {
	int64_t job;
	int epoch;
	char path[INDEX_PATH_LEN];
	int64_t n_train, n_test;
	int dim;
	int64_t bytes;
};

/* The job's current index. ISIF_ENOTFOUND: no such job; ISIF_EEMPTY: the
 * job has no index yet. */
enum isif_rc store_index_get(struct store *st, int64_t job, struct index_row *row,
			     struct isif_error *err);

/* Inserts or replaces the job's index row (one statement). */
enum isif_rc store_index_put(struct store *st, const struct index_row *row,
			     struct isif_error *err);

/* The newest job that has an index and succeeded or is running;
 * ISIF_EEMPTY when there is none. */
enum isif_rc store_index_default_job(struct store *st, int64_t *job, struct isif_error *err);

/* What a dataset holds (NULL columns until known: -1 here, NULL strings). */
struct dataset_info {
	int64_t train_images, test_images;
	int channels, height, width, classes;
	const char *normalization;   /* JSON {"mean": [...], "std": [...]} */
	const char *class_names;     /* JSON array of strings */
	int image_size;              /* folder datasets' resize side; 0: the default (insert only) */
};

/* Registers a dataset; ISIF_ECONFLICT when the name is taken. */
enum isif_rc store_dataset_insert(struct store *st, const char *name, const char *format,
			 const char *path, const struct dataset_info *info, struct isif_error *err);

/* The side a registered folder dataset is resized to (POST /datasets
 * image_size), or 0 for the reader's default (also for unknown names). */
int store_dataset_image_size(struct store *st, const char *name);

/* Records the shape of a registered dataset (after loading it). */
enum isif_rc store_dataset_set_info(struct store *st, const char *name,
				    const struct dataset_info *info, struct isif_error *err);

/* One dataset as JSON (name != NULL; ISIF_ENOTFOUND) or
 * {"datasets": [...]} (name NULL), each with its shape columns. */
enum isif_rc store_dataset_json(struct store *st, const char *name, json_t **out,
				struct isif_error *err);

#endif

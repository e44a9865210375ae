/*
 * server/store_retrieval.h — the store's tables for retrieval (migration
 * 002): each job's current embedding index, and the dataset registry's
 * writes (POST /datasets) and listing with the datasets' shapes. Same
 * rules as store.h: thread-safe, one transaction per change.
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

/* The job's current index. STORE_NOTFOUND: no such job; STORE_EMPTY: the
 * job has no index yet. */
int store_index_get(struct store *st, int64_t job, struct index_row *row);

/* Inserts or replaces the job's index row (one statement). */
int store_index_put(struct store *st, const struct index_row *row);

/* The newest job that has an index and succeeded or is running;
 * STORE_EMPTY when there is none. */
int store_index_default_job(struct store *st, int64_t *job);

/* What a dataset holds (NULL columns until known: -1 here). */
struct dataset_info {
	int64_t train_images, test_images;
	int channels, height, width, classes;
};

/* Registers a dataset; STORE_CONFLICT when the name is taken. */
int store_dataset_insert(struct store *st, const char *name, const char *format,
			 const char *path, const struct dataset_info *info);

/* Records the shape of a registered dataset (after loading it). */
int store_dataset_set_info(struct store *st, const char *name,
			   const struct dataset_info *info);

/* One dataset as JSON (name != NULL; STORE_NOTFOUND) or
 * {"datasets": [...]} (name NULL), each with its shape columns. */
int store_dataset_json(struct store *st, const char *name, json_t **out);

#endif

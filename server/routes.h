/*
 * server/routes.h — the request handlers behind the route table in http.c:
 * jobs (routes_jobs.c), datasets (routes_datasets.c), retrieval
 * (routes_neighbors.c), embedding exports (routes_export.c) and everything
 * else (routes_misc.c).
 */
#ifndef ISIFD_ROUTES_H
#define ISIFD_ROUTES_H

#include "http.h"

enum MHD_Result route_jobs_create(struct request *rq);
enum MHD_Result route_jobs_list(struct request *rq);
enum MHD_Result route_job_get(struct request *rq);
enum MHD_Result route_job_metrics(struct request *rq);
/* GET /jobs/{id}/similarity[?epoch=N]: one epoch's similarity histograms. */
enum MHD_Result route_job_similarity(struct request *rq);
enum MHD_Result route_job_events(struct request *rq);
enum MHD_Result route_job_cancel(struct request *rq);
enum MHD_Result route_job_delete(struct request *rq);
enum MHD_Result route_job_checkpoint(struct request *rq);

enum MHD_Result route_healthz(struct request *rq);
enum MHD_Result route_metrics(struct request *rq);
enum MHD_Result route_datasets(struct request *rq);

/* routes_datasets.c */
enum MHD_Result route_datasets_create(struct request *rq);
enum MHD_Result route_dataset_get(struct request *rq);
enum MHD_Result route_dataset_image(struct request *rq);
enum MHD_Result route_checkpoints(struct request *rq);
enum MHD_Result route_checkpoints_create(struct request *rq);

/* routes_neighbors.c */
enum MHD_Result route_neighbors_get(struct request *rq);
enum MHD_Result route_neighbors_post(struct request *rq);
enum MHD_Result route_neighbors_batch(struct request *rq);
enum MHD_Result route_job_embed(struct request *rq);

struct index_data;
/* What neighbors_embed_then does with the vectors Q[n, ix->dim], on a lane
 * (it answers the request). */
typedef void (*embed_then_fn)(struct request *rq, struct index_data *ix, const float *Q, int n,
			      void *arg);
/* Embeds n images with job's model on a lane, then calls then: refs (n
 * REF strings, "train:N" / "test:N" / URL, which arg keeps alive) or n
 * uploads (upload / upload_len, taken). Errors (4xx/5xx) are answered,
 * each image named "PREFIX[i]". then_free(arg) runs in every case. */
enum MHD_Result neighbors_embed_then(struct request *rq, int64_t job, int n,
				     const char *const *refs, const char **upload,
				     size_t *upload_len, const char *prefix, embed_then_fn then,
				     void (*then_free)(void *), void *arg);

/* routes_items.c: a job's collection of added items */
enum MHD_Result route_job_items_post(struct request *rq);
enum MHD_Result route_job_items_list(struct request *rq);
enum MHD_Result route_job_item_get(struct request *rq);
enum MHD_Result route_job_item_delete(struct request *rq);

/* routes_groups.c */
enum MHD_Result route_groups_create(struct request *rq);
enum MHD_Result route_groups_list(struct request *rq);
enum MHD_Result route_group_get(struct request *rq);
enum MHD_Result route_group_cancel(struct request *rq);
enum MHD_Result route_group_delete(struct request *rq);
enum MHD_Result route_group_metrics(struct request *rq);

/* routes_export.c */
enum MHD_Result route_job_embeddings(struct request *rq);
/* server/ann_index.c: the job's approximate index */
enum MHD_Result route_job_index_get(struct request *rq);
enum MHD_Result route_job_index_post(struct request *rq);
/* GET of any other path: a file of --web-dir ("/" is index.html). */
enum MHD_Result route_static(struct request *rq);

#endif

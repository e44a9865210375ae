/*
 * server/routes_jobs.c — the /jobs endpoints: submit (validated against
 * the spec rules, the dataset registry, the dataset's shape and the memory
 * bound: jobcheck.h), list, status, metrics as JSON or CSV, the event
 * stream, cancel, delete and the checkpoint download.
 * Status codes: 201 submitted, 202 cancel accepted, 204 deleted, 400 bad
 * input naming the field or a job over the memory bound, 404 unknown job,
 * 409 wrong state, 429 queue full.
 */
#include "routes.h"

#include <unistd.h>

#include "checkpoints.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "isif/base/common.h"
#include "isif/train/spec.h"
#include "isif/train/train.h"
#include "isif/base/strbuf.h"
#include "jobcheck.h"

/* The job's JSON with the scheduler's live fields (sched_job_live). */
static enum isif_rc job_json(struct app *app, int64_t id, json_t **out, struct isif_error *err)
{
	enum isif_rc rc = store_job_json(app->st, id, out, err);
	if (rc == ISIF_OK)
		sched_job_live(app->sched, *out);
	return rc;
}

static enum MHD_Result not_found(struct request *rq)
{
	return http_error(rq, 404, "not_found", "no job %lld", (long long)rq->id);
}

enum MHD_Result route_jobs_create(struct request *rq)
{
	struct isif_job_spec spec;
	char format[32], path[1024];
	struct isif_error err = {0};
	enum MHD_Result ret;
	long priority;
	if (!http_query_long(rq, "priority", -100, 100, 0, &priority, &ret))
		return ret;
	if (!rq->body || rq->body_len == 0)
		return http_error(rq, 400, "invalid_spec", "spec: empty body; send a JSON job spec");
	if (strlen(rq->body) != rq->body_len)
		return http_error(rq, 400, "invalid_spec", "spec: body contains a NUL byte");
	isif_spec_default(&spec);
	if (isif_spec_parse(&spec, rq->body, true, &err) != ISIF_OK)
		return http_error(rq, 400, "invalid_spec", "%s", err.msg);
	if (spec.init_checkpoint[0]) {
		char file[1200];
		if (!checkpoint_name_ok(spec.init_checkpoint))
			return http_error(rq, 400, "invalid_spec", "init.checkpoint: \"%s\" is not a "
					  "checkpoint name (POST /checkpoints)", spec.init_checkpoint);
		checkpoint_file(rq->app->cfg->state_dir, spec.init_checkpoint, file, sizeof file);
		if (access(file, R_OK) != 0)
			return http_error(rq, 400, "invalid_spec", "init.checkpoint: no checkpoint "
					  "\"%s\" (GET /checkpoints lists them)", spec.init_checkpoint);
	}
	if (spec.processes > rq->app->cfg->max_processes)
		return http_error(rq, 400, "over_process_limit",
				  "processes: %d exceeds this server's --max-processes %ld%s",
				  spec.processes, rq->app->cfg->max_processes,
				  rq->app->cfg->max_processes == 1 ? " (MPI jobs are off)" : "");
	if (spec.processes > 1 && spec.init_checkpoint[0])
		return http_error(rq, 400, "invalid_spec", "init.checkpoint: not supported with "
				  "processes > 1 yet (start the MPI job from isif train --init PATH)");
	enum isif_rc rc = store_dataset_lookup(rq->app->st, spec.dataset, format, sizeof format,
					       path, sizeof path, &err);
	if (rc == ISIF_ENOTFOUND)
		return http_error(rq, 400, "unknown_dataset",
				  "dataset: unknown dataset \"%s\" (GET /datasets lists them)",
				  spec.dataset);
	if (rc)
		return http_store_failed(rq, rc, &err);
	/* The spec against the dataset, and its memory against the bound. */
	struct job_memory_bound bound;
	struct job_check check;
	jobcheck_memory_bound(rq->app->cfg->max_job_memory, rq->app->cfg->workers, &bound);
	rc = jobcheck_run(rq->app->st, &spec, format, path, sched_threads_per_job(rq->app->sched),
			  &bound, &check, &err);
	if (rc == ISIF_EINVAL)
		return http_error(rq, 400, "invalid_spec", "%s", err.msg);
	if (rc == ISIF_ERANGE) {
		char msg[480];
		jobcheck_memory_refusal(&check, &bound, msg, sizeof msg);
		return http_error(rq, 400, "over_memory_limit", "%s", msg);
	}
	if (rc)
		return http_store_failed(rq, rc, &err);
	char *spec_json = isif_spec_to_json(&spec);
	if (!spec_json)
		return http_error(rq, 500, "internal", "out of memory");
	int64_t id = 0;
	rc = sched_submit(rq->app->sched, spec_json, spec.dataset, spec.epochs, (int)priority,
			  check.shape_known ? check.memory.total : -1, &id, &err);
	free(spec_json);
	if (rc == ISIF_EBUSY) {
		struct MHD_Response *r = NULL;
		json_t *e = json_pack("{s:{s:s, s:s}}", "error", "code", "queue_full", "message",
				      "the queue is full; retry later or raise --max-queued");
		char *body = e ? json_dumps(e, 0) : NULL;
		json_decref(e);
		if (body)
			r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
		if (!r) {
			free(body);
			return MHD_NO;
		}
		MHD_add_response_header(r, "Content-Type", "application/json");
		MHD_add_response_header(r, "Retry-After", "30");
		return http_respond(rq, 429, r);
	}
	if (rc)
		return http_store_failed(rq, rc, &err);
	json_t *job;
	rc = job_json(rq->app, id, &job, &err);
	if (rc)
		return http_store_failed(rq, rc, &err);
	char *text = json_dumps(job, JSON_REAL_PRECISION(15));
	json_decref(job);
	if (!text)
		return http_error(rq, 500, "internal", "out of memory");
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), text,
								 MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(text);
		return MHD_NO;
	}
	char loc[64];
	snprintf(loc, sizeof loc, "/jobs/%lld", (long long)id);
	MHD_add_response_header(r, "Location", loc);
	MHD_add_response_header(r, "Content-Type", "application/json");
	return http_respond(rq, 201, r);
}

enum MHD_Result route_jobs_list(struct request *rq)
{
	enum MHD_Result ret;
	long limit;
	int status = -1;
	const char *s = http_query(rq, "status");
	if (s && (status = job_status_parse(s)) < 0)
		return http_error(rq, 400, "invalid_parameter",
				  "status: must be queued, running, succeeded, failed or cancelled");
	if (!http_query_long(rq, "limit", 1, 10000, 1000, &limit, &ret))
		return ret;
	json_t *out;
	struct isif_error err = {0};
	enum isif_rc rc = store_jobs_json(rq->app->st, status, (int)limit, &out, &err);
	if (rc)
		return http_store_failed(rq, rc, &err);
	size_t i;
	json_t *job;
	json_array_foreach(json_object_get(out, "jobs"), i, job)
		sched_job_live(rq->app->sched, job);
	return http_json(rq, 200, out);
}

enum MHD_Result route_job_get(struct request *rq)
{
	json_t *job;
	struct isif_error err = {0};
	enum isif_rc rc = job_json(rq->app, rq->id, &job, &err);
	if (rc == ISIF_ENOTFOUND)
		return not_found(rq);
	if (rc)
		return http_store_failed(rq, rc, &err);
	return http_json(rq, 200, job);
}

/* The engine's metrics CSV (isif_metrics_csv_*: the columns isif train's
 * metrics.csv has), from the stored rows. */
static enum MHD_Result metrics_csv(struct request *rq, const struct metrics_row *rows, int n)
{
	struct isif_strbuf b;
	isif_strbuf_init(&b, 64 << 20);
	isif_metrics_csv_header(&b);
	for (int i = 0; i < n; i++) {
		const struct metrics_row *r = &rows[i];
		struct isif_epoch_metrics m = {
			.epoch = r->epoch, .loss = r->loss, .has_knn = r->has_knn,
			.knn_top1 = r->knn_top1, .knn_top5 = r->knn_top5, .unseen = r->unseen,
			.nmi = r->nmi, .lr = r->lr, .seconds = r->seconds,
			.images_per_sec = r->images_per_sec, .data_wait_frac = r->data_wait,
			.has_simhist = r->has_sim, .sim_same_mean = r->sim_same_mean,
			.sim_diff_mean = r->sim_diff_mean,
			.has_probe = r->has_probe, .probe_top1 = r->probe_top1,
			.probe_backbone_top1 = r->probe_backbone_top1,
		};
		memcpy(m.recall_at, r->recall_at, sizeof m.recall_at);
		isif_metrics_csv_row(&b, &m);
	}
	size_t len;
	char *text = isif_strbuf_take(&b, &len);
	return http_body(rq, 200, "text/csv; charset=utf-8", text, len);
}

enum MHD_Result route_job_metrics(struct request *rq)
{
	enum MHD_Result ret;
	long since;
	enum job_status status;
	const char *format = http_query(rq, "format");
	if (format && strcmp(format, "json") != 0 && strcmp(format, "csv") != 0)
		return http_error(rq, 400, "invalid_parameter", "format: must be json or csv");
	if (!http_query_long(rq, "since", 0, 10000, 0, &since, &ret))
		return ret;
	struct isif_error err = {0};
	enum isif_rc rc = store_job_status(rq->app->st, rq->id, &status, &err);
	if (rc == ISIF_ENOTFOUND)
		return not_found(rq);
	struct metrics_row *rows = NULL;
	int n = 0;
	if (rc == ISIF_OK)
		rc = store_metrics(rq->app->st, rq->id, (int)since, &rows, &n, &err);
	if (rc)
		return http_store_failed(rq, rc, &err);
	if (format && strcmp(format, "csv") == 0) {
		ret = metrics_csv(rq, rows, n);
		free(rows);
		return ret;
	}
	json_t *arr = json_array();
	for (int i = 0; i < n; i++)
		json_array_append_new(arr, metrics_row_json(&rows[i]));
	free(rows);
	return http_json(rq, 200, json_pack("{s:I, s:o}", "job", (json_int_t)rq->id,
					    "metrics", arr));
}

enum MHD_Result route_job_similarity(struct request *rq)
{
	enum MHD_Result ret;
	long epoch;
	enum job_status status;
	/* 0 (absent): the latest epoch there is */
	if (!http_query_long(rq, "epoch", 1, 10000, 0, &epoch, &ret))
		return ret;
	struct isif_error err = {0};
	enum isif_rc rc = store_job_status(rq->app->st, rq->id, &status, &err);
	if (rc == ISIF_ENOTFOUND)
		return not_found(rq);
	json_t *o = NULL;
	if (rc == ISIF_OK)
		rc = store_similarity(rq->app->st, rq->id, (int)epoch, &o, &err);
	if (rc)
		return http_store_failed(rq, rc, &err);
	return http_json(rq, 200, o);
}

enum MHD_Result route_job_events(struct request *rq)
{
	enum job_status status;
	struct isif_error err = {0};
	enum isif_rc rc = store_job_status(rq->app->st, rq->id, &status, &err);
	if (rc == ISIF_ENOTFOUND)
		return not_found(rq);
	if (rc)
		return http_store_failed(rq, rc, &err);
	/* Subscribe first, then read the state: no event can fall between. */
	struct sse_stream *stream;
	struct MHD_Response *r = sse_subscribe(rq->app->bus, rq->conn, rq->id, &stream);
	if (!r)
		return http_error(rq, 500, "internal", "out of memory");
	json_t *job;
	if (job_json(rq->app, rq->id, &job, NULL) == ISIF_OK) {
		const char *s = json_string_value(json_object_get(job, "status"));
		int st = s ? job_status_parse(s) : -1;
		sse_stream_first(rq->app->bus, stream, "state", job, st >= 0 && job_status_final(st));
		json_decref(job);
	} else {
		sse_stream_first(rq->app->bus, stream, "state", NULL, true);
	}
	return http_respond(rq, 200, r);
}

enum MHD_Result route_job_cancel(struct request *rq)
{
	enum job_status before;
	struct isif_error err = {0};
	enum isif_rc rc = sched_cancel(rq->app->sched, rq->id, &before, &err);
	if (rc == ISIF_ENOTFOUND)
		return not_found(rq);
	if (rc == ISIF_ECONFLICT)   /* finished, or its end is being recorded */
		return http_error(rq, 409, "conflict", "%s", err.msg);
	if (rc)
		return http_store_failed(rq, rc, &err);
	json_t *job;
	rc = job_json(rq->app, rq->id, &job, &err);
	/* The cancel ended a queued job, so a DELETE racing this request may
	 * remove it before it is read back: the answer says so. */
	if (rc == ISIF_ENOTFOUND)
		return http_error(rq, 409, "conflict", "job %lld was cancelled, then deleted by "
				  "another request", (long long)rq->id);
	if (rc)
		return http_store_failed(rq, rc, &err);
	return http_json(rq, 202, job);
}

enum MHD_Result route_job_delete(struct request *rq)
{
	enum job_status status;
	struct isif_error err = {0};
	enum isif_rc rc = sched_delete(rq->app->sched, rq->id, &status, &err);
	if (rc == ISIF_ENOTFOUND)
		return not_found(rq);
	if (rc == ISIF_ECONFLICT)   /* unfinished, or its end is being recorded */
		return http_error(rq, 409, "conflict", "%s", err.msg);
	if (rc)
		return http_store_failed(rq, rc, &err);
	struct MHD_Response *r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
	return http_respond(rq, 204, r);
}

enum MHD_Result route_job_checkpoint(struct request *rq)
{
	char rel[1024], path[2048];
	int epoch = 0, fd = -1;
	enum isif_rc rc = ISIF_OK;
	struct isif_error err = {0};
	/* A newer epoch may replace the snapshot between lookup and open: retry. */
	for (int attempt = 0; attempt < 3 && fd < 0; attempt++) {
		rc = store_job_checkpoint(rq->app->st, rq->id, rel, sizeof rel, &epoch, &err);
		if (rc)
			break;
		snprintf(path, sizeof path, "%s/%s", rq->app->cfg->state_dir, rel);
		fd = open(path, O_RDONLY | O_CLOEXEC);
	}
	if (rc == ISIF_ENOTFOUND)
		return not_found(rq);
	if (rc == ISIF_EEMPTY)
		return http_error(rq, 404, "no_checkpoint", "job %lld has no checkpoint yet",
				  (long long)rq->id);
	if (rc)
		return http_store_failed(rq, rc, &err);
	struct stat sb;
	if (fd < 0 || fstat(fd, &sb) != 0) {
		if (fd >= 0)
			close(fd);
		return http_error(rq, 500, "internal", "checkpoint unreadable: %s", strerror(errno));
	}
	struct MHD_Response *r = MHD_create_response_from_fd((uint64_t)sb.st_size, fd);
	if (!r) {
		close(fd);
		return MHD_NO;
	}
	char disp[128];
	snprintf(disp, sizeof disp, "attachment; filename=\"job-%lld-epoch-%d.safetensors\"",
		 (long long)rq->id, epoch);
	MHD_add_response_header(r, "Content-Type", "application/octet-stream");
	MHD_add_response_header(r, "Content-Disposition", disp);
	return http_respond(rq, 200, r);
}

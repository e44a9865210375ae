/*
 * server/routes_checkpoints.c — starting checkpoints for a job's
 * init.checkpoint: POST /checkpoints?name=NAME takes a safetensors file
 * (application/octet-stream, up to --max-checkpoint-bytes) and stores it
 * in the state directory (checkpoints.h); GET /checkpoints lists them.
 * Status codes: 201 stored, 400 bad name, 409 name taken, 413 too large,
 * 415 wrong type, 422 not a safetensors file. Parsing and writing tens of
 * MiB run on the work threads (http_defer).
 */
#include "routes.h"

#include <stdlib.h>
#include <string.h>

#include "checkpoints.h"

struct upload {
	char name[64];
};

static void upload_work(struct request *rq, void *arg, bool cancelled)
{
	struct upload *u = arg;
	struct isif_error err = {0};
	json_t *info = NULL;
	if (cancelled) {
		http_error(rq, 503, "unavailable", "isifd is shutting down");
		free(u);
		return;
	}
	enum isif_rc rc = checkpoint_store(rq->app->cfg->state_dir, u->name, rq->body, rq->body_len,
					   &info, &err);
	if (rc == ISIF_EFORMAT)
		http_error(rq, 422, "invalid_checkpoint", "body: not a safetensors file: %s", err.msg);
	else if (rc)
		http_fail(rq, rc, &err);
	else
		http_json(rq, 201, info);
	free(u);
}

enum MHD_Result route_checkpoints_create(struct request *rq)
{
	const char *name = http_query(rq, "name");
	if (!name || !checkpoint_name_ok(name))
		return http_error(rq, 400, "invalid_parameter", "name: %s1..63 of a-z, 0-9, '.', "
				  "'_', '-', starting with a letter or digit (?name=...)",
				  name ? "" : "required: ");
	if (!rq->body || rq->body_len == 0)
		return http_error(rq, 400, "invalid_checkpoint", "body: empty; send the .safetensors file");
	struct upload *u = calloc(1, sizeof *u);
	if (!u)
		return http_error(rq, 500, "internal", "out of memory");
	snprintf(u->name, sizeof u->name, "%s", name);
	return http_defer(rq, HTTP_LANE_WORK, upload_work, u);
}

enum MHD_Result route_checkpoints(struct request *rq)
{
	json_t *out;
	struct isif_error err = {0};
	enum isif_rc rc = checkpoint_list(rq->app->cfg->state_dir, &out, &err);
	if (rc)
		return http_fail(rq, rc, &err);
	return http_json(rq, 200, out);
}

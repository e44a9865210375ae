/*
 * server/routes_groups.c — the /groups endpoints: a job group is one job
 * per point of a grid over spec fields (seeds among them) on a base spec
 * (isif/train/group_grid.h). Create (every point checked as POST /jobs checks a spec;
 * all or nothing, one transaction), list, one group with the per-epoch
 * summary of each grid point over its seeds (isif/train/group_summary.h), its metrics as
 * JSON or CSV with the group's columns, cancel and delete.
 * Status codes: 201 created, 202 cancel accepted, 204 deleted, 400 a bad
 * group naming the point and field, 404 unknown group, 409 delete with
 * unfinished jobs, 429 queue full.
 */
#include "routes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "isif/base/strbuf.h"
#include "isif/train/group_grid.h"
#include "isif/train/group_summary.h"
#include "isif/train/spec.h"
#include "isif/train/train.h"
#include "jobcheck.h"
#include "log.h"
#include "store_groups.h"

static enum MHD_Result not_found(struct request *rq)
{
	return http_error(rq, 404, "not_found", "no group %lld", (long long)rq->id);
}

/* ---- create ------------------------------------------------------------- */

/* What the checks made of the grid's jobs, freed by made_free. */
struct made {
	struct group_job_in *in;
	char **strings;   /* 4 per job: spec, dataset, point values, job values */
	long n;
};

static void made_free(struct made *m)
{
	for (long i = 0; m->strings && i < 4 * m->n; i++)
		free(m->strings[i]);
	free(m->strings);
	free(m->in);
}

/* Keeps job i's canonical spec and grid place in m (takes jv_text). */
static enum isif_rc keep_job(struct made *m, long i, const struct isif_job_spec *spec,
			     const struct job_check *check, int point, json_t *pv, char *jv_text)
{
	char **s = &m->strings[4 * i];
	s[0] = isif_spec_to_json(spec);
	s[1] = strdup(spec->dataset);
	s[2] = json_dumps(pv, JSON_COMPACT | JSON_REAL_PRECISION(15));
	s[3] = jv_text;
	m->in[i] = (struct group_job_in){
		.spec_json = s[0], .dataset = s[1], .epochs = spec->epochs,
		.memory_estimate = check->shape_known ? check->memory.total : -1,
		.point = point, .point_values = s[2], .job_values = s[3],
	};
	return s[0] && s[1] && s[2] && s[3] ? ISIF_OK : ISIF_ENOMEM;
}

/* The spec of a point (as text) checked as POST /jobs checks one: on
 * refusal answers 400 (*ret) with where before the message. */
static enum isif_rc check_spec(struct request *rq, const char *text, const char *where,
			       struct isif_job_spec *spec, struct job_check *check,
			       enum MHD_Result *ret, struct isif_error *err)
{
	char format[32], path[1024];
	isif_spec_default(spec);
	enum isif_rc rc = isif_spec_parse(spec, text, true, err);
	if (rc == ISIF_EINVAL) {
		*ret = http_error(rq, 400, "invalid_spec", "%s%s", where, err->msg);
		return rc;
	}
	if (rc == ISIF_OK)
		rc = store_dataset_lookup(rq->app->st, spec->dataset, format, sizeof format, path,
					  sizeof path, err);
	if (rc == ISIF_ENOTFOUND) {
		*ret = http_error(rq, 400, "unknown_dataset", "%sdataset: unknown dataset \"%s\" "
				  "(GET /datasets lists them)", where, spec->dataset);
		return ISIF_EINVAL;
	}
	if (rc)
		return rc;
	struct job_memory_bound bound;
	jobcheck_memory_bound(rq->app->cfg->max_job_memory, rq->app->cfg->workers, &bound);
	rc = jobcheck_run(rq->app->st, spec, format, path, sched_threads_per_job(rq->app->sched),
			  &bound, check, err);
	if (rc == ISIF_EINVAL) {
		*ret = http_error(rq, 400, "invalid_spec", "%s%s", where, err->msg);
	} else if (rc == ISIF_ERANGE) {
		char msg[480];
		jobcheck_memory_refusal(check, &bound, msg, sizeof msg);
		*ret = http_error(rq, 400, "over_memory_limit", "%s%s", where, msg);
		rc = ISIF_EINVAL;
	}
	return rc;
}

/* Expands job i, checks it and keeps it in m; on refusal or failure
 * answers (*ret) and returns false. */
static bool check_job(struct request *rq, const struct isif_group_grid *g, long i,
		      struct isif_job_spec *spec, struct made *m, enum MHD_Result *ret)
{
	struct isif_error err = {0};
	struct job_check check = {0};
	json_t *obj = NULL, *pv = NULL, *jv = NULL;
	int point = 0;
	char where[400];
	char *text = NULL, *jv_text = NULL;
	enum isif_rc rc = isif_group_grid_job(g, i, &obj, &point, &pv, &jv, &err);
	if (rc == ISIF_EINVAL)
		*ret = http_error(rq, 400, "invalid_spec", "%s", err.msg);
	if (rc == ISIF_OK) {
		text = json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(15));
		jv_text = json_dumps(jv, JSON_COMPACT | JSON_REAL_PRECISION(15));
		rc = text && jv_text ? ISIF_OK : ISIF_ENOMEM;
	}
	if (rc == ISIF_OK) {
		snprintf(where, sizeof where, "grid point %.300s: ", jv_text);
		rc = check_spec(rq, text, where, spec, &check, ret, &err);
	}
	if (rc == ISIF_OK) {
		rc = keep_job(m, i, spec, &check, point, pv, jv_text);
		jv_text = NULL;
	}
	if (rc == ISIF_ENOMEM)
		*ret = http_error(rq, 500, "internal", "out of memory");
	else if (rc && rc != ISIF_EINVAL)   /* EINVAL: refused, answered above */
		*ret = http_store_failed(rq, rc, &err);
	free(text);
	free(jv_text);
	json_decref(obj);
	json_decref(pv);
	json_decref(jv);
	return rc == ISIF_OK;
}

static enum MHD_Result group_answer(struct request *rq, int64_t id, int status);

static enum MHD_Result queue_full(struct request *rq, const struct isif_error *err)
{
	json_t *e = json_pack("{s:{s:s, s:s}}", "error", "code", "queue_full", "message",
			      err->msg);
	char *body = e ? json_dumps(e, 0) : NULL;
	json_decref(e);
	struct MHD_Response *r = body ? MHD_create_response_from_buffer(strlen(body), body,
									MHD_RESPMEM_MUST_FREE) : NULL;
	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", "application/json");
	MHD_add_response_header(r, "Retry-After", "30");
	return http_respond(rq, 429, r);
}

/* Every job checked, then the group and its jobs in one transaction. */
static enum MHD_Result create_group(struct request *rq, const struct isif_group_grid *g, int priority)
{
	struct made m = {.n = g->n_jobs};
	struct isif_job_spec *spec = malloc(sizeof *spec);
	int64_t *ids = calloc((size_t)g->n_jobs, sizeof *ids);
	m.in = calloc((size_t)g->n_jobs, sizeof *m.in);
	m.strings = calloc((size_t)g->n_jobs * 4, sizeof *m.strings);
	enum MHD_Result ret = MHD_NO;
	struct isif_error err = {0};
	int64_t id = 0;
	bool ok = spec && ids && m.in && m.strings;
	if (!ok)
		ret = http_error(rq, 500, "internal", "out of memory");
	for (long i = 0; ok && i < g->n_jobs; i++)
		ok = check_job(rq, g, i, spec, &m, &ret);
	char *base = ok ? json_dumps(g->base, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;
	char *grid = ok ? json_dumps(g->grid, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;
	if (ok && (!base || !grid)) {
		ret = http_error(rq, 500, "internal", "out of memory");
		ok = false;
	}
	if (ok) {
		enum isif_rc rc = store_group_create(rq->app->st, base, grid, m.in, (int)m.n, priority,
						     rq->app->cfg->max_queued, &id, ids, &err);
		if (rc == ISIF_EBUSY)
			ret = queue_full(rq, &err);
		else if (rc)
			ret = http_store_failed(rq, rc, &err);
		ok = rc == ISIF_OK;
	}
	if (ok) {
		sched_wake(rq->app->sched);
		log_info("group %lld: %ld jobs queued (%lld..%lld)", (long long)id, m.n,
			 (long long)ids[0], (long long)ids[m.n - 1]);
		ret = group_answer(rq, id, 201);
	}
	free(base);
	free(grid);
	free(spec);
	free(ids);
	made_free(&m);
	return ret;
}

enum MHD_Result route_groups_create(struct request *rq)
{
	enum MHD_Result ret;
	long priority;
	if (!http_query_long(rq, "priority", -100, 100, 0, &priority, &ret))
		return ret;
	if (!rq->body || rq->body_len == 0)
		return http_error(rq, 400, "invalid_spec", "group: empty body; send {\"base\": spec, "
				  "\"grid\": {field: [values], ...}}");
	json_error_t je;
	json_t *body = json_loadb(rq->body, rq->body_len, JSON_REJECT_DUPLICATES, &je);
	if (!body)
		return http_error(rq, 400, "invalid_spec", "group: invalid JSON at line %d column "
				  "%d: %s", je.line, je.column, je.text);
	struct isif_group_grid g;
	struct isif_error err = {0};
	if (isif_group_grid_check(body, rq->app->cfg->max_group_jobs, &g, &err) != ISIF_OK)
		ret = http_error(rq, 400, "invalid_spec", "%s", err.msg);
	else
		ret = create_group(rq, &g, (int)priority);
	json_decref(body);
	return ret;
}

/* ---- reading ------------------------------------------------------------ */

/* A stored metrics row as the engine's epoch metrics (what the summary and
 * the CSV writer take). */
static void epoch_of_row(const struct metrics_row *x, struct isif_epoch_metrics *em)
{
	*em = (struct isif_epoch_metrics){
		.epoch = x->epoch, .loss = x->loss, .has_knn = x->has_knn,
		.knn_top1 = x->knn_top1, .knn_top5 = x->knn_top5, .unseen = x->unseen,
		.nmi = x->nmi, .lr = x->lr, .seconds = x->seconds,
		.images_per_sec = x->images_per_sec, .data_wait_frac = x->data_wait,
		.has_simhist = x->has_sim, .sim_same_mean = x->sim_same_mean,
		.sim_diff_mean = x->sim_diff_mean, .has_probe = x->has_probe,
		.probe_top1 = x->probe_top1, .probe_backbone_top1 = x->probe_backbone_top1,
	};
	memcpy(em->recall_at, x->recall_at, sizeof em->recall_at);
}

/* A job's committed epochs, ascending (*out malloc'd; none when it was
 * deleted meanwhile or the store fails: the group shows what it can). */
static void member_metrics(struct app *app, int64_t job, struct isif_epoch_metrics **out,
			   int *n)
{
	struct metrics_row *rows = NULL;
	int k = 0;
	*out = NULL;
	*n = 0;
	if (store_metrics(app->st, job, 0, &rows, &k, NULL) != ISIF_OK)
		return;
	*out = malloc(sizeof **out * (size_t)(k > 0 ? k : 1));
	for (int r = 0; *out && r < k; r++)
		epoch_of_row(&rows[r], &(*out)[r]);
	*n = *out ? k : 0;
	free(rows);
}

/* The member's job (the scheduler's live fields set) with its place in the
 * grid, or NULL when it was deleted meanwhile. */
static json_t *member_job(struct app *app, const struct group_member *m)
{
	json_t *job;
	if (store_job_json(app->st, m->job, &job, NULL) != ISIF_OK)
		return NULL;
	sched_job_live(app->sched, job);
	json_object_set_new(job, "group_point", json_integer(m->point));
	json_t *v = json_loads(m->job_values, 0, NULL);
	json_object_set_new(job, "grid_values", v ? v : json_null());
	return job;
}

/* {"point", "values", "jobs": [ids], "summary": isif_group_summary} of
 * members [from, to) (one point). */
static json_t *point_json(struct app *app, const struct group_member *m, int from, int to)
{
	int k = to - from;
	struct isif_epoch_metrics **rows = calloc((size_t)k, sizeof *rows);
	int *n = calloc((size_t)k, sizeof *n);
	json_t *ids = json_array(), *out = NULL;
	if (rows && n && ids) {
		for (int j = 0; j < k; j++) {
			json_array_append_new(ids, json_integer(m[from + j].job));
			member_metrics(app, m[from + j].job, &rows[j], &n[j]);
		}
		json_t *v = json_loads(m[from].point_values, 0, NULL);
		json_t *sum = isif_group_summary((const struct isif_epoch_metrics *const *)rows, n, k);
		out = json_pack("{s:i, s:o, s:O, s:o}", "point", m[from].point, "values",
				v ? v : json_null(), "jobs", ids, "summary", sum ? sum : json_null());
	}
	for (int j = 0; rows && j < k; j++)
		free(rows[j]);
	free(rows);
	free(n);
	json_decref(ids);
	return out;
}

static enum MHD_Result group_answer(struct request *rq, int64_t id, int status)
{
	json_t *group;
	struct group_member *m = NULL;
	int n = 0;
	struct isif_error err = {0};
	enum isif_rc rc = store_group_get(rq->app->st, id, &group, &m, &n, &err);
	if (rc == ISIF_ENOTFOUND)
		return not_found(rq);
	if (rc)
		return http_store_failed(rq, rc, &err);
	json_t *jobs = json_array(), *points = json_array(), *counts = json_object();
	for (int s = 0; s < JOB_STATUS_COUNT; s++)
		json_object_set_new(counts, job_status_name(s), json_integer(0));
	int live = 0;
	for (int i = 0; i < n; i++) {
		json_t *job = member_job(rq->app, &m[i]);
		if (!job)
			continue;
		const char *st = json_string_value(json_object_get(job, "status"));
		if (st)
			json_object_set_new(counts, st, json_integer(
				json_integer_value(json_object_get(counts, st)) + 1));
		json_array_append_new(jobs, job);
		live++;
	}
	for (int i = 0, j; i < n; i = j) {
		for (j = i; j < n && m[j].point == m[i].point; j++)
			;
		json_t *p = point_json(rq->app, m, i, j);
		if (p)
			json_array_append_new(points, p);
	}
	group_members_free(m, n);
	json_object_set_new(group, "n_jobs", json_integer(live));
	json_object_set_new(group, "status", counts);
	json_object_set_new(group, "jobs", jobs);
	json_object_set_new(group, "points", points);
	if (status != 201)
		return http_json(rq, status, group);
	char *text = json_dumps(group, JSON_REAL_PRECISION(15));
	json_decref(group);
	struct MHD_Response *r = text ? MHD_create_response_from_buffer(strlen(text), text,
									MHD_RESPMEM_MUST_FREE) : NULL;
	if (!r) {
		free(text);
		return MHD_NO;
	}
	char loc[64];
	snprintf(loc, sizeof loc, "/groups/%lld", (long long)id);
	MHD_add_response_header(r, "Location", loc);
	MHD_add_response_header(r, "Content-Type", "application/json");
	return http_respond(rq, 201, r);
}

enum MHD_Result route_groups_list(struct request *rq)
{
	enum MHD_Result ret;
	long limit;
	if (!http_query_long(rq, "limit", 1, 10000, 1000, &limit, &ret))
		return ret;
	json_t *out;
	struct isif_error err = {0};
	enum isif_rc rc = store_groups_json(rq->app->st, (int)limit, &out, &err);
	if (rc)
		return http_store_failed(rq, rc, &err);
	return http_json(rq, 200, out);
}

enum MHD_Result route_group_get(struct request *rq)
{
	return group_answer(rq, rq->id, 200);
}

/* ---- cancel and delete -------------------------------------------------- */

enum MHD_Result route_group_cancel(struct request *rq)
{
	json_t *group;
	struct group_member *m = NULL;
	int n = 0, cancelled = 0;
	struct isif_error err = {0};
	enum isif_rc rc = store_group_get(rq->app->st, rq->id, &group, &m, &n, &err);
	if (rc == ISIF_ENOTFOUND)
		return not_found(rq);
	if (rc)
		return http_store_failed(rq, rc, &err);
	json_decref(group);
	/* Finished jobs (ECONFLICT) and jobs deleted meanwhile are left alone. */
	for (int i = 0; i < n && rc == ISIF_OK; i++) {
		enum job_status before;
		rc = sched_cancel(rq->app->sched, m[i].job, &before, &err);
		cancelled += rc == ISIF_OK;
		if (rc == ISIF_ECONFLICT || rc == ISIF_ENOTFOUND)
			rc = ISIF_OK;
	}
	group_members_free(m, n);
	if (rc)
		return http_store_failed(rq, rc, &err);
	log_info("group %lld: cancel asked of %d jobs", (long long)rq->id, cancelled);
	return group_answer(rq, rq->id, 202);
}

/* ISIF_ECONFLICT naming the unfinished jobs among m[0..n). */
static enum isif_rc unfinished(struct store *st, int64_t id, const struct group_member *m, int n,
			       struct isif_error *err)
{
	char list[256] = "";
	int count = 0;
	size_t len = 0;
	for (int i = 0; i < n; i++) {
		enum job_status s;
		enum isif_rc rc = store_job_status(st, m[i].job, &s, err);
		if (rc == ISIF_ENOTFOUND)
			continue;
		if (rc)
			return rc;
		if (job_status_final(s))
			continue;
		if (count++ < 16 && len < sizeof list - 24)
			len += (size_t)snprintf(list + len, sizeof list - len, "%s%lld",
						len ? ", " : "", (long long)m[i].job);
	}
	if (count == 0)
		return ISIF_OK;
	return isif_fail(err, ISIF_ECONFLICT, "group %lld has %d unfinished jobs (%s%s); cancel it "
			 "first (POST /groups/%lld/cancel)", (long long)id, count, list,
			 count > 16 ? ", ..." : "", (long long)id);
}

enum MHD_Result route_group_delete(struct request *rq)
{
	json_t *group;
	struct group_member *m = NULL;
	int n = 0;
	struct isif_error err = {0};
	enum isif_rc rc = store_group_get(rq->app->st, rq->id, &group, &m, &n, &err);
	if (rc == ISIF_ENOTFOUND)
		return not_found(rq);
	if (rc)
		return http_store_failed(rq, rc, &err);
	json_decref(group);
	rc = unfinished(rq->app->st, rq->id, m, n, &err);
	/* Each job as DELETE /jobs/{id} deletes it, then the group's row: a
	 * crash between leaves a group with fewer jobs, which a retry ends. */
	for (int i = 0; i < n && rc == ISIF_OK; i++) {
		enum job_status s;
		rc = sched_delete(rq->app->sched, m[i].job, &s, &err);
		if (rc == ISIF_ENOTFOUND)
			rc = ISIF_OK;
	}
	group_members_free(m, n);
	if (rc == ISIF_OK)
		rc = store_group_delete(rq->app->st, rq->id, &err);
	if (rc == ISIF_ENOTFOUND)   /* another DELETE won */
		return not_found(rq);
	if (rc == ISIF_ECONFLICT)
		return http_error(rq, 409, "conflict", "%s", err.msg);
	if (rc)
		return http_store_failed(rq, rc, &err);
	struct MHD_Response *r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
	return http_respond(rq, 204, r);
}

/* ---- metrics export ----------------------------------------------------- */

/* The CSV: group, point, job, one column per grid field, then the engine's
 * metrics columns (isif_metrics_csv_*), one line per job and epoch. */
static void group_csv(struct isif_strbuf *b, struct app *app, int64_t id, json_t *grid,
		      const struct group_member *m, int n)
{
	const char *key;
	json_t *v;
	isif_strbuf_puts(b, "group,point,job");
	json_object_foreach(grid, key, v) {
		isif_strbuf_puts(b, ",");
		json_t *name = json_string(key);
		isif_group_csv_field(b, name);
		json_decref(name);
	}
	isif_strbuf_puts(b, ",");
	isif_metrics_csv_header(b);
	for (int i = 0; i < n; i++) {
		struct isif_epoch_metrics *rows;
		int k;
		member_metrics(app, m[i].job, &rows, &k);
		json_t *vals = json_loads(m[i].job_values, 0, NULL);
		for (int r = 0; r < k; r++) {
			isif_strbuf_printf(b, "%lld,%d,%lld", (long long)id, m[i].point,
					   (long long)m[i].job);
			json_object_foreach(grid, key, v) {
				isif_strbuf_puts(b, ",");
				isif_group_csv_field(b, json_object_get(vals, key));
			}
			isif_strbuf_puts(b, ",");
			isif_metrics_csv_row(b, &rows[r]);
		}
		json_decref(vals);
		free(rows);
	}
}

/* JSON: {"group", "jobs": [{"job", "point", "values", "metrics": [row...]}]}. */
static json_t *group_metrics_json(struct app *app, int64_t id, const struct group_member *m,
				  int n)
{
	json_t *jobs = json_array();
	for (int i = 0; i < n; i++) {
		struct metrics_row *rows = NULL;
		int k = 0;
		if (store_metrics(app->st, m[i].job, 0, &rows, &k, NULL) != ISIF_OK)
			continue;
		json_t *arr = json_array();
		for (int r = 0; r < k; r++)
			json_array_append_new(arr, metrics_row_json(&rows[r]));
		free(rows);
		json_t *v = json_loads(m[i].job_values, 0, NULL);
		json_array_append_new(jobs, json_pack("{s:I, s:i, s:o, s:o}", "job",
						      (json_int_t)m[i].job, "point", m[i].point,
						      "values", v ? v : json_null(), "metrics", arr));
	}
	return json_pack("{s:I, s:o}", "group", (json_int_t)id, "jobs", jobs);
}

enum MHD_Result route_group_metrics(struct request *rq)
{
	const char *format = http_query(rq, "format");
	if (format && strcmp(format, "json") != 0 && strcmp(format, "csv") != 0)
		return http_error(rq, 400, "invalid_parameter", "format: must be json or csv");
	json_t *group;
	struct group_member *m = NULL;
	int n = 0;
	struct isif_error err = {0};
	enum isif_rc rc = store_group_get(rq->app->st, rq->id, &group, &m, &n, &err);
	if (rc == ISIF_ENOTFOUND)
		return not_found(rq);
	if (rc)
		return http_store_failed(rq, rc, &err);
	enum MHD_Result ret;
	if (format && strcmp(format, "csv") == 0) {
		struct isif_strbuf b;
		size_t len;
		isif_strbuf_init(&b, 64 << 20);
		group_csv(&b, rq->app, rq->id, json_object_get(group, "grid"), m, n);
		char *text = isif_strbuf_take(&b, &len);
		ret = http_body(rq, 200, "text/csv; charset=utf-8", text, len);
	} else {
		ret = http_json(rq, 200, group_metrics_json(rq->app, rq->id, m, n));
	}
	json_decref(group);
	group_members_free(m, n);
	return ret;
}

/*
 * tests/server/test_http_race.c — a cancel racing a DELETE of the same job
 * over HTTP, on the real http_start with a real store. The cancel ends the
 * queued job, and the DELETE, retried while it answers 409, removes it the
 * moment it is final: sometimes before the cancel has read the job back.
 * That answer used to be `500 database error: ` with an empty message (the
 * job was gone, and no SQLite error had been recorded); it must name what
 * happened. No worker runs, so the jobs stay queued until cancelled.
 */
#include "../unit/check.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dscache.h"
#include "http.h"
#include "index.h"
#include "log.h"
#include "migrations.h"

#define ROUNDS 200

struct server {
	struct config cfg;
	struct app app;
	struct MHD_Daemon *mhd;
	int port;
};

static enum isif_rc never_run(void *user, struct sched_job *job, struct isif_error *err)
{
	(void)user, (void)job;
	return isif_fail(err, ISIF_EINVAL, "not expected to run");
}

static bool server_start(struct server *sv, const char *name)
{
	char dir[512], db[600];
	struct isif_error err = {0};
	struct store *st = NULL;
	snprintf(dir, sizeof dir, "%s/%s", test_tmpdir(), name);
	mkdir(dir, 0750);
	snprintf(db, sizeof db, "%s/jobs", dir);
	mkdir(db, 0750);
	snprintf(db, sizeof db, "%s/isifd.db", dir);
	config_default(&sv->cfg);
	snprintf(sv->cfg.listen, sizeof sv->cfg.listen, "127.0.0.1:0");
	snprintf(sv->cfg.state_dir, sizeof sv->cfg.state_dir, "%s", dir);
	sv->cfg.http_threads = 4;
	CHECK_MSG(store_open(&st, db, isifd_migrations, isifd_n_migrations, &err) == ISIF_OK,
		  "%s", err.msg);
	if (!st)
		return false;
	int n_labels;
	const char *const *labels = http_route_labels(&n_labels);
	sv->app.cfg = &sv->cfg;
	sv->app.st = st;
	sv->app.bus = sse_bus_create(15);
	sv->app.prom = prom_create(labels, n_labels);
	sv->app.indexes = index_cache_create(st, dir, 1);
	sv->app.datasets = dscache_create(st, 1);
	struct sched_options so = {
		.workers = 1, .cores = 1, .max_queued = ROUNDS + 1, .state_dir = dir,
		.run = never_run, .bus = sv->app.bus, .prom = sv->app.prom,
	};
	/* Created, not started: nothing claims the queued jobs. */
	CHECK_MSG(sched_create(&sv->app.sched, st, &so, &err) == ISIF_OK, "%s", err.msg);
	int fd = -1;
	CHECK_MSG(http_listen(sv->cfg.listen, &fd, &err) == ISIF_OK, "%s", err.msg);
	sv->mhd = sv->app.sched && fd >= 0 ? http_start(&sv->app, fd, &sv->port) : NULL;
	CHECK(sv->mhd != NULL);
	return sv->mhd != NULL;
}

static void server_stop(struct server *sv)
{
	if (sv->mhd)
		http_stop(sv->mhd);
	sched_free(sv->app.sched);
	sse_bus_shutdown(sv->app.bus);
	sse_bus_free(sv->app.bus);
	index_cache_free(sv->app.indexes);
	dscache_free(sv->app.datasets);
	prom_free(sv->app.prom);
	store_close(sv->app.st);
}

/* One answer: status and (the start of) its body. */
struct answer {
	long status;
	char body[512];
	size_t len;
};

static size_t keep_body(char *p, size_t size, size_t n, void *user)
{
	struct answer *a = user;
	size_t take = size * n;
	if (take > sizeof a->body - 1 - a->len)
		take = sizeof a->body - 1 - a->len;
	memcpy(a->body + a->len, p, take);
	a->len += take;
	a->body[a->len] = '\0';
	return size * n;
}

static void request(CURL *h, int port, const char *method, const char *path, struct answer *a)
{
	char url[256];
	snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
	memset(a, 0, sizeof *a);
	curl_easy_reset(h);   /* the connection stays open for the next request */
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, keep_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, a);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
	curl_easy_setopt(h, CURLOPT_PROXY, "");
	if (curl_easy_perform(h) == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &a->status);
}

struct side {
	int port;
	int64_t id;
	bool deleter;
	pthread_barrier_t *go;
	struct answer last;
};

static void *side_main(void *arg)
{
	struct side *sd = arg;
	char path[64];
	CURL *h = curl_easy_init();
	snprintf(path, sizeof path, sd->deleter ? "/jobs/%lld" : "/jobs/%lld/cancel",
		 (long long)sd->id);
	pthread_barrier_wait(sd->go);
	if (!sd->deleter) {
		request(h, sd->port, "POST", path, &sd->last);
	} else {
		/* 409 while the job is still queued: retry until it is gone. */
		for (int i = 0; i < 2000; i++) {
			request(h, sd->port, "DELETE", path, &sd->last);
			if (sd->last.status != 409)
				break;
		}
	}
	curl_easy_cleanup(h);
	return NULL;
}

TEST(srv_http_cancel_racing_delete_names_the_cause)
{
	struct server sv = {0};
	log_set_level(LOG_ERROR);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	bool up = server_start(&sv, "race");
	int n202 = 0, n409 = 0, bad = 0;
	char seen[600] = "";
	for (int round = 0; up && round < ROUNDS; round++) {
		int64_t id;
		struct isif_error err = {0};
		if (store_job_insert(sv.app.st, "{\"dataset\": \"fashion-mnist\"}", "fashion-mnist", 1,
				     0, ROUNDS + 1, &id, &err) != ISIF_OK) {
			CHECK_MSG(false, "insert: %s", err.msg);
			break;
		}
		pthread_barrier_t go;
		pthread_barrier_init(&go, NULL, 2);
		struct side cancel = {.port = sv.port, .id = id, .go = &go};
		struct side del = {.port = sv.port, .id = id, .deleter = true, .go = &go};
		pthread_t t[2];
		pthread_create(&t[0], NULL, side_main, &cancel);
		pthread_create(&t[1], NULL, side_main, &del);
		pthread_join(t[0], NULL);
		pthread_join(t[1], NULL);
		pthread_barrier_destroy(&go);
		long c = cancel.last.status;
		if (c == 202)
			n202++;
		else if (c == 409 && strstr(cancel.last.body, "deleted"))
			n409++;
		else if (bad++ == 0)
			snprintf(seen, sizeof seen, "cancel answered %ld %s", c, cancel.last.body);
		if (del.last.status != 204 && bad++ == 0)
			snprintf(seen, sizeof seen, "delete answered %ld %s", del.last.status,
				 del.last.body);
	}
	CHECK_MSG(bad == 0, "%d bad answers of %d rounds (202: %d, 409: %d), e.g. %s", bad, ROUNDS,
		  n202, n409, seen);
	server_stop(&sv);
	log_set_level(LOG_INFO);
}

/*
 * After http_quiesce (SIGTERM), a deferred route answers 503 on a kept-alive
 * connection: that answer must close the connection, else a client that
 * keeps its connections (wrk -c64) is answered 503 (and logged as an error)
 * tens of thousands of times a second until libmicrohttpd stops.
 */
TEST(srv_http_shutdown_503_closes_the_connection)
{
	struct server sv = {0};
	log_set_level(LOG_ERROR);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (!server_start(&sv, "quiesce"))
		return;
	CURL *h = curl_easy_init();
	struct answer a, hdr = {0};
	request(h, sv.port, "GET", "/healthz", &a);
	CHECK_MSG(a.status == 200, "healthz answered %ld", a.status);
	http_quiesce(sv.mhd);
	/* the same handle: libcurl reuses the open connection */
	char url[256];
	snprintf(url, sizeof url, "http://127.0.0.1:%d/neighbors?image=test:0&job=1", sv.port);
	memset(&a, 0, sizeof a);
	curl_easy_reset(h);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, keep_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &a);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, keep_body);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, &hdr);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
	curl_easy_setopt(h, CURLOPT_PROXY, "");
	long reused_conns = -1;
	if (curl_easy_perform(h) == CURLE_OK) {
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &a.status);
		curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &reused_conns);
	}
	CHECK_MSG(reused_conns == 0, "the kept-alive connection was not reused (%ld new)",
		  reused_conns);
	CHECK_MSG(a.status == 503, "after quiesce: %ld %s", a.status, a.body);
	CHECK_MSG(strstr(hdr.body, "\nConnection: close") != NULL,
		  "the 503 keeps the connection open:\n%s", hdr.body);
	curl_easy_cleanup(h);
	server_stop(&sv);
	log_set_level(LOG_INFO);
}

/*
 * server/routes_misc.c — /healthz, /metrics (Prometheus text) and the
 * dashboard's static files from --web-dir (a built-in placeholder
 * page answers "/" when the directory has no index.html). Only regular
 * files reached without symbolic links are served.
 */
#include "routes.h"
#include "search.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum MHD_Result route_healthz(struct request *rq)
{
	int version;
	if (store_schema_version(rq->app->st, &version, NULL))
		return http_error(rq, 503, "unavailable", "database unreachable");
	return http_json(rq, 200, json_pack("{s:s, s:i, s:i}", "status", "ok",
					    "workers", sched_workers(rq->app->sched),
					    "busy", sched_busy(rq->app->sched)));
}

enum MHD_Result route_metrics(struct request *rq)
{
	struct prom_gauges g = {0};
	struct isif_error err = {0};
	enum isif_rc rc = store_count_by_status(rq->app->st, g.jobs, &err);
	if (rc)
		return http_store_failed(rq, rc, &err);
	g.workers = sched_workers(rq->app->sched);
	g.workers_busy = sched_busy(rq->app->sched);
	g.sse_streams = sse_stream_count(rq->app->bus);
	if (rq->app->search) {
		struct search_stats ss;
		searcher_stats(rq->app->search, &ss);
		g.search_passes = ss.passes;
		g.search_queries = ss.queries;
		g.search_queued = ss.queued;
		g.search_wait_s_sum = ss.wait_s_sum;
		g.search_max_wait_s = ss.max_wait_s;
		g.search_throttled_s = ss.throttled_s;
		g.search_share = ss.share;
		g.search_share_cap = ss.share_cap;
		g.search_capped = ss.capped;
	}
	size_t len = 0;
	char *text = prom_render(rq->app->prom, &g, &len);
	return http_body(rq, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
}

static const char placeholder[] =
	"<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>isifd</title></head>\n"
	"<body><h1>isifd</h1><p>The dashboard is not installed (no index.html in --web-dir).\n"
	"The API is live: <a href=\"/jobs\">/jobs</a>, <a href=\"/datasets\">/datasets</a>,\n"
	"<a href=\"/metrics\">/metrics</a>, <a href=\"/healthz\">/healthz</a>.</p></body></html>\n";

static const char *content_type(const char *path)
{
	static const struct { const char *ext, *type; } types[] = {
		{".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
		{".css", "text/css; charset=utf-8"}, {".json", "application/json"},
		{".svg", "image/svg+xml"}, {".png", "image/png"}, {".jpg", "image/jpeg"},
		{".ico", "image/x-icon"}, {".txt", "text/plain; charset=utf-8"},
	};
	const char *dot = strrchr(path, '.');
	for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
		if (strcmp(dot, types[i].ext) == 0)
			return types[i].type;
	return "application/octet-stream";
}

/* Segments of [A-Za-z0-9_.-], none empty or starting with a dot. */
static bool safe_path(const char *url)
{
	if (url[0] != '/' || strlen(url) > 512)
		return false;
	for (const char *p = url; *p; p++) {
		if (*p == '/') {
			if (p[1] == '/' || p[1] == '.')
				return false;
			continue;
		}
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '_' || *p == '-' || *p == '.'))
			return false;
	}
	return true;
}

/*
 * Opens url (already safe_path) under --web-dir for reading: -1 unless
 * every component is reached without a symbolic link and the last is a
 * regular file. Each step is an openat with O_NOFOLLOW from the previous
 * directory, so a link anywhere on the way (not just the last component)
 * is refused; O_NONBLOCK makes a FIFO open at once (a blocking open would
 * hang this HTTP thread until a writer appears) and fstat then refuses it,
 * as it does devices and sockets. The --web-dir path itself is the
 * operator's and may be a link.
 */
static int open_web_file(const char *web_dir, const char *url)
{
	char part[513];
	int dir = open(web_dir, O_RDONLY | O_DIRECTORY | O_NONBLOCK | O_CLOEXEC);
	const char *p = url + 1;   /* after the leading '/' */
	while (dir >= 0) {
		size_t n = strcspn(p, "/");
		snprintf(part, sizeof part, "%.*s", (int)n, p);
		bool last = p[n] == '\0';
		int fd = openat(dir, part, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC |
				(last ? 0 : O_DIRECTORY));
		close(dir);
		if (last || fd < 0) {
			struct stat sb;
			if (fd >= 0 && (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode))) {
				close(fd);
				fd = -1;
			}
			return fd;
		}
		dir = fd;
		p += n + 1;
	}
	return -1;
}

enum MHD_Result route_static(struct request *rq)
{
	const char *url = strcmp(rq->url, "/") == 0 ? "/index.html" : rq->url;
	if (!safe_path(url) || url[strlen(url) - 1] == '/') /* safe_path first: url may be "" */
		return http_error(rq, 404, "not_found", "no such resource: %s", rq->url);
	int fd = open_web_file(rq->app->cfg->web_dir, url);
	struct stat sb;
	if (fd >= 0 && fstat(fd, &sb) != 0) {
		close(fd);
		fd = -1;
	}
	if (fd < 0) {
		if (strcmp(url, "/index.html") == 0) {
			struct MHD_Response *r = MHD_create_response_from_buffer(
				sizeof placeholder - 1, (void *)placeholder, MHD_RESPMEM_PERSISTENT);
			if (r)
				MHD_add_response_header(r, "Content-Type", "text/html; charset=utf-8");
			return http_respond(rq, 200, r);
		}
		return http_error(rq, 404, "not_found", "no such resource: %s", rq->url);
	}
	struct MHD_Response *r = MHD_create_response_from_fd((uint64_t)sb.st_size, fd);
	if (!r) {
		close(fd);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", content_type(url));
	MHD_add_response_header(r, "Cache-Control", "no-cache");
	return http_respond(rq, 200, r);
}

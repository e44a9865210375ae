/*
 * tests/fuzz/fuzz_http.c — the HTTP front of isifd (libmicrohttpd's
 * parser, the route table, limits, token check, query parsing and every
 * handler) on raw bytes sent over a loopback socket to an in-process
 * daemon: the real http_start with a real store in a scratch state
 * directory and a scheduler whose stub job commits one epoch with a small
 * checkpoint at once (so /metrics, /checkpoint and /events have data).
 * The stub publishes no embedding index, so /neighbors answers before any
 * URL would be fetched: the fuzzer never touches the network.
 * Two daemons run, one without and one with a token; bit 0 of the first
 * input byte picks one, the rest is what the client sends. The client
 * half-closes after sending and reads one answer for at most 300 ms
 * (50 ms when nothing comes).
 *
 * Invariants: no crash (in any thread); no 500 answer (a 500 means the
 * database or the code failed on input it should have refused); every
 * answer is an HTTP/1.x status line. FUZZ_HTTP_DEBUG=1 prints the answers.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dscache.h"
#include "fuzz_util.h"
#include "http.h"
#include "index.h"
#include "isif/base/clock.h"
#include "isif/base/common.h"
#include "log.h"
#include "migrations.h"

#define TOKEN "fuzz-token-0123456789abcdef"

struct daemon {
	struct config cfg;
	struct app app;
	struct MHD_Daemon *mhd;
	int port;
};

static struct daemon daemons[2];
static bool debug;

/* One epoch with a tiny checkpoint file, committed through the scheduler. */
static enum isif_rc stub_run(void *user, struct sched_job *job, struct isif_error *err)
{
	char path[1200];
	(void)user;
	snprintf(path, sizeof path, "%s/checkpoint-latest.safetensors", job->run_dir);
	FILE *f = fopen(path, "wb");
	if (!f || fputs("not a real checkpoint", f) < 0 || fclose(f) != 0)
		return isif_fail(err, ISIF_EIO, "%s: cannot write", path);
	struct metrics_row r = {.epoch = 1, .loss = 6.5, .has_knn = true, .knn_top1 = 0.5,
				.knn_top5 = 0.9, .lr = 0.03, .seconds = 0.01,
				.images_per_sec = 100, .images = 1};
	return sched_epoch_done(job, &r, path, err);
}

static void start(struct daemon *d, const char *name, bool token)
{
	char dir[512], db[600];
	struct isif_error err = {0};
	struct store *st = NULL;
	snprintf(dir, sizeof dir, "%s/%s", fuzz_dir(), name);
	fuzz_write("web/index.html", "<!doctype html><p>dashboard</p>\n", 33);
	fuzz_write("web/app.js", "console.log(1);\n", 16);
	mkdir(dir, 0700);
	snprintf(db, sizeof db, "%s/jobs", dir);
	mkdir(db, 0700);
	config_default(&d->cfg);
	snprintf(d->cfg.listen, sizeof d->cfg.listen, "127.0.0.1:0");
	snprintf(d->cfg.state_dir, sizeof d->cfg.state_dir, "%s", dir);
	snprintf(d->cfg.web_dir, sizeof d->cfg.web_dir, "%s/web", fuzz_dir());
	d->cfg.max_body = 64 << 10;
	d->cfg.connection_timeout = 1;
	d->cfg.max_connections = 4096; /* half-closed inputs linger for the timeout */
	d->cfg.max_connections_per_ip = 4096;
	d->cfg.http_threads = 2;
	d->cfg.max_queued = 50;
	snprintf(db, sizeof db, "%s/isifd.db", dir);
	if (store_open(&st, db, isifd_migrations, isifd_n_migrations, &err)) {
		fprintf(stderr, "fuzz_http: %s\n", err.msg);
		abort();
	}
	int n_labels;
	const char *const *labels = http_route_labels(&n_labels);
	d->app.cfg = &d->cfg;
	d->app.st = st;
	d->app.bus = sse_bus_create(1);
	d->app.prom = prom_create(labels, n_labels);
	d->app.indexes = index_cache_create(st, d->cfg.state_dir, 2);
	d->app.datasets = dscache_create(st, 1);
	if (token)
		snprintf(d->app.token, sizeof d->app.token, "%s", TOKEN);
	struct sched_options so = {
		.workers = 1, .cores = 1, .max_queued = d->cfg.max_queued,
		.progress_interval_ms = 0, .state_dir = d->cfg.state_dir, .run = stub_run,
		.bus = d->app.bus, .prom = d->app.prom,
	};
	if (!d->app.bus || !d->app.prom || !d->app.indexes || !d->app.datasets ||
	    sched_create(&d->app.sched, st, &so, &err) || sched_start(d->app.sched, &err))
		abort();
	int fd;
	if (http_listen(d->cfg.listen, &fd, &err)) {
		fprintf(stderr, "fuzz_http: %s\n", err.msg);
		abort();
	}
	d->mhd = http_start(&d->app, fd, &d->port);
	if (!d->mhd)
		abort();
}

static void setup(void)
{
	if (daemons[0].mhd)
		return;
	debug = getenv("FUZZ_HTTP_DEBUG") != NULL;
	log_set_level(debug ? LOG_INFO : LOG_ERROR);
	start(&daemons[0], "open", false);
	start(&daemons[1], "token", true);
}

/* Whether buf holds a whole answer (headers, then Content-Length bytes or
 * the last chunk); keep-alive answers do not end with a close. */
static bool complete(const char *buf, size_t got)
{
	const char *end = strstr(buf, "\r\n\r\n");
	if (!end)
		return false;
	if (strncmp(buf, "HTTP/1.1 100 ", 13) == 0) /* interim: the answer follows */
		return complete(end + 4, got - (size_t)(end + 4 - buf));
	size_t head = (size_t)(end - buf) + 4;
	for (const char *p = buf; p < end; p = strstr(p, "\r\n") + 2) {
		if (strncasecmp(p, "Content-Length:", 15) == 0)
			return got >= head + strtoul(p + 15, NULL, 10);
		if (strncasecmp(p, "Transfer-Encoding: chunked", 26) == 0)
			return got >= 5 && memcmp(buf + got - 5, "0\r\n\r\n", 5) == 0;
	}
	return false;
}

/* Sends the bytes, half-closes, and reads the answer into buf (≤ cap−1 bytes). */
static size_t exchange(int port, const uint8_t *data, size_t size, char *buf, size_t cap)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
		perror("fuzz_http: connect");
		abort();
	}
	for (size_t off = 0; off < size;) {
		ssize_t w = send(fd, data + off, size - off, MSG_NOSIGNAL);
		if (w <= 0)
			break; /* the daemon may refuse early (413) and close */
		off += (size_t)w;
	}
	shutdown(fd, SHUT_WR);
	size_t got = 0;
	double t0 = 1e3 * isif_now_s(), end = t0 + 300;
	for (;;) {
		/* An incomplete request gets no answer: libmicrohttpd keeps a
		 * half-closed connection until its timeout. Answers start within
		 * milliseconds, so 50 ms of silence ends the wait. */
		double left = (got ? end : t0 + 50) - 1e3 * isif_now_s();
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (left <= 0 || poll(&p, 1, (int)left + 1) <= 0)
			break;
		char tmp[4096];
		ssize_t r = recv(fd, tmp, sizeof tmp, 0);
		if (r <= 0)
			break;
		size_t take = (size_t)r < cap - 1 - got ? (size_t)r : cap - 1 - got;
		memcpy(buf + got, tmp, take);
		got += take;
		buf[got] = '\0';
		if (complete(buf, got))
			break;
	}
	buf[got] = '\0';
	close(fd);
	return got;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char answer[1 << 16];
	if (size < 1)
		return 0;
	setup();
	struct daemon *d = &daemons[data[0] & 1];
	size_t got = exchange(d->port, data + 1, size - 1, answer, sizeof answer);
	if (debug)
		fprintf(stderr, "---- %zu bytes answered:\n%.*s\n", got, (int)(got < 600 ? got : 600),
			answer);
	if (got == 0)
		return 0; /* closed without an answer: malformed or incomplete request */
	if (got < 12 || strncmp(answer, "HTTP/1.", 7) != 0)
		abort();
	int status = atoi(answer + 9);
	if (status < 100 || status > 599 || status == 500)
		abort();
	return 0;
}

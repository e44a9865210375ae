/*
 * server/main.c — isifd's start-up and shutdown: flags, state directory,
 * token, database, scheduler (which resumes interrupted jobs), HTTP; then
 * the main thread waits for SIGTERM/SIGINT, ticking the event streams'
 * keep-alives once a second.
 *
 * Shutdown: stop accepting connections, cancel running jobs between
 * batches (they go back to the queue and resume from their last
 * checkpoint at the next start), end event streams, stop HTTP, close the
 * database, exit 0 — all within --shutdown-timeout plus a second or two.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "dscache.h"
#include "http.h"
#include "index.h"
#include "jobrun.h"
#include "log.h"
#include "migrations.h"
#include "prom.h"
#include "scheduler.h"
#include "sse.h"
#include "store.h"
#include "urlfetch.h"

#include "isif/base/common.h"
#include "isif/base/fileio.h"

/* Reads the token file (at most 4 KiB), trimming surrounding whitespace. */
static int read_token(const char *path, char *token, size_t len)
{
	void *buf = NULL;
	size_t n = 0;
	char err[ISIF_ERR_LEN];
	if (isif_read_file(path, 4096, &buf, &n, err) != ISIF_OK) {
		log_error("--token-file: %s", err);
		return -1;
	}
	char *s = buf, *e = s + n;
	while (s < e && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r'))
		s++;
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
		e--;
	size_t tl = (size_t)(e - s);
	int rc = 0;
	if (tl < 16 || tl >= len || memchr(s, '\0', tl)) {
		log_error("--token-file %s: the token must be 16 to %zu printable bytes", path, len - 1);
		rc = -1;
	} else {
		memcpy(token, s, tl);
		token[tl] = '\0';
	}
	free(buf);
	return rc;
}

static int make_state_dir(const char *dir)
{
	char path[CONFIG_STR_LEN + 16];
	if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
		log_error("--state-dir %s: %s", dir, strerror(errno));
		return -1;
	}
	snprintf(path, sizeof path, "%s/jobs", dir);
	if (mkdir(path, 0750) != 0 && errno != EEXIST) {
		log_error("%s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* Waits for SIGTERM or SIGINT, calling sse_tick every second. */
static int wait_for_signal(struct sse_bus *bus)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	for (;;) {
		struct timespec ts = {1, 0};
		int sig = sigtimedwait(&set, NULL, &ts);
		if (sig == SIGTERM || sig == SIGINT)
			return sig;
		sse_tick(bus);
	}
}

int main(int argc, char **argv)
{
	struct config cfg;
	struct app app = {0};
	char err[512], db_path[CONFIG_STR_LEN + 16];
	config_default(&cfg);
	int prc = config_parse(&cfg, argc, argv, err, sizeof err);
	if (prc > 0)
		return 0;
	if (prc < 0) {
		fprintf(stderr, "isifd: %s\n", err);
		return 2;
	}
	if (cfg.verbose)
		log_set_level(LOG_DEBUG);

	/* Signals are taken by sigtimedwait in this thread only. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	struct sockaddr_storage addr;
	size_t alen;
	bool loopback;
	if (http_parse_listen(cfg.listen, &addr, &alen, &loopback)) {
		fprintf(stderr, "isifd: --listen %s: expected host:port or [v6]:port with a numeric address\n",
			cfg.listen);
		return 2;
	}
	if (cfg.token_file[0] && read_token(cfg.token_file, app.token, sizeof app.token))
		return 2;
	if (!loopback && !app.token[0]) {
		fprintf(stderr, "isifd: refusing to listen on non-loopback %s without --token-file\n",
			cfg.listen);
		return 2;
	}
	if (urlfetch_allow_addrs(cfg.allow_url_addr, err, sizeof err)) {
		fprintf(stderr, "isifd: --allow-url-addr: %s\n", err);
		return 2;
	}
	if (make_state_dir(cfg.state_dir))
		return 1;

	snprintf(db_path, sizeof db_path, "%s/isifd.db", cfg.state_dir);
	struct store *st = NULL;
	if (store_open(&st, db_path, isifd_migrations, isifd_n_migrations, err, sizeof err)) {
		log_error("database %s: %s", db_path, err);
		return 1;
	}
	int n_labels;
	const char *const *labels = http_route_labels(&n_labels);
	app.cfg = &cfg;
	app.st = st;
	app.bus = sse_bus_create((int)cfg.sse_keepalive);
	app.prom = prom_create(labels, n_labels);
	app.indexes = index_cache_create(st, cfg.state_dir, (int)cfg.index_cache);
	app.datasets = dscache_create(st, (int)cfg.dataset_cache);
	struct jobrun *jr = jobrun_create(st);
	struct sched_options so = {
		.workers = (int)cfg.workers, .cores = (int)cfg.cores, .max_queued = cfg.max_queued,
		.max_attempts = (int)cfg.max_attempts,
		.progress_interval_ms = (int)cfg.progress_interval_ms, .state_dir = cfg.state_dir,
		.run = jobrun_run, .run_user = jr, .bus = app.bus, .prom = app.prom,
	};
	if (!app.bus || !app.prom || !app.indexes || !app.datasets || !jr || sched_create(&app.sched, st, &so) ||
	    sched_start(app.sched)) {
		log_error("start-up failed (out of memory or threads)");
		return 1;
	}
	int port = 0;
	struct MHD_Daemon *d = http_start(&app, &port);
	if (!d) {
		sched_stop(app.sched, (int)cfg.shutdown_timeout);
		return 1;
	}
	char shown[CONFIG_STR_LEN];
	snprintf(shown, sizeof shown, "%s", cfg.listen);
	*strrchr(shown, ':') = '\0';
	log_info("isifd listening on http://%s:%d/ (state %s, %ld workers%s)", shown, port,
		 cfg.state_dir, cfg.workers, app.token[0] ? ", token required" : "");

	if (cfg.allow_url_addr[0])
		log_warn("image URLs may reach %s (--allow-url-addr: meant for tests)",
			 cfg.allow_url_addr);

	int sig = wait_for_signal(app.bus);
	log_info("received %s: shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
	http_quiesce(d);
	if (sched_stop(app.sched, (int)cfg.shutdown_timeout) != 0) {
		/* A job did not reach a batch boundary in time. Its row still says
		 * running, so the next start resumes it from its last checkpoint. */
		log_warn("jobs still running after %lds; exiting anyway", cfg.shutdown_timeout);
		sse_bus_shutdown(app.bus);
		_exit(0);
	}
	sse_bus_shutdown(app.bus);
	http_stop(d);
	sched_free(app.sched);
	jobrun_free(jr);
	index_cache_free(app.indexes);
	dscache_free(app.datasets);
	sse_bus_free(app.bus);
	prom_free(app.prom);
	store_close(st);
	log_info("isifd stopped");
	return 0;
}

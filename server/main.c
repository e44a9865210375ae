/*
 * server/main.c — isifd's start-up and shutdown: flags, token, the listen
 * socket (bound first, so a port in use changes nothing), the state
 * directory and its lock (one isifd per directory, statedir.h), database,
 * scheduler (which resumes interrupted jobs), HTTP; then the main thread
 * waits for SIGTERM/SIGINT, ticking the event streams' keep-alives once a
 * second.
 *
 * Shutdown: stop accepting connections, cancel running jobs between
 * batches (they go back to the queue and resume from their last
 * checkpoint at the next start), end event streams with a "shutdown"
 * event, stop HTTP, close the database, exit 0 — and whatever still runs
 * then, a watchdog ends the process --shutdown-timeout + 1 s after the
 * signal (at once on a second one).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "dscache.h"
#include "http.h"
#include "ann_index.h"
#include "index.h"
#include "search.h"
#include "serve_nice.h"
#include "jobrun.h"
#include "log.h"
#include "migrations.h"
#include "prom.h"
#include "scheduler.h"
#include "sse.h"
#include "statedir.h"
#include "store.h"
#include "urlfetch.h"

#include "isif/base/clock.h"
#include "isif/base/common.h"
#include "isif/eval/gallery.h"
#include "isif/base/fileio.h"

/* Reads the token file (at most 4 KiB), trimming surrounding whitespace. */
static enum isif_rc read_token(const char *path, char *token, size_t len, struct isif_error *err)
{
	void *buf = NULL;
	size_t n = 0;
	struct isif_error e_read;
	enum isif_rc rc = isif_read_file(path, 4096, &buf, &n, &e_read);
	if (rc)
		return isif_fail(err, rc, "--token-file: %s", e_read.msg);
	char *s = buf, *e = s + n;
	while (s < e && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r'))
		s++;
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
		e--;
	size_t tl = (size_t)(e - s);
	if (tl < 16 || tl >= len || memchr(s, '\0', tl)) {
		rc = isif_fail(err, ISIF_EINVAL, "--token-file %s: the token must be 16 to %zu "
			       "printable bytes", path, len - 1);
	} else {
		memcpy(token, s, tl);
		token[tl] = '\0';
	}
	free(buf);
	return rc;
}

/* The bound address as a URL shows it: "127.0.0.1", "[::1]" (static buffer). */
static const char *shown_host(const struct sockaddr_storage *a)
{
	static char buf[INET6_ADDRSTRLEN + 2];
	char ip[INET6_ADDRSTRLEN] = "?";
	if (a->ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)a)->sin6_addr, ip, sizeof ip);
		snprintf(buf, sizeof buf, "[%s]", ip);
	} else {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)a)->sin_addr, buf, sizeof buf);
	}
	return buf;
}

/*
 * The bound on shutdown. After the first SIGTERM/SIGINT the shutdown below
 * runs in order (stop accepting, stop jobs within --shutdown-timeout, end
 * event streams, stop HTTP), but a step can still hang: an HTTP thread in
 * a slow handler is joined by MHD_stop_daemon. This thread ends the process
 * at the deadline (--shutdown-timeout + 1 s after the signal), or at once
 * on a second signal. Exiting there is as safe as kill -9: every commit is
 * already in the database, and a job still running resumes at next start.
 */
static struct {
	double deadline;
	long seconds;
} watchdog;

/*
 * A SIGTERM/SIGINT that a thread we did not start took. Our threads block
 * both signals and take them with sigtimedwait, but a library may start
 * threads before main runs (OpenBLAS, loaded with FAISS, starts its pool in
 * a constructor), and the kernel hands a process signal to any thread that
 * does not block it. There this handler records it, and the waiters below
 * poll the record beside sigtimedwait.
 */
static atomic_int stray_signal;   /* lock-free: safe in a handler */

static void note_stray_signal(int sig)
{
	atomic_store(&stray_signal, sig);
}

/* A signal taken by sigtimedwait within `seconds`, or one a library thread
 * took meanwhile (cleared when returned); 0 if none. */
static int next_signal(const sigset_t *set, double seconds)
{
	struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
	int sig = sigtimedwait(set, NULL, &ts);
	if (sig == SIGTERM || sig == SIGINT)
		return sig;
	return atomic_exchange(&stray_signal, 0);
}

static void *watchdog_main(void *arg)
{
	(void)arg;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	for (;;) {
		double left = watchdog.deadline - isif_now_s();
		if (left <= 0) {
			log_warn("shutdown still not done %ld s after the signal; exiting now",
				 watchdog.seconds);
			_exit(0);
		}
		int sig = next_signal(&set, left > 0.2 ? 0.2 : left);
		if (sig == SIGTERM || sig == SIGINT) {
			log_warn("second %s during shutdown: exiting now",
				 sig == SIGTERM ? "SIGTERM" : "SIGINT");
			_exit(0);
		}
	}
	return NULL;
}

static void start_watchdog(double deadline, long seconds)
{
	pthread_t t;
	watchdog.deadline = deadline;
	watchdog.seconds = seconds;
	if (pthread_create(&t, NULL, watchdog_main, NULL) == 0)
		pthread_detach(t);
	else
		log_warn("shutdown: no watchdog thread; the shutdown is not bounded");
}

/* Gives the event streams until `until` to send their last event and end
 * (their connections resume; MHD_stop_daemon would cut them mid-way). */
static void drain_streams(struct sse_bus *bus, double until)
{
	while (sse_stream_count(bus) > 0 && isif_now_s() < until) {
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
}

/* Waits for SIGTERM or SIGINT, calling sse_tick every second. */
static int wait_for_signal(struct sse_bus *bus)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	double next_tick = isif_now_s() + 1.0;
	for (;;) {
		int sig = next_signal(&set, 0.2);
		if (sig == SIGTERM || sig == SIGINT)
			return sig;
		if (isif_now_s() >= next_tick) {
			sse_tick(bus);
			next_tick += 1.0;
		}
	}
}

int main(int argc, char **argv)
{
	struct config cfg;
	struct app app = {0};
	char db_path[CONFIG_STR_LEN + 16];
	struct isif_error err = {0};
	config_default(&cfg);
	bool printed;
	if (config_parse(&cfg, argc, argv, &printed, &err)) {
		fprintf(stderr, "isifd: %s\n", err.msg);
		return 2;
	}
	if (printed)
		return 0;
	if (cfg.verbose)
		log_set_level(LOG_DEBUG);

	/* Signals are taken by sigtimedwait in this thread (and the shutdown
	 * watchdog); a library's own thread records them (note_stray_signal). */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	struct sigaction sa = {0};
	sa.sa_handler = note_stray_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	struct sockaddr_storage addr;
	size_t alen;
	bool loopback;
	if (http_parse_listen(cfg.listen, &addr, &alen, &loopback, &err)) {
		fprintf(stderr, "isifd: --listen %s: %s\n", cfg.listen, err.msg);
		return 2;
	}
	if (cfg.token_file[0] && read_token(cfg.token_file, app.token, sizeof app.token, &err)) {
		log_error("%s", err.msg);
		return 2;
	}
	if (!loopback && !app.token[0]) {
		fprintf(stderr, "isifd: refusing to listen on non-loopback %s without --token-file\n",
			cfg.listen);
		return 2;
	}
	if (urlfetch_allow_addrs(cfg.allow_url_addr, &err)) {
		fprintf(stderr, "isifd: --allow-url-addr: %s\n", err.msg);
		return 2;
	}
	/* The address first, then the state directory's lock, then the
	 * database: a start that cannot serve, or whose directory another
	 * isifd uses, leaves the directory as it found it (no migration, no
	 * job resumed). */
	int listen_fd, lock_fd;
	if (http_listen(cfg.listen, &listen_fd, &err)) {
		log_error("%s", err.msg);
		return 1;
	}
	if (statedir_lock(cfg.state_dir, &lock_fd, &err) ||
	    statedir_make_jobs(cfg.state_dir, &err)) {
		log_error("%s", err.msg);
		return 1;
	}

	snprintf(db_path, sizeof db_path, "%s/isifd.db", cfg.state_dir);
	char folder_cache[1100];   /* decoded image folders: folder_cache.c, --folder-cache-mib */
	snprintf(folder_cache, sizeof folder_cache, "%s/folder-cache", cfg.state_dir);
	struct store *st = NULL;
	if (store_open(&st, db_path, isifd_migrations, isifd_n_migrations, &err)) {
		log_error("database %s: %s", db_path, err.msg);
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
	isif_gallery_set_default_scan((enum isif_gallery_scan)config_search_scan(&cfg));
	serve_nice_set((int)cfg.serve_nice);
	app.search = searcher_create((int)cfg.search_threads, (int)cfg.search_batch,
				     (double)cfg.search_wait_us * 1e-6, &err);
	struct jobrun *jr = jobrun_create(st, cfg.state_dir);
	struct sched_options so = {
		.workers = (int)cfg.workers, .cores = (int)cfg.cores, .max_queued = cfg.max_queued,
		.max_attempts = (int)cfg.max_attempts,
		.progress_interval_ms = (int)cfg.progress_interval_ms, .state_dir = cfg.state_dir,
		.run = jobrun_run, .run_user = jr, .bus = app.bus, .prom = app.prom,
	};
	if (!app.bus || !app.prom || !app.indexes || !app.datasets || !app.search || !jr) {
		log_error("start-up failed (out of memory)");
		return 1;
	}
	const struct jobmpi_options mpi = {
		.isif = cfg.isif_path, .hostfile = cfg.mpi_hostfile, .mpirun_args = cfg.mpirun_args,
		.folder_cache = folder_cache, .folder_cache_mib = cfg.folder_cache_mib,
	};
	/* POST /datasets' and the queries' loads decode on a job's share of the cores */
	long cores = cfg.cores > 0 ? cfg.cores : sysconf(_SC_NPROCESSORS_ONLN);
	long share = cores / (cfg.workers > 0 ? cfg.workers : 1);
	dscache_set_folder_cache(app.datasets, cfg.folder_cache_mib > 0 ? folder_cache : NULL,
				 (int64_t)cfg.folder_cache_mib << 20, share > 0 ? (int)share : 1);
	jobrun_set_mpi(jr, &mpi);
	if (sched_create(&app.sched, st, &so, &err) == ISIF_OK)   /* the cap from the first job on */
		searcher_set_policy(app.search, (double)cfg.search_share * 0.01,
				    sched_running_jobs(app.sched));
	if (!app.sched || sched_start(app.sched, &err)) {
		log_error("start-up failed: %s", err.msg);
		return 1;
	}
	int port = 0;
	struct MHD_Daemon *d = http_start(&app, listen_fd, &port);
	if (!d) {
		sched_stop(app.sched, (int)cfg.shutdown_timeout, NULL);
		return 1;
	}
	log_info("isifd listening on http://%s:%d/ (state %s, %ld workers%s)", shown_host(&addr),
		 port, cfg.state_dir, cfg.workers, app.token[0] ? ", token required" : "");

	if (cfg.allow_url_addr[0])
		log_warn("image URLs may reach %s (--allow-url-addr: meant for tests)",
			 cfg.allow_url_addr);

	int sig = wait_for_signal(app.bus);
	double deadline = isif_now_s() + (double)cfg.shutdown_timeout + 1.0;
	log_info("received %s: shutting down (at most %ld s)", sig == SIGTERM ? "SIGTERM" : "SIGINT",
		 cfg.shutdown_timeout + 1);
	start_watchdog(deadline, cfg.shutdown_timeout + 1);
	http_quiesce(d);
	bool jobs_stopped = sched_stop(app.sched, (int)cfg.shutdown_timeout, NULL) == ISIF_OK;
	if (!jobs_stopped)
		log_warn("jobs still running after %lds; exiting anyway", cfg.shutdown_timeout);
	sse_bus_shutdown(app.bus);
	drain_streams(app.bus, deadline - 0.25);
	http_stop(d);
	ann_builder_shutdown();   /* hook: cancel an index build, join its thread (ann_index.c) */
	if (!jobs_stopped) {
		/* A job did not reach a batch boundary in time. Its row still says
		 * running, so the next start resumes it from its last checkpoint;
		 * its worker cannot be joined, so nothing is freed. */
		log_info("isifd stopped");
		_exit(0);
	}
	searcher_free(app.search);   /* after http_stop: no request submits any more */
	sched_free(app.sched);
	jobrun_free(jr);
	index_cache_free(app.indexes);
	dscache_free(app.datasets);
	sse_bus_free(app.bus);
	prom_free(app.prom);
	store_close(st);
	statedir_unlock(lock_fd);   /* after the database is closed */
	log_info("isifd stopped");
	return 0;
}

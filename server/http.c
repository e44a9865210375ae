/*
 * server/http.c — routing, limits, authentication and error bodies of the
 * HTTP API (http.h).
 *
 * A request is judged as early as possible, before any body is read:
 * unknown path 404, wrong method 405 with Allow, missing or wrong token
 * 401, wrong Content-Type 415, a declared Content-Length over --max-body
 * 413. A body sent without a length (chunked) is accumulated up to
 * --max-body and then refused with 413. Handlers run once the whole body
 * is in. The per-request state is freed in the completion callback, which
 * also feeds /metrics. libmicrohttpd runs a thread pool (one epoll loop per
 * thread) with explicit connection, per-address, memory and timeout limits;
 * the total connection limit and a per-request deadline are isifd's own
 * (see "connection admission and request deadline" below).
 */
#include "http.h"
#include "serve_nice.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "isif/base/clock.h"
#include "multipart.h"
#include "routes.h"
#include "workpool.h"

#define BODY_JSON 1u   /* the route reads a JSON body */
#define NO_AUTH 2u     /* answered without a token */
#define BODY_IMAGE 4u  /* the route reads an image body (up to --max-image-bytes) */
#define BODY_FILE 8u   /* an application/octet-stream file (up to --max-checkpoint-bytes) */

/* One row per method and path. The pattern is also the route's label on
 * /metrics: a path served for several methods is counted under its first
 * row, so it is one label. params: the query parameters the handler reads,
 * comma-separated; any other is refused with 400 before the handler runs
 * (access_token, the token's RFC 6750 form, is accepted everywhere). */
struct route {
	const char *method;
	const char *pattern;   /* segments; "{id}" matches one segment */
	route_fn fn;
	unsigned flags;
	const char *params;
};

static const struct route routes[] = {
	{"POST", "/jobs", route_jobs_create, BODY_JSON, "priority"},
	{"GET", "/jobs", route_jobs_list, 0, "status,limit"},
	{"GET", "/jobs/{id}", route_job_get, 0, ""},
	{"DELETE", "/jobs/{id}", route_job_delete, 0, ""},
	{"GET", "/jobs/{id}/metrics", route_job_metrics, 0, "since,format"},
	{"GET", "/jobs/{id}/similarity", route_job_similarity, 0, "epoch"},
	{"GET", "/jobs/{id}/events", route_job_events, 0, ""},
	{"POST", "/jobs/{id}/cancel", route_job_cancel, 0, ""},
	{"GET", "/jobs/{id}/checkpoint", route_job_checkpoint, 0, ""},
	{"GET", "/healthz", route_healthz, NO_AUTH, ""},
	{"GET", "/metrics", route_metrics, 0, ""},
	{"GET", "/datasets", route_datasets, 0, ""},
	{"POST", "/datasets", route_datasets_create, BODY_JSON, ""},
	{"GET", "/datasets/{name}", route_dataset_get, 0, ""},
	{"GET", "/datasets/{name}/images/{split}/{index}", route_dataset_image, 0, ""},
	{"GET", "/neighbors", route_neighbors_get, 0, "image,k,split,job,label,min_similarity"},
	{"POST", "/neighbors", route_neighbors_post, BODY_IMAGE,
	 "k,split,job,label,min_similarity"},
	{"POST", "/neighbors/batch", route_neighbors_batch, BODY_JSON, ""},
	{"GET", "/jobs/{id}/embeddings", route_job_embeddings, 0, "format,metadata,split"},
	{"POST", "/jobs/{id}/embed", route_job_embed, BODY_JSON | BODY_IMAGE, ""},
	{"POST", "/jobs/{id}/items", route_job_items_post, BODY_JSON | BODY_IMAGE, "id,label,replace"},
	{"GET", "/jobs/{id}/items", route_job_items_list, 0, "after,limit"},
	{"GET", "/jobs/{id}/items/{item}", route_job_item_get, 0, "embedding"},
	{"DELETE", "/jobs/{id}/items/{item}", route_job_item_delete, 0, ""},
	{"GET", "/checkpoints", route_checkpoints, 0, ""},
	{"POST", "/checkpoints", route_checkpoints_create, BODY_FILE, "name"},
	{"POST", "/groups", route_groups_create, BODY_JSON, "priority"},
	{"GET", "/groups", route_groups_list, 0, "limit"},
	{"GET", "/groups/{id}", route_group_get, 0, ""},
	{"DELETE", "/groups/{id}", route_group_delete, 0, ""},
	{"POST", "/groups/{id}/cancel", route_group_cancel, 0, ""},
	{"GET", "/groups/{id}/metrics", route_group_metrics, 0, "format"},
	{"GET", "/jobs/{id}/index", route_job_index_get, 0, ""},
	{"POST", "/jobs/{id}/index", route_job_index_post, BODY_JSON, ""},
};
#define N_ROUTES (int)(sizeof routes / sizeof routes[0])

/* Route labels for /metrics: label i is routes[i].pattern, then "static"
 * for files; N_LABELS itself is "unmatched". Only the first row of each
 * pattern is ever counted (label_of), so the repeats never show. */
#define LABEL_STATIC N_ROUTES
#define N_LABELS (N_ROUTES + 1)
static const char *labels[N_LABELS];
static pthread_once_t labels_once = PTHREAD_ONCE_INIT;

static void labels_init(void)
{
	for (int i = 0; i < N_ROUTES; i++)
		labels[i] = routes[i].pattern;
	labels[LABEL_STATIC] = "static";
}

const char *const *http_route_labels(int *n)
{
	pthread_once(&labels_once, labels_init);
	*n = N_LABELS;
	return labels;
}

/* The label of routes[route]: the first row with the same pattern. */
static int label_of(int route)
{
	int i = 0;
	while (strcmp(routes[i].pattern, routes[route].pattern) != 0)
		i++;
	return i;
}

/* ---- connection admission and request deadline ------------------------------ */
/*
 * Total connection limit. At its own limit libmicrohttpd stops accepting,
 * so new clients wait in the kernel's listen backlog with no answer until
 * a slot frees (a held-open flood left /healthz from a fresh address
 * unanswered). isifd counts connections itself and, in the accept-policy
 * callback, closes those over --max-connections at once: the client learns
 * in a millisecond, and libmicrohttpd's own limit (set higher) is never hit.
 * The count is exact: a connection is reserved under the mutex when
 * admitted and becomes open when libmicrohttpd starts it, in the same
 * thread; a reservation whose start never came (out of memory in between)
 * is dropped at that thread's next admission.
 *
 * Request deadline. libmicrohttpd's timeout is one of inactivity, so a
 * client sending a byte every half second never times out. Here each
 * request must be fully in (headers and body) within --request-timeout
 * seconds of its connection opening or of the previous answer ending; a
 * sweeper thread shuts down the socket of one that is not (twice a second),
 * and libmicrohttpd closes it as if the client had left. A request being
 * answered is exempt: event streams and long downloads take what they need.
 *
 * The mutex is a leaf lock: nothing in libmicrohttpd is called while it is
 * held. libmicrohttpd reports a connection closed before it closes its
 * socket, so the sweeper never shuts down a reused descriptor.
 */
struct conn_table;

struct conn_slot {
	struct conn_slot *prev, *next;
	struct conn_table *table;
	MHD_socket fd;
	double since;       /* connection start, or end of the previous answer */
	bool busy;          /* a request is being answered */
	bool cut;           /* shut down by the sweeper */
};

struct conn_table {
	pthread_mutex_t mu;
	pthread_cond_t wake;
	struct conn_slot *head;
	long open, reserved, max;
	double deadline;
	long refused, cut;  /* since the sweeper last logged */
	bool stop, sweeping;
	pthread_t sweeper;
	struct MHD_Daemon *d;
	MHD_socket quiesced;  /* the listen socket after http_quiesce, closed by http_stop */
	struct conn_table *next_table;
	struct workpool *lanes[HTTP_LANES];   /* http_defer's threads */
	atomic_int deferred;  /* deferred requests whose answer is not sent yet */
	atomic_bool quiescing; /* http_quiesce began: nothing new is deferred or suspended
				* (the lanes are freed while libmicrohttpd still runs) */
};

/* Tables by daemon, for http_stop (tests run two daemons in one process). */
static pthread_mutex_t tables_mu = PTHREAD_MUTEX_INITIALIZER;
static struct conn_table *tables;

/* The table this thread admitted a connection to that has not started yet. */
static _Thread_local struct conn_table *reserved_in;

static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t len)
{
	struct conn_table *t = cls;
	(void)addr;
	(void)len;
	pthread_mutex_lock(&t->mu);
	if (reserved_in == t)
		t->reserved--;      /* the previous admission here never started */
	bool ok = t->open + t->reserved < t->max;
	if (ok)
		t->reserved++;
	else
		t->refused++;
	reserved_in = ok ? t : NULL;
	pthread_mutex_unlock(&t->mu);
	return ok ? MHD_YES : MHD_NO;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
			  enum MHD_ConnectionNotificationCode code)
{
	struct conn_table *t = cls;
	struct conn_slot *c = *socket_context;
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *fd =
			MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		c = calloc(1, sizeof *c);
		pthread_mutex_lock(&t->mu);
		if (reserved_in == t) {
			t->reserved--;
			reserved_in = NULL;
		}
		t->open++;
		if (c) {
			c->table = t;
			c->fd = fd ? fd->connect_fd : MHD_INVALID_SOCKET;
			c->since = isif_now_s();
			c->next = t->head;
			if (t->head)
				t->head->prev = c;
			t->head = c;
		}
		pthread_mutex_unlock(&t->mu);
		*socket_context = c;
		return;
	}
	pthread_mutex_lock(&t->mu);
	t->open--;
	if (c) {
		if (c->prev)
			c->prev->next = c->next;
		else
			t->head = c->next;
		if (c->next)
			c->next->prev = c->prev;
	}
	pthread_mutex_unlock(&t->mu);
	free(c);
	*socket_context = NULL;
}

/* Marks the connection's request as being answered (busy) or done. */
static void conn_mark(struct MHD_Connection *conn, bool busy)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	struct conn_slot *c = ci ? ci->socket_context : NULL;
	if (!c)
		return;
	pthread_mutex_lock(&c->table->mu);
	c->busy = busy;
	if (!busy)
		c->since = isif_now_s();
	pthread_mutex_unlock(&c->table->mu);
}

static void *sweeper_main(void *arg)
{
	struct conn_table *t = arg;
	pthread_mutex_lock(&t->mu);
	while (!t->stop) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);   /* the condition's clock */
		ts.tv_nsec += 500000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&t->wake, &t->mu, &ts);
		double now = isif_now_s();
		for (struct conn_slot *c = t->head; c; c = c->next)
			if (!c->busy && !c->cut && c->fd != MHD_INVALID_SOCKET &&
			    now - c->since > t->deadline) {
				shutdown(c->fd, SHUT_RDWR);
				c->cut = true;
				t->cut++;
			}
		long refused = t->refused, cut = t->cut;
		t->refused = t->cut = 0;
		pthread_mutex_unlock(&t->mu);
		if (refused)
			log_warn("http: closed %ld new connections at once: --max-connections %ld "
				 "reached", refused, t->max);
		if (cut)
			log_warn("http: closed %ld connections whose request was not in after "
				 "--request-timeout %.0f s", cut, t->deadline);
		pthread_mutex_lock(&t->mu);
	}
	pthread_mutex_unlock(&t->mu);
	return NULL;
}

static struct conn_table *conn_table_create(const struct config *cfg)
{
	struct conn_table *t = calloc(1, sizeof *t);
	if (!t)
		return NULL;
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);  /* a wall-clock step cannot stall it */
	pthread_mutex_init(&t->mu, NULL);
	pthread_cond_init(&t->wake, &ca);
	pthread_condattr_destroy(&ca);
	t->max = cfg->max_connections;
	t->deadline = (double)cfg->request_timeout;
	t->quiesced = MHD_INVALID_SOCKET;
	return t;
}

static void conn_table_stop(struct conn_table *t)
{
	if (t->sweeping) {
		pthread_mutex_lock(&t->mu);
		t->stop = true;
		pthread_cond_signal(&t->wake);
		pthread_mutex_unlock(&t->mu);
		pthread_join(t->sweeper, NULL);
		t->sweeping = false;
	}
}

/* After the daemon is stopped: every connection has been reported closed. */
static void conn_table_free(struct conn_table *t)
{
	conn_table_stop(t);
	pthread_mutex_destroy(&t->mu);
	pthread_cond_destroy(&t->wake);
	free(t);
}

/* ---- blocking work off the HTTP threads ------------------------------------ */
/*
 * http_defer hands a request's remaining work to a workpool while its
 * connection is suspended, so a slow URL or a dataset load never holds an
 * HTTP thread (each runs an epoll loop for many connections: one blocked
 * thread stalls all of them, /healthz included). The order is: reserve a
 * place (or answer 503 now), suspend, submit. The work answers through
 * http_respond, which parks the response in the request (rq->in_worker);
 * the worker then resumes the connection, and libmicrohttpd calls
 * on_request again on the connection's own thread, which queues the parked
 * response (unpark): MHD_queue_response is only allowed there. After the
 * resume the worker touches nothing of rq: the HTTP thread may free it.
 * Shutdown: http_quiesce cancels the lanes (queued work answers 503 at
 * once, fetches in progress stop within 100 ms), http_stop waits for the
 * rest before stopping libmicrohttpd, which refuses suspended connections,
 * and gives the answers so made up to DEFER_DRAIN_S to be sent (the count
 * of deferred requests drops in on_completed), else libmicrohttpd would
 * close their connections unanswered.
 */
#define DEFER_DRAIN_S 1.0

/* The kept answer of a deferred request (consumed). */
static enum MHD_Result park(struct request *rq, int status, struct MHD_Response *r)
{
	if (rq->parked)
		MHD_destroy_response(rq->parked);   /* answered twice: the last one wins */
	rq->parked = r;
	rq->parked_status = status;
	return MHD_YES;
}

static enum MHD_Result unpark(struct request *rq)
{
	struct MHD_Response *r = rq->parked;
	rq->parked = NULL;
	enum MHD_Result ret = MHD_queue_response(rq->conn, (unsigned)rq->parked_status, r);
	MHD_destroy_response(r);
	return ret;
}

/* Runs on a lane's thread (or at once when cancelled before it started). */
static void deferred_run(void *arg, bool cancelled)
{
	struct request *rq = arg;
	bool detached = false;
	rq->in_worker = true;
	rq->detached = &detached;
	rq->work(rq, rq->work_arg, cancelled);
	if (detached)
		return;    /* another thread answers (and may have freed rq by now) */
	rq->detached = NULL;
	http_detached_done(rq);
}

void http_detach(struct request *rq)
{
	if (rq->detached)
		*rq->detached = true;
	rq->detached = NULL;
}

void http_detached_done(struct request *rq)
{
	if (!rq->parked)
		http_error(rq, 500, "internal", "the deferred work gave no answer");
	rq->in_worker = false;
	MHD_resume_connection(rq->conn);   /* rq belongs to the HTTP thread again */
}

static struct conn_table *table_of_conn(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	struct conn_slot *c = ci ? ci->socket_context : NULL;
	return c ? c->table : NULL;
}

enum MHD_Result http_defer(struct request *rq, enum http_lane lane, http_work_fn fn, void *arg)
{
	struct conn_table *t = table_of_conn(rq->conn);
	/* after http_quiesce the lanes go away while requests still arrive */
	bool quiescing = t && atomic_load(&t->quiescing);
	struct workpool *p = t && !quiescing ? t->lanes[lane] : NULL;
	enum isif_rc rc = quiescing ? ISIF_ECANCELLED : p ? workpool_reserve(p) : ISIF_ENOMEM;
	if (rc) {
		rq->in_worker = true;    /* its answer is parked, then replaced below */
		fn(rq, arg, true);       /* frees arg */
		rq->in_worker = false;
		if (rq->parked) {
			MHD_destroy_response(rq->parked);
			rq->parked = NULL;
		}
		struct MHD_Response *r = NULL;
		json_t *e = json_pack("{s:{s:s, s:s}}", "error", "code", "unavailable", "message",
				      rc == ISIF_EBUSY ? "too many requests waiting for the "
				      "server's work threads (--work-queue); retry" :
				      rc == ISIF_ECANCELLED ? "isifd is shutting down" : "out of memory");
		char *body = e ? json_dumps(e, 0) : NULL;
		json_decref(e);
		if (body && !(r = MHD_create_response_from_buffer(strlen(body), body,
								  MHD_RESPMEM_MUST_FREE)))
			free(body);
		if (!r)
			return MHD_NO;
		MHD_add_response_header(r, "Content-Type", "application/json");
		MHD_add_response_header(r, "Retry-After", "1");
		/* in shutdown the connection is closed with its 503: a kept-alive
		 * client would otherwise be answered (and logged) again and again
		 * until libmicrohttpd stops; the listening socket is gone */
		if (quiescing)
			MHD_add_response_header(r, "Connection", "close");
		return http_respond(rq, 503, r);
	}
	rq->work = fn;
	rq->work_arg = arg;
	rq->lane = p;
	rq->deferred_in = &t->deferred;
	atomic_fetch_add(&t->deferred, 1);
	MHD_suspend_connection(rq->conn);
	workpool_submit(p, deferred_run, rq);
	return MHD_YES;
}

bool http_suspend(struct request *rq)
{
	struct conn_table *t = table_of_conn(rq->conn);
	if (!t)
		return false;
	/* counted before the shutdown flag is read: either http_stop's drain
	 * sees this request, or this request sees the flag and suspends
	 * nothing (libmicrohttpd must stop with no suspended connection) */
	atomic_fetch_add(&t->deferred, 1);
	if (atomic_load(&t->quiescing)) {
		atomic_fetch_sub(&t->deferred, 1);
		return false;
	}
	rq->in_worker = true;      /* the answer is parked, then queued on resume */
	rq->deferred_in = &t->deferred;
	MHD_suspend_connection(rq->conn);
	return true;
}

const atomic_bool *http_cancel_flag(const struct request *rq)
{
	return rq->lane ? workpool_cancel_flag(rq->lane) : NULL;
}

/* Starts the lanes of http_defer; false after logging why. */
static bool lanes_start(struct conn_table *t, const struct config *cfg)
{
	static const char *const names[HTTP_LANES] = {"work", "fetch"};
	const long threads[HTTP_LANES] = {cfg->work_threads, cfg->fetch_threads};
	for (int i = 0; i < HTTP_LANES; i++) {
		struct isif_error err = {0};
		t->lanes[i] = workpool_create(names[i], (int)threads[i], (int)cfg->work_queue, &err);
		if (!t->lanes[i]) {
			log_error("http: %s", err.msg);
			return false;
		}
	}
	return true;
}

static void lanes_cancel(struct conn_table *t)
{
	for (int i = 0; i < HTTP_LANES; i++)
		workpool_cancel(t->lanes[i]);
}

/* Waits for deferred work still running (it resumes its connections),
 * then, a while, for the answers it made to be sent. */
static void lanes_free(struct conn_table *t)
{
	for (int i = 0; i < HTTP_LANES; i++) {
		workpool_free(t->lanes[i]);
		t->lanes[i] = NULL;
	}
	double until = isif_now_s() + DEFER_DRAIN_S;
	while (atomic_load(&t->deferred) > 0 && isif_now_s() < until) {
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
}

/* ---- answering ------------------------------------------------------------- */

enum MHD_Result http_respond(struct request *rq, int status, struct MHD_Response *r)
{
	if (!r)
		return MHD_NO;
	rq->answered = true;
	rq->status = status;
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	if (rq->in_worker)
		return park(rq, status, r);
	enum MHD_Result ret = MHD_queue_response(rq->conn, (unsigned)status, r);
	MHD_destroy_response(r);
	return ret;
}

enum MHD_Result http_body(struct request *rq, int status, const char *content_type,
			  char *body, size_t len)
{
	if (!body)
		return http_error(rq, 500, "internal", "out of memory");
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body,
								 MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", content_type);
	MHD_add_response_header(r, "Cache-Control", "no-store");
	return http_respond(rq, status, r);
}

enum MHD_Result http_json(struct request *rq, int status, json_t *obj)
{
	char *text = obj ? json_dumps(obj, JSON_REAL_PRECISION(15)) : NULL;
	json_decref(obj);
	if (!text) {
		/* A static body: nothing left to allocate. */
		static const char oom[] = "{\"error\": {\"code\": \"internal\", \"message\": \"out of memory\"}}";
		struct MHD_Response *r = MHD_create_response_from_buffer(sizeof oom - 1, (void *)oom,
									 MHD_RESPMEM_PERSISTENT);
		return http_respond(rq, 500, r);
	}
	size_t len = strlen(text);
	text[len] = '\0';
	/* One trailing newline makes curl output readable. */
	char *withnl = realloc(text, len + 2);
	if (withnl) {
		withnl[len] = '\n';
		withnl[len + 1] = '\0';
		text = withnl;
		len++;
	}
	return http_body(rq, status, "application/json", text, len);
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if it is not one. */
static size_t utf8_seq(const unsigned char *s)
{
	size_t n = s[0] < 0x80 ? 1 : s[0] >= 0xc2 && s[0] <= 0xdf ? 2
		 : s[0] >= 0xe0 && s[0] <= 0xef ? 3 : s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : 0;
	for (size_t i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	/* Overlong 3/4-byte forms, UTF-16 surrogates and code points past U+10FFFF. */
	if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0) ||
	    (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90))
		return 0;
	return n;
}

/* Replaces what is not valid UTF-8 (client bytes echoed in a message, or a
 * character cut by truncation) with '?': Jansson refuses invalid strings,
 * which would turn a 4xx answer into a 500. */
static void utf8_scrub(char *msg)
{
	unsigned char *s = (unsigned char *)msg;
	while (*s) {
		size_t n = utf8_seq(s);
		if (n == 0) {
			*s++ = '?';
			continue;
		}
		s += n;
	}
}

enum MHD_Result http_error(struct request *rq, int status, const char *code,
			   const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	utf8_scrub(msg);
	if (status >= 500)
		log_error("http %s %s: %d %s", rq->method, rq->url, status, msg);
	return http_json(rq, status, json_pack("{s:{s:s, s:s}}", "error", "code", code,
					       "message", msg));
}

int http_status_of(enum isif_rc rc, const char **code)
{
	static const struct { int status; const char *code; } map[ISIF_RC_COUNT] = {
		[ISIF_OK] = {200, "ok"},
		[ISIF_ENOMEM] = {503, "unavailable"},
		[ISIF_EINVAL] = {400, "invalid_parameter"},
		[ISIF_EIO] = {500, "internal"},
		[ISIF_EFORMAT] = {422, "unprocessable"},
		[ISIF_ESHAPE] = {422, "unprocessable"},
		[ISIF_ECANCELLED] = {503, "unavailable"},
		[ISIF_ERANGE] = {422, "out_of_range"},
		[ISIF_ENOTFOUND] = {404, "not_found"},
		[ISIF_ECONFLICT] = {409, "conflict"},
		[ISIF_EBUSY] = {429, "busy"},
		[ISIF_EEMPTY] = {404, "not_found"},
		[ISIF_EFORBIDDEN] = {403, "forbidden"},
	};
	bool known = (unsigned)rc < ISIF_RC_COUNT && map[rc].code;
	if (code)
		*code = known ? map[rc].code : "internal";
	return known ? map[rc].status : 500;
}

enum MHD_Result http_fail(struct request *rq, enum isif_rc rc, const struct isif_error *err)
{
	const char *code;
	int status = http_status_of(rc, &code);
	return http_error(rq, status, code, "%s", err->msg[0] ? err->msg : isif_strerror(rc));
}

enum MHD_Result http_store_failed(struct request *rq, enum isif_rc rc,
				  const struct isif_error *err)
{
	if (rc == ISIF_EIO)
		return http_error(rq, 500, "internal", "database error: %s", err->msg);
	return http_fail(rq, rc, err);
}

bool http_seg(struct request *rq, int i, char *buf, size_t len)
{
	if (i < 0 || i >= rq->nseg || rq->seg_len[i] >= len)
		return false;
	memcpy(buf, rq->seg[i], rq->seg_len[i]);
	buf[rq->seg_len[i]] = '\0';
	return true;
}

const char *http_query(struct request *rq, const char *key)
{
	return MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, key);
}

bool http_query_long(struct request *rq, const char *key, long min, long max,
		     long def, long *out, enum MHD_Result *answered)
{
	const char *v = http_query(rq, key);
	if (!v) {
		*out = def;
		return true;
	}
	char *end;
	long long x = strtoll(v, &end, 10);
	if (!*v || *end || x < min || x > max) {
		*answered = http_error(rq, 400, "invalid_parameter",
				       "%s: must be an integer between %ld and %ld", key, min, max);
		return false;
	}
	*out = (long)x;
	return true;
}

/* ---- routing ---------------------------------------------------------------- */

/* Does path match pattern? The {id} segment goes to *id_seg / *id_len,
 * other {name} segments to rq's seg[] (when rq is not NULL). */
static bool match(const char *pattern, const char *path, const char **id_seg, size_t *id_len,
		  struct request *rq)
{
	const char *p = pattern, *u = path;
	int nseg = 0;
	while (*p && *u) {
		if (*p == '{') {
			size_t n = strcspn(u, "/"), plen = strcspn(p, "}");
			if (n == 0 || !p[plen])
				return false;
			if (strncmp(p, "{id}", 4) == 0) {
				*id_seg = u;
				*id_len = n;
			} else if (nseg < HTTP_MAX_SEGS) {
				if (rq) {
					rq->seg[nseg] = u;
					rq->seg_len[nseg] = n;
				}
				nseg++;
			}
			p += plen + 1;
			u += n;
			continue;
		}
		if (*p != *u)
			return false;
		p++;
		u++;
	}
	if (*p || *u)
		return false;
	if (rq)
		rq->nseg = nseg;
	return true;
}

/* A job id: 1..2^53, decimal digits only. */
static int64_t parse_id(const char *s, size_t n)
{
	if (n == 0 || n > 16)
		return 0;
	int64_t x = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		x = x * 10 + (s[i] - '0');
	}
	return x <= (INT64_C(1) << 53) ? x : 0;
}

/* Picks the route of rq; on no match answers 404 or 405 and returns false. */
static bool route_request(struct request *rq, enum MHD_Result *ret)
{
	char allow[128] = "";
	bool path_known = false;
	bool is_get = strcmp(rq->method, "GET") == 0 || strcmp(rq->method, "HEAD") == 0;
	for (int i = 0; i < N_ROUTES; i++) {
		const char *seg = NULL;
		size_t len = 0;
		if (!match(routes[i].pattern, rq->url, &seg, &len, NULL))
			continue;
		path_known = true;
		bool same = strcmp(routes[i].method, rq->method) == 0 ||
			    (is_get && strcmp(routes[i].method, "GET") == 0);
		if (same) {
			match(routes[i].pattern, rq->url, &seg, &len, rq);
			rq->route = i;
			rq->label = label_of(i);
			if (seg) {
				rq->id = parse_id(seg, len);
				rq->bad_id = rq->id == 0;
			}
			return true;
		}
		size_t al = strlen(allow);
		snprintf(allow + al, sizeof allow - al, "%s%s", al ? ", " : "", routes[i].method);
		if (strcmp(routes[i].method, "GET") == 0) {
			al = strlen(allow);
			snprintf(allow + al, sizeof allow - al, ", HEAD");
		}
	}
	if (path_known) {
		char *body = NULL;
		json_t *e = json_pack("{s:{s:s, s:s}}", "error", "code", "method_not_allowed",
				      "message", "method not allowed here; see the Allow header");
		body = e ? json_dumps(e, 0) : NULL;
		json_decref(e);
		if (!body)
			return (*ret = MHD_NO), false;
		struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), body,
									 MHD_RESPMEM_MUST_FREE);
		if (!r) {
			free(body);
			return (*ret = MHD_NO), false;
		}
		MHD_add_response_header(r, "Allow", allow);
		MHD_add_response_header(r, "Content-Type", "application/json");
		*ret = http_respond(rq, 405, r);
		return false;
	}
	if (is_get) {
		rq->route = -1;
		rq->label = LABEL_STATIC;
		return true;
	}
	*ret = http_error(rq, 404, "not_found", "no such resource: %s", rq->url);
	return false;
}

/* ---- query parameters -------------------------------------------------------- */

/* Is key one of the comma-separated names in list? */
static bool listed(const char *list, const char *key)
{
	size_t kl = strlen(key);
	for (const char *p = list; *p; p += strcspn(p, ",") + (p[strcspn(p, ",")] == ',')) {
		if (strcspn(p, ",") == kl && strncmp(p, key, kl) == 0)
			return true;
	}
	return false;
}

struct param_check {
	const char *allowed;
	const char *seen[HTTP_MAX_PARAMS];
	int n;
	const char *bad;       /* the first offending key */
	const char *why;
};

static enum MHD_Result check_one_param(void *cls, enum MHD_ValueKind kind, const char *key,
				       size_t key_size, const char *value, size_t value_size)
{
	struct param_check *c = cls;
	(void)kind;
	bool token = strcmp(key, "access_token") == 0;
	/* a decoded %00 would cut the value short for every reader (C strings) */
	if (strlen(key) != key_size || (value && strlen(value) != value_size))
		c->why = "contains a NUL byte (%00)";
	else if (!token && !listed(c->allowed, key))
		c->why = "unknown query parameter";
	else if (!token && !value)
		c->why = "needs a value";
	for (int i = 0; i < c->n && !c->why; i++)
		if (strcmp(c->seen[i], key) == 0)
			c->why = "given more than once";
	if (c->why) {
		c->bad = key;
		return MHD_NO;
	}
	if (c->n < HTTP_MAX_PARAMS)
		c->seen[c->n++] = key;
	return MHD_YES;
}

/* Refuses (400) a query parameter the route does not take, one given twice
 * or one without a value, so that a typo ("?stauts=running") is not silently
 * ignored. Static files take any query (cache busting). */
static bool check_params(struct request *rq, enum MHD_Result *ret)
{
	if (rq->route < 0)
		return true;
	struct param_check c = {.allowed = routes[rq->route].params};
	MHD_get_connection_values_n(rq->conn, MHD_GET_ARGUMENT_KIND, check_one_param, &c);
	if (!c.bad)
		return true;
	char takes[128] = "no query parameters";
	if (c.allowed[0]) {
		size_t o = 0;   /* "status,limit" shown as "status, limit" */
		for (const char *p = c.allowed; *p && o + 3 < sizeof takes; p++) {
			takes[o++] = *p;
			if (*p == ',')
				takes[o++] = ' ';
		}
		takes[o] = '\0';
	}
	*ret = http_error(rq, 400, "invalid_parameter", "%.64s: %s; %s %s takes %s",
			  c.bad[0] ? c.bad : "\"\"", c.why, routes[rq->route].method,
			  routes[rq->route].pattern, takes);
	return false;
}

/*
 * Request targets that are too long. libmicrohttpd 0.9.75 stores each query
 * argument as a record in the connection's memory pool; when the pool runs
 * out in the middle (a few thousand "a&a&..." in 8 KB do that) it logs a
 * 431, but then overwrites the connection's state, so the answer is never
 * sent and the client waits for --request-timeout. The URI log callback
 * sees the raw target before libmicrohttpd splits the query: a target over
 * HTTP_MAX_TARGET bytes or with more than HTTP_MAX_PARAMS parameters has its
 * query cut off there (nothing is left to split, so libmicrohttpd cannot
 * run out) and is answered 414 by on_request. The limits keep what is split
 * well inside the smallest --connection-memory.
 */
static char target_too_long;   /* its address marks such a request */
/* A path holding %00: decoded, it would cut a {name} segment short for
 * every C-string reader (DELETE /jobs/1/items/b%00x acting on item "b"). */
static char target_nul;

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	(void)cls;
	(void)conn;
	if (!uri)
		return NULL;   /* a request line without a target */
	char *q = strchr(uri, '?');
	size_t n_params = 0;
	for (const char *p = q; p && *p; p++)
		n_params += *p == '&' || *p == '?';
	if (strlen(uri) <= HTTP_MAX_TARGET && n_params <= HTTP_MAX_PARAMS) {
		const char *nul = strstr(uri, "%00");
		return nul && (!q || nul < q) ? &target_nul : NULL;
	}
	if (q)
		q[1] = '\0';   /* the buffer is the connection's own, and writable */
	return &target_too_long;
}

/* Constant-time string equality (the token must not leak through timing). */
static bool same_secret(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned char diff = (unsigned char)(la != lb);
	for (size_t i = 0; i < la; i++)
		diff |= (unsigned char)(a[i] ^ b[i % (lb ? lb : 1)]);
	return diff == 0;
}

static bool authorized(struct request *rq)
{
	const char *want = rq->app->token;
	if (!want[0])
		return true;
	const char *h = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND,
						    MHD_HTTP_HEADER_AUTHORIZATION);
	if (h && strncasecmp(h, "Bearer ", 7) == 0)
		return same_secret(h + 7, want);
	/* RFC 6750 §2.3, for browsers' EventSource and page loads. */
	const char *q = http_query(rq, "access_token");
	return q && same_secret(q, want);
}

static bool is_json_type(const char *ct)
{
	if (!ct)
		return false;
	size_t n = strcspn(ct, ";");
	while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
		n--;
	return n == 16 && strncasecmp(ct, "application/json", 16) == 0;
}

/* application/octet-stream, parameters ignored. */
static bool is_file_type(const char *ct)
{
	if (!ct)
		return false;
	size_t n = strcspn(ct, ";");
	while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
		n--;
	return n == 24 && strncasecmp(ct, "application/octet-stream", n) == 0;
}

/* image/jpeg, image/png or application/octet-stream, parameters ignored. */
static bool is_image_type(const char *ct)
{
	static const char *const ok[] = {"image/jpeg", "image/png", "application/octet-stream"};
	if (!ct)
		return false;
	size_t n = strcspn(ct, ";");
	while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
		n--;
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
		if (strlen(ok[i]) == n && strncasecmp(ct, ok[i], n) == 0)
			return true;
	return false;
}

/* Checks made before the body: auth, content type, declared length. */
static bool admit(struct request *rq, enum MHD_Result *ret)
{
	unsigned flags = rq->route >= 0 ? routes[rq->route].flags : 0;
	if (!(flags & NO_AUTH) && !authorized(rq)) {
		json_t *e = json_pack("{s:{s:s, s:s}}", "error", "code", "unauthorized",
				      "message", "missing or wrong bearer token");
		char *body = e ? json_dumps(e, 0) : NULL;
		json_decref(e);
		struct MHD_Response *r = body ? MHD_create_response_from_buffer(
			strlen(body), body, MHD_RESPMEM_MUST_FREE) : NULL;
		if (!r) {
			free(body);
			return (*ret = MHD_NO), false;
		}
		MHD_add_response_header(r, "WWW-Authenticate", "Bearer realm=\"isifd\"");
		MHD_add_response_header(r, "Content-Type", "application/json");
		*ret = http_respond(rq, 401, r);
		return false;
	}
	if (!(flags & (BODY_JSON | BODY_IMAGE | BODY_FILE)))
		return true;
	const char *ct = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND,
						     MHD_HTTP_HEADER_CONTENT_TYPE);
	if ((flags & BODY_JSON) && (flags & BODY_IMAGE)) {
		if (!is_json_type(ct) && !is_image_type(ct) && !multipart_is_form(ct)) {
			*ret = http_error(rq, 415, "unsupported_media_type",
					  "Content-Type must be application/json, image/jpeg, "
					  "image/png, application/octet-stream or multipart/form-data "
					  "(got %s)", ct ? ct : "none");
			return false;
		}
	} else if ((flags & BODY_JSON) && !is_json_type(ct)) {
		*ret = http_error(rq, 415, "unsupported_media_type",
				  "Content-Type must be application/json (got %s)", ct ? ct : "none");
		return false;
	}
	if ((flags & BODY_FILE) && !is_file_type(ct)) {
		*ret = http_error(rq, 415, "unsupported_media_type",
				  "Content-Type must be application/octet-stream (got %s)",
				  ct ? ct : "none");
		return false;
	}
	if ((flags & BODY_IMAGE) && !(flags & BODY_JSON) && !is_image_type(ct) &&
	    !multipart_is_form(ct)) {
		*ret = http_error(rq, 415, "unsupported_media_type",
				  "Content-Type must be image/jpeg, image/png, "
				  "application/octet-stream or multipart/form-data (got %s)",
				  ct ? ct : "none");
		return false;
	}
	const char *cl = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND,
						     MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl && strtoull(cl, NULL, 10) > (unsigned long long)rq->max_body) {
		*ret = http_error(rq, 413, "payload_too_large", "body larger than %zu bytes (%s)",
				  rq->max_body, rq->max_body_flag);
		return false;
	}
	return true;
}

/* One file upload (POST /checkpoints: up to --max-checkpoint-bytes held in
 * memory) at a time in the whole daemon, so that parallel uploads cannot
 * multiply that memory; a second one is answered 503 at once. */
static atomic_bool file_upload_busy;

static void append_body(struct request *rq, const char *data, size_t n)
{
	size_t max = rq->max_body;
	if (rq->too_large || rq->body_len + n > max) {
		rq->too_large = true;
		return;
	}
	if (rq->body_len + n + 1 > rq->body_cap) {
		size_t cap = rq->body_cap ? rq->body_cap : 4096;
		while (cap < rq->body_len + n + 1)
			cap *= 2;
		if (cap > max + 1)   /* never more than the largest body allowed */
			cap = max + 1;
		char *p = realloc(rq->body, cap);
		if (!p) {
			rq->too_large = true;
			return;
		}
		rq->body = p;
		rq->body_cap = cap;
	}
	memcpy(rq->body + rq->body_len, data, n);
	rq->body_len += n;
	rq->body[rq->body_len] = '\0';
}

static enum MHD_Result dispatch(struct request *rq)
{
	if (rq->route < 0)
		return route_static(rq);
	if (rq->bad_id)
		return http_error(rq, 400, "invalid_id", "job id must be a positive integer");
	return routes[rq->route].fn(rq);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_size, void **con_cls)
{
	struct request *rq = *con_cls;
	(void)version;
	serve_nice_apply();   /* libmicrohttpd's threads are its own: their first request */
	bool too_long = rq == (void *)&target_too_long, nul_path = rq == (void *)&target_nul;
	if (!rq || too_long || nul_path) {
		rq = calloc(1, sizeof *rq);
		*con_cls = rq;
		if (!rq)
			return MHD_NO;
		rq->app = cls;
		rq->conn = conn;
		rq->method = method;
		rq->url = url;
		rq->route = -1;
		rq->label = N_LABELS;
		rq->t0 = isif_now_s();
		rq->max_body = (size_t)rq->app->cfg->max_body;
		rq->max_body_flag = "--max-body";
		enum MHD_Result ret = MHD_YES;
		if (too_long)
			return http_error(rq, 414, "uri_too_long", "request target longer than %d "
					  "bytes or with more than %d query parameters",
					  HTTP_MAX_TARGET, HTTP_MAX_PARAMS);
		if (nul_path)
			return http_error(rq, 400, "invalid_parameter", "the request path contains a "
					  "NUL byte (%%00)");
		if (!route_request(rq, &ret))
			return ret;
		if (rq->route >= 0 && (routes[rq->route].flags & BODY_IMAGE)) {
			rq->max_body = (size_t)rq->app->cfg->max_image_bytes;
			rq->max_body_flag = "--max-image-bytes";
		}
		if (rq->route >= 0 && (routes[rq->route].flags & BODY_FILE)) {
			rq->max_body = (size_t)rq->app->cfg->max_checkpoint_bytes;
			rq->max_body_flag = "--max-checkpoint-bytes";
		}
		/* a form's boundaries and part headers come on top of the image */
		if (rq->route >= 0 && (routes[rq->route].flags & BODY_IMAGE) &&
		    multipart_is_form(MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
								  MHD_HTTP_HEADER_CONTENT_TYPE)))
			rq->max_body += MULTIPART_MAX_HEADERS + 1024;
		/* a JSON body of a route that also takes images is JSON: --max-body (a
		 * parsed JSON tree is ~20x its text, so 10 MiB bodies cost gigabytes) */
		if (rq->route >= 0 && (routes[rq->route].flags & BODY_JSON) &&
		    is_json_type(MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
							     MHD_HTTP_HEADER_CONTENT_TYPE))) {
			rq->max_body = (size_t)rq->app->cfg->max_body;
			rq->max_body_flag = "--max-body";
		}
		if (!admit(rq, &ret) || !check_params(rq, &ret))
			return ret;
		if (rq->route >= 0 && (routes[rq->route].flags & BODY_FILE)) {
			if (atomic_exchange(&file_upload_busy, true))
				return http_error(rq, 503, "unavailable", "another checkpoint upload is "
						  "in progress; retry when it has ended");
			rq->holds_file_upload = true;
		}
		/* Answer on the next call, once the request is fully read: a
		 * response queued from this first call makes libmicrohttpd close
		 * the connection afterwards (no keep-alive). */
		return MHD_YES;
	}
	if (rq->parked)
		return unpark(rq);
	if (rq->answered) {
		*upload_size = 0; /* a body nobody asked for is dropped */
		return MHD_YES;
	}
	if (*upload_size) {
		append_body(rq, upload_data, *upload_size);
		*upload_size = 0;
		return MHD_YES;
	}
	if (rq->too_large)
		return http_error(rq, 413, "payload_too_large", "body larger than %zu bytes (%s)",
				  rq->max_body, rq->max_body_flag);
	conn_mark(conn, true);   /* fully in: no request deadline while it is answered */
	return dispatch(rq);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct app *app = cls;
	struct request *rq = *con_cls;
	conn_mark(conn, false);  /* the next request's deadline starts now */
	*con_cls = NULL;
	if (!rq || rq == (void *)&target_too_long || rq == (void *)&target_nul)
		return;   /* ended before on_request saw it */
	if (rq->holds_file_upload)
		atomic_store(&file_upload_busy, false);
	double dt = isif_now_s() - rq->t0;
	if (app->prom)
		prom_observe_request(app->prom, rq->label, rq->method, rq->status, dt);
	if (app->cfg->verbose || toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
		log_msg(app->cfg->verbose ? LOG_INFO : LOG_DEBUG, "http %s %s %d %.1fms%s",
			rq->method, rq->url, rq->status, dt * 1e3,
			toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (connection ended early)");
	if (rq->parked)
		MHD_destroy_response(rq->parked);   /* the client left before it was sent */
	if (rq->deferred_in)
		atomic_fetch_sub((atomic_int *)rq->deferred_in, 1);
	free(rq->body);
	free(rq);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];
	(void)cls;
	vsnprintf(line, sizeof line, fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	log_warn("libmicrohttpd: %s", line);
}

/* ---- start and stop ------------------------------------------------------------ */

/* ISIF_EINVAL with the message every caller shows. */
static enum isif_rc bad_listen(struct isif_error *err)
{
	return isif_fail(err, ISIF_EINVAL, "expected address:port, [v6]:port or localhost:port "
			 "(a numeric address; port 0 to 65535)");
}

/* The port: 1 to 5 decimal digits, 0..65535 (strtol alone would take
 * " 80", "+80" and "-0"). */
static bool parse_port(const char *s, uint16_t *port)
{
	size_t n = strspn(s, "0123456789");
	if (n == 0 || n > 5 || s[n])
		return false;
	long p = strtol(s, NULL, 10);
	if (p > 65535)
		return false;
	*port = (uint16_t)p;
	return true;
}

enum isif_rc http_parse_listen(const char *spec, void *out, size_t *len, bool *loopback,
			       struct isif_error *err)
{
	char host[256];
	const char *colon;
	uint16_t port;
	memset(out, 0, sizeof(struct sockaddr_storage));
	if (spec[0] == '[') {
		const char *end = strchr(spec, ']');
		if (!end || end[1] != ':' || (size_t)(end - spec - 1) >= sizeof host)
			return bad_listen(err);
		snprintf(host, sizeof host, "%.*s", (int)(end - spec - 1), spec + 1);
		colon = end + 1;
	} else {
		colon = strrchr(spec, ':');
		/* IPv6 only in brackets: "::1:80" would be ambiguous. */
		if (!colon || (size_t)(colon - spec) >= sizeof host || memchr(spec, ':', (size_t)(colon - spec)))
			return bad_listen(err);
		snprintf(host, sizeof host, "%.*s", (int)(colon - spec), spec);
	}
	if (!parse_port(colon + 1, &port))
		return bad_listen(err);
	struct sockaddr_in *v4 = out;
	struct sockaddr_in6 *v6 = out;
	/* "localhost" is 127.0.0.1 here, without asking a resolver: /etc/hosts
	 * or DNS could make it anything, loopback check included. */
	if (strcasecmp(host, "localhost") == 0)
		snprintf(host, sizeof host, "127.0.0.1");
	if (spec[0] != '[' && inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons(port);
		*len = sizeof *v4;
		*loopback = (ntohl(v4->sin_addr.s_addr) >> 24) == 127;
		return ISIF_OK;
	}
	if (spec[0] == '[' && inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons(port);
		*len = sizeof *v6;
		*loopback = IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr);
		return ISIF_OK;
	}
	if (host[0] && strspn(host, "0123456789.") != strlen(host) && spec[0] != '[')
		return isif_fail(err, ISIF_EINVAL, "\"%.64s\" is a host name: give a numeric "
				 "address or localhost (names are not looked up)", host);
	return bad_listen(err);
}

/* The reason a bind failed, as an operator would want to read it. */
static const char *bind_reason(int e)
{
	switch (e) {
	case EADDRINUSE:
		return "address already in use";
	case EADDRNOTAVAIL:
		return "address not available on this machine";
	case EACCES:
		return "permission denied (ports below 1024 need CAP_NET_BIND_SERVICE)";
	case EAFNOSUPPORT:
		return "address family not supported here (IPv6 disabled?)";
	default:
		return strerror(e);
	}
}

enum isif_rc http_listen(const char *spec, int *fd, struct isif_error *err)
{
	struct sockaddr_storage addr;
	size_t alen;
	bool loopback;
	struct isif_error e_parse;
	*fd = -1;
	if (http_parse_listen(spec, &addr, &alen, &loopback, &e_parse))
		return isif_fail(err, ISIF_EINVAL, "--listen %s: %s", spec, e_parse.msg);
	int s = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1, e;
	if (s < 0) {
		e = errno;
		return isif_fail(err, ISIF_EIO, "--listen %s: %s", spec, bind_reason(e));
	}
	/* As libmicrohttpd would: restart at once on a port in TIME_WAIT, and
	 * an IPv6 socket that is IPv6 only. */
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (addr.ss_family == AF_INET6)
		setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
	if (bind(s, (struct sockaddr *)&addr, (socklen_t)alen) != 0 || listen(s, SOMAXCONN) != 0) {
		e = errno;
		close(s);
		return isif_fail(err, ISIF_EIO, "--listen %s: %s", spec, bind_reason(e));
	}
	*fd = s;
	return ISIF_OK;
}

struct MHD_Daemon *http_start(struct app *app, int listen_fd, int *port)
{
	const struct config *cfg = app->cfg;
	struct sockaddr_storage addr;
	socklen_t alen = sizeof addr;
	if (getsockname(listen_fd, (struct sockaddr *)&addr, &alen) != 0) {
		log_error("--listen %s: not a socket", cfg->listen);
		close(listen_fd);
		return NULL;
	}
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
			 MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	if (addr.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	struct conn_table *t = conn_table_create(cfg);
	if (!t) {
		log_error("out of memory starting HTTP");
		close(listen_fd);
		return NULL;
	}
	if (!lanes_start(t, cfg)) {
		lanes_free(t);
		conn_table_free(t);
		return NULL;
	}
	/* libmicrohttpd's limit is split evenly over the pool's threads, and a
	 * thread at its share stops accepting; with one spare per thread the
	 * shares add up to more than on_accept ever lets in, so some thread is
	 * always accepting (and closing what is over the limit). */
	struct MHD_Daemon *d = MHD_start_daemon(
		flags, 0, on_accept, t, on_request, app,
		MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
		MHD_OPTION_LISTEN_SOCKET, (MHD_socket)listen_fd,
		MHD_OPTION_THREAD_POOL_SIZE, (unsigned)cfg->http_threads,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)(cfg->max_connections + cfg->http_threads),
		MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)cfg->max_connections_per_ip,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)cfg->connection_memory,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->connection_timeout,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, app,
		MHD_OPTION_NOTIFY_CONNECTION, on_connection, t,
		MHD_OPTION_URI_LOG_CALLBACK, on_uri, NULL,
		MHD_OPTION_END);
	if (!d) {
		/* libmicrohttpd closed listen_fd on most of its failure paths, so
		 * it is not closed here (at worst it leaks until the exit). */
		log_error("--listen %s: libmicrohttpd did not start (see above)", cfg->listen);
		lanes_free(t);
		conn_table_free(t);
		return NULL;
	}
	t->d = d;
	if (pthread_create(&t->sweeper, NULL, sweeper_main, t) == 0)
		t->sweeping = true;
	else
		log_warn("http: no sweeper thread: --request-timeout is not enforced");
	pthread_mutex_lock(&tables_mu);
	t->next_table = tables;
	tables = t;
	pthread_mutex_unlock(&tables_mu);
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	*port = info ? info->port : 0;
	return d;
}

/* The daemon's connection table, or NULL. */
static struct conn_table *table_of(struct MHD_Daemon *d)
{
	struct conn_table *t;
	pthread_mutex_lock(&tables_mu);
	for (t = tables; t && t->d != d; t = t->next_table)
		;
	pthread_mutex_unlock(&tables_mu);
	return t;
}

/* The listen socket stays open until http_stop: libmicrohttpd's threads may
 * still use it until MHD_stop_daemon returns (microhttpd.h). */
void http_quiesce(struct MHD_Daemon *d)
{
	struct conn_table *t = table_of(d);
	if (t) {
		atomic_store(&t->quiescing, true);
		lanes_cancel(t);   /* deferred work answers 503 or stops early */
	}
	MHD_socket fd = MHD_quiesce_daemon(d);
	if (fd == MHD_INVALID_SOCKET)
		return;
	if (t && t->quiesced == MHD_INVALID_SOCKET)
		t->quiesced = fd;
	else
		close(fd);   /* no table: cannot happen after http_start */
}

void http_stop(struct MHD_Daemon *d)
{
	if (!d)
		return;
	struct conn_table *t = NULL;
	pthread_mutex_lock(&tables_mu);
	for (struct conn_table **p = &tables; *p; p = &(*p)->next_table)
		if ((*p)->d == d) {
			t = *p;
			*p = t->next_table;
			break;
		}
	pthread_mutex_unlock(&tables_mu);
	if (t) {
		conn_table_stop(t);   /* no shutdown() behind the daemon's back from here */
		lanes_free(t);        /* no suspended connection left for MHD_stop_daemon */
	}
	MHD_stop_daemon(d);
	if (t && t->quiesced != MHD_INVALID_SOCKET)
		close(t->quiesced);
	if (t)
		conn_table_free(t);
}

int http_err_set(struct http_err *e, int status, const char *code, const char *fmt, ...)
{
	va_list ap;
	e->status = status;
	e->code = code;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof e->msg, fmt, ap);
	va_end(ap);
	return -1;
}

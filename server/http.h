/*
 * server/http.h — the HTTP front of isifd on libmicrohttpd: routing table,
 * limits (body size, content type, connection limits and timeouts),
 * bearer-token authentication, JSON error bodies and per-request metrics.
 * Handlers (routes_*.c) get a struct request and answer through the
 * http_* helpers below exactly once.
 */
#ifndef ISIFD_HTTP_H
#define ISIFD_HTTP_H

#include <jansson.h>
#include <microhttpd.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "prom.h"
#include "scheduler.h"
#include "sse.h"
#include "store.h"

struct index_cache;
struct dscache;
struct workpool;

/* Everything a handler may use; owned by main. */
struct app {
	const struct config *cfg;
	struct store *st;
	struct scheduler *sched;
	struct sse_bus *bus;
	struct prom *prom;
	char token[512];            /* "" = no authentication */
	struct index_cache *indexes; /* jobs' embedding indexes (retrieval) */
	struct dscache *datasets;    /* datasets loaded for the HTTP side */
	struct searcher *search;     /* the micro-batching search threads (search.c) */
};

#define HTTP_MAX_SEGS 4
#define HTTP_MAX_TARGET 8000  /* bytes of a request target (path and query); 414 beyond */
#define HTTP_MAX_PARAMS 32    /* query parameters of one request; 414 beyond */

struct request {
	struct app *app;
	struct MHD_Connection *conn;
	const char *method, *url;
	int route;                  /* index in the route table, -1 none */
	int label;                  /* prom route label index */
	int64_t id;                 /* the {id} path segment, 0 if none or invalid */
	bool bad_id;
	char *body;
	size_t body_len, body_cap;
	bool too_large, answered;
	bool holds_file_upload;  /* this request holds the one BODY_FILE upload slot */
	int status;
	double t0;
	size_t max_body;            /* --max-body, or --max-image-bytes for image uploads */
	const char *max_body_flag;  /* the flag max_body comes from, for the 413 */
	int nseg;                   /* the path's {name}-style segments, in order */
	const char *seg[HTTP_MAX_SEGS];
	size_t seg_len[HTTP_MAX_SEGS];
	/* http_defer: the work, and the answer it made while the connection
	 * was suspended (queued when libmicrohttpd calls back after resume) */
	void (*work)(struct request *rq, void *arg, bool cancelled);
	void *work_arg;
	struct workpool *lane;
	void *deferred_in;          /* http.c's count of deferred answers not yet sent */
	bool in_worker;
	bool *detached;             /* http_detach's flag, on the lane thread's stack */
	struct MHD_Response *parked;
	int parked_status;
};

typedef enum MHD_Result (*route_fn)(struct request *rq);

/* Parses "a.b.c.d:port", "[v6]:port" or "localhost:port" (127.0.0.1; no
 * name is looked up) into a socket address; ISIF_OK, or ISIF_EINVAL with
 * err. *loopback says whether it is 127.0.0.0/8 or ::1. */
enum isif_rc http_parse_listen(const char *spec, void *sockaddr_out, size_t *len, bool *loopback,
			       struct isif_error *err);

/* A socket bound to --listen's address and listening, in *fd (close-on-exec),
 * so that start-up can fail on the address before it touches the state
 * directory: ISIF_EINVAL for a bad spec, ISIF_EIO with "--listen SPEC:
 * address already in use" (or the other reason) when it cannot bind. */
enum isif_rc http_listen(const char *spec, int *fd, struct isif_error *err);

/* Starts the daemon on listen_fd (from http_listen; taken, closed by
 * http_stop); returns NULL after logging why. *port: the bound port. */
struct MHD_Daemon *http_start(struct app *app, int listen_fd, int *port);

/* Stops accepting new connections (SIGTERM). */
void http_quiesce(struct MHD_Daemon *d);
void http_stop(struct MHD_Daemon *d);

/* Route labels for prom_create (the routes' patterns, then "static"):
 * static strings, *n of them. Thread-safe. */
const char *const *http_route_labels(int *n);

/* ---- answering (each returns what the access handler must return) ------ */

/* Queues r (consumed) with status. */
enum MHD_Result http_respond(struct request *rq, int status, struct MHD_Response *r);

/* JSON body (obj consumed). */
enum MHD_Result http_json(struct request *rq, int status, json_t *obj);

/* {"error": {"code", "message"}} */
enum MHD_Result http_error(struct request *rq, int status, const char *code,
			   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* The one mapping from an isif_rc to an HTTP status and its error code
 * ("not_found", ...), for failures a route has no more specific answer for. */
int http_status_of(enum isif_rc rc, const char **code);

/* http_error with rc's status and code (http_status_of) and err's message. */
enum MHD_Result http_fail(struct request *rq, enum isif_rc rc, const struct isif_error *err);

/* A failed store call: ISIF_EIO (SQLite failed) is 500 "database error: ...",
 * any other code answers as http_fail. */
enum MHD_Result http_store_failed(struct request *rq, enum isif_rc rc,
				  const struct isif_error *err);

/* A malloc'd body (taken) with a content type. */
enum MHD_Result http_body(struct request *rq, int status, const char *content_type,
			  char *body, size_t len);

/* A failure kept until it is answered (work done off the HTTP thread
 * records why, the answer is sent later). */
struct http_err {
	int status;
	const char *code;
	char msg[512];
};

/* Records status, code and the message in e; returns -1 (for `return http_err_set(...)`). */
int http_err_set(struct http_err *e, int status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* ---- blocking work off the HTTP threads ---------------------------------- */

/* The thread sets a route can hand work to: --fetch-threads for requests
 * that fetch URLs, --work-threads for image decoding, embedding and
 * dataset loads. */
enum http_lane { HTTP_LANE_WORK, HTTP_LANE_FETCH, HTTP_LANES };

/* What runs there: it answers through the http_* helpers as a handler does
 * (the answer is kept and queued once the connection resumes), owns arg,
 * and must not read the connection (http_query, http_seg: read those
 * before deferring). cancelled: isifd is shutting down; answer 503 at once. */
typedef void (*http_work_fn)(struct request *rq, void *arg, bool cancelled);

/*
 * Suspends rq's connection and runs fn(rq, arg) on the lane's threads; the
 * HTTP thread is free meanwhile. When --work-queue requests already wait
 * there, answers 503 (Retry-After: 1) instead, and after shutdown began
 * 503 too; in both cases fn runs at once with cancelled = true, so that
 * it frees arg. Returns what the handler returns.
 */
enum MHD_Result http_defer(struct request *rq, enum http_lane lane, http_work_fn fn, void *arg);

/*
 * From deferred work (fn of http_defer, not cancelled): the answer will be
 * made later by another thread, which then calls http_detached_done. fn
 * returns without answering and must not touch rq after handing it on.
 */
void http_detach(struct request *rq);

/*
 * From a handler, for work that needs no lane (nothing to load, fetch or
 * decode) and that another thread will answer: suspends the connection,
 * counted as deferred (shutdown drains it), and returns true; hand rq on
 * right after: that thread answers and calls http_detached_done, and the
 * handler returns MHD_YES and touches rq no more. false once shutdown has
 * begun (nothing suspended: answer, e.g. through http_defer's 503).
 */
bool http_suspend(struct request *rq);

/* The detached request has its answer (http_json, http_error...): sends
 * it (the connection resumes). rq is the HTTP thread's again after this. */
void http_detached_done(struct request *rq);

/* Raised when shutdown begins: deferred work polls it (NULL: no lane). */
const atomic_bool *http_cancel_flag(const struct request *rq);

/* Copies path segment i (a {name} of the route) into buf; false if absent
 * or longer than len - 1. */
bool http_seg(struct request *rq, int i, char *buf, size_t len);

/* A query argument or NULL. */
const char *http_query(struct request *rq, const char *key);

/*
 * Integer query argument in [min, max]; *out = def when absent. On a bad
 * value answers 400 naming the parameter and returns false (the handler
 * then returns *answered).
 */
bool http_query_long(struct request *rq, const char *key, long min, long max,
		     long def, long *out, enum MHD_Result *answered);

#endif

/*
 * server/urlfetch.h — fetching one image by URL with libcurl, within
 * bounds: http and https only (redirects too), at most max_redirects
 * redirects, max_bytes of body (refused from Content-Length, else aborted
 * in the write callback), timeout_s for the whole transfer, an image
 * content type, no proxy from the environment, and every connection's
 * resolved address checked by urlguard_addr_allowed unless allow_private
 * (or it is one of the exact addresses of urlfetch_allow_addrs).
 * urlfetch_many runs several at once and can be cancelled.
 * Thread-safe: each call has its own handles.
 */
#ifndef ISIFD_URLFETCH_H
#define ISIFD_URLFETCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "isif/base/common.h"

struct fetch_limits {
	size_t max_bytes;
	long timeout_s;
	long max_redirects;
	bool allow_private;
	int max_transfers;   /* urlfetch_many: in flight in the whole process (0: no bound) */
};

#define FETCH_MAX_URL 2048

/* Checks the URL's form without fetching: http:// or https:// (any case),
 * a host, at most FETCH_MAX_URL bytes, no control characters or spaces.
 * ISIF_OK, or ISIF_EINVAL with err saying what is wrong. */
enum isif_rc urlfetch_url_check(const char *url, struct isif_error *err);

/*
 * Sets the process-wide exact-address exceptions to the guard
 * (--allow-url-addr: a comma-separated list, see urlguard_exceptions_parse;
 * "" clears it). Call it before any fetch runs (at start-up, single
 * threaded): fetches read the list without a lock. Returns ISIF_OK, or
 * ISIF_EINVAL with err, leaving the list empty.
 */
enum isif_rc urlfetch_allow_addrs(const char *list, struct isif_error *err);

/*
 * Fetches url into a malloc'd *body (*len bytes; the caller frees) and its
 * content type into ctype. On failure err says why in a line a client can
 * read, and the code says what kind of failure it was:
 *   ISIF_EINVAL      not an http(s) URL, too long, malformed
 *   ISIF_EFORBIDDEN  resolved to a refused address
 *   ISIF_ERANGE      body over max_bytes
 *   ISIF_EFORMAT     not an image content type
 *   ISIF_EIO         DNS, connection, TLS, timeout, HTTP status, redirects
 *   ISIF_ENOMEM      out of memory, or libcurl could not start
 */
enum isif_rc urlfetch(const char *url, const struct fetch_limits *lim, void **body,
		       size_t *len, char *ctype, size_t ctype_len, struct isif_error *err);

/* One URL's outcome in urlfetch_many: rc and err as urlfetch's (plus
 * ISIF_ECANCELLED); body malloc'd (the caller frees) when rc is ISIF_OK. */
struct fetch_result {
	enum isif_rc rc;
	struct isif_error err;
	void *body;
	size_t len;
	char ctype[128];
};

/*
 * Fetches the n URLs at once, each within lim, into out[n]: each as soon
 * as fewer than lim->max_transfers are in flight in the process (waiting
 * counts against lim->timeout_s). When *cancel (may be NULL) turns true,
 * the transfers still running or waiting stop within 100 ms and end with
 * ISIF_ECANCELLED. Returns ISIF_OK, or ISIF_ENOMEM
 * when libcurl could not start (every unfinished result says so).
 */
enum isif_rc urlfetch_many(const char *const *urls, int n, const struct fetch_limits *lim,
			   const atomic_bool *cancel, struct fetch_result *out);

/* Transfers in flight now, in the whole process (tests). */
int urlfetch_in_flight(void);

#endif

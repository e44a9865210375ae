/*
 * server/urlfetch.h — fetching one image by URL with libcurl, within
 * bounds: http and https only (redirects too), at most max_redirects
 * redirects, max_bytes of body (refused from Content-Length, else aborted
 * in the write callback), timeout_s for the whole transfer, an image
 * content type, no proxy from the environment, and every connection's
 * resolved address checked by urlguard_addr_allowed unless allow_private
 * (or it is one of the exact addresses of urlfetch_allow_addrs).
 * Thread-safe: each call has its own handle.
 */
#ifndef ISIFD_URLFETCH_H
#define ISIFD_URLFETCH_H

#include <stdbool.h>
#include <stddef.h>

enum fetch_rc {
	FETCH_OK = 0,
	FETCH_BAD_URL,     /* not an http(s) URL, too long, malformed: 400 */
	FETCH_FORBIDDEN,   /* resolved to a refused address: 403 */
	FETCH_TOO_LARGE,   /* body over max_bytes: 422 */
	FETCH_BAD_TYPE,    /* not an image content type: 422 */
	FETCH_FAILED,      /* DNS, connection, TLS, timeout, HTTP status, redirects: 422 */
	FETCH_NOMEM,       /* 500 */
};

struct fetch_limits {
	size_t max_bytes;
	long timeout_s;
	long max_redirects;
	bool allow_private;
};

#define FETCH_MAX_URL 2048

/* Checks the URL's form without fetching: http:// or https:// (any case),
 * a host, at most FETCH_MAX_URL bytes, no control characters or spaces. */
bool urlfetch_url_ok(const char *url, char *err, size_t errlen);

/*
 * Sets the process-wide exact-address exceptions to the guard
 * (--allow-url-addr: a comma-separated list, see urlguard_exceptions_parse;
 * "" clears it). Call it before any fetch runs (at start-up, single
 * threaded): fetches read the list without a lock. Returns 0, or -1 with
 * err, leaving the list empty.
 */
int urlfetch_allow_addrs(const char *list, char *err, size_t errlen);

/*
 * Fetches url into a malloc'd *body (*len bytes; the caller frees) and its
 * content type into ctype. On failure err says why in a line a client can
 * read.
 */
enum fetch_rc urlfetch(const char *url, const struct fetch_limits *lim, void **body,
		       size_t *len, char *ctype, size_t ctype_len, char *err, size_t errlen);

#endif

/*
 * server/urlfetch.c — one bounded image download with libcurl (see
 * urlfetch.h). The address check lives in the open-socket callback, which
 * libcurl calls with the resolved address of every connection it makes
 * (each address of a name, each redirect), so what is checked is what is
 * connected to: DNS answers that change between lookups (rebinding) and
 * redirects to internal hosts meet the same check. Proxies are switched
 * off, since through a proxy the callback would only see the proxy.
 * --allow-url-addr's exact addresses pass the same callback.
 *
 * Transfers run on libcurl's multi interface: urlfetch_many drives every
 * URL of a request at once from the calling thread, polling its cancel
 * flag between waits of at most FETCH_POLL_MS, so a shutdown ends them
 * within that time instead of after --url-timeout. A process-wide count
 * bounds the transfers in flight (lim->max_transfers, --max-fetches), and
 * with it the memory their bodies take: a transfer waits for a slot, and
 * the wait counts against its timeout.
 */
#include "urlfetch.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "isif/base/clock.h"
#include "urlguard.h"

#define FETCH_POLL_MS 100

struct fetch_ctx {
	const struct fetch_limits *lim;
	CURL *h;
	char *buf;
	size_t len, cap;
	bool checked;                 /* status and type looked at (first body bytes) */
	bool too_large, bad_type, bad_status, refused;
	char refused_addr[64];
};

/* --allow-url-addr: set once at start-up, read-only while fetches run. */
static struct urlguard_exceptions allowed_exactly;

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;

static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

enum isif_rc urlfetch_allow_addrs(const char *list, struct isif_error *err)
{
	return urlguard_exceptions_parse(&allowed_exactly, list, err);
}

enum isif_rc urlfetch_url_check(const char *url, struct isif_error *err)
{
	size_t n = strlen(url), skip;
	if (strncasecmp(url, "http://", 7) == 0)
		skip = 7;
	else if (strncasecmp(url, "https://", 8) == 0)
		skip = 8;
	else
		return isif_fail(err, ISIF_EINVAL, "only http:// and https:// URLs can be fetched");
	if (n > FETCH_MAX_URL)
		return isif_fail(err, ISIF_EINVAL, "URL longer than %d bytes", FETCH_MAX_URL);
	if (!url[skip] || url[skip] == '/' || url[skip] == '?' || url[skip] == '#')
		return isif_fail(err, ISIF_EINVAL, "URL without a host");
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)url[i] <= 0x20 || url[i] == 0x7f)
			return isif_fail(err, ISIF_EINVAL, "URL with a space or control character");
	return ISIF_OK;
}

static curl_socket_t open_socket(void *user, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct fetch_ctx *x = user;
	if (purpose != CURLSOCKTYPE_IPCXN)
		return CURL_SOCKET_BAD;
	if (!x->lim->allow_private && !urlguard_addr_permitted(&a->addr, &allowed_exactly)) {
		x->refused = true;
		urlguard_addr_text(&a->addr, x->refused_addr, sizeof x->refused_addr);
		return CURL_SOCKET_BAD;
	}
	return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

static bool image_type(const char *ct)
{
	static const char *const ok[] = {"image/png", "image/jpeg", "image/jpg", "image/pjpeg"};
	if (!ct)
		return false;
	size_t n = strcspn(ct, "; \t");
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
		if (strlen(ok[i]) == n && strncasecmp(ct, ok[i], n) == 0)
			return true;
	return false;
}

/* Looks at the final response's status and type before keeping any byte. */
static bool response_ok(struct fetch_ctx *x)
{
	long status = 0;
	char *ct = NULL;
	curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(x->h, CURLINFO_CONTENT_TYPE, &ct);
	if (status < 200 || status > 299)
		x->bad_status = true;
	else if (!image_type(ct))
		x->bad_type = true;
	x->checked = true;
	return !x->bad_status && !x->bad_type;
}

static size_t on_data(char *data, size_t size, size_t nmemb, void *user)
{
	struct fetch_ctx *x = user;
	size_t n = size * nmemb;
	long status = 0;
	curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &status);
	if (status >= 300 && status < 400)
		return n;                 /* the body of a redirect being followed */
	if (!x->checked && !response_ok(x))
		return 0;
	if (n > x->lim->max_bytes - x->len) {
		x->too_large = true;
		return 0;                 /* aborts the transfer: CURLE_WRITE_ERROR */
	}
	if (x->len + n > x->cap) {
		size_t cap = x->cap ? x->cap : 64 << 10;
		while (cap < x->len + n)
			cap *= 2;
		if (cap > x->lim->max_bytes)
			cap = x->lim->max_bytes;
		char *p = realloc(x->buf, cap);
		if (!p)
			return 0;
		x->buf = p;
		x->cap = cap;
	}
	memcpy(x->buf + x->len, data, n);
	x->len += n;
	return n;
}

static void setup(struct fetch_ctx *x, const char *url, char *errbuf)
{
	const struct fetch_limits *lim = x->lim;
	CURL *h = x->h;
	curl_easy_setopt(h, CURLOPT_URL, url);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
	curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(h, CURLOPT_MAXREDIRS, lim->max_redirects);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, lim->timeout_s * 1000L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PROXY, "");          /* no proxy, whatever the environment */
	curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)lim->max_bytes);
	curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, open_socket);
	curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, x);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "isifd/0.1");
	curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, NULL); /* no decompression: bytes are bytes */
}

/* Maps the transfer's outcome to an isif_rc (see urlfetch) and a message. */
static enum isif_rc outcome(struct fetch_ctx *x, CURLcode cc, const char *errbuf,
			    struct isif_error *err)
{
	const struct fetch_limits *lim = x->lim;
	long status = 0;
	char *ct = NULL;
	curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(x->h, CURLINFO_CONTENT_TYPE, &ct);
	if (cc == CURLE_OK && !x->checked)
		response_ok(x);           /* an empty body never reached on_data */
	if (x->refused && cc != CURLE_OK)
		return isif_fail(err, ISIF_EFORBIDDEN, "refused to connect to %s: not a public "
				 "address (isifd runs without --allow-private-urls)", x->refused_addr);
	if (x->too_large || cc == CURLE_FILESIZE_EXCEEDED)
		return isif_fail(err, ISIF_ERANGE, "the image at the URL is larger than %zu bytes",
				 lim->max_bytes);
	if (x->bad_status)
		return isif_fail(err, ISIF_EIO, "the URL answered HTTP %ld", status);
	if (x->bad_type)
		return isif_fail(err, ISIF_EFORMAT, "the URL's content type is %s, not image/png or "
				 "image/jpeg", ct ? ct : "missing");
	switch (cc) {
	case CURLE_OK:
		return ISIF_OK;
	case CURLE_URL_MALFORMAT:
		return isif_fail(err, ISIF_EINVAL, "malformed URL");
	case CURLE_TOO_MANY_REDIRECTS:
		return isif_fail(err, ISIF_EIO, "more than %ld redirects", lim->max_redirects);
	case CURLE_OPERATION_TIMEDOUT:
		return isif_fail(err, ISIF_EIO, "timed out after %ld s", lim->timeout_s);
	case CURLE_UNSUPPORTED_PROTOCOL:
		return isif_fail(err, ISIF_EIO, "redirected to a URL that is not http(s)");
	case CURLE_WRITE_ERROR:
	case CURLE_OUT_OF_MEMORY:
		return isif_fail(err, ISIF_ENOMEM, "out of memory");
	default:
		return isif_fail(err, ISIF_EIO, "fetching the URL failed: %s", errbuf[0] ? errbuf :
				 curl_easy_strerror(cc));
	}
}

/* Moves a finished transfer's outcome into its result. */
static void finish(struct fetch_ctx *x, CURLcode cc, const char *errbuf, struct fetch_result *r)
{
	r->rc = outcome(x, cc, errbuf, &r->err);
	if (r->rc == ISIF_OK) {
		char *ct = NULL;
		curl_easy_getinfo(x->h, CURLINFO_CONTENT_TYPE, &ct);
		snprintf(r->ctype, sizeof r->ctype, "%s", ct ? ct : "");
		r->body = x->buf;
		r->len = x->len;
		x->buf = NULL;
	}
}

/* One transfer of urlfetch_many: waiting for a slot, added (holding
 * one), then done. */
struct transfer {
	struct fetch_ctx x;
	char errbuf[CURL_ERROR_SIZE];
	bool added, done;
};

/* Transfers in flight in the whole process. */
static atomic_int in_flight;

static bool slot_take(int max)
{
	if (max <= 0)
		return true;
	int n = atomic_load(&in_flight);
	while (n < max)
		if (atomic_compare_exchange_weak(&in_flight, &n, n + 1))
			return true;
	return false;
}

static void slot_give(int max)
{
	if (max > 0)
		atomic_fetch_sub(&in_flight, 1);
}

int urlfetch_in_flight(void)
{
	return atomic_load(&in_flight);
}

/* Adds the transfers that get a slot; fails those that waited past the
 * timeout. Returns how many ended here. */
static int start_waiting(CURLM *m, struct transfer *t, int n, struct fetch_result *out,
			 double waited)
{
	int ended = 0;
	for (int i = 0; i < n; i++) {
		if (t[i].done || t[i].added)
			continue;
		const struct fetch_limits *lim = t[i].x.lim;
		if (waited > (double)lim->timeout_s) {
			out[i].rc = isif_fail(&out[i].err, ISIF_EIO, "timed out after %ld s waiting "
					      "for one of the --max-fetches transfers", lim->timeout_s);
			t[i].done = true;
			ended++;
		} else if (slot_take(lim->max_transfers)) {
			if (curl_multi_add_handle(m, t[i].x.h) == CURLM_OK) {
				t[i].added = true;
			} else {
				slot_give(lim->max_transfers);
				out[i].rc = isif_fail(&out[i].err, ISIF_ENOMEM, "libcurl could not start");
				t[i].done = true;
				ended++;
			}
		}
	}
	return ended;
}

/* Runs the transfers until all are done or *cancel turns true. */
static void run_multi(CURLM *m, struct transfer *t, int n, struct fetch_result *out,
		      const atomic_bool *cancel)
{
	int running = 1, left = 0;
	double t0 = isif_now_s();
	for (int i = 0; i < n; i++)
		left += !t[i].done;
	while (left > 0) {
		if (cancel && atomic_load(cancel))
			return;
		left -= start_waiting(m, t, n, out, isif_now_s() - t0);
		if (curl_multi_perform(m, &running) != CURLM_OK)
			return;
		CURLMsg *msg;
		int queued;
		while ((msg = curl_multi_info_read(m, &queued))) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			for (int i = 0; i < n; i++)
				if (t[i].x.h == msg->easy_handle && !t[i].done) {
					finish(&t[i].x, msg->data.result, t[i].errbuf, &out[i]);
					t[i].done = true;
					left--;
				}
		}
		if (left > 0 && curl_multi_poll(m, NULL, 0, FETCH_POLL_MS, NULL) != CURLM_OK)
			return;
	}
}

enum isif_rc urlfetch_many(const char *const *urls, int n, const struct fetch_limits *lim,
			   const atomic_bool *cancel, struct fetch_result *out)
{
	enum isif_rc rc = ISIF_OK;
	struct transfer *t = calloc((size_t)(n > 0 ? n : 1), sizeof *t);
	CURLM *m = NULL;
	for (int i = 0; i < n; i++)
		out[i] = (struct fetch_result){.rc = ISIF_OK};
	pthread_once(&curl_once, curl_init);
	if (!t || curl_init_rc != CURLE_OK || !(m = curl_multi_init())) {
		rc = ISIF_ENOMEM;
		goto out;
	}
	for (int i = 0; i < n; i++) {
		t[i].x.lim = lim;
		enum isif_rc check = urlfetch_url_check(urls[i], &out[i].err);
		if (check) {
			out[i].rc = check;
			t[i].done = true;
			continue;
		}
		if (!(t[i].x.h = curl_easy_init())) {
			rc = ISIF_ENOMEM;
			goto out;
		}
		setup(&t[i].x, urls[i], t[i].errbuf);
	}
	run_multi(m, t, n, out, cancel);
out:
	for (int i = 0; t && i < n; i++) {
		if (t[i].added) {
			curl_multi_remove_handle(m, t[i].x.h);
			slot_give(lim->max_transfers);
		}
		if (t[i].x.h)
			curl_easy_cleanup(t[i].x.h);
		free(t[i].x.buf);
	}
	if (m)
		curl_multi_cleanup(m);
	for (int i = 0; i < n; i++) {
		if (t && t[i].done)
			continue;
		if (rc)
			out[i].rc = isif_fail(&out[i].err, ISIF_ENOMEM, "libcurl could not start");
		else if (cancel && atomic_load(cancel))
			out[i].rc = isif_fail(&out[i].err, ISIF_ECANCELLED,
					      "fetch cancelled: isifd is shutting down");
		else
			out[i].rc = isif_fail(&out[i].err, ISIF_EIO, "fetching the URL failed: "
					      "the transfer was interrupted");
	}
	free(t);
	return rc;
}

enum isif_rc urlfetch(const char *url, const struct fetch_limits *lim, void **body,
		       size_t *len, char *ctype, size_t ctype_len, struct isif_error *err)
{
	struct fetch_result r;
	urlfetch_many(&url, 1, lim, NULL, &r);
	*body = r.body;
	*len = r.len;
	if (ctype_len)
		snprintf(ctype, ctype_len, "%s", r.ctype);
	if (r.rc)
		isif_fail(err, r.rc, "%s", r.err.msg);
	return r.rc;
}

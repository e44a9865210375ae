/*
 * tests/server/test_blocking.c — the parts that keep one client's request
 * at a bounded cost and off the HTTP threads: the work pool (bounded queue,
 * cancellation that answers what waits at once), URL fetches run together
 * and stopped by the cancel flag long before --url-timeout, the multipart
 * parser (one part, everything malformed refused), the dataset cache keyed
 * by what it loads (three names over one directory load it once) and
 * --dataset-root (one refusal for every way out of a root).
 */
#include "../unit/check.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dscache.h"
#include "isif/base/clock.h"
#include "migrations.h"
#include "multipart.h"
#include "store_retrieval.h"
#include "urlfetch.h"
#include "workpool.h"

/* ---- the work pool ------------------------------------------------------------- */

struct gate {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool open;
	int ran, cancelled;
};

static void gated(void *arg, bool cancelled)
{
	struct gate *g = arg;
	pthread_mutex_lock(&g->mu);
	if (cancelled) {
		g->cancelled++;
	} else {
		while (!g->open)
			pthread_cond_wait(&g->cv, &g->mu);
		g->ran++;
	}
	pthread_mutex_unlock(&g->mu);
}

static void wait_running(struct workpool *p, int want)
{
	int queued, running;
	for (int i = 0; i < 500; i++) {
		workpool_load(p, &queued, &running);
		if (running == want)
			return;
		usleep(2000);
	}
	CHECK_MSG(0, "%d running, want %d", running, want);
}

/* Two threads and two waiting places: a fifth item is refused before
 * anything is committed; cancelling answers the waiting ones at once,
 * on the cancelling thread, while the running ones finish normally. */
TEST(srv_workpool_bounded_queue_and_cancel)
{
	struct isif_error err = {0};
	struct gate g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, 0, 0};
	struct workpool *p = workpool_create("test", 2, 2, &err);
	CHECK_MSG(p != NULL, "%s", err.msg);
	if (!p)
		return;
	for (int i = 0; i < 4; i++) {
		CHECK_EQ(workpool_reserve(p), ISIF_OK);
		workpool_submit(p, gated, &g);
	}
	wait_running(p, 2);
	CHECK_EQ(workpool_reserve(p), ISIF_EBUSY);
	CHECK(!atomic_load(workpool_cancel_flag(p)));
	workpool_cancel(p);
	CHECK(atomic_load(workpool_cancel_flag(p)));
	CHECK_EQ(g.cancelled, 2);   /* the two waiting, without a thread */
	CHECK_EQ(workpool_reserve(p), ISIF_ECANCELLED);
	pthread_mutex_lock(&g.mu);
	g.open = true;
	pthread_cond_broadcast(&g.cv);
	pthread_mutex_unlock(&g.mu);
	workpool_free(p);
	CHECK_EQ(g.ran, 2);
}

/* ---- URL fetches ---------------------------------------------------------------- */

/* A listening socket that never accepts: connections complete in the
 * kernel's backlog and no answer ever comes. */
static int silent_server(int *port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof a;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 16) != 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	*port = ntohs(a.sin_port);
	return fd;
}

struct canceller {
	atomic_bool flag;
	double after_s;
};

static void *cancel_later(void *arg)
{
	struct canceller *c = arg;
	usleep((useconds_t)(c->after_s * 1e6));
	atomic_store(&c->flag, true);
	return NULL;
}

/* Eight URLs that never answer, with a 20 s timeout: the cancel flag ends
 * them all together within a few hundred milliseconds of being raised. */
TEST(srv_urlfetch_many_stops_when_cancelled)
{
	int port, fd = silent_server(&port);
	CHECK(fd >= 0);
	if (fd < 0)
		return;
	char text[8][64];
	const char *urls[8];
	for (int i = 0; i < 8; i++) {
		snprintf(text[i], sizeof text[i], "http://127.0.0.1:%d/slow%d.png", port, i);
		urls[i] = text[i];
	}
	struct fetch_limits lim = {.max_bytes = 1 << 20, .timeout_s = 20, .max_redirects = 0,
				   .allow_private = true};
	struct fetch_result out[8];
	struct canceller c = {.after_s = 0.3};
	atomic_init(&c.flag, false);
	pthread_t t;
	pthread_create(&t, NULL, cancel_later, &c);
	double t0 = isif_now_s();
	CHECK_EQ(urlfetch_many(urls, 8, &lim, &c.flag, out), ISIF_OK);
	double dt = isif_now_s() - t0;
	pthread_join(t, NULL);
	CHECK_MSG(dt >= 0.25 && dt < 1.5, "%.2f s", dt);
	for (int i = 0; i < 8; i++) {
		CHECK_MSG(out[i].rc == ISIF_ECANCELLED, "%d: rc %d %s", i, out[i].rc, out[i].err.msg);
		CHECK(out[i].body == NULL);
	}
	/* and without a flag, the same URLs time out together, not in turn */
	lim.timeout_s = 1;
	t0 = isif_now_s();
	CHECK_EQ(urlfetch_many(urls, 8, &lim, NULL, out), ISIF_OK);
	dt = isif_now_s() - t0;
	CHECK_MSG(dt < 3.0, "%.2f s for 8 timeouts of 1 s", dt);
	for (int i = 0; i < 8; i++)
		CHECK_MSG(out[i].rc == ISIF_EIO && strstr(out[i].err.msg, "timed out"), "%d: %s", i,
			  out[i].err.msg);
	close(fd);
}

/* A server that accepts and holds connections, counting them. */
struct holder {
	int fd;
	atomic_int accepted;
	atomic_bool stop;
	int held[64];
};

static void *hold_main(void *arg)
{
	struct holder *h = arg;
	while (!atomic_load(&h->stop)) {
		int c = accept(h->fd, NULL, NULL);
		if (c < 0)
			break;
		int n = atomic_fetch_add(&h->accepted, 1);
		if (n < 64)
			h->held[n] = c;
		else
			close(c);
	}
	return NULL;
}

/* --max-fetches 2: of 8 URLs that never answer, 2 are connected at a time
 * (the others wait for a slot), and every slot is given back. */
TEST(srv_urlfetch_many_bounded_in_flight)
{
	struct holder h = {0};
	int port;
	h.fd = silent_server(&port);
	CHECK(h.fd >= 0);
	if (h.fd < 0)
		return;
	pthread_t t;
	pthread_create(&t, NULL, hold_main, &h);
	char text[8][64];
	const char *urls[8];
	for (int i = 0; i < 8; i++) {
		snprintf(text[i], sizeof text[i], "http://127.0.0.1:%d/held%d.png", port, i);
		urls[i] = text[i];
	}
	struct fetch_limits lim = {.max_bytes = 1 << 20, .timeout_s = 1, .max_redirects = 0,
				   .allow_private = true, .max_transfers = 2};
	struct fetch_result out[8];
	CHECK_EQ(urlfetch_many(urls, 8, &lim, NULL, out), ISIF_OK);
	int waited = 0;
	for (int i = 0; i < 8; i++) {
		CHECK_MSG(out[i].rc == ISIF_EIO, "%d: %s", i, out[i].err.msg);
		waited += strstr(out[i].err.msg, "--max-fetches") != NULL;
	}
	CHECK_EQ(atomic_load(&h.accepted), 2);
	CHECK_EQ(waited, 6);
	CHECK_EQ(urlfetch_in_flight(), 0);
	atomic_store(&h.stop, true);
	shutdown(h.fd, SHUT_RDWR);
	close(h.fd);
	pthread_join(t, NULL);
	for (int i = 0; i < atomic_load(&h.accepted) && i < 64; i++)
		close(h.held[i]);
}

/* ---- multipart ------------------------------------------------------------------ */

static enum isif_rc part_of(const char *ct, const char *body, size_t max, const char **p,
			    size_t *n, struct isif_error *err)
{
	return multipart_one_part(ct, body, strlen(body), max, p, n, err);
}

TEST(srv_multipart_one_part)
{
	const char *ct = "multipart/form-data; boundary=----abc";
	const char *p;
	size_t n;
	struct isif_error err = {0};
	CHECK(multipart_is_form(ct) && multipart_is_form("Multipart/Form-Data") &&
	      !multipart_is_form("multipart/mixed; boundary=x") && !multipart_is_form(NULL));
	/* as curl -F writes it, with a preamble and an epilogue */
	const char *ok = "preamble\r\n------abc\r\nContent-Disposition: form-data; name=\"image\"; "
			 "filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\nPNG\r\n--DATA"
			 "\r\n------abc--\r\nepilogue";
	CHECK_MSG(part_of(ct, ok, 100, &p, &n, &err) == ISIF_OK, "%s", err.msg);
	CHECK(n == 11 && memcmp(p, "PNG\r\n--DATA", 11) == 0);
	/* quoted boundary, no headers in the part, empty content */
	CHECK_EQ(part_of("multipart/form-data; boundary=\"q r\"", "--q r\r\n\r\nX\r\n--q r--", 100,
			 &p, &n, &err), ISIF_OK);
	CHECK(n == 1 && *p == 'X');
	CHECK_EQ(part_of(ct, "------abc\r\nA: b\r\n\r\n\r\n------abc--", 100, &p, &n, &err), ISIF_OK);
	CHECK_EQ(n, 0);
	/* the limit is on the part, not the body */
	CHECK_EQ(part_of(ct, ok, 10, &p, &n, &err), ISIF_ERANGE);
	CHECK_EQ(part_of(ct, ok, 11, &p, &n, &err), ISIF_OK);
}

TEST(srv_multipart_malformed_refused)
{
	static const struct {
		const char *ct, *body, *why;
	} bad[] = {
		{"multipart/form-data", "--x\r\n\r\nA\r\n--x--", "no valid boundary"},
		{"multipart/form-data; boundary=", "--\r\n\r\nA\r\n----", "no valid boundary"},
		{"multipart/form-data; boundary=\"x", "--x\r\n\r\nA\r\n--x--", "no valid boundary"},
		{"multipart/form-data; boundary=x", "no delimiter at all", "no boundary line"},
		{"multipart/form-data; boundary=x", "--x\r\nA: b\r\n\r\nPNG...", "truncated"},
		{"multipart/form-data; boundary=x", "--x\r\nA: b", "truncated in a part's headers"},
		{"multipart/form-data; boundary=x", "--x", "malformed boundary line"},
		{"multipart/form-data; boundary=x", "--xjunk\r\n\r\nA\r\n--x--", "malformed"},
		{"multipart/form-data; boundary=x", "--x--", "no part"},
		{"multipart/form-data; boundary=x", "--x\r\n\r\nA\r\n--x\r\n\r\nB\r\n--x--",
		 "more than one part"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		const char *p;
		size_t n;
		struct isif_error err = {0};
		enum isif_rc rc = part_of(bad[i].ct, bad[i].body, 100, &p, &n, &err);
		CHECK_MSG(rc == ISIF_EINVAL && strstr(err.msg, bad[i].why), "%zu: rc %d: %s", i, rc,
			  err.msg);
	}
	/* a boundary over 70 characters, and part headers over the bound */
	char ct[128], *body = malloc(MULTIPART_MAX_HEADERS + 64);
	snprintf(ct, sizeof ct, "multipart/form-data; boundary=%071d", 0);
	const char *p;
	size_t n;
	struct isif_error err = {0};
	CHECK_EQ(part_of(ct, "x", 100, &p, &n, &err), ISIF_EINVAL);
	strcpy(body, "--x\r\nA: ");
	memset(body + 8, 'a', MULTIPART_MAX_HEADERS);
	strcpy(body + 8 + MULTIPART_MAX_HEADERS, "\r\n\r\nA\r\n--x--");
	CHECK_EQ(part_of("multipart/form-data; boundary=x", body, 100, &p, &n, &err), ISIF_EINVAL);
	CHECK_MSG(strstr(err.msg, "headers longer") != NULL, "%s", err.msg);
	free(body);
}

/* ---- the dataset cache ---------------------------------------------------------- */

static void write_be32(FILE *f, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
	fwrite(b, 1, 4, f);
}

/* An IDX dataset of n 4x4 images per split in dir. */
static void write_idx(const char *dir, int n)
{
	static const char *const files[4] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
					     "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
	char path[1024];
	mkdir(dir, 0750);
	for (int k = 0; k < 4; k++) {
		snprintf(path, sizeof path, "%s/%s", dir, files[k]);
		FILE *f = fopen(path, "wb");
		if (!f)
			continue;
		bool images = k % 2 == 0;
		write_be32(f, images ? 2051 : 2049);
		write_be32(f, (uint32_t)n);
		if (images) {
			write_be32(f, 4);
			write_be32(f, 4);
		}
		for (int i = 0; i < n * (images ? 16 : 1); i++)
			fputc(images ? (i * 37) & 255 : i % 3, f);
		fclose(f);
	}
}

/* Three names over one directory (one spelled through a symlink), with
 * room for two datasets: every thumbnail of any of them uses one copy
 * (it was one load per name, and a reload at every turn). */
TEST(srv_dscache_one_copy_per_directory)
{
	char dir[600], idx[700], link_path[700], db[700];
	struct isif_error err = {0};
	snprintf(dir, sizeof dir, "%s/dscache", test_tmpdir());
	mkdir(dir, 0750);
	snprintf(idx, sizeof idx, "%s/idx", dir);
	write_idx(idx, 6);
	snprintf(link_path, sizeof link_path, "%s/link", dir);
	CHECK(symlink(idx, link_path) == 0);
	snprintf(db, sizeof db, "%s/isifd.db", dir);
	struct store *st = NULL;
	CHECK_MSG(store_open(&st, db, isifd_migrations, isifd_n_migrations, &err) == ISIF_OK, "%s",
		  err.msg);
	if (!st)
		return;
	struct dataset_info none = {-1, -1, -1, -1, -1, -1, NULL, NULL, 0};
	CHECK_EQ(store_dataset_insert(st, "a", "idx", idx, &none, NULL), ISIF_OK);
	CHECK_EQ(store_dataset_insert(st, "b", "idx", idx, &none, NULL), ISIF_OK);
	CHECK_EQ(store_dataset_insert(st, "c", "idx", link_path, &none, NULL), ISIF_OK);
	struct dscache *dc = dscache_create(st, 2);
	struct dscache_entry *e;
	const struct isif_dataset *ds;
	CHECK_EQ(dscache_peek(dc, "a", &e, &ds, &err), ISIF_EEMPTY);
	CHECK_EQ(dscache_peek(dc, "nope", &e, &ds, &err), ISIF_ENOTFOUND);
	const char *names[3] = {"a", "b", "c"};
	for (int i = 0; i < 30; i++) {
		CHECK_MSG(dscache_acquire(dc, names[i % 3], &e, &ds, &err) == ISIF_OK, "%s", err.msg);
		CHECK(ds->train.n == 6 && ds->train.h == 4);
		dscache_release(dc, e);
		CHECK_EQ(dscache_peek(dc, names[(i + 1) % 3], &e, &ds, &err), ISIF_OK);
		dscache_release(dc, e);
	}
	CHECK_EQ(dscache_loads(dc), 1);
	/* the load recorded the shape and the normalization (of the name that loaded it) */
	json_t *d = NULL;
	CHECK_EQ(store_dataset_json(st, "a", &d, NULL), ISIF_OK);
	CHECK(json_integer_value(json_object_get(d, "height")) == 4 &&
	      strstr(json_string_value(json_object_get(d, "normalization")), "\"mean\":[") != NULL);
	json_decref(d);
	dscache_free(dc);
	store_close(st);
}

/* ---- --dataset-root ------------------------------------------------------------- */

TEST(srv_dataset_roots_one_refusal)
{
	char base[600], roots[1400], p[1400], real[4096], first[512] = "";
	snprintf(base, sizeof base, "%s/roots", test_tmpdir());
	const char *dirs[] = {"", "/r1", "/r1/data", "/r2", "/out", "/r1/data/sub"};
	for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
		snprintf(p, sizeof p, "%s%s", base, dirs[i]);
		mkdir(p, 0750);
	}
	snprintf(p, sizeof p, "%s/r1/file", base);
	fclose(fopen(p, "w"));
	char target[700];
	snprintf(target, sizeof target, "%s/out", base);
	snprintf(p, sizeof p, "%s/r1/escape", base);
	CHECK(symlink(target, p) == 0);
	snprintf(target, sizeof target, "%s/r2", base);
	snprintf(p, sizeof p, "%s/r1/to-r2", base);
	CHECK(symlink(target, p) == 0);
	snprintf(roots, sizeof roots, "%s/r1,%s/r2/", base, base);

	static const char *const ok[] = {"/r1", "/r1/data", "/r1/data/sub/..", "/r1/to-r2", "/r2",
					 "/r1/./data/"};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		struct isif_error err = {0};
		snprintf(p, sizeof p, "%s%s", base, ok[i]);
		CHECK_MSG(dscache_resolve_in_roots(roots, p, real, sizeof real, &err) == ISIF_OK,
			  "%s: %s", ok[i], err.msg);
		CHECK(strstr(real, "/./") == NULL && strstr(real, "/..") == NULL);
	}
	struct isif_error e0 = {0};
	snprintf(p, sizeof p, "%s/r1/to-r2", base);
	dscache_resolve_in_roots(roots, p, real, sizeof real, &e0);
	CHECK(strcmp(real + strlen(real) - 3, "/r2") == 0);   /* resolved */

	static const char *const refused[] = {"/out", "/r1/escape", "/r1/escape/", "/r1/../out",
					      "/r1/data/../../out", "/r1/nope", "/nope/x", "/r1/file",
					      "/r1x", ""};
	for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
		struct isif_error err = {0};
		snprintf(p, sizeof p, "%s%s", base, refused[i]);
		CHECK_MSG(dscache_resolve_in_roots(roots, p, real, sizeof real, &err) ==
			  ISIF_EFORBIDDEN, "%s accepted", refused[i]);
		if (!first[0])
			snprintf(first, sizeof first, "%s", err.msg);
		CHECK_MSG(strcmp(err.msg, first) == 0, "%s: a different message: %s", refused[i],
			  err.msg);
		CHECK(strstr(err.msg, base) == NULL);
	}
	struct isif_error err = {0};
	CHECK_EQ(dscache_resolve_in_roots(roots, "relative/r1", real, sizeof real, &err),
		 ISIF_EFORBIDDEN);
	CHECK_EQ(dscache_resolve_in_roots("", base, real, sizeof real, &err), ISIF_EFORBIDDEN);
	CHECK_EQ(dscache_resolve_in_roots(roots, "/", real, sizeof real, &err), ISIF_EFORBIDDEN);
}

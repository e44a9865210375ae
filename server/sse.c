/*
 * server/sse.c — the event bus behind GET /jobs/{id}/events (see sse.h).
 *
 * Wire format (text/event-stream), one frame per event:
 *     id: 42\nevent: epoch\ndata: {"job": 7, ...}\n\n
 * and ": keepalive\n\n" comments on idle streams. A stream ends after its
 * job's final state event, or after an "event: shutdown" when the daemon
 * stops.
 *
 * libmicrohttpd pulls a stream's bytes through stream_read(). When the
 * queue is empty the reader suspends the connection and returns 0 (the
 * pattern microhttpd.h prescribes; returning 0 without suspending would
 * spin); sse_publish() and sse_tick() resume it. Lock order: libmicrohttpd's
 * response mutex (held around stream_read) → bus->mu → libmicrohttpd's
 * connection-cleanup mutex (taken by suspend and resume).
 */
#include "sse.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "isif/base/clock.h"
#include "log.h"

#define SSE_MAX_QUEUED 256          /* events waiting on one stream */
#define SSE_MAX_QUEUED_BYTES (1 << 20)

struct sse_event {
	struct sse_event *next;
	size_t len, sent;
	char text[];
};

struct sse_stream {
	struct sse_stream *next, *prev;
	struct sse_bus *bus;
	struct MHD_Connection *conn;
	int64_t job_id;
	struct sse_event *head, *tail;
	int queued;
	size_t queued_bytes;
	bool suspended;
	bool closing;       /* end after the queue drains */
	bool overflow;      /* a slow reader: end now */
	time_t last_write;
};

struct sse_bus {
	pthread_mutex_t mu;
	struct sse_stream *streams;
	long n_streams;
	uint64_t next_id;
	int keepalive_s;
	bool shut;
};

/* Whole seconds: keepalives are counted in whole seconds of the clock. */
static time_t now_s(void)
{
	return (time_t)isif_now_s();
}

struct sse_bus *sse_bus_create(int keepalive_s)
{
	struct sse_bus *bus = calloc(1, sizeof *bus);
	if (!bus)
		return NULL;
	pthread_mutex_init(&bus->mu, NULL);
	bus->keepalive_s = keepalive_s;
	bus->next_id = 1;
	return bus;
}

static void wake_locked(struct sse_stream *s)
{
	if (s->suspended) {
		s->suspended = false;
		MHD_resume_connection(s->conn);
	}
}

void sse_bus_free(struct sse_bus *bus)
{
	if (!bus)
		return;
	if (bus->streams)
		log_warn("sse: %ld streams still open at exit", bus->n_streams);
	pthread_mutex_destroy(&bus->mu);
	free(bus);
}

/* A frame for `type`/data (NULL data: a comment), malloc'd. */
static struct sse_event *make_event(struct sse_bus *bus, const char *type,
				    const json_t *data)
{
	char *json = data ? json_dumps(data, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;
	if (data && !json)
		return NULL;
	size_t cap = 64 + strlen(type) + (json ? strlen(json) : 0);
	struct sse_event *e = malloc(sizeof *e + cap);
	if (e) {
		int n = snprintf(e->text, cap, "id: %llu\nevent: %s\ndata: %s\n\n",
				 (unsigned long long)bus->next_id++, type, json ? json : "{}");
		e->len = (size_t)n;
		e->sent = 0;
		e->next = NULL;
	}
	free(json);
	return e;
}

static void enqueue_locked(struct sse_stream *s, struct sse_event *e, bool front)
{
	if (s->queued >= SSE_MAX_QUEUED || s->queued_bytes + e->len > SSE_MAX_QUEUED_BYTES) {
		s->overflow = true;
		free(e);
		return;
	}
	if (front) {
		e->next = s->head;
		s->head = e;
		if (!s->tail)
			s->tail = e;
	} else {
		if (s->tail)
			s->tail->next = e;
		else
			s->head = e;
		s->tail = e;
	}
	s->queued++;
	s->queued_bytes += e->len;
}

/* Queues the "shutdown" event on s and ends it after its queue drains, so
 * that a client can tell a daemon going away from a dropped connection. A
 * stream already ending (its job's final state is queued) just ends. */
static void end_for_shutdown_locked(struct sse_bus *bus, struct sse_stream *s)
{
	if (s->closing)
		return;
	json_t *o = json_pack("{s:s}", "message", "isifd is shutting down; the job is kept "
			      "and its events can be followed again once isifd is back");
	struct sse_event *e = o ? make_event(bus, "shutdown", o) : NULL;
	json_decref(o);
	if (e)
		enqueue_locked(s, e, false);
	else
		s->overflow = true;
	s->closing = true;
}

void sse_bus_shutdown(struct sse_bus *bus)
{
	pthread_mutex_lock(&bus->mu);
	bus->shut = true;
	for (struct sse_stream *s = bus->streams; s; s = s->next) {
		end_for_shutdown_locked(bus, s);
		wake_locked(s);
	}
	pthread_mutex_unlock(&bus->mu);
}

void sse_publish(struct sse_bus *bus, int64_t job_id, const char *type,
		 const json_t *data, bool final)
{
	pthread_mutex_lock(&bus->mu);
	for (struct sse_stream *s = bus->streams; s; s = s->next) {
		if (s->job_id != job_id || s->closing)
			continue;
		struct sse_event *e = make_event(bus, type, data);
		if (e)
			enqueue_locked(s, e, false);
		else
			s->overflow = true;
		if (final)
			s->closing = true;
		wake_locked(s);
	}
	pthread_mutex_unlock(&bus->mu);
}

void sse_tick(struct sse_bus *bus)
{
	time_t now = now_s();
	pthread_mutex_lock(&bus->mu);
	for (struct sse_stream *s = bus->streams; s; s = s->next)
		if (s->suspended && now - s->last_write >= bus->keepalive_s)
			wake_locked(s);
	pthread_mutex_unlock(&bus->mu);
}

long sse_stream_count(struct sse_bus *bus)
{
	pthread_mutex_lock(&bus->mu);
	long n = bus->n_streams;
	pthread_mutex_unlock(&bus->mu);
	return n;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct sse_stream *s = cls;
	struct sse_bus *bus = s->bus;
	ssize_t n = 0;
	(void)pos;
	pthread_mutex_lock(&bus->mu);
	if (s->overflow) {
		n = MHD_CONTENT_READER_END_WITH_ERROR;
	} else if (s->head) {
		struct sse_event *e = s->head;
		size_t k = e->len - e->sent < max ? e->len - e->sent : max;
		memcpy(buf, e->text + e->sent, k);
		e->sent += k;
		if (e->sent == e->len) {
			s->head = e->next;
			if (!s->head)
				s->tail = NULL;
			s->queued--;
			s->queued_bytes -= e->len;
			free(e);
		}
		s->last_write = now_s();
		n = (ssize_t)k;
	} else if (s->closing || bus->shut) {
		n = MHD_CONTENT_READER_END_OF_STREAM;
	} else if (now_s() - s->last_write >= bus->keepalive_s && max >= 16) {
		memcpy(buf, ": keepalive\n\n", 13);
		s->last_write = now_s();
		n = 13;
	} else {
		s->suspended = true;
		MHD_suspend_connection(s->conn);
	}
	pthread_mutex_unlock(&bus->mu);
	return n;
}

static void stream_free(void *cls)
{
	struct sse_stream *s = cls;
	struct sse_bus *bus = s->bus;
	pthread_mutex_lock(&bus->mu);
	if (s->prev)
		s->prev->next = s->next;
	else
		bus->streams = s->next;
	if (s->next)
		s->next->prev = s->prev;
	bus->n_streams--;
	pthread_mutex_unlock(&bus->mu);
	while (s->head) {
		struct sse_event *e = s->head;
		s->head = e->next;
		free(e);
	}
	free(s);
}

struct MHD_Response *sse_subscribe(struct sse_bus *bus, struct MHD_Connection *conn,
				   int64_t job_id, struct sse_stream **stream)
{
	struct sse_stream *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->bus = bus;
	s->conn = conn;
	s->job_id = job_id;
	s->last_write = now_s();
	struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096,
								   stream_read, s, stream_free);
	if (!r) {
		free(s);
		return NULL;
	}
	MHD_add_response_header(r, "Content-Type", "text/event-stream");
	MHD_add_response_header(r, "Cache-Control", "no-cache");
	MHD_add_response_header(r, "X-Accel-Buffering", "no");
	pthread_mutex_lock(&bus->mu);
	s->next = bus->streams;
	if (bus->streams)
		bus->streams->prev = s;
	bus->streams = s;
	bus->n_streams++;
	if (bus->shut)
		end_for_shutdown_locked(bus, s);
	pthread_mutex_unlock(&bus->mu);
	*stream = s;
	return r;
}

void sse_stream_first(struct sse_bus *bus, struct sse_stream *s, const char *type,
		      const json_t *data, bool final)
{
	pthread_mutex_lock(&bus->mu);
	struct sse_event *e = make_event(bus, type, data);
	if (e)
		enqueue_locked(s, e, true);
	else
		s->overflow = true;
	if (final)
		s->closing = true;
	wake_locked(s);
	pthread_mutex_unlock(&bus->mu);
}

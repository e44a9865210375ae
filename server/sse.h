/*
 * server/sse.h — Server-Sent Events for GET /jobs/{id}/events: a bus that
 * fans events of a job out to its subscribed HTTP streams. Each stream has
 * its own bounded queue; an idle stream's connection is suspended in
 * libmicrohttpd (no busy waiting) and resumed when an event arrives or a
 * keep-alive is due. A job's final state event ends its streams.
 * Thread-safe.
 */
#ifndef ISIFD_SSE_H
#define ISIFD_SSE_H

#include <jansson.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>

struct sse_bus;
struct sse_stream;

struct sse_bus *sse_bus_create(int keepalive_s);

/* Ends every stream with a "shutdown" event (their connections resume,
 * send what is queued and finish); later subscriptions get it at once.
 * Call before MHD_stop_daemon. */
void sse_bus_shutdown(struct sse_bus *bus);

/* Frees the bus; every stream must be gone (after MHD_stop_daemon). */
void sse_bus_free(struct sse_bus *bus);

/*
 * Publishes `type` with data (compact JSON, borrowed) to the streams of
 * job_id; `final` ends them after this event.
 */
void sse_publish(struct sse_bus *bus, int64_t job_id, const char *type,
		 const json_t *data, bool final);

/* Resumes streams that are due a keep-alive comment; call about once a second. */
void sse_tick(struct sse_bus *bus);

/* Number of open streams (for /metrics). */
long sse_stream_count(struct sse_bus *bus);

/*
 * Subscribes conn to job_id's events and returns the streaming response
 * (NULL on ENOMEM). *stream lets the caller queue the first event with
 * sse_stream_first before the response is queued.
 */
struct MHD_Response *sse_subscribe(struct sse_bus *bus, struct MHD_Connection *conn,
				   int64_t job_id, struct sse_stream **stream);

/* Puts an event at the front of one stream's queue (the job's state when it
 * subscribed); final ends the stream after the queue drains. */
void sse_stream_first(struct sse_bus *bus, struct sse_stream *s, const char *type,
		      const json_t *data, bool final);

#endif

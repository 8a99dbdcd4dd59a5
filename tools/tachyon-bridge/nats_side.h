/*
 * nats_side.h - the NATS side of the bridge, over libnats (nats.c): one
 * connection that reconnects for as long as the bridge runs, publishing
 * with the bridge's markers, JetStream, and subscriptions. Connection events
 * are reported as they happen.
 */
#ifndef TACHYON_BRIDGE_NATS_SIDE_H
#define TACHYON_BRIDGE_NATS_SIDE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nats/nats.h>

#include "options.h"

typedef struct {
    natsConnection *nc;
    jsCtx *js;
    natsStatistics *stats;     /* reused by nats_link_reconnects (main thread) */
    /* Set by the library's threads. */
    atomic_int fatal;          /* the server refuses our messages: stop (1; 2 while the text is written) */
    char fatal_text[256];
    atomic_int slow_consumer;  /* the client dropped incoming messages */
    atomic_int closing;        /* we are closing: connection events are expected */
} nats_link_t;

/* Start connecting (the library keeps retrying in the background if no
 * server answers yet). Returns false on a configuration error (reported). */
bool nats_link_open(nats_link_t *l, const bridge_options_t *opts);

/* Write what is buffered, then close and free. */
void nats_link_close(nats_link_t *l);

bool nats_link_up(nats_link_t *l);
/* The server refused our messages; fatal_text says why. */
bool nats_link_refused(nats_link_t *l);

/* How many times the connection was re-established: a change means that
 * whatever was written before may not have reached the server, and that
 * messages published meanwhile may be missing from subscriptions. The
 * library counts a reconnect before it reads anything on the new
 * connection, so a check before each message received sees it in time.
 * Main thread only. */
uint64_t nats_link_reconnects(nats_link_t *l);

/* The server's largest message (0 while not connected). */
int64_t nats_link_max_payload(nats_link_t *l);

/* Write everything buffered and wait until the server has processed it (a
 * PING answered). */
natsStatus nats_link_flush(nats_link_t *l, int timeout_ms);

/* Publish one message; `marker` (a stream.h marker value) and `ack_subject`
 * may be NULL. Non-blocking: the client library buffers. */
natsStatus nats_publish(nats_link_t *l, const char *subject, const void *data, size_t len,
                        const char *marker, const char *ack_subject);

/* JetStream: create the context, acknowledgements going to `ack_cb`. */
bool nats_js_open(nats_link_t *l, jsPubAckHandler ack_cb, void *closure, int64_t max_pending);

/* Find stream `name`, or create it on "<prefix>.*" with file storage. */
bool nats_js_ensure_stream(nats_link_t *l, const char *name, const char *prefix);

/* Publish into the stream with a de-duplication id; the result arrives at
 * the ack callback (or as an error from this call). */
natsStatus nats_js_publish(nats_link_t *l, const char *subject, const void *data, size_t len,
                           const char *msg_id, int64_t ack_wait_ms);

#endif

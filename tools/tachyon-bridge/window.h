/*
 * window.h - the out side's buffer of messages taken from the bus and not
 * yet confirmed, in stream order. Messages are numbered 1, 2, ... as they
 * enter; they leave from the front once confirmed. A send cursor walks the
 * window for publishing and is moved back to resend.
 *
 * One byte ring: each record is a 16-byte header (size, type_id, flags) and
 * the payload, padded to 16 bytes, and never wraps: a record that would cross the
 * end starts at offset 0 after a filler. Used by the main thread only.
 */
#ifndef TACHYON_BRIDGE_WINDOW_H
#define TACHYON_BRIDGE_WINDOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A record's type when it is the end of the stream (its payload is the
 * reason); data records carry the bus type_id in `type_id`. */
#define WINDOW_FLAG_END 0x1u

typedef struct {
    uint8_t *buf;
    size_t cap;           /* bytes */
    uint64_t head, tail;  /* free-running byte positions: front record, end */
    uint64_t base_seq;    /* number of the front record */
    uint64_t end_seq;     /* number the next appended record gets */
    uint64_t send_pos;    /* byte position of the record at send_seq */
    uint64_t send_seq;    /* next record to publish */
} window_t;

typedef struct {
    uint64_t seq;
    uint32_t type_id;
    uint32_t flags;
    const void *data;
    size_t size;
} window_rec_t;

/* false: out of memory. */
bool window_init(window_t *w, size_t cap);
void window_free(window_t *w);

/* The largest payload that fits in an empty window. */
size_t window_max_payload(const window_t *w);

/* Append a record; false when it does not fit now. */
bool window_append(window_t *w, const void *data, size_t size, uint32_t type_id, uint32_t flags);

/* Records and bytes held (confirmed ones are gone). */
uint64_t window_count(const window_t *w);
size_t window_bytes(const window_t *w);
bool window_empty(const window_t *w);

/* The record at the send cursor; false when everything was sent. */
bool window_peek_send(const window_t *w, window_rec_t *rec);
void window_advance_send(window_t *w);
bool window_all_sent(const window_t *w);

/* Move the send cursor back to `seq` (clamped to the window's front); a
 * cursor already before it stays. Returns the cursor's new seq. */
uint64_t window_rewind(window_t *w, uint64_t seq);

/* Drop every record numbered <= seq (confirmed); returns how many left. */
uint64_t window_release_through(window_t *w, uint64_t seq);

#endif

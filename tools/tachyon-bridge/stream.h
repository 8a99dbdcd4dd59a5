/*
 * stream.h - what the two sides of tachyon-bridge put on NATS besides the
 * payload, and how it is read back. Everything parsed here came over the
 * network: every function checks lengths and ranges and refuses what does
 * not match exactly.
 *
 * Data:    subject "<prefix>.<type_id>" (type_id in decimal), payload = the
 *          bus message's bytes, unchanged.
 * Marker:  header "Tachyon-Stream: <id> <seq> <base>" on the first message of
 *          every run the out side publishes (after a flush, a reconnect, a
 *          resend). <id> is 16 lowercase hex digits chosen at start-up, <seq>
 *          the message's number in the stream (1, 2, ...), <base> the oldest
 *          number the out side still holds. Unmarked messages that follow
 *          are seq+1, seq+2, ...: NATS keeps one publisher's order per
 *          subscription, so numbering a run's first message numbers them all.
 * Acks:    with --confirm bridge, the marker also carries
 *          "Tachyon-Ack: <subject>"; the in side publishes there
 *          "ack <seq>" (everything through <seq> is in its bus) and
 *          "nak <seq>" (send again from <seq>; 0 = from your oldest).
 * End:     subject "<prefix>.end", marked, payload = a sentence saying why the
 *          stream ended (the producer closed the bus, died, the bridge was
 *          stopped).
 */
#ifndef TACHYON_BRIDGE_STREAM_H
#define TACHYON_BRIDGE_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STREAM_HDR_MARKER "Tachyon-Stream"
#define STREAM_HDR_ACK "Tachyon-Ack"
#define STREAM_HDR_JS_ID "Nats-Msg-Id"
#define STREAM_END_TOKEN "end"
#define STREAM_ID_HEX 16

/* The longest subject prefix accepted (NATS has no hard limit; this keeps
 * every subject in a fixed buffer). */
#define STREAM_MAX_PREFIX 200
#define STREAM_MAX_SUBJECT (STREAM_MAX_PREFIX + 16)
#define STREAM_MAX_MARKER 64

typedef struct {
    uint64_t id;
    uint64_t seq;
    uint64_t base;
} stream_marker_t;

/* What the last token of a data subject says. */
typedef enum {
    SUBJECT_DATA,    /* "<prefix>.<type_id>" */
    SUBJECT_END,     /* "<prefix>.end" */
    SUBJECT_INVALID  /* anything else: not from a tachyon-bridge out */
} subject_kind_t;

/* A prefix usable as the fixed part of subjects: non-empty, at most
 * STREAM_MAX_PREFIX bytes, printable ASCII without spaces, no wildcard
 * tokens, no empty token. */
bool stream_prefix_valid(const char *prefix);

/* "<prefix>.<type_id>" into buf (at least STREAM_MAX_SUBJECT bytes). */
void stream_data_subject(char *buf, size_t cap, const char *prefix, uint32_t type_id);
void stream_end_subject(char *buf, size_t cap, const char *prefix);

/* Classify `subject`, which must start with "<prefix>."; *type_id is set for
 * SUBJECT_DATA. A type_id must be 1 to 10 decimal digits, no sign, no leading
 * zero (except "0"), at most 4294967295. */
subject_kind_t stream_parse_subject(const char *subject, const char *prefix, uint32_t *type_id);

/* Marker value "<id> <seq> <base>" into buf (at least STREAM_MAX_MARKER). */
void stream_format_marker(char *buf, size_t cap, const stream_marker_t *m);

/* Parse a marker value; false unless it is exactly 16 hex digits, a space, a
 * decimal seq >= 1, a space, a decimal base with 1 <= base <= seq. */
bool stream_parse_marker(const char *value, stream_marker_t *out);

/* "ack <seq>" / "nak <seq>". */
typedef enum { ACK_ACK, ACK_NAK } ack_kind_t;
int stream_format_ack(char *buf, size_t cap, ack_kind_t kind, uint64_t seq);
/* Parse an ack of `len` bytes (not NUL-terminated); false on anything else. */
bool stream_parse_ack(const char *data, size_t len, ack_kind_t *kind, uint64_t *seq);

/* "<id hex>-<seq>", the JetStream de-duplication id of one message. */
void stream_format_js_id(char *buf, size_t cap, uint64_t id, uint64_t seq);
bool stream_parse_js_id(const char *value, uint64_t id, uint64_t *seq);

/* A decimal u64 of exactly `len` bytes: digits only, no leading zero
 * (except "0"), no overflow. */
bool stream_parse_u64(const char *s, size_t len, uint64_t *out);

#endif

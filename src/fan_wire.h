/*
 * fan_wire.h - the bytes of the fan channels (docs/protocol.md, "Fan-out and
 * fan-in"): the 32-byte hello that opens every fan connection, and the
 * fan-out segment (header, consumer table, ring). Fan-in needs no segment of
 * its own: each producer gets a plain bus ring (wire.h) after the hello.
 *
 * The hello's magic is not the bus's, so a plain ABI v4 connector (ours or
 * the published library) stops at the first four bytes with an ABI
 * mismatch instead of mapping anything.
 *
 * Everything here that a peer can write is untrusted: see fanout.c.
 */
#ifndef TACHYON_FAN_WIRE_H
#define TACHYON_FAN_WIRE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "wire.h"

#define TACHYON_FAN_MAGIC 0x5446414Eu /* "TFAN" read as a little-endian word: 'N','A','F','T' */
#define TACHYON_FAN_VERSION 2u
#define TACHYON_FAN_KIND_OUT 1u       /* one producer (the listener), many consumers */
#define TACHYON_FAN_KIND_IN 2u        /* many producers, one consumer (the listener) */

#define TACHYON_FAN_MAX_PEERS 64u     /* consumers of a fan-out, producers of a fan-in */
#define TACHYON_FAN_PAGE 4096u        /* the ring starts on a page: consumers map it read-only */

/* The hello: the listener's first message on every fan connection. A
 * fan-out hello carries the segment's memfd (SCM_RIGHTS); a fan-in hello
 * carries nothing and is followed by a plain bus handshake (wire.h 1.1). */
typedef struct {
    uint32_t magic;       /* TACHYON_FAN_MAGIC */
    uint32_t version;     /* TACHYON_FAN_VERSION */
    uint32_t kind;        /* TACHYON_FAN_KIND_OUT or _IN */
    uint32_t index;       /* the peer's slot: 0 .. max_peers - 1 */
    uint32_t max_peers;   /* at most TACHYON_FAN_MAX_PEERS */
    uint32_t capacity;    /* ring bytes (fan-out: the shared ring; fan-in: each producer's) */
    uint32_t ring_offset; /* fan-out: where the ring starts in the segment; fan-in: 0 */
    uint32_t flags;       /* fan-out: the slow-consumer policy (TACHYON_FAN_DROP); fan-in: 0 */
} tachyon_fan_hello_t;

_Static_assert(sizeof(tachyon_fan_hello_t) == 32, "fan hello is 32 bytes, like the bus handshake");
_Static_assert(offsetof(tachyon_fan_hello_t, magic) == 0, "hello.magic");
_Static_assert(offsetof(tachyon_fan_hello_t, version) == 4, "hello.version");
_Static_assert(offsetof(tachyon_fan_hello_t, kind) == 8, "hello.kind");
_Static_assert(offsetof(tachyon_fan_hello_t, index) == 12, "hello.index");
_Static_assert(offsetof(tachyon_fan_hello_t, max_peers) == 16, "hello.max_peers");
_Static_assert(offsetof(tachyon_fan_hello_t, capacity) == 20, "hello.capacity");
_Static_assert(offsetof(tachyon_fan_hello_t, ring_offset) == 24, "hello.ring_offset");
_Static_assert(offsetof(tachyon_fan_hello_t, flags) == 28, "hello.flags");

#define TACHYON_FAN_DROP 1u /* hello.flags / seg.policy: drop a consumer a whole ring behind */
#define TACHYON_FAN_FULL 0xFFFFFFFFu /* hello.index: every slot is taken; the listener hangs up */

/*
 * One consumer's entry in the fan-out table: 128 bytes. The first line half
 * is written by that consumer only, the second by the producer only.
 */
typedef struct {
    _Atomic uint64_t tail;        /* consumer: bytes it has released (monotonic) */
    _Atomic uint32_t ack_gen;     /* consumer: the drop_gen it has taken notice of */
    _Atomic uint32_t wants_fence; /* consumer: 1 asks the producer to fence every stamp (pair V) */
    uint8_t pad_consumer_[64 - 16];

    _Atomic uint32_t drop_gen;    /* producer: bumped each time it drops (or re-drops) this consumer */
    _Atomic uint32_t active;      /* producer: 1 while the slot belongs to a joined consumer */
    _Atomic uint64_t resume_pos;  /* producer: where a dropped consumer continues (a message start) */
    _Atomic uint64_t resume_seq;  /* producer: the sequence number of the message at resume_pos */
    _Atomic uint64_t tail_seq;    /* producer: the sequence number at the consumer's tail when first dropped */
    _Atomic int32_t pid;          /* producer: the consumer's process, as its socket says */
    uint32_t pad_p_;
    uint8_t pad_producer_[64 - 40];
} tachyon_fan_entry_t;

_Static_assert(sizeof(tachyon_fan_entry_t) == 128, "fan entry is 128 bytes");
_Static_assert(offsetof(tachyon_fan_entry_t, tail) == 0, "entry.tail");
_Static_assert(offsetof(tachyon_fan_entry_t, ack_gen) == 8, "entry.ack_gen");
_Static_assert(offsetof(tachyon_fan_entry_t, wants_fence) == 12, "entry.wants_fence");
_Static_assert(offsetof(tachyon_fan_entry_t, drop_gen) == 64, "entry.drop_gen");
_Static_assert(offsetof(tachyon_fan_entry_t, active) == 68, "entry.active");
_Static_assert(offsetof(tachyon_fan_entry_t, resume_pos) == 72, "entry.resume_pos");
_Static_assert(offsetof(tachyon_fan_entry_t, resume_seq) == 80, "entry.resume_seq");
_Static_assert(offsetof(tachyon_fan_entry_t, tail_seq) == 88, "entry.tail_seq");
_Static_assert(offsetof(tachyon_fan_entry_t, pid) == 96, "entry.pid");

/* The fan-out segment header: 512 bytes, then max_consumers entries, then
 * (at ring_offset, a multiple of TACHYON_FAN_PAGE) the ring. */
typedef struct {
    uint32_t magic;               /* TACHYON_FAN_MAGIC */
    uint32_t version;             /* TACHYON_FAN_VERSION */
    uint32_t capacity;            /* power of two, TACHYON_MIN_CAPACITY .. TACHYON_MAX_CAPACITY */
    uint32_t max_consumers;       /* 1 .. TACHYON_FAN_MAX_PEERS */
    uint32_t ring_offset;         /* page-aligned, >= 512 + 128 * max_consumers */
    uint32_t policy;              /* 0 block, TACHYON_FAN_DROP drop */
    _Atomic uint32_t state;       /* tachyon_state_t: READY, DISCONNECTED (producer closed), FATAL */
    _Atomic int32_t producer_pid;
    _Atomic uint64_t stamp_salt;  /* slot stamps are position ^ salt; never 0 */
    uint8_t pad_state_[128 - 40];

    _Atomic uint64_t head;        /* producer: bytes ever published (monotonic) */
    _Atomic uint64_t messages;    /* producer: messages ever published (for tools) */
    uint8_t pad_head_[128 - 16];

    _Atomic uint32_t producer_waiting; /* futex word: 1 while the producer waits for room (pair K/L) */
    uint8_t pad_wait_[128 - 4];

    _Atomic uint32_t wake_seq;    /* futex word the consumers sleep on; the producer bumps it */
    _Atomic uint32_t sleepers;    /* consumers between announcing sleep and waking (pair P/Q) */
    _Atomic uint32_t producer_fencing; /* producer: 1 while it fences every stamp; 0: a consumer
                                          issues a membarrier before it sleeps (pair V) */
    uint8_t pad_sleep_[128 - 12];
} tachyon_fanout_header_t;

#define TACHYON_FANOUT_HEADER_BYTES 512u

_Static_assert(sizeof(tachyon_fanout_header_t) == TACHYON_FANOUT_HEADER_BYTES, "fan-out header is 512 bytes");
_Static_assert(offsetof(tachyon_fanout_header_t, magic) == 0, "fo.magic");
_Static_assert(offsetof(tachyon_fanout_header_t, version) == 4, "fo.version");
_Static_assert(offsetof(tachyon_fanout_header_t, capacity) == 8, "fo.capacity");
_Static_assert(offsetof(tachyon_fanout_header_t, max_consumers) == 12, "fo.max_consumers");
_Static_assert(offsetof(tachyon_fanout_header_t, ring_offset) == 16, "fo.ring_offset");
_Static_assert(offsetof(tachyon_fanout_header_t, policy) == 20, "fo.policy");
_Static_assert(offsetof(tachyon_fanout_header_t, state) == 24, "fo.state");
_Static_assert(offsetof(tachyon_fanout_header_t, producer_pid) == 28, "fo.producer_pid");
_Static_assert(offsetof(tachyon_fanout_header_t, stamp_salt) == 32, "fo.stamp_salt");
_Static_assert(offsetof(tachyon_fanout_header_t, head) == 128, "fo.head");
_Static_assert(offsetof(tachyon_fanout_header_t, messages) == 136, "fo.messages");
_Static_assert(offsetof(tachyon_fanout_header_t, producer_waiting) == 256, "fo.producer_waiting");
_Static_assert(offsetof(tachyon_fanout_header_t, wake_seq) == 384, "fo.wake_seq");
_Static_assert(offsetof(tachyon_fanout_header_t, sleepers) == 388, "fo.sleepers");
_Static_assert(offsetof(tachyon_fanout_header_t, producer_fencing) == 392, "fo.producer_fencing");

/* Messages in the fan-out ring use the bus's 64-byte header (wire.h 1.3);
 * correlation_id carries the message's sequence number (0, 1, 2, ...) and
 * the stamp (position ^ stamp_salt, stored last) says the slot, or the skip
 * marker, is complete. A slot never wraps; skip markers as on a bus. */

/* Where the ring starts for a table of `max` entries. */
static inline uint32_t tachyon_fanout_ring_offset(uint32_t max)
{
    uint32_t table_end = TACHYON_FANOUT_HEADER_BYTES + 128u * max;
    return (table_end + TACHYON_FAN_PAGE - 1) & ~(TACHYON_FAN_PAGE - 1);
}

/* The table entry of consumer `i` (the caller checked i < max_consumers). */
static inline tachyon_fan_entry_t *tachyon_fanout_entry(tachyon_fanout_header_t *hdr, uint32_t i)
{
    return (tachyon_fan_entry_t *)((uint8_t *)hdr + TACHYON_FANOUT_HEADER_BYTES) + i;
}

#endif /* TACHYON_FAN_WIRE_H */

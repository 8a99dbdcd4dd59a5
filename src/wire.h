/*
 * wire.h - the bytes two processes share: handshake, segment header, message
 * header (ABI version 4, docs/protocol.md). Every offset is pinned by a
 * _Static_assert so a change of packing or a typo cannot pass the compiler.
 *
 * Nothing here is trusted when it comes from the peer: see validate_* in
 * handshake.c and ring.c.
 */
#ifndef TACHYON_WIRE_H
#define TACHYON_WIRE_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define TACHYON_MAGIC 0x54414348u /* "TACH" */
#define TACHYON_VERSION 4u
#define TACHYON_MSG_ALIGN 64u
#define TACHYON_HEADER_BYTES 768u  /* segment header before the ring */
#define TACHYON_MSG_HEADER 64u     /* message header before each payload */
#define TACHYON_SKIP_MARKER 0xFFFFFFFFu
#define TACHYON_MIN_CAPACITY 64u
#define TACHYON_MAX_CAPACITY (1u << 30) /* 1 GiB: fits u32, far above any sane ring */
#define TACHYON_HS_FLAG_REQREP 1u


/* 1.1 Handshake: 32 bytes, sent with the memfd as SCM_RIGHTS. */
typedef struct {
    uint32_t magic;
    uint32_t version;
    uint32_t capacity_fwd;
    uint32_t shm_size_fwd;
    uint32_t capacity_rev;
    uint32_t shm_size_rev;
    uint32_t msg_alignment;
    uint32_t flags;
} tachyon_handshake_t;

_Static_assert(sizeof(tachyon_handshake_t) == 32, "handshake is 32 bytes");
_Static_assert(offsetof(tachyon_handshake_t, magic) == 0, "hs.magic");
_Static_assert(offsetof(tachyon_handshake_t, version) == 4, "hs.version");
_Static_assert(offsetof(tachyon_handshake_t, capacity_fwd) == 8, "hs.capacity_fwd");
_Static_assert(offsetof(tachyon_handshake_t, shm_size_fwd) == 12, "hs.shm_size_fwd");
_Static_assert(offsetof(tachyon_handshake_t, capacity_rev) == 16, "hs.capacity_rev");
_Static_assert(offsetof(tachyon_handshake_t, shm_size_rev) == 20, "hs.shm_size_rev");
_Static_assert(offsetof(tachyon_handshake_t, msg_alignment) == 24, "hs.msg_alignment");
_Static_assert(offsetof(tachyon_handshake_t, flags) == 28, "hs.flags");

/* Extensions: after the handshake, a connector of this project sends an
 * offer (the features it handles) on the same connection and a listener of
 * this project answers with the features both handle. A published-library
 * peer sends nothing and closes: no features. 32 bytes each. */
#define TACHYON_EXT_MAGIC 0x54584554u /* "TEXT" */
#define TACHYON_EXT_VERSION 1u
#define TACHYON_EXT_OFFER 1u
#define TACHYON_EXT_ANSWER 2u

/* Feature bits. */
#define TACHYON_FEATURE_LONE_MARKER (1u << 0) /* the consumer re-reads head after a skip marker */
#define TACHYON_FEATURE_HOLD_LOCK (1u << 1)   /* holds its byte of the segment file while mapped */
#define TACHYON_FEATURE_SLOT_STAMPS (1u << 2) /* its consumer reads a slot's readiness from its stamp */
#define TACHYON_FEATURE_MEMBARRIER (1u << 3)  /* registered for membarrier; its consumer issues one before sleeping */
#define TACHYON_FEATURE_EVENTFD (1u << 4)     /* sent an eventfd with its message: signal it when it waits on one */

typedef struct {
    uint32_t magic;
    uint32_t version;
    uint32_t kind;      /* TACHYON_EXT_OFFER or TACHYON_EXT_ANSWER */
    uint32_t features;  /* offer: what the connector handles; answer: what both will use */
    uint32_t n_fds;     /* descriptors sent with this message (SCM_RIGHTS) */
    uint32_t reserved_[3];
} tachyon_ext_msg_t;

_Static_assert(sizeof(tachyon_ext_msg_t) == 32, "extension message is 32 bytes");
_Static_assert(offsetof(tachyon_ext_msg_t, magic) == 0, "ext.magic");
_Static_assert(offsetof(tachyon_ext_msg_t, version) == 4, "ext.version");
_Static_assert(offsetof(tachyon_ext_msg_t, kind) == 8, "ext.kind");
_Static_assert(offsetof(tachyon_ext_msg_t, features) == 12, "ext.features");
_Static_assert(offsetof(tachyon_ext_msg_t, n_fds) == 16, "ext.n_fds");

/* Extension: what one side counts, stored now and then into its own line of
 * the segment so a tool can show it (tachyon-top). A plain v4 peer leaves
 * its block zero. 64 bytes: the second half of that side's 128-byte line. */
typedef struct {
    _Atomic uint32_t pid;        /* the process that last wrote this block */
    _Atomic uint32_t seq;        /* odd while being written */
    _Atomic uint64_t messages;
    _Atomic uint64_t bytes;
    _Atomic uint64_t stalls;     /* producer: times the ring was full; consumer: futex sleeps */
    _Atomic uint64_t wakes;      /* producer: sleeping consumers woken */
    _Atomic uint64_t fill_max;   /* producer: most bytes it saw in the ring */
    _Atomic uint64_t updated_ns; /* CLOCK_MONOTONIC when written */
    _Atomic uint64_t active_ns;  /* CLOCK_MONOTONIC of the last message, as far as known */
} tachyon_side_stats_t;

_Static_assert(sizeof(tachyon_side_stats_t) == 64, "side stats are 64 bytes");
_Static_assert(offsetof(tachyon_side_stats_t, messages) == 8, "stats.messages");
_Static_assert(offsetof(tachyon_side_stats_t, active_ns) == 56, "stats.active_ns");

/* 1.2 Segment header: each side's hot word on its own 128-byte line. */
typedef struct {
    uint32_t magic;
    uint32_t version;
    uint32_t capacity;
    uint32_t msg_alignment;
    _Atomic uint32_t state;
    _Atomic uint32_t ext_features;      /* extension: the features both sides agreed on (0: plain v4) */
    _Atomic uint64_t stamp_salt;        /* extension: slot stamps are position ^ salt (0: no stamps) */
    uint8_t pad_state_[128 - 32];

    _Atomic uint64_t head;              /* written by the producer only */
    _Atomic uint32_t producer_waiting;  /* extension: 1 while the producer waits for room on its eventfd */
    _Atomic uint32_t producer_fencing;  /* extension: 1 while the producer fences every stamp (the
                                           consumer asked; it then sleeps without a membarrier) */
    uint8_t pad_head_[64 - 16];
    tachyon_side_stats_t producer_stats; /* extension, written by the producer only */

    _Atomic uint64_t tail;              /* written by the consumer only */
    uint8_t pad_tail_[64 - 8];
    tachyon_side_stats_t consumer_stats; /* extension, written by the consumer only */

    _Atomic uint32_t consumer_sleeping; /* futex word, written by the consumer */
    _Atomic uint32_t consumer_wants_fence; /* extension: 1 asks the producer to fence every stamp */
    uint8_t pad_sleep_[128 - 8];

    _Atomic uint64_t producer_heartbeat;
    uint8_t pad_phb_[128 - 8];

    _Atomic uint64_t consumer_heartbeat;
    uint8_t pad_chb_[128 - 8];
} tachyon_segment_header_t;

_Static_assert(sizeof(tachyon_segment_header_t) == TACHYON_HEADER_BYTES, "segment header is 768 bytes");
_Static_assert(offsetof(tachyon_segment_header_t, magic) == 0, "seg.magic");
_Static_assert(offsetof(tachyon_segment_header_t, version) == 4, "seg.version");
_Static_assert(offsetof(tachyon_segment_header_t, capacity) == 8, "seg.capacity");
_Static_assert(offsetof(tachyon_segment_header_t, msg_alignment) == 12, "seg.msg_alignment");
_Static_assert(offsetof(tachyon_segment_header_t, state) == 16, "seg.state");
_Static_assert(offsetof(tachyon_segment_header_t, ext_features) == 20, "seg.ext_features");
_Static_assert(offsetof(tachyon_segment_header_t, stamp_salt) == 24, "seg.stamp_salt");
_Static_assert(offsetof(tachyon_segment_header_t, head) == 128, "seg.head");
_Static_assert(offsetof(tachyon_segment_header_t, producer_waiting) == 136, "seg.producer_waiting");
_Static_assert(offsetof(tachyon_segment_header_t, producer_fencing) == 140, "seg.producer_fencing");
_Static_assert(offsetof(tachyon_segment_header_t, producer_stats) == 192, "seg.producer_stats");
_Static_assert(offsetof(tachyon_segment_header_t, tail) == 256, "seg.tail");
_Static_assert(offsetof(tachyon_segment_header_t, consumer_stats) == 320, "seg.consumer_stats");
_Static_assert(offsetof(tachyon_segment_header_t, consumer_sleeping) == 384, "seg.consumer_sleeping");
_Static_assert(offsetof(tachyon_segment_header_t, consumer_wants_fence) == 388, "seg.consumer_wants_fence");
_Static_assert(offsetof(tachyon_segment_header_t, producer_heartbeat) == 512, "seg.producer_heartbeat");
_Static_assert(offsetof(tachyon_segment_header_t, consumer_heartbeat) == 640, "seg.consumer_heartbeat");
_Static_assert(sizeof(_Atomic uint32_t) == 4 && sizeof(_Atomic uint64_t) == 8,
               "atomics have the plain layout the peer expects");

/* consumer_sleeping values */
#define TACHYON_CONSUMER_AWAKE 0u
#define TACHYON_CONSUMER_SLEEPING 1u
#define TACHYON_CONSUMER_PURE_SPIN 2u
#define TACHYON_CONSUMER_FD_WAIT 3u /* extension: waits on its eventfd (tachyon_bus_fd); a plain v4
                                       producer ignores it, and the consumer's timer covers that */

/* 1.3 Message header, at the start of every slot. */
typedef struct {
    _Atomic uint32_t size;          /* payload bytes, or TACHYON_SKIP_MARKER */
    _Atomic uint32_t type_id;
    _Atomic uint32_t reserved_size; /* whole slot, multiple of 64 */
    uint32_t pad_;
    _Atomic uint64_t correlation_id; /* request/reply: the call it belongs to; 0 on a plain bus */
    _Atomic uint64_t stamp;          /* extension: position ^ salt, stored last: the slot is complete */
    uint8_t pad_tail_[TACHYON_MSG_HEADER - 32];
} tachyon_msg_header_t;

_Static_assert(sizeof(tachyon_msg_header_t) == TACHYON_MSG_HEADER, "message header is 64 bytes");
_Static_assert(offsetof(tachyon_msg_header_t, size) == 0, "msg.size");
_Static_assert(offsetof(tachyon_msg_header_t, type_id) == 4, "msg.type_id");
_Static_assert(offsetof(tachyon_msg_header_t, reserved_size) == 8, "msg.reserved_size");
_Static_assert(offsetof(tachyon_msg_header_t, correlation_id) == 16, "msg.correlation_id");
_Static_assert(offsetof(tachyon_msg_header_t, stamp) == 24, "msg.stamp");

/* The slot a payload of `payload` bytes needs; caller ensures no overflow. */
static inline uint64_t tachyon_slot_size(uint64_t payload)
{
    return (TACHYON_MSG_HEADER + payload + (TACHYON_MSG_ALIGN - 1)) & ~(uint64_t)(TACHYON_MSG_ALIGN - 1);
}

static inline int tachyon_is_pow2(uint64_t x)
{
    return x != 0 && (x & (x - 1)) == 0;
}

static inline int tachyon_capacity_valid(uint64_t capacity)
{
    return tachyon_is_pow2(capacity) && capacity >= TACHYON_MIN_CAPACITY &&
           capacity <= TACHYON_MAX_CAPACITY;
}

#endif /* TACHYON_WIRE_H */

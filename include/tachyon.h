/*
 * tachyon.h - same-machine, zero-copy, single-producer/single-consumer messaging.
 *
 * One bus is one ring in a sealed memfd shared by exactly two processes. The
 * listener creates the segment and hands its fd to the one connector over a
 * Unix socket; after that no byte goes through the kernel. The wire format is
 * in docs/protocol.md.
 *
 * Roles: whichever process calls the tx functions is the producer, whichever
 * calls the rx functions is the consumer.
 *
 * Threads. A handle has two sides: the producer side (acquire_tx, commit_tx,
 * rollback_tx, flush, send, send_batch, acquire_tx_blocking) and the consumer
 * side (every acquire_rx*, drain_batch*, commit_rx*). One thread at a time
 * may use each side: one producer thread and one consumer thread may work on
 * one handle at once, two threads on the same side may not (the ring is
 * single-producer, single-consumer). Every other function may be called from
 * any thread at any time, except that tachyon_bus_destroy must not race with
 * a call on the same reference: a thread that calls into a handle while
 * another may destroy it holds its own reference (tachyon_bus_ref), and the
 * segment stays mapped until the last reference is dropped.
 * tachyon_bus_last_error answers for the calling thread only.
 *
 * fork(): a child does not inherit the mapping; every call on a handle made
 * before the fork returns TACHYON_ERR_FORKED (NULL/0 with that error) in the
 * child, and tachyon_bus_destroy there only frees the handle's memory.
 *
 * The functions from tachyon_bus_listen to tachyon_memory_barrier_acquire are
 * the published tachyon-ipc ABI and never change. The rest are this
 * project's additions.
 */
#ifndef TACHYON_C_API_H
#define TACHYON_C_API_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#if defined(__GNUC__) || defined(__clang__)
#define TACHYON_ABI __attribute__((visibility("default")))
#else
#define TACHYON_ABI
#endif
#define TACHYON_API TACHYON_ABI

#if defined(__cplusplus) && __cplusplus >= 201103L
#define TACHYON_NOEXCEPT noexcept
#else
#define TACHYON_NOEXCEPT
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    TACHYON_SUCCESS = 0,
    TACHYON_ERR_NULL_PTR = 1,      /* a required pointer argument was NULL */
    TACHYON_ERR_MEM = 2,           /* out of memory */
    TACHYON_ERR_OPEN = 3,          /* memfd_create or socket creation failed */
    TACHYON_ERR_TRUNCATE = 4,      /* ftruncate failed, or the fd is smaller than claimed */
    TACHYON_ERR_CHMOD = 5,         /* the socket file's permissions could not be set */
    TACHYON_ERR_SEAL = 6,          /* seals could not be applied, or the peer's fd lacks them */
    TACHYON_ERR_MAP = 7,           /* mmap failed */
    TACHYON_ERR_INVALID_SZ = 8,    /* a size or capacity out of range */
    TACHYON_ERR_FULL = 9,          /* no room in the ring (or a timed wait for room expired) */
    TACHYON_ERR_EMPTY = 10,        /* nothing to read */
    TACHYON_ERR_NETWORK = 11,      /* socket bind/connect/accept/send/recv failed */
    TACHYON_ERR_SYSTEM = 12,       /* another system call failed */
    TACHYON_ERR_INTERRUPTED = 13,  /* a signal interrupted a blocking call */
    TACHYON_ERR_ABI_MISMATCH = 14, /* handshake or segment header does not match ABI v4 */
    /* Additions of this project; values after 14 never change either. */
    TACHYON_ERR_PEER_DEAD = 15,    /* the peer process ended (or was killed) without closing the bus */
    TACHYON_ERR_PERMISSION = 16,   /* the peer's uid is not allowed */
    TACHYON_ERR_FATAL = 17,        /* the shared segment is corrupt; the bus is unusable */
    TACHYON_ERR_STATE = 18,        /* call out of order (commit without acquire, ...) */
    TACHYON_ERR_TIMEOUT = 19,      /* a timed wait expired */
    TACHYON_ERR_ADDR_IN_USE = 20,  /* a live listener owns the socket path */
    TACHYON_ERR_NOT_SOCKET = 21,   /* the socket path exists and is not a socket */
    TACHYON_ERR_PATH_TOO_LONG = 22, /* the socket path does not fit in sun_path */
    TACHYON_ERR_PEER_CLOSED = 23,  /* the peer closed the bus (a clean end of stream) */
    TACHYON_ERR_FORKED = 24,       /* the handle belongs to the parent of this fork()ed process */
    TACHYON_ERR_WRONG_REPLY = 25,  /* request/reply: the next reply answers another call */
    TACHYON_ERR_OVERRUN = 26       /* fan-out: this consumer fell a ring behind and was dropped;
                                      tachyon_fanout_missed says how many messages it lost */
} tachyon_error_t;

typedef enum {
    TACHYON_STATE_UNINITIALIZED = 0,
    TACHYON_STATE_INITIALIZING = 1,
    TACHYON_STATE_READY = 2,
    TACHYON_STATE_DISCONNECTED = 3, /* the peer is gone (closed, or its process ended) */
    TACHYON_STATE_FATAL_ERROR = 4,  /* a corrupt header or counter was seen */
    TACHYON_STATE_UNKNOWN = 5
} tachyon_state_t;

/* type_id: bits 31..16 route id, bits 15..0 message type. As published, the
 * type is not masked: a type above 0xFFFF spills into the route bits. */
#define TACHYON_TYPE_ID(route, type) ((uint32_t)(((uint32_t)(route) << 16) | (uint32_t)(type)))
#define TACHYON_ROUTE_ID(id) ((uint16_t)(((uint32_t)(id) >> 16) & 0xFFFFu))
#define TACHYON_MSG_TYPE(id) ((uint16_t)((uint32_t)(id) & 0xFFFFu))

typedef struct tachyon_bus tachyon_bus_t;

/* One received message in a batch. `reserved_` is the message's slot size in
 * the ring (64-byte header and payload, rounded up to 64). */
typedef struct {
    const void *ptr;
    size_t actual_size;
    size_t reserved_;
    uint32_t type_id;
    uint32_t padding_;
} tachyon_msg_view_t;

/* ---- Published API ---------------------------------------------------------- */

/*
 * Create a segment with a ring of `capacity` bytes (a power of two, at least
 * 64 and at most 1 GiB), bind `socket_path`, wait for exactly one peer, hand it
 * the segment and remove the socket file. Blocks until a peer comes; a signal
 * returns TACHYON_ERR_INTERRUPTED. On success *out holds a bus with one
 * reference.
 */
TACHYON_API tachyon_error_t tachyon_bus_listen(const char *socket_path, size_t capacity,
                                               tachyon_bus_t **out) TACHYON_NOEXCEPT;

/* Connect to a listener at `socket_path` and map the segment it hands over.
 * One attempt; the listener must run as our uid or root (see connect_ex). */
TACHYON_API tachyon_error_t tachyon_bus_connect(const char *socket_path, tachyon_bus_t **out) TACHYON_NOEXCEPT;

/* Take one more reference; each reference is dropped by tachyon_bus_destroy. */
TACHYON_API void tachyon_bus_ref(tachyon_bus_t *bus) TACHYON_NOEXCEPT;

/*
 * Drop one reference. The last one marks the bus disconnected in the shared
 * segment (so the peer learns we left), wakes the peer and unmaps. NULL is a
 * no-op.
 */
TACHYON_API void tachyon_bus_destroy(tachyon_bus_t *bus) TACHYON_NOEXCEPT;

/* Bind the segment's pages to a NUMA node (mbind). ERR_SYSTEM if unsupported. */
TACHYON_API tachyon_error_t tachyon_bus_set_numa_node(const tachyon_bus_t *bus, int node_id) TACHYON_NOEXCEPT;

/*
 * Consumer side: pure_spin != 0 means the consumer never sleeps, so the
 * producer skips the fence and the wake-up check on every publication.
 */
TACHYON_API void tachyon_bus_set_polling_mode(const tachyon_bus_t *bus, int pure_spin) TACHYON_NOEXCEPT;

/*
 * Reserve a slot for up to `max_payload_size` bytes and return a pointer to
 * its payload (64-byte aligned). NULL: the ring is full (ERR_FULL), the size
 * is out of range (ERR_INVALID_SZ), a slot is already acquired (ERR_STATE),
 * or the peer is gone; tachyon_bus_last_error tells which. Non-blocking.
 */
TACHYON_API void *tachyon_acquire_tx(tachyon_bus_t *bus, size_t max_payload_size) TACHYON_NOEXCEPT;

/* Commit the acquired slot with its real size (at most the size acquired:
 * ERR_INVALID_SZ otherwise, and the slot stays acquired) and publish it to the
 * consumer immediately. */
TACHYON_API tachyon_error_t tachyon_commit_tx(tachyon_bus_t *bus, size_t actual_payload_size,
                                              uint32_t type_id) TACHYON_NOEXCEPT;

/* Give the acquired slot back unpublished. */
TACHYON_API tachyon_error_t tachyon_rollback_tx(tachyon_bus_t *bus) TACHYON_NOEXCEPT;

/* Publish everything committed and not yet published, waking a sleeping
 * consumer for it. Commits already publish, so this is usually a no-op; it
 * exists for the published API. */
TACHYON_API void tachyon_flush(tachyon_bus_t *bus) TACHYON_NOEXCEPT;

/* Non-blocking receive: the next message's payload, or NULL with ERR_EMPTY,
 * ERR_FATAL, or, once every message it committed has been read, the peer's
 * end (ERR_PEER_CLOSED after a clean close, ERR_PEER_DEAD when its process
 * ended without one; a polling caller learns of it within ~10 ms). The slot
 * stays ours until tachyon_commit_rx. */
TACHYON_API const void *tachyon_acquire_rx(tachyon_bus_t *bus, uint32_t *out_type_id,
                                           size_t *out_actual_size) TACHYON_NOEXCEPT;

/* As tachyon_acquire_rx, polling up to max_spins times before giving up.
 * max_spins 0 polls until a message comes, the ring turns fatal or the peer is
 * gone (as published; the peer's end is this project's addition). */
TACHYON_API const void *tachyon_acquire_rx_spin(tachyon_bus_t *bus, uint32_t *out_type_id,
                                                size_t *out_actual_size, uint32_t max_spins) TACHYON_NOEXCEPT;

/*
 * Wait for the next message: spin `spin_threshold` times, then sleep on the
 * shared futex. NULL when a signal interrupted the wait (state READY, error
 * INTERRUPTED), the bus is fatal (state FATAL_ERROR), or the peer is gone and
 * every message it committed has been read (state DISCONNECTED; the error is
 * ERR_PEER_CLOSED for a clean close, ERR_PEER_DEAD for a crash).
 */
TACHYON_API const void *tachyon_acquire_rx_blocking(tachyon_bus_t *bus, uint32_t *out_type_id,
                                                    size_t *out_actual_size,
                                                    uint32_t spin_threshold) TACHYON_NOEXCEPT;

/* Release the slot returned by the last acquire_rx* call. */
TACHYON_API tachyon_error_t tachyon_commit_rx(tachyon_bus_t *bus) TACHYON_NOEXCEPT;

/* Fill up to max_msgs views with the messages available now (none committed);
 * returns how many. Release them with tachyon_commit_rx_batch. */
TACHYON_API size_t tachyon_acquire_rx_batch(tachyon_bus_t *bus, tachyon_msg_view_t *out,
                                            size_t max_msgs) TACHYON_NOEXCEPT;

/* As tachyon_acquire_rx_batch, but waits like acquire_rx_blocking for at least
 * one message. 0: interrupted, fatal or peer gone (see tachyon_get_state). */
TACHYON_API size_t tachyon_drain_batch(tachyon_bus_t *bus, tachyon_msg_view_t *out,
                                       size_t max_msgs, uint32_t spin_threshold) TACHYON_NOEXCEPT;

/* Release the first `count` views of the last batch (count may be fewer than
 * were acquired; the rest stay acquired: commit them next, or receive them
 * again). The views must be those the batch handed out, unchanged: anything
 * else is refused with ERR_STATE and nothing is released. */
TACHYON_API tachyon_error_t tachyon_commit_rx_batch(tachyon_bus_t *bus,
                                                    const tachyon_msg_view_t *views, size_t count) TACHYON_NOEXCEPT;

/* READY, DISCONNECTED (peer gone), FATAL_ERROR (corrupt segment), ... */
TACHYON_API tachyon_state_t tachyon_get_state(const tachyon_bus_t *bus) TACHYON_NOEXCEPT;

/* A full acquire fence, for callers that read shared memory by hand. */
TACHYON_API void tachyon_memory_barrier_acquire(void) TACHYON_NOEXCEPT;

/* ---- Additions of this project ------------------------------------------ */

/* A static English message for an error code ("unknown error" for others). */
TACHYON_API const char *tachyon_strerror(tachyon_error_t err) TACHYON_NOEXCEPT;

/*
 * The best sentence for `err` just returned to the calling thread: when the
 * failing call recorded details (the socket path and the system's reason, the
 * peer's pid, what it left unread), a sentence with them; otherwise
 * tachyon_strerror(err). Valid until this thread's next call into the library.
 */
TACHYON_API const char *tachyon_error_message(tachyon_error_t err) TACHYON_NOEXCEPT;

/* The error behind the calling thread's last NULL/0/failed result of a call
 * on this bus (TACHYON_SUCCESS if none failed). Other threads' errors on the
 * same bus are not seen. */
TACHYON_API tachyon_error_t tachyon_bus_last_error(const tachyon_bus_t *bus) TACHYON_NOEXCEPT;

/*
 * Listener options. Default: only the listener's own uid may connect. Each
 * call to tachyon_listen_opts_allow_uid adds a uid to the allowlist (root is
 * not special). A refused peer has its connection closed and the listener
 * returns TACHYON_ERR_PERMISSION unless keep_waiting is set, in which case it
 * keeps waiting for an allowed peer. timeout_ms < 0 waits forever; otherwise
 * ERR_TIMEOUT when no allowed peer came in time.
 */
#define TACHYON_MAX_ALLOWED_UIDS 16
typedef struct {
    size_t capacity;
    int timeout_ms;
    int keep_waiting;
    unsigned n_allowed_uids;          /* 0 = the listener's own uid only */
    uid_t allowed_uids[TACHYON_MAX_ALLOWED_UIDS];
} tachyon_listen_opts_t;

TACHYON_API void tachyon_listen_opts_init(tachyon_listen_opts_t *opts, size_t capacity) TACHYON_NOEXCEPT;
TACHYON_API tachyon_error_t tachyon_listen_opts_allow_uid(tachyon_listen_opts_t *opts, uid_t uid) TACHYON_NOEXCEPT;
TACHYON_API tachyon_error_t tachyon_bus_listen_ex(const char *socket_path,
                                                  const tachyon_listen_opts_t *opts,
                                                  tachyon_bus_t **out) TACHYON_NOEXCEPT;

/*
 * Connect, retrying while nothing listens yet, for up to timeout_ms (< 0:
 * forever). Like tachyon_bus_connect, it accepts a listener running as our
 * own uid or as root, and refuses any other with TACHYON_ERR_PERMISSION.
 */
TACHYON_API tachyon_error_t tachyon_bus_connect_timeout(const char *socket_path, int timeout_ms,
                                                        tachyon_bus_t **out) TACHYON_NOEXCEPT;

/* As tachyon_bus_connect_timeout, accepting only listeners whose uid is one of
 * allowed_uids (at most TACHYON_MAX_ALLOWED_UIDS; none = the default rule). */
TACHYON_API tachyon_error_t tachyon_bus_connect_ex(const char *socket_path, int timeout_ms,
                                                   const uid_t *allowed_uids, size_t n_allowed_uids,
                                                   tachyon_bus_t **out) TACHYON_NOEXCEPT;

/*
 * acquire_rx_blocking with a deadline: NULL with ERR_TIMEOUT after timeout_ms
 * (< 0: no deadline). Also returns on signals, fatal state and peer death.
 */
TACHYON_API const void *tachyon_acquire_rx_timeout(tachyon_bus_t *bus, uint32_t *out_type_id,
                                                   size_t *out_actual_size,
                                                   uint32_t spin_threshold, int timeout_ms) TACHYON_NOEXCEPT;

/* drain_batch with a deadline (0 with ERR_TIMEOUT when it expires). */
TACHYON_API size_t tachyon_drain_batch_timeout(tachyon_bus_t *bus, tachyon_msg_view_t *out,
                                               size_t max_msgs, uint32_t spin_threshold,
                                               int timeout_ms) TACHYON_NOEXCEPT;

/*
 * Producer side: wait for room (spin, then sleep in short steps) for up to
 * timeout_ms (< 0: forever). NULL with ERR_TIMEOUT, ERR_PEER_DEAD when the
 * consumer is gone, ERR_INTERRUPTED on a signal, or as tachyon_acquire_tx.
 */
TACHYON_API void *tachyon_acquire_tx_blocking(tachyon_bus_t *bus, size_t max_payload_size,
                                              uint32_t spin_threshold, int timeout_ms) TACHYON_NOEXCEPT;

/* Copy `size` bytes in, commit and publish: one call. Non-blocking (ERR_FULL). */
TACHYON_API tachyon_error_t tachyon_send(tachyon_bus_t *bus, const void *data, size_t size,
                                         uint32_t type_id) TACHYON_NOEXCEPT;

/*
 * Copy `count` records of `record_size` bytes each from `records`, one message
 * per record, all with `type_id`, and publish once at the end. Returns how
 * many were sent: fewer than count when the ring filled up (ERR_FULL) or on
 * error (see tachyon_bus_last_error). Non-blocking.
 */
TACHYON_API size_t tachyon_send_batch(tachyon_bus_t *bus, const void *records, size_t record_size,
                                      size_t count, uint32_t type_id) TACHYON_NOEXCEPT;

/* 1 when the peer process is alive and has not destroyed the bus, else 0,
 * and then this thread's last error on the bus says how it went
 * (ERR_PEER_CLOSED or ERR_PEER_DEAD). */
TACHYON_API int tachyon_peer_alive(tachyon_bus_t *bus) TACHYON_NOEXCEPT;

/*
 * Producer side: how commits reach the consumer. 1 (the default): each
 * commit is visible at once. commits > 1: head is stored every `commits`
 * commits, on tachyon_flush, and before the producer reports the ring full,
 * as the published tachyon-ipc library does with 32; messages then wait in
 * the producer until one of those. Meant for comparisons and for peers that
 * expect it; between two processes of this project the default already moves
 * one cache line per many messages of a dense stream. ERR_INVALID_SZ outside
 * 1..TACHYON_MAX_PUBLISH_BATCH.
 */
#define TACHYON_MAX_PUBLISH_BATCH 4096u
TACHYON_API tachyon_error_t tachyon_bus_set_publish_batch(tachyon_bus_t *bus, uint32_t commits) TACHYON_NOEXCEPT;

/*
 * What a bus has been doing, as seen from this handle. The counters are this
 * handle's own (messages it sent as a producer, received as a consumer);
 * counting costs a few additions per message. Fill and lag come from the
 * shared counters as last stored by each side (head may be up to 32 commits
 * or a quarter ring behind between two processes of this project).
 */
typedef struct {
    uint64_t messages_sent;     /* committed by this handle (producer side) */
    uint64_t bytes_sent;        /* payload bytes of those */
    uint64_t messages_received; /* released by this handle (consumer side) */
    uint64_t bytes_received;
    uint64_t ring_full;         /* times a send or acquire found no room */
    uint64_t sleeps;            /* times this consumer slept on the futex */
    uint64_t wakeups;           /* times this producer woke a sleeping consumer */
    uint64_t capacity;          /* ring size in bytes */
    uint64_t fill_bytes;        /* bytes committed and not yet given back, now */
    uint64_t fill_max_bytes;    /* the most this producer saw in the ring (when it ran short of
                                   room, or at a tachyon_bus_stats call) */
    uint64_t lag_messages;      /* consumer: messages the producer counted and this handle has not
                                   received (from the producer's stored counts; 0 if unknown) */
    uint64_t idle_ns;           /* since this handle last sent or received (0: active since the
                                   previous call) */
    int32_t peer_pid;           /* the other process (0 if unknown) */
    int32_t peer_alive;         /* 1 alive, 0 gone */
    uint32_t features;          /* extension features agreed with the peer (0: plain ABI v4 peer) */
    uint32_t state;             /* tachyon_state_t, as tachyon_get_state gives it */
} tachyon_stats_t;

/* Fill *out, and store this handle's counters into the segment, where
 * tachyon-top reads them. Like the data calls it reads both sides' private
 * counters: call it from a thread that works the bus, or when no other
 * thread is inside a call on this handle. */
TACHYON_API tachyon_error_t tachyon_bus_stats(tachyon_bus_t *bus, tachyon_stats_t *out) TACHYON_NOEXCEPT;

/*
 * Event loops. tachyon_bus_fd returns a descriptor to give to poll, select
 * or epoll (or asyncio's add_reader, tokio's AsyncFd). It is owned by the
 * handle (closed by its last tachyon_bus_destroy) and the same on every call;
 * -1 when the system refuses one (see tachyon_bus_last_error).
 *
 * It polls readable (level-triggered) after tachyon_bus_fd_arm armed it and
 * then: a message came (TACHYON_WAIT_RX), room appeared after the ring was
 * full (TACHYON_WAIT_TX: room for the slot the last acquire could not
 * place), the peer is gone or the ring turned fatal, or a periodic tick went
 * off (every millisecond with a plain ABI v4 peer, which cannot signal it;
 * every 100 ms with a peer of this project). Readable only means "look":
 * try the non-blocking calls (acquire_rx, acquire_rx_batch, acquire_tx,
 * send); when they find nothing to do, call tachyon_bus_fd_arm again before
 * waiting. It stays readable until the next arm, so a slow loop misses
 * nothing; once the peer is gone it stays readable.
 *
 * tachyon_bus_fd_arm clears the descriptor, then returns 1 when what was
 * asked for (TACHYON_WAIT_RX, TACHYON_WAIT_TX or both) is there already (do
 * not wait: call the data functions), 0 when armed (wait for the
 * descriptor), -1 on error. Call it from the thread that works that side.
 * Producers and consumers that never arm pay nothing for it.
 */
#define TACHYON_WAIT_RX 1u
#define TACHYON_WAIT_TX 2u
TACHYON_API int tachyon_bus_fd(tachyon_bus_t *bus) TACHYON_NOEXCEPT;
TACHYON_API int tachyon_bus_fd_arm(tachyon_bus_t *bus, unsigned what) TACHYON_NOEXCEPT;

/*
 * Reading a bus from the outside, as a monitor does (tachyon-top): the
 * segment behind `fd` (a descriptor of its memfd, e.g. /proc/<pid>/fd/<n>
 * opened read-only by a process of the same user). Only a sealed segment
 * with a valid ABI v4 header is read; its bytes are treated as untrusted.
 * ERR_ABI_MISMATCH: not a Tachyon segment; ERR_SEAL: not sealed against
 * shrinking (reading it could fault); ERR_INVALID_SZ: a bad capacity.
 */
typedef struct {
    int32_t pid;           /* the process that last stored this side's counters */
    int32_t valid;         /* 1 when that side ever stored them (a side of this project) */
    uint64_t messages;
    uint64_t bytes;
    uint64_t stalls;       /* producer: times the ring was full; consumer: futex sleeps */
    uint64_t wakes;        /* producer: sleeping consumers woken */
    uint64_t fill_max;     /* producer: most bytes it saw in the ring */
    uint64_t updated_ns;   /* CLOCK_MONOTONIC when stored */
    uint64_t active_ns;    /* CLOCK_MONOTONIC of a recent message */
} tachyon_side_info_t;

typedef struct {
    uint32_t version;
    uint32_t state;             /* tachyon_state_t */
    uint64_t capacity;
    uint64_t head;              /* as last stored (may lag: see tachyon_bus_stats) */
    uint64_t tail;
    uint32_t features;          /* extension features the two sides agreed on */
    uint32_t consumer_sleeping; /* 0 awake, 1 asleep, 2 pure spin, 3 waiting in an event loop */
    tachyon_side_info_t producer;
    tachyon_side_info_t consumer;
} tachyon_segment_info_t;

TACHYON_API tachyon_error_t tachyon_segment_inspect(int fd, tachyon_segment_info_t *out) TACHYON_NOEXCEPT;

/* The ring's capacity in bytes, and the largest payload one message can carry. */
TACHYON_API size_t tachyon_bus_capacity(const tachyon_bus_t *bus) TACHYON_NOEXCEPT;
TACHYON_API size_t tachyon_bus_max_payload(const tachyon_bus_t *bus) TACHYON_NOEXCEPT;

/* ---- Request/reply ---------------------------------------------------------
 *
 * A request/reply connection joins one caller and one server with two rings,
 * each a plain bus's segment (docs/rpc.md): requests go caller -> server on
 * the request ring (fwd), replies server -> caller on the reply ring (rev).
 * The listener is the server: it serves requests and replies. The connector
 * is the caller: it calls and waits. A handle refuses the other role's calls
 * (ERR_STATE). Every request carries a correlation id (1, 2, 3, ... on a
 * connection), and its reply carries the same id.
 *
 * Replies come in the order the calls were made: several calls may be in
 * flight (pipelining), and the caller waits for them in the order it made
 * them. A wait for another call's id than the next reply's fails with
 * ERR_WRONG_REPLY and leaves that reply in place.
 *
 * Threads: the sending calls (call, acquire_tx, commit_call, rollback_call;
 * reply, acquire_reply_tx, commit_reply, rollback_reply) are one side, the
 * receiving calls (wait, commit_rx, abandon; serve, commit_serve) the other;
 * one thread at a time may use each side, as on a plain bus. The others may
 * be called from any thread, except that tachyon_rpc_destroy must not race
 * with a call on the same reference (see tachyon_rpc_ref).
 *
 * The peer's end: a wait or serve returns NULL with ERR_PEER_CLOSED (the peer
 * destroyed its handle) or ERR_PEER_DEAD (its process ended without doing so)
 * once everything the peer sent has been read, within about 50 ms of its end.
 *
 * The functions from tachyon_rpc_listen to tachyon_rpc_get_state are the
 * published tachyon-ipc request/reply ABI; the rest are this project's.
 * Error details: tachyon_rpc_last_error, then tachyon_error_message.
 */
typedef struct tachyon_rpc_bus tachyon_rpc_bus_t;

/* Server: create the request ring (cap_fwd bytes) and the reply ring (cap_rev
 * bytes; each a power of two, 64 B to 1 GiB), wait at socket_path for one
 * caller and hand it both. Blocks; a signal returns ERR_INTERRUPTED. *out is
 * written only on success. */
TACHYON_API tachyon_error_t tachyon_rpc_listen(const char *socket_path, size_t cap_fwd, size_t cap_rev,
                                               tachyon_rpc_bus_t **out) TACHYON_NOEXCEPT;

/* Caller: connect to a request/reply listener at socket_path, one attempt.
 * A plain bus listener there gives ERR_ABI_MISMATCH. */
TACHYON_API tachyon_error_t tachyon_rpc_connect(const char *socket_path, tachyon_rpc_bus_t **out) TACHYON_NOEXCEPT;

/* Drop one reference; the last one closes this end (the peer's waits end
 * with ERR_PEER_CLOSED once it has read what was sent) and frees the handle.
 * Every pointer from it becomes invalid then. NULL is a no-op. */
TACHYON_API void tachyon_rpc_destroy(tachyon_rpc_bus_t *rpc) TACHYON_NOEXCEPT;

/* Take one more reference (this project's addition): a thread that calls
 * into the handle while another may destroy it holds its own, and the rings
 * stay mapped until the last reference is dropped. */
TACHYON_API void tachyon_rpc_ref(tachyon_rpc_bus_t *rpc) TACHYON_NOEXCEPT;

/* Caller: copy `size` bytes (0 allowed) into a request of `msg_type`, publish
 * it and set *out_cid to its correlation id. Non-blocking: ERR_FULL when the
 * request ring has no room, ERR_INVALID_SZ when it is larger than
 * tachyon_rpc_max_request. Replaces a slot still acquired. */
TACHYON_API tachyon_error_t tachyon_rpc_call(tachyon_rpc_bus_t *rpc, const void *payload, size_t size,
                                             uint32_t msg_type, uint64_t *out_cid) TACHYON_NOEXCEPT;

/* Caller: reserve a request slot for up to max_size bytes (64-byte aligned,
 * writable; the slot holds up to max_size rounded up to 64). NULL when full
 * or too large (tachyon_rpc_last_error). Non-blocking. Replaces a slot still
 * acquired. Follow with commit_call or rollback_call. */
TACHYON_API void *tachyon_rpc_acquire_tx(tachyon_rpc_bus_t *rpc, size_t max_size) TACHYON_NOEXCEPT;

/* Caller: publish the acquired slot as a request of actual_size bytes and set
 * *out_cid. Each attempt uses up one id. ERR_STATE without an acquired slot;
 * ERR_INVALID_SZ when actual_size exceeds the slot (the slot stays acquired). */
TACHYON_API tachyon_error_t tachyon_rpc_commit_call(tachyon_rpc_bus_t *rpc, size_t actual_size, uint32_t msg_type,
                                                    uint64_t *out_cid) TACHYON_NOEXCEPT;

/* Caller: give the acquired slot back unsent (ERR_STATE recorded if none). */
TACHYON_API void tachyon_rpc_rollback_call(tachyon_rpc_bus_t *rpc) TACHYON_NOEXCEPT;

/*
 * Caller: wait for the reply to call `cid` (0: whichever reply comes next):
 * spin `spin` times, then sleep. Returns its payload (read-only, valid until
 * tachyon_rpc_commit_rx) and sets *out_size and *out_msg_type (bits 15..0).
 * NULL with ERR_WRONG_REPLY when the next reply answers another call (it
 * stays for the wait that asks for it), ERR_INTERRUPTED on a signal,
 * ERR_FATAL on a corrupt ring, ERR_PEER_CLOSED / ERR_PEER_DEAD once the
 * server is gone and every reply it sent has been read. Waiting again before
 * commit_rx returns the same reply.
 */
TACHYON_API const void *tachyon_rpc_wait(tachyon_rpc_bus_t *rpc, uint64_t cid, size_t *out_size,
                                         uint32_t *out_msg_type, uint32_t spin) TACHYON_NOEXCEPT;

/* Caller: release the reply the last successful wait returned (ERR_STATE if
 * none is held). */
TACHYON_API tachyon_error_t tachyon_rpc_commit_rx(tachyon_rpc_bus_t *rpc) TACHYON_NOEXCEPT;

/* Server: wait for the next request as tachyon_rpc_wait does (NULL on a
 * signal, a corrupt ring, or the caller's end after its last request). Note
 * the order of the outputs: id, type (bits 15..0), size. The id is the
 * caller's, unchecked. */
TACHYON_API const void *tachyon_rpc_serve(tachyon_rpc_bus_t *rpc, uint64_t *out_cid, uint32_t *out_msg_type,
                                          size_t *out_size, uint32_t spin) TACHYON_NOEXCEPT;

/* Server: release the request the last successful serve returned. */
TACHYON_API tachyon_error_t tachyon_rpc_commit_serve(tachyon_rpc_bus_t *rpc) TACHYON_NOEXCEPT;

/* Server: copy `size` bytes into a reply to call `cid` (0: ERR_INVALID_SZ)
 * and publish it. Non-blocking: ERR_FULL when the reply ring has no room. */
TACHYON_API tachyon_error_t tachyon_rpc_reply(tachyon_rpc_bus_t *rpc, uint64_t cid, const void *payload, size_t size,
                                              uint32_t msg_type) TACHYON_NOEXCEPT;

/* Server: reserve a reply slot, as tachyon_rpc_acquire_tx. */
TACHYON_API void *tachyon_rpc_acquire_reply_tx(tachyon_rpc_bus_t *rpc, size_t max_size) TACHYON_NOEXCEPT;

/* Server: publish the acquired slot as the reply to `cid`. cid 0 gives
 * ERR_INVALID_SZ and keeps the slot acquired; otherwise as commit_call. */
TACHYON_API tachyon_error_t tachyon_rpc_commit_reply(tachyon_rpc_bus_t *rpc, uint64_t cid, size_t actual_size,
                                                     uint32_t msg_type) TACHYON_NOEXCEPT;

/* Server: give the acquired reply slot back unsent. */
TACHYON_API void tachyon_rpc_rollback_reply(tachyon_rpc_bus_t *rpc) TACHYON_NOEXCEPT;

/* pure_spin != 0: this side's waits (wait on the caller, serve on the
 * server) never sleep, and the peer skips waking them. Each side sets its
 * own. NULL is a no-op. */
TACHYON_API void tachyon_rpc_set_polling_mode(const tachyon_rpc_bus_t *rpc, int pure_spin) TACHYON_NOEXCEPT;

/* FATAL_ERROR if either ring is corrupt, DISCONNECTED once the peer is gone,
 * READY while both rings are, else UNKNOWN (also for NULL). */
TACHYON_API tachyon_state_t tachyon_rpc_get_state(const tachyon_rpc_bus_t *rpc) TACHYON_NOEXCEPT;

/* tachyon_rpc_listen with listener options (allowed uids, keep_waiting, a
 * timeout: ERR_TIMEOUT when no caller came). opts->capacity is ignored; NULL
 * opts: the defaults. */
TACHYON_API tachyon_error_t tachyon_rpc_listen_ex(const char *socket_path, size_t cap_fwd, size_t cap_rev,
                                                  const tachyon_listen_opts_t *opts,
                                                  tachyon_rpc_bus_t **out) TACHYON_NOEXCEPT;

/* Connect, retrying while nothing listens yet, for up to timeout_ms (< 0:
 * forever). The listener must run as our uid or root. */
TACHYON_API tachyon_error_t tachyon_rpc_connect_timeout(const char *socket_path, int timeout_ms,
                                                        tachyon_rpc_bus_t **out) TACHYON_NOEXCEPT;

/* As tachyon_rpc_connect_timeout, accepting only listeners whose uid is one of
 * allowed_uids (at most TACHYON_MAX_ALLOWED_UIDS; none = the default rule). */
TACHYON_API tachyon_error_t tachyon_rpc_connect_ex(const char *socket_path, int timeout_ms,
                                                   const uid_t *allowed_uids, size_t n_allowed_uids,
                                                   tachyon_rpc_bus_t **out) TACHYON_NOEXCEPT;

/* tachyon_rpc_wait with a deadline: NULL with ERR_TIMEOUT after timeout_ms
 * (0: only a reply already there; < 0: no deadline). The call stays in
 * flight: wait for it again, or tachyon_rpc_abandon it. */
TACHYON_API const void *tachyon_rpc_wait_timeout(tachyon_rpc_bus_t *rpc, uint64_t cid, size_t *out_size,
                                                 uint32_t *out_msg_type, uint32_t spin,
                                                 int timeout_ms) TACHYON_NOEXCEPT;

/* tachyon_rpc_serve with a deadline (NULL with ERR_TIMEOUT). */
TACHYON_API const void *tachyon_rpc_serve_timeout(tachyon_rpc_bus_t *rpc, uint64_t *out_cid, uint32_t *out_msg_type,
                                                  size_t *out_size, uint32_t spin, int timeout_ms) TACHYON_NOEXCEPT;

/* tachyon_rpc_acquire_tx waiting for room up to timeout_ms (< 0: forever):
 * NULL with ERR_TIMEOUT, ERR_PEER_DEAD / ERR_PEER_CLOSED when the server is
 * gone, ERR_INTERRUPTED on a signal. */
TACHYON_API void *tachyon_rpc_acquire_tx_timeout(tachyon_rpc_bus_t *rpc, size_t max_size,
                                                 int timeout_ms) TACHYON_NOEXCEPT;

/* tachyon_rpc_acquire_reply_tx waiting for room, as above. */
TACHYON_API void *tachyon_rpc_acquire_reply_tx_timeout(tachyon_rpc_bus_t *rpc, size_t max_size,
                                                       int timeout_ms) TACHYON_NOEXCEPT;

/* Caller, receiving side: give up on call `cid`; its reply is dropped when it
 * comes, by whichever wait meets it. ERR_INVALID_SZ for an id never issued. */
TACHYON_API tachyon_error_t tachyon_rpc_abandon(tachyon_rpc_bus_t *rpc, uint64_t cid) TACHYON_NOEXCEPT;

/* The error behind the calling thread's last failed call on this handle
 * (TACHYON_SUCCESS if none); tachyon_error_message(err) then says more. */
TACHYON_API tachyon_error_t tachyon_rpc_last_error(const tachyon_rpc_bus_t *rpc) TACHYON_NOEXCEPT;

/* 1 while the peer process lives and has not destroyed its handle, else 0
 * (and this thread's last error says how it ended). */
TACHYON_API int tachyon_rpc_peer_alive(tachyon_rpc_bus_t *rpc) TACHYON_NOEXCEPT;

/* The largest request and the largest reply payload (ring capacity - 64). */
TACHYON_API size_t tachyon_rpc_max_request(const tachyon_rpc_bus_t *rpc) TACHYON_NOEXCEPT;
TACHYON_API size_t tachyon_rpc_max_reply(const tachyon_rpc_bus_t *rpc) TACHYON_NOEXCEPT;

/* ---- Fan-out and fan-in -------------------------------------------------------
 *
 * Fan-out: one producer, many consumers, every consumer sees every message.
 * The producer writes each message once into one shared ring; each consumer
 * reads it in place through its own cursor. Consumers join and leave at any
 * time (up to max_consumers at once); one that leaves or whose process ends
 * is forgotten at once and never holds the producer back again.
 *
 * Fan-in: many producers, one consumer. Each producer gets a ring of its
 * own (a plain bus, which it sends on with the bus calls); the consumer
 * takes from all of them with one call, round robin, and learns which
 * producer (index and pid) sent each message.
 *
 * Both are channels of their own kind (docs/protocol.md, "Fan-out and
 * fan-in"): a plain bus connector at a fan socket gets ERR_ABI_MISMATCH,
 * and a fan connector at a bus socket too. Sockets, credentials and sealed
 * memfds work as for a bus (same uid by default, tachyon_listen_opts_t).
 *
 * Threads: one thread at a time per handle side, as on a bus; the
 * destroy calls must not race with other calls on the handle. After fork()
 * the child's calls return ERR_FORKED. Blocking calls return
 * ERR_INTERRUPTED when a signal arrives. Errors that come with a detail:
 * tachyon_error_message on the calling thread.
 */
typedef struct tachyon_fanout tachyon_fanout_t;       /* the fan-out producer */
typedef struct tachyon_fanout_rx tachyon_fanout_rx_t; /* one fan-out consumer */
typedef struct tachyon_fanin tachyon_fanin_t;         /* the fan-in consumer */

typedef enum {
    TACHYON_FAN_BLOCK = 0,     /* the producer waits for the slowest consumer (back-pressure) */
    TACHYON_FAN_DROP_SLOW = 1  /* the producer drops a consumer a whole ring behind instead */
} tachyon_fan_policy_t;

typedef enum {
    TACHYON_FAN_START_NEWEST = 0, /* the newest message in the ring (or the next one, if none is safe) */
    TACHYON_FAN_START_OLDEST = 1  /* the oldest message still in the ring */
} tachyon_fan_start_t;

/* One received message. The payload stays valid until the commit_rx call. */
typedef struct {
    const void *ptr;     /* the payload, in place in the shared ring (read-only) */
    size_t size;
    uint32_t type_id;
    uint32_t producer;   /* fan-in: the sending producer's index (0 .. max_producers - 1); fan-out: 0 */
    int32_t pid;         /* the sending process */
    uint32_t reserved_;
    uint64_t seq;        /* fan-out: the message's number (0, 1, 2, ... per channel);
                            fan-in: how many messages of that producer were received before */
} tachyon_fan_msg_t;

/*
 * Producer: create the ring (capacity a power of two, 256 B to 1 GiB) and
 * start admitting consumers at socket_path, at most max_consumers (1..64)
 * at once. Returns at once; consumers join whenever they come. The socket
 * file stays until tachyon_fanout_destroy. Messages sent before anyone
 * joined stay in the ring for consumers that start at the oldest.
 */
TACHYON_API tachyon_error_t tachyon_fanout_listen(const char *socket_path, size_t capacity, uint32_t max_consumers,
                                                  tachyon_fan_policy_t policy, tachyon_fanout_t **out) TACHYON_NOEXCEPT;

/* The same with listener options (allowed uids; timeout and keep_waiting are
 * ignored: the producer admits consumers until destroyed). NULL: defaults. */
TACHYON_API tachyon_error_t tachyon_fanout_listen_ex(const char *socket_path, size_t capacity,
                                                     uint32_t max_consumers, tachyon_fan_policy_t policy,
                                                     const tachyon_listen_opts_t *opts,
                                                     tachyon_fanout_t **out) TACHYON_NOEXCEPT;

/* Close the channel: consumers read what is left, then get ERR_PEER_CLOSED
 * (a producer that dies instead gives ERR_PEER_DEAD). NULL is a no-op. */
TACHYON_API void tachyon_fanout_destroy(tachyon_fanout_t *fo) TACHYON_NOEXCEPT;

/*
 * Reserve a slot for up to max_payload bytes (at most
 * tachyon_fanout_max_payload) and return its payload (64-byte aligned).
 * With BLOCK, waits up to timeout_ms for the slowest consumer to make room
 * (0: do not wait, ERR_FULL; < 0: no deadline; ERR_TIMEOUT when it expires).
 * With DROP_SLOW it never waits for a consumer. NULL with the reason in
 * tachyon_fanout_last_error. Follow with commit_tx or rollback_tx.
 */
TACHYON_API void *tachyon_fanout_acquire_tx(tachyon_fanout_t *fo, size_t max_payload, int timeout_ms) TACHYON_NOEXCEPT;

/* Publish the acquired slot to every consumer (actual_size <= what was acquired). */
TACHYON_API tachyon_error_t tachyon_fanout_commit_tx(tachyon_fanout_t *fo, size_t actual_size,
                                                     uint32_t type_id) TACHYON_NOEXCEPT;

/* Give the acquired slot back unpublished. */
TACHYON_API tachyon_error_t tachyon_fanout_rollback_tx(tachyon_fanout_t *fo) TACHYON_NOEXCEPT;

/* Copy size bytes in and publish: acquire_tx + memcpy + commit_tx. */
TACHYON_API tachyon_error_t tachyon_fanout_send(tachyon_fanout_t *fo, const void *data, size_t size, uint32_t type_id,
                                                int timeout_ms) TACHYON_NOEXCEPT;

/* Consumers joined right now; the largest payload; this thread's last error. */
TACHYON_API uint32_t tachyon_fanout_consumers(const tachyon_fanout_t *fo) TACHYON_NOEXCEPT;
TACHYON_API size_t tachyon_fanout_max_payload(const tachyon_fanout_t *fo) TACHYON_NOEXCEPT;
TACHYON_API tachyon_error_t tachyon_fanout_last_error(const tachyon_fanout_t *fo) TACHYON_NOEXCEPT;

/*
 * Consumer: join the fan-out at socket_path, starting at the newest or the
 * oldest message in the ring. timeout_ms as for tachyon_bus_connect_timeout
 * (0: one attempt). ERR_FULL when max_consumers are joined already,
 * ERR_ABI_MISMATCH when no fan-out listens there (a plain bus, say).
 */
TACHYON_API tachyon_error_t tachyon_fanout_connect(const char *socket_path, tachyon_fan_start_t start, int timeout_ms,
                                                   tachyon_fanout_rx_t **out) TACHYON_NOEXCEPT;

/* Leave: the producer forgets this consumer at once. NULL is a no-op. */
TACHYON_API void tachyon_fanout_rx_destroy(tachyon_fanout_rx_t *rx) TACHYON_NOEXCEPT;

/*
 * The next message, in place: spin `spin` times, then sleep, for up to
 * timeout_ms (0: only a message already there, else ERR_EMPTY; < 0: no
 * deadline). Errors: ERR_TIMEOUT; ERR_INTERRUPTED (a signal); ERR_OVERRUN
 * (DROP_SLOW: this consumer fell a whole ring behind and was dropped;
 * tachyon_fanout_missed gives the exact number of messages it lost, and the
 * next call continues from the newest); ERR_PEER_CLOSED / ERR_PEER_DEAD once
 * the producer is gone and every message it published was read; ERR_FATAL
 * (a corrupt ring); ERR_STATE (the last message was not committed).
 */
TACHYON_API tachyon_error_t tachyon_fanout_acquire_rx(tachyon_fanout_rx_t *rx, tachyon_fan_msg_t *msg, uint32_t spin,
                                                      int timeout_ms) TACHYON_NOEXCEPT;

/* Release the message acquire_rx returned. ERR_OVERRUN: the consumer was
 * dropped while it held the message, whose bytes may have been overwritten
 * under it (discard what was read; the next acquire_rx reports the count). */
TACHYON_API tachyon_error_t tachyon_fanout_commit_rx(tachyon_fanout_rx_t *rx) TACHYON_NOEXCEPT;

/* Messages lost at the last ERR_OVERRUN, and in all; this consumer's slot. */
TACHYON_API uint64_t tachyon_fanout_missed(const tachyon_fanout_rx_t *rx) TACHYON_NOEXCEPT;
TACHYON_API uint64_t tachyon_fanout_missed_total(const tachyon_fanout_rx_t *rx) TACHYON_NOEXCEPT;
TACHYON_API uint32_t tachyon_fanout_index(const tachyon_fanout_rx_t *rx) TACHYON_NOEXCEPT;
TACHYON_API tachyon_error_t tachyon_fanout_rx_last_error(const tachyon_fanout_rx_t *rx) TACHYON_NOEXCEPT;

/*
 * Fan-in consumer: admit up to max_producers (1..64) producers at
 * socket_path, each with a ring of `capacity` bytes (as a bus's). Returns at
 * once; producers join whenever they come.
 */
TACHYON_API tachyon_error_t tachyon_fanin_listen(const char *socket_path, size_t capacity, uint32_t max_producers,
                                                 tachyon_fanin_t **out) TACHYON_NOEXCEPT;
TACHYON_API tachyon_error_t tachyon_fanin_listen_ex(const char *socket_path, size_t capacity, uint32_t max_producers,
                                                    const tachyon_listen_opts_t *opts,
                                                    tachyon_fanin_t **out) TACHYON_NOEXCEPT;

/* Close: every producer's sends then fail with ERR_PEER_CLOSED. */
TACHYON_API void tachyon_fanin_destroy(tachyon_fanin_t *fi) TACHYON_NOEXCEPT;

/*
 * The next message from any producer, round robin (one message from each
 * producer that has one before a second from any), in place; spin and
 * timeout_ms as tachyon_fanout_acquire_rx. msg->producer and msg->pid say
 * who sent it. When a producer is gone and everything it committed was
 * read, one call reports it: ERR_PEER_CLOSED or ERR_PEER_DEAD with
 * msg->producer and msg->pid set and msg->ptr NULL; its slot is then free
 * and the next call goes on with the others.
 */
TACHYON_API tachyon_error_t tachyon_fanin_acquire_rx(tachyon_fanin_t *fi, tachyon_fan_msg_t *msg, uint32_t spin,
                                                     int timeout_ms) TACHYON_NOEXCEPT;

/* Release the message acquire_rx returned (its producer's ring gets the room back). */
TACHYON_API tachyon_error_t tachyon_fanin_commit_rx(tachyon_fanin_t *fi) TACHYON_NOEXCEPT;

/* Producers joined right now, and this thread's last error. */
TACHYON_API uint32_t tachyon_fanin_producers(const tachyon_fanin_t *fi) TACHYON_NOEXCEPT;
TACHYON_API tachyon_error_t tachyon_fanin_last_error(const tachyon_fanin_t *fi) TACHYON_NOEXCEPT;

/*
 * Fan-in producer: join the fan-in at socket_path and get a bus to send on
 * (tachyon_acquire_tx, tachyon_commit_tx, tachyon_send,
 * tachyon_acquire_tx_blocking, ...; the rx calls have nothing to read);
 * tachyon_bus_destroy leaves. *out_index (may be NULL) receives our index.
 * ERR_FULL when max_producers are joined, ERR_ABI_MISMATCH when no fan-in
 * listens there.
 */
TACHYON_API tachyon_error_t tachyon_fanin_connect(const char *socket_path, int timeout_ms, uint32_t *out_index,
                                                  tachyon_bus_t **out) TACHYON_NOEXCEPT;

#ifdef __cplusplus
}
#endif

#endif /* TACHYON_C_API_H */

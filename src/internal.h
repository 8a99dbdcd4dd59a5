/*
 * internal.h - the process-local bus object and the functions the source
 * files share. Nothing here is part of the ABI.
 *
 *   state.c      errors (per thread), the fatal flag, peer gone, fork()
 *   shm.c        memfd segment: create, seal, map, check a received fd
 *   socket.c     Unix sockets: listen/accept/connect, credentials, bytes + fds
 *   handshake.c  the rendezvous: the 32 bytes + memfd, then the extension exchange
 *   attach.c     a handle over one segment: the listener's new one, the connector's
 *   ring.c       producer and consumer ring operations, header validation
 *   wait.c       futex sleep/wake, peer liveness (pidfd)
 *   bus.c        the public API: lifecycle, blocking calls, options
 *
 * Calls run one way: bus.c -> ring.c / wait.c -> state.c.
 */
#ifndef TACHYON_INTERNAL_H
#define TACHYON_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "clock.h"
#include "tachyon.h"
#include "wire.h"

#define TACHYON_HIDDEN __attribute__((visibility("hidden")))

#ifdef __GNUC__
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#else
#define likely(x) (x)
#define unlikely(x) (x)
#endif

/* How long one futex sleep lasts before the consumer re-checks peer liveness.
 * Peer death is therefore noticed within about this long. The value in use is
 * wait_sleep_slice_ms (wait.c), which tests may lengthen so that a lost
 * wake-up, which costs a whole slice, stands out from scheduling noise. */
#define TACHYON_SLEEP_SLICE_MS 50

/* How the producer tells the consumer that a slot is there (ring.c). */
enum tx_publication {
    PUBLISH_HEAD_EACH = 0,  /* head after every commit (a plain ABI v4 consumer) */
    PUBLISH_STAMPS = 1,     /* each slot's stamp; head every LAZY_HEAD_COMMITS (a consumer of ours) */
    PUBLISH_HEAD_BATCH = 2, /* head every publish_batch commits, no stamps (tachyon_bus_set_publish_batch) */
};

/* Producer-private ring state: never read by the consumer. */
struct tachyon_tx_state {
    uint64_t head;          /* next free byte (committed, and skip markers) */
    uint64_t committed;     /* end of the last committed message: what may be published */
    uint64_t published;     /* the head value last stored in the segment */
    enum tx_publication publication;
    uint32_t publish_batch; /* commits per head store in PUBLISH_HEAD_BATCH (1: not asked) */
    uint32_t unpublished;   /* commits since head was last stored */
    uint64_t cached_tail;   /* last tail seen; refreshed only when short of room */
    uint64_t pending_pos;   /* start of the acquired slot */
    uint32_t pending_size;  /* reserved bytes of the acquired slot; 0 = none */
    uint32_t pending_max;   /* payload bytes asked for by the acquire */
    int64_t next_liveness_ns; /* a full ring polled: when to check the consumer again */
    /* Counted here, stored into the segment's producer block now and then. */
    uint64_t messages, bytes, full, wakes, fill_max;
    int64_t active_ns;      /* coarse time of a recent commit */
    uint64_t wait_need;     /* bytes the last acquire found no room for (event loops wait for them) */
    uint32_t fencing;       /* every stamp is fenced now (the consumer asked: pair M) */
};

/* One message handed out by a batch receive: where the tail goes once it is
 * committed, and its slot, to check a view given back. */
struct rx_batch_entry {
    uint64_t end;
    const void *payload;
    uint32_t slot_size;
    uint32_t size;
};

/* Consumer-private ring state. */
struct tachyon_rx_state {
    uint64_t tail;          /* next byte to read */
    uint64_t published_tail; /* the tail value last stored in the segment */
    uint64_t cached_head;   /* last head seen; refreshed only when caught up */
    uint64_t pending_end;   /* tail after the acquired message(s) */
    size_t pending_count;   /* messages acquired and not yet committed */
    int pending_batch;      /* they came from a batch receive (rx.batch describes them) */
    const uint8_t *pending_payload; /* a single receive's payload (its header is 64 bytes before) */
    struct rx_batch_entry *batch; /* the last batch handed out (pending_count entries) */
    size_t batch_room;
    int64_t next_liveness_ns; /* nothing to read: when to check the producer again */
    int producer_stamps;    /* the producer is known to stamp slots: spinning reads head rarely */
    uint64_t messages_at_sleep; /* rx.messages when it last went to sleep */
    uint32_t sparse_sleeps; /* sleeps in a row after at most SPARSE_MESSAGES messages each */
    uint32_t wants_fence;   /* what it last asked of the producer (pair M) */
    uint32_t pending_size;  /* payload bytes of a single receive (for the counters) */
    /* Counted here, stored into the segment's consumer block now and then. */
    uint64_t messages, bytes, sleeps;
    uint64_t stored_messages; /* messages when the block was last stored */
    int64_t active_ns;      /* coarse time of a recent receive */
};

struct tachyon_bus {
    _Atomic int refs;
    uint64_t id;               /* process-unique; errors are kept per (thread, id) */
    unsigned fork_generation;  /* status_fork_count when the handle was made */
    uint32_t own_pid;          /* this process, for the statistics blocks (a forked child never writes them) */
    tachyon_segment_header_t *hdr;
    uint8_t *ring;
    uint64_t capacity;
    uint64_t mask;
    size_t map_size;

    struct tachyon_tx_state tx;
    struct tachyon_rx_state rx;

    /* Peer liveness: a pidfd (or -1 with peer_pid for the kill(0) fallback),
     * and the segment fd through which we hold our byte and look at the
     * peer's (shm.c; -1 when we hold none). */
    int seg_fd;
    uint32_t peer_byte;
    int peer_pidfd;

    /* Event loops (notify.c): our eventfd (the peer signals it), the peer's
     * (-1 with a plain v4 peer), and, once tachyon_bus_fd was asked for, the
     * epoll descriptor over ours, the peer's pidfd and a timer. */
    int evfd;
    int peer_evfd;
    _Atomic int epfd;
    int timerfd;
    pid_t peer_pid;
    _Atomic int peer_gone;   /* enum peer_presence (state.h), sticky once set */
    _Atomic int fatal;       /* the ring is unusable (state.h) */
    _Atomic int64_t state_next_check_ns; /* tachyon_get_state's liveness pace */

    /* What the peer is known to handle beyond plain ABI v4 (negotiated at the
     * handshake; 0 with a plain v4 peer). */
    uint32_t peer_features;
    /* Slot stamps are position ^ stamp_salt (0: this segment has none: its
     * listener was not of this project). */
    uint64_t stamp_salt;

    /* Written through const pointers by the published API's setters. */
    _Atomic int pure_spin;   /* this handle's consumer never sleeps */

    /* tachyon_bus_stats: the counts at the previous call, to tell activity. */
    uint64_t stats_seen_sent, stats_seen_received;
};

/* shm.c */
TACHYON_HIDDEN tachyon_error_t shm_create_segment(uint64_t capacity, const char *socket_path, int *out_fd);
TACHYON_HIDDEN tachyon_error_t shm_check_received_fd(int fd, uint64_t map_size);
TACHYON_HIDDEN tachyon_error_t shm_map(int fd, size_t map_size, int prefault, void **out);
TACHYON_HIDDEN void shm_format(tachyon_segment_header_t *hdr, uint32_t capacity);
TACHYON_HIDDEN tachyon_error_t shm_check_header(const tachyon_segment_header_t *hdr, uint64_t capacity);
TACHYON_HIDDEN int shm_reopen(int fd);
/* A fresh salt for slot stamps (never 0, low six bits set). */
TACHYON_HIDDEN uint64_t shm_new_stamp_salt(void);
TACHYON_HIDDEN int shm_hold(int fd, uint32_t byte);
TACHYON_HIDDEN int shm_held_by_peer(int fd, uint32_t byte);
/* The bytes of the segment file each side holds a lock on (shm.c). */
#define SHM_LISTENER_BYTE 0u
#define SHM_CONNECTOR_BYTE 1u

/* socket.c */
struct tachyon_peer {
    pid_t pid;
    int pidfd;   /* -1 when the kernel gives none */
};
TACHYON_HIDDEN tachyon_error_t sock_listen(const char *path, const tachyon_listen_opts_t *opts, int *out_lfd);
TACHYON_HIDDEN void sock_close_listener(int lfd, const char *path);
TACHYON_HIDDEN tachyon_error_t sock_accept_allowed(int lfd, const tachyon_listen_opts_t *opts, int *out_conn,
                                                   struct tachyon_peer *peer);
TACHYON_HIDDEN tachyon_error_t sock_connect(const char *path, int64_t deadline_ms, int *out_sock);
TACHYON_HIDDEN tachyon_error_t sock_check_listener(int sock, const char *path, const uid_t *allowed,
                                                   size_t n_allowed, struct tachyon_peer *peer);
TACHYON_HIDDEN tachyon_error_t sock_send(int sock, const void *buf, size_t len, const int *fds, int nfds);
TACHYON_HIDDEN tachyon_error_t sock_recv(int sock, int64_t deadline_ms, void *buf, size_t len, int *fds,
                                         int max_fds, int *nfds);
TACHYON_HIDDEN int64_t sock_remaining_ms(int64_t deadline_ms);

/* handshake.c */
TACHYON_HIDDEN tachyon_error_t handshake_listen(const char *path, const tachyon_listen_opts_t *opts,
                                                const tachyon_handshake_t *hs, const int *fds, int nfds,
                                                struct tachyon_peer *peer, int *out_conn);
TACHYON_HIDDEN tachyon_error_t handshake_connect(const char *path, int timeout_ms, const uid_t *allowed_uids,
                                                 size_t n_allowed, tachyon_handshake_t *hs, int *fds,
                                                 int max_fds, int *nfds, struct tachyon_peer *peer,
                                                 int *out_sock);
TACHYON_HIDDEN void handshake_fill(tachyon_handshake_t *hs, uint32_t capacity_fwd, uint32_t capacity_rev,
                                   uint32_t flags);
TACHYON_HIDDEN tachyon_error_t handshake_check_abi(const tachyon_handshake_t *hs);
TACHYON_HIDDEN tachyon_error_t handshake_check_ring(uint32_t capacity, uint32_t shm_size);
TACHYON_HIDDEN tachyon_error_t handshake_validate(const tachyon_handshake_t *hs, int nfds, uint64_t *capacity);
TACHYON_HIDDEN uint32_t handshake_ext_answer(int conn, uint32_t ours);
TACHYON_HIDDEN uint32_t handshake_ext_offer(int sock, uint32_t ours, int64_t deadline_ms);
/* The same, each side also handing the other an eventfd (TACHYON_FEATURE_EVENTFD):
 * ours (-1: none) goes out, the peer's lands in *peer_evfd (-1: none). */
TACHYON_HIDDEN uint32_t handshake_ext_answer_fd(int conn, uint32_t ours, int our_evfd, int *peer_evfd);
TACHYON_HIDDEN uint32_t handshake_ext_offer_fd(int sock, uint32_t ours, int our_evfd, int64_t deadline_ms,
                                               int *peer_evfd);

/* attach.c: handles over one segment. */
/* Listener: a new sealed segment, our byte held, mapped, formatted; *out_memfd
 * is the fd to hand the connector (close it after sending). */
TACHYON_HIDDEN tachyon_error_t bus_new_segment(uint64_t capacity, const char *socket_path, tachyon_bus_t **out,
                                               int *out_memfd);
/* Connector: check the received fd, map it, check the header against the
 * handshake's capacity. The fd is the handle's (or closed) afterwards. */
TACHYON_HIDDEN tachyon_error_t bus_attach_segment(int fd, uint64_t capacity, const struct tachyon_peer *peer,
                                                  tachyon_bus_t **out);
/* What this side offers beyond plain v4, and what it learned of the peer. */
TACHYON_HIDDEN uint32_t bus_our_features(const tachyon_bus_t *bus);
TACHYON_HIDDEN void bus_set_peer(tachyon_bus_t *bus, const struct tachyon_peer *peer, uint32_t features);
/* Undo bus_new_segment / bus_attach_segment for a handle never given out. */
TACHYON_HIDDEN void bus_free_unused(tachyon_bus_t *bus);

/* ring.c */
TACHYON_HIDDEN void ring_attach(struct tachyon_bus *bus);
TACHYON_HIDDEN void ring_detach(struct tachyon_bus *bus);
TACHYON_HIDDEN void *ring_acquire_tx(struct tachyon_bus *bus, size_t max_payload);
/* tachyon_commit_tx with a correlation id in the header (request/reply). */
TACHYON_HIDDEN tachyon_error_t ring_commit_tx(struct tachyon_bus *bus, size_t actual_payload_size,
                                              uint32_t type_id, uint64_t correlation_id);
/* The correlation id of the message a single receive holds (0 if none). */
TACHYON_HIDDEN uint64_t ring_rx_correlation_id(const struct tachyon_bus *bus);
/* Event loops: is there room for the last slot the producer could not
 * place? With `arm`, announce that the producer waits for it (pair K/L). */
TACHYON_HIDDEN int ring_tx_room_or_arm(struct tachyon_bus *bus, int arm);

/* Store this side's counters into its block of the segment (for tools). */
TACHYON_HIDDEN void ring_store_tx_stats(struct tachyon_bus *bus);
TACHYON_HIDDEN void ring_store_rx_stats(struct tachyon_bus *bus);
TACHYON_HIDDEN size_t ring_send_batch(struct tachyon_bus *bus, const void *records, size_t record_size,
                                      size_t count, uint32_t type_id);
TACHYON_HIDDEN int ring_has_unpublished(const struct tachyon_bus *bus);
/* Store head if commits are held back (lazy or batched publication). */
TACHYON_HIDDEN void ring_flush(struct tachyon_bus *bus);
TACHYON_HIDDEN uint64_t ring_unconsumed_bytes(struct tachyon_bus *bus);
TACHYON_HIDDEN const void *ring_try_rx(struct tachyon_bus *bus, uint32_t *type_id, size_t *size);
TACHYON_HIDDEN size_t ring_try_rx_batch(struct tachyon_bus *bus, tachyon_msg_view_t *out, size_t max);
TACHYON_HIDDEN void ring_publish_head(struct tachyon_bus *bus);
TACHYON_HIDDEN void ring_choose_publication(struct tachyon_bus *bus);
TACHYON_HIDDEN void ring_publish_tail(struct tachyon_bus *bus);
/* Is there anything at the tail (a stamped slot or one head covers)? Reads
 * head, and publishes the tail when there is nothing: a consumer about to
 * wait must not hold back room. */
TACHYON_HIDDEN int ring_readable(struct tachyon_bus *bus);
/* The sleep re-check (pair E): anything at the tail, read seq_cst. */
TACHYON_HIDDEN int ring_recheck_readable(struct tachyon_bus *bus);


/* notify.c: event loops. */
TACHYON_HIDDEN int notify_create(void);
TACHYON_HIDDEN int notify_accept_peer_fd(int fd);
TACHYON_HIDDEN void notify_close(struct tachyon_bus *bus);
/* Fan-in: arm a ring whose eventfd is shared with other rings (no clearing),
 * and take an arm back. */
TACHYON_HIDDEN int notify_rx_arm_shared(struct tachyon_bus *bus);
TACHYON_HIDDEN void notify_rx_disarm(struct tachyon_bus *bus);

/* wait.c */
TACHYON_HIDDEN extern int wait_sleep_slice_ms;
/* 1 when this process is registered for MEMBARRIER_CMD_GLOBAL_EXPEDITED
 * (registers on first use in each process). */
TACHYON_HIDDEN int wait_membarrier_ready(void);
/* A consumer about to sleep, having taken `messages` so far: should it ask
 * its producer to fence every stamp (it sleeps after nearly every message)
 * instead of issuing a membarrier per sleep? `wants` is the current answer;
 * the other two are the caller's bookkeeping (wait.c, SPARSE_*). */
TACHYON_HIDDEN uint32_t wait_sleep_wants_fence(uint64_t messages, uint64_t *messages_at_sleep,
                                               uint32_t *sparse_sleeps, uint32_t wants);
/* Between a consumer's announcement and its recheck (pairs E/F and M). */
TACHYON_HIDDEN void wait_fence_before_recheck(struct tachyon_bus *bus);
TACHYON_HIDDEN tachyon_error_t wait_consumer_sleep(struct tachyon_bus *bus, int timeout_ms);
TACHYON_HIDDEN int wait_peer_alive(struct tachyon_bus *bus);
TACHYON_HIDDEN void wait_close_peer(struct tachyon_bus *bus);
TACHYON_HIDDEN int wait_peer_alive_paced(struct tachyon_bus *bus, int64_t *next_check_ns);

#endif /* TACHYON_INTERNAL_H */

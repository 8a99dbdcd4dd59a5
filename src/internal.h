/*
 * internal.h - the process-local bus object and the functions the source
 * files share. Nothing here is part of the ABI.
 *
 *   shm.c        memfd segment: create, seal, map, check a received fd
 *   handshake.c  Unix-socket listen/accept/connect, credentials, the 32 bytes + fd
 *   ring.c       producer and consumer ring operations, header validation
 *   wait.c       futex sleep/wake, peer liveness (pidfd)
 *   bus.c        the public API: lifecycle, state, errors, options
 */
#ifndef TACHYON_INTERNAL_H
#define TACHYON_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

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
 * Peer death is therefore noticed within about this long. */
#define TACHYON_SLEEP_SLICE_MS 50

/* Producer-private ring state: never read by the consumer. */
struct tachyon_tx_state {
    uint64_t head;          /* next free byte (committed, and skip markers) */
    uint64_t published;     /* the head value last stored in the segment */
    uint32_t full_polls;    /* consecutive "full" results, to pace liveness checks */
    uint64_t cached_tail;   /* last tail seen; refreshed only when short of room */
    uint64_t pending_pos;   /* start of the acquired slot */
    uint32_t pending_size;  /* reserved bytes of the acquired slot; 0 = none */
};

/* Consumer-private ring state. */
struct tachyon_rx_state {
    uint64_t tail;          /* next byte to read (published when committed) */
    uint64_t cached_head;   /* last head seen; refreshed only when caught up */
    uint64_t pending_end;   /* tail after the acquired message(s) */
    size_t pending_count;   /* messages acquired and not yet committed */
    /* Receive coalescing (wait.c): no look at head before next_look_ns (0:
     * none); when the last look that found something was (cached_head is
     * what it found). */
    int64_t next_look_ns;
    int64_t last_look_ns;
};

struct tachyon_bus {
    _Atomic int refs;
    tachyon_segment_header_t *hdr;
    uint8_t *ring;
    uint64_t capacity;
    uint64_t mask;
    size_t map_size;

    struct tachyon_tx_state tx;
    struct tachyon_rx_state rx;

    /* Peer liveness: a pidfd (or -1 with peer_pid for the kill(0) fallback). */
    int peer_pidfd;
    pid_t peer_pid;
    _Atomic int peer_gone;   /* sticky once seen */

    /* Written through const pointers by the published API's setters. */
    _Atomic int pure_spin;   /* this handle's consumer never sleeps */
    _Atomic int coalesce_ns; /* consumer: least time between reads of head (0: off) */
    _Atomic int last_error;
    _Atomic int local_fatal;
};

/* shm.c */
TACHYON_HIDDEN tachyon_error_t shm_create_segment(uint64_t capacity, int *out_fd);
TACHYON_HIDDEN tachyon_error_t shm_check_received_fd(int fd, uint64_t map_size);
TACHYON_HIDDEN tachyon_error_t shm_map(int fd, size_t map_size, int prefault, void **out);
TACHYON_HIDDEN void shm_format(tachyon_segment_header_t *hdr, uint32_t capacity);
TACHYON_HIDDEN tachyon_error_t shm_check_header(const tachyon_segment_header_t *hdr, uint64_t capacity);

/* handshake.c */
struct tachyon_peer {
    pid_t pid;
    int pidfd;   /* -1 when the kernel gives none */
};
TACHYON_HIDDEN tachyon_error_t handshake_listen(const char *path, const tachyon_listen_opts_t *opts,
                                                int memfd, struct tachyon_peer *peer);
TACHYON_HIDDEN tachyon_error_t handshake_connect(const char *path, int timeout_ms,
                                                 const uid_t *allowed_uids, size_t n_allowed,
                                                 int *out_fd, tachyon_handshake_t *out_hs,
                                                 struct tachyon_peer *peer);
TACHYON_HIDDEN tachyon_error_t handshake_validate(const tachyon_handshake_t *hs, uint64_t *capacity);
TACHYON_HIDDEN void handshake_fill(tachyon_handshake_t *hs, uint32_t capacity);

/* ring.c */
TACHYON_HIDDEN void ring_attach(struct tachyon_bus *bus);
TACHYON_HIDDEN void *ring_acquire_tx(struct tachyon_bus *bus, size_t max_payload);
TACHYON_HIDDEN const void *ring_try_rx(struct tachyon_bus *bus, uint32_t *type_id, size_t *size);
TACHYON_HIDDEN size_t ring_try_rx_batch(struct tachyon_bus *bus, tachyon_msg_view_t *out, size_t max);
TACHYON_HIDDEN void ring_publish_head(struct tachyon_bus *bus);
TACHYON_HIDDEN void ring_publish_tail(struct tachyon_bus *bus);
TACHYON_HIDDEN int ring_has_unread(struct tachyon_bus *bus);

/* wait.c */
TACHYON_HIDDEN void wait_wake_consumer(struct tachyon_bus *bus);
TACHYON_HIDDEN tachyon_error_t wait_consumer_sleep(struct tachyon_bus *bus, int timeout_ms);
TACHYON_HIDDEN int64_t wait_now_ms(void);
TACHYON_HIDDEN int64_t wait_now_ns(void);
TACHYON_HIDDEN int wait_coalesce_may_look(const struct tachyon_bus *bus);
TACHYON_HIDDEN void wait_coalesce_note_look(struct tachyon_bus *bus, uint64_t old_head, uint64_t head,
                                            int64_t now);
TACHYON_HIDDEN void wait_coalesce(struct tachyon_bus *bus, int64_t deadline_ms);
TACHYON_HIDDEN int wait_peer_alive(struct tachyon_bus *bus);
TACHYON_HIDDEN void wait_close_peer(struct tachyon_bus *bus);

/* bus.c */
TACHYON_HIDDEN void bus_set_error(const struct tachyon_bus *bus, tachyon_error_t err);
TACHYON_HIDDEN void bus_set_fatal(struct tachyon_bus *bus);
TACHYON_HIDDEN int bus_is_fatal(const struct tachyon_bus *bus);

#endif /* TACHYON_INTERNAL_H */

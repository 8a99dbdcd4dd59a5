/*
 * bus.c - the public API: creating and attaching a bus, waiting on it, its
 * state and errors. The ring itself is in ring.c, the socket work in
 * handshake.c, the segment in shm.c, sleeping and liveness in wait.c.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "barrier.h"
#include "futex.h"
#include "internal.h"
#include "ring.h"
#include "state.h"

/* How often a pure-spin consumer looks at the clock (in spins). */
#define SPIN_CLOCK_STRIDE 4096u
/* How often tachyon_get_state asks whether the peer still lives. */
#define STATE_LIVENESS_NS (10 * 1000000LL)

/* ---- Errors and state ---------------------------------------------------- */

static const char *const error_messages[] = {
    [TACHYON_SUCCESS] = "success",
    [TACHYON_ERR_NULL_PTR] = "a required pointer argument was NULL",
    [TACHYON_ERR_MEM] = "out of memory",
    [TACHYON_ERR_OPEN] = "could not create the shared memory file or socket",
    [TACHYON_ERR_TRUNCATE] = "could not size the shared memory, or the peer's memfd is smaller than it claims",
    [TACHYON_ERR_CHMOD] = "could not set the permissions of the socket file",
    [TACHYON_ERR_SEAL] = "could not seal the shared memory, or the peer's memfd is not sealed against resizing",
    [TACHYON_ERR_MAP] = "could not map the shared memory",
    [TACHYON_ERR_INVALID_SZ] = "size or capacity out of range (capacity: power of two, 64 B to 1 GiB; payload: at most capacity - 64)",
    [TACHYON_ERR_FULL] = "the ring is full: the consumer has not caught up",
    [TACHYON_ERR_EMPTY] = "no message available",
    [TACHYON_ERR_NETWORK] = "the Unix socket handshake failed",
    [TACHYON_ERR_SYSTEM] = "a system call failed",
    [TACHYON_ERR_INTERRUPTED] = "interrupted by a signal",
    [TACHYON_ERR_ABI_MISMATCH] = "the peer speaks a different protocol (handshake or segment header is not Tachyon ABI v4)",
    [TACHYON_ERR_PEER_DEAD] = "the peer process ended without closing the bus",
    [TACHYON_ERR_PERMISSION] = "the peer's user is not allowed on this bus",
    [TACHYON_ERR_FATAL] = "the shared ring is corrupt; the bus can no longer be used",
    [TACHYON_ERR_STATE] = "call out of order (commit or rollback without acquire, or acquire twice)",
    [TACHYON_ERR_TIMEOUT] = "timed out",
    [TACHYON_ERR_ADDR_IN_USE] = "another live listener owns that socket path",
    [TACHYON_ERR_NOT_SOCKET] = "the socket path exists and is not a socket; refusing to remove it",
    [TACHYON_ERR_PATH_TOO_LONG] = "the socket path is too long for a Unix socket address (107 bytes at most)",
    [TACHYON_ERR_PEER_CLOSED] = "the peer closed the bus",
    [TACHYON_ERR_FORKED] = "this bus belongs to the parent process; a fork()ed child cannot use it",
    [TACHYON_ERR_WRONG_REPLY] = "the next reply answers another call: wait for replies in the order the calls were made",
    [TACHYON_ERR_OVERRUN] = "fan-out: this consumer fell a whole ring behind and was dropped; tachyon_fanout_missed says how many messages it lost",
};

const char *tachyon_strerror(tachyon_error_t err)
{
    size_t i = (size_t)err;
    if (i < sizeof(error_messages) / sizeof(error_messages[0]) && error_messages[i])
        return error_messages[i];
    return "unknown error";
}

const char *tachyon_error_message(tachyon_error_t err)
{
    const char *detail = status_detail_for(err);
    return detail ? detail : tachyon_strerror(err);
}

tachyon_error_t tachyon_bus_last_error(const tachyon_bus_t *bus)
{
    if (!bus)
        return TACHYON_ERR_NULL_PTR;
    return status_last_error(bus);
}

tachyon_state_t tachyon_get_state(const tachyon_bus_t *cbus)
{
    if (!cbus)
        return TACHYON_STATE_UNKNOWN;
    tachyon_bus_t *bus = (tachyon_bus_t *)cbus; /* the flags below are atomics */
    if (status_in_forked_child(bus))
        return TACHYON_STATE_UNKNOWN;
    if (status_fatal_anywhere(bus))
        return TACHYON_STATE_FATAL_ERROR;
    if (status_peer(bus) == PEER_PRESENT && wait_now_coarse_ns() >= local_pace_load(&bus->state_next_check_ns)) {
        local_pace_store(&bus->state_next_check_ns, wait_now_coarse_ns() + STATE_LIVENESS_NS);
        (void)wait_peer_alive(bus);
    }
    if (status_peer(bus) != PEER_PRESENT)
        return TACHYON_STATE_DISCONNECTED;
    uint32_t s = observe_state(&bus->hdr->state);
    return s <= TACHYON_STATE_UNKNOWN ? (tachyon_state_t)s : TACHYON_STATE_UNKNOWN;
}

void tachyon_memory_barrier_acquire(void)
{
    acquire_fence();
}

/* ---- Lifecycle ----------------------------------------------------------- */

void tachyon_listen_opts_init(tachyon_listen_opts_t *opts, size_t capacity)
{
    if (!opts)
        return;
    memset(opts, 0, sizeof(*opts));
    opts->capacity = capacity;
    opts->timeout_ms = -1;
}

tachyon_error_t tachyon_listen_opts_allow_uid(tachyon_listen_opts_t *opts, uid_t uid)
{
    if (!opts)
        return TACHYON_ERR_NULL_PTR;
    if (opts->n_allowed_uids >= TACHYON_MAX_ALLOWED_UIDS)
        return TACHYON_ERR_INVALID_SZ;
    opts->allowed_uids[opts->n_allowed_uids++] = uid;
    return TACHYON_SUCCESS;
}

tachyon_error_t tachyon_bus_listen_ex(const char *socket_path, const tachyon_listen_opts_t *opts,
                                      tachyon_bus_t **out)
{
    if (!socket_path || !opts || !out)
        return TACHYON_ERR_NULL_PTR;
    *out = NULL;
    if (!tachyon_capacity_valid(opts->capacity))
        return status_error_detail(NULL, TACHYON_ERR_INVALID_SZ,
                                   "capacity %zu: a ring is a power of two from 64 bytes to 1 GiB",
                                   opts->capacity);
    if (opts->n_allowed_uids > TACHYON_MAX_ALLOWED_UIDS)
        return TACHYON_ERR_INVALID_SZ;

    int fd;
    tachyon_bus_t *bus;
    tachyon_error_t err = bus_new_segment(opts->capacity, socket_path, &bus, &fd);
    if (err != TACHYON_SUCCESS)
        return err;
    struct tachyon_peer peer = {0, -1};

    tachyon_handshake_t hs;
    handshake_fill(&hs, (uint32_t)opts->capacity, 0, 0);
    int conn = -1;
    err = handshake_listen(socket_path, opts, &hs, &fd, 1, &peer, &conn);
    close(fd); /* the mapping keeps the segment; the peer has its own fd */
    if (err != TACHYON_SUCCESS) {
        bus_free_unused(bus);
        return err;
    }
    bus_set_peer(bus, &peer, handshake_ext_answer_fd(conn, bus_our_features(bus), bus->evfd, &bus->peer_evfd));
    close(conn);
    *out = bus;
    return TACHYON_SUCCESS;
}

tachyon_error_t tachyon_bus_listen(const char *socket_path, size_t capacity, tachyon_bus_t **out)
{
    tachyon_listen_opts_t opts;
    tachyon_listen_opts_init(&opts, capacity);
    return tachyon_bus_listen_ex(socket_path, &opts, out);
}

/* Check a plain bus's handshake, then attach the segment its fd carries. The
 * fd is the new handle's or closed. */
static tachyon_error_t attach_received(int fd, int nfds, const tachyon_handshake_t *hs,
                                       const struct tachyon_peer *peer, tachyon_bus_t **out)
{
    uint64_t capacity;
    tachyon_error_t err = handshake_validate(hs, nfds, &capacity);
    if (err != TACHYON_SUCCESS) {
        if (fd >= 0)
            close(fd);
        return err;
    }
    return bus_attach_segment(fd, capacity, peer, out);
}

tachyon_error_t tachyon_bus_connect_ex(const char *socket_path, int timeout_ms, const uid_t *allowed_uids,
                                       size_t n_allowed_uids, tachyon_bus_t **out)
{
    if (!socket_path || !out || (!allowed_uids && n_allowed_uids > 0))
        return TACHYON_ERR_NULL_PTR;
    *out = NULL;
    if (n_allowed_uids > TACHYON_MAX_ALLOWED_UIDS)
        return TACHYON_ERR_INVALID_SZ;
    int fds[2], nfds = 0, sock = -1;
    tachyon_handshake_t hs;
    struct tachyon_peer peer = {0, -1};
    int64_t deadline = timeout_ms > 0 ? wait_now_ms() + timeout_ms : -1;
    tachyon_error_t err = handshake_connect(socket_path, timeout_ms, allowed_uids, n_allowed_uids, &hs, fds, 2,
                                            &nfds, &peer, &sock);
    if (err != TACHYON_SUCCESS)
        return err;
    if (nfds == 2)
        close(fds[1]); /* a request/reply listener: attach_received refuses it */
    err = attach_received(nfds > 0 ? fds[0] : -1, nfds, &hs, &peer, out);
    if (err != TACHYON_SUCCESS) {
        close(sock); /* no offer: the listener counts us as a plain v4 peer */
        if (peer.pidfd >= 0)
            close(peer.pidfd);
        return err;
    }
    bus_set_peer(*out, &peer,
                 handshake_ext_offer_fd(sock, bus_our_features(*out), (*out)->evfd, deadline, &(*out)->peer_evfd));
    close(sock);
    return TACHYON_SUCCESS;
}

tachyon_error_t tachyon_bus_connect_timeout(const char *socket_path, int timeout_ms, tachyon_bus_t **out)
{
    return tachyon_bus_connect_ex(socket_path, timeout_ms, NULL, 0, out);
}

tachyon_error_t tachyon_bus_connect(const char *socket_path, tachyon_bus_t **out)
{
    return tachyon_bus_connect_ex(socket_path, 0, NULL, 0, out);
}

void tachyon_bus_ref(tachyon_bus_t *bus)
{
    if (bus)
        local_ref_get(&bus->refs);
}

void tachyon_bus_destroy(tachyon_bus_t *bus)
{
    if (!bus)
        return;
    if (!local_ref_put(&bus->refs))
        return;
    if (!status_in_forked_child(bus)) {
        /* Whatever we hold back (a lazily stored head, a tail not yet given
         * back) goes out first. G: everything we published happens before
         * the peer sees DISCONNECTED. */
        if (!status_is_fatal(bus)) {
            ring_flush(bus);
            ring_publish_tail(bus);
            ring_store_tx_stats(bus);
            ring_store_rx_stats(bus);
        }
        mark_disconnected(&bus->hdr->state, TACHYON_STATE_READY, TACHYON_STATE_DISCONNECTED);
        futex_wake_consumer(bus->hdr);
        eventfd_signal(bus->peer_evfd); /* a peer waiting in an event loop learns it too */
        munmap(bus->hdr, bus->map_size);
    }
    /* In a fork()ed child the segment was never mapped (MADV_DONTFORK), and
     * whatever lies at that address now is not ours to unmap. Closing our
     * segment fd there releases nothing: the parent shares its description. */
    if (bus->seg_fd >= 0)
        close(bus->seg_fd);
    notify_close(bus);
    wait_close_peer(bus);
    ring_detach(bus);
    free(bus);
}

/* Entry check of the calls that touch the segment: a handle of this process,
 * on a ring nobody found corrupt. */
static inline int bus_usable(tachyon_bus_t *bus)
{
    if (unlikely(status_in_forked_child(bus))) {
        status_set_error(bus, TACHYON_ERR_FORKED);
        return 0;
    }
    if (unlikely(status_fatal_anywhere(bus))) {
        status_set_error(bus, TACHYON_ERR_FATAL);
        return 0;
    }
    return 1;
}

tachyon_error_t tachyon_bus_set_numa_node(const tachyon_bus_t *bus, int node_id)
{
    if (!bus)
        return TACHYON_ERR_NULL_PTR;
    if (status_in_forked_child(bus))
        return TACHYON_ERR_FORKED;
    if (node_id < 0 || node_id >= 64)
        return TACHYON_ERR_INVALID_SZ;
#ifdef SYS_mbind
    unsigned long mask = 1UL << node_id;
    const int mpol_preferred = 1;
    if (syscall(SYS_mbind, bus->hdr, bus->map_size, mpol_preferred, &mask, 64UL, 0UL) == 0)
        return TACHYON_SUCCESS;
#endif
    return TACHYON_ERR_SYSTEM;
}

void tachyon_bus_set_polling_mode(const tachyon_bus_t *bus, int pure_spin)
{
    if (!bus || status_in_forked_child(bus))
        return;
    /* Our own copy decides whether this consumer sleeps: the shared word is
     * only what the producer reads, and a peer could rewrite it. */
    local_flag_store(&bus->pure_spin, pure_spin != 0);
    set_sleeper_word(&bus->hdr->consumer_sleeping,
                     pure_spin ? TACHYON_CONSUMER_PURE_SPIN : TACHYON_CONSUMER_AWAKE);
}

tachyon_error_t tachyon_bus_set_publish_batch(tachyon_bus_t *bus, uint32_t commits)
{
    if (!bus)
        return TACHYON_ERR_NULL_PTR;
    if (status_in_forked_child(bus))
        return TACHYON_ERR_FORKED;
    if (commits == 0 || commits > TACHYON_MAX_PUBLISH_BATCH)
        return status_error_detail(bus, TACHYON_ERR_INVALID_SZ, "publish batch %u: use 1 to %u commits",
                                   commits, TACHYON_MAX_PUBLISH_BATCH);
    ring_flush(bus);
    bus->tx.publish_batch = commits;
    ring_choose_publication(bus);
    return TACHYON_SUCCESS;
}

/* What this handle last knew of the ring: bytes committed (by head, or by
 * our own producer side) and not yet given back. */
static uint64_t stats_fill(tachyon_bus_t *bus)
{
    uint64_t head = observe_head(&bus->hdr->head);                  /* B: pairs with A/F1 */
    uint64_t tail = observe_tail(&bus->hdr->tail);                  /* D: pairs with C */
    if (bus->tx.messages > 0)
        head = bus->tx.committed;
    if (bus->rx.messages > 0 && bus->rx.tail - tail <= bus->capacity)
        tail = bus->rx.tail;
    uint64_t fill = head - tail;
    return fill <= bus->capacity ? fill : 0;
}

/* The producer's count, from its block in the segment (a seqlock read). */
static uint64_t stats_peer_sent(tachyon_bus_t *bus)
{
    tachyon_side_stats_t *b = &bus->hdr->producer_stats;
    for (int tries = 0; tries < 16; tries++) {
        uint32_t seq = stats_read_begin(&b->seq); /* J: pairs with the producer's I */
        uint64_t messages = stats_load(&b->messages);
        if (stats_read_consistent(&b->seq, seq))
            return messages;
    }
    return 0;
}

tachyon_error_t tachyon_bus_stats(tachyon_bus_t *bus, tachyon_stats_t *out)
{
    if (!bus || !out)
        return TACHYON_ERR_NULL_PTR;
    if (status_in_forked_child(bus))
        return TACHYON_ERR_FORKED;
    memset(out, 0, sizeof(*out));
    out->messages_sent = bus->tx.messages;
    out->bytes_sent = bus->tx.bytes;
    out->messages_received = bus->rx.messages;
    out->bytes_received = bus->rx.bytes;
    out->ring_full = bus->tx.full;
    out->sleeps = bus->rx.sleeps;
    out->wakeups = bus->tx.wakes;
    out->capacity = bus->capacity;
    out->fill_bytes = stats_fill(bus);
    if (bus->tx.messages > 0 && out->fill_bytes > bus->tx.fill_max)
        bus->tx.fill_max = out->fill_bytes;
    out->fill_max_bytes = bus->tx.fill_max;
    if (bus->rx.messages > 0) {
        uint64_t sent = stats_peer_sent(bus);
        out->lag_messages = sent > bus->rx.messages ? sent - bus->rx.messages : 0;
    }
    int64_t now = wait_now_coarse_ns();
    int active = out->messages_sent != bus->stats_seen_sent || out->messages_received != bus->stats_seen_received;
    bus->stats_seen_sent = out->messages_sent;
    bus->stats_seen_received = out->messages_received;
    if (active) {
        bus->tx.active_ns = bus->tx.messages ? now : bus->tx.active_ns;
        bus->rx.active_ns = bus->rx.messages ? now : bus->rx.active_ns;
    }
    int64_t last = bus->tx.active_ns > bus->rx.active_ns ? bus->tx.active_ns : bus->rx.active_ns;
    out->idle_ns = active || last == 0 ? 0 : (uint64_t)(now - last);
    out->peer_pid = (int32_t)bus->peer_pid;
    out->state = (uint32_t)tachyon_get_state(bus);
    out->peer_alive = status_peer(bus) == PEER_PRESENT;
    out->features = bus->peer_features;
    if (!status_is_fatal(bus)) {
        ring_store_tx_stats(bus);
        ring_store_rx_stats(bus);
    }
    return TACHYON_SUCCESS;
}

size_t tachyon_bus_capacity(const tachyon_bus_t *bus)
{
    return bus ? (size_t)bus->capacity : 0;
}

size_t tachyon_bus_max_payload(const tachyon_bus_t *bus)
{
    return bus ? (size_t)(bus->capacity - TACHYON_MSG_HEADER) : 0;
}

int tachyon_peer_alive(tachyon_bus_t *bus)
{
    if (!bus || status_in_forked_child(bus))
        return 0;
    if (wait_peer_alive(bus))
        return 1;
    if (status_peer(bus) == PEER_CLOSED)
        status_error_detail(bus, TACHYON_ERR_PEER_CLOSED, "the peer (pid %d) closed the bus", (int)bus->peer_pid);
    else
        status_error_detail(bus, TACHYON_ERR_PEER_DEAD, "the peer process (pid %d) ended without closing the bus",
                            (int)bus->peer_pid);
    return 0;
}

/* ---- Producer ------------------------------------------------------------ */

/* How long a producer waiting for room sleeps at most between two looks. */
#define TX_BACKOFF_MAX_US 1000
/* Spins between two looks at the clock and the peer while spinning for room. */
#define TX_SPINS_PER_CHECK 1024u

/* The consumer is gone: record why, and what it left unread. */
static void tx_peer_gone(tachyon_bus_t *bus)
{
    uint64_t unread = ring_unconsumed_bytes(bus);
    const char *how = status_peer(bus) == PEER_CLOSED ? "closed the bus" : "ended without closing the bus";
    if (unread)
        status_error_detail(bus, status_peer_error(bus),
                            "the consumer (pid %d) %s; %llu bytes of messages it had not read are lost",
                            (int)bus->peer_pid, how, (unsigned long long)unread);
    else
        status_error_detail(bus, status_peer_error(bus),
                            "the consumer (pid %d) %s; it had read every message sent", (int)bus->peer_pid, how);
}

void *tachyon_acquire_tx(tachyon_bus_t *bus, size_t max_payload_size)
{
    if (!bus || !bus_usable(bus))
        return NULL;
    void *p = ring_acquire_tx(bus, max_payload_size);
    if (likely(p != NULL))
        return p;
    /* A caller polling a full ring must learn when the consumer is gone; the
     * check is a system call, so it is paced. */
    if (status_last_error(bus) == TACHYON_ERR_FULL && !wait_peer_alive_paced(bus, &bus->tx.next_liveness_ns))
        tx_peer_gone(bus);
    return NULL;
}

/* Sleep up to `us` microseconds; 0 when a signal handler ran. */
static int sleep_us(int64_t us)
{
    struct timespec ts = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000};
    return nanosleep(&ts, NULL) == 0 || errno != EINTR;
}

void *tachyon_acquire_tx_blocking(tachyon_bus_t *bus, size_t max_payload_size, uint32_t spin_threshold,
                                  int timeout_ms)
{
    if (!bus || !bus_usable(bus))
        return NULL;
    int64_t deadline_ns = INT64_MIN; /* taken once the ring is found full */
    int64_t next_liveness_ns = 0;
    int64_t backoff_us = 20;
    for (uint64_t attempt = 0;; attempt++) {
        void *p = ring_acquire_tx(bus, max_payload_size);
        if (p || status_last_error(bus) != TACHYON_ERR_FULL)
            return p;
        if (deadline_ns == INT64_MIN)
            deadline_ns = timeout_ms < 0 ? -1 : wait_now_ns() + (int64_t)timeout_ms * 1000000;
        int spinning = attempt < spin_threshold;
        if (spinning && (attempt + 1) % TX_SPINS_PER_CHECK != 0) {
            tachyon_cpu_relax();
            continue;
        }
        /* Every TX_SPINS_PER_CHECK spins, and before every sleep: the peer and the clock. */
        if (!wait_peer_alive_paced(bus, &next_liveness_ns)) {
            tx_peer_gone(bus);
            return NULL;
        }
        int64_t left_ns = deadline_ns < 0 ? INT64_MAX : deadline_ns - wait_now_ns();
        if (left_ns <= 0) {
            status_set_error(bus, TACHYON_ERR_TIMEOUT);
            return NULL;
        }
        if (spinning)
            continue;
        int64_t nap_us = left_ns / 1000 < backoff_us ? left_ns / 1000 + 1 : backoff_us;
        if (!sleep_us(nap_us)) {
            status_set_error(bus, TACHYON_ERR_INTERRUPTED);
            return NULL;
        }
        if (backoff_us < TX_BACKOFF_MAX_US)
            backoff_us *= 2;
    }
}

tachyon_error_t tachyon_send(tachyon_bus_t *bus, const void *data, size_t size, uint32_t type_id)
{
    if (!bus || (!data && size > 0))
        return TACHYON_ERR_NULL_PTR;
    void *slot = tachyon_acquire_tx(bus, size);
    if (!slot)
        return tachyon_bus_last_error(bus);
    if (size)
        memcpy(slot, data, size);
    return tachyon_commit_tx(bus, size, type_id);
}

size_t tachyon_send_batch(tachyon_bus_t *bus, const void *records, size_t record_size, size_t count,
                          uint32_t type_id)
{
    if (unlikely(!bus))
        return 0;
    if (unlikely(!records && count > 0)) {
        status_set_error(bus, TACHYON_ERR_NULL_PTR);
        return 0;
    }
    if (!bus_usable(bus))
        return 0;
    size_t sent = ring_send_batch(bus, records, record_size, count, type_id);
    if (sent < count && status_last_error(bus) == TACHYON_ERR_FULL &&
        !wait_peer_alive_paced(bus, &bus->tx.next_liveness_ns))
        tx_peer_gone(bus);
    return sent;
}

void tachyon_flush(tachyon_bus_t *bus)
{
    /* Commits publish by themselves, so there is usually nothing to do: a
     * second store of the same head would cost a full fence on a line the
     * consumer polls, and wake a sleeping consumer to find nothing. */
    if (bus && !status_in_forked_child(bus) && !status_is_fatal(bus))
        ring_flush(bus);
}

/* ---- Consumer ------------------------------------------------------------ */

/* The producer is gone and everything it committed was read: record how. */
static void rx_peer_gone(tachyon_bus_t *bus)
{
    if (status_peer(bus) == PEER_CLOSED)
        status_error_detail(bus, TACHYON_ERR_PEER_CLOSED,
                            "the producer (pid %d) closed the bus; every message it sent has been read",
                            (int)bus->peer_pid);
    else
        status_error_detail(bus, TACHYON_ERR_PEER_DEAD,
                            "the producer (pid %d) ended without closing the bus; every message it "
                            "committed has been read",
                            (int)bus->peer_pid);
}

/* Record a wait's failure (the peer-gone ones with their detail). */
static void rx_report(tachyon_bus_t *bus, tachyon_error_t err)
{
    if (err == TACHYON_ERR_PEER_DEAD || err == TACHYON_ERR_PEER_CLOSED)
        rx_peer_gone(bus);
    else
        status_set_error(bus, err);
}

/* Nothing to read: say why (empty, peer gone after the last message, fatal).
 * A polling consumer learns of its producer's end here, the liveness check
 * paced so that polling an empty ring stays cheap. */
static void *rx_nothing(tachyon_bus_t *bus)
{
    if (status_fatal_anywhere(bus))
        status_set_error(bus, TACHYON_ERR_FATAL);
    else if (!wait_peer_alive_paced(bus, &bus->rx.next_liveness_ns) && !ring_readable(bus))
        rx_peer_gone(bus); /* gone, and what it committed before going was read */
    else
        status_set_error(bus, TACHYON_ERR_EMPTY);
    return NULL;
}

const void *tachyon_acquire_rx(tachyon_bus_t *bus, uint32_t *out_type_id, size_t *out_actual_size)
{
    if (!bus || !bus_usable(bus))
        return NULL;
    const void *p = ring_try_rx_inline(bus, out_type_id, out_actual_size);
    return p ? p : rx_nothing(bus);
}

/* Polls between two looks at the peer when spinning without a bound. */
#define RX_SPINS_PER_CHECK 4096u

const void *tachyon_acquire_rx_spin(tachyon_bus_t *bus, uint32_t *out_type_id, size_t *out_actual_size,
                                    uint32_t max_spins)
{
    if (!bus || !bus_usable(bus))
        return NULL;
    for (uint32_t i = 1;; i++) {
        const void *p = i == 1 || ring_poll_readable(bus, i) ? ring_try_rx(bus, out_type_id, out_actual_size) : NULL;
        if (p)
            return p;
        if (status_is_fatal(bus))
            return rx_nothing(bus);
        if (max_spins != 0 && i > max_spins)
            return rx_nothing(bus);
        /* max_spins 0: until a message, a fatal ring or the peer's end. */
        if (max_spins == 0 && i % RX_SPINS_PER_CHECK == 0 &&
            (status_fatal_anywhere(bus) || !wait_peer_alive_paced(bus, &bus->rx.next_liveness_ns)) &&
            !ring_readable(bus))
            return rx_nothing(bus);
        tachyon_cpu_relax();
    }
}

/* Poll head up to `spins` times; 1 as soon as it moved. */
static int spin_for_data(tachyon_bus_t *bus, uint32_t spins)
{
    for (uint32_t i = 0; i < spins; i++) {
        if (ring_poll_readable(bus, i))
            return 1;
        tachyon_cpu_relax();
    }
    return 0;
}

/* A receive's deadline in wait_now_ms() time; -1: none (timeout_ms < 0).
 * Taken only once the receive has to wait: reading the clock costs more than
 * handing out a message that is already there. */
#define RX_DEADLINE_NOT_YET INT64_MIN
static int64_t rx_deadline(int timeout_ms)
{
    return timeout_ms < 0 ? -1 : wait_now_ms() + timeout_ms;
}

/*
 * The consumer's wait for "something to read", shared by the blocking single
 * and batch receives. Returns SUCCESS when the ring has unread bytes, or why
 * not: FATAL, PEER_CLOSED / PEER_DEAD (only once the ring is drained: the
 * caller reads what is left first), INTERRUPTED, TIMEOUT. `deadline` in
 * wait_now_ms() time, -1 for none.
 */
static tachyon_error_t rx_wait_readable(tachyon_bus_t *bus, uint32_t spin_threshold, int64_t deadline)
{
    uint32_t spins = 0;
    for (;;) {
        if (status_fatal_anywhere(bus))
            return TACHYON_ERR_FATAL; /* we, or the peer, found the ring corrupt */
        if (ring_readable(bus))
            return TACHYON_SUCCESS;
        if (status_peer(bus) != PEER_PRESENT)
            return status_peer_error(bus);
        int64_t left = deadline < 0 ? wait_sleep_slice_ms : deadline - wait_now_ms();
        if (left <= 0)
            return TACHYON_ERR_TIMEOUT;

        if (spins < spin_threshold) {
            /* Spin phase; every SPIN_CLOCK_STRIDE spins we come back above to
             * look at the clock and, below, at the peer. */
            uint32_t burst = spin_threshold - spins < SPIN_CLOCK_STRIDE ? spin_threshold - spins
                                                                         : SPIN_CLOCK_STRIDE;
            spins += burst;
            if (spin_for_data(bus, burst))
                return TACHYON_SUCCESS; /* straight back to the reader: latency */
        } else if (local_flag_load(&bus->pure_spin)) {
            if (spin_for_data(bus, SPIN_CLOCK_STRIDE))
                return TACHYON_SUCCESS;
        } else {
            int slice = (int)(left < wait_sleep_slice_ms ? left : wait_sleep_slice_ms);
            if (wait_consumer_sleep(bus, slice) == TACHYON_ERR_INTERRUPTED)
                return TACHYON_ERR_INTERRUPTED;
        }
        /* Nothing yet: is anyone still producing? Seeing it gone, the loop
         * goes round once more so what it committed is read first. */
        if (!ring_readable(bus))
            (void)wait_peer_alive(bus);
    }
}

const void *tachyon_acquire_rx_timeout(tachyon_bus_t *bus, uint32_t *out_type_id, size_t *out_actual_size,
                                       uint32_t spin_threshold, int timeout_ms)
{
    if (!bus || !bus_usable(bus))
        return NULL;
    int64_t deadline = RX_DEADLINE_NOT_YET;
    for (;;) {
        const void *p = ring_try_rx(bus, out_type_id, out_actual_size);
        if (p)
            return p;
        if (deadline == RX_DEADLINE_NOT_YET)
            deadline = rx_deadline(timeout_ms);
        tachyon_error_t err = rx_wait_readable(bus, spin_threshold, deadline);
        if (err != TACHYON_SUCCESS) {
            rx_report(bus, err);
            return NULL;
        }
    }
}

const void *tachyon_acquire_rx_blocking(tachyon_bus_t *bus, uint32_t *out_type_id, size_t *out_actual_size,
                                        uint32_t spin_threshold)
{
    if (likely(bus && !status_is_fatal(bus) && !status_in_forked_child(bus))) {
        const void *p = ring_try_rx_inline(bus, out_type_id, out_actual_size);
        if (p)
            return p; /* already published: no wait, no deadline */
    }
    return tachyon_acquire_rx_timeout(bus, out_type_id, out_actual_size, spin_threshold, -1);
}

size_t tachyon_acquire_rx_batch(tachyon_bus_t *bus, tachyon_msg_view_t *out, size_t max_msgs)
{
    if (!bus || !bus_usable(bus))
        return 0;
    if (!out) {
        status_set_error(bus, TACHYON_ERR_NULL_PTR);
        return 0;
    }
    size_t n = ring_try_rx_batch(bus, out, max_msgs);
    if (n == 0)
        rx_nothing(bus);
    return n;
}

size_t tachyon_drain_batch_timeout(tachyon_bus_t *bus, tachyon_msg_view_t *out, size_t max_msgs,
                                   uint32_t spin_threshold, int timeout_ms)
{
    if (!bus || !bus_usable(bus))
        return 0;
    if (!out || max_msgs == 0) {
        status_set_error(bus, out ? TACHYON_ERR_INVALID_SZ : TACHYON_ERR_NULL_PTR);
        return 0;
    }
    int64_t deadline = RX_DEADLINE_NOT_YET;
    for (;;) {
        size_t n = ring_try_rx_batch(bus, out, max_msgs);
        if (n)
            return n;
        if (deadline == RX_DEADLINE_NOT_YET)
            deadline = rx_deadline(timeout_ms);
        tachyon_error_t err = rx_wait_readable(bus, spin_threshold, deadline);
        if (err != TACHYON_SUCCESS) {
            rx_report(bus, err);
            return 0;
        }
    }
}

size_t tachyon_drain_batch(tachyon_bus_t *bus, tachyon_msg_view_t *out, size_t max_msgs,
                           uint32_t spin_threshold)
{
    return tachyon_drain_batch_timeout(bus, out, max_msgs, spin_threshold, -1);
}

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
#include "internal.h"
#include "ring.h"

/* How often a waiting producer checks that the consumer is still there. */
#define TX_LIVENESS_CHECK_MS 10
/* How often a pure-spin consumer looks at the clock (in spins). */
#define SPIN_CLOCK_STRIDE 4096u

/* ---- Errors and state ---------------------------------------------------- */

static const char *const error_messages[] = {
    [TACHYON_SUCCESS] = "success",
    [TACHYON_ERR_NULL_PTR] = "a required pointer argument was NULL",
    [TACHYON_ERR_MEM] = "out of memory",
    [TACHYON_ERR_OPEN] = "could not create the shared memory file or socket",
    [TACHYON_ERR_TRUNCATE] = "could not size the shared memory, or the peer's memfd is smaller than it claims",
    [TACHYON_ERR_CHMOD] = "could not set owner-only permissions on the socket file",
    [TACHYON_ERR_SEAL] = "could not seal the shared memory, or the peer's memfd is not sealed against resizing",
    [TACHYON_ERR_MAP] = "could not map the shared memory",
    [TACHYON_ERR_INVALID_SZ] = "size or capacity out of range (capacity: power of two, 64 B to 1 GiB; payload: at most capacity - 64)",
    [TACHYON_ERR_FULL] = "the ring is full: the consumer has not caught up",
    [TACHYON_ERR_EMPTY] = "no message available",
    [TACHYON_ERR_NETWORK] = "Unix socket error (is a listener running at that path?)",
    [TACHYON_ERR_SYSTEM] = "system call failed",
    [TACHYON_ERR_INTERRUPTED] = "interrupted by a signal",
    [TACHYON_ERR_ABI_MISMATCH] = "the peer speaks a different protocol (handshake or segment header is not Tachyon ABI v4)",
    [TACHYON_ERR_PEER_DEAD] = "the peer process exited or closed the bus",
    [TACHYON_ERR_PERMISSION] = "the connecting process's user is not allowed on this bus",
    [TACHYON_ERR_FATAL] = "the shared ring is corrupt; the bus can no longer be used",
    [TACHYON_ERR_STATE] = "call out of order (commit or rollback without acquire, or acquire twice)",
    [TACHYON_ERR_TIMEOUT] = "timed out",
    [TACHYON_ERR_ADDR_IN_USE] = "another live listener owns that socket path",
    [TACHYON_ERR_NOT_SOCKET] = "the socket path exists and is not a socket; refusing to remove it",
    [TACHYON_ERR_PATH_TOO_LONG] = "the socket path is too long for a Unix socket address (107 bytes at most)",
};

const char *tachyon_strerror(tachyon_error_t err)
{
    size_t i = (size_t)err;
    if (i < sizeof(error_messages) / sizeof(error_messages[0]) && error_messages[i])
        return error_messages[i];
    return "unknown error";
}

void bus_set_error(const struct tachyon_bus *bus, tachyon_error_t err)
{
    local_flag_store(&bus->last_error, (int)err);
}

tachyon_error_t tachyon_bus_last_error(const tachyon_bus_t *bus)
{
    if (!bus)
        return TACHYON_ERR_NULL_PTR;
    return (tachyon_error_t)local_flag_load(&bus->last_error);
}

int bus_is_fatal(const struct tachyon_bus *bus)
{
    return local_flag_load(&bus->local_fatal);
}

/* Corruption seen: stop using the ring and tell the peer through the segment. */
void bus_set_fatal(struct tachyon_bus *bus)
{
    local_flag_store(&bus->local_fatal, 1);
    store_state(&bus->hdr->state, TACHYON_STATE_FATAL_ERROR);
    bus_set_error(bus, TACHYON_ERR_FATAL);
    wait_wake_consumer(bus); /* a sleeping consumer should learn it now */
}

tachyon_state_t tachyon_get_state(const tachyon_bus_t *bus)
{
    if (!bus)
        return TACHYON_STATE_UNKNOWN;
    if (bus_is_fatal(bus))
        return TACHYON_STATE_FATAL_ERROR;
    if (local_flag_load(&bus->peer_gone))
        return TACHYON_STATE_DISCONNECTED;
    uint32_t s = observe_state(&bus->hdr->state);
    return s <= TACHYON_STATE_UNKNOWN ? (tachyon_state_t)s : TACHYON_STATE_UNKNOWN;
}

void tachyon_memory_barrier_acquire(void)
{
    acquire_fence();
}

/* ---- Lifecycle ----------------------------------------------------------- */

static tachyon_error_t bus_from_fd(int fd, uint64_t capacity, int prefault,
                                   const struct tachyon_peer *peer, tachyon_bus_t **out)
{
    size_t map_size = (size_t)(TACHYON_HEADER_BYTES + capacity);
    void *base;
    tachyon_error_t err = shm_map(fd, map_size, prefault, &base);
    if (err != TACHYON_SUCCESS)
        return err;
    struct tachyon_bus *bus = calloc(1, sizeof(*bus));
    if (!bus) {
        munmap(base, map_size);
        return TACHYON_ERR_MEM;
    }
    bus->refs = 1; /* not yet shared with anyone */
    bus->hdr = base;
    bus->ring = (uint8_t *)base + TACHYON_HEADER_BYTES;
    bus->capacity = capacity;
    bus->mask = capacity - 1;
    bus->map_size = map_size;
    bus->peer_pid = peer->pid;
    bus->peer_pidfd = peer->pidfd;
    *out = bus;
    return TACHYON_SUCCESS;
}

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
    if (!tachyon_capacity_valid(opts->capacity) || opts->n_allowed_uids > TACHYON_MAX_ALLOWED_UIDS)
        return TACHYON_ERR_INVALID_SZ;

    int fd;
    tachyon_error_t err = shm_create_segment(opts->capacity, &fd);
    if (err != TACHYON_SUCCESS)
        return err;
    struct tachyon_peer peer = {0, -1};
    tachyon_bus_t *bus;
    err = bus_from_fd(fd, opts->capacity, 1, &peer, &bus);
    if (err != TACHYON_SUCCESS) {
        close(fd);
        return err;
    }
    shm_format(bus->hdr, (uint32_t)opts->capacity);
    ring_attach(bus);

    err = handshake_listen(socket_path, opts, fd, &peer);
    close(fd); /* the mapping keeps the segment; the peer has its own fd */
    if (err != TACHYON_SUCCESS) {
        munmap(bus->hdr, bus->map_size);
        free(bus);
        return err;
    }
    bus->peer_pid = peer.pid;
    bus->peer_pidfd = peer.pidfd;
    *out = bus;
    return TACHYON_SUCCESS;
}

tachyon_error_t tachyon_bus_listen(const char *socket_path, size_t capacity, tachyon_bus_t **out)
{
    tachyon_listen_opts_t opts;
    tachyon_listen_opts_init(&opts, capacity);
    return tachyon_bus_listen_ex(socket_path, &opts, out);
}

/* Check the handshake, then the fd, then map and check the header. */
static tachyon_error_t attach_received(int fd, const tachyon_handshake_t *hs,
                                       const struct tachyon_peer *peer, tachyon_bus_t **out)
{
    uint64_t capacity;
    tachyon_error_t err = handshake_validate(hs, &capacity);
    if (err == TACHYON_SUCCESS)
        err = shm_check_received_fd(fd, TACHYON_HEADER_BYTES + capacity);
    tachyon_bus_t *bus = NULL;
    if (err == TACHYON_SUCCESS)
        err = bus_from_fd(fd, capacity, 1, peer, &bus);
    close(fd);
    if (err != TACHYON_SUCCESS)
        return err;
    err = shm_check_header(bus->hdr, capacity);
    uint32_t state = observe_state(&bus->hdr->state);
    if (err == TACHYON_SUCCESS && state == TACHYON_STATE_FATAL_ERROR)
        err = TACHYON_ERR_FATAL;
    else if (err == TACHYON_SUCCESS && state != TACHYON_STATE_READY && state != TACHYON_STATE_DISCONNECTED)
        err = TACHYON_ERR_ABI_MISMATCH;
    /* DISCONNECTED: the listener sent its messages and left before we mapped
     * the segment. They are ours to read; then the peer is gone. */
    if (err == TACHYON_SUCCESS && state == TACHYON_STATE_DISCONNECTED)
        local_flag_store(&bus->peer_gone, 1);
    if (err == TACHYON_SUCCESS) {
        ring_attach(bus);
        if (bus_is_fatal(bus))
            err = TACHYON_ERR_FATAL;
    }
    if (err != TACHYON_SUCCESS) {
        munmap(bus->hdr, bus->map_size);
        free(bus);
        return err;
    }
    *out = bus;
    return TACHYON_SUCCESS;
}

tachyon_error_t tachyon_bus_connect_ex(const char *socket_path, int timeout_ms, const uid_t *allowed_uids,
                                       size_t n_allowed_uids, tachyon_bus_t **out)
{
    if (!socket_path || !out || (!allowed_uids && n_allowed_uids > 0))
        return TACHYON_ERR_NULL_PTR;
    *out = NULL;
    if (n_allowed_uids > TACHYON_MAX_ALLOWED_UIDS)
        return TACHYON_ERR_INVALID_SZ;
    int fd;
    tachyon_handshake_t hs;
    struct tachyon_peer peer = {0, -1};
    tachyon_error_t err = handshake_connect(socket_path, timeout_ms, allowed_uids, n_allowed_uids, &fd,
                                            &hs, &peer);
    if (err != TACHYON_SUCCESS)
        return err;
    err = attach_received(fd, &hs, &peer, out);
    if (err != TACHYON_SUCCESS && peer.pidfd >= 0)
        close(peer.pidfd);
    return err;
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
    /* G: everything we published happens before the peer sees DISCONNECTED. */
    mark_disconnected(&bus->hdr->state, TACHYON_STATE_READY, TACHYON_STATE_DISCONNECTED);
    wait_wake_consumer(bus);
    wait_close_peer(bus);
    munmap(bus->hdr, bus->map_size);
    free(bus);
}

tachyon_error_t tachyon_bus_set_numa_node(const tachyon_bus_t *bus, int node_id)
{
    if (!bus)
        return TACHYON_ERR_NULL_PTR;
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
    if (!bus)
        return;
    /* Our own copy decides whether this consumer sleeps: the shared word is
     * only what the producer reads, and a peer could rewrite it. */
    local_flag_store(&bus->pure_spin, pure_spin != 0);
    set_sleeper_word(&bus->hdr->consumer_sleeping,
                     pure_spin ? TACHYON_CONSUMER_PURE_SPIN : TACHYON_CONSUMER_AWAKE);
}

tachyon_error_t tachyon_bus_set_rx_coalesce_ns(tachyon_bus_t *bus, uint32_t delay_ns)
{
    if (!bus)
        return TACHYON_ERR_NULL_PTR;
    if (delay_ns > TACHYON_MAX_RX_COALESCE_NS)
        return TACHYON_ERR_INVALID_SZ;
    local_flag_store(&bus->coalesce_ns, (int)delay_ns);
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
    return bus ? wait_peer_alive(bus) : 0;
}

/* ---- Producer ------------------------------------------------------------ */

/* Fatal here, or declared fatal by the peer through the shared state word
 * (so the data calls agree with tachyon_get_state). The fast paths look only
 * at our own flag; this runs whenever a call finds nothing to do (empty,
 * full) and before every wait. */
static int bus_fatal_anywhere(tachyon_bus_t *bus)
{
    if (bus_is_fatal(bus))
        return 1;
    if (unlikely(observe_state(&bus->hdr->state) == TACHYON_STATE_FATAL_ERROR)) {
        bus_set_fatal(bus);
        return 1;
    }
    return 0;
}

/* Not fatal here (the fast paths' check; see bus_fatal_anywhere). */
static int bus_usable(tachyon_bus_t *bus)
{
    if (unlikely(bus_is_fatal(bus))) {
        bus_set_error(bus, TACHYON_ERR_FATAL);
        return 0;
    }
    return 1;
}

void *tachyon_acquire_tx(tachyon_bus_t *bus, size_t max_payload_size)
{
    if (!bus || !bus_usable(bus))
        return NULL;
    void *p = ring_acquire_tx(bus, max_payload_size);
    if (likely(p != NULL)) {
        bus->tx.full_polls = 0;
        return p;
    }
    /* A caller polling a full ring must learn when the consumer is gone, but
     * a liveness check is a system call: look once, then every 1024 polls. */
    if (tachyon_bus_last_error(bus) != TACHYON_ERR_FULL)
        return NULL;
    if (bus_fatal_anywhere(bus))
        bus_set_error(bus, TACHYON_ERR_FATAL);
    else if ((bus->tx.full_polls++ & 1023) == 0 && !wait_peer_alive(bus))
        bus_set_error(bus, TACHYON_ERR_PEER_DEAD);
    return NULL;
}

static int sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    return nanosleep(&ts, NULL) == 0 || errno != EINTR;
}

void *tachyon_acquire_tx_blocking(tachyon_bus_t *bus, size_t max_payload_size, uint32_t spin_threshold,
                                  int timeout_ms)
{
    if (!bus || !bus_usable(bus))
        return NULL;
    int64_t start = wait_now_ms();
    int64_t last_check = start;
    long backoff_us = 20;
    for (uint64_t attempt = 0;; attempt++) {
        void *p = ring_acquire_tx(bus, max_payload_size);
        if (p || tachyon_bus_last_error(bus) != TACHYON_ERR_FULL)
            return p;
        if (attempt < spin_threshold) {
            tachyon_cpu_relax();
            continue;
        }
        int64_t now = wait_now_ms();
        if (now - last_check >= TX_LIVENESS_CHECK_MS || attempt == spin_threshold) {
            last_check = now;
            if (!wait_peer_alive(bus))
                return (bus_set_error(bus, TACHYON_ERR_PEER_DEAD), NULL);
        }
        if (timeout_ms >= 0 && now - start >= timeout_ms)
            return (bus_set_error(bus, TACHYON_ERR_TIMEOUT), NULL);
        if (!sleep_us(backoff_us))
            return (bus_set_error(bus, TACHYON_ERR_INTERRUPTED), NULL);
        if (backoff_us < 1000)
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

void tachyon_flush(tachyon_bus_t *bus)
{
    /* Commits publish by themselves, so there is usually nothing to do: a
     * second store of the same head would cost a full fence on a line the
     * consumer polls, and wake a sleeping consumer to find nothing. */
    if (bus && !bus_is_fatal(bus) && bus->tx.published != bus->tx.head)
        ring_publish_head(bus);
}

/* ---- Consumer ------------------------------------------------------------ */

/* Nothing to read: say why (empty, peer gone after the last message, fatal). */
static void *rx_nothing(tachyon_bus_t *bus)
{
    if (bus_fatal_anywhere(bus))
        bus_set_error(bus, TACHYON_ERR_FATAL);
    else if (local_flag_load(&bus->peer_gone))
        bus_set_error(bus, TACHYON_ERR_PEER_DEAD);
    else
        bus_set_error(bus, TACHYON_ERR_EMPTY);
    return NULL;
}

const void *tachyon_acquire_rx(tachyon_bus_t *bus, uint32_t *out_type_id, size_t *out_actual_size)
{
    if (!bus || !bus_usable(bus))
        return NULL;
    const void *p = ring_try_rx_inline(bus, out_type_id, out_actual_size);
    return p ? p : rx_nothing(bus);
}

const void *tachyon_acquire_rx_spin(tachyon_bus_t *bus, uint32_t *out_type_id, size_t *out_actual_size,
                                    uint32_t max_spins)
{
    if (!bus || !bus_usable(bus))
        return NULL;
    for (uint32_t i = 0;; i++) {
        const void *p = ring_try_rx(bus, out_type_id, out_actual_size);
        if (p || bus_is_fatal(bus) || i >= max_spins)
            return p ? p : rx_nothing(bus);
        tachyon_cpu_relax();
    }
}

/* Poll head up to `spins` times; 1 as soon as it moved. */
static int spin_for_data(tachyon_bus_t *bus, uint32_t spins)
{
    for (uint32_t i = 0; i < spins; i++) {
        if (ring_has_unread(bus))
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
 * not: FATAL, PEER_DEAD (only once the ring is drained: the caller reads what
 * is left first), INTERRUPTED, TIMEOUT. `deadline` in wait_now_ms() time, -1
 * for none.
 */
static tachyon_error_t rx_wait_readable(tachyon_bus_t *bus, uint32_t spin_threshold, int64_t deadline)
{
    uint32_t spins = 0;
    for (;;) {
        if (bus_fatal_anywhere(bus))
            return TACHYON_ERR_FATAL; /* we, or the peer, found the ring corrupt */
        wait_coalesce(bus, deadline); /* a coalescing consumer's interval, if one runs */
        if (ring_has_unread(bus))
            return TACHYON_SUCCESS;
        if (local_flag_load(&bus->peer_gone))
            return TACHYON_ERR_PEER_DEAD;
        int64_t left = deadline < 0 ? TACHYON_SLEEP_SLICE_MS : deadline - wait_now_ms();
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
            int slice = (int)(left < TACHYON_SLEEP_SLICE_MS ? left : TACHYON_SLEEP_SLICE_MS);
            if (wait_consumer_sleep(bus, slice) == TACHYON_ERR_INTERRUPTED)
                return TACHYON_ERR_INTERRUPTED;
        }
        /* Nothing yet: is anyone still producing? Seeing it gone, the loop
         * goes round once more so what it committed is read first. */
        if (!ring_has_unread(bus))
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
            bus_set_error(bus, err);
            return NULL;
        }
    }
}

const void *tachyon_acquire_rx_blocking(tachyon_bus_t *bus, uint32_t *out_type_id, size_t *out_actual_size,
                                        uint32_t spin_threshold)
{
    if (likely(bus && !bus_is_fatal(bus))) {
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
        bus_set_error(bus, TACHYON_ERR_NULL_PTR);
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
        bus_set_error(bus, out ? TACHYON_ERR_INVALID_SZ : TACHYON_ERR_NULL_PTR);
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
            bus_set_error(bus, err);
            return 0;
        }
    }
}

size_t tachyon_drain_batch(tachyon_bus_t *bus, tachyon_msg_view_t *out, size_t max_msgs,
                           uint32_t spin_threshold)
{
    return tachyon_drain_batch_timeout(bus, out, max_msgs, spin_threshold, -1);
}

/*
 * fanin.c - many producers, one consumer (docs/protocol.md, "Fan-in").
 *
 * Each producer gets a ring of its own: a plain bus segment, made and handed
 * over exactly as tachyon_bus_listen does (attach.c, handshake.c), after a
 * fan hello that tells a plain bus connector it came to the wrong place. The
 * producer then sends on an ordinary bus handle, and the consumer reads each
 * ring with the bus's own receive path, so every ring keeps the bus's
 * guarantees (validated headers, peer death after the last message, the
 * wake-up pairs E/F).
 *
 * One wait for all: every ring's consumer side is given the same eventfd
 * (it is what the bus hands its producer in the extension exchange), so a
 * consumer with nothing to read clears that eventfd once, arms every ring
 * (announces "waiting on my descriptor", pair E/F with the value 3) and
 * sleeps in one poll. Whichever producer publishes next signals it.
 *
 * Fairness: the consumer takes one message per call, starting after the
 * ring it served last, so every producer with a message is served once
 * before any is served twice.
 *
 * Joining: a thread of the consumer's process (the "door") accepts
 * producers and publishes each new ring handle into a free slot (release;
 * the consumer takes it with acquire). Only the consumer thread empties a
 * slot, when the ring's producer is gone and its last message was read.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "barrier.h"
#include "fan.h"
#include "futex.h"
#include "internal.h"
#include "state.h"

#define FANIN_SPIN_CHECK 256u

struct tachyon_fanin {
    uint64_t id;
    unsigned fork_generation;
    uint32_t max_producers;
    uint64_t capacity;
    void *_Atomic rings[TACHYON_FAN_MAX_PEERS]; /* tachyon_bus_t *, NULL: free */
    uint64_t received[TACHYON_FAN_MAX_PEERS];   /* consumer thread: messages taken from each */
    _Atomic uint32_t live;
    int evfd;               /* shared by every ring: their producers signal it */
    uint32_t next;          /* consumer thread: where the round robin goes on */
    int pending;            /* the ring of the message held, -1: none */

    char *path;
    int lfd;
    int stop_fd;
    pthread_t door;
    int door_running;
    tachyon_listen_opts_t opts;
};

static tachyon_error_t fanin_fail(const struct tachyon_fanin *fi, tachyon_error_t err, int keep_detail)
{
    if (!keep_detail)
        status_set_error(NULL, err);
    status_set_error_id(fi->id, err);
    return err;
}

static int fanin_forked(const struct tachyon_fanin *fi)
{
    return atomic_load_explicit(&status_fork_count, memory_order_relaxed) != fi->fork_generation;
}

/* ---- The door ------------------------------------------------------------------ */

static int free_slot(struct tachyon_fanin *fi)
{
    for (uint32_t i = 0; i < fi->max_producers; i++)
        if (!observe_slot_ptr(&fi->rings[i]))
            return (int)i;
    return -1;
}

static void fill_hello(tachyon_fan_hello_t *h, const struct tachyon_fanin *fi, uint32_t index)
{
    memset(h, 0, sizeof(*h));
    h->magic = TACHYON_FAN_MAGIC;
    h->version = TACHYON_FAN_VERSION;
    h->kind = TACHYON_FAN_KIND_IN;
    h->index = index;
    h->max_peers = fi->max_producers;
    h->capacity = (uint32_t)fi->capacity;
}

/*
 * One producer: hello, then a plain bus's handshake with a fresh segment,
 * then the extension exchange in which the shared eventfd goes to it. Our
 * consumer side never uses membarrier with these rings (the producer fences
 * every stamp instead): a consumer arming many rings would otherwise issue
 * one membarrier per ring per sleep.
 */
static void admit(struct tachyon_fanin *fi, int conn, struct tachyon_peer *peer)
{
    int slot = free_slot(fi);
    tachyon_fan_hello_t hello;
    fill_hello(&hello, fi, slot < 0 ? TACHYON_FAN_FULL : (uint32_t)slot);
    tachyon_bus_t *bus = NULL;
    int memfd = -1;
    if (sock_send(conn, &hello, sizeof(hello), NULL, 0) != TACHYON_SUCCESS || slot < 0 ||
        bus_new_segment(fi->capacity, fi->path, &bus, &memfd) != TACHYON_SUCCESS)
        goto refuse;
    if (bus->evfd >= 0)
        close(bus->evfd);
    bus->evfd = fcntl(fi->evfd, F_DUPFD_CLOEXEC, 0);
    tachyon_handshake_t hs;
    handshake_fill(&hs, (uint32_t)fi->capacity, 0, 0);
    tachyon_error_t err = sock_send(conn, &hs, sizeof(hs), &memfd, 1);
    close(memfd);
    if (err != TACHYON_SUCCESS) {
        bus_free_unused(bus);
        goto refuse;
    }
    uint32_t ours = bus_our_features(bus) & ~TACHYON_FEATURE_MEMBARRIER;
    uint32_t agreed = handshake_ext_answer_fd(conn, ours, bus->evfd, &bus->peer_evfd);
    if (agreed == 0) {
        close(conn);
        /* Every fan-in producer makes the extension offer: one that did not
         * hung up half way (or is no fan-in producer at all). */
        if (peer->pidfd >= 0)
            close(peer->pidfd);
        bus_free_unused(bus);
        return;
    }
    bus_set_peer(bus, peer, agreed);
    publish_slot_ptr(&fi->rings[slot], bus);
    atomic_fetch_add_explicit(&fi->live, 1u, memory_order_relaxed);
    eventfd_signal(fi->evfd); /* a sleeping consumer starts watching the new ring */
    /* The hello once more says "admitted": the producer's connect returns
     * only now, so whatever it sends goes to a ring the consumer reads. */
    (void)sock_send(conn, &hello, sizeof(hello), NULL, 0);
    close(conn);
    return;
refuse:
    close(conn);
    if (peer->pidfd >= 0)
        close(peer->pidfd);
}

static void *door_main(void *arg)
{
    struct tachyon_fanin *fi = arg;
    for (;;) {
        struct pollfd fds[2] = {{.fd = fi->stop_fd, .events = POLLIN}, {.fd = fi->lfd, .events = POLLIN}};
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            return NULL;
        }
        if (fds[0].revents)
            return NULL;
        if (fds[1].revents & POLLIN) {
            int conn = -1;
            struct tachyon_peer peer = {0, -1};
            if (sock_accept_allowed(fi->lfd, &fi->opts, &conn, &peer) == TACHYON_SUCCESS)
                admit(fi, conn, &peer);
        }
    }
}

/* ---- Lifecycle ----------------------------------------------------------------- */

static void fanin_free(struct tachyon_fanin *fi)
{
    for (uint32_t i = 0; i < TACHYON_FAN_MAX_PEERS; i++) {
        tachyon_bus_t *bus = observe_slot_ptr(&fi->rings[i]);
        if (bus)
            tachyon_bus_destroy(bus); /* its producer's sends end with PEER_CLOSED */
    }
    if (fi->evfd >= 0)
        close(fi->evfd);
    if (fi->stop_fd >= 0)
        close(fi->stop_fd);
    free(fi->path);
    free(fi);
}

tachyon_error_t tachyon_fanin_listen_ex(const char *socket_path, size_t capacity, uint32_t max_producers,
                                        const tachyon_listen_opts_t *opts, tachyon_fanin_t **out)
{
    if (!socket_path || !out)
        return TACHYON_ERR_NULL_PTR;
    *out = NULL;
    if (!tachyon_capacity_valid(capacity))
        return status_error_detail(NULL, TACHYON_ERR_INVALID_SZ,
                                   "capacity %zu: a ring is a power of two from 64 bytes to 1 GiB", capacity);
    if (max_producers == 0 || max_producers > TACHYON_FAN_MAX_PEERS)
        return status_error_detail(NULL, TACHYON_ERR_INVALID_SZ, "max_producers %u: from 1 to %u", max_producers,
                                   TACHYON_FAN_MAX_PEERS);
    struct tachyon_fanin *fi = calloc(1, sizeof(*fi));
    if (!fi)
        return TACHYON_ERR_MEM;
    fi->id = status_new_bus_id();
    fi->fork_generation = status_fork_generation();
    fi->max_producers = max_producers;
    fi->capacity = capacity;
    fi->pending = -1;
    fi->lfd = -1;
    if (opts)
        fi->opts = *opts;
    else
        tachyon_listen_opts_init(&fi->opts, capacity);
    fi->opts.keep_waiting = 0;
    fi->opts.timeout_ms = 0;
    fi->path = strdup(socket_path);
    fi->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    fi->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    tachyon_error_t err = !fi->path || fi->evfd < 0 || fi->stop_fd < 0 ? TACHYON_ERR_MEM : TACHYON_SUCCESS;
    if (err == TACHYON_SUCCESS)
        err = sock_listen(socket_path, &fi->opts, &fi->lfd);
    if (err == TACHYON_SUCCESS && start_door(&fi->door, door_main, fi) != 0) {
        sock_close_listener(fi->lfd, socket_path);
        err = TACHYON_ERR_SYSTEM;
    }
    if (err != TACHYON_SUCCESS) {
        fanin_free(fi);
        return err;
    }
    fi->door_running = 1;
    *out = fi;
    return TACHYON_SUCCESS;
}

tachyon_error_t tachyon_fanin_listen(const char *socket_path, size_t capacity, uint32_t max_producers,
                                     tachyon_fanin_t **out)
{
    return tachyon_fanin_listen_ex(socket_path, capacity, max_producers, NULL, out);
}

void tachyon_fanin_destroy(tachyon_fanin_t *fi)
{
    if (!fi)
        return;
    if (fanin_forked(fi)) {
        free(fi->path);
        free(fi);
        return;
    }
    if (fi->door_running) {
        eventfd_signal(fi->stop_fd);
        pthread_join(fi->door, NULL);
        sock_close_listener(fi->lfd, fi->path);
    }
    fanin_free(fi);
}

/* ---- Receiving ------------------------------------------------------------------- */

/* Ring i's producer is gone and its last message was read: free the slot
 * and report it once. */
static tachyon_error_t producer_left(struct tachyon_fanin *fi, uint32_t i, tachyon_bus_t *bus, tachyon_error_t how,
                                     tachyon_fan_msg_t *msg)
{
    memset(msg, 0, sizeof(*msg));
    msg->producer = i;
    msg->pid = (int32_t)bus->peer_pid;
    msg->seq = fi->received[i];
    status_error_detail(NULL, how, "fan-in producer %u (pid %d) %s after %llu messages, all of them read", i,
                        (int)bus->peer_pid, how == TACHYON_ERR_PEER_CLOSED ? "left" : "ended without leaving",
                        (unsigned long long)fi->received[i]);
    publish_slot_ptr(&fi->rings[i], NULL);
    fi->received[i] = 0;
    atomic_fetch_sub_explicit(&fi->live, 1u, memory_order_relaxed);
    tachyon_bus_destroy(bus);
    fi->next = (i + 1) % fi->max_producers;
    return fanin_fail(fi, how, 1);
}

/* One round over the rings from where the last one ended: SUCCESS with a
 * message, a producer's end, FATAL for a corrupt ring, or EMPTY. */
static tachyon_error_t take_one(struct tachyon_fanin *fi, tachyon_fan_msg_t *msg)
{
    for (uint32_t k = 0; k < fi->max_producers; k++) {
        uint32_t i = (fi->next + k) % fi->max_producers;
        tachyon_bus_t *bus = observe_slot_ptr(&fi->rings[i]);
        if (!bus)
            continue;
        uint32_t type_id = 0;
        size_t size = 0;
        const void *p = tachyon_acquire_rx(bus, &type_id, &size);
        if (p) {
            msg->ptr = p;
            msg->size = size;
            msg->type_id = type_id;
            msg->producer = i;
            msg->pid = (int32_t)bus->peer_pid;
            msg->reserved_ = 0;
            msg->seq = fi->received[i];
            fi->pending = (int)i;
            fi->next = (i + 1) % fi->max_producers;
            return TACHYON_SUCCESS;
        }
        tachyon_error_t err = tachyon_bus_last_error(bus);
        if (err == TACHYON_ERR_PEER_CLOSED || err == TACHYON_ERR_PEER_DEAD)
            return producer_left(fi, i, bus, err, msg);
        if (err == TACHYON_ERR_FATAL) /* a corrupt ring ends that producer's stream only */
            return producer_left(fi, i, bus, TACHYON_ERR_FATAL, msg);
    }
    return TACHYON_ERR_EMPTY;
}

/* Sleep until a producer signals the shared eventfd (or a slice passes):
 * clear it once, arm every ring; any ring with something already ends the
 * wait before it starts. */
static tachyon_error_t sleep_for_any(struct tachyon_fanin *fi, int slice_ms)
{
    uint64_t v;
    (void)!read(fi->evfd, &v, sizeof(v));
    int ready = 0;
    uint32_t armed = 0;
    for (uint32_t i = 0; i < fi->max_producers && !ready; i++) {
        tachyon_bus_t *bus = observe_slot_ptr(&fi->rings[i]);
        if (!bus)
            continue;
        armed = i + 1;
        ready = notify_rx_arm_shared(bus);
    }
    tachyon_error_t err = TACHYON_SUCCESS;
    if (!ready) {
        struct pollfd pfd = {.fd = fi->evfd, .events = POLLIN};
        if (poll(&pfd, 1, slice_ms) < 0 && errno == EINTR)
            err = TACHYON_ERR_INTERRUPTED;
    }
    for (uint32_t i = 0; i < armed; i++) {
        tachyon_bus_t *bus = observe_slot_ptr(&fi->rings[i]);
        if (bus)
            notify_rx_disarm(bus);
    }
    return err;
}

tachyon_error_t tachyon_fanin_acquire_rx(tachyon_fanin_t *fi, tachyon_fan_msg_t *msg, uint32_t spin, int timeout_ms)
{
    if (!fi || !msg)
        return TACHYON_ERR_NULL_PTR;
    if (fanin_forked(fi))
        return fanin_fail(fi, TACHYON_ERR_FORKED, 0);
    if (fi->pending >= 0)
        return fanin_fail(fi, TACHYON_ERR_STATE, 0);
    int64_t deadline = INT64_MIN;
    uint32_t spins = 0;
    for (;;) {
        tachyon_error_t err = take_one(fi, msg);
        if (err != TACHYON_ERR_EMPTY)
            return err;
        if (timeout_ms == 0)
            return fanin_fail(fi, TACHYON_ERR_EMPTY, 0);
        if (deadline == INT64_MIN)
            deadline = timeout_ms < 0 ? -1 : wait_now_ms() + timeout_ms;
        int64_t left = deadline < 0 ? wait_sleep_slice_ms : deadline - wait_now_ms();
        if (left <= 0)
            return fanin_fail(fi, TACHYON_ERR_TIMEOUT, 0);
        if (spins < spin) {
            uint32_t burst = spin - spins < FANIN_SPIN_CHECK ? spin - spins : FANIN_SPIN_CHECK;
            spins += burst;
            for (uint32_t k = 0; k < burst; k++)
                tachyon_cpu_relax();
            continue;
        }
        if (sleep_for_any(fi, (int)(left < wait_sleep_slice_ms ? left : wait_sleep_slice_ms)) ==
            TACHYON_ERR_INTERRUPTED)
            return fanin_fail(fi, TACHYON_ERR_INTERRUPTED, 0);
    }
}

tachyon_error_t tachyon_fanin_commit_rx(tachyon_fanin_t *fi)
{
    if (!fi)
        return TACHYON_ERR_NULL_PTR;
    if (fanin_forked(fi))
        return fanin_fail(fi, TACHYON_ERR_FORKED, 0);
    if (fi->pending < 0)
        return fanin_fail(fi, TACHYON_ERR_STATE, 0);
    uint32_t i = (uint32_t)fi->pending;
    fi->pending = -1;
    fi->received[i]++;
    return tachyon_commit_rx(observe_slot_ptr(&fi->rings[i]));
}

uint32_t tachyon_fanin_producers(const tachyon_fanin_t *fi)
{
    return fi ? atomic_load_explicit(&((tachyon_fanin_t *)fi)->live, memory_order_relaxed) : 0;
}

tachyon_error_t tachyon_fanin_last_error(const tachyon_fanin_t *fi)
{
    return fi ? status_last_error_id(fi->id) : TACHYON_ERR_NULL_PTR;
}

/* ---- Producer side: join, then it is a bus -------------------------------------- */

tachyon_error_t tachyon_fanin_connect(const char *socket_path, int timeout_ms, uint32_t *out_index,
                                      tachyon_bus_t **out)
{
    if (!socket_path || !out)
        return TACHYON_ERR_NULL_PTR;
    *out = NULL;
    int64_t deadline = timeout_ms > 0 ? wait_now_ms() + timeout_ms : wait_now_ms() + FAN_JOIN_TIMEOUT_MS;
    tachyon_handshake_t raw, hs;
    tachyon_fan_hello_t hello;
    int fds[2], nfds = 0, sock = -1;
    struct tachyon_peer peer = {0, -1};
    tachyon_error_t err = handshake_connect(socket_path, timeout_ms, NULL, 0, &raw, fds, 2, &nfds, &peer, &sock);
    if (err != TACHYON_SUCCESS)
        return err;
    memcpy(&hello, &raw, sizeof(hello));
    for (int i = 0; i < nfds; i++)
        close(fds[i]);
    err = nfds ? status_error_detail(NULL, TACHYON_ERR_ABI_MISMATCH, "the fan-in hello came with descriptors")
               : fan_check_hello(&hello, TACHYON_FAN_KIND_IN);
    if (err == TACHYON_SUCCESS) {
        err = sock_recv(sock, deadline, &hs, sizeof(hs), fds, 2, &nfds);
        if (err != TACHYON_SUCCESS)
            status_error_detail(NULL, err, "the fan-in consumer at %s did not hand over a ring", socket_path);
    }
    uint64_t capacity = 0;
    if (err == TACHYON_SUCCESS) {
        err = handshake_validate(&hs, nfds, &capacity);
        if (err == TACHYON_SUCCESS && capacity != hello.capacity)
            err = status_error_detail(NULL, TACHYON_ERR_ABI_MISMATCH,
                                      "the fan-in ring is %llu bytes, the hello said %u",
                                      (unsigned long long)capacity, hello.capacity);
        if (err != TACHYON_SUCCESS)
            for (int i = 0; i < nfds; i++)
                close(fds[i]);
    }
    if (err == TACHYON_SUCCESS)
        err = bus_attach_segment(fds[0], capacity, &peer, out); /* the fd is the handle's or closed */
    if (err != TACHYON_SUCCESS) {
        close(sock);
        if (peer.pidfd >= 0)
            close(peer.pidfd);
        return err;
    }
    uint32_t ours = bus_our_features(*out) & ~TACHYON_FEATURE_MEMBARRIER;
    uint32_t agreed = handshake_ext_offer_fd(sock, ours, (*out)->evfd, deadline, &(*out)->peer_evfd);
    tachyon_fan_hello_t admitted;
    int n_admitted_fds = 0;
    err = agreed == 0 ? TACHYON_ERR_NETWORK
                      : sock_recv(sock, deadline, &admitted, sizeof(admitted), NULL, 0, &n_admitted_fds);
    close(sock);
    if (err != TACHYON_SUCCESS || memcmp(&admitted, &hello, sizeof(hello)) != 0) {
        tachyon_bus_destroy(*out);
        *out = NULL;
        if (peer.pidfd >= 0)
            close(peer.pidfd);
        return status_error_detail(NULL, TACHYON_ERR_NETWORK,
                                   "the fan-in consumer at %s did not confirm this producer", socket_path);
    }
    bus_set_peer(*out, &peer, agreed);
    if (out_index)
        *out_index = hello.index;
    return TACHYON_SUCCESS;
}

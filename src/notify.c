/*
 * notify.c - waiting for a bus inside an event loop (poll, select, epoll,
 * asyncio, tokio): one descriptor per handle, and how the peer signals it.
 *
 * Each handle of a bus between two processes of this project owns an eventfd
 * and holds the peer's (they were exchanged with the extension messages).
 * tachyon_bus_fd gives an epoll descriptor over three things: our eventfd,
 * the peer's pidfd (readable once its process has ended) and a timer. A
 * consumer that waits announces it in the sleeper word with the value 3
 * (instead of 1 for the futex); a producer that waits for room announces it
 * in producer_waiting. The other side, seeing the announcement after it
 * published (pairs E/F and K/L in barrier.h), takes it back and writes our
 * eventfd. Nobody pays for this unless someone waits on a descriptor: the
 * producer already looks at the sleeper word for the futex, and the consumer
 * looks at producer_waiting only when it gives room back, once per chunk.
 *
 * A plain v4 peer signals nothing: the timer then ticks every millisecond,
 * which bounds the latency. With a peer of ours it ticks every 100 ms, for
 * what no signal reports (a peer that let go of the segment after exec()).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "barrier.h"
#include "futex.h"
#include "internal.h"
#include "ring.h"
#include "state.h"

#define TICK_PLAIN_PEER_NS 1000000L       /* 1 ms: a peer that cannot signal us */
#define TICK_OUR_PEER_NS 100000000L       /* 100 ms: only what no signal reports */

int notify_create(void)
{
    return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}

/* A descriptor from the peer is written to only if it is an eventfd: a pipe
 * with no reader would raise SIGPIPE, a blocking descriptor could stall us. */
int notify_accept_peer_fd(int fd)
{
    char path[64], buf[256];
    snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
    int info = open(path, O_RDONLY | O_CLOEXEC);
    if (info < 0)
        return 0;
    ssize_t n = read(info, buf, sizeof(buf) - 1);
    close(info);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    if (!strstr(buf, "eventfd-count:"))
        return 0;
    int flags = fcntl(fd, F_GETFL);
    return flags >= 0 && (flags & O_NONBLOCK);
}

static void drain(int fd)
{
    uint64_t v;
    if (fd >= 0)
        (void)!read(fd, &v, sizeof(v));
}

void notify_close(struct tachyon_bus *bus)
{
    int ep = atomic_exchange_explicit(&bus->epfd, -1, memory_order_relaxed);
    if (ep >= 0)
        close(ep);
    if (bus->timerfd >= 0)
        close(bus->timerfd);
    if (bus->evfd >= 0)
        close(bus->evfd);
    if (bus->peer_evfd >= 0)
        close(bus->peer_evfd);
    bus->timerfd = bus->evfd = bus->peer_evfd = -1;
}

static int watch(int ep, int fd)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    return fd < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0;
}

static int start_timer(const struct tachyon_bus *bus)
{
    int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (fd < 0)
        return -1;
    long ns = bus->peer_evfd >= 0 ? TICK_OUR_PEER_NS : TICK_PLAIN_PEER_NS;
    struct itimerspec its = {.it_interval = {ns / 1000000000L, ns % 1000000000L},
                             .it_value = {ns / 1000000000L, ns % 1000000000L}};
    if (timerfd_settime(fd, 0, &its, NULL) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static pthread_mutex_t fd_setup = PTHREAD_MUTEX_INITIALIZER;

int tachyon_bus_fd(tachyon_bus_t *bus)
{
    if (!bus)
        return -1;
    if (status_in_forked_child(bus)) {
        status_set_error(bus, TACHYON_ERR_FORKED);
        return -1;
    }
    int ep = atomic_load_explicit(&bus->epfd, memory_order_acquire);
    if (ep >= 0)
        return ep;
    pthread_mutex_lock(&fd_setup);
    ep = atomic_load_explicit(&bus->epfd, memory_order_relaxed);
    if (ep < 0 && bus->evfd >= 0) {
        ep = epoll_create1(EPOLL_CLOEXEC);
        int timer = ep >= 0 ? start_timer(bus) : -1;
        if (ep >= 0 && timer >= 0 && watch(ep, bus->evfd) && watch(ep, timer) && watch(ep, bus->peer_pidfd)) {
            bus->timerfd = timer;
            atomic_store_explicit(&bus->epfd, ep, memory_order_release);
        } else {
            status_error_detail(bus, TACHYON_ERR_SYSTEM, "setting up the bus's descriptor: %s", strerror(errno));
            if (timer >= 0)
                close(timer);
            if (ep >= 0)
                close(ep);
            ep = -1;
        }
    } else if (ep < 0) {
        status_error_detail(bus, TACHYON_ERR_SYSTEM, "this bus has no eventfd (the system refused one)");
    }
    pthread_mutex_unlock(&fd_setup);
    return ep;
}

/* Is there something for the consumer now: a message, or the news that there
 * will be none (fatal, peer gone)? The liveness check is not paced here: an
 * arm on an empty ring comes before a wait, and the wait may have been
 * ended by the peer's pidfd. */
static int rx_ready_now(tachyon_bus_t *bus)
{
    if (status_fatal_anywhere(bus) || ring_readable(bus))
        return 1;
    return !wait_peer_alive(bus);
}

/* E, for a descriptor: announce, let a fence-free producer of ours fence
 * (membarrier), look again. 1 when something came meanwhile. */
static int rx_arm(tachyon_bus_t *bus)
{
    tachyon_segment_header_t *hdr = bus->hdr;
    announce_fd_wait(&hdr->consumer_sleeping);
    wait_fence_before_recheck(bus);
    if (!ring_recheck_readable(bus))
        return 0;
    (void)claim_fd_waiter(&hdr->consumer_sleeping); /* we do not wait after all */
    return 1;
}

int tachyon_bus_fd_arm(tachyon_bus_t *bus, unsigned what)
{
    if (!bus)
        return -1;
    if (status_in_forked_child(bus)) {
        status_set_error(bus, TACHYON_ERR_FORKED);
        return -1;
    }
    if (what == 0 || (what & ~(unsigned)(TACHYON_WAIT_RX | TACHYON_WAIT_TX)) != 0) {
        status_set_error(bus, TACHYON_ERR_INVALID_SZ);
        return -1;
    }
    /* Clear what woke us before, then decide: level-triggered from here. */
    drain(bus->evfd);
    drain(bus->timerfd);
    if ((what & TACHYON_WAIT_RX) && rx_ready_now(bus))
        return 1;
    if (what & TACHYON_WAIT_TX) {
        if (status_fatal_anywhere(bus) || !wait_peer_alive(bus) || ring_tx_room_or_arm(bus, 0))
            return 1;
    }
    if ((what & TACHYON_WAIT_RX) && rx_arm(bus))
        return 1;
    if ((what & TACHYON_WAIT_TX) && ring_tx_room_or_arm(bus, 1))
        return 1;
    return 0;
}

/* Fan-in: one eventfd serves every producer's ring, so the consumer clears
 * it once and then arms each ring without clearing it again (a signal from
 * a ring armed earlier must not be lost). 1 when this ring has something
 * already (a message, its producer's end, a fatal state). */
int notify_rx_arm_shared(tachyon_bus_t *bus)
{
    return rx_ready_now(bus) || rx_arm(bus);
}

/* Take back an arm that a wake-up through another ring made moot, so that
 * this ring's producer does not signal for nothing. */
void notify_rx_disarm(tachyon_bus_t *bus)
{
    (void)claim_fd_waiter(&bus->hdr->consumer_sleeping);
}

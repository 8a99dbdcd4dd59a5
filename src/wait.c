/*
 * wait.c - sleeping and waking (SPEC.md 1.4), and knowing whether the peer
 * is still there.
 *
 * The consumer sleeps on the shared futex word consumer_sleeping in slices of
 * TACHYON_SLEEP_SLICE_MS; between slices it checks the peer's liveness, which
 * bounds how long a dead producer can keep it waiting. A live producer wakes it
 * at once (pair E/F in barrier.h), so no message waits for a slice to end.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "barrier.h"
#include "internal.h"

static long futex(_Atomic uint32_t *word, int op, uint32_t val, const struct timespec *timeout)
{
    /* Shared futex (no FUTEX_PRIVATE_FLAG): the word lives in a MAP_SHARED
     * segment that another process waits or wakes on. */
    return syscall(SYS_futex, (uint32_t *)word, op, val, timeout, NULL, 0);
}

/* Wake a consumer that announced sleep (word 1). A pure-spin (2) or awake (0)
 * consumer needs no system call. */
void wait_wake_consumer(struct tachyon_bus *bus)
{
    if (claim_sleeper(&bus->hdr->consumer_sleeping))
        (void)futex(&bus->hdr->consumer_sleeping, FUTEX_WAKE, INT_MAX, NULL);
}

int64_t wait_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t wait_now_ms(void)
{
    return wait_now_ns() / 1000000;
}

/* ---- Receive coalescing (tachyon_bus_set_rx_coalesce_ns) --------------------
 *
 * Every look at head takes the cache line holding it from the producer's
 * core, and the producer's next publication has to take it back (about
 * 140 ns each way on a 2-core KVM guest): a consumer that looks after every
 * message costs a fast producer one cache-line round trip per message. A
 * coalescing consumer looks at most once per interval while messages keep
 * coming: after a look that found something new, the next look waits until
 * next_look_ns. A look that found nothing leaves no interval, so a consumer
 * waiting for sparse traffic sees the next message at once.
 *
 * The interval is the configured delay, shortened so that, at the rate seen
 * between the last two looks that found something, the producer cannot fill
 * a quarter of the ring before the next look. There is none while the
 * consumer is behind (a quarter of the ring or more unread), and none after
 * the first look of a burst (no rate known yet: the previous such look was
 * more than two intervals ago), so a producer on a small ring is held up
 * only when it speeds up within a burst, and then by less than an interval.
 */

/* Consumer: may a coalescing consumer read head now? */
int wait_coalesce_may_look(const struct tachyon_bus *bus)
{
    /* A consumer whose producer is gone reads what is left at once. */
    return bus->rx.next_look_ns == 0 || local_flag_load(&bus->peer_gone) ||
           wait_now_ns() >= bus->rx.next_look_ns;
}

/* The interval after a look at time `now` that found head moved from
 * `old_head` to `head`; 0 for none. */
static int64_t coalesce_interval(const struct tachyon_bus *bus, uint64_t old_head, uint64_t head, int64_t now)
{
    uint64_t quarter = bus->capacity / 4;
    int64_t delay = local_flag_load(&bus->coalesce_ns);
    if (head == old_head || head - bus->rx.tail >= quarter || bus->rx.last_look_ns == 0)
        return 0;
    int64_t since = now - bus->rx.last_look_ns;
    if (since > 2 * delay)
        return 0; /* the first look of a burst: no rate to go by */
    if (since < 1)
        since = 1;
    /* Time for the producer to publish a quarter ring at the rate seen since
     * the last look that found something, which found old_head (compared as
     * a double: the quotient may not fit). */
    double fill = (double)since * (double)quarter / (double)(head - old_head);
    return fill < (double)delay ? (int64_t)fill : delay;
}

/* Consumer: at time `now` head was read, `old_head` before and `head` now.
 * Set when the next look may be. */
void wait_coalesce_note_look(struct tachyon_bus *bus, uint64_t old_head, uint64_t head, int64_t now)
{
    int64_t interval = coalesce_interval(bus, old_head, head, now);
    bus->rx.next_look_ns = interval > 0 ? now + interval : 0;
    if (head != old_head)
        bus->rx.last_look_ns = now;
}

/*
 * Consumer, in a blocking or timed receive that has nothing cached: spin
 * until the interval allows a look (or the deadline, in ms, -1 for none,
 * comes first). Not while the peer is known gone or the ring is fatal: then
 * the caller has to learn that now.
 */
void wait_coalesce(struct tachyon_bus *bus, int64_t deadline_ms)
{
    int64_t until = bus->rx.next_look_ns;
    if (until == 0 || local_flag_load(&bus->coalesce_ns) <= 0 || bus->rx.cached_head != bus->rx.tail ||
        local_flag_load(&bus->peer_gone) || bus_is_fatal(bus))
        return;
    if (deadline_ms >= 0 && deadline_ms * 1000000 < until)
        until = deadline_ms * 1000000;
    while (wait_now_ns() < until) {
        for (int i = 0; i < 8; i++)
            tachyon_cpu_relax();
    }
}

/*
 * Sleep until the producer publishes, up to timeout_ms. Returns SUCCESS when
 * woken or when the re-check found data, TIMEOUT when the slice ran out,
 * INTERRUPTED when a signal handler ran.
 */
tachyon_error_t wait_consumer_sleep(struct tachyon_bus *bus, int timeout_ms)
{
    tachyon_segment_header_t *hdr = bus->hdr;
    if (local_flag_load(&bus->pure_spin))
        return TACHYON_SUCCESS; /* pure-spin consumers never sleep */

    /* E: pairs with the producer's F. If head moved, do not sleep. */
    if (announce_sleep_recheck_head(&hdr->consumer_sleeping, &hdr->head) != bus->rx.tail) {
        set_sleeper_word(&hdr->consumer_sleeping, TACHYON_CONSUMER_AWAKE);
        return TACHYON_SUCCESS;
    }
    struct timespec ts = {timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L};
    long rc = futex(&hdr->consumer_sleeping, FUTEX_WAIT, TACHYON_CONSUMER_SLEEPING, &ts);
    int err = rc == 0 ? 0 : errno;
    /* Back to 0 unless the producer already did (claim_sleeper) or the
     * consumer switched to pure-spin meanwhile. */
    (void)claim_sleeper(&hdr->consumer_sleeping);
    if (err == EINTR)
        return TACHYON_ERR_INTERRUPTED;
    if (err == ETIMEDOUT)
        return TACHYON_ERR_TIMEOUT;
    return TACHYON_SUCCESS; /* woken, or the word changed (EAGAIN) */
}

/*
 * Is the peer still there? It is gone when it marked the segment disconnected
 * (clean destroy) or when its process exited (pidfd readable, or for kernels
 * without pidfds, kill(pid, 0) failing with ESRCH).
 */
int wait_peer_alive(struct tachyon_bus *bus)
{
    if (local_flag_load(&bus->peer_gone))
        return 0;
    int gone = observe_state(&bus->hdr->state) == TACHYON_STATE_DISCONNECTED;
    if (!gone && bus->peer_pidfd >= 0) {
        struct pollfd p = {.fd = bus->peer_pidfd, .events = POLLIN};
        gone = poll(&p, 1, 0) > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR));
    } else if (!gone && bus->peer_pid > 0) {
        gone = kill(bus->peer_pid, 0) != 0 && errno == ESRCH;
    }
    if (gone)
        local_flag_store(&bus->peer_gone, 1); /* sticky */
    return !gone;
}

void wait_close_peer(struct tachyon_bus *bus)
{
    if (bus->peer_pidfd >= 0)
        close(bus->peer_pidfd);
    bus->peer_pidfd = -1;
}

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

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t wait_now_ms(void)
{
    return now_ns() / 1000000;
}

/*
 * Receive coalescing (tachyon_bus_set_rx_coalesce_ns), at the start of a
 * blocking receive: when the consumer has read everything it saw, it waits
 * the configured time before it looks at head again, without touching the
 * shared segment. Every look at head takes the line holding it from the
 * producer's cache, and the producer's next publication has to take it back
 * (about 140 ns each way on a 2-core KVM guest), so a consumer that looks
 * after every message costs a fast producer one cache-line round trip per
 * message; one that looks every few microseconds costs it one per batch.
 * Skipped while the consumer is behind (the last head it read was a quarter
 * of the ring or more ahead), so that a fast producer never fills the ring
 * while the consumer idles.
 */
void wait_coalesce(struct tachyon_bus *bus)
{
    int ns = local_flag_load(&bus->coalesce_ns);
    if (ns <= 0 || bus->rx.cached_head != bus->rx.tail || bus->rx.backlog_high)
        return;
    int64_t end = now_ns() + ns;
    do {
        for (int i = 0; i < 8; i++)
            tachyon_cpu_relax();
    } while (now_ns() < end);
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

/*
 * wait.c - sleeping and waking (docs/protocol.md, "Waking a sleeping
 * consumer"), and knowing whether the peer is still there.
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
#include <poll.h>
#include <signal.h>
#include <time.h>

#include "barrier.h"
#include "futex.h"
#include "internal.h"
#include "state.h"

int wait_sleep_slice_ms = TACHYON_SLEEP_SLICE_MS;

/* membarrier registration of this process, as of fork generation
 * membarrier_generation - 1 (0: not tried yet): a fork()ed child is a
 * process of its own and registers again. */
static _Atomic unsigned membarrier_generation;
static _Atomic int membarrier_ok;

int wait_membarrier_ready(void)
{
    unsigned generation = status_fork_generation() + 1;
    if (atomic_load_explicit(&membarrier_generation, memory_order_acquire) == generation)
        return atomic_load_explicit(&membarrier_ok, memory_order_relaxed);
    int ok = 0;
#ifdef SYS_membarrier
    long cmds = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    ok = cmds > 0 && (cmds & MEMBARRIER_CMD_GLOBAL_EXPEDITED) && (cmds & MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) &&
         syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0, 0) == 0;
#endif
    atomic_store_explicit(&membarrier_ok, ok, memory_order_relaxed);
    atomic_store_explicit(&membarrier_generation, generation, memory_order_release);
    return ok;
}

/*
 * A consumer about to sleep or wait has announced it (E1); before it looks
 * again (E2), a producer that stores stamps without a fence needs one from
 * us: a membarrier, unless the producer says it fences every stamp now
 * (pair M). The membarrier costs tens of microseconds on some machines, so a
 * consumer that sleeps after nearly every message (a sparse stream) asks the
 * producer to fence instead, and withdraws the request when the stream gets
 * dense again (SPARSE_*).
 */
#define SPARSE_MESSAGES 2u /* at most this many messages between two sleeps: sparse */
#define SPARSE_SLEEPS 8u   /* this many sparse sleeps in a row: ask for fences */
#define DENSE_MESSAGES 64u /* this many between two sleeps: withdraw the request */

uint32_t wait_sleep_wants_fence(uint64_t messages, uint64_t *messages_at_sleep, uint32_t *sparse_sleeps,
                                uint32_t wants)
{
    uint64_t since = messages - *messages_at_sleep;
    *messages_at_sleep = messages;
    *sparse_sleeps = since <= SPARSE_MESSAGES ? *sparse_sleeps + 1 : 0;
    if (*sparse_sleeps >= SPARSE_SLEEPS)
        return 1;
    if (since >= DENSE_MESSAGES)
        return 0;
    return wants;
}

static void note_sleep_pattern(struct tachyon_bus *bus)
{
#ifdef TACHYON_NO_STATS
    (void)bus; /* no message count to judge by: never ask */
    return;
#endif
    struct tachyon_rx_state *rx = &bus->rx;
    uint32_t want = wait_sleep_wants_fence(rx->messages, &rx->messages_at_sleep, &rx->sparse_sleeps, rx->wants_fence);
    if (want != rx->wants_fence) {
        rx->wants_fence = want;
        request_fencing(&bus->hdr->consumer_wants_fence, want);
    }
}

void wait_fence_before_recheck(struct tachyon_bus *bus)
{
    if (!(bus->peer_features & TACHYON_FEATURE_MEMBARRIER) || !wait_membarrier_ready())
        return; /* a producer that is not fence-free (or we cannot help it) */
    if (observe_fencing_ack(&bus->hdr->producer_fencing)) /* M: pairs with ack_fencing */
        return;
    (void)membarrier_global_expedited();
}

/* How often a call that finds nothing to do (an empty or full ring) checks
 * that the peer is still there: a system call, so not on every call. */
#define LIVENESS_CHECK_NS (10 * 1000000LL)

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

    /* E: pairs with the producer's F. If something came, do not sleep. A
     * producer of ours that stores without a fence gets one from us before
     * we look again. */
    note_sleep_pattern(bus);
    announce_sleep(&hdr->consumer_sleeping);
    wait_fence_before_recheck(bus);
    if (ring_recheck_readable(bus)) {
        set_sleeper_word(&hdr->consumer_sleeping, TACHYON_CONSUMER_AWAKE);
        return TACHYON_SUCCESS;
    }
    struct timespec ts = {timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L};
    bus->rx.sleeps++;
    long rc = futex_wait(&hdr->consumer_sleeping, TACHYON_CONSUMER_SLEEPING, &ts);
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

static int peer_marked_disconnected(struct tachyon_bus *bus)
{
    return observe_state(&bus->hdr->state) == TACHYON_STATE_DISCONNECTED; /* G: pairs with mark_disconnected */
}

/* A peer of this project holds its byte of the segment file while it keeps
 * the segment (shm.c): a released byte means it dropped the segment, even if
 * its process lives on (after exec(), say). */
static int peer_dropped_segment(struct tachyon_bus *bus)
{
    return (bus->peer_features & TACHYON_FEATURE_HOLD_LOCK) && bus->seg_fd >= 0 &&
           shm_held_by_peer(bus->seg_fd, bus->peer_byte) == 0;
}

static int peer_process_ended(struct tachyon_bus *bus)
{
    if (peer_dropped_segment(bus))
        return 1;
    if (bus->peer_pidfd >= 0) {
        struct pollfd p = {.fd = bus->peer_pidfd, .events = POLLIN};
        return poll(&p, 1, 0) > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR));
    }
    if (bus->peer_pid > 0)
        return kill(bus->peer_pid, 0) != 0 && errno == ESRCH;
    return 0;
}

/*
 * Is the peer still there? It closed the bus when it marked the segment
 * disconnected (a clean destroy); it died when its process ended (pidfd
 * readable, or for kernels without pidfds kill(pid, 0) failing with ESRCH)
 * or it let go of the segment (its held byte released) without doing so. The state word is read again after the process is seen
 * gone: a peer that destroyed the bus and then exited closed it.
 */
int wait_peer_alive(struct tachyon_bus *bus)
{
    if (status_peer(bus) != PEER_PRESENT)
        return 0;
    if (peer_marked_disconnected(bus)) {
        status_note_peer_gone(bus, PEER_CLOSED);
        return 0;
    }
    if (!peer_process_ended(bus))
        return 1;
    status_note_peer_gone(bus, peer_marked_disconnected(bus) ? PEER_CLOSED : PEER_DIED);
    return 0;
}

/* wait_peer_alive at most once per LIVENESS_CHECK_NS (the pace kept in
 * *next_check_ns), for calls that poll: between checks it answers from what
 * it knew. */
int wait_peer_alive_paced(struct tachyon_bus *bus, int64_t *next_check_ns)
{
    if (status_peer(bus) != PEER_PRESENT)
        return 0;
    int64_t now = wait_now_coarse_ns();
    if (now < *next_check_ns)
        return 1;
    *next_check_ns = now + LIVENESS_CHECK_NS;
    return wait_peer_alive(bus);
}

void wait_close_peer(struct tachyon_bus *bus)
{
    if (bus->peer_pidfd >= 0)
        close(bus->peer_pidfd);
    bus->peer_pidfd = -1;
}

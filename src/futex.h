/*
 * futex.h - the kernel's help with sleeping and waking: the two futex
 * operations on a word of the shared segment (shared futexes, no
 * FUTEX_PRIVATE_FLAG: the word lives in a MAP_SHARED segment that another
 * process waits on or wakes), and membarrier, which lets a consumer about to
 * sleep put a full barrier into the producer's threads so the producer needs
 * none per message (pair E/F in barrier.h).
 */
#ifndef TACHYON_FUTEX_H
#define TACHYON_FUTEX_H

#include <limits.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "barrier.h"
#include "wire.h"

/* Sleep while *word == expected, up to `timeout` (NULL: no limit). 0 when
 * woken; -1 with errno ETIMEDOUT, EINTR or EAGAIN (the word differed). */
static inline long futex_wait(_Atomic uint32_t *word, uint32_t expected, const struct timespec *timeout)
{
    return syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT, expected, timeout, NULL, 0);
}

/* Wake every waiter on the word. */
static inline void futex_wake_all(_Atomic uint32_t *word)
{
    (void)syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/* Wake a consumer that announced sleep (word 1): take the word back to 0
 * first (claim_sleeper, barrier.h), then FUTEX_WAKE. A pure-spin (2) or awake
 * (0) consumer costs no system call. */
static inline void futex_wake_consumer(tachyon_segment_header_t *hdr)
{
    if (claim_sleeper(&hdr->consumer_sleeping))
        futex_wake_all(&hdr->consumer_sleeping);
}

/* Signal an eventfd (a peer waiting in an event loop, notify.c); -1 is none.
 * A full counter (EAGAIN) means it is signalled already. */
static inline void eventfd_signal(int fd)
{
    uint64_t one = 1;
    if (fd >= 0)
        (void)!write(fd, &one, sizeof(one));
}

#ifndef MEMBARRIER_CMD_GLOBAL_EXPEDITED
#define MEMBARRIER_CMD_QUERY 0
#define MEMBARRIER_CMD_GLOBAL_EXPEDITED (1 << 1)
#define MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED (1 << 2)
#endif

/* Every thread of every process registered for it executes a full memory
 * barrier before this returns (or passes a context switch, which is one). */
static inline long membarrier_global_expedited(void)
{
#ifdef SYS_membarrier
    return syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0, 0);
#else
    return -1;
#endif
}

#endif /* TACHYON_FUTEX_H */

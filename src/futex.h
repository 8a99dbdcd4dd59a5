/*
 * futex.h - the two futex operations on a word of the shared segment.
 *
 * Shared futexes (no FUTEX_PRIVATE_FLAG): the word lives in a MAP_SHARED
 * segment that another process waits on or wakes.
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

#endif /* TACHYON_FUTEX_H */

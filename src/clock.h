/*
 * clock.h - the clocks every layer reads: CLOCK_MONOTONIC for deadlines,
 * its coarse twin (a few ns through the vDSO, a few ms of resolution) for
 * pacing and for the counters' timestamps.
 */
#ifndef TACHYON_CLOCK_H
#define TACHYON_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t wait_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline int64_t wait_now_ms(void)
{
    return wait_now_ns() / 1000000;
}

static inline int64_t wait_now_coarse_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

#endif /* TACHYON_CLOCK_H */

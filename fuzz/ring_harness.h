/*
 * ring_harness.h - drive the ring code over a segment image that a hostile
 * peer controls completely, and check what the library must never do.
 *
 * Shared by the libFuzzer target fuzz_ring.c and the random sweep in
 * tests/security/hostile_ring.c. The bus object is built by hand over a
 * malloc'd image (through src/internal.h), so AddressSanitizer sees the exact
 * bounds of the segment: one byte read or written outside it is a report.
 *
 * Input layout (every length accepted; missing bytes read as zero):
 *   [0..7]   head   [8..15] tail   (how they are used depends on mode)
 *   [16]     capacity = 64 << (b % 5)   (64 .. 1024)
 *   [17]     consumer_sleeping word     [18] state word
 *   [19]     mode: bit 0 raw counters; otherwise tail as given (64-aligned)
 *            and head = tail + (head % (capacity + 128)) rounded down to 64;
 *            bit 1: the peer reads lone skip markers; bit 2: its consumer
 *            reads slot stamps (the producer publishes head lazily)
 *   [20..23] the segment's stamp salt: 0 when all four are 0, otherwise
 *            these 32 bits spread over 64 (low six bits set, as always)
 *   [24 .. 24+capacity)  the ring's bytes
 *   rest     operations, see ring_harness.c
 *
 * A violated property calls abort() with a message on stderr.
 */
#ifndef TACHYON_RING_HARNESS_H
#define TACHYON_RING_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#define RING_HARNESS_PREFIX 24
#define RING_HARNESS_MAX_OPS 64

/* Run one input; returns the number of operations executed. */
size_t ring_harness_run(const uint8_t *data, size_t size);

#endif

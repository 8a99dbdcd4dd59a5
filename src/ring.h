/*
 * ring.h - what the consumer's paths share, inline: is the slot at a position
 * ready (covered by head, or stamped complete), is its header sane, and the
 * fast path of a single receive, so the public receive calls in bus.c pay no
 * call into ring.c for a message that is already there. Everything unusual
 * (reading head, a skip marker, a bad header) goes to ring_try_rx in ring.c,
 * which handles all cases.
 */
#ifndef TACHYON_RING_H
#define TACHYON_RING_H

#include "barrier.h"
#include "internal.h"

/* A header read once from shared memory passes these checks or is corrupt. */
static inline int slot_valid(uint32_t size, uint32_t reserved, uint64_t to_end, uint64_t avail)
{
    return reserved >= TACHYON_MSG_HEADER && (reserved & (TACHYON_MSG_ALIGN - 1)) == 0 &&
           reserved <= to_end && reserved <= avail && size <= reserved - TACHYON_MSG_HEADER;
}

/* Does the last head we read cover the slot at `pos` (head is past it)? Head
 * may lag behind the consumer when the producer stamps slots and publishes
 * head lazily, so "head <= pos" is not an error, just "no news". */
static inline int rx_head_covers(const struct tachyon_bus *bus, uint64_t pos)
{
    return bus->rx.cached_head - pos - 1 < bus->capacity;
}

/* Is the slot at `pos` stamped complete (pair H)? */
static inline int rx_slot_stamped(const struct tachyon_bus *bus, tachyon_msg_header_t *h, uint64_t pos)
{
    return bus->stamp_salt != 0 && observe_slot_stamp(&h->stamp) == (pos ^ bus->stamp_salt);
}

/* Is the slot at `pos` ready as far as we know without reading head? */
static inline int rx_ready_without_head(const struct tachyon_bus *bus, uint64_t pos)
{
    return rx_head_covers(bus, pos) ||
           rx_slot_stamped(bus, (tachyon_msg_header_t *)(bus->ring + (pos & bus->mask)), pos);
}

/*
 * The check of a consumer's spin loop, iteration `i`: is there something at
 * the tail? With a producer known to stamp, nothing new reaches us through
 * head (it stores head lazily), so a spinning consumer reads head only every
 * HEAD_LOOK_EVERY iterations, in case the producer stopped stamping
 * (tachyon_bus_set_publish_batch), and otherwise leaves that cache line
 * alone; with any other producer, every iteration.
 */
#define HEAD_LOOK_EVERY 64u
static inline int ring_poll_readable(struct tachyon_bus *bus, uint32_t i)
{
    if (rx_ready_without_head(bus, bus->rx.tail))
        return 1;
    if (bus->rx.producer_stamps && i % HEAD_LOOK_EVERY != HEAD_LOOK_EVERY - 1)
        return 0;
    return ring_readable(bus);
}

/*
 * How many bytes from `pos` the producer can have written: up to head when
 * head covers `pos`, else (a stamped slot) up to a ring past our tail. A
 * header claiming more is corrupt.
 */
static inline uint64_t rx_bytes_written(const struct tachyon_bus *bus, uint64_t pos)
{
    return rx_head_covers(bus, pos) ? bus->rx.cached_head - pos : bus->rx.tail + bus->capacity - pos;
}

/*
 * The next message when it is an ordinary slot already known to be ready
 * (head covers it, or it is stamped); otherwise ring_try_rx. Same results.
 */
static inline const void *ring_try_rx_inline(struct tachyon_bus *bus, uint32_t *type_id, size_t *size)
{
    uint64_t pos = bus->rx.tail;
    uint64_t off = pos & bus->mask;
    tachyon_msg_header_t *h = (tachyon_msg_header_t *)(bus->ring + off);
    if (likely(rx_head_covers(bus, pos) || rx_slot_stamped(bus, h, pos))) {
        uint32_t sz = read_slot_word(&h->size);
        uint32_t reserved = read_slot_word(&h->reserved_size);
        if (likely(sz != TACHYON_SKIP_MARKER &&
                   slot_valid(sz, reserved, bus->capacity - off, rx_bytes_written(bus, pos)))) {
            bus->rx.pending_end = pos + reserved;
            bus->rx.pending_count = 1;
            bus->rx.pending_batch = 0;
            bus->rx.pending_payload = (const uint8_t *)h + TACHYON_MSG_HEADER;
            bus->rx.pending_size = sz;
            if (type_id)
                *type_id = read_slot_word(&h->type_id);
            if (size)
                *size = sz;
            return (const uint8_t *)h + TACHYON_MSG_HEADER;
        }
    }
    return ring_try_rx(bus, type_id, size);
}

#endif /* TACHYON_RING_H */

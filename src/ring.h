/*
 * ring.h - the consumer's fast path, inline so the public receive calls in
 * bus.c pay no call into ring.c for a message that is already published.
 * Everything unusual (refreshing head, a skip marker, a bad header) goes to
 * ring_try_rx in ring.c, which handles all cases.
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

/*
 * The next message when head is already known to cover it (cached) and it is
 * an ordinary slot; otherwise ring_try_rx. Same results as ring_try_rx.
 */
static inline const void *ring_try_rx_inline(struct tachyon_bus *bus, uint32_t *type_id, size_t *size)
{
    uint64_t pos = bus->rx.tail;
    if (likely(bus->rx.cached_head != pos)) {
        uint64_t off = pos & bus->mask;
        tachyon_msg_header_t *h = (tachyon_msg_header_t *)(bus->ring + off);
        uint32_t sz = read_slot_word(&h->size);
        uint32_t reserved = read_slot_word(&h->reserved_size);
        if (likely(sz != TACHYON_SKIP_MARKER &&
                   slot_valid(sz, reserved, bus->capacity - off, bus->rx.cached_head - pos))) {
            bus->rx.pending_end = pos + reserved;
            bus->rx.pending_count = 1;
            bus->rx.pending_batch = 0;
            bus->rx.pending_payload = (const uint8_t *)h + TACHYON_MSG_HEADER;
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

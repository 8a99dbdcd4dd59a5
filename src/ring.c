/*
 * ring.c - the single-producer/single-consumer byte ring (SPEC.md 1.3).
 *
 * head and tail are free-running byte counters, compared only by unsigned
 * difference and masked only to address the ring. Each side keeps a private
 * copy of the other's counter and re-reads the shared one only when the copy
 * says "full" (producer) or "empty" (consumer), so in steady state each side
 * touches the other's cache line once per batch of messages, not per message.
 *
 * Publication policy: every commit publishes head at once (one plain store on
 * x86, plus one locked exchange when the consumer may sleep), and every
 * consumer commit publishes tail. A message therefore never waits in the
 * producer for a flush, whatever the caller's flush cadence; see
 * docs/design.md for the measurements behind this choice.
 *
 * Everything read from the shared segment is untrusted: a counter or header
 * that breaks an invariant puts the bus in the fatal state and the call
 * returns NULL/0. No value read from shared memory is used as an index before
 * it is checked against the ring's bounds.
 */
#include <string.h>

#include "barrier.h"
#include "internal.h"
#include "ring.h"

static inline tachyon_msg_header_t *header_at(struct tachyon_bus *bus, uint64_t pos)
{
    return (tachyon_msg_header_t *)(bus->ring + (pos & bus->mask));
}

static inline void *fail_null(struct tachyon_bus *bus, tachyon_error_t err)
{
    bus_set_error(bus, err);
    return NULL;
}

/* Both counters must be 64-aligned and no more than a ring apart. */
static int counters_consistent(const struct tachyon_bus *bus, uint64_t head, uint64_t tail)
{
    return ((head | tail) & (TACHYON_MSG_ALIGN - 1)) == 0 && head - tail <= bus->capacity;
}

void ring_attach(struct tachyon_bus *bus)
{
    uint64_t head = read_counter_relaxed(&bus->hdr->head);
    uint64_t tail = read_counter_relaxed(&bus->hdr->tail);
    memset(&bus->tx, 0, sizeof(bus->tx));
    memset(&bus->rx, 0, sizeof(bus->rx));
    if (!counters_consistent(bus, head, tail)) {
        bus_set_fatal(bus);
        return;
    }
    bus->tx.head = head;
    bus->tx.published = head;
    bus->tx.cached_tail = tail;
    bus->rx.tail = tail;
    bus->rx.cached_head = head;
}

/* ---- Producer ------------------------------------------------------------ */

/* Is there room for `bytes` more after tx.head? Re-reads tail only when the
 * cached copy says no. */
static int tx_refresh_tail_has_room(struct tachyon_bus *bus, uint64_t bytes);

static inline int tx_has_room(struct tachyon_bus *bus, uint64_t bytes)
{
    if (likely(bus->tx.head + bytes - bus->tx.cached_tail <= bus->capacity))
        return 1;
    return tx_refresh_tail_has_room(bus, bytes);
}

/* The slow half of tx_has_room: the cached tail says no, look at the real one. */
static int tx_refresh_tail_has_room(struct tachyon_bus *bus, uint64_t bytes)
{
    uint64_t tail = observe_tail(&bus->hdr->tail); /* D: pairs with the consumer's C */
    if (!counters_consistent(bus, bus->tx.head, tail)) {
        bus_set_fatal(bus);
        return 0;
    }
    bus->tx.cached_tail = tail;
    return bus->tx.head + bytes - tail <= bus->capacity;
}

/* Publish tx.head; wake the consumer if it sleeps (SPEC.md 1.4). */
void ring_publish_head(struct tachyon_bus *bus)
{
    tachyon_segment_header_t *hdr = bus->hdr;
    bus->tx.published = bus->tx.head;
    if (peek_sleeper_word(&hdr->consumer_sleeping) == TACHYON_CONSUMER_PURE_SPIN) {
        publish_head(&hdr->head, bus->tx.head); /* A: pairs with B */
        return;
    }
    /* F: pairs with the consumer's E */
    if (publish_head_check_sleeper(&hdr->head, bus->tx.head, &hdr->consumer_sleeping) ==
        TACHYON_CONSUMER_SLEEPING)
        wait_wake_consumer(bus);
}

/* Fill a slot header; head's later release (A/F1) is what publishes it. */
static inline void write_slot_header(tachyon_msg_header_t *h, uint32_t size, uint32_t type_id,
                                     uint32_t reserved)
{
    write_slot_word(&h->type_id, type_id);
    write_slot_word(&h->reserved_size, reserved);
    h->correlation_id = 0;
    write_slot_word(&h->size, size);
}

/*
 * Make room for a slot of `need` bytes at tx.head. A slot never wraps: when
 * it would cross the end, mark the tail end of the ring as skipped (the
 * marker counts in head) and use offset 0. Returns 0 when the ring is full;
 * a marker written before finding that out stays, to be published.
 */
static inline int tx_reserve(struct tachyon_bus *bus, uint64_t need)
{
    uint64_t to_end = bus->capacity - (bus->tx.head & bus->mask);
    if (unlikely(to_end < need)) {
        if (!tx_has_room(bus, to_end))
            return 0;
        write_slot_header(header_at(bus, bus->tx.head), TACHYON_SKIP_MARKER, 0, (uint32_t)to_end);
        bus->tx.head += to_end;
    }
    return tx_has_room(bus, need);
}

static void *tx_full(struct tachyon_bus *bus)
{
    /* Never wait holding unpublished progress (a skip marker): the consumer
     * needs to see it to free the room we are waiting for. Everything else
     * was published by its commit, so a caller polling a full ring costs the
     * consumer nothing. */
    if (!bus_is_fatal(bus) && bus->tx.published != bus->tx.head)
        ring_publish_head(bus);
    return fail_null(bus, bus_is_fatal(bus) ? TACHYON_ERR_FATAL : TACHYON_ERR_FULL);
}

void *ring_acquire_tx(struct tachyon_bus *bus, size_t max_payload)
{
    if (unlikely(bus->tx.pending_size != 0))
        return fail_null(bus, TACHYON_ERR_STATE);
    if (unlikely(max_payload > bus->capacity - TACHYON_MSG_HEADER))
        return fail_null(bus, TACHYON_ERR_INVALID_SZ);

    uint64_t need = tachyon_slot_size(max_payload);
    if (unlikely(!tx_reserve(bus, need)))
        return tx_full(bus);
    bus->tx.pending_pos = bus->tx.head;
    bus->tx.pending_size = (uint32_t)need;
    return (uint8_t *)header_at(bus, bus->tx.head) + TACHYON_MSG_HEADER;
}

tachyon_error_t tachyon_commit_tx(tachyon_bus_t *bus, size_t actual_payload_size, uint32_t type_id)
{
    if (unlikely(!bus))
        return TACHYON_ERR_NULL_PTR;
    if (unlikely(bus->tx.pending_size == 0)) {
        bus_set_error(bus, TACHYON_ERR_STATE);
        return TACHYON_ERR_STATE;
    }
    if (unlikely(actual_payload_size > bus->tx.pending_size - TACHYON_MSG_HEADER)) {
        bus_set_error(bus, TACHYON_ERR_INVALID_SZ);
        return TACHYON_ERR_INVALID_SZ; /* the slot stays acquired: commit again or roll back */
    }
    /* Give back what the payload did not use: the slot shrinks to fit. */
    uint32_t reserved = (uint32_t)tachyon_slot_size(actual_payload_size);
    write_slot_header(header_at(bus, bus->tx.pending_pos), (uint32_t)actual_payload_size, type_id, reserved);
    bus->tx.head = bus->tx.pending_pos + reserved;
    bus->tx.pending_size = 0;
    ring_publish_head(bus);
    return TACHYON_SUCCESS;
}

tachyon_error_t tachyon_rollback_tx(tachyon_bus_t *bus)
{
    if (unlikely(!bus))
        return TACHYON_ERR_NULL_PTR;
    if (bus->tx.pending_size == 0) {
        bus_set_error(bus, TACHYON_ERR_STATE);
        return TACHYON_ERR_STATE;
    }
    bus->tx.pending_size = 0;
    return TACHYON_SUCCESS;
}

size_t tachyon_send_batch(tachyon_bus_t *bus, const void *records, size_t record_size, size_t count,
                          uint32_t type_id)
{
    if (unlikely(!bus || (!records && count > 0))) {
        if (bus)
            bus_set_error(bus, TACHYON_ERR_NULL_PTR);
        return 0;
    }
    if (unlikely(bus->tx.pending_size != 0 || bus_is_fatal(bus))) {
        bus_set_error(bus, bus_is_fatal(bus) ? TACHYON_ERR_FATAL : TACHYON_ERR_STATE);
        return 0;
    }
    if (unlikely(record_size > bus->capacity - TACHYON_MSG_HEADER)) {
        bus_set_error(bus, TACHYON_ERR_INVALID_SZ);
        return 0;
    }
    const uint8_t *src = records;
    const uint64_t need = tachyon_slot_size(record_size);
    size_t sent = 0;
    for (; sent < count && tx_reserve(bus, need); sent++) {
        tachyon_msg_header_t *h = header_at(bus, bus->tx.head);
        memcpy((uint8_t *)h + TACHYON_MSG_HEADER, src + sent * record_size, record_size);
        write_slot_header(h, (uint32_t)record_size, type_id, (uint32_t)need);
        bus->tx.head += need;
    }
    if (sent < count)
        bus_set_error(bus, bus_is_fatal(bus) ? TACHYON_ERR_FATAL : TACHYON_ERR_FULL);
    if (!bus_is_fatal(bus))
        ring_publish_head(bus); /* once for the whole batch (and any skip marker) */
    return sent;
}

/* ---- Consumer ------------------------------------------------------------ */

static inline int rx_coalescing(const struct tachyon_bus *bus)
{
    return local_flag_load(&bus->coalesce_ns) > 0;
}

/* May the consumer read head now? Always, unless it coalesces and its
 * interval runs (wait.c). Every read of head on the receive side asks. */
static inline int rx_may_look(const struct tachyon_bus *bus)
{
    return likely(!rx_coalescing(bus)) || wait_coalesce_may_look(bus);
}

/* A new head was read (and checked): cache it; a coalescing consumer also
 * decides when it may look again (wait.c). */
static inline void rx_note_head(struct tachyon_bus *bus, uint64_t head)
{
    uint64_t old = bus->rx.cached_head;
    bus->rx.cached_head = head;
    if (unlikely(rx_coalescing(bus)))
        wait_coalesce_note_look(bus, old, head, wait_now_ns());
}

/* Refresh the cached head. 1: something new, 0: empty (or a coalescing
 * consumer may not look yet), -1: corrupt counters. */
static int rx_refresh_head(struct tachyon_bus *bus)
{
    if (!rx_may_look(bus))
        return 0;
    uint64_t head = observe_head(&bus->hdr->head); /* B: pairs with the producer's A/F1 */
    if (unlikely(!counters_consistent(bus, head, bus->rx.tail))) {
        bus_set_fatal(bus);
        return -1;
    }
    rx_note_head(bus, head);
    return head != bus->rx.tail;
}

int ring_has_unread(struct tachyon_bus *bus)
{
    if (bus->rx.cached_head != bus->rx.tail)
        return 1;
    if (!rx_may_look(bus))
        return 0;
    return observe_head(&bus->hdr->head) != bus->rx.tail;
}

/* Consume a skip marker found at the committed tail: it frees room for the
 * producer even when no message follows yet. */
static void rx_consume_skip_at_tail(struct tachyon_bus *bus, uint64_t to_end)
{
    bus->rx.tail += to_end;
    publish_tail(&bus->hdr->tail, bus->rx.tail); /* C: pairs with the producer's D */
}

/*
 * Read the message at *pos (at or after rx.tail, before the cached head or a
 * refreshed one). Returns its payload and moves *pos past it; NULL when empty
 * or when the bus became fatal. At most one skip marker is crossed: a second
 * in a row cannot come from an honest producer and is treated as corruption,
 * so the loop is bounded.
 */
static inline const uint8_t *rx_read_at(struct tachyon_bus *bus, uint64_t *pos, uint32_t *type_id,
                                 uint32_t *size)
{
    for (int hop = 0; hop < 2; hop++) {
        if (bus->rx.cached_head == *pos) {
            /* Past the tail (inside a batch) the caller decides whether to
             * look at head again; at the tail we look now. */
            if (*pos != bus->rx.tail || rx_refresh_head(bus) <= 0)
                return NULL;
        }
        uint64_t avail = bus->rx.cached_head - *pos;
        uint64_t off = *pos & bus->mask;
        uint64_t to_end = bus->capacity - off;
        tachyon_msg_header_t *h = (tachyon_msg_header_t *)(bus->ring + off);
        uint32_t sz = read_slot_word(&h->size);
        if (sz == TACHYON_SKIP_MARKER) {
            if (unlikely(off == 0 || to_end > avail))
                break;
            if (*pos == bus->rx.tail)
                rx_consume_skip_at_tail(bus, to_end);
            *pos += to_end;
            continue;
        }
        uint32_t reserved = read_slot_word(&h->reserved_size);
        if (unlikely(!slot_valid(sz, reserved, to_end, avail)))
            break;
        *type_id = read_slot_word(&h->type_id);
        *size = sz;
        *pos += reserved;
        return (const uint8_t *)h + TACHYON_MSG_HEADER;
    }
    bus_set_fatal(bus);
    return NULL;
}

const void *ring_try_rx(struct tachyon_bus *bus, uint32_t *type_id, size_t *size)
{
    uint64_t pos = bus->rx.tail;
    uint32_t t, sz;
    const uint8_t *p = rx_read_at(bus, &pos, &t, &sz);
    if (!p)
        return NULL;
    bus->rx.pending_end = pos;
    bus->rx.pending_count = 1;
    if (type_id)
        *type_id = t;
    if (size)
        *size = sz;
    return p;
}

/*
 * Collect up to max messages from rx.tail on. When the cached head runs out
 * the shared head is read once more, so a batch takes everything published
 * by the time it was called.
 */
size_t ring_try_rx_batch(struct tachyon_bus *bus, tachyon_msg_view_t *out, size_t max)
{
    uint64_t pos = bus->rx.tail;
    size_t n = 0;
    while (n < max) {
        if (pos == bus->rx.cached_head && pos != bus->rx.tail) {
            /* More may have come since the first refresh: look once more
             * (a coalescing consumer only when its interval allows). */
            if (!rx_may_look(bus))
                break;
            uint64_t head = observe_head(&bus->hdr->head); /* B: pairs with A/F1 */
            if (head == bus->rx.cached_head)
                break;
            if (unlikely(!counters_consistent(bus, head, bus->rx.tail))) {
                bus_set_fatal(bus);
                return 0;
            }
            rx_note_head(bus, head);
        }
        uint32_t t, sz;
        const uint8_t *p = rx_read_at(bus, &pos, &t, &sz);
        if (!p)
            break;
        out[n].ptr = p;
        out[n].actual_size = sz;
        out[n].reserved_ = (size_t)pos; /* the tail after this message */
        out[n].type_id = t;
        out[n].padding_ = 0;
        n++;
    }
    if (bus_is_fatal(bus))
        return 0;
    if (n > 0) {
        bus->rx.pending_end = pos;
        bus->rx.pending_count = n;
    }
    return n;
}

void ring_publish_tail(struct tachyon_bus *bus)
{
    publish_tail(&bus->hdr->tail, bus->rx.tail); /* C: pairs with the producer's D */
}

tachyon_error_t tachyon_commit_rx(tachyon_bus_t *bus)
{
    if (unlikely(!bus))
        return TACHYON_ERR_NULL_PTR;
    if (unlikely(bus->rx.pending_count == 0)) {
        bus_set_error(bus, TACHYON_ERR_STATE);
        return TACHYON_ERR_STATE;
    }
    bus->rx.tail = bus->rx.pending_end;
    bus->rx.pending_count = 0;
    ring_publish_tail(bus);
    return TACHYON_SUCCESS;
}

tachyon_error_t tachyon_commit_rx_batch(tachyon_bus_t *bus, const tachyon_msg_view_t *views,
                                        size_t count)
{
    if (unlikely(!bus))
        return TACHYON_ERR_NULL_PTR;
    if (count == 0)
        return TACHYON_SUCCESS;
    if (unlikely(!views)) {
        bus_set_error(bus, TACHYON_ERR_NULL_PTR);
        return TACHYON_ERR_NULL_PTR;
    }
    /* The views are the caller's memory: the end they name must fall inside
     * what we handed out. */
    uint64_t end = (uint64_t)views[count - 1].reserved_;
    uint64_t span = bus->rx.pending_end - bus->rx.tail;
    if (unlikely(bus->rx.pending_count == 0 || count > bus->rx.pending_count ||
                 end - bus->rx.tail == 0 || end - bus->rx.tail > span)) {
        bus_set_error(bus, TACHYON_ERR_STATE);
        return TACHYON_ERR_STATE;
    }
    bus->rx.tail = end;
    bus->rx.pending_count = 0;
    ring_publish_tail(bus);
    return TACHYON_SUCCESS;
}

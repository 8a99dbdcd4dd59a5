/*
 * ring.c - the single-producer/single-consumer byte ring (docs/protocol.md).
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
 * producer for a flush, whatever the caller's flush cadence.
 *
 * The wrap rule a plain ABI v4 consumer relies on: a published head never ends
 * on a skip marker. Such a consumer, seeing the marker covered, reads the
 * header at offset 0 at once, so the marker is published together with the
 * message after it (tx.committed, not tx.head, is what gets published).
 *
 * Everything read from the shared segment is untrusted: a counter or header
 * that breaks an invariant puts the bus in the fatal state and the call
 * returns NULL/0. No value read from shared memory is used as an index before
 * it is checked against the ring's bounds.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdlib.h>
#include <string.h>

#include "barrier.h"
#include "futex.h"
#include "internal.h"
#include "ring.h"
#include "state.h"

static inline tachyon_msg_header_t *header_at(struct tachyon_bus *bus, uint64_t pos)
{
    return (tachyon_msg_header_t *)(bus->ring + (pos & bus->mask));
}

static inline void *fail_null(struct tachyon_bus *bus, tachyon_error_t err)
{
    status_set_error(bus, err);
    return NULL;
}

static inline tachyon_error_t fail(struct tachyon_bus *bus, tachyon_error_t err)
{
    status_set_error(bus, err);
    return err;
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
    free(bus->rx.batch);
    memset(&bus->tx, 0, sizeof(bus->tx));
    memset(&bus->rx, 0, sizeof(bus->rx));
    if (!counters_consistent(bus, head, tail)) {
        status_set_fatal(bus);
        return;
    }
    bus->tx.head = head;
    bus->tx.committed = head;
    bus->tx.published = head;
    bus->tx.cached_tail = tail;
    bus->rx.tail = tail;
    bus->rx.cached_head = head;
}

void ring_detach(struct tachyon_bus *bus)
{
    free(bus->rx.batch);
    bus->rx.batch = NULL;
    bus->rx.batch_room = 0;
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
        status_set_fatal(bus);
        return 0;
    }
    bus->tx.cached_tail = tail;
    return bus->tx.head + bytes - tail <= bus->capacity;
}

/* Store `value` as head; wake the consumer if it sleeps (pair E/F). */
static void publish_head_value(struct tachyon_bus *bus, uint64_t value)
{
    tachyon_segment_header_t *hdr = bus->hdr;
    bus->tx.published = value;
    if (peek_sleeper_word(&hdr->consumer_sleeping) == TACHYON_CONSUMER_PURE_SPIN) {
        publish_head(&hdr->head, value); /* A: pairs with B */
        return;
    }
    /* F: pairs with the consumer's E */
    if (publish_head_check_sleeper(&hdr->head, value, &hdr->consumer_sleeping) == TACHYON_CONSUMER_SLEEPING)
        futex_wake_consumer(hdr);
}

/* Publish every committed message (never a trailing skip marker alone). */
void ring_publish_head(struct tachyon_bus *bus)
{
    publish_head_value(bus, bus->tx.committed);
}

int ring_has_unpublished(const struct tachyon_bus *bus)
{
    return bus->tx.published != bus->tx.committed;
}

/* Does the peer's consumer read a lone skip marker safely (re-reading head
 * before the header after it)? Ours does; a plain ABI v4 consumer does not. */
static inline int peer_reads_lone_markers(const struct tachyon_bus *bus)
{
    return (bus->peer_features & TACHYON_FEATURE_LONE_MARKER) != 0;
}

/* Fill a slot header; head's later release (A/F1) is what publishes it. */
static inline void write_slot_header(tachyon_msg_header_t *h, uint32_t size, uint32_t type_id,
                                     uint32_t reserved, uint64_t correlation_id)
{
    write_slot_word(&h->type_id, type_id);
    write_slot_word(&h->reserved_size, reserved);
    write_slot_word64(&h->correlation_id, correlation_id);
    write_slot_word(&h->size, size);
}

static inline void write_skip_marker(struct tachyon_bus *bus, uint64_t to_end)
{
    write_slot_header(header_at(bus, bus->tx.head), TACHYON_SKIP_MARKER, 0, (uint32_t)to_end, 0);
    bus->tx.head += to_end;
}

enum reserve_result { RESERVED = 1, RING_FULL = 0, NOT_HERE = -1 };

/*
 * The wrap, when a slot of `need` bytes would cross the end of the ring:
 * mark the rest of the ring skipped and continue at offset 0.
 *
 * When the slot fits before the current position (need <= off), the marker is
 * written only once there is room for marker and slot together, so it is
 * always published with the message after it. When it does not, the consumer
 * has to consume the marker alone before the slot can fit; only a consumer
 * that reads lone markers safely may be given that (see
 * peer_reads_lone_markers): with a plain v4 consumer this slot cannot be
 * placed at this position (NOT_HERE).
 */
static enum reserve_result tx_reserve_wrapping(struct tachyon_bus *bus, uint64_t need, uint64_t to_end)
{
    uint64_t off = bus->capacity - to_end;
    if (need <= off) {
        if (!tx_has_room(bus, to_end + need))
            return RING_FULL;
        write_skip_marker(bus, to_end);
        return RESERVED;
    }
    if (!peer_reads_lone_markers(bus))
        return NOT_HERE;
    if (!tx_has_room(bus, to_end))
        return RING_FULL;
    write_skip_marker(bus, to_end);
    publish_head_value(bus, bus->tx.head); /* the lone marker: the consumer frees its room */
    return tx_has_room(bus, need) ? RESERVED : RING_FULL;
}

/* Make room for a slot of `need` bytes at tx.head (a slot never wraps). */
static inline enum reserve_result tx_reserve(struct tachyon_bus *bus, uint64_t need)
{
    uint64_t to_end = bus->capacity - (bus->tx.head & bus->mask);
    if (likely(to_end >= need))
        return tx_has_room(bus, need) ? RESERVED : RING_FULL;
    return tx_reserve_wrapping(bus, need, to_end);
}

/* Record why tx_reserve failed (this thread's error on the bus). */
static void reserve_failed(struct tachyon_bus *bus, enum reserve_result r, uint64_t need)
{
    if (status_is_fatal(bus))
        status_set_error(bus, TACHYON_ERR_FATAL);
    else if (r == NOT_HERE)
        status_error_detail(bus, TACHYON_ERR_INVALID_SZ,
                            "a %llu-byte slot does not fit before the end of this %llu-byte ring, and "
                            "wrapping it would hand the peer (a plain ABI v4 consumer) a lone wrap "
                            "marker; slots up to half the ring always fit",
                            (unsigned long long)need, (unsigned long long)bus->capacity);
    else
        status_set_error(bus, TACHYON_ERR_FULL);
}

void *ring_acquire_tx(struct tachyon_bus *bus, size_t max_payload)
{
    if (unlikely(bus->tx.pending_size != 0))
        return fail_null(bus, TACHYON_ERR_STATE);
    if (unlikely(max_payload > bus->capacity - TACHYON_MSG_HEADER))
        return fail_null(bus, TACHYON_ERR_INVALID_SZ);

    uint64_t need = tachyon_slot_size(max_payload);
    enum reserve_result r = tx_reserve(bus, need);
    if (unlikely(r != RESERVED)) {
        reserve_failed(bus, r, need);
        return NULL;
    }
    bus->tx.pending_pos = bus->tx.head;
    bus->tx.pending_size = (uint32_t)need;
    bus->tx.pending_max = (uint32_t)max_payload;
    return (uint8_t *)header_at(bus, bus->tx.head) + TACHYON_MSG_HEADER;
}

tachyon_error_t tachyon_commit_tx(tachyon_bus_t *bus, size_t actual_payload_size, uint32_t type_id)
{
    if (unlikely(!bus))
        return TACHYON_ERR_NULL_PTR;
    return ring_commit_tx(bus, actual_payload_size, type_id, 0);
}

tachyon_error_t ring_commit_tx(struct tachyon_bus *bus, size_t actual_payload_size, uint32_t type_id,
                               uint64_t correlation_id)
{
    if (unlikely(bus->tx.pending_size == 0 || status_in_forked_child(bus)))
        return fail(bus, status_in_forked_child(bus) ? TACHYON_ERR_FORKED : TACHYON_ERR_STATE);
    if (unlikely(actual_payload_size > bus->tx.pending_max))
        return fail(bus, TACHYON_ERR_INVALID_SZ); /* the slot stays acquired: commit again or roll back */
    /* Give back what the payload did not use: the slot shrinks to fit. */
    uint32_t reserved = (uint32_t)tachyon_slot_size(actual_payload_size);
    write_slot_header(header_at(bus, bus->tx.pending_pos), (uint32_t)actual_payload_size, type_id, reserved,
                      correlation_id);
    bus->tx.head = bus->tx.pending_pos + reserved;
    bus->tx.committed = bus->tx.head;
    bus->tx.pending_size = 0;
    ring_publish_head(bus);
    return TACHYON_SUCCESS;
}

tachyon_error_t tachyon_rollback_tx(tachyon_bus_t *bus)
{
    if (unlikely(!bus))
        return TACHYON_ERR_NULL_PTR;
    if (bus->tx.pending_size == 0 || status_in_forked_child(bus))
        return fail(bus, status_in_forked_child(bus) ? TACHYON_ERR_FORKED : TACHYON_ERR_STATE);
    /* A skip marker written for this slot stays in tx.head, unpublished: the
     * next commit publishes it together with its message. */
    bus->tx.pending_size = 0;
    return TACHYON_SUCCESS;
}

size_t ring_send_batch(struct tachyon_bus *bus, const void *records, size_t record_size, size_t count,
                       uint32_t type_id)
{
    if (unlikely(bus->tx.pending_size != 0)) {
        status_set_error(bus, TACHYON_ERR_STATE);
        return 0;
    }
    if (unlikely(record_size > bus->capacity - TACHYON_MSG_HEADER)) {
        status_set_error(bus, TACHYON_ERR_INVALID_SZ);
        return 0;
    }
    const uint8_t *src = records;
    const uint64_t need = tachyon_slot_size(record_size);
    enum reserve_result r = RESERVED;
    size_t sent = 0;
    while (sent < count && (r = tx_reserve(bus, need)) == RESERVED) {
        tachyon_msg_header_t *h = header_at(bus, bus->tx.head);
        memcpy((uint8_t *)h + TACHYON_MSG_HEADER, src + sent * record_size, record_size);
        write_slot_header(h, (uint32_t)record_size, type_id, (uint32_t)need, 0);
        bus->tx.head += need;
        bus->tx.committed = bus->tx.head;
        sent++;
    }
    if (sent < count)
        reserve_failed(bus, r, need);
    if (!status_is_fatal(bus) && ring_has_unpublished(bus))
        ring_publish_head(bus); /* once for the whole batch */
    return sent;
}

/* Bytes the consumer has not released yet, as last seen (for messages about
 * a consumer that left). */
uint64_t ring_unconsumed_bytes(struct tachyon_bus *bus)
{
    uint64_t tail = observe_tail(&bus->hdr->tail); /* D: pairs with the consumer's C */
    uint64_t unread = bus->tx.committed - tail;
    return unread <= bus->capacity ? unread : 0;
}

/* ---- Consumer ------------------------------------------------------------ */

/* Refresh the cached head. 1: something new, 0: empty, -1: corrupt counters. */
static int rx_refresh_head(struct tachyon_bus *bus)
{
    uint64_t head = observe_head(&bus->hdr->head); /* B: pairs with the producer's A/F1 */
    if (unlikely(!counters_consistent(bus, head, bus->rx.tail))) {
        status_set_fatal(bus);
        return -1;
    }
    bus->rx.cached_head = head;
    return head != bus->rx.tail;
}

int ring_has_unread(struct tachyon_bus *bus)
{
    if (bus->rx.cached_head != bus->rx.tail)
        return 1;
    return observe_head(&bus->hdr->head) != bus->rx.tail; /* B: pairs with A/F1 */
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
 * so the loop is bounded. After a marker, head is checked again before the
 * header at offset 0 is read (a marker may be published alone).
 */
static inline const uint8_t *rx_read_at(struct tachyon_bus *bus, uint64_t *pos, uint32_t *type_id,
                                        uint32_t *size, uint32_t *slot)
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
        *slot = reserved;
        *pos += reserved;
        return (const uint8_t *)h + TACHYON_MSG_HEADER;
    }
    status_set_fatal(bus);
    return NULL;
}

const void *ring_try_rx(struct tachyon_bus *bus, uint32_t *type_id, size_t *size)
{
    uint64_t pos = bus->rx.tail;
    uint32_t t, sz, slot;
    const uint8_t *p = rx_read_at(bus, &pos, &t, &sz, &slot);
    if (!p)
        return NULL;
    bus->rx.pending_payload = p;
    bus->rx.pending_end = pos;
    bus->rx.pending_count = 1;
    bus->rx.pending_batch = 0;
    if (type_id)
        *type_id = t;
    if (size)
        *size = sz;
    return p;
}

/* Room to remember `n` batch entries; 0 when memory ran out. */
static int rx_batch_reserve(struct tachyon_bus *bus, size_t n)
{
    if (n <= bus->rx.batch_room)
        return 1;
    size_t room = bus->rx.batch_room ? bus->rx.batch_room * 2 : 64;
    while (room < n)
        room *= 2;
    struct rx_batch_entry *b = realloc(bus->rx.batch, room * sizeof(*b));
    if (!b)
        return 0;
    bus->rx.batch = b;
    bus->rx.batch_room = room;
    return 1;
}

/*
 * Collect up to max messages from rx.tail on. When the cached head runs out
 * the shared head is read once more, so a batch takes everything published
 * by the time it was called. Each view's reserved_ is its slot size.
 */
size_t ring_try_rx_batch(struct tachyon_bus *bus, tachyon_msg_view_t *out, size_t max)
{
    uint64_t pos = bus->rx.tail;
    size_t n = 0;
    while (n < max) {
        if (pos == bus->rx.cached_head && pos != bus->rx.tail) {
            /* More may have come since the first refresh: look once more. */
            uint64_t head = observe_head(&bus->hdr->head); /* B: pairs with A/F1 */
            if (head == bus->rx.cached_head)
                break;
            if (unlikely(!counters_consistent(bus, head, bus->rx.tail))) {
                status_set_fatal(bus);
                return 0;
            }
            bus->rx.cached_head = head;
        }
        if (unlikely(!rx_batch_reserve(bus, n + 1)))
            break; /* out of memory: hand out what we have */
        uint32_t t, sz, slot;
        const uint8_t *p = rx_read_at(bus, &pos, &t, &sz, &slot);
        if (!p)
            break;
        out[n].ptr = p;
        out[n].actual_size = sz;
        out[n].reserved_ = slot;
        out[n].type_id = t;
        out[n].padding_ = 0;
        bus->rx.batch[n] = (struct rx_batch_entry){.end = pos, .payload = p, .slot_size = slot};
        n++;
    }
    if (status_is_fatal(bus))
        return 0;
    if (n > 0) {
        bus->rx.pending_end = pos;
        bus->rx.pending_count = n;
        bus->rx.pending_batch = 1;
    }
    return n;
}

uint64_t ring_rx_correlation_id(const struct tachyon_bus *bus)
{
    if (bus->rx.pending_count == 0 || bus->rx.pending_batch)
        return 0;
    tachyon_msg_header_t *h = (tachyon_msg_header_t *)(bus->rx.pending_payload - TACHYON_MSG_HEADER);
    return read_slot_word64(&h->correlation_id);
}

void ring_publish_tail(struct tachyon_bus *bus)
{
    publish_tail(&bus->hdr->tail, bus->rx.tail); /* C: pairs with the producer's D */
}

tachyon_error_t tachyon_commit_rx(tachyon_bus_t *bus)
{
    if (unlikely(!bus))
        return TACHYON_ERR_NULL_PTR;
    if (unlikely(bus->rx.pending_count == 0 || status_in_forked_child(bus)))
        return fail(bus, status_in_forked_child(bus) ? TACHYON_ERR_FORKED : TACHYON_ERR_STATE);
    bus->rx.tail = bus->rx.pending_end;
    bus->rx.pending_count = 0;
    bus->rx.pending_batch = 0;
    ring_publish_tail(bus);
    return TACHYON_SUCCESS;
}

/* Are views[0..count) exactly the first `count` messages of the last batch? */
static int views_match_batch(const struct tachyon_bus *bus, const tachyon_msg_view_t *views, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        const struct rx_batch_entry *e = &bus->rx.batch[i];
        if (views[i].ptr != e->payload || views[i].reserved_ != e->slot_size)
            return 0;
    }
    return 1;
}

tachyon_error_t tachyon_commit_rx_batch(tachyon_bus_t *bus, const tachyon_msg_view_t *views, size_t count)
{
    if (unlikely(!bus))
        return TACHYON_ERR_NULL_PTR;
    if (unlikely(status_in_forked_child(bus)))
        return fail(bus, TACHYON_ERR_FORKED);
    if (count == 0)
        return TACHYON_SUCCESS;
    if (unlikely(!views))
        return fail(bus, TACHYON_ERR_NULL_PTR);
    /* A single receive (acquire_rx) is not a batch: commit_rx releases it. */
    if (unlikely(!bus->rx.pending_batch || count > bus->rx.pending_count))
        return fail(bus, TACHYON_ERR_STATE);
    /* The views are the caller's memory: they must be the ones handed out. */
    if (unlikely(!views_match_batch(bus, views, count)))
        return status_error_detail(bus, TACHYON_ERR_STATE,
                                   "the views given back are not the first %zu messages of the last batch "
                                   "(a view was changed or made up); nothing was released",
                                   count);
    size_t left = bus->rx.pending_count - count;
    /* All of it: up to pending_end, which includes a skip marker after the
     * last message if the batch crossed one. */
    bus->rx.tail = left ? bus->rx.batch[count - 1].end : bus->rx.pending_end;
    if (left)
        memmove(bus->rx.batch, bus->rx.batch + count, left * sizeof(bus->rx.batch[0]));
    bus->rx.pending_count = left;
    bus->rx.pending_batch = left != 0;
    ring_publish_tail(bus);
    return TACHYON_SUCCESS;
}

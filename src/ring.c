/*
 * ring.c - the single-producer/single-consumer byte ring (docs/protocol.md).
 *
 * head and tail are free-running byte counters, compared only by unsigned
 * difference and masked only to address the ring. Each side keeps a private
 * copy of the other's counter and re-reads the shared one only when the copy
 * says "full" (producer) or "empty" (consumer).
 *
 * Publication. A message must reach the consumer as soon as it is committed,
 * and a dense stream must not move a control cache line per message. Between
 * two processes of this project the producer stamps every slot it completes
 * (the stamp, position ^ salt, is the last store into the slot's header, pair
 * H in barrier.h): the consumer learns that the next slot is ready from the
 * header it has to read anyway, and head, stored only every LAZY_HEAD_COMMITS
 * commits, moves one cache line per many messages. With a plain ABI v4
 * consumer (the published library's), head is stored after every commit.
 * The consumer takes a slot as ready when it is stamped or when head covers
 * it, so either producer works with it.
 *
 * The consumer gives room back (stores tail) in chunks of a sixteenth of the
 * ring, and always before it reports the ring empty or waits: the producer
 * reads tail only when it runs short of room, and a consumer that waits
 * never holds back room the producer may be waiting for.
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
#include <unistd.h>

#include "barrier.h"
#include "futex.h"
#include "internal.h"
#include "ring.h"
#include "state.h"

/* Stamped slots carry the messages; head follows every this many commits,
 * and at least every quarter ring (for observers; a sleeping consumer's
 * recheck does not need it: stamps do that). */
#define LAZY_HEAD_COMMITS 32u

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

/*
 * Head as the consumer reads it: 64-aligned, never more than a ring ahead of
 * our tail. It may be behind our tail when the producer stamps slots and
 * stores head lazily (only a segment with stamps has such a producer): that
 * is no news, not corruption.
 */
static int head_sane(const struct tachyon_bus *bus, uint64_t head, uint64_t tail)
{
    if ((head & (TACHYON_MSG_ALIGN - 1)) != 0)
        return 0;
    if (head - tail <= bus->capacity)
        return 1;
    return bus->stamp_salt != 0 && (int64_t)(tail - head) > 0;
}

/* The first look at a segment: both counters aligned, head no more than a
 * ring ahead of tail. */
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
    bus->stamp_salt = read_counter_relaxed(&bus->hdr->stamp_salt);
    bus->tx.publish_batch = 1;
    ring_choose_publication(bus);
    if (!counters_consistent(bus, head, tail)) {
        status_set_fatal(bus);
        return;
    }
    bus->tx.head = head;
    bus->tx.committed = head;
    bus->tx.published = head;
    bus->tx.cached_tail = tail;
    bus->rx.tail = tail;
    bus->rx.published_tail = tail;
    bus->rx.cached_head = head;
}

void ring_detach(struct tachyon_bus *bus)
{
    free(bus->rx.batch);
    bus->rx.batch = NULL;
    bus->rx.batch_room = 0;
}

/* ---- Counters for tools ----------------------------------------------------------
 * Each side counts in its private state (a few plain additions per message)
 * and stores the counts into its block of the segment now and then: the
 * producer every STATS_EVERY commits and when the ring is full, the consumer
 * when it gives room back, both when they leave. */

#define STATS_EVERY 1024u /* a power of two: see tx_count */

static void store_side_stats(tachyon_side_stats_t *b, uint32_t pid, uint64_t messages, uint64_t bytes,
                             uint64_t stalls, uint64_t wakes, uint64_t fill_max, int64_t active_ns)
{
    uint32_t seq = stats_write_begin(&b->seq); /* I: pairs with a tool's J */
    atomic_store_explicit(&b->pid, pid, memory_order_relaxed);
    stats_store(&b->messages, messages);
    stats_store(&b->bytes, bytes);
    stats_store(&b->stalls, stalls);
    stats_store(&b->wakes, wakes);
    stats_store(&b->fill_max, fill_max);
    stats_store(&b->updated_ns, (uint64_t)wait_now_coarse_ns());
    stats_store(&b->active_ns, (uint64_t)active_ns);
    stats_write_end(&b->seq, seq);
}

void ring_store_tx_stats(struct tachyon_bus *bus)
{
    struct tachyon_tx_state *tx = &bus->tx;
    if (tx->messages == 0)
        return; /* not a producer */
    tx->active_ns = wait_now_coarse_ns();
    store_side_stats(&bus->hdr->producer_stats, bus->own_pid, tx->messages, tx->bytes, tx->full, tx->wakes,
                     tx->fill_max, tx->active_ns);
}

void ring_store_rx_stats(struct tachyon_bus *bus)
{
    struct tachyon_rx_state *rx = &bus->rx;
    if (rx->messages == rx->stored_messages && rx->sleeps == 0)
        return; /* nothing new (or not a consumer) */
    if (rx->messages != rx->stored_messages)
        rx->active_ns = wait_now_coarse_ns();
    rx->stored_messages = rx->messages;
    store_side_stats(&bus->hdr->consumer_stats, bus->own_pid, rx->messages, rx->bytes, rx->sleeps, 0, 0,
                     rx->active_ns);
}

/* A commit of `messages` messages, `bytes` payload bytes: count it.
 * (-DTACHYON_NO_STATS builds the library without the per-message counting,
 * for the benchmark that measures what counting costs.) */
static inline void tx_count(struct tachyon_bus *bus, uint64_t messages, uint64_t bytes)
{
#ifdef TACHYON_NO_STATS
    (void)bus, (void)messages, (void)bytes;
    return;
#endif
    struct tachyon_tx_state *tx = &bus->tx;
    uint64_t before = tx->messages;
    tx->messages = before + messages;
    tx->bytes += bytes;
    if (unlikely((before ^ tx->messages) >= STATS_EVERY)) /* crossed a multiple of STATS_EVERY */
        ring_store_tx_stats(bus);
}

static inline void rx_count(struct tachyon_bus *bus, uint64_t messages, uint64_t bytes)
{
#ifdef TACHYON_NO_STATS
    (void)bus, (void)messages, (void)bytes;
    return;
#endif
    bus->rx.messages += messages;
    bus->rx.bytes += bytes;
}

/* ---- Producer ------------------------------------------------------------ */

/*
 * Stamps are written when the segment has a salt (its listener is of this
 * project) and the caller did not ask for head batching; head is then lazy
 * when the peer said its consumer reads them (the extension exchange). Any
 * consumer of ours reads both stamps and head, so a producer that is not sure
 * of its peer storing head each commit is always correct.
 */
void ring_choose_publication(struct tachyon_bus *bus)
{
    bus->rx.producer_stamps = bus->stamp_salt != 0 && (bus->peer_features & TACHYON_FEATURE_SLOT_STAMPS);
    if (bus->tx.publish_batch > 1)
        bus->tx.publication = PUBLISH_HEAD_BATCH;
    else if (bus->stamp_salt != 0 && (bus->peer_features & TACHYON_FEATURE_SLOT_STAMPS))
        bus->tx.publication = PUBLISH_STAMPS;
    else
        bus->tx.publication = PUBLISH_HEAD_EACH;
}

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
    uint64_t fill = bus->tx.committed - tail; /* exact now: the most the ring held, seen when short of room */
    if (fill > bus->tx.fill_max)
        bus->tx.fill_max = fill;
    return bus->tx.head + bytes - tail <= bus->capacity;
}

/* The consumer announced that it waits (the word F2 read): on the futex (1)
 * or on its descriptor (3, notify.c). Wake it the way it waits. */
static void tx_wake_consumer(struct tachyon_bus *bus, uint32_t word)
{
    tachyon_segment_header_t *hdr = bus->hdr;
    if (word == TACHYON_CONSUMER_SLEEPING) {
        bus->tx.wakes++;
        futex_wake_consumer(hdr);
    } else if (word == TACHYON_CONSUMER_FD_WAIT && claim_fd_waiter(&hdr->consumer_sleeping)) {
        bus->tx.wakes++;
        eventfd_signal(bus->peer_evfd);
    }
}

static inline int consumer_waits(uint32_t word)
{
    return word == TACHYON_CONSUMER_SLEEPING || word == TACHYON_CONSUMER_FD_WAIT;
}

/* Store `value` as head and wake the consumer if it sleeps (pair E/F). */
static void publish_head_value(struct tachyon_bus *bus, uint64_t value)
{
    tachyon_segment_header_t *hdr = bus->hdr;
    bus->tx.published = value;
    bus->tx.unpublished = 0;
    if (peek_sleeper_word(&hdr->consumer_sleeping) == TACHYON_CONSUMER_PURE_SPIN) {
        publish_head(&hdr->head, value); /* A: pairs with B */
        return;
    }
    /* F: pairs with the consumer's E */
    uint32_t word = publish_head_check_sleeper(&hdr->head, value, &hdr->consumer_sleeping);
    if (consumer_waits(word))
        tx_wake_consumer(bus, word);
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

/* With stamps: head catches up, a plain release (the stamps did pair E/F). */
static inline void tx_store_lazy_head(struct tachyon_bus *bus)
{
    bus->tx.published = bus->tx.committed;
    bus->tx.unpublished = 0;
    publish_head(&bus->hdr->head, bus->tx.committed); /* A: pairs with B */
}

/* The consumer asks for fenced stamps (it sleeps after nearly every
 * message) or no longer does: switch, in the order pair M needs. */
static void tx_switch_fencing(struct tachyon_bus *bus, uint32_t want)
{
    if (want) {
        bus->tx.fencing = 1;                         /* fenced from the next stamp on, */
        ack_fencing(&bus->hdr->producer_fencing, 1); /* then say so */
    } else {
        ack_fencing(&bus->hdr->producer_fencing, 0); /* say so first, */
        bus->tx.fencing = 0;                         /* then stop fencing */
    }
}

/*
 * Stamp the slot at `pos` complete (pair H). When the stamp is what tells the
 * consumer (PUBLISH_STAMPS) and it may sleep, this is also the producer's half
 * of pair E/F: with a peer that issues a membarrier before it sleeps, a plain
 * look at the sleeper word after the store (the barrier comes from the
 * consumer); otherwise a seq_cst exchange, then the look.
 */
static inline void tx_stamp(struct tachyon_bus *bus, tachyon_msg_header_t *h, uint64_t pos)
{
    tachyon_segment_header_t *hdr = bus->hdr;
    uint64_t stamp = pos ^ bus->stamp_salt;
    uint32_t sleeper = peek_sleeper_word(&hdr->consumer_sleeping);
    if (bus->tx.publication != PUBLISH_STAMPS || sleeper == TACHYON_CONSUMER_PURE_SPIN) {
        publish_slot_stamp(&h->stamp, stamp); /* H: pairs with observe_slot_stamp */
        return;
    }
    if (bus->peer_features & TACHYON_FEATURE_MEMBARRIER) {
        uint32_t want = peek_fencing_request(&hdr->consumer_wants_fence);
        if (unlikely(want != bus->tx.fencing))
            tx_switch_fencing(bus, want);
    }
    if ((bus->peer_features & TACHYON_FEATURE_MEMBARRIER) && !bus->tx.fencing) {
        publish_slot_stamp(&h->stamp, stamp); /* H, and F1 without a fence: pairs with E's membarrier */
        uint32_t word = peek_sleeper_after_membarrier(&hdr->consumer_sleeping); /* F2 */
        if (consumer_waits(word))
            tx_wake_consumer(bus, word);
        return;
    }
    /* F: pairs with the consumer's E */
    uint32_t word = publish_slot_stamp_check_sleeper(&h->stamp, stamp, &hdr->consumer_sleeping);
    if (consumer_waits(word))
        tx_wake_consumer(bus, word);
}

/* Fill a slot header (relaxed stores), then stamp it when this segment has
 * stamps and the publication uses them. */
static inline void write_slot(struct tachyon_bus *bus, uint64_t pos, uint32_t size, uint32_t type_id,
                              uint32_t reserved, uint64_t correlation_id)
{
    tachyon_msg_header_t *h = header_at(bus, pos);
    write_slot_word(&h->type_id, type_id);
    write_slot_word(&h->reserved_size, reserved);
    write_slot_word64(&h->correlation_id, correlation_id);
    write_slot_word(&h->size, size);
    if (bus->stamp_salt != 0 && bus->tx.publication != PUBLISH_HEAD_BATCH)
        tx_stamp(bus, h, pos);
}

/* A commit (or a batch of them) is written up to tx.head: let the consumer
 * know as the publication mode says. */
static inline void tx_committed(struct tachyon_bus *bus, uint32_t commits)
{
    bus->tx.committed = bus->tx.head;
    switch (bus->tx.publication) {
    case PUBLISH_HEAD_EACH:
        ring_publish_head(bus);
        break;
    case PUBLISH_STAMPS:
        /* The stamps told the consumer; head only keeps up for observers. */
        bus->tx.unpublished += commits;
        if (bus->tx.unpublished >= LAZY_HEAD_COMMITS || bus->tx.committed - bus->tx.published >= bus->capacity / 4)
            tx_store_lazy_head(bus);
        break;
    case PUBLISH_HEAD_BATCH:
        bus->tx.unpublished += commits;
        if (bus->tx.unpublished >= bus->tx.publish_batch)
            ring_publish_head(bus);
        break;
    }
}

/* Does the peer's consumer read a lone skip marker safely (re-reading head
 * or the next stamp before the header after it)? Ours does; a plain ABI v4
 * consumer does not. */
static inline int peer_reads_lone_markers(const struct tachyon_bus *bus)
{
    return (bus->peer_features & TACHYON_FEATURE_LONE_MARKER) != 0;
}

static inline void write_skip_marker(struct tachyon_bus *bus, uint64_t to_end)
{
    write_slot(bus, bus->tx.head, TACHYON_SKIP_MARKER, 0, (uint32_t)to_end, 0);
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
    bus->tx.committed = bus->tx.head; /* published on purpose: it is part of what head may cover */
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

/* Record why tx_reserve failed (this thread's error on the bus). A producer
 * about to report "full" never holds back head: the consumer must see what
 * was committed to free the room (head batching), and observers see it. */
static void reserve_failed(struct tachyon_bus *bus, enum reserve_result r, uint64_t need)
{
    if (status_is_fatal(bus)) {
        status_set_error(bus, TACHYON_ERR_FATAL);
        return;
    }
    if (ring_has_unpublished(bus))
        ring_publish_head(bus);
    bus->tx.wait_need = need;
    if (r == RING_FULL && bus->tx.full++ % STATS_EVERY == 0)
        ring_store_tx_stats(bus);
    if (r == NOT_HERE)
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
    write_slot(bus, bus->tx.pending_pos, (uint32_t)actual_payload_size, type_id, reserved, correlation_id);
    bus->tx.head = bus->tx.pending_pos + reserved;
    bus->tx.pending_size = 0;
    tx_committed(bus, 1);
    tx_count(bus, 1, actual_payload_size);
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
        uint64_t pos = bus->tx.head;
        memcpy((uint8_t *)header_at(bus, pos) + TACHYON_MSG_HEADER, src + sent * record_size, record_size);
        write_slot(bus, pos, (uint32_t)record_size, type_id, (uint32_t)need, 0);
        bus->tx.head = pos + need;
        sent++;
    }
    if (sent > 0 && bus->tx.publication == PUBLISH_STAMPS) {
        tx_committed(bus, (uint32_t)(sent < UINT32_MAX ? sent : UINT32_MAX));
    } else if (sent > 0) {
        bus->tx.committed = bus->tx.head;
        ring_publish_head(bus); /* once for the whole batch */
    }
    if (sent > 0)
        tx_count(bus, sent, (uint64_t)sent * record_size);
    if (sent < count)
        reserve_failed(bus, r, need);
    return sent;
}

/* Store head now if commits are held back. With stamps the consumer already
 * knows (and was woken by them): head is stored for observers only. */
void ring_flush(struct tachyon_bus *bus)
{
    if (!ring_has_unpublished(bus))
        return;
    if (bus->tx.publication == PUBLISH_STAMPS)
        tx_store_lazy_head(bus);
    else
        ring_publish_head(bus);
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

/* The tail is stored in chunks of this many bytes (and before any wait). */
static inline uint64_t release_chunk(const struct tachyon_bus *bus)
{
    return bus->capacity / 16 > TACHYON_MSG_ALIGN ? bus->capacity / 16 : TACHYON_MSG_ALIGN;
}

void ring_publish_tail(struct tachyon_bus *bus)
{
    tachyon_segment_header_t *hdr = bus->hdr;
    if (bus->rx.published_tail == bus->rx.tail)
        return;
    bus->rx.published_tail = bus->rx.tail;
    if (bus->peer_features & TACHYON_FEATURE_EVENTFD) {
        /* L: pairs with a producer waiting for room on its descriptor (K). */
        if (publish_tail_check_waiter(&hdr->tail, bus->rx.tail, &hdr->producer_waiting) == 1 &&
            claim_room_waiter(&hdr->producer_waiting))
            eventfd_signal(bus->peer_evfd);
    } else {
        publish_tail(&hdr->tail, bus->rx.tail); /* C: pairs with the producer's D */
    }
    ring_store_rx_stats(bus);
}

int ring_tx_room_or_arm(struct tachyon_bus *bus, int arm)
{
    uint64_t need = bus->tx.wait_need ? bus->tx.wait_need : TACHYON_MSG_ALIGN;
    if (need > bus->capacity)
        need = bus->capacity;
    if (tx_has_room(bus, need))
        return 1;
    if (!arm)
        return 0;
    tachyon_segment_header_t *hdr = bus->hdr;
    announce_wait_for_room(&hdr->producer_waiting); /* K1: pairs with L2 */
    uint64_t tail = recheck_tail(&hdr->tail);        /* K2: pairs with L1 */
    if (!counters_consistent(bus, bus->tx.head, tail) || bus->tx.head + need - tail > bus->capacity)
        return 0;
    bus->tx.cached_tail = tail;
    (void)claim_room_waiter(&hdr->producer_waiting); /* we do not wait after all */
    return 1;
}

/* Move the tail past what was consumed; store it once a chunk has gathered. */
static inline void rx_release_to(struct tachyon_bus *bus, uint64_t tail)
{
    bus->rx.tail = tail;
    if (tail - bus->rx.published_tail >= release_chunk(bus))
        ring_publish_tail(bus);
}

/* Read head into the cache. 0 when it is sane (it may lag our tail), -1 when
 * it is corrupt (the bus is then fatal). */
static int rx_refresh_head(struct tachyon_bus *bus)
{
    uint64_t head = observe_head(&bus->hdr->head); /* B: pairs with the producer's A/F1 */
    if (unlikely(!head_sane(bus, head, bus->rx.tail))) {
        status_set_fatal(bus);
        return -1;
    }
    bus->rx.cached_head = head;
    return 0;
}

/* A slot head covers: does the producer stamp? (Seen on every slot read
 * through the slow path; a producer that stopped stamping is noticed.) */
static inline void rx_note_stamping(struct tachyon_bus *bus, tachyon_msg_header_t *h, uint64_t pos)
{
    if (bus->stamp_salt != 0)
        bus->rx.producer_stamps = observe_slot_stamp(&h->stamp) == (pos ^ bus->stamp_salt);
}

/* Is the slot at `pos` ready without reading head? */
static inline int rx_ready_known(struct tachyon_bus *bus, uint64_t pos)
{
    return rx_ready_without_head(bus, pos);
}

int ring_readable(struct tachyon_bus *bus)
{
    uint64_t pos = bus->rx.tail;
    if (rx_ready_known(bus, pos))
        return 1;
    if (rx_refresh_head(bus) == 0 && rx_head_covers(bus, pos))
        return 1;
    ring_publish_tail(bus); /* nothing to read: give the room back before anyone waits */
    return 0;
}

int ring_recheck_readable(struct tachyon_bus *bus)
{
    uint64_t pos = bus->rx.tail;
    uint64_t head = recheck_head(&bus->hdr->head); /* E2: pairs with F1 (head) */
    if (head - pos - 1 < bus->capacity)
        return 1;
    return bus->stamp_salt != 0 &&
           recheck_slot_stamp(&header_at(bus, pos)->stamp) == (pos ^ bus->stamp_salt); /* E2: F1 (stamp) */
}

/*
 * Read the message at *pos (at or after rx.tail). Returns its payload and
 * moves *pos past it; NULL when nothing is ready there or when the bus became
 * fatal. At the tail a slot that is not known ready makes us read head once;
 * past the tail (inside a batch) the caller decides. At most one skip marker
 * is crossed: a second in a row cannot come from an honest producer and is
 * treated as corruption, so the loop is bounded. After a marker, readiness is
 * checked again before the header at offset 0 is read (a marker may be
 * published alone).
 */
static inline const uint8_t *rx_read_at(struct tachyon_bus *bus, uint64_t *pos, uint32_t *type_id,
                                        uint32_t *size, uint32_t *slot)
{
    for (int hop = 0; hop < 2; hop++) {
        if (!rx_ready_known(bus, *pos)) {
            if (*pos != bus->rx.tail || rx_refresh_head(bus) != 0 || !rx_head_covers(bus, *pos)) {
                if (*pos == bus->rx.tail && !status_is_fatal(bus))
                    ring_publish_tail(bus); /* empty: give the room back */
                return NULL;
            }
        }
        uint64_t avail = rx_bytes_written(bus, *pos);
        uint64_t off = *pos & bus->mask;
        uint64_t to_end = bus->capacity - off;
        tachyon_msg_header_t *h = (tachyon_msg_header_t *)(bus->ring + off);
        rx_note_stamping(bus, h, *pos);
        uint32_t sz = read_slot_word(&h->size);
        if (sz == TACHYON_SKIP_MARKER) {
            if (unlikely(off == 0 || to_end > avail))
                break;
            if (*pos == bus->rx.tail)
                rx_release_to(bus, bus->rx.tail + to_end);
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
    bus->rx.pending_size = sz;
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
 * Collect up to max messages from rx.tail on. When what is known ready runs
 * out, head is read once more, so a batch takes everything published by the
 * time it was called. Each view's reserved_ is its slot size.
 */
size_t ring_try_rx_batch(struct tachyon_bus *bus, tachyon_msg_view_t *out, size_t max)
{
    uint64_t pos = bus->rx.tail;
    size_t n = 0;
    int looked = 0;
    while (n < max) {
        if (pos != bus->rx.tail && !rx_ready_known(bus, pos)) {
            /* More may have come since: look at head once per batch. */
            if (looked || rx_refresh_head(bus) != 0 || !rx_head_covers(bus, pos))
                break;
            looked = 1;
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
        bus->rx.batch[n] = (struct rx_batch_entry){.end = pos, .payload = p, .slot_size = slot, .size = sz};
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

tachyon_error_t tachyon_commit_rx(tachyon_bus_t *bus)
{
    if (unlikely(!bus))
        return TACHYON_ERR_NULL_PTR;
    if (unlikely(bus->rx.pending_count == 0 || status_in_forked_child(bus)))
        return fail(bus, status_in_forked_child(bus) ? TACHYON_ERR_FORKED : TACHYON_ERR_STATE);
    bus->rx.pending_count = 0;
    bus->rx.pending_batch = 0;
    rx_count(bus, 1, bus->rx.pending_size);
    rx_release_to(bus, bus->rx.pending_end);
    return TACHYON_SUCCESS;
}

/* Are views[0..count) exactly the first `count` messages of the last batch?
 * Their payload bytes go to *bytes (for the counters) on the way. */
static int views_match_batch(const struct tachyon_bus *bus, const tachyon_msg_view_t *views, size_t count,
                             uint64_t *bytes)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < count; i++) {
        const struct rx_batch_entry *e = &bus->rx.batch[i];
        if (views[i].ptr != e->payload || views[i].reserved_ != e->slot_size)
            return 0;
        sum += e->size;
    }
    *bytes = sum;
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
    uint64_t bytes;
    if (unlikely(!views_match_batch(bus, views, count, &bytes)))
        return status_error_detail(bus, TACHYON_ERR_STATE,
                                   "the views given back are not the first %zu messages of the last batch "
                                   "(a view was changed or made up); nothing was released",
                                   count);
    size_t left = bus->rx.pending_count - count;
    rx_count(bus, count, bytes);
    if (left)
        memmove(bus->rx.batch, bus->rx.batch + count, left * sizeof(bus->rx.batch[0]));
    bus->rx.pending_count = left;
    bus->rx.pending_batch = left != 0;
    /* All of it: up to pending_end, which includes a skip marker after the
     * last message if the batch crossed one. */
    rx_release_to(bus, left ? bus->rx.batch[0].end - bus->rx.batch[0].slot_size : bus->rx.pending_end);
    return TACHYON_SUCCESS;
}

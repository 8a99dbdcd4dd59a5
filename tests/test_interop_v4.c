/*
 * test_interop_v4.c - this library against peers that follow only the plain
 * ABI v4 rules of docs/protocol.md, as the published tachyon-ipc library does:
 *
 *   - our producer -> a v4 consumer that, seeing a skip marker covered by
 *     head, jumps to offset 0 and reads the header there at once (without
 *     looking at head again), and publishes tail every 32 messages;
 *   - a v4 producer (skip marker written with the message after it, head
 *     published every 32 commits or on flush) -> our consumer.
 *
 * Random sizes (mostly up to half the ring, some larger), rollbacks, and
 * interleavings that put the wrap at every 64-byte position, on rings of
 * 1 KiB to 64 KiB. Every message must arrive exactly once, in order, intact:
 * nothing stale, duplicated or lost.
 */
#include "helpers.h"
#include "internal.h"
#include "state.h"

#define V4_PUBLISH_EVERY 32

static uint64_t rng;
static uint64_t rnd(void)
{
    return rng = t_mix(rng);
}

/* The payload of message `seq`: every byte derived from it. */
static void fill(uint8_t *p, size_t n, uint64_t seq)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(seq * 131 + i * 7 + (i >> 8));
}

static int matches(const uint8_t *p, size_t n, uint64_t seq)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != (uint8_t)(seq * 131 + i * 7 + (i >> 8)))
            return 0;
    return 1;
}

/* What the consumer must see next: a FIFO of (seq, size). */
#define FIFO_CAP 4096
struct expect {
    uint64_t seq[FIFO_CAP];
    uint32_t size[FIFO_CAP];
    size_t head, tail;
};

static void expect_push(struct expect *e, uint64_t seq, uint32_t size)
{
    REQUIRE(e->head - e->tail < FIFO_CAP);
    e->seq[e->head % FIFO_CAP] = seq;
    e->size[e->head % FIFO_CAP] = size;
    e->head++;
}

/* A delivered message: it must be the next one expected. */
static int expect_pop(struct expect *e, const uint8_t *p, uint32_t size, uint32_t type_id)
{
    if (e->head == e->tail) {
        fprintf(stderr, "a message arrived that was never sent (size %u, type %u)\n", size, type_id);
        return 0;
    }
    uint64_t seq = e->seq[e->tail % FIFO_CAP];
    uint32_t want = e->size[e->tail % FIFO_CAP];
    e->tail++;
    if (size != want || type_id != (uint32_t)seq || !matches(p, size, seq)) {
        fprintf(stderr, "message %llu: got size %u type %u (%s), want size %u type %u\n",
                (unsigned long long)seq, size, type_id, matches(p, size < want ? size : want, seq) ? "same bytes" : "other bytes",
                want, (uint32_t)seq);
        return 0;
    }
    return 1;
}

/* A message size: mostly small, sometimes up to half the ring, rarely up to
 * the largest payload. */
static uint32_t pick_size(uint64_t capacity)
{
    uint64_t r = rnd();
    uint64_t half = capacity / 2 - TACHYON_MSG_HEADER;
    switch (r % 8) {
    case 0: return (uint32_t)((r >> 8) % (capacity - TACHYON_MSG_HEADER + 1));
    case 1: case 2: return (uint32_t)((r >> 8) % (half + 1));
    default: return (uint32_t)((r >> 8) % 200);
    }
}

/* ---- A plain v4 consumer, on the raw mapping ------------------------------- */

struct v4_consumer {
    tachyon_segment_header_t *hdr;
    uint8_t *ring;
    uint64_t capacity, tail, head, unpublished;
    uint8_t wrapped_at[64 * 1024 / 64]; /* the offsets where a wrap was taken or refused */
};

/* How many of the 64-byte offsets after 0 a wrap was tried at: taken (a
 * skip marker met by the consumer) or refused (a slot that only a lone
 * marker would have let through; noted by the producer's side). */
static size_t wrap_positions_seen(const struct v4_consumer *c)
{
    size_t n = 0;
    for (size_t i = 1; i < c->capacity / 64; i++)
        n += c->wrapped_at[i];
    return n;
}

/* One message, by the v4 reading rule; 0 when empty, -1 on a bad header. */
static int v4_consume_one(struct v4_consumer *c, struct expect *e)
{
    if (c->tail == c->head) {
        c->head = atomic_load_explicit(&c->hdr->head, memory_order_acquire);
        if (c->tail == c->head)
            return 0;
    }
    const tachyon_msg_header_t *h = (const void *)(c->ring + (c->tail & (c->capacity - 1)));
    if (atomic_load_explicit(&h->size, memory_order_relaxed) == TACHYON_SKIP_MARKER) {
        /* Covered by head: jump to offset 0 and read the header there at once. */
        c->wrapped_at[(c->tail & (c->capacity - 1)) / 64] = 1;
        c->tail += c->capacity - (c->tail & (c->capacity - 1));
        h = (const void *)c->ring;
    }
    uint32_t size = atomic_load_explicit(&h->size, memory_order_relaxed);
    uint32_t reserved = atomic_load_explicit(&h->reserved_size, memory_order_relaxed);
    if (reserved < 64 || reserved > c->capacity || reserved % 64 || size > reserved - 64) {
        fprintf(stderr, "v4 consumer: bad header at %llu (size %u, reserved %u)\n",
                (unsigned long long)c->tail, size, reserved);
        return -1;
    }
    if (!expect_pop(e, (const uint8_t *)h + 64, size, atomic_load_explicit(&h->type_id, memory_order_relaxed)))
        return -1;
    c->tail += reserved;
    if (++c->unpublished == V4_PUBLISH_EVERY) {
        atomic_store_explicit(&c->hdr->tail, c->tail, memory_order_release);
        c->unpublished = 0;
    }
    return 1;
}

static void v4_consumer_flush(struct v4_consumer *c)
{
    atomic_store_explicit(&c->hdr->tail, c->tail, memory_order_release);
    c->unpublished = 0;
}

/* Drain everything the consumer has not seen yet. */
static int v4_drain(struct v4_consumer *c, struct expect *e)
{
    int got;
    while ((got = v4_consume_one(c, e)) > 0)
        ;
    v4_consumer_flush(c);
    return got == 0 && e->tail == e->head;
}

/*
 * The wrap at every 64-byte offset, on purpose: with the ring drained and the
 * producer at offset `off`, a slot one line longer than the space left. Past
 * the middle it wraps (marker + message, published together); before it, it
 * could only go after a lone marker, and is refused.
 */
static int sweep_every_offset(tachyon_bus_t *lis, struct v4_consumer *c, struct expect *e, uint64_t *seq)
{
    struct tachyon_bus *prod = lis;
    uint64_t cap = c->capacity;
    for (uint64_t off = 64; off < cap; off += 64) {
        while ((prod->tx.head & (cap - 1)) != off) { /* zero-length messages to get there */
            REQUIRE(tachyon_acquire_tx(lis, 0) != NULL);
            CHECK_ERR(tachyon_commit_tx(lis, 0, (uint32_t)*seq), TACHYON_SUCCESS);
            expect_push(e, (*seq)++, 0);
            if (!v4_drain(c, e))
                return 0;
        }
        uint32_t size = (uint32_t)(cap - off + 64 - TACHYON_MSG_HEADER);
        uint8_t *p = tachyon_acquire_tx(lis, size);
        if (off > cap / 2) {
            REQUIRE(p != NULL);
            fill(p, size, *seq);
            CHECK_ERR(tachyon_commit_tx(lis, size, (uint32_t)*seq), TACHYON_SUCCESS);
            expect_push(e, (*seq)++, size);
        } else {
            CHECK(p == NULL && tachyon_bus_last_error(lis) == TACHYON_ERR_INVALID_SZ);
            c->wrapped_at[off / 64] = 1;
        }
        if (!v4_drain(c, e))
            return 0;
    }
    return 1;
}

/* Our producer, told that its consumer is a plain v4 one, against it. */
static int our_producer_to_v4_consumer(size_t capacity, int steps)
{
    tachyon_bus_t *lis, *con;
    t_make_pair(capacity, &lis, &con);
    struct tachyon_bus *prod = lis;
    prod->peer_features = 0; /* a published-library consumer announces nothing */
    ring_choose_publication(prod);
    struct v4_consumer *cp = calloc(1, sizeof(*cp));
    struct v4_consumer c0 = {con->hdr, con->ring, capacity, con->rx.tail, con->rx.tail, 0, {0}};
    *cp = c0;
#define c (*cp)
    struct expect *e = calloc(1, sizeof(*e));
    uint64_t seq = 0, sent = 0, refused = 0, rolled_back = 0;
    int ok = sweep_every_offset(lis, cp, e, &seq);
    for (int step = 0; ok && step < steps; step++) {
        uint64_t r = rnd() % 10;
        if (r < 5) {
            uint32_t size = pick_size(capacity);
            uint8_t *p = tachyon_acquire_tx(lis, size);
            if (!p) {
                tachyon_error_t err = tachyon_bus_last_error(lis);
                if (err == TACHYON_ERR_INVALID_SZ) {
                    /* Refused only when the slot fits neither before the end
                     * nor, after a wrap, before the current offset. */
                    uint64_t off = prod->tx.head & (capacity - 1);
                    CHECK(tachyon_slot_size(size) > capacity - off && tachyon_slot_size(size) > off);
                    c.wrapped_at[off / 64] = 1; /* this offset was tried for a wrap */
                    refused++;
                } else if (err != TACHYON_ERR_FULL) {
                    fprintf(stderr, "acquire_tx(%u): %s\n", size, tachyon_strerror(err));
                    ok = 0;
                } else {
                    v4_consumer_flush(&c); /* a full ring: the consumer gives its tail back */
                }
                continue;
            }
            fill(p, size, seq);
            if (r == 4) {
                CHECK_ERR(tachyon_rollback_tx(lis), TACHYON_SUCCESS);
                rolled_back++;
                continue;
            }
            CHECK_ERR(tachyon_commit_tx(lis, size, (uint32_t)seq), TACHYON_SUCCESS);
            expect_push(e, seq++, size);
            sent++;
            if (rnd() % 4 == 0)
                tachyon_flush(lis);
        } else {
            int n = (int)(rnd() % 8);
            for (int i = 0; ok && i < n; i++)
                ok = v4_consume_one(&c, e) >= 0;
            if (rnd() % 3 == 0)
                v4_consumer_flush(&c);
        }
    }
    while (ok && e->tail != e->head) {
        int got = v4_consume_one(&c, e);
        ok = got > 0;
        if (!ok)
            fprintf(stderr, "%zu messages sent were never seen\n", e->head - e->tail);
    }
    if (ok && v4_consume_one(&c, e) != 0) {
        fprintf(stderr, "the consumer found more than was sent\n");
        ok = 0;
    }
    printf("  our producer -> v4 consumer, %6zu B ring: %llu messages, %llu rollbacks, %llu slots refused, "
           "wraps tried at %zu of %zu offsets\n",
           capacity, (unsigned long long)sent, (unsigned long long)rolled_back, (unsigned long long)refused,
           wrap_positions_seen(cp), capacity / 64 - 1);
    CHECK(wrap_positions_seen(cp) == capacity / 64 - 1); /* a wrap came at every position */
#undef c
    free(cp);
    free(e);
    tachyon_bus_destroy(lis);
    tachyon_bus_destroy(con);
    return ok;
}

/* ---- A plain v4 producer, on the raw mapping --------------------------------- */

struct v4_producer {
    tachyon_segment_header_t *hdr;
    uint8_t *ring;
    uint64_t capacity, head, tail, unpublished;
};

static void v4_publish(struct v4_producer *p)
{
    atomic_store_explicit(&p->hdr->head, p->head, memory_order_release);
    p->unpublished = 0;
}

static int v4_has_room(struct v4_producer *p, uint64_t bytes)
{
    if (p->head + bytes - p->tail <= p->capacity)
        return 1;
    p->tail = atomic_load_explicit(&p->hdr->tail, memory_order_acquire);
    return p->head + bytes - p->tail <= p->capacity;
}

static void v4_header(uint8_t *at, uint32_t size, uint32_t type_id, uint32_t reserved)
{
    tachyon_msg_header_t *h = (void *)at;
    atomic_store_explicit(&h->size, size, memory_order_relaxed);
    atomic_store_explicit(&h->type_id, type_id, memory_order_relaxed);
    atomic_store_explicit(&h->reserved_size, reserved, memory_order_relaxed);
}

/* Send one message the v4 way; 0 when the ring has no room for it. */
static int v4_send(struct v4_producer *p, uint32_t size, uint64_t seq)
{
    uint64_t slot = tachyon_slot_size(size);
    uint64_t to_end = p->capacity - (p->head & (p->capacity - 1));
    if (to_end < slot) {
        if (slot > p->capacity - to_end || !v4_has_room(p, to_end + slot))
            return 0; /* marker and message only together */
        v4_header(p->ring + (p->head & (p->capacity - 1)), TACHYON_SKIP_MARKER, 0, (uint32_t)to_end);
        p->head += to_end;
    } else if (!v4_has_room(p, slot)) {
        return 0;
    }
    uint8_t *at = p->ring + (p->head & (p->capacity - 1));
    fill(at + 64, size, seq);
    v4_header(at, size, (uint32_t)seq, (uint32_t)slot);
    p->head += slot;
    if (++p->unpublished == V4_PUBLISH_EVERY)
        v4_publish(p);
    return 1;
}

/* Our consumer (single, batch and partial-batch receives) against it. */
static int v4_producer_to_our_consumer(size_t capacity, int steps)
{
    tachyon_bus_t *lis, *con;
    t_make_pair(capacity, &lis, &con);
    struct v4_producer p = {con->hdr, con->ring, capacity, con->tx.head, con->tx.head, 0};
    struct expect *e = calloc(1, sizeof(*e));
    uint64_t seq = 0;
    int ok = 1;
    for (int step = 0; ok && step < steps; step++) {
        uint64_t r = rnd() % 10;
        if (r < 5) {
            uint32_t size = pick_size(capacity);
            if (v4_send(&p, size, seq))
                expect_push(e, seq++, size);
            else
                v4_publish(&p); /* full: a v4 producer flushes before it waits */
            if (rnd() % 4 == 0)
                v4_publish(&p);
        } else if (r < 8) {
            uint32_t t;
            size_t s;
            const uint8_t *m = tachyon_acquire_rx(lis, &t, &s);
            if (m) {
                ok = expect_pop(e, m, (uint32_t)s, t);
                CHECK_ERR(tachyon_commit_rx(lis), TACHYON_SUCCESS);
            } else {
                ok = tachyon_bus_last_error(lis) == TACHYON_ERR_EMPTY;
            }
        } else {
            tachyon_msg_view_t v[8];
            size_t n = tachyon_acquire_rx_batch(lis, v, 1 + rnd() % 8);
            size_t keep = n ? (size_t)(rnd() % (n + 1)) : 0; /* commit a prefix only */
            for (size_t i = 0; ok && i < keep; i++)
                ok = expect_pop(e, v[i].ptr, (uint32_t)v[i].actual_size, v[i].type_id);
            if (keep)
                CHECK_ERR(tachyon_commit_rx_batch(lis, v, keep), TACHYON_SUCCESS);
            else if (n)
                CHECK_ERR(tachyon_commit_rx_batch(lis, v, 0), TACHYON_SUCCESS);
        }
        if (ok && status_is_fatal(lis)) {
            fprintf(stderr, "our consumer found the v4 producer's ring corrupt\n");
            ok = 0;
        }
    }
    v4_publish(&p);
    uint32_t t;
    size_t s;
    const uint8_t *m;
    while (ok && (m = tachyon_acquire_rx(lis, &t, &s)) != NULL) {
        ok = expect_pop(e, m, (uint32_t)s, t);
        tachyon_commit_rx(lis);
    }
    if (ok && e->tail != e->head) {
        fprintf(stderr, "%zu messages sent were never received\n", e->head - e->tail);
        ok = 0;
    }
    printf("  v4 producer -> our consumer, %6zu B ring: %llu messages\n", capacity, (unsigned long long)seq);
    free(e);
    tachyon_bus_destroy(lis);
    tachyon_bus_destroy(con);
    return ok;
}

int main(void)
{
    int steps = (int)t_env_u64("TACHYON_INTEROP_STEPS", 200000);
    rng = t_env_u64("TACHYON_INTEROP_SEED", 0x7AC4);
    printf("seed %#llx, %d steps per ring\n", (unsigned long long)rng, steps);
    for (size_t capacity = 1024; capacity <= 64 * 1024; capacity *= 2) {
        CHECK(our_producer_to_v4_consumer(capacity, steps));
        CHECK(v4_producer_to_our_consumer(capacity, steps));
    }
    return t_result("test_interop_v4");
}
